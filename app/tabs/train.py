"""Train: short runs of the chosen methods with equal budgets; loss, dev score and DP's choices stream live."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import replace

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE, BackboneError
from dp_core.tasks import DataError
from dp_core.train import load_task_data, train

from .. import views
from ..state import (BACKBONE_CHOICES, BACKBONES, HEADS, HOSTED, MAX_BUDGET_S, MAX_SEED, METHOD_CHOICES, SHORT_RUNS,
                     ZERO_GPU, GPU_CALL_MAX_S, Session, Shared, default_methods, method_budget, on_gpu, recorded,
                     short_run)

CHOICE_COLUMNS = ["step", "tokens after the input", "share of dev items"]


def started(events: Iterator) -> Iterator:
    """The events with the first one already drawn, so that a model the backbone cannot take fails here."""
    first = next(events)
    return itertools.chain([first], events)


def short_run_note(task_name: str, measurements: dict = SHORT_RUNS,
                   ready: dict[str, tuple[float, str]] | None = None) -> str:
    """What a short run on this task can and cannot show, from the committed measurements (benchmarks.short_runs),
    beside the ready-trained prompts' dev scores (``ready``: method title -> (score, the split it was selected on))."""
    measured = measurements.get("tasks", {}).get(task_name)
    if not measured:
        return ""
    budget = f"{measurements['budget_s']:g} s"
    majority = next(iter(measured.values()))["majority"]
    reached = ", ".join(f"{method} {outcome['dev']:.3f}" for method, outcome in measured.items())
    stuck = [method for method, outcome in measured.items() if outcome["dev"] <= majority + 0.01]
    verdict = ("neither does better than that: a short run shows nothing learned here" if len(stuck) == len(measured)
               else f"{' and '.join(stuck)} does no better than that" if stuck else "both learn something")
    converged = [f"{method} {outcome['converged']:.3f}" for method, outcome in measured.items()
                 if outcome.get("converged") is not None]
    after = (f" Converged (results grid, selected on held-out items): {', '.join(converged)}." if converged
             else " Converged scores: not measured yet (docs/results.md).")
    if any(outcome.get("converged") is not None and outcome["dev"] > outcome["converged"] + 0.01
           for outcome in measured.values()):
        after += (" Where a short run is above the converged score, that is the flattery of keeping its best dev "
                  "evaluation, not a better run.")
    longer = [f"{method} {ready[method][0]:.3f}" for method in measured if ready and method in ready]
    if longer:
        how = {selected for _, selected in (ready or {}).values()}
        selection = "selected on held-out items" if how == {"holdout"} else "selected on dev, which flatters them"
        after += f" The ready-trained prompts ({selection}): {', '.join(longer)}."
    return (f"*What {budget} can show on {task_name}* (measured on 2 CPU cores with these defaults): {reached} on "
            f"dev (the best of its evaluations, as the plot shows it); always predicting the majority class scores "
            f"{majority:.3f}, so {verdict}.{after}")


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


def build(shared: Shared, session: gr.State, task: gr.Dropdown) -> gr.Dropdown:
    """The tab; returns its backbone picker, which Compare and Explore follow."""
    with gr.Row():
        backbone = gr.Dropdown(BACKBONE_CHOICES, value=DEFAULT_BACKBONE, label="Frozen backbone",
                               allow_custom_value=not HOSTED,
                               info="the first two work offline (SmolLM2 with its package installed); the others "
                                    "download from the Hub")
        head = gr.Radio(list(HEADS), value=next(iter(HEADS)), label="Head",
                        info="the verbalizer needs a model with an LM head (not the default sentence encoder)")
        methods = gr.CheckboxGroup(list(METHOD_CHOICES), value=default_methods(DEFAULT_BACKBONE),
                                   label="Methods (each gets the same budget)")
    backbone.change(lambda name: gr.CheckboxGroup(value=default_methods(name)), backbone, methods,
                    api_visibility="private")
    with gr.Row():
        budget = gr.Slider(5, MAX_BUDGET_S, value=60, step=5, label="Budget per method (seconds)")
        k_shot = gr.Number(0, precision=0, minimum=0, label="Few-shot k (0: the whole train set)")
        seed = gr.Number(0, precision=0, label=f"Seed (0 to {MAX_SEED})")
    with gr.Row():
        start = gr.Button("Train", variant="primary")
        stop = gr.Button("Stop", variant="stop")

    def expectation_for(task_name: str, backbone_name: str = DEFAULT_BACKBONE) -> str:
        ready = {title: (recorded(model).get("best", {}).get("score"), recorded(model).get("selected_on", "dev"))
                 for title, model in shared.ready(task_name).items()}
        note = short_run_note(task_name, ready={title: pair for title, pair in ready.items() if pair[0] is not None})
        if note and backbone_name != DEFAULT_BACKBONE:
            note = (f"*Measured on the default backbone, not on {backbone_name}*, where a run of the same length "
                    f"takes fewer steps if a step costs more. {note}")
        return note

    expectation = gr.Markdown(expectation_for(task.value))
    task.change(expectation_for, [task, backbone], expectation, api_name="short_run_note")
    backbone.change(expectation_for, [task, backbone], expectation, api_visibility="private", queue=False)
    status = gr.Markdown()
    with gr.Row():
        # A fixed colour per method: the plot keeps the colours of its first update otherwise.
        colours = dict(zip(METHOD_CHOICES, ("#6b7280", "#a855f7", "#2563eb", "#ea580c", "#16a34a")))
        loss_plot = gr.LinePlot(x="step", y="loss", color="method", color_map=colours, title="Training loss")
        # The whole score range, steps from 0 as beside it: a zoomed axis would draw a few dev items' noise as a gap.
        dev_plot = gr.ScatterPlot(x="step", y="dev score", color="method", color_map=colours, x_lim=[0, None],
                                  y_lim=[0, 1], title="Dev score (each evaluation)")
    choice_plot = gr.BarPlot(x="step", y="share of dev items", color="tokens after the input",
                             color_map=views.candidate_colours(17), y_lim=[0, 1],
                             title="Where DP puts the prompt on the dev set, at each evaluation (blue: before the "
                                   "input, orange: after it)")
    summary = gr.Dataframe(label="Best dev score of each run", interactive=False)

    @on_gpu
    def run_training(task_name, backbone_name, chosen, budget_s, k, seed_value, head_name, state,
                     progress=gr.Progress()):
        state = state or Session()
        if not chosen:
            raise gr.Error("Choose at least one method.")
        if HOSTED and backbone_name not in BACKBONES:
            raise gr.Error("This Space trains only the listed backbones.")
        seed_number = checked_seed(seed_value)
        wanted_s, budget_s = float(budget_s or 60), method_budget(budget_s, len(chosen))
        if ZERO_GPU and budget_s < min(wanted_s, MAX_BUDGET_S):
            gr.Info(f"On this GPU Space one run may hold the GPU for {GPU_CALL_MAX_S} s: "
                    f"each of the {len(chosen)} methods gets {budget_s:.0f} s.")
        state.cancel.clear()
        try:
            backbone_model = shared.backbone(backbone_name)
            base = short_run(task_name, backbone_name, budget_s, shared.data_dir, int(k) or None, seed_number,
                             HEADS.get(head_name, "linear"))
            data = load_task_data(base)
        except (DataError, BackboneError, ValueError) as error:
            raise gr.Error(str(error)) from None
        drawn = len({example.group for example in data[0]})  # k counts items (MultiRC: whole questions)
        k_note = ""
        if k and drawn < int(k):
            k_note = (f" Few-shot k = {int(k)} is more than the {drawn} training items of {task_name}: training on "
                      "all of them.")
            gr.Warning(k_note.strip())
        # Every chosen method appears from the first update on (an empty point at step 0): the plots fix
        # their legend from the methods they first see. The dev plot also names them: a scatter legend first
        # drawn from empty points has no entries.
        losses = [{"method": label, "step": 0, "loss": float("nan")} for label in chosen]
        devs = [{"method": label, "step": 0, "dev score": float("nan")} for label in chosen]
        spread, best, last_yield = [], [], 0.0

        def frames():
            return (pd.DataFrame(losses, columns=["method", "step", "loss"]),
                    gr.ScatterPlot(pd.DataFrame(devs, columns=["method", "step", "dev score"]),
                                   colors_in_legend=list(chosen)),
                    gr.BarPlot(pd.DataFrame(spread, columns=CHOICE_COLUMNS),
                               sort=list(dict.fromkeys(row["step"] for row in spread))), pd.DataFrame(best))

        for position, label in enumerate(chosen):
            config = replace(base, prompt=METHOD_CHOICES[label]())
            if "position" in getattr(config.prompt, "factors", ()):
                spread = []  # the plot follows the DP method now training
            try:
                events = started(train(config, backbone=backbone_model, cancel=state.cancel, data=data))
            except (BackboneError, ValueError) as error:  # a method or head this backbone cannot take
                raise gr.Error(str(error)) from None
            for event in events:
                if event.kind == "step":
                    losses.append({"method": label, "step": event.step, "loss": event.loss})
                elif event.kind == "eval":
                    devs.append({"method": label, "step": event.step, "dev score": event.metrics["score"]})
                    if event.choices and "position" in event.choices:
                        spread += choice_spread(event.step, event.choices)
                else:
                    result = event.result
                    result.model.metadata = {"summary": {"best": result.dev_metrics, "choices": result.choices,
                                                         "majority_baseline": result.majority_baseline}}
                    state.runs.setdefault((task_name, backbone_name), {})[label] = result.model
                    state.choice_stats.pop(id(result.model), None)
                    best.append({"method": label, "best dev score": round(result.dev_metrics["score"], 4),
                                 "at step": result.best_step, "stopped": result.stopped_because,
                                 "one-answer baseline": round(result.majority_baseline, 4),
                                 "examples/s": round(event.examples_per_s, 1)})
                fraction = min(1.0, event.elapsed_s / budget_s)
                progress((position + fraction) / len(chosen), desc=f"{label}: step {event.step}")
                text = (f"**{label}** ({position + 1} of {len(chosen)}): step {event.step}, "
                        f"{event.examples_per_s:.1f} examples/s, about {max(0.0, budget_s - event.elapsed_s):.0f} s "
                        f"left for this method. Train {len(data[0])} items, dev {len(data[1])}.{k_note}")
                if event.kind != "step" or time.monotonic() - last_yield > 0.5:
                    last_yield = time.monotonic()
                    yield (state, text, *frames())
            if state.cancel.is_set():
                break
        stopped = "Stopped; the best checkpoint so far is kept." if state.cancel.is_set() else "Done."
        yield (state, f"{stopped} Open **Compare** to see the trained prompts at work.{k_note}", *frames())

    def stop_training(state):
        if state is not None:
            state.cancel.set()
        return "Stopping after the current step…"

    # The progress bar on the status line only: on every output it would cover the curves it is streaming.
    start.click(run_training, [task, backbone, methods, budget, k_shot, seed, head, session],
                [session, status, loss_plot, dev_plot, choice_plot, summary], api_name="train", concurrency_limit=1,
                concurrency_id="train", show_progress_on=status)
    stop.click(stop_training, session, status, api_name="stop", queue=False)
    return backbone
