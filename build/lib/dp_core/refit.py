"""Two time scales for Dynamic Prompting: once the prompt is trained and its checkpoint kept, the prompt is frozen
and the choice network alone is refit to the exact expected loss of every candidate place and length.

Why: while prompt and choices train together, the choices learn from a noisy score-function signal and the
checkpoint kept on held-out items is often an early one whose choices never made up their mind
(docs/dp_learning.md). With the prompt frozen, each training item's loss at every candidate is computed once
(forward passes, no gradient); the choice network then follows the gradient of the expected loss
sum_c p(c | x) loss(x, c) over those items, with no sampling noise and no backbone call, in a fraction of a
second per step. It stops when the same expected loss on the held-out items stops falling, and the refit is kept
only if it lowered that loss without lowering the held-out score. The choices then commit as far as the
held-out items confirm that the place matters, and no further.

Each factor's candidate losses are taken with the other factors at DP's own choice (one factor at a time, as
``dp_core.explain.counterfactuals``); the pool (a soft mix) and a shared hidden layer stay as trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .choices import chosen_factors, predict_split, task_score
from .data import EncodedSplit
from .model import PromptClassifier, expected_choice_loss, forced_losses

REFIT_FACTORS = ("position", "length")


@dataclass
class RefitConfig:
    max_items: int = 256  # training items whose candidate losses are computed (the first of a seeded shuffle)
    max_steps: int = 500  # full-batch Adam steps
    lr: float = 1e-2
    patience: int = 25  # steps without a lower held-out expected loss


@dataclass
class RefitResult:
    factors: list[str]
    fit_items: int
    steps: int  # steps taken
    best_step: int  # the step with the lowest held-out expected loss (0: none beat the trained choices)
    # (trained choices, choices at best_step), whether or not the refit was kept:
    fit_loss: tuple[float, float]  # expected loss on the fit items
    holdout_loss: tuple[float, float]  # the same on the held-out items
    holdout_score: tuple[float, float]  # the held-out task score
    kept: bool  # the refit replaced the trained choices

    def summary(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(self).items()}


def candidate_losses(model: PromptClassifier, split: EncodedSplit, features: torch.Tensor | None,
                     factors: list[str], batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Per factor, the loss of every item with that factor forced to each candidate: (items, candidates)."""
    forced = predict_split(model, split, batch_size, features, tuple(factors)).counterfactual
    gold = torch.tensor(split.labels)
    return {factor: forced_losses(probs, gold) for factor, probs in forced.items()}


def split_score(model: PromptClassifier, split: EncodedSplit, features: torch.Tensor | None,
                batch_size: int = 64) -> float:
    predictions = predict_split(model, split, batch_size, features).class_probs.argmax(-1).tolist()
    return task_score(model.task, predictions, split.labels, split.groups)


def refit_choices(model: PromptClassifier, fit_split: EncodedSplit, fit_features: torch.Tensor,
                  holdout_split: EncodedSplit, holdout_features: torch.Tensor, config: RefitConfig | None = None,
                  batch_size: int = 64) -> RefitResult:
    """Refit DP's position and length choices of ``model`` (in place) on ``fit_split``, stopping and deciding on
    ``holdout_split``; features are the splits' instance features (``dp_core.train.split_features``)."""
    config = config or RefitConfig()
    factors = [factor for factor in REFIT_FACTORS if factor in chosen_factors(model)]
    if not factors:
        raise ValueError(f"{model.method.method} makes no discrete choice to refit (DP with position or length does)")
    was_training = model.training
    model.eval()
    fit_losses = {f: loss.to(fit_features.device)
                  for f, loss in candidate_losses(model, fit_split, fit_features, factors, batch_size).items()}
    holdout_losses = {f: loss.to(holdout_features.device) for f, loss in
                      candidate_losses(model, holdout_split, holdout_features, factors, batch_size).items()}
    prompt = model.prompt
    if prompt.config.level == "task":
        parameters = [prompt.task_logits[f] for f in factors]
    else:
        parameters = [p for f in factors for p in prompt.heads[f].parameters()]
    trained = [p.detach().clone() for p in parameters]
    optimizer = torch.optim.Adam(parameters, lr=config.lr)

    @torch.no_grad()
    def set_choices(values: list[torch.Tensor]) -> None:
        for parameter, value in zip(parameters, values):
            parameter.copy_(value)

    @torch.no_grad()
    def mean_loss(features: torch.Tensor, losses: dict[str, torch.Tensor], split: EncodedSplit) -> float:
        return float(expected_choice_loss(model.prompt.logits(features), losses, split.rows_per_item))

    fit_before = mean_loss(fit_features, fit_losses, fit_split)
    best_loss, best_step, best = mean_loss(holdout_features, holdout_losses, holdout_split), 0, trained
    holdout_before, step = best_loss, 0
    for step in range(1, config.max_steps + 1):
        with torch.enable_grad():
            loss = expected_choice_loss(model.prompt.logits(fit_features), fit_losses, fit_split.rows_per_item)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        value = mean_loss(holdout_features, holdout_losses, holdout_split)
        if value < best_loss:
            best_loss, best_step, best = value, step, [p.detach().clone() for p in parameters]
        elif step - best_step >= config.patience:
            break
    set_choices(best)
    fit_after = mean_loss(fit_features, fit_losses, fit_split)
    score_after = split_score(model, holdout_split, holdout_features, batch_size)
    set_choices(trained)
    score_before = split_score(model, holdout_split, holdout_features, batch_size)
    kept = best_step > 0 and score_after >= score_before
    if kept:
        set_choices(best)
    for parameter in parameters:
        parameter.grad = None
    model.train(was_training)
    return RefitResult(factors=factors, fit_items=len(fit_split), steps=step, best_step=best_step,
                       fit_loss=(fit_before, fit_after), holdout_loss=(holdout_before, best_loss),
                       holdout_score=(score_before, score_after), kept=kept)
