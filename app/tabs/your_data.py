"""Your data: upload a labelled file, pick its columns, train P-tuning v2 and DP on it, try your own text.

Bounded (rows, bytes, seconds of training; said on the page), kept in this browser session only and freed with it.
"""

from __future__ import annotations

import functools
import os
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
from dp_core.labelled import FORMATS, preview
from dp_core.model import PromptClassifier
from dp_core.tasks import DataError, Example, Task
from dp_core.train import load_task_and_data, train

from .. import views
from ..state import FIXED, METHOD_CHOICES, SHORT_RUN, Shared
from .explore import scores_reading

MAX_ROWS = int(os.environ.get("DP_UPLOAD_ROWS", "2000"))
MAX_BYTES = int(os.environ.get("DP_UPLOAD_BYTES", str(2 * 2**20)))
MAX_SECONDS = 60  # of training per method
DP = "DP deep: position + length + pool"
NONE = "(none)"
LIMITS = (f"Up to {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MB; CSV, TSV, JSONL or parquet. Each text is read up to "
          f"128 tokens. At most {MAX_SECONDS} s of training per method, on the default backbone (all-MiniLM-L6-v2) "
          "whatever the picker above says. Your file and models stay in this browser session and are freed with it.")


@dataclass
class Uploaded:
    """This session's models on its own data."""

    models: dict[str, PromptClassifier]


def read_upload(path: str | None):
    """Columns to pick and the first rows, or a one-line error."""
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
    except DataError as error:
        return empty, empty, empty, no_rows, views.error_html(str(error).replace(str(path), "your file"))
    label = next((name for name in columns if name.lower() in ("label", "labels")), columns[-1])
    text = next((name for name in columns if name != label and isinstance(first_rows[0][name], str)), columns[0])
    shown = gr.update(value=pd.DataFrame(first_rows).astype(str), visible=True)
    return (gr.update(choices=columns, value=text), gr.update(choices=[NONE, *columns], value=NONE),
            gr.update(choices=columns, value=label), shown,
            f"{count:,} rows. Check the columns, then train.")


def config_for(path: str, text: str, second: str | None, label: str, seconds: float) -> TrainConfig:
    columns = (text,) if second in (None, "", NONE) else (text, second)
    return TrainConfig(data=path, text_columns=columns, label_column=label, backbone=DEFAULT_BACKBONE,
                       time_budget_s=min(float(seconds), MAX_SECONDS), epochs=100, **SHORT_RUN)


def train_both(shared: Shared, path: str | None, text: str, second: str | None, label: str,
               seconds: float) -> Iterator[tuple[str, pd.DataFrame, Uploaded | None]]:
    """Read the file once, train both methods on it in turn, saying where they are; then both on the dev rows."""
    if not path or not text or not label:
        yield views.error_html("Upload a file and pick its columns first."), pd.DataFrame(), None
        return
    models, backbone, config = {}, shared.backbone(DEFAULT_BACKBONE), config_for(path, text, second, label, seconds)
    try:
        task, train_items, dev = load_task_and_data(config)
        for method in (FIXED, DP):
            run = replace(config, prompt=METHOD_CHOICES[method]())
            for event in train(run, backbone=backbone, data=(train_items, dev), task=task):
                if event.kind == "step":
                    yield f"**{method}**: step {event.step}, about {event.eta_s or 0:.0f} s left", pd.DataFrame(), None
            models[method] = event.result.model
    except (DataError, ValueError) as error:
        yield views.error_html(str(error).replace(str(path), "your file")), pd.DataFrame(), None
        return
    yield "Scoring both on the dev rows…", pd.DataFrame(), Uploaded(models)
    yield (*scores_of(models, task, dev), Uploaded(models))


def scores_of(models: dict[str, PromptClassifier], task: Task, dev: list[Example]) -> tuple[str, pd.DataFrame]:
    """Both on the dev rows with intervals, read as Explore reads them."""
    comparison = compare_on_dev(task, dev, analyse(models[FIXED], dev, 0), analyse(models[DP], dev, 0))
    table, reading = scores_reading(task, comparison, (FIXED, DP))
    return reading, table


def try_text(uploaded: Uploaded | None, text: str, second: str):
    """Both methods on one text: their answers, and where DP put its prompt."""
    if uploaded is None:
        return {}, {}, views.error_html("Train both methods first.")
    if not (text or "").strip():
        return {}, {}, views.error_html("Type a text first.")
    example = Example(((text.strip()[:2000], (second or "").strip()[:2000] or None),), 0, "typed")
    answers = []
    for method in (FIXED, DP):
        model = uploaded.models[method]
        decision = explain_examples(model, [example]).decisions[0]
        answers.append((views.class_probabilities(decision, model.task.label_names), decision))
    layout = views.layout_html(answers[1][1], "where DP put its prompt", uploaded.models[DP].backbone.num_layers)
    return answers[0][0], answers[1][0], layout


def build(shared: Shared) -> None:
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

    upload.change(read_upload, upload, [text, second, label, first_rows, note], api_name="upload_preview")
    train_button.click(functools.partial(train_both, shared), [upload, text, second, label, seconds],
                       [status, scores, uploaded], api_name="train_uploaded")
    try_button.click(try_text, [uploaded, typed, typed_second], [fixed_answer, dp_answer, layout],
                     api_name="try_uploaded")
