"""The training loop, as an iterator of events (the app reads them; ``dp_core.cli`` prints them).

    python -m dp_core.train --task rte --method ptv2 --data-dir ../shared/superglue --epochs 3

AdamW with separate learning rates for the prompt (or backbone), the head and DP's choice network; linear warm-up
and decay; gradient clipping; length-bucketed batches; an evaluation every N steps and at the end, the best
checkpoint kept (``dp_core.evaluation.Selection``). It stops cleanly on a time budget or when ``cancel`` is set.
Accelerate places it on the device and adds mixed precision, gradient accumulation and data parallelism:

    accelerate launch --multi_gpu --num_processes 2 -m dp_core.train --task cb --data-dir ../shared/superglue
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn

from .backbone import Backbone, load_backbone
from .choices import chosen_factors
from .config import TrainConfig, TrainEvent, TrainResult
from .data import Batch, EncodedSplit, iterate_batches
from .evaluation import (
    RowFeatures,
    Selection,
    evaluate,
    evaluate_at_end,
    evaluate_with_choices,
    refit_kept_choices,
    split_features,
)
from .labelled import load_text_data
from .metrics import compute_metrics, score_interval
from .model import PromptClassifier
from .optimization import agreed, backward_and_step, build_optimizer, make_accelerator, make_scheduler
from .peft_interop import is_peft_adapter, load_peft_prompt
from .tasks import (
    Example,
    Task,
    best_constant_guess,
    get_task,
    load_examples,
    load_fewglue,
    majority_baseline,
    sample_k_shot,
    split_holdout,
)

log = logging.getLogger("dp_core.train")  # by name: under `python -m` __name__ is "__main__"; the CLI shows INFO


def load_task_and_data(config: TrainConfig) -> tuple[Task, list[Example], list[Example]]:
    """The run's task, training and dev items, as the config asks (your data or a SuperGLUE task; FewGLUE, k-shot,
    a dev limit)."""
    text_data = config.text_data()
    if text_data is not None:
        task, train, dev = load_text_data(text_data)
    else:
        task = get_task(config.task)
        train = load_fewglue(task.name, config.data_dir) if config.fewglue else \
            load_examples(task.name, "train", config.data_dir)
        dev = load_examples(task.name, "val", config.data_dir)
    if config.k_shot:
        train = sample_k_shot(train, config.k_shot, config.seed)
    return task, train, dev[: config.dev_limit] if config.dev_limit else dev


def load_task_data(config: TrainConfig) -> tuple[list[Example], list[Example]]:
    """The run's training and dev items."""
    return load_task_and_data(config)[1:]


def endless_batches(split: EncodedSplit, config: TrainConfig, pad: int, shard: tuple[int, int] = (0, 1)
                    ) -> Iterator[Batch]:
    """Shuffled training batches, epoch after epoch (epoch e shuffled with seed + e); ``shard``: (process index,
    processes), this process's share of each."""
    epoch = 0
    while True:
        yield from iterate_batches(split, config.batch_size, pad, shuffle=True, seed=config.seed + epoch, shard=shard)
        epoch += 1


def planned_steps(config: TrainConfig, train_items: int) -> int:
    """Optimizer steps a run plans (what its schedules and ``select_from`` count against), however it then stops."""
    return config.max_steps or max(1, math.ceil(config.epochs * math.ceil(train_items / config.batch_size)))


class TrainingObjective(nn.Module):
    """The training loss as a module's forward pass: what Accelerate prepares, so data parallelism syncs its
    gradients and mixed precision wraps it. Evaluation calls the classifier itself."""

    def __init__(self, model: PromptClassifier):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, features: torch.Tensor | None) -> torch.Tensor:
        return self.model.training_loss(batch, features)


# --- one run --------------------------------------------------------------------------------------------


@dataclass
class RunSetup:
    """Everything a run sets up before its first step."""

    config: TrainConfig
    accelerator: Accelerator
    model: PromptClassifier
    train_examples: list[Example]
    dev_examples: list[Example]
    train_split: EncodedSplit
    dev_split: EncodedSplit
    select_split: EncodedSplit  # what the kept checkpoint is selected on: dev, or held-out training items
    train_features: RowFeatures | None
    dev_features: torch.Tensor | None
    select_features: torch.Tensor | None
    total_steps: int

    @property
    def holdout(self) -> bool:
        return self.config.select_on == "holdout"

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_split) / self.config.batch_size)


def prepare(config: TrainConfig, backbone: Backbone | None, data: tuple[list[Example], list[Example]] | None,
            task: Task | None = None) -> RunSetup:
    """Data, model and features; bad data fails here, before the slow part. ``data`` (train, dev) loaded already,
    of ``task`` (default: ``config.task``)."""
    set_seed(config.seed)
    if data is None:
        task, train_examples, dev_examples = load_task_and_data(config)
    else:
        task, (train_examples, dev_examples) = task or get_task(config.task), data
    select_examples = dev_examples
    if config.select_on == "holdout":
        train_examples, select_examples = split_holdout(
            train_examples, config.seed if config.holdout_seed is None else config.holdout_seed, config.holdout_max)
    accelerator = make_accelerator(config, backbone)
    backbone = backbone or load_backbone(config.backbone, accelerator.device)
    model = PromptClassifier(backbone, task, config.prompt, config.head, config.max_length)
    if config.init_prompt and is_peft_adapter(config.init_prompt):
        load_peft_prompt(model, config.init_prompt)
    elif config.init_prompt:
        model.load_prompt(config.init_prompt)
    train_split, dev_split = model.encode_examples(train_examples), model.encode_examples(dev_examples)
    holdout = config.select_on == "holdout"
    select_split = model.encode_examples(select_examples) if holdout else dev_split
    if model.needs_features:  # a backbone pass over every row before the first step (minutes on a large model)
        log.info("computing once the instance features DP's choices read: %d dev rows%s", dev_split.num_rows,
                 f" and {select_split.num_rows} held-out rows" if holdout else "")
    dev_features = split_features(model, dev_split)
    train_features = RowFeatures(model, train_split.num_rows) if model.needs_features else None
    select_features = split_features(model, select_split) if holdout else dev_features
    return RunSetup(config, accelerator, model, train_examples, dev_examples, train_split, dev_split, select_split,
                    train_features, dev_features, select_features, planned_steps(config, len(train_split)))


def evaluation_event(setup: RunSetup, selection: Selection, history: list[dict], step: int, last: bool,
                     started: float) -> TrainEvent:
    """Evaluate on the selection split (and on dev when tracked), offer it to the selection, record it."""
    config, model = setup.config, setup.model
    with setup.accelerator.autocast():
        evaluation = evaluate_with_choices(model, setup.select_split, config.eval_batch_size, setup.select_features,
                                           counterfactual=config.counterfactuals == "every_eval")
        watched = evaluate(model, setup.dev_split, config.eval_batch_size, setup.dev_features) \
            if setup.holdout and config.track_dev else None
    evaluation, watched = agreed(setup.accelerator, (evaluation, watched))
    selection.offer(model, step, evaluation, last)
    metrics, choices, _ = evaluation
    epoch = step / setup.steps_per_epoch
    history.append({"step": step, "epoch": epoch, **metrics, **({"choices": choices} if choices else {}),
                    **({"dev": watched} if watched else {})})
    return TrainEvent("eval", step, setup.total_steps, epoch, metrics=metrics, choices=choices or None,
                      elapsed_s=time.perf_counter() - started)


END_SHARE = 0.2  # of a time budget, kept for the end of a run that has work there (DP's forced candidates, dev once)


def training_seconds(setup: RunSetup) -> float | None:
    """Of ``time_budget_s``, which bounds the whole run (setup and the end included), the seconds training may run:
    all of it, less ``END_SHARE`` where the end has work of its own (said in the log)."""
    config = setup.config
    if config.time_budget_s is None:
        return None
    if not (setup.holdout or (setup.model.needs_features and config.counterfactuals == "end")):
        return config.time_budget_s
    seconds = config.time_budget_s * (1 - END_SHARE)
    log.info("time budget %.0f s: training stops by %.0f s, the end of the run takes the rest", config.time_budget_s,
             seconds)
    return seconds


def stop_reason(budget_s: float | None, cancel: threading.Event | None, elapsed: float) -> str:
    if cancel is not None and cancel.is_set():
        return "cancelled"
    if budget_s is not None and elapsed >= budget_s:
        return "time budget"
    return "finished"


def train(config: TrainConfig, backbone: Backbone | None = None, cancel: threading.Event | None = None,
          data: tuple[list[Example], list[Example]] | None = None, task: Task | None = None) -> Iterator[TrainEvent]:
    """Train and stream events; the last one (kind "done") carries the :class:`TrainResult`. ``data`` and ``task``:
    items loaded already (several runs on the same data), as ``prepare`` takes them. A time budget counts from here:
    the setup, training and the end (``training_seconds``)."""
    started = time.perf_counter()
    setup = prepare(config, backbone, data, task)
    model, accelerator, total_steps = setup.model, setup.accelerator, setup.total_steps
    eval_every = config.eval_every or setup.steps_per_epoch
    selection = Selection(math.ceil(config.select_from * total_steps), config.patience,
                          best_state=model.trainable_state())
    if selection.select_from_step:
        log.info("no checkpoint is kept before step %d of %d", selection.select_from_step, total_steps)
    optimizer = build_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps)
    model.prompt.schedule_run(total_steps * config.gradient_accumulation_steps)  # it counts forward passes
    objective, optimizer = accelerator.prepare(TrainingObjective(model), optimizer)
    shard = (accelerator.process_index, accelerator.num_processes)
    history: list[dict] = []
    step, seen, train_time, stopped, losses, eval_seconds = 0, 0, 0.0, "finished", [], None
    budget_s = training_seconds(setup)
    model.train()
    for batch in endless_batches(setup.train_split, config, model.backbone.tokenizer.pad_token_id, shard):
        step_start = time.perf_counter()
        batch = batch.to(accelerator.device)
        features = None if setup.train_features is None else setup.train_features(batch)
        with accelerator.accumulate(objective):
            loss = objective(batch, features)
            backward_and_step(accelerator, loss, optimizer, config.grad_clip)
        losses.append(loss.item())  # of the batches accumulated into the coming step
        seen += batch.num_items * accelerator.num_processes
        train_time += time.perf_counter() - step_start
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        step += 1
        loss_value, losses = sum(losses) / len(losses), []
        elapsed = time.perf_counter() - started
        left = math.inf if budget_s is None else max(0.0, budget_s - elapsed)
        eta = min((total_steps - step) * train_time / step, left)
        history.append({"step": step, "epoch": step / setup.steps_per_epoch, "loss": loss_value})
        yield TrainEvent("step", step, total_steps, step / setup.steps_per_epoch, loss=loss_value,
                         examples_per_s=seen / train_time, elapsed_s=elapsed, eta_s=eta)
        stopped = agreed(accelerator, stop_reason(budget_s, cancel, elapsed))
        last = step >= total_steps or stopped != "finished"
        if step % eval_every == 0 or last:
            model.eval()
            evaluation_started = time.perf_counter()
            evaluated = evaluation_event(setup, selection, history, step, last, started)
            eval_seconds = time.perf_counter() - evaluation_started  # what the end's forced candidates will cost
            yield evaluated
            model.train()
            if selection.out_of_patience and stopped == "finished":
                stopped, last = "patience", True
        if last:
            break
    result = finish(setup, selection, history, stopped, started, eval_seconds)
    yield TrainEvent("done", step, total_steps, step / setup.steps_per_epoch, metrics=result.dev_metrics,
                     examples_per_s=seen / max(train_time, 1e-9), elapsed_s=time.perf_counter() - started,
                     eta_s=0.0, result=result)


def affordable_items(setup: RunSetup, seconds_left: float, eval_seconds: float | None) -> int | None:
    """How many dev items (and held-out ones) the end of a run can try every candidate on in ``seconds_left``, at
    the cost the last evaluation measured (each item costs an evaluation per candidate)."""
    if eval_seconds is None:
        return None
    per_row = eval_seconds / max(1, setup.select_split.num_rows)
    candidates = sum(setup.model.prompt.sizes.values()) + (1 if setup.holdout else 0)
    rows_per_item = setup.dev_split.rows_per_item
    splits = 2 if setup.holdout else 1
    return max(0, int(seconds_left / (per_row * candidates * rows_per_item * splits)))


def score_kept(setup: RunSetup, selection: Selection, deadline: float | None = None,
               eval_seconds: float | None = None) -> tuple[dict, dict, list[int], dict | None, dict | None]:
    """The kept checkpoint's dev metrics, choices and predictions, its held-out choices and its refit summary:
    the end of a run, while the progress bar stands still (with counterfactuals, long; within a time budget, on as
    many dev items as the time left affords, none when it affords none)."""
    config, model = setup.config, setup.model
    if deadline is not None and config.counterfactuals == "end" and selection.best_choices:
        items = affordable_items(setup, deadline - time.perf_counter(), eval_seconds)
        if items is not None and items < min(config.counterfactual_items or len(setup.dev_split), len(setup.dev_split)):
            log.info("the time budget affords every candidate on %d dev items", items)
            config = setup.config = replace(config, counterfactual_items=items or None,
                                            counterfactuals="end" if items else "none")
    refit = None
    if model.prompt.refits_choices:
        with setup.accelerator.autocast():
            refit, refit_evaluation = refit_kept_choices(model, config, setup.train_examples, setup.select_split,
                                                         setup.select_features)
        if refit.kept:  # the selection split's figures are those of the refit choices
            selection.best_metrics, selection.best_choices, selection.best_predictions = refit_evaluation
    counterfactual = bool(selection.best_choices) and config.counterfactuals == "end"
    if setup.holdout:
        log.info("step %d kept; scoring it on dev (%d items)", selection.best_step, len(setup.dev_split))
    if counterfactual:
        limit = config.counterfactual_items
        items = "every item" if limit is None else f"the first {limit} items"
        log.info("forcing each candidate of %s, one at a time, on %s of dev%s", ", ".join(chosen_factors(model)),
                 items, " and of the held-out split" if setup.holdout else "")
    dev_metrics, dev_choices, dev_predictions = selection.kept
    holdout_choices = None
    with setup.accelerator.autocast():
        if setup.holdout:  # dev, once, for the kept checkpoint
            dev_metrics, dev_choices, dev_predictions = evaluate_at_end(model, setup.dev_split, config,
                                                                        setup.dev_features, counterfactual)
            holdout_choices = selection.best_choices
            if counterfactual:
                holdout_choices = evaluate_at_end(model, setup.select_split, config, setup.select_features, True)[1]
        elif counterfactual:
            dev_choices = evaluate_at_end(model, setup.dev_split, config, setup.dev_features, True)[1]
    return dev_metrics, dev_choices, dev_predictions, holdout_choices, refit.summary() if refit else None


def finish(setup: RunSetup, selection: Selection, history: list[dict], stopped: str, started: float | None = None,
           eval_seconds: float | None = None) -> TrainResult:
    """Back to the kept checkpoint, scored on dev with its 95 % interval, beside the majority class in the same
    units; within the time budget of a run ``started`` then, where it has one."""
    model = setup.model
    budget = setup.config.time_budget_s
    deadline = None if budget is None or started is None else started + budget
    model.load_state_dict(selection.best_state, strict=False)
    model.eval()
    dev_metrics, dev_choices, dev_predictions, holdout_choices, refit = score_kept(setup, selection, deadline,
                                                                                   eval_seconds)
    config, task, dev = setup.config, model.task, setup.dev_examples
    labels, groups = [e.label for e in dev], [e.group for e in dev]
    interval = None if not dev_predictions else \
        score_interval(task.metrics, dev_predictions, labels, groups, task.num_labels)
    guess = best_constant_guess(task, setup.train_examples)
    majority = compute_metrics(task.metrics, [guess] * len(dev), labels, groups, task.num_labels)
    tracked = [entry["dev"] for entry in history if "dev" in entry]
    return TrainResult(
        model=model, best_metrics=selection.best_metrics, best_step=selection.best_step, history=history,
        stopped_because=stopped, train_size=len(setup.train_split), dev_size=len(setup.dev_split),
        majority_baseline=majority_baseline(model.task, setup.train_examples, setup.dev_examples),
        truncated={"train": setup.train_split.truncated, "dev": setup.dev_split.truncated}, choices=dev_choices or None,
        dev_metrics=dev_metrics, selected_on=config.select_on,
        holdout_size=len(setup.select_split) if setup.holdout else 0, holdout_choices=holdout_choices or None,
        processes=setup.accelerator.num_processes, mixed_precision=setup.accelerator.mixed_precision,
        dev_selected_metrics=max(tracked, key=lambda m: m["score"], default=None if setup.holdout else dev_metrics),
        dev_predictions=dev_predictions or None, refit=refit, dev_interval=interval,
        majority_metrics={"label": task.label_names[guess], **majority},
    )


def run(config: TrainConfig, **kwargs) -> TrainResult:
    """Train to the end and return the result (no streaming)."""
    for event in train(config, **kwargs):
        if event.kind == "done":
            return event.result
    raise RuntimeError("training ended without a result")


if __name__ == "__main__":
    import sys

    from .cli import main

    sys.exit(main())
