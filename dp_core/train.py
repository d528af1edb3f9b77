"""Training and evaluation, as an iterator of events (for the app) and a CLI (for people).

    python -m dp_core.train --task rte --method ptv2 --data-dir ../shared/superglue --epochs 3

The loop: AdamW with separate learning rates for the prompt (or backbone) and the head, linear warm-up and
decay, gradient clipping, length-bucketed batches, evaluation every N steps and at the end, the best
checkpoint kept. It stops cleanly on a wall-clock budget or when ``cancel`` is set from outside.

Hugging Face Accelerate places it on the device and runs it with mixed precision, gradient accumulation and data
parallelism over several processes (every process takes its share of each batch; on CPU add ``--device cpu``):

    accelerate launch --multi_gpu --num_processes 2 -m dp_core.train --task cb --data-dir ../shared/superglue
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, set_seed
from torch import nn
from transformers import get_linear_schedule_with_warmup

from .backbone import DEFAULT_BACKBONE, Backbone, BackboneError, load_backbone, resolve_device
from .choices import chosen_factors, predict_split, split_choice_statistics
from .dynamic import ESTIMATORS, FEATURE_NORMS
from .data import Batch, EncodedSplit, iterate_batches
from .metrics import compute_metrics
from .model import HEADS, POOLINGS, HeadConfig, PromptClassifier
from .methods import METHODS, method_config
from .prompts import PLACES, MethodConfig, PTuningV2Config
from .refit import RefitConfig, RefitResult, refit_choices
from .tasks import (DataError, Example, Task, get_task, load_examples, load_fewglue, majority_baseline, sample_k_shot,
                    split_holdout)


COUNTERFACTUAL_WHEN = ("none", "end", "every_eval")
SELECT_ON = ("dev", "holdout")
PRECISIONS = ("auto", "no", "bf16", "fp16")


log = logging.getLogger("dp_core.train")  # by name: under `python -m` __name__ is "__main__"; the CLI shows INFO


@dataclass
class TrainConfig:
    task: str = "rte"
    prompt: MethodConfig = field(default_factory=PTuningV2Config)
    head: HeadConfig = field(default_factory=HeadConfig)
    backbone: str = DEFAULT_BACKBONE
    data_dir: str | None = None  # local SuperGLUE folder; None: $DP_SUPERGLUE_DIR, else the Hub
    k_shot: int | None = None  # k training items drawn with the seed
    fewglue: bool = False  # the standard 32-example FewGLUE training set
    dev_limit: int | None = None  # evaluate on the first N dev items only (quick runs)
    epochs: float = 3.0
    max_steps: int | None = None  # overrides epochs
    time_budget_s: float | None = None  # stop cleanly after this many seconds of training
    batch_size: int = 16
    lr: float = 1e-2  # prompt parameters (fine-tuning: the backbone, use ~2e-5)
    lr_head: float = 1e-2
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06
    grad_clip: float = 1.0
    eval_every: int | None = None  # steps between dev evaluations; None: once per epoch
    eval_batch_size: int = 64
    max_length: int = 128
    seed: int = 0
    device: str = "auto"
    init_prompt: str | None = None  # checkpoint folder whose prompt module starts this run (multitask stage two)
    # DP: counterfactual scores of its choices (own vs each forced candidate vs oracle) on dev, at (candidates + 1)x
    # an evaluation's cost: "none", "end" (the kept checkpoint) or "every_eval". Cheap statistics come every eval.
    counterfactuals: str = "end"
    # ... at the end, on the first this many items of dev and of the held-out split (whole MultiRC questions); None:
    # all. The cheap statistics and the scores stay over every item. For backbones whose every candidate pass costs
    # hours on CPU (SmolLM2 on MultiRC at max length 256).
    counterfactual_items: int | None = None
    # What the kept checkpoint is selected (and training stopped early) on. "holdout": a seeded 10 % of the training
    # items (at least 32, at most ``holdout_max``; few-shot sets: 8) kept out of training, dev scored once at the
    # end, for the kept checkpoint; "dev": the best dev evaluation (flatters the score, as the references do).
    select_on: str = "dev"
    holdout_max: int | None = None
    # The held-out split is drawn with this seed (None: ``seed``), so runs of several seeds can be scored on the
    # same items and the best of them kept by its held-out score, never by dev.
    holdout_seed: int | None = None
    # Selected on holdout, also score dev at every evaluation (never used to select): what dev selection would
    # have reported from the same run, to show how much looking at dev flatters a score.
    track_dev: bool = False
    patience: int | None = None  # stop after this many evaluations without a better selection score
    # Share of the planned steps before which evaluations are recorded but no checkpoint is kept and patience does
    # not count (as Keras' ``start_from_epoch``). On 32-40 held-out items the first evaluations often win by one
    # item, and a DP kept there has a choice network that has hardly trained (docs/dp_learning.md). A run that
    # ends before then (time budget, cancelled) keeps its last evaluation if nothing was kept before.
    select_from: float = 0.0
    mixed_precision: str = "auto"  # "auto": bf16 on a CUDA GPU that has it, else fp16 there; none on CPU
    gradient_accumulation_steps: int = 1  # batches whose gradients add up to one optimizer step

    def __post_init__(self):
        if self.counterfactuals not in COUNTERFACTUAL_WHEN:
            raise ValueError(f"counterfactuals must be one of {COUNTERFACTUAL_WHEN}, got {self.counterfactuals!r}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {SELECT_ON}, got {self.select_on!r}")
        if self.counterfactual_items is not None and self.counterfactual_items < 1:
            raise ValueError(f"counterfactual_items must be at least 1, got {self.counterfactual_items}")
        if not 0.0 <= self.select_from < 1.0:
            raise ValueError(f"select_from is a share of the run, from 0 up to (not including) 1, "
                             f"got {self.select_from}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience counts evaluations and must be at least 1, got {self.patience}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be at least 1, got {self.gradient_accumulation_steps}")

    def to_dict(self) -> dict:
        record = asdict(self)
        record["prompt"] = self.prompt.to_dict()
        return record


@dataclass
class TrainEvent:
    """One streamed update. ``kind``: "step", "eval" or "done"."""

    kind: str
    step: int
    total_steps: int
    epoch: float
    loss: float | None = None
    metrics: dict[str, float] | None = None
    choices: dict[str, dict] | None = None  # DP, "eval" events: per factor, ChoiceStatistics.summary() on dev
    examples_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    result: "TrainResult | None" = None


@dataclass
class TrainResult:
    model: PromptClassifier
    best_metrics: dict[str, float]  # the kept checkpoint on the split it was selected on (``selected_on``)
    best_step: int
    history: list[dict]  # evaluations are on the selection split (with ``track_dev``, "dev" too)
    stopped_because: str  # "finished", "time budget", "cancelled", "patience"
    train_size: int
    dev_size: int
    majority_baseline: float
    truncated: dict[str, int]
    choices: dict[str, dict] | None = None  # DP: statistics of the kept checkpoint's choices on dev
    dev_metrics: dict[str, float] | None = None  # the kept checkpoint on dev (== best_metrics when selected on dev)
    selected_on: str = "dev"
    holdout_size: int = 0
    holdout_choices: dict[str, dict] | None = None  # DP, selected on holdout: its choices there (best single pick)
    processes: int = 1  # data-parallel processes that shared each batch
    mixed_precision: str = "no"  # what the run used ("no", "bf16", "fp16")
    dev_selected_metrics: dict[str, float] | None = None  # ``track_dev``: the best dev evaluation of the run
    dev_predictions: list[int] | None = None  # the kept checkpoint's labels on dev, in item order (paired tests)
    refit: dict | None = None  # DP with ``refit_choices``: ``RefitResult.summary()``


def load_task_data(config: TrainConfig) -> tuple[list[Example], list[Example]]:
    if config.fewglue:
        train = load_fewglue(config.task, config.data_dir)
    else:
        train = load_examples(config.task, "train", config.data_dir)
    if config.k_shot:
        train = sample_k_shot(train, config.k_shot, config.seed)
    dev = load_examples(config.task, "val", config.data_dir)
    if config.dev_limit:
        dev = dev[: config.dev_limit]
    return train, dev


@torch.no_grad()
def split_features(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64) -> torch.Tensor | None:
    """Instance features of every row, computed once: the backbone is frozen, so they never change."""
    if not model.needs_features:
        return None
    pad = model.backbone.tokenizer.pad_token_id
    features = torch.zeros(split.num_rows, model.backbone.hidden_size, device=model.backbone.device)
    for batch in iterate_batches(split, batch_size, pad, shuffle=False):
        batch = batch.to(model.backbone.device)
        features[batch.rows] = model.instance_features(batch)
    return features


class RowFeatures:
    """Instance features of a training split, each row computed the first time a batch holds it: the backbone is
    frozen, so they never change, and a short run on a large set (MultiRC: 27k rows) reads a small part of it."""

    def __init__(self, model: PromptClassifier, num_rows: int):
        self.model = model
        device = model.backbone.device
        self.features = torch.zeros(num_rows, model.backbone.hidden_size, device=device)
        self.known = torch.zeros(num_rows, dtype=torch.bool, device=device)

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        if not bool(self.known[batch.rows].all()):
            self.features[batch.rows] = self.model.instance_features(batch)
            self.known[batch.rows] = True
        return self.features[batch.rows]


def predict_proba(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64,
                  features: torch.Tensor | None = None) -> torch.Tensor:
    """Class probabilities (items, labels) in the split's item order."""
    return predict_split(model, split, batch_size, features).class_probs


def split_metrics(task: Task, class_probs: torch.Tensor, split: EncodedSplit) -> dict[str, float]:
    predictions = class_probs.argmax(-1).tolist()
    return compute_metrics(task.metrics, predictions, split.labels, split.groups, task.num_labels)


def evaluate(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64,
             features: torch.Tensor | None = None) -> dict[str, float]:
    return split_metrics(model.task, predict_proba(model, split, batch_size, features), split)


def evaluate_with_choices(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64,
                          features: torch.Tensor | None = None, counterfactual: bool = False
                          ) -> tuple[dict[str, float], dict[str, dict], list[int]]:
    """Metrics, for DP how decided its choices are over the split (one pass; counterfactual scores on request, at
    (candidates + 1)x the cost), and the predicted labels in the split's item order."""
    factors = tuple(chosen_factors(model)) if counterfactual else ()
    predictions = predict_split(model, split, batch_size, features, factors)
    choices = split_choice_statistics(model, split, counterfactual=counterfactual, predictions=predictions)
    return split_metrics(model.task, predictions.class_probs, split), \
        {factor: stats.summary() for factor, stats in choices.items()}, predictions.class_probs.argmax(-1).tolist()


COUNTERFACTUAL_KEYS = ("own_score", "single_scores", "oracle_score", "changes_prediction", "best_single")


def evaluate_at_end(model: PromptClassifier, split: EncodedSplit, config: TrainConfig,
                    features: torch.Tensor | None, counterfactual: bool
                    ) -> tuple[dict[str, float], dict[str, dict], list[int]]:
    """``evaluate_with_choices`` for the kept checkpoint, with the counterfactual figures from the split's first
    ``config.counterfactual_items`` items where that is fewer than all (recorded as ``counterfactual_items``)."""
    limit = config.counterfactual_items
    if not counterfactual or limit is None or limit >= len(split):
        return evaluate_with_choices(model, split, config.eval_batch_size, features, counterfactual=counterfactual)
    metrics, choices, predicted = evaluate_with_choices(model, split, config.eval_batch_size, features)
    head = split.head(limit)
    head_choices = evaluate_with_choices(model, head, config.eval_batch_size,
                                         None if features is None else features[: head.num_rows],
                                         counterfactual=True)[1]
    for factor, summary in choices.items():
        summary.update({key: head_choices[factor][key] for key in COUNTERFACTUAL_KEYS}, counterfactual_items=len(head))
    return metrics, choices, predicted


def refit_kept_choices(model: PromptClassifier, config: TrainConfig, train_examples: list[Example],
                       select_split: EncodedSplit, select_features: torch.Tensor
                       ) -> tuple[RefitResult, tuple[dict[str, float], dict[str, dict], list[int]] | None]:
    """DP's second time scale on the kept checkpoint: a seeded sample of the training items to fit, the selection
    split to stop and decide on; with the selection split's metrics and choice statistics if the refit was kept."""
    refit_config = RefitConfig()
    fit_examples = random.Random(config.seed).sample(train_examples, min(refit_config.max_items, len(train_examples)))
    log.info("refitting the kept checkpoint's choices to its frozen prompt on %d training items (the held-out split "
             "decides)", len(fit_examples))
    fit_split = model.encode_examples(fit_examples)
    result = refit_choices(model, fit_split, split_features(model, fit_split), select_split, select_features,
                           refit_config, config.eval_batch_size)
    log.info("refit of %s %s after %d steps: held-out expected loss %.4f -> %.4f, held-out score %.4f -> %.4f",
             ", ".join(result.factors), "kept" if result.kept else "not kept (the trained choices stay)",
             result.steps, *result.holdout_loss, *result.holdout_score)
    if not result.kept:
        return result, None
    return result, evaluate_with_choices(model, select_split, config.eval_batch_size, select_features)


def parameter_groups(model: PromptClassifier, config: TrainConfig) -> list[dict]:
    """Head, prompt (or backbone) and, for DP with its own ``choice_lr``, the choice network."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    choice_lr = model.prompt.choice_lr
    choice = model.prompt.choice_parameters() if choice_lr is not None else []
    apart = {id(p) for p in head + choice}
    method = [p for p in model.parameters() if p.requires_grad and id(p) not in apart]
    groups = [{"params": head, "lr": config.lr_head}, {"params": method, "lr": config.lr},
              {"params": choice, "lr": choice_lr}]
    return [group for group in groups if group["params"]]


def build_optimizer(model: PromptClassifier, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameter_groups(model, config), weight_decay=config.weight_decay)


def endless_batches(split: EncodedSplit, config: TrainConfig, pad: int, shard: tuple[int, int] = (0, 1)
                    ) -> Iterator[Batch]:
    """Shuffled training batches, epoch after epoch (epoch e shuffled with seed + e), for as long as asked;
    ``shard``: (process index, processes), this process's share of each."""
    epoch = 0
    while True:
        yield from iterate_batches(split, config.batch_size, pad, shuffle=True, seed=config.seed + epoch, shard=shard)
        epoch += 1


class TrainingObjective(nn.Module):
    """The training loss as a module's forward pass: what Accelerate prepares, so data parallelism syncs its
    gradients and mixed precision wraps it. Evaluation calls the classifier itself."""

    def __init__(self, model: PromptClassifier):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, features: torch.Tensor | None) -> torch.Tensor:
        return self.model.training_loss(batch, features)


def make_accelerator(config: TrainConfig, backbone: Backbone | None = None) -> Accelerator:
    """Device (the given backbone's, else ``config.device``), mixed precision and accumulation, for this process.
    Accelerate keeps one state per process: every run in a process must ask for the same device and precision."""
    cpu = (backbone.device if backbone is not None else resolve_device(config.device)).type != "cuda"
    precision = config.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    # DP's choice network and pool do not all get gradients at every step (e.g. hard pool choices).
    return Accelerator(cpu=cpu, mixed_precision=precision,
                       gradient_accumulation_steps=config.gradient_accumulation_steps,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def agreed(accelerator: Accelerator, value):
    """The main process's ``value`` in every process, so all take the same decisions (stop, keep a checkpoint)."""
    if accelerator.num_processes == 1:
        return value
    box = [value]
    broadcast_object_list(box)
    return box[0]


def backward_and_step(accelerator: Accelerator, loss: torch.Tensor, optimizer, grad_clip: float) -> None:
    """Backward, clip the trained parameters' gradient norm once the (accumulated) step is complete, step the
    prepared optimizer (Accelerate skips it, and the zeroing, until then)."""
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def planned_steps(config: TrainConfig, train_items: int) -> int:
    """Optimizer steps a run plans (what its schedules and ``select_from`` count against), however it then stops."""
    return config.max_steps or max(1, math.ceil(config.epochs * math.ceil(train_items / config.batch_size)))


def train(
    config: TrainConfig,
    backbone: Backbone | None = None,
    cancel: threading.Event | None = None,
    data: tuple[list[Example], list[Example]] | None = None,
) -> Iterator[TrainEvent]:
    """Train and stream events; the last one (kind "done") carries the :class:`TrainResult`."""
    set_seed(config.seed)
    task = get_task(config.task)
    train_examples, dev_examples = data or load_task_data(config)  # bad data fails before the slow part
    select_examples = dev_examples
    if config.select_on == "holdout":
        train_examples, select_examples = split_holdout(
            train_examples, config.seed if config.holdout_seed is None else config.holdout_seed, config.holdout_max)
    accelerator = make_accelerator(config, backbone)
    backbone = backbone or load_backbone(config.backbone, accelerator.device)
    model = PromptClassifier(backbone, task, config.prompt, config.head, config.max_length)
    if config.init_prompt:
        model.load_prompt(config.init_prompt)
    pad = backbone.tokenizer.pad_token_id
    train_split, dev_split = model.encode_examples(train_examples), model.encode_examples(dev_examples)
    train_features = RowFeatures(model, train_split.num_rows) if model.needs_features else None
    holdout = config.select_on == "holdout"
    tracking = holdout and config.track_dev
    select_split = model.encode_examples(select_examples) if holdout else dev_split
    if model.needs_features:  # a backbone pass over every row before the first step (minutes on a large model)
        log.info("computing once the instance features DP's choices read: %d dev rows%s", dev_split.num_rows,
                 f" and {select_split.num_rows} held-out rows" if holdout else "")
    dev_features = split_features(model, dev_split)
    select_features = split_features(model, select_split) if holdout else dev_features

    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = planned_steps(config, len(train_split))
    eval_every = config.eval_every or steps_per_epoch
    select_from_step = math.ceil(config.select_from * total_steps)
    if select_from_step:
        log.info("no checkpoint is kept before step %d of %d", select_from_step, total_steps)
    optimizer = build_optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    model.prompt.schedule_run(total_steps * config.gradient_accumulation_steps)  # it counts forward passes
    objective, optimizer = accelerator.prepare(TrainingObjective(model), optimizer)
    shard = (accelerator.process_index, accelerator.num_processes)

    history: list[dict] = []
    best_metrics, best_state, best_step, best_choices, best_predictions = None, model.trainable_state(), 0, {}, []
    step, seen, train_time, stopped, evals_since_best = 0, 0, 0.0, "finished", 0
    started = time.perf_counter()

    def run_eval() -> TrainEvent:
        nonlocal best_metrics, best_state, best_step, best_choices, best_predictions, evals_since_best
        with accelerator.autocast():
            metrics, choices, predictions = evaluate_with_choices(
                model, select_split, config.eval_batch_size, select_features,
                counterfactual=config.counterfactuals == "every_eval")
            watched = evaluate(model, dev_split, config.eval_batch_size, dev_features) if tracking else None
        metrics, choices, watched = agreed(accelerator, (metrics, choices, watched))
        last = step >= total_steps or stopped != "finished"
        eligible = step >= select_from_step or (last and best_metrics is None)
        evals_since_best += eligible
        if eligible and (best_metrics is None or metrics["score"] > best_metrics["score"]):
            best_metrics, best_state, best_step, best_choices = metrics, model.trainable_state(), step, choices
            best_predictions = predictions
            evals_since_best = 0
        history.append({"step": step, "epoch": step / steps_per_epoch, **metrics,
                        **({"choices": choices} if choices else {}), **({"dev": watched} if watched else {})})
        return TrainEvent("eval", step, total_steps, step / steps_per_epoch, metrics=metrics,
                          choices=choices or None, elapsed_s=time.perf_counter() - started)

    model.train()
    losses: list[float] = []  # of the batches accumulated into the coming step
    for batch in endless_batches(train_split, config, pad, shard):
        step_start = time.perf_counter()
        batch = batch.to(accelerator.device)
        features = None if train_features is None else train_features(batch)
        with accelerator.accumulate(objective):
            loss = objective(batch, features)
            backward_and_step(accelerator, loss, optimizer, config.grad_clip)
        losses.append(loss.item())
        seen += batch.num_items * accelerator.num_processes
        train_time += time.perf_counter() - step_start
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        step += 1
        loss_value, losses = sum(losses) / len(losses), []
        elapsed = time.perf_counter() - started
        eta = (total_steps - step) * train_time / step
        if config.time_budget_s is not None:
            eta = min(eta, max(0.0, config.time_budget_s - elapsed))
        history.append({"step": step, "epoch": step / steps_per_epoch, "loss": loss_value})
        yield TrainEvent("step", step, total_steps, step / steps_per_epoch, loss=loss_value,
                         examples_per_s=seen / train_time, elapsed_s=elapsed, eta_s=eta)
        if cancel is not None and cancel.is_set():
            stopped = "cancelled"
        elif config.time_budget_s is not None and elapsed >= config.time_budget_s:
            stopped = "time budget"
        stopped = agreed(accelerator, stopped)
        if step % eval_every == 0 or step >= total_steps or stopped != "finished":
            model.eval()
            yield run_eval()
            model.train()
            if config.patience and evals_since_best >= config.patience and stopped == "finished":
                stopped = "patience"
        if step >= total_steps or stopped != "finished":
            break

    model.load_state_dict(best_state, strict=False)
    model.eval()
    refit = None
    if model.prompt.refits_choices:
        with accelerator.autocast():
            refit, refit_evaluation = refit_kept_choices(model, config, train_examples, select_split,
                                                         select_features)
        if refit.kept:  # the selection split's figures are those of the refit choices
            best_metrics, best_choices, best_predictions = refit_evaluation
    counterfactual = bool(best_choices) and config.counterfactuals == "end"
    if holdout:  # what the end of a run does while the progress bar stands still (with counterfactuals, long)
        log.info("step %d kept; scoring it on dev (%d items)", best_step, len(dev_split))
    if counterfactual:
        limit = config.counterfactual_items
        items = "every item" if limit is None else f"the first {limit} items"
        log.info("forcing each candidate of %s, one at a time, on %s of dev%s", ", ".join(chosen_factors(model)),
                 items, " and of the held-out split" if holdout else "")
    dev_metrics, dev_choices, dev_predictions, holdout_choices = best_metrics, best_choices, best_predictions, None
    with accelerator.autocast():
        if holdout:  # dev, once, for the kept checkpoint
            dev_metrics, dev_choices, dev_predictions = evaluate_at_end(model, dev_split, config, dev_features,
                                                                        counterfactual)
            holdout_choices = best_choices
            if counterfactual:
                holdout_choices = evaluate_at_end(model, select_split, config, select_features, True)[1]
        elif counterfactual:
            dev_choices = evaluate_at_end(model, dev_split, config, dev_features, True)[1]
    result = TrainResult(
        model=model, best_metrics=best_metrics, best_step=best_step, history=history, stopped_because=stopped,
        train_size=len(train_split), dev_size=len(dev_split),
        majority_baseline=majority_baseline(task, train_examples, dev_examples),
        truncated={"train": train_split.truncated, "dev": dev_split.truncated}, choices=dev_choices or None,
        dev_metrics=dev_metrics, selected_on=config.select_on, holdout_size=len(select_split) if holdout else 0,
        holdout_choices=holdout_choices or None, processes=accelerator.num_processes,
        mixed_precision=accelerator.mixed_precision,
        dev_selected_metrics=max((entry["dev"] for entry in history if "dev" in entry), key=lambda m: m["score"],
                                 default=dev_metrics if not holdout else None),
        dev_predictions=dev_predictions or None, refit=refit.summary() if refit else None,
    )
    yield TrainEvent("done", step, total_steps, step / steps_per_epoch, metrics=dev_metrics,
                     examples_per_s=seen / max(train_time, 1e-9), elapsed_s=time.perf_counter() - started,
                     eta_s=0.0, result=result)


def train_shared_prompt(config: TrainConfig, tasks: list[str], steps: int, backbone: Backbone | None = None,
                        on_step: Callable[[int, str, float], None] | None = None) -> dict[str, PromptClassifier]:
    """Multitask regime, stage one: one prompt module (prompts and DP's instance network) trained on batches of
    several tasks in turn, each task with its own head. Returns a model per task, all sharing that module;
    stage two continues per task from it (``TrainConfig.init_prompt``)."""
    if config.prompt.trains_backbone:
        raise ValueError("the multitask regime shares a prompt; fine-tuning has none to share")
    set_seed(config.seed)
    accelerator = make_accelerator(config, backbone)  # one process; its device and mixed precision
    backbone = backbone or load_backbone(config.backbone, accelerator.device)
    pad = backbone.tokenizer.pad_token_id
    models, splits, features, shared = {}, {}, {}, None
    for name in tasks:
        train_examples, _ = load_task_data(replace(config, task=name))
        model = PromptClassifier(backbone, name, config.prompt, config.head, config.max_length)
        if shared is None:
            shared = model.prompt
        model.prompt = shared
        models[name] = model.train()
        splits[name] = model.encode_examples(train_examples)
        features[name] = RowFeatures(model, splits[name].num_rows) if model.needs_features else None
    heads = [p for model in models.values() for p in model.head.parameters()]
    choice_lr = shared.choice_lr
    choice = shared.choice_parameters() if choice_lr is not None else []
    prompt = [p for p in shared.parameters() if all(p is not c for c in choice)]
    groups = [{"params": heads, "lr": config.lr_head}, {"params": prompt, "lr": config.lr},
              {"params": choice, "lr": choice_lr}]
    optimizer = torch.optim.AdamW([group for group in groups if group["params"]], weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    optimizer = accelerator.prepare(optimizer)
    shared.schedule_run(steps)

    streams = {name: endless_batches(splits[name], config, pad) for name in tasks}
    for step in range(1, steps + 1):
        name = tasks[(step - 1) % len(tasks)]
        batch = next(streams[name]).to(accelerator.device)
        task_features = None if features[name] is None else features[name](batch)
        with accelerator.autocast():
            loss = models[name].training_loss(batch, task_features)
        backward_and_step(accelerator, loss, optimizer, config.grad_clip)
        scheduler.step()
        if on_step is not None:
            on_step(step, name, loss.item())
    for model in models.values():
        model.eval()
    return models


def run(config: TrainConfig, **kwargs) -> TrainResult:
    """Train to the end and return the result (no streaming)."""
    for event in train(config, **kwargs):
        if event.kind == "done":
            return event.result
    raise RuntimeError("training ended without a result")


# --- CLI -----------------------------------------------------------------------------------------------


def parse_layers(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    first, _, last = text.partition(":")
    return int(first), int(last)


def describe_choice(factor: str, stats: dict) -> str:
    """One factor's choices on the evaluation line. A place with a chosen length is also told over layouts: every
    place past the row's length puts all its tokens after the input, so 17 places can be fewer distinct layouts."""
    text = f"{factor} commitment {stats['commitment']:.2f} collapse {stats['collapse']:.2f}"
    if stats.get("layout_commitment") is None:
        return text
    layouts = stats.get("layout_counts")
    collapse = "" if not layouts else f", collapse {max(layouts) / max(1, sum(layouts)):.2f}"
    return (text + f" (over layouts: commitment {stats['layout_commitment']:.2f}, no preference "
            f"{stats['layout_no_preference']:.2f}{collapse})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dp_core.train", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--task", default="rte", help="boolq, cb, copa, rte, wic, wsc, multirc")
    add("--method", default="ptv2", choices=list(METHODS))
    add("--backbone", default=DEFAULT_BACKBONE, help="Hub id or folder (default: the bundled all-MiniLM-L6-v2)")
    add("--data-dir", default=None, help="local SuperGLUE folder (default: $DP_SUPERGLUE_DIR, else the Hub)")
    add("--output-dir", default=None, help="where metrics.json and the checkpoint go")
    add("--k-shot", type=int, default=None)
    add("--fewglue", action="store_true", help="train on the 32-example FewGLUE set")
    add("--dev-limit", type=int, default=None)
    add("--epochs", type=float, default=3.0)
    add("--max-steps", type=int, default=None)
    add("--time-budget", type=float, default=None, help="seconds")
    add("--batch-size", type=int, default=16)
    add("--lr", type=float, default=1e-2)
    add("--lr-head", type=float, default=1e-2)
    add("--weight-decay", type=float, default=0.0)
    add("--warmup-ratio", type=float, default=0.06)
    add("--eval-every", type=int, default=None)
    add("--max-length", type=int, default=128)
    add("--seed", type=int, default=0)
    add("--device", default="auto")
    add("--pooling", default=None, choices=POOLINGS,
        help="what the linear head reads (default: [CLS] in encoders, the last token in decoders, the mean in T5)")
    add("--head", default="linear", choices=HEADS,
        help="linear: a trained Linear; verbalizer: the backbone's LM head scores each label's word")
    add("--no-backbone-dropout", dest="backbone_dropout", action="store_false",
        help="no dropout inside the frozen encoder while training")
    add("--head-dropout", type=float, default=0.1, help="dropout before the linear head")
    add("--num-tokens", type=int, default=16)
    add("--layers", default=None, help="ptv2: prompt only layers FIRST:LAST (e.g. 3:6)")
    add("--reparameterize", action="store_true", help="ptv2: MLP prefix encoder")
    add("--prompt-dropout", type=float, default=None)
    add("--prompt-init", default=None, choices=["vocab", "random"], help="prompt_tuning")
    add("--place", default=None, choices=list(PLACES), help="prompt_tuning: a prefix (before, default) or a suffix")
    add("--prompt-encoder", default=None, choices=["lstm", "mlp"], help="ptv1")
    add("--factors", default=None, help="dp: comma list of position,length,pool (default position)")
    add("--level", default=None, choices=["task", "instance"], help="dp: one choice per task or per instance")
    add("--where", default=None, choices=["input", "deep", "both"], help="dp: input-level tokens or deep prompts")
    add("--pool-size", type=int, default=None, help="dp: prompts in the pool")
    add("--pool-gumbel", action="store_true", help="dp: hard one-hot pool choice instead of a softmax mix")
    add("--estimator", default=None, choices=list(ESTIMATORS),
        help="dp: how choices learn (straight_through: the reference's gradient; exact: every candidate's loss for "
             "--exact-items items per batch)")
    add("--exact-items", type=int, default=None, help="dp, exact estimator: items per batch whose candidates are tried")
    add("--tau-start", type=float, default=None)
    add("--tau-min", type=float, default=None)
    add("--tau-rate", type=float, default=None)
    add("--tau-schedule", default=None, choices=["run", "reference", "exponential"],
        help="dp: run (tau_start to tau_min over this run), reference (its per-step rule), exponential")
    add("--feature-norm", default=None, choices=list(FEATURE_NORMS),
        help="dp: what the choice network reads: none (raw features, the reference), layer (LayerNorm), unit (default)")
    add("--choice-lr", type=float, default=None, help="dp: the choice network's learning rate (default: --lr)")
    add("--samples", type=int, default=None, help="dp: layouts sampled per item (> 1: leave-one-out baseline)")
    add("--entropy-bonus", type=float, default=None, help="dp: choice entropy weight, annealed to 0 over the run")
    add("--choice-warmup", type=float, default=None, help="dp: share of the run with random layouts first")
    add("--place-given-length", action="store_true",
        help="dp with position and length: draw the place given the drawn length, among its l + 1 distinct layouts")
    add("--refit-choices", action="store_true",
        help="dp: once the checkpoint is kept, refit its position and length choices to the frozen prompt's exact "
             "expected loss (kept only if the selection split confirms)")
    add("--multitask", default=None, metavar="TASKS",
        help="first train the prompt (and DP's network) shared across these tasks, e.g. cb,rte,copa; then --task")
    add("--multitask-steps", type=int, default=200, help="steps of the shared stage (tasks take turns)")
    add("--init-prompt", default=None, metavar="DIR", help="start from the prompt of this checkpoint folder")
    add("--counterfactuals", default="end", choices=COUNTERFACTUAL_WHEN,
        help="dp: score every forced candidate on dev (own vs best single vs oracle) at the end, every eval, or never")
    add("--counterfactual-items", type=int, default=None,
        help="dp: at the end, score the forced candidates on the first N items of dev and of the held-out split only")
    add("--select-on", default="dev", choices=SELECT_ON,
        help="keep the checkpoint that scores best on dev (flattering) or on held-out training items (10 %%, at "
             "least 32; few-shot: 8), dev then scored once")
    add("--holdout-max", type=int, default=None, help="at most this many held-out items (their evaluations cost time)")
    add("--holdout-seed", type=int, default=None,
        help="draw the held-out split with this seed instead of --seed (runs of several seeds on the same items)")
    add("--patience", type=int, default=None, help="stop after this many evaluations without a better score")
    add("--select-from", type=float, default=0.0, metavar="SHARE",
        help="keep no checkpoint from the first SHARE of the planned steps (e.g. 0.25), and start counting patience "
             "there: early evaluations on few held-out items win by chance")
    add("--track-dev", action="store_true",
        help="with --select-on holdout: score dev at every evaluation too (never to select), so metrics.json shows "
             "what dev selection would have reported")
    add("--mixed-precision", default="auto", choices=PRECISIONS,
        help="auto: bf16 on a CUDA GPU that has it (else fp16), none on CPU")
    add("--gradient-accumulation-steps", type=int, default=1, help="batches per optimizer step")
    add("--push-to-hub", default=None, metavar="REPO_ID")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    prompt = method_config(args.method, num_tokens=args.num_tokens, layers=parse_layers(args.layers),
                           reparameterize=args.reparameterize or None, prompt_dropout=args.prompt_dropout,
                           init=args.prompt_init, encoder=args.prompt_encoder, place=args.place,
                           factors=tuple(args.factors.split(",")) if args.factors else None, level=args.level,
                           where=args.where, pool_size=args.pool_size, pool_gumbel=args.pool_gumbel or None,
                           tau_start=args.tau_start, tau_min=args.tau_min, tau_rate=args.tau_rate,
                           tau_schedule=args.tau_schedule, estimator=args.estimator, feature_norm=args.feature_norm,
                           choice_lr=args.choice_lr, samples=args.samples, entropy_bonus=args.entropy_bonus,
                           choice_warmup=args.choice_warmup, exact_items=args.exact_items,
                           refit_choices=args.refit_choices or None,
                           place_given_length=args.place_given_length or None)
    return TrainConfig(
        task=args.task, prompt=prompt,
        head=HeadConfig(pooling=args.pooling, dropout=args.head_dropout, backbone_dropout=args.backbone_dropout,
                        kind=args.head),
        backbone=args.backbone, data_dir=args.data_dir, k_shot=args.k_shot, fewglue=args.fewglue,
        dev_limit=args.dev_limit, epochs=args.epochs, max_steps=args.max_steps, time_budget_s=args.time_budget,
        batch_size=args.batch_size, lr=args.lr, lr_head=args.lr_head, weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio, eval_every=args.eval_every, max_length=args.max_length, seed=args.seed,
        device=args.device, init_prompt=args.init_prompt, counterfactuals=args.counterfactuals,
        counterfactual_items=args.counterfactual_items, select_on=args.select_on, holdout_max=args.holdout_max,
        holdout_seed=args.holdout_seed, select_from=args.select_from, patience=args.patience, track_dev=args.track_dev,
        mixed_precision=args.mixed_precision, gradient_accumulation_steps=args.gradient_accumulation_steps,
    )


def run_shared_stage(config: TrainConfig, tasks: list[str], steps: int, folder: Path) -> Path:
    """The CLI's multitask stage one, with a progress bar; the shared prompt is saved as a checkpoint folder."""
    from tqdm.auto import tqdm

    with tqdm(total=steps, desc=f"shared {config.prompt.method} on {','.join(tasks)}", unit="step") as progress:
        def on_step(step: int, task: str, loss: float) -> None:
            progress.update(1)
            progress.set_postfix(task=task, loss=f"{loss:.3f}")

        models = train_shared_prompt(config, tasks, steps, on_step=on_step)
    return models[tasks[0]].save_pretrained(folder, extra={"multitask": {"tasks": tasks, "steps": steps}})


def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        get_task(config.task)
        if args.multitask:
            tasks = [get_task(name).name for name in args.multitask.split(",")]
            folder = Path(args.output_dir or tempfile.mkdtemp(prefix="dp_shared_")) / "shared_prompt"
            config = replace(config, init_prompt=str(run_shared_stage(config, tasks, args.multitask_steps, folder)))
            print(f"shared prompt saved to {folder}; continuing on {config.task}", file=sys.stderr)
        # Under `accelerate launch` one process speaks and saves. (Asked with the run's device: Accelerate's state
        # is made once per process, and without cpu=True it finds no GPU and no processes beside it.)
        main_process = PartialState(cpu=resolve_device(config.device).type != "cuda").is_main_process
        progress = None
        log.setLevel(logging.INFO if main_process else logging.WARNING)  # train()'s lines on the end of a run
        with logging_redirect_tqdm([log], tqdm_class=tqdm):
            for event in train(config):
                if progress is None:
                    progress = tqdm(total=event.total_steps, desc=f"{config.prompt.method} on {config.task}",
                                    unit="step", disable=not main_process)
                if event.kind == "step":
                    progress.update(1)
                    progress.set_postfix(loss=f"{event.loss:.3f}", ex_s=f"{event.examples_per_s:.1f}")
                elif event.kind == "eval":
                    if main_process:
                        progress.write(f"step {event.step}, {config.select_on}: " + ", ".join(
                            [f"{k} {v:.4f}" for k, v in event.metrics.items()]
                            + [describe_choice(factor, c) for factor, c in (event.choices or {}).items()]),
                            file=sys.stderr)
                else:
                    result = event.result
        progress.close()
    except (DataError, BackboneError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {
        "command": shlex.join(["python", "-m", "dp_core.train", *(sys.argv[1:] if argv is None else argv)]),
        "task": config.task, "method": config.prompt.method, "backbone": config.backbone,
        "best": result.dev_metrics, "best_step": result.best_step, "stopped": result.stopped_because,
        "selected_on": result.selected_on, "processes": result.processes,
        "mixed_precision": result.mixed_precision, "trainable_parameters": result.model.trainable_parameter_count(),
        "train_size": result.train_size, "dev_size": result.dev_size, "majority_baseline": result.majority_baseline,
        "truncated": result.truncated, "examples_per_s": event.examples_per_s, "elapsed_s": event.elapsed_s,
        **({"holdout_size": result.holdout_size, "holdout": result.best_metrics} if result.holdout_size else {}),
        **({"dev_selected": result.dev_selected_metrics} if result.holdout_size and result.dev_selected_metrics
           else {}),
        **({"choices": result.choices} if result.choices else {}),
        **({"holdout_choices": result.holdout_choices} if result.holdout_choices else {}),
        **({"refit": result.refit} if result.refit else {}),
    }
    if not main_process:
        return 0
    if sum(result.truncated.values()):
        print(f"note: {result.truncated} items were longer than max_length {result.model.max_length} and were "
              "truncated", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    if args.output_dir:
        output = Path(args.output_dir)
        result.model.save_pretrained(output, metrics=result.dev_metrics,
                                     extra={"train_config": config.to_dict(), "summary": summary})
        (output / "metrics.json").write_text(json.dumps({**summary, "history": result.history}, indent=2))
        print(f"saved to {output}", file=sys.stderr)
    if args.push_to_hub:
        print(result.model.push_to_hub(args.push_to_hub, metrics=result.dev_metrics), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
