"""``dp-predict`` (``python -m dp_core.predict``): a trained prompt classifier's answers for an unlabelled file.

    dp-predict runs/reviews-dp unlabelled.csv --output answers.csv

One output row per input row: its text columns, the label, each class's probability and, for Dynamic Prompting,
where the prompt went (tokens after and before the input, tokens on). The input is a CSV, TSV, JSONL or parquet file
or a Hub dataset, read as training reads it; a bad file or column is refused in one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .backbone import BackboneError
from .hf import Prediction, PromptForSequenceClassification
from .labelled import read_rows
from .options import comma_list
from .tasks import DataError

OUTPUT_FORMATS = (".csv", ".jsonl", ".json", ".parquet")


def texts_of(where: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> tuple[list[str], list | None]:
    """The rows' first texts and (with two columns) second texts; one line naming the row of an empty one."""
    if not rows:
        raise DataError(f"{where}: no rows")
    for column in columns:
        if column not in rows[0]:
            raise DataError(f"{where}: no column {column!r}; its columns: {', '.join(map(str, rows[0]))}")
    for number, row in enumerate(rows, start=1):
        for column in columns:
            if not isinstance(row[column], str) or not row[column].strip():
                raise DataError(f"{where}, row {number}: column {column!r} is empty or not text")
    firsts = [row[columns[0]] for row in rows]
    return firsts, ([row[columns[1]] for row in rows] if len(columns) > 1 else None)


def answer_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], predictions: list[Prediction]) -> list[dict]:
    """One output row per input: its texts, the label, each class's probability and DP's place where it has one."""
    out = []
    for row, prediction in zip(rows, predictions):
        answer = {column: row[column] for column in columns}
        answer["label"] = prediction.label
        answer.update({f"probability {name}": value for name, value in prediction.probabilities.items()})
        if prediction.active_length is not None:
            answer.update(tokens_after=prediction.tokens_after, tokens_before=prediction.tokens_before,
                          tokens_on=prediction.active_length)
        out.append(answer)
    return out


def write(rows: list[dict], path: Path) -> None:
    """The answers as a file of the output's suffix, written by datasets."""
    from datasets import Dataset

    answers = Dataset.from_list(rows)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        answers.to_csv(str(path), index=False)
    elif suffix == ".parquet":
        answers.to_parquet(str(path))
    else:
        answers.to_json(str(path), lines=True, force_ascii=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dp-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a checkpoint folder or Hub repo (saved by dp-train, save_pretrained, a Trainer)")
    parser.add_argument("data", help="a CSV, TSV, JSONL or parquet file, or a Hub dataset id")
    parser.add_argument("--output", required=True, type=Path, help=f"where the answers go: {', '.join(OUTPUT_FORMATS)}")
    parser.add_argument("--text-columns", type=comma_list, default=None, metavar="A[,B]",
                        help="the text column, or two read as a pair (default: those the model was trained on)")
    parser.add_argument("--split", default="train", help="a Hub dataset's split (default: train)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.output.suffix.lower() not in OUTPUT_FORMATS:
        print(f"error: --output must end in {', '.join(OUTPUT_FORMATS)}, not {args.output.suffix or 'nothing'}",
              file=sys.stderr)
        return 2
    try:
        model = PromptForSequenceClassification.from_pretrained(args.model).eval()
        if args.device != "auto":
            model.to(args.device)
        where, rows = read_rows(args.data, args.split)
        columns = tuple(args.text_columns or [column for column in model.config.text_columns
                                              if not rows or column in rows[0]] or model.config.text_columns)[:2]
        firsts, seconds = texts_of(where, rows, columns)
    except (DataError, BackboneError, OSError, ValueError) as error:
        print(f"error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    predictions = model.predict(firsts, seconds, args.batch_size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write(answer_rows(rows, columns, predictions), args.output)
    print(f"{len(predictions)} answers written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
