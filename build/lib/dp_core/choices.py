"""How decided Dynamic Prompting's choices are, and what they are worth.

Per factor (position, length, pool) over a split, from DP's own choice distributions:

- *commitment*: the median probability of the top choice (1: sure everywhere; 1/C: no preference),
- *entropy*: the mean entropy of the choice distribution divided by log C (0: sure; 1: uniform),
- *collapse*: the share of rows given the most common choice (1: one choice for the whole task),

and from counterfactuals (every candidate forced on every item, ``dp_core.explain.counterfactuals``):

- *own*: the task score with DP's own choices,
- *single*: the score with each single candidate forced on every item; the best of them is what one task-level
  choice could reach,
- *oracle*: the score when each item gets a candidate that predicts its gold label, if any does. An upper bound
  that noise inflates on small dev sets: with 17 candidates, an item whose prediction flips by chance counts
  as right,
- *changes prediction*: the share of items whose predicted class depends on the candidate (0: the place
  does not matter).

Commitment, entropy and collapse are per row (COPA: each choice's row has its own layout); scores are per item.
They count places as candidates, though every place past the chosen length is one layout (all its tokens after the
input): ``layout_probabilities`` merges them (docs/dp_learning.md, "Places that are one layout") and
``layout_commitment`` counts commitment over the merged layouts, beside what no preference gives, and ``layout_counts``
the rows at each layout as drawn (min(top place, own length) tokens after the input). A DP that draws
the place given the length (``place_given_length``) gives those places no probability: its rows have l + 1
candidates, and entropy and the readings count those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .data import EncodedSplit, iterate_batches
from .explain import counterfactuals
from .metrics import compute_metrics
from .model import PromptClassifier
from .tasks import Task


def candidate_names(factor: str, size: int) -> list[str]:
    """How a candidate is called: tokens after the input (position), active tokens (length), pool prompt."""
    if factor == "position":
        return [str(p) for p in range(size)]
    if factor == "length":
        return [str(n) for n in range(1, size + 1)]
    return [f"prompt {k}" for k in range(1, size + 1)]


def chosen_factors(model: PromptClassifier) -> list[str]:
    """The factors a model chooses (empty for fixed methods)."""
    return list(model.prompt.sizes)


@dataclass
class ChoiceStatistics:
    factor: str
    candidates: list[str]
    counts: list[int]  # rows given each candidate
    commitment: float
    entropy: float
    collapse: float
    own_score: float | None = None
    single_scores: list[float] | None = None
    oracle_score: float | None = None
    changes_prediction: float | None = None
    # Position with a chosen length: the commitment over distinct layouts (``layout_commitment``) and what a
    # choice network with no preference gives there.
    layout_commitment: float | None = None
    layout_no_preference: float | None = None
    # ... and the rows whose drawn layout (top place, top length) puts each number of tokens after the input.
    layout_counts: list[int] | None = None
    # Per item, for intervals: the predictions behind own, the best single candidate and the oracle.
    predictions: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def most_common(self) -> int:
        return max(range(len(self.counts)), key=self.counts.__getitem__)

    @property
    def best_single(self) -> int | None:
        if self.single_scores is None:
            return None
        return max(range(len(self.single_scores)), key=self.single_scores.__getitem__)

    def summary(self) -> dict:
        """JSON-friendly, without the per-item predictions (what metrics.json and the events carry)."""
        record = asdict(self)
        record.pop("predictions")
        record["most_common"] = self.most_common
        record["best_single"] = self.best_single
        return record


def task_score(task: Task, predictions: list[int], labels: list[int], groups: list[str]) -> float:
    return compute_metrics(task.metrics, predictions, labels, groups, task.num_labels)["score"]


def choice_statistics(factor: str, choice_probs: torch.Tensor, task: Task, labels: list[int], groups: list[str],
                      own_predictions: list[int] | None = None,
                      counterfactual: torch.Tensor | None = None) -> ChoiceStatistics:
    """Statistics of one factor from its choice distributions ``choice_probs`` (rows, C) and, when given, the
    counterfactual class probabilities (items, C, labels) and DP's own predictions (items,)."""
    rows, size = choice_probs.shape
    probs = choice_probs.float().clamp_min(1e-12)
    counts = torch.bincount(probs.argmax(-1), minlength=size)
    # divided by the log of the row's candidates: those it gives any probability (a place drawn given the length
    # has l + 1, the others none)
    candidates = (choice_probs > 0).sum(-1).clamp_min(2).float()
    entropy = -(probs * probs.log()).sum(-1) / candidates.log() if size > 1 else torch.zeros(rows)
    stats = ChoiceStatistics(
        factor=factor, candidates=candidate_names(factor, size), counts=counts.tolist(),
        commitment=float(probs.max(-1).values.quantile(0.5)), entropy=float(entropy.mean()),
        collapse=float(counts.max()) / max(1, rows),
    )
    if counterfactual is None or own_predictions is None:
        return stats
    forced = counterfactual.argmax(-1)  # (items, C)
    gold = torch.tensor(labels)
    own = torch.tensor(own_predictions)
    right = forced == gold[:, None]
    oracle = torch.where(right.any(1), gold, own)
    stats.own_score = task_score(task, own_predictions, labels, groups)
    stats.single_scores = [task_score(task, forced[:, c].tolist(), labels, groups) for c in range(size)]
    stats.oracle_score = task_score(task, oracle.tolist(), labels, groups)
    stats.changes_prediction = float((forced != forced[:, :1]).any(1).float().mean())
    stats.predictions = {"own": own_predictions, "best single": forced[:, stats.best_single].tolist(),
                         "oracle": oracle.tolist()}
    return stats


def layout_probabilities(position_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The probability of each distinct layout, (rows, L + 1): index a = active tokens after the input.

    Only the first l slots are active and slots 0..p-1 go after the input, so every place p >= l puts all l
    tokens after it: one layout, whose probability is the sum over those places (index l; zero above it).
    ``lengths`` (rows,): each row's active token count."""
    candidates = torch.arange(position_probs.shape[1], device=position_probs.device)
    tokens_after = torch.minimum(candidates[None, :], lengths[:, None].to(candidates))
    return torch.zeros_like(position_probs).scatter_add_(1, tokens_after, position_probs)


def layout_commitment(position_probs: torch.Tensor, lengths: torch.Tensor,
                      given_length: bool = False) -> tuple[float, float]:
    """The median top probability over distinct layouts, and the same for a choice network with no preference:
    uniform over the places, whose "all after" holds every place p >= l, or, for a DP that draws the place given
    the length (``given_length``), uniform over the l + 1 layouts. Without the second figure the first misleads:
    no preference over 17 places gives a row of length 2 an "all after" of 15/17."""
    places = position_probs.shape[1]
    if given_length:
        possible = (torch.arange(places)[None, :] <= lengths[:, None].cpu()).float()
        uniform = possible / possible.sum(-1, keepdim=True)
    else:
        uniform = layout_probabilities(torch.full(position_probs.shape, 1.0 / places), lengths.cpu())
    committed = layout_probabilities(position_probs.float(), lengths).max(-1).values.quantile(0.5)
    return float(committed), float(uniform.max(-1).values.quantile(0.5))


def layout_confidence(position_probs: list[float], active_length: int, tokens_after: int) -> tuple[float, float]:
    """How sure DP is of one row's layout, as one figure beside what no preference gives: the probability of the
    layout it chose (``tokens_after`` of its ``active_length`` tokens after the input; every place past the length is
    the one "all after" layout), and the same for a choice network with no preference (uniform over the places, or
    over the l + 1 layouts for a DP that draws the place given the length)."""
    places = len(position_probs)
    merged = layout_probabilities(torch.tensor([position_probs]), torch.tensor([active_length]))[0]
    if not any(position_probs[active_length + 1:]) and active_length < places - 1:  # drawn given the length
        return float(merged[tokens_after]), 1.0 / (active_length + 1)
    share = (places - active_length) / places if tokens_after >= active_length else 1.0 / places
    return float(merged[tokens_after]), share


@dataclass
class SplitPredictions:
    class_probs: torch.Tensor  # (items, labels)
    choice_probs: dict[str, torch.Tensor]  # factor -> (rows, candidates); DP only
    counterfactual: dict[str, torch.Tensor]  # factor -> (items, candidates, labels), the factors asked for
    tokens_after: torch.Tensor | None = None  # (rows,) active prompt tokens after the input, as laid out
    active_length: torch.Tensor | None = None  # (rows,) active prompt tokens


@torch.no_grad()
def predict_split(model: PromptClassifier, split: EncodedSplit, batch_size: int = 64,
                  features: torch.Tensor | None = None, counterfactual_factors: tuple[str, ...] = ()) -> SplitPredictions:
    """Class probabilities, DP's choice distributions and (for the factors asked) counterfactuals of a whole
    split, in its item and row order. ``features``: the split's cached instance features (DP)."""
    was_training = model.training
    model.eval()
    pad = model.backbone.tokenizer.pad_token_id
    class_probs = torch.zeros(len(split), model.task.num_labels)
    sizes = model.prompt.sizes
    choice_probs = {factor: torch.zeros(split.num_rows, size) for factor, size in sizes.items()}
    forced = {factor: torch.zeros(len(split), sizes[factor], model.task.num_labels)
              for factor in counterfactual_factors}
    tokens_after = torch.zeros(split.num_rows, dtype=torch.long)
    active_length = torch.zeros(split.num_rows, dtype=torch.long)
    for batch in iterate_batches(split, batch_size, pad, shuffle=False):
        batch = batch.to(model.backbone.device)
        batch_features = None if features is None else features[batch.rows]
        if model.needs_features and batch_features is None:
            batch_features = model.instance_features(batch)
        encoded = model.encode(batch, batch_features)
        items, rows = batch.items.cpu(), batch.rows.cpu()
        class_probs[items] = encoded.logits.float().softmax(-1).cpu()
        for factor in choice_probs:
            choice_probs[factor][rows] = encoded.plan.decisions[f"{factor}_probs"].float().cpu()
        active = encoded.plan.active.cpu()
        after = torch.arange(active.shape[1])[None, :] < encoded.plan.split_position.cpu()[:, None]
        tokens_after[rows], active_length[rows] = (active & after).sum(-1), active.sum(-1)
        for factor in forced:
            forced[factor][items] = counterfactuals(model, batch, factor, batch_features)
    model.train(was_training)
    return SplitPredictions(class_probs, choice_probs, forced, tokens_after, active_length)


def split_choice_statistics(model: PromptClassifier, split: EncodedSplit, features: torch.Tensor | None = None,
                            counterfactual: bool = True, batch_size: int = 64,
                            predictions: SplitPredictions | None = None) -> dict[str, ChoiceStatistics]:
    """Every factor's statistics over a split (with counterfactual scores when ``counterfactual``). Pass
    ``predictions`` when they were made already (they must hold counterfactuals if ``counterfactual``)."""
    if predictions is None:
        factors = tuple(chosen_factors(model)) if counterfactual else ()
        predictions = predict_split(model, split, batch_size, features, factors)
    return predictions_choice_statistics(predictions, model.task, split.labels, split.groups,
                                         model.prompt.place_given_length)


def predictions_choice_statistics(predictions: SplitPredictions, task: Task, labels: list[int], groups: list[str],
                                  place_given_length: bool = False) -> dict[str, ChoiceStatistics]:
    """Every chosen factor's statistics from predictions already made. A factor's counterfactual may cover only the
    first items: its scores are then over those items; commitment, entropy and collapse always over every row."""
    own = predictions.class_probs.argmax(-1).tolist()
    stats = {}
    for factor, choice_probs in predictions.choice_probs.items():
        forced = predictions.counterfactual.get(factor)
        scored = len(own) if forced is None else len(forced)
        stats[factor] = choice_statistics(factor, choice_probs, task, labels[:scored], groups[:scored], own[:scored],
                                          forced)
    if "position" in stats and "length" in predictions.choice_probs:
        lengths = predictions.choice_probs["length"].argmax(-1) + 1  # each row's own length, as DP decides
        position_probs = predictions.choice_probs["position"]
        stats["position"].layout_commitment, stats["position"].layout_no_preference = layout_commitment(
            position_probs, lengths, place_given_length)
        tokens_after = torch.minimum(position_probs.argmax(-1), lengths)
        stats["position"].layout_counts = torch.bincount(tokens_after, minlength=position_probs.shape[1]).tolist()
    return stats


# Thresholds of the plain readings (app/readings.py): a top choice under twice the uniform share (at most halfway
# from it to 1, for two or three candidates) is no preference; from there, at 50 % DP is sure; one choice for 90 % of
# the dev set makes DP a task-level choice; a factor that changes under 5 % of dev predictions hardly matters on that
# task, however sure DP is of it.
NO_PREFERENCE, COMMITTED, COLLAPSED, HARDLY_MATTERS = 2.0, 0.5, 0.9, 0.05


def no_preference_bar(uniform_share: float) -> float:
    """The probability below which DP has no preference for a choice that no preference would give
    ``uniform_share``: twice that share, at most halfway from it to 1 (two or three candidates)."""
    return min(NO_PREFERENCE * uniform_share, (1 + uniform_share) / 2)
