"""SuperGLUE tasks: how a record becomes model input, its labels and its metric.

Records come from a local folder of the official jsonl files (``<dir>/<TASK>/{train,val}.jsonl``, FewGLUE
under ``<dir>/FewGLUE/<TASK>/train.jsonl``) or from the Hugging Face Hub (parquet dataset ``aps/super_glue``).
Both are normalised to one flat record per scored item, so everything downstream sees one format.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .metrics import compute_metrics

HUB_DATASET = "aps/super_glue"
DATA_DIR_ENV = "DP_SUPERGLUE_DIR"
SPLITS = ("train", "val")


class DataError(ValueError):
    """A data problem, phrased as one line that names the file, the line and the field."""


@dataclass(frozen=True)
class Example:
    """One scored item. ``pairs`` holds one (text_a, text_b) per choice: one for classification, two for COPA."""

    pairs: tuple[tuple[str, str | None], ...]
    label: int
    group: str  # MultiRC: the question an answer belongs to (exact match is per question); else the item id
    fields: dict[str, Any] = field(default_factory=dict, compare=False)  # the raw fields, for display


@dataclass(frozen=True)
class Task:
    name: str
    folder: str  # folder name in the official release
    hub_config: str
    label_names: tuple[str, ...]
    label_values: tuple[Any, ...]  # the local files' label values, in label_names order
    input_fields: tuple[str, ...]  # flat record fields a user fills in
    build: Callable[[dict[str, Any]], tuple[tuple[str, str | None], ...]]
    metrics: tuple[str, ...] = ("accuracy",)
    multiple_choice: bool = False  # COPA: score each pair, softmax over choices
    # What a verbalizer head reads for each label, in label_names order (multiple choice: the one word that scores
    # each choice's row): the LM's logit of the word's first token at the answer place.
    label_words: tuple[str, ...] = ("no", "yes")
    text_columns: tuple[str, ...] = ()  # a task defined by data (dp_core.labelled): the columns it reads

    @property
    def spec(self) -> dict | None:
        """What rebuilds a task defined by data (``dp_core.labelled.task_from_record``); None for SuperGLUE's."""
        if not self.text_columns:
            return None
        return {"name": self.name, "text_columns": list(self.text_columns), "label_names": list(self.label_names)}

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _mark_span(text: str, start: int, end: int) -> str:
    return f"{text[:start]}*{text[start:end]}*{text[end:]}"


def _build_wic(r: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    first = _mark_span(r["sentence1"], int(r["start1"]), int(r["end1"]))
    second = _mark_span(r["sentence2"], int(r["start2"]), int(r["end2"]))
    return ((f"{r['word']}: {first}", second),)


def _build_wsc(r: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    words = r["text"].split()
    marks = {int(r["span1_index"]): "*", int(r["span2_index"]): "#"}
    spans = {int(r["span1_index"]): r["span1_text"], int(r["span2_index"]): r["span2_text"]}
    out, position = [], 0
    while position < len(words):
        if position in marks:
            width = max(1, len(spans[position].split()))
            out.append(marks[position] + " ".join(words[position : position + width]) + marks[position])
            position += width
        else:
            out.append(words[position])
            position += 1
    return ((" ".join(out), f'Does "{r["span2_text"]}" refer to "{r["span1_text"]}"?'),)


def _build_copa(r: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    question = {"cause": "What was the cause?", "effect": "What happened as a result?"}[r["question"]]
    return tuple((r["premise"], f"{question} {r[choice]}") for choice in ("choice1", "choice2"))


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task("boolq", "BoolQ", "boolq", ("false", "true"), (False, True), ("question", "passage"),
             lambda r: ((r["question"], r["passage"]),)),
        Task("cb", "CB", "cb", ("entailment", "contradiction", "neutral"),
             ("entailment", "contradiction", "neutral"), ("premise", "hypothesis"),
             lambda r: ((r["premise"], r["hypothesis"]),), metrics=("accuracy", "macro_f1"),
             label_words=("yes", "no", "maybe")),
        Task("copa", "COPA", "copa", ("choice1", "choice2"), (0, 1),
             ("premise", "choice1", "choice2", "question"), _build_copa, multiple_choice=True, label_words=("yes",)),
        Task("rte", "RTE", "rte", ("entailment", "not_entailment"), ("entailment", "not_entailment"),
             ("premise", "hypothesis"), lambda r: ((r["premise"], r["hypothesis"]),), label_words=("yes", "no")),
        Task("wic", "WiC", "wic", ("different", "same"), (False, True),
             ("word", "sentence1", "sentence2", "start1", "end1", "start2", "end2"), _build_wic),
        Task("wsc", "WSC", "wsc.fixed", ("false", "true"), (False, True),
             ("text", "span1_index", "span1_text", "span2_index", "span2_text"), _build_wsc),
        Task("multirc", "MultiRC", "multirc", ("false", "true"), (0, 1), ("paragraph", "question", "answer"),
             lambda r: ((r["paragraph"], f"{r['question']} {r['answer']}"),), metrics=("f1a", "exact_match")),
    ]
}


def get_task(name: str) -> Task:
    task = TASKS.get(name.lower())
    if task is None:
        raise DataError(f"unknown task {name!r}; supported: {', '.join(TASKS)}")
    return task


def _locate_word(word: str, sentence: str, which: str) -> tuple[int, int]:
    """Character span of the target word (or the first word that starts like it, e.g. "running" for "run")."""
    lowered = sentence.lower()
    start = lowered.find(word.lower())
    if start < 0:
        stem = word.lower()[: max(2, len(word) - 1)]
        start = next((m for m in range(len(lowered)) if lowered.startswith(stem, m)
                      and (m == 0 or not lowered[m - 1].isalnum())), -1)
    if start < 0:
        raise DataError(f"the word {word!r} does not occur in {which}")
    end = start
    while end < len(sentence) and (sentence[end].isalnum() or sentence[end] in "-'"):
        end += 1
    return start, max(end, start + 1)


def _locate_span(span: str, text: str, which: str) -> int:
    words, target = [w.strip(".,;:!?\"'").lower() for w in text.split()], span.split()[0].strip(".,;:!?\"'").lower()
    if target not in words:
        raise DataError(f"{which} {span!r} does not occur in the text")
    return words.index(target)


# WiC's character offsets and WSC's word indices: fields a person need not type (example_from_fields finds them).
OFFSET_FIELDS = ("start1", "end1", "start2", "end2", "span1_index", "span2_index")


def example_from_fields(task_name: str, fields: dict[str, Any], label: int | None = None) -> Example:
    """One item from what a person typed, in the task's own fields. WiC's character offsets and WSC's word
    indices may be left out: they are found from the word and span texts. Bad input: one-line DataError."""
    task = get_task(task_name)
    flat = {name: fields.get(name) for name in task.input_fields}
    for name in task.input_fields:
        value = flat[name]
        if name in OFFSET_FIELDS:
            if value in (None, ""):
                continue
            try:
                flat[name] = int(value)
            except (TypeError, ValueError):
                raise DataError(f"{name} must be a whole number, got {value!r}") from None
        elif not isinstance(value, str) or not value.strip():
            raise DataError(f"{task.folder} needs a non-empty {name!r}")
        else:
            flat[name] = value.strip()
    if task.name == "copa" and flat["question"] not in ("cause", "effect"):
        raise DataError(f"COPA's question must be 'cause' or 'effect', got {flat['question']!r}")
    if task.name == "wic":
        for number in ("1", "2"):
            sentence = flat[f"sentence{number}"]
            start, end = flat[f"start{number}"], flat[f"end{number}"]
            if start is None or end is None or not 0 <= start < end <= len(sentence):
                flat[f"start{number}"], flat[f"end{number}"] = _locate_word(flat["word"], sentence, f"sentence {number}")
    if task.name == "wsc":
        words = flat["text"].split()
        for number in ("1", "2"):
            index = flat[f"span{number}_index"]
            if index is None or not 0 <= index < len(words):
                flat[f"span{number}_index"] = _locate_span(flat[f"span{number}_text"], flat["text"], f"span {number}")
    if label is not None and not 0 <= label < task.num_labels:
        raise DataError(f"label must be one of 0..{task.num_labels - 1}, got {label}")
    return Example(task.build(flat), -1 if label is None else label, "typed", flat)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local SuperGLUE folder: the argument, else $DP_SUPERGLUE_DIR, else None (load from the Hub)."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist (expected the official SuperGLUE jsonl layout)")
    return path


def _flatten_local(task: Task, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Official jsonl → flat records in the Hub's field layout (one per scored item)."""
    if task.name == "wsc":
        return [{**{k: v for k, v in record.items() if k != "target"}, **record["target"]}]
    if task.name == "multirc":
        passage = record["passage"]
        return [
            {"paragraph": passage["text"], "question": question["question"], "answer": answer["text"],
             "label": answer.get("label"), "idx": {"paragraph": record.get("idx"), "question": question["idx"],
                                                   "answer": answer["idx"]}}
            for question in passage["questions"] for answer in question["answers"]
        ]
    return [record]


def _to_example(task: Task, flat: dict[str, Any], position: int, local: bool) -> Example:
    missing = [name for name in (*task.input_fields, "label") if flat.get(name) is None]
    if missing:
        raise KeyError(missing[0])
    raw_label = flat["label"]
    if local:
        if raw_label not in task.label_values:
            raise ValueError(f"field 'label': {raw_label!r} is not one of {list(task.label_values)}")
        label = task.label_values.index(raw_label)
    else:
        label = int(raw_label)
    idx = flat.get("idx", position)
    group = f"{idx['paragraph']}-{idx['question']}" if isinstance(idx, dict) else str(idx)
    return Example(task.build(flat), label, group, {name: flat[name] for name in task.input_fields})


def read_jsonl(task: Task, path: Path) -> list[Example]:
    if not path.is_file():
        raise DataError(f"{path}: file not found (task {task.name}; the folder needs {task.folder}/<split>.jsonl)")
    examples: list[Example] = []
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                for flat in _flatten_local(task, record):
                    examples.append(_to_example(task, flat, len(examples), local=True))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
            except KeyError as error:
                raise DataError(f"{path}:{line_number}: field {error.args[0]!r} is missing") from None
            except (TypeError, ValueError, AttributeError) as error:
                raise DataError(f"{path}:{line_number}: {error}") from None
    if not examples:
        raise DataError(f"{path}: no records")
    return examples


def load_hub(task: Task, split: str) -> list[Example]:
    """The same split from the Hub (needs network, or a filled datasets cache)."""
    import datasets

    hub_split = {"val": "validation"}.get(split, split)
    try:
        rows = datasets.load_dataset(HUB_DATASET, task.hub_config, split=hub_split)
    except Exception as error:  # noqa: BLE001 - any loader failure becomes one clear line
        raise DataError(
            f"could not load {HUB_DATASET}/{task.hub_config} ({hub_split}) from the Hugging Face Hub: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
            f"- offline? pass --data-dir or set ${DATA_DIR_ENV} to a local SuperGLUE folder"
        ) from None
    return [_to_example(task, dict(row), position, local=False) for position, row in enumerate(rows)]


def load_examples(task_name: str, split: str, data_dir: str | os.PathLike | None = None) -> list[Example]:
    """All examples of a split ("train" or "val") from the local folder if one is given, else from the Hub."""
    task = get_task(task_name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {SPLITS}")
    folder = resolve_data_dir(data_dir)
    if folder is None:
        return load_hub(task, split)
    return read_jsonl(task, folder / task.folder / f"{split}.jsonl")


def load_fewglue(task_name: str, data_dir: str | os.PathLike | None = None) -> list[Example]:
    """The standard 32-example FewGLUE training set (Schick & Schütze) from the local folder."""
    task = get_task(task_name)
    folder = resolve_data_dir(data_dir)
    if folder is None:
        raise DataError("FewGLUE needs a local SuperGLUE folder (--data-dir or $DP_SUPERGLUE_DIR)")
    return read_jsonl(task, folder / "FewGLUE" / task.folder / "train.jsonl")


def sample_k_shot(examples: list[Example], k: int, seed: int) -> list[Example]:
    """k items drawn with a seed; MultiRC draws k whole questions so exact match stays meaningful."""
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.group, []).append(example)
    if k <= 0:
        raise DataError(f"k-shot needs k > 0, got {k}")
    chosen = random.Random(seed).sample(sorted(groups), min(k, len(groups)))
    return [example for name in chosen for example in groups[name]]


HOLDOUT_SHARE, HOLDOUT_MIN, FEW_SHOT_MAX, FEW_SHOT_HOLDOUT = 0.1, 32, 64, 8


def split_holdout(examples: list[Example], seed: int, maximum: int | None = None
                  ) -> tuple[list[Example], list[Example]]:
    """(train, held out): a seeded 10 % of the training items (at least 32, at most ``maximum``) kept out of
    training to select checkpoints on, so dev is never looked at. Few-shot sets (64 items or fewer, e.g.
    FewGLUE's 32) hold out a fixed 8. Whole groups, so MultiRC questions stay together."""
    groups = sorted({example.group for example in examples})
    random.Random(seed).shuffle(groups)
    if len(groups) <= FEW_SHOT_MAX:
        count = FEW_SHOT_HOLDOUT
    else:
        count = max(HOLDOUT_MIN, round(HOLDOUT_SHARE * len(groups)))
        count = min(count, maximum) if maximum else count
    chosen = set(groups[:count])
    return [e for e in examples if e.group not in chosen], [e for e in examples if e.group in chosen]


def constant_score(task: Task, label: int, examples: list[Example]) -> float:
    """The task's ``score`` of answering ``label`` for every item."""
    return compute_metrics(task.metrics, [label] * len(examples), [example.label for example in examples],
                           [example.group for example in examples], task.num_labels)["score"]


def best_constant_guess(task: Task, examples: list[Example]) -> int:
    """The one answer that scores best on ``examples`` (the most common label on ties). With accuracy that is the
    most common label; MultiRC's F1a is 0 for "false" everywhere, so there it is "true" for every answer."""
    labels = [example.label for example in examples]
    return max(sorted(set(labels)), key=lambda label: (constant_score(task, label, examples), labels.count(label)))


def majority_baseline(task: Task, train: list[Example], dev: list[Example]) -> float:
    """The dev ``score`` (the task's own metric) of the best constant guess, its label picked on the training set,
    so it compares with the score of a trained model (CB: accuracy and macro-F1)."""
    return constant_score(task, best_constant_guess(task, train), dev)
