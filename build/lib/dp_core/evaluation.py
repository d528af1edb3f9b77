"""Scoring a model on a split, and choosing which evaluation's checkpoint a run keeps.

DP's choices read the frozen backbone's features of each input: they never change, so they are computed once per
split (``split_features``) or per training row the first time a batch holds it (``RowFeatures``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import torch

from .choices import chosen_factors, predict_split, split_choice_statistics
from .config import TrainConfig
from .data import Batch, EncodedSplit, iterate_batches
from .metrics import compute_metrics
from .model import PromptClassifier
from .refit import RefitConfig, RefitResult, refit_choices
from .tasks import Example, Task

log = logging.getLogger("dp_core.train")  # the training CLI shows these lines

COUNTERFACTUAL_KEYS = ("own_score", "single_scores", "oracle_score", "changes_prediction", "best_single")
Evaluation = tuple[dict[str, float], dict[str, dict], list[int]]  # metrics, DP's choice statistics, predictions


@torch.no_grad()
def split_features(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64) -> torch.Tensor | None:
    """Instance features of every row of a split (None when the model reads none)."""
    if not model.needs_features:
        return None
    pad = model.backbone.tokenizer.pad_token_id
    features = torch.zeros(split.num_rows, model.backbone.hidden_size, device=model.backbone.device)
    for batch in iterate_batches(split, batch_size, pad, shuffle=False):
        batch = batch.to(model.backbone.device)
        features[batch.rows] = model.instance_features(batch)
    return features


class RowFeatures:
    """Instance features of a training split, each row computed the first time a batch holds it (a short run on
    a large set, such as MultiRC's 27k rows, reads a small part of it)."""

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
                          features: torch.Tensor | None = None, counterfactual: bool = False) -> Evaluation:
    """Metrics, for DP how decided its choices are over the split (one pass; counterfactual scores on request, at
    (candidates + 1)x the cost), and the predicted labels in the split's item order."""
    factors = tuple(chosen_factors(model)) if counterfactual else ()
    predictions = predict_split(model, split, batch_size, features, factors)
    choices = split_choice_statistics(model, split, counterfactual=counterfactual, predictions=predictions)
    return split_metrics(model.task, predictions.class_probs, split), \
        {factor: stats.summary() for factor, stats in choices.items()}, predictions.class_probs.argmax(-1).tolist()


def evaluate_at_end(model: PromptClassifier, split: EncodedSplit, config: TrainConfig,
                    features: torch.Tensor | None, counterfactual: bool) -> Evaluation:
    """``evaluate_with_choices`` for the kept checkpoint, with the counterfactual figures from the split's first
    ``config.counterfactual_items`` items where that is fewer than all (recorded as ``counterfactual_items``)."""
    limit = config.counterfactual_items
    if not counterfactual or limit is None or limit >= len(split):
        return evaluate_with_choices(model, split, config.eval_batch_size, features, counterfactual=counterfactual)
    metrics, choices, predicted = evaluate_with_choices(model, split, config.eval_batch_size, features)
    first = split.first(limit)
    first_choices = evaluate_with_choices(model, first, config.eval_batch_size,
                                          None if features is None else features[: first.num_rows],
                                          counterfactual=True)[1]
    for factor, summary in choices.items():
        summary.update({key: first_choices[factor][key] for key in COUNTERFACTUAL_KEYS},
                       counterfactual_items=len(first))
    return metrics, choices, predicted


def refit_kept_choices(model: PromptClassifier, config: TrainConfig, train_examples: list[Example],
                       select_split: EncodedSplit, select_features: torch.Tensor
                       ) -> tuple[RefitResult, Evaluation | None]:
    """DP's second time scale on the kept checkpoint: a seeded sample of the training items to fit, the selection
    split to stop and decide on; with the selection split's evaluation if the refit was kept."""
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


@dataclass
class Selection:
    """Which evaluation's checkpoint a run keeps: the best score from step ``select_from_step`` on (or the last
    evaluation when nothing was kept before the run ended), and whether patience has run out."""

    select_from_step: int
    patience: int | None
    best_metrics: dict[str, float] | None = None
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_step: int = 0
    best_choices: dict[str, dict] = field(default_factory=dict)
    best_predictions: list[int] = field(default_factory=list)
    evaluations_since_best: int = 0

    def offer(self, model: PromptClassifier, step: int, evaluation: Evaluation, last: bool) -> None:
        """An evaluation at ``step``; ``last``: the run ends after it."""
        metrics, choices, predictions = evaluation
        eligible = step >= self.select_from_step or (last and self.best_metrics is None)
        self.evaluations_since_best += eligible
        if eligible and (self.best_metrics is None or metrics["score"] > self.best_metrics["score"]):
            self.best_metrics, self.best_state, self.best_step = metrics, model.trainable_state(), step
            self.best_choices, self.best_predictions = choices, predictions
            self.evaluations_since_best = 0

    @property
    def out_of_patience(self) -> bool:
        return self.patience is not None and self.evaluations_since_best >= self.patience

    @property
    def kept(self) -> Evaluation:
        return self.best_metrics, self.best_choices, self.best_predictions
