"""Your data: upload a labelled file, pick its columns, train P-tuning v2 and DP on it, try your own text.

Bounded (rows, bytes, labels, seconds of training; said on the page). A file that cannot make a classifier is
refused in one line when it is read, before it waits for anything. Training goes through the training hall
(app/hall.py), the same fair queue as the Train tab: one run at a time, visitors with the same file and columns share
one, and the page says where a visitor stands and what budget they get. Models stay in the browser session and are
freed with it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
import pandas as pd

from dp_core.analysis import analyse
from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.comparison import compare_on_dev
from dp_core.config import TrainConfig
from dp_core.explain import explain_examples
from dp_core.labelled import FORMATS, TextData, TextSplits, load_text_data, preview
from dp_core.model import PromptClassifier
from dp_core.tasks import DataError, Example
from dp_core.train import train

from .. import views
from ..hall import RunRecord, RunRequest, TrainingHall, UploadedData
from ..state import FIXED, METHOD_CHOICES, SHORT_RUN, Session, Shared
from .explore import scores_reading

MAX_ROWS = int(os.environ.get("DP_UPLOAD_ROWS", "2000"))
MAX_BYTES = int(os.environ.get("DP_UPLOAD_BYTES", str(2 * 2**20)))
MAX_LABELS = 50  # a label column with more is read as free text or ids: no class of students brings more
MAX_SECONDS = 60  # of training per method
DP = "DP deep: position + length + pool"
METHODS = (FIXED, DP)
NONE = "(none)"
UPLOAD_TASK = "a visitor's file"  # how a queued upload run is named to the others waiting
LIMITS = (f"Up to {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MB; CSV, TSV, JSONL or parquet; {MAX_LABELS} labels at "
          f"most. Each text is read up to 128 tokens. At most {MAX_SECONDS} s of training per method, on the default "
          "backbone (all-MiniLM-L6-v2) whatever the picker above says, in the same queue as the Train tab. Your file "
          "and models stay in this browser session and are freed with it.")


@dataclass
class Uploaded:
    """This session's models on its own data."""

    models: dict[str, PromptClassifier]


def in_words(error: DataError, path: str) -> str:
    """A refusal as the page says it: one line, the visitor's file named as theirs, not by the server's path."""
    return views.error_html(str(error).replace(str(path), "your file"))


def read_upload(path: str | None):
    """Columns to pick and the first rows, or a one-line error; what the guessed columns would make, said at once."""
    empty, no_rows = gr.update(choices=[], value=None), gr.update(value=None, visible=False)
    if not path:
        return empty, empty, empty, no_rows, ""
    try:
        if Path(path).suffix.lower() not in FORMATS:
            raise DataError(f"use a {', '.join(FORMATS)} file, not {Path(path).suffix or 'a file without one'}")
        if Path(path).stat().st_size > MAX_BYTES:
            raise DataError(f"the file is {Path(path).stat().st_size / 2**20:.1f} MB; this page takes "
                            f"{MAX_BYTES // 2**20} MB at most")
        columns, first_rows, count = preview(path)
        if count > MAX_ROWS:
            raise DataError(f"the file has {count:,} rows; this page takes {MAX_ROWS:,} at most")
        if len(columns) < 2:
            raise DataError(f"the file has one column ({columns[0]!r}); it needs a text column and a label column "
                            "(is it separated by something other than a comma, a semicolon or a tab?)")
    except DataError as error:
        return empty, empty, empty, no_rows, in_words(error, path)
    label = next((name for name in columns if name.lower() in ("label", "labels")), columns[-1])
    text = next((name for name in columns if name != label and isinstance(first_rows[0][name], str)),
                next(name for name in columns if name != label))
    shown = gr.update(value=pd.DataFrame(first_rows).astype(str), visible=True)
    return (gr.update(choices=columns, value=text), gr.update(choices=[NONE, *columns], value=NONE),
            gr.update(choices=columns, value=label), shown, reading_of(text_data(path, text, None, label)))


def text_data(path: str, text: str, second: str | None, label: str) -> TextData:
    columns = (text,) if second in (None, "", NONE) else (text, second)
    return TextData(path, columns, label, max_labels=MAX_LABELS)


def reading_of(data: TextData) -> str:
    """What the file makes with these columns: its rows and the ones left out, or why it cannot make a classifier."""
    try:
        splits = load_text_data(data)
    except DataError as error:
        return "With these columns: " + in_words(error, data.source)
    count = len(splits.train) + len(splits.dev) + splits.skipped
    left_out = f" {splits.skipped:,} left out (an empty text or label)." if splits.skipped else ""
    return f"{count:,} rows.{left_out} Check the columns, then train."


def config_for(path: str, columns: tuple[str, ...], label: str, seconds: float) -> TrainConfig:
    """A method's run on a visitor's data: its seconds of training, its evaluations within them (every candidate
    forced at the end, which the page never shows, would cost minutes on a long file: not made)."""
    return TrainConfig(data=path, text_columns=columns, label_column=label, backbone=DEFAULT_BACKBONE,
                       time_budget_s=min(float(seconds), MAX_SECONDS), epochs=100, counterfactuals="none",
                       **SHORT_RUN)


def upload_request(path: str, text: str, second: str | None, label: str, seconds: float) -> RunRequest:
    """The run a visitor asks for: their file read once with their columns (a ``DataError`` when it cannot make a
    classifier); visitors with the same bytes and columns ask for the same run."""
    data = text_data(path, text, second, label)
    splits = load_text_data(data)
    digest = hashlib.sha256(Path(path).read_bytes() + repr((data.text_columns, data.label_column)).encode())
    budget = min(float(seconds or 30), MAX_SECONDS)
    return RunRequest(UPLOAD_TASK, DEFAULT_BACKBONE, METHODS, budget, None, 0, "linear",
                      UploadedData(digest.hexdigest(), path, data.text_columns, data.label_column, splits))


def execute(shared: Shared, record: RunRecord) -> Iterator[None]:
    """Trains both methods on a visitor's data in turn within the record's budget, saying where they are (what the
    first overruns, its features and evaluations, comes off the second's); then scores both on the dev rows (at most
    a tenth of the rows: bounded with them)."""
    upload = record.request.data
    splits: TextSplits = upload.splits
    config = config_for(upload.path, upload.text_columns, upload.label_column, record.budget_s)
    backbone = shared.backbone(DEFAULT_BACKBONE)
    deadline = time.monotonic() + record.budget_s * len(METHODS)
    for position, method in enumerate(METHODS):
        left = (deadline - time.monotonic()) / (len(METHODS) - position)
        run = replace(config, prompt=METHOD_CHOICES[method](), time_budget_s=max(1.0, min(record.budget_s, left)))
        for event in train(run, backbone=backbone, data=(splits.train, splits.dev), task=splits.task,
                           cancel=record.cancel):
            record.elapsed[method] = event.elapsed_s
            if event.kind == "step":
                record.status = f"**{method}**: step {event.step}, about {event.eta_s or 0:.0f} s left"
                record.changed()
                yield
        record.models[method] = event.result.model
    record.status = "Scoring both on the dev rows…"
    record.changed()
    yield
    record.outcome = scores_of(record.models, splits)


def scores_of(models: dict[str, PromptClassifier], splits: TextSplits) -> tuple[str, pd.DataFrame]:
    """Both on the dev rows with intervals, read as Explore reads them."""
    dev = splits.dev
    comparison = compare_on_dev(splits.task, dev, analyse(models[FIXED], dev, 0), analyse(models[DP], dev, 0))
    table, reading = scores_reading(splits.task, comparison, METHODS)
    return reading, table


def waiting_view(hall: TrainingHall, record: RunRecord) -> str:
    """Where a visitor's run stands: its place in line and the wait, or what it is doing; its budget either way."""
    budget = f"Your budget: {record.budget_s:.0f} s per method" + (
        f" (not {record.request.budget_s:.0f}: the queue is long)." if record.budget_s < record.request.budget_s
        else ".")
    ahead = [] if record.started or record.finished else hall.ahead(record)
    if ahead:
        current = ahead[0].request
        return (f"Your run is number {len(ahead) + 1} in line: it starts in about {hall.seconds_left(ahead):.0f} s "
                f"(now training: {current.task}, {', '.join(current.methods)}). {budget}")
    return f"{record.status or 'Starting…'} {budget}"


async def watch_upload(hall: TrainingHall, path: str | None, text: str, second: str | None, label: str, seconds,
                       state: Session | None):
    """Reads the file with its columns (a refusal said at once), joins or queues its run in the hall, says where it
    stands until it ends; then both methods' dev scores, and their models into the session."""
    if not path or not text or not label:
        yield views.error_html("Upload a file and pick its columns first."), pd.DataFrame(), None
        return
    try:
        request = await asyncio.to_thread(upload_request, path, text, second, label, seconds)
    except DataError as error:
        yield in_words(error, path), pd.DataFrame(), None
        return
    watcher = id(state) if state is not None else id(request)
    record, seen = hall.join(request, watcher), None
    try:
        while not record.finished:
            now = (record.updates, len(hall.ahead(record)))
            if now != seen:
                seen = now
                yield waiting_view(hall, record), pd.DataFrame(), None
            await asyncio.sleep(0.3)
    finally:
        if not record.finished:  # the page went away mid-run
            hall.leave(record, watcher)
    if record.error or record.outcome is None:
        yield views.error_html(record.error or "The run stopped before it ended."), pd.DataFrame(), None
        return
    yield (*record.outcome, Uploaded(dict(record.models)))


def try_text(uploaded: Uploaded | None, text: str, second: str):
    """Both methods on one text: their answers, and where DP put its prompt."""
    if uploaded is None:
        return {}, {}, views.error_html("Train both methods first.")
    if not (text or "").strip():
        return {}, {}, views.error_html("Type a text first.")
    example = Example(((text.strip()[:2000], (second or "").strip()[:2000] or None),), 0, "typed")
    answers = []
    for method in METHODS:
        model = uploaded.models[method]
        decision = explain_examples(model, [example]).decisions[0]
        answers.append((views.class_probabilities(decision, model.task.label_names), decision))
    layout = views.layout_html(answers[1][1], "where DP put its prompt", uploaded.models[DP].backbone.num_layers)
    return answers[0][0], answers[1][0], layout


def build(hall: TrainingHall, session: gr.State) -> None:
    gr.Markdown("## Your own data\nUpload a labelled file. Pick the text and the label. Train the fixed prompt and DP "
                "on it, then try your own text.")
    gr.Markdown(LIMITS)
    uploaded = gr.State(None, time_to_live=3600)
    upload = gr.File(label="Your file", file_types=list(FORMATS), type="filepath")
    with gr.Row():
        text = gr.Dropdown(label="Text column", choices=[])
        second = gr.Dropdown(label="Second text column (optional)", choices=[])
        label = gr.Dropdown(label="Label column", choices=[])
    note = gr.Markdown()
    first_rows = gr.Dataframe(label="The first rows", interactive=False, visible=False)
    seconds = gr.Slider(10, MAX_SECONDS, value=30, step=5, label="Seconds of training per method")
    train_button = gr.Button("Train both methods", variant="primary")
    status = gr.Markdown()
    scores = gr.Dataframe(label="Dev score of each method, with its 95 % interval", interactive=False,
                          headers=["method", "score", "95 % interval", "items"])
    with gr.Row():
        typed = gr.Textbox(label="Your text")
        typed_second = gr.Textbox(label="Second text (if the data has two)")
    try_button = gr.Button("Compare on this text")
    with gr.Row():
        fixed_answer = gr.Label(label=FIXED)
        dp_answer = gr.Label(label=DP)
    layout = gr.HTML()

    # Listeners. Reading a file is bounded by its size; each visitor's reading runs beside the others'.
    upload.change(read_upload, upload, [text, second, label, first_rows, note], api_name="upload_preview",
                  concurrency_limit=None)
    for column in (text, second, label):
        column.input(columns_changed, [upload, text, second, label], note, api_visibility="private",
                     concurrency_limit=None)
    # Watching costs nothing (the hall trains one run at a time): every visitor's Train starts at once.
    train_button.click(functools.partial(watch_upload, hall), [upload, text, second, label, seconds, session],
                       [status, scores, uploaded], api_name="train_uploaded", concurrency_limit=None,
                       show_progress_on=status)
    try_button.click(try_text, [uploaded, typed, typed_second], [fixed_answer, dp_answer, layout],
                     api_name="try_uploaded")


def columns_changed(path: str | None, text: str, second: str | None, label: str) -> str:
    """What the file makes with the columns now picked (said before anyone presses Train)."""
    if not path or not text or not label:
        return ""
    try:
        data = text_data(path, text, second, label)
    except DataError as error:
        return in_words(error, path)
    return reading_of(data)
