"""Any labelled text data as a task: a local CSV, TSV, JSONL or parquet file, or a Hub dataset.

    data = TextData("reviews.csv", text_columns=("review",), label_column="stars")
    task, train, dev = load_text_data(data)

One or two text columns, a label column of integers or strings, accuracy and macro-F1. Without a validation split,
a seeded 10 % of the rows is kept for dev. Rows with an empty text or label are left out and counted. Data that cannot
make a classifier is refused in one line naming the file, the line or row, and the column: no rows, the text and the
label in one column, a label column of free text or numbers, a label with one row, too few rows to hold out a dev set.
"""

from __future__ import annotations

import csv
import functools
import json
import random
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tasks import DataError, Example, Task

FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
DEV_SHARE = 0.1
MIN_ROWS = 20  # rows data without a dev split needs: a tenth of them (2 at least) is held out to score on
MIN_PER_LABEL = 2  # rows each label needs where dev is drawn from the rows: one may be held out
DELIMITERS = ",;\t|"  # what a CSV file's columns may be separated by (sniffed from its first lines)


@dataclass(frozen=True)
class TextData:
    source: str  # a local file (.csv, .tsv, .jsonl, .json, .parquet), or a Hub dataset id or a folder laid out as one
    text_columns: tuple[str, ...]  # one column, or two read as a pair (premise and hypothesis, question and passage)
    label_column: str
    label_names: tuple[str, ...] | None = None  # in label order; None: the data's values, sorted
    validation: str | None = None  # a file, or the Hub dataset's split; None: its "validation", else a seeded 10 %
    seed: int = 0  # draws the dev rows when the data has none
    max_labels: int | None = None  # refuse a label column with more labels than this (None: any number)

    def __post_init__(self):
        if not 1 <= len(self.text_columns) <= 2:
            raise DataError(f"give one or two text columns, got {len(self.text_columns)}: {list(self.text_columns)}")
        if self.label_column in self.text_columns:
            raise DataError(f"column {self.label_column!r} cannot be both a text and the label: pick a label column "
                            "that names each row's class")


@dataclass
class TextSplits:
    """Labelled data read as a task: its training and dev items, and how many rows were left out. Unpacks as
    ``task, train, dev``."""

    task: Task
    train: list[Example]
    dev: list[Example]
    skipped: int = 0  # rows left out: an empty text or label

    def __iter__(self):
        return iter((self.task, self.train, self.dev))


def pair_of(first: str, second: str | None, row: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    return ((row[first], row[second] if second else None),)


def text_task(name: str, text_columns: tuple[str, ...], label_names: tuple[str, ...]) -> Task:
    """The task of a dataset's text columns and labels (what a checkpoint records to rebuild it)."""
    second = text_columns[1] if len(text_columns) > 1 else None
    return Task(name=name, folder=name, hub_config="", label_names=tuple(label_names),
                label_values=tuple(label_names), input_fields=tuple(text_columns),
                build=functools.partial(pair_of, text_columns[0], second), metrics=("accuracy", "macro_f1"),
                label_words=tuple(label.lower() for label in label_names), text_columns=tuple(text_columns))


def task_from_record(record: dict) -> Task:
    """The task a checkpoint's ``task_spec`` describes."""
    return text_task(record["name"], tuple(record["text_columns"]), tuple(record["label_names"]))


def check_file(path: Path) -> dict[str, Any]:
    """A local file read before its loader does, to say in one line what the loader would say in its own words: not
    UTF-8 (which line), no rows, a JSON line that is not JSON. Returns the loader's options for it: a CSV file's
    separator as sniffed (``;``, a tab), its byte-order mark skipped."""
    kind = FORMATS[path.suffix.lower()]
    if kind == "parquet":
        return {}
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); save it as UTF-8") \
            from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if kind == "json" and path.suffix.lower() == ".jsonl":
        for number, line in lines:
            try:
                json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {number}: not JSON ({error.msg}); each line must be one object") \
                    from None
    if kind != "csv":
        if not lines:
            raise DataError(f"{path}: no rows")
        return {}
    if len(lines) < 2:
        raise DataError(f"{path}: no rows" + (" under its header" if lines else ""))
    return {"delimiter": "\t" if path.suffix.lower() == ".tsv" else sniffed_delimiter(text), "encoding": "utf-8-sig"}


def sniffed_delimiter(text: str) -> str:
    """The separator of a CSV file's columns, from its first lines: a comma unless another fits them better."""
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_splits(source: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(how to name it in messages, its rows by split), read once: a local file is one "train" split; a Hub dataset
    or a folder laid out as one has its own splits."""
    import datasets

    path = Path(source).expanduser()
    where, options = (str(path) if is_local(source) else source), {}
    if is_local(source):
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        if path.suffix.lower() not in FORMATS:
            raise DataError(f"{path}: unknown format; use one of {', '.join(FORMATS)}")
        options = {"path": FORMATS[path.suffix.lower()], "data_files": {"train": where}, **check_file(path)}
    try:
        with tempfile.TemporaryDirectory() as cache:  # a local file or folder leaves no copy behind
            loaded = datasets.load_dataset(**(options or {"path": source}), cache_dir=cache if path.exists() else None)
            return where, {split: [dict(row) for row in rows] for split, rows in loaded.items()}
    except Exception as error:  # noqa: BLE001 - any loader failure becomes one clear line
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(f"{where}: could not be read ({type(error).__name__}: {first[:200]})") from None


def split_rows(where: str, splits: dict[str, list[dict[str, Any]]], split: str) -> tuple[str, list[dict[str, Any]]]:
    """One split's rows, named for messages."""
    if split not in splits:
        raise DataError(f"{where}: no {split!r} split; it has {', '.join(splits)}")
    return (where if list(splits) == ["train"] else f"{where} ({split})"), splits[split]


def read_rows(source: str, split: str = "train") -> tuple[str, list[dict[str, Any]]]:
    """(how to name it in messages, its rows) of one split of a local file or a Hub dataset."""
    return split_rows(*read_splits(source), split)


def preview(source: str, rows: int = 5) -> tuple[list[str], list[dict[str, Any]], int]:
    """A file's or Hub dataset's columns, its first rows and how many rows it has (for a page to pick columns)."""
    where, read = read_rows(source)
    if not read:
        raise DataError(f"{where}: no rows")
    return list(read[0]), read[:rows], len(read)


def check_columns(where: str, rows: list[dict[str, Any]], data: TextData) -> None:
    if not rows:
        raise DataError(f"{where}: no rows")
    for column in (*data.text_columns, data.label_column):
        if column not in rows[0]:
            raise DataError(f"{where}: no column {column!r}; its columns: {', '.join(map(str, rows[0]))}")


Numbered = list[tuple[int, dict[str, Any]]]  # rows with their numbers in the file (from 1)


def usable(rows: list[dict[str, Any]], data: TextData) -> tuple[Numbered, int]:
    """The rows with every text and the label present, numbered as in the file, and how many were left out."""
    kept = [(number, row) for number, row in enumerate(rows, start=1)
            if all(isinstance(row[column], str) and row[column].strip() for column in data.text_columns)
            and row[data.label_column] is not None and str(row[data.label_column]).strip() != ""]
    return kept, len(rows) - len(kept)


def check_labels(where: str, rows: Numbered, data: TextData, held_out: bool) -> None:
    """A label column that can make a classifier: labels, not numbers with fractions or free text; at most
    ``data.max_labels`` of them; where dev is drawn from these rows (``held_out``), enough rows, and two of each
    label."""
    if not rows:
        raise DataError(f"{where}: no row has both a text and a label")
    column, values = data.label_column, [row[data.label_column] for _, row in rows]
    fractional = next((value for value in values if isinstance(value, float) and not value.is_integer()), None)
    if fractional is not None:
        raise DataError(f"{where}: column {column!r} holds numbers such as {fractional!r}, not labels; pick the "
                        "column that names each row's class")
    counts = Counter(str(value) for value in values)
    if len(rows) >= 10 and len(counts) > len(rows) / 2:
        raise DataError(f"{where}: column {column!r} looks like free text or ids, not labels: {len(counts):,} of "
                        f"{len(rows):,} rows differ")
    if data.max_labels is not None and len(counts) > data.max_labels:
        raise DataError(f"{where}: column {column!r} holds {len(counts):,} labels; at most {data.max_labels} here")
    if not held_out:
        return
    if len(rows) < MIN_ROWS:
        raise DataError(f"{where}: {len(rows)} rows with a text and a label; {MIN_ROWS} at least are needed, so "
                        "that a tenth can be held out to score on")
    rare = next(((label, count) for label, count in counts.items() if count < MIN_PER_LABEL), None)
    if rare is not None:
        raise DataError(f"{where}: label {rare[0]!r} of column {column!r} has {rare[1]} row; each label needs "
                        f"{MIN_PER_LABEL} at least")


def label_names_of(where: str, rows: Numbered, data: TextData) -> tuple[str, ...]:
    """The given names, else the data's values sorted (numbers as numbers); two at least."""
    if data.label_names:
        names = tuple(data.label_names)
    else:
        values = sorted({row[data.label_column] for _, row in rows}, key=lambda v: (isinstance(v, str), v))
        names = tuple(str(value) for value in values)
    if len(names) < 2:
        raise DataError(f"{where}: column {data.label_column!r} holds one label only ({names[0]!r}); a classifier "
                        f"needs two or more")
    return names


def label_index(where: str, number: int, value: Any, names: tuple[str, ...], column: str) -> int:
    """A label's index: its name, or an integer that counts into the names."""
    if str(value) in names:
        return names.index(str(value))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    raise DataError(f"{where}, row {number}: column {column!r} holds {value!r}, not one of {list(names)}")


def examples_of(where: str, rows: Numbered, task: Task, data: TextData, first_group: int = 0) -> list[Example]:
    return [Example(task.build(row), label_index(where, number, row[data.label_column], task.label_names,
                                                 data.label_column),
                    str(first_group + number), {column: row[column] for column in data.text_columns})
            for number, row in rows]


def is_local(source: str) -> bool:
    """A single local file (a folder or a Hub id is a dataset with splits)."""
    path = Path(source).expanduser()
    return path.suffix.lower() in FORMATS or path.is_file()


def dev_rows_of(data: TextData, where: str, splits: dict[str, list[dict[str, Any]]]
                ) -> tuple[str, list[dict[str, Any]]] | None:
    """The data's own dev rows: the validation file or split asked for, else a dataset's "validation" split."""
    if data.validation and (is_local(data.source) or is_local(data.validation)):
        return read_rows(data.validation)
    if data.validation:
        return split_rows(where, splits, data.validation)
    return split_rows(where, splits, "validation") if "validation" in splits else None


def load_text_data(data: TextData) -> TextSplits:
    """The task, its training items and its dev items (rows with an empty text or label left out and counted)."""
    read_where, splits = read_splits(data.source)
    where, rows = split_rows(read_where, splits, "train")
    check_columns(where, rows, data)
    rows, skipped = usable(rows, data)
    dev = dev_rows_of(data, read_where, splits)
    if dev is not None:
        check_columns(*dev, data)
        dev_rows, dev_skipped = usable(dev[1], data)
        dev, skipped = (dev[0], dev_rows), skipped + dev_skipped
    check_labels(where, rows, data, held_out=dev is None)
    names = label_names_of(where, rows + (dev[1] if dev else []), data)
    path = Path(data.source).expanduser()
    name = path.stem if is_local(data.source) else (path.name if path.exists() else data.source)
    task = text_task(name, data.text_columns, names)
    train = examples_of(where, rows, task, data)
    if dev is not None:
        first_group = max((number for number, _ in rows), default=0)
        return TextSplits(task, train, examples_of(*dev, task, data, first_group=first_group), skipped)
    order = list(range(len(train)))
    random.Random(data.seed).shuffle(order)
    held = set(order[: max(1, round(DEV_SHARE * len(train)))])
    return TextSplits(task, [e for i, e in enumerate(train) if i not in held],
                      [e for i, e in enumerate(train) if i in held], skipped)
