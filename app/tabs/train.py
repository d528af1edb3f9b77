"""Train: short runs of the chosen methods with equal budgets; loss, dev score and DP's choices stream live.

Runs go through the training hall (app/hall.py): one trains at a time, every visitor watches at once, and visitors
who ask for the same settings share one run. On ZeroGPU hardware each visitor's run is its own GPU call instead.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from dataclasses import replace

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE, BackboneError
from dp_core.tasks import DataError, get_task
from dp_core.train import load_task_data, train

from .. import readings, views
from ..hall import RunRecord, RunRequest, TrainingHall
from ..state import (BACKBONES, GPU_CALL_MAX_S, HEADS, HOSTED, MAX_BUDGET_S, MAX_SEED, METHOD_CHOICES,
                     SHORT_RUNS, ZERO_GPU, Session, Shared, default_methods, method_budget, on_gpu, recorded,
                     short_run)

CHOICE_COLUMNS = ["step", "tokens after the input", "share of dev items"]
SUMMARY_COLUMNS = ["method", "best dev score", "at step", "stopped", "one-answer baseline", "examples/s"]
# A fixed colour per method: the plots keep the colours of their first update otherwise.
COLOURS = dict(zip(METHOD_CHOICES, ("#6b7280", "#a855f7", "#2563eb", "#ea580c", "#16a34a")))


def short_run_note(task_name: str, measurements: dict = SHORT_RUNS,
                   ready: dict[str, tuple[float, str]] | None = None) -> str:
    """What a short run on this task can and cannot show (benchmarks.short_runs), as a table: each method's figure
    from a short run, converged over seeds and ready-trained (``ready``: method title -> (score, the split it was
    selected on)), each row saying what it is; then a sentence on what it means."""
    measured = measurements.get("tasks", {}).get(task_name)
    if not measured:
        return ""
    budget, methods = f"{measurements['budget_s']:g} s", list(measured)
    majority = next(iter(measured.values()))["majority"]

    def row(label: str, values: list[float | None]) -> str:
        return f"| {label} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in values) + " |"

    ready = ready or {}
    selected = {split for _, split in ready.values()}
    lines = [f"**What a {budget} run can show on {task_name}** (measured on 2 CPU cores, default backbone)", "",
             f"| dev score ({readings.metric_name(get_task(task_name))}) | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|",
             row(f"a {budget} run: its best evaluation", [measured[m]["dev"] for m in methods]),
             row("converged: the results grid's mean over seeds", [measured[m].get("converged") for m in methods]),
             row("ready-trained: what Compare and Explore use" + (" (selected on dev)" if "dev" in selected else ""),
                 [ready.get(m, (None,))[0] for m in methods]),
             row("always the most common answer", [majority] * len(methods)), ""]
    stuck = [m for m in methods if measured[m]["dev"] <= majority + 0.01]
    lucky = any(measured[m].get("converged") is not None and measured[m]["dev"] > measured[m]["converged"] + 0.01
                for m in methods)
    return "\n".join([*lines, readings.short_run_reading(budget, stuck, len(methods), lucky)])


def checked_seed(value) -> int:
    """The seed as the generators take it, or a message saying what is allowed."""
    if value is None or value == "":
        return 0
    if float(value) != int(float(value)) or not 0 <= int(float(value)) <= MAX_SEED:
        raise gr.Error(f"Seed must be a whole number from 0 to {MAX_SEED}.")
    return int(float(value))


def choice_spread(step: int, choices: dict) -> list[dict]:
    """Where DP put the prompt over the dev set at one evaluation: the share of items with each number of tokens
    after the input. With a chosen length, every place past it is one layout (all after): count layouts."""
    counts = choices["position"].get("layout_counts") or choices["position"]["counts"]
    total = max(1, sum(counts))
    return [{"step": str(step), "tokens after the input": str(p), "share of dev items": n / total}
            for p, n in enumerate(counts)]


def checked_request(task_name: str, backbone_name: str, chosen: list[str] | None, budget_s, k, seed_value,
                    head_name: str) -> RunRequest:
    """The run a visitor asked for, within the Space's bounds; a one-line error for what is not allowed."""
    if not chosen:
        raise gr.Error("Choose at least one method.")
    if HOSTED and backbone_name not in BACKBONES:
        raise gr.Error("This Space trains only the listed backbones.")
    wanted_s, per_method = float(budget_s or 60), method_budget(budget_s, len(chosen))
    if ZERO_GPU and per_method < min(wanted_s, MAX_BUDGET_S):
        gr.Info(f"On this GPU Space one run may hold the GPU for {GPU_CALL_MAX_S} s: "
                f"each of the {len(chosen)} methods gets {per_method:.0f} s.")
    return RunRequest(task_name, backbone_name, tuple(chosen), per_method, int(k or 0) or None,
                      checked_seed(seed_value), HEADS.get(head_name, "linear"))


def execute(shared: Shared, record: RunRecord) -> Iterator[None]:
    """Trains a record's methods one after another on its budget, recording every step and evaluation."""
    request = record.request
    backbone_model = shared.backbone(request.backbone)
    base = short_run(request.task, request.backbone, record.budget_s, shared.data_dir, request.k_shot, request.seed,
                     request.head)
    data = load_task_data(base)
    drawn = len({example.group for example in data[0]})  # k counts items (MultiRC: whole questions)
    if request.k_shot and drawn < request.k_shot:
        record.note = (f"Few-shot k = {request.k_shot} is more than the {drawn} training items of {request.task}: "
                       "training on all of them.")
    # Every method appears from the first update on (an empty point at step 0): the plots fix their legend from
    # the methods they first see.
    record.losses = [{"method": label, "step": 0, "loss": float("nan")} for label in request.methods]
    record.devs = [{"method": label, "step": 0, "dev score": float("nan")} for label in request.methods]
    for position, label in enumerate(request.methods):
        config = replace(base, prompt=METHOD_CHOICES[label]())
        if "position" in config.prompt.choice_factors:
            record.spread = []  # the plot follows the DP method now training
        for event in train(config, backbone=backbone_model, cancel=record.cancel, data=data):
            record_event(record, label, event)
            record.status = (f"**{label}** ({position + 1} of {len(request.methods)}): step {event.step}, "
                             f"{event.examples_per_s:.1f} examples/s, about "
                             f"{max(0.0, record.budget_s - event.elapsed_s):.0f} s left for this method. "
                             f"Train {len(data[0])} items, dev {len(data[1])}.")
            record.changed()
            yield
        if record.cancel.is_set():
            break
    record.status = "Stopped; the best checkpoint so far is kept." if record.cancel.is_set() else "Done."


def record_event(record: RunRecord, label: str, event) -> None:
    """One training event into the record's curves, and a finished method's model and summary row."""
    record.elapsed[label] = event.elapsed_s
    if event.kind == "step":
        record.losses.append({"method": label, "step": event.step, "loss": event.loss})
    elif event.kind == "eval":
        record.devs.append({"method": label, "step": event.step, "dev score": event.metrics["score"]})
        if event.choices and "position" in event.choices:
            record.spread += choice_spread(event.step, event.choices)
    else:
        result = event.result
        result.model.metadata = {"summary": {"best": result.dev_metrics, "choices": result.choices,
                                             "majority_baseline": result.majority_baseline}}
        record.models[label] = result.model
        record.best.append({"method": label, "best dev score": round(result.dev_metrics["score"], 4),
                            "at step": result.best_step, "stopped": result.stopped_because,
                            "one-answer baseline": round(result.majority_baseline, 4),
                            "examples/s": round(event.examples_per_s, 1)})


def frames(record: RunRecord) -> tuple:
    """A record's loss curves, dev scores, DP's places and summary, as the plots take them."""
    spread = record.spread
    return (pd.DataFrame(record.losses, columns=["method", "step", "loss"]),
            # a scatter legend first drawn from empty points has no entries: name the methods
            gr.ScatterPlot(pd.DataFrame(record.devs, columns=["method", "step", "dev score"]),
                           colors_in_legend=list(record.request.methods)),
            gr.BarPlot(pd.DataFrame(spread, columns=CHOICE_COLUMNS),
                       sort=list(dict.fromkeys(row["step"] for row in spread))),
            pd.DataFrame(record.best, columns=SUMMARY_COLUMNS))


def view(hall: TrainingHall, record: RunRecord) -> tuple:
    """What a watcher sees: its run, or while it waits the queue and the run in progress."""
    ahead = [] if record.started or record.finished else hall.ahead(record)
    if ahead:
        current = ahead[0].request
        return (readings.waiting_reading(len(ahead) + 1, hall.seconds_left(ahead), current.task, current.methods),
                *frames(ahead[0]))
    status = record.status or "Loading the data and the backbone…"
    if record.budget_s < record.request.budget_s:
        status += (f" The queue was long: this run gets {record.budget_s:.0f} s per method, not "
                   f"{record.request.budget_s:.0f}.")
    if record.finished and record.status:
        status += " Open **Compare** to see the trained prompts at work."
    return (" ".join(part for part in (status, record.note) if part), *frames(record))


def keep_models(state: Session, record: RunRecord) -> None:
    """A finished run's models into the session, as its own runs."""
    runs = state.runs.setdefault((record.request.task, record.request.backbone), {})
    for label, model in record.models.items():
        runs[label] = model
        state.analyses.pop(id(model), None)  # an id may be reused by a new model: never read a stale analysis


async def watch_training(hall: TrainingHall, task_name, backbone_name, chosen, budget_s, k, seed_value, head_name,
                         state: Session | None):
    """Joins (or queues) the run asked for and streams what it does; its models join the session at the end."""
    state = state or Session()
    record = hall.join(checked_request(task_name, backbone_name, chosen, budget_s, k, seed_value, head_name),
                       id(state))
    state.watching, seen = record, None
    try:
        while not record.finished:
            ahead = [] if record.started else hall.ahead(record)
            now = (record.updates, ahead[0].updates if ahead else None, len(ahead))
            if now != seen:
                seen = now
                yield (state, *view(hall, record))
            if id(state) not in record.watchers and record.watchers:  # Stop, while others go on watching
                yield (state, "You stopped watching; the run goes on for the others who asked for it.",
                       *frames(record))
                return
            await asyncio.sleep(0.3)
    finally:
        if not record.finished:  # the page went away mid-run
            hall.leave(record, id(state))
    if record.error:
        raise gr.Error(record.error)
    keep_models(state, record)
    yield (state, *view(hall, record))


@on_gpu
def train_on_gpu(shared: Shared, task_name, backbone_name, chosen, budget_s, k, seed_value, head_name,
                 state: Session | None):
    """ZeroGPU: the visitor's own run, in this call (the GPU is held by the call, not by a worker)."""
    state = state or Session()
    request = checked_request(task_name, backbone_name, chosen, budget_s, k, seed_value, head_name)
    record = RunRecord(request, request.budget_s, watchers={id(state)}, started=True)
    state.watching = record
    try:
        for _ in execute(shared, record):
            yield (state, *view(None, record))
    except (DataError, BackboneError, ValueError) as error:
        raise gr.Error(str(error)) from None
    record.finished = True
    keep_models(state, record)
    yield (state, *view(None, record))


def stop_training(hall: TrainingHall, state: Session | None) -> str:
    """Stop watching; the run stops after its current step when nobody else watches it."""
    record = getattr(state, "watching", None)
    if record is None or record.finished:
        return "No run in progress."
    if ZERO_GPU:
        record.cancel.set()
        return "Stopping after the current step…"
    others = hall.leave(record, id(state))
    return "Stopping after the current step…" if not others else f"{others} others watch this run: it goes on."


def build(shared: Shared, session: gr.State, task: gr.Dropdown, backbone: gr.Dropdown, hall: TrainingHall):
    """The tab, on the page's backbone, its runs in ``hall``; returns its Train event, which the side pickers follow
    once a run is kept."""
    with gr.Row():
        head = gr.Radio(list(HEADS), value=next(iter(HEADS)), label="Head",
                        info="the verbalizer needs a model with an LM head (not the default sentence encoder)")
        methods = gr.CheckboxGroup(list(METHOD_CHOICES), value=default_methods(DEFAULT_BACKBONE),
                                   label="Methods (each gets the same budget)")
    with gr.Row():
        budget = gr.Slider(5, MAX_BUDGET_S, value=60, step=5, label="Budget per method (seconds)")
        k_shot = gr.Number(0, precision=0, minimum=0, label="Few-shot k (0: the whole train set)")
        seed = gr.Number(0, precision=0, label=f"Seed (0 to {MAX_SEED})")
    with gr.Row():
        start = gr.Button("Train", variant="primary")
        stop = gr.Button("Stop", variant="stop")
    expectation = gr.Markdown(expectation_for(shared, task.value))
    status = gr.Markdown()
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="loss", color="method", color_map=COLOURS, title="Training loss")
        # The whole score range, steps from 0 as beside it: a zoomed axis would draw a few dev items' noise as a gap.
        dev_plot = gr.ScatterPlot(x="step", y="dev score", color="method", color_map=COLOURS, x_lim=[0, None],
                                  y_lim=[0, 1], title="Dev score (each evaluation)")
    choice_plot = gr.BarPlot(x="step", y="share of dev items", color="tokens after the input",
                             color_map=views.candidate_colours(17), y_lim=[0, 1],
                             title="Where DP puts the prompt on the dev set, at each evaluation (blue: before the "
                                   "input, orange: after it)")
    summary = gr.Dataframe(label="Best dev score of each run", headers=SUMMARY_COLUMNS, interactive=False)

    backbone.change(lambda name: gr.CheckboxGroup(value=default_methods(name)), backbone, methods,
                    api_visibility="private")
    task.change(functools.partial(expectation_for, shared), [task, backbone], expectation, api_name="short_run_note")
    backbone.change(functools.partial(expectation_for, shared), [task, backbone], expectation,
                    api_visibility="private", queue=False)
    run = functools.partial(train_on_gpu, shared) if ZERO_GPU else functools.partial(watch_training, hall)
    # Watching costs nothing (the hall trains one run at a time): every visitor's Train starts at once. The progress
    # bar on the status line only: on every output it would cover the curves it is streaming.
    trained = start.click(run, [task, backbone, methods, budget, k_shot, seed, head, session],
                          [session, status, loss_plot, dev_plot, choice_plot, summary], api_name="train",
                          concurrency_limit=1 if ZERO_GPU else None, show_progress_on=status)
    stop.click(functools.partial(stop_training, hall), session, status, api_name="stop", queue=False)
    return trained


def expectation_for(shared: Shared, task_name: str, backbone_name: str = DEFAULT_BACKBONE) -> str:
    """What a short run on this task can show, beside the ready-trained prompts' scores."""
    ready = {title: (recorded(model).get("best", {}).get("score"), recorded(model).get("selected_on", "dev"))
             for title, model in shared.ready(task_name).items()}
    note = short_run_note(task_name, ready={title: pair for title, pair in ready.items() if pair[0] is not None})
    if note and backbone_name != DEFAULT_BACKBONE:
        note = (f"*Measured on the default backbone, not on {backbone_name}*, where a run of the same length "
                f"takes fewer steps if a step costs more. {note}")
    return note
