"""A fixed prompt and DP on the same dev items, from their analyses (``dp_core.analysis``): no backbone pass.

Each score comes with a 95 % bootstrap interval; DP − fixed is paired over the same items; the bar both must clear is
the one answer that scores best on these items; DP's choices are worth what forcing other candidates shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .analysis import DevAnalysis
from .choices import ChoiceStatistics, layout_confidence, no_preference_bar, predictions_choice_statistics
from .metrics import compute_metrics, paired_difference_interval, score_interval
from .tasks import Example, Task, best_constant_guess


@dataclass
class Score:
    value: float
    low: float  # the 95 % bootstrap interval
    high: float


@dataclass
class DevComparison:
    items: int
    fixed: Score
    dp: Score
    difference: Score  # DP − fixed, paired over the same items
    constant_label: int  # the one answer that scores best on these items
    constant: Score  # ... and its score: the bar a trained prompt must clear
    disagreements: list[int]  # the items the two methods predict differently


@dataclass
class ChoiceWorth:
    """What DP's choices are worth on the items whose every candidate was tried."""

    items: int
    statistics: dict[str, ChoiceStatistics]  # factor -> statistics
    intervals: dict[tuple[str, str], tuple[float, float]]  # (factor, "own" | "best single" | "oracle") -> interval


def scored(task: Task, predictions: list[int], examples: list[Example]) -> Score:
    labels, groups = [e.label for e in examples], [e.group for e in examples]
    value = compute_metrics(task.metrics, predictions, labels, groups, task.num_labels)["score"]
    return Score(value, *score_interval(task.metrics, predictions, labels, groups, task.num_labels))


def compare_on_dev(task: Task, examples: list[Example], fixed: DevAnalysis, dp: DevAnalysis) -> DevComparison:
    """The two methods' scores on ``examples`` (the items both analyses hold), the paired difference and the bar."""
    if not fixed.num_items == dp.num_items == len(examples):
        raise ValueError(f"analyses of {fixed.num_items} and {dp.num_items} items do not match {len(examples)} items")
    fixed_predictions, dp_predictions = fixed.predictions, dp.predictions
    fixed_score, dp_score = scored(task, fixed_predictions, examples), scored(task, dp_predictions, examples)
    labels, groups = [e.label for e in examples], [e.group for e in examples]
    difference = Score(dp_score.value - fixed_score.value, *paired_difference_interval(
        task.metrics, [dp_predictions], [fixed_predictions], labels, groups, task.num_labels))
    guess = best_constant_guess(task, examples)
    return DevComparison(len(examples), fixed_score, dp_score, difference, guess,
                         scored(task, [guess] * len(examples), examples),
                         [i for i, (a, b) in enumerate(zip(fixed_predictions, dp_predictions)) if a != b])


def choice_worth(task: Task, examples: list[Example], dp: DevAnalysis, place_given_length: bool = False) -> ChoiceWorth:
    """DP's choice statistics (how sure, how often the same, what forcing each candidate scores) with intervals."""
    statistics = predictions_choice_statistics(dp.split_predictions(), task, [e.label for e in examples],
                                               [e.group for e in examples], place_given_length)
    head = examples[:dp.counterfactual_items]
    labels, groups = [e.label for e in head], [e.group for e in head]
    intervals = {(factor, name): score_interval(task.metrics, predictions, labels, groups, task.num_labels)
                 for factor, stats in statistics.items() for name, predictions in stats.predictions.items()}
    return ChoiceWorth(len(head), statistics, intervals)


# How far DP's top class must stand above the next for its answer to count as clear (probability points): an item
# whose answer is a coin toss flips wherever the prompt goes, which shows nothing about the place.
CLEAR_MARGIN = 0.2


def answer_margins(class_probs: torch.Tensor) -> list[float]:
    """Per item: the top class's probability minus the next one's (0: a tie; 1: certain)."""
    top = class_probs.float().topk(2, dim=-1).values
    return (top[:, 0] - top[:, 1]).tolist()


@dataclass
class NotableItems:
    """Dev items worth showing a student first (None where a task has none), by DP's place."""

    place_matters: int | None  # DP's answer is clear (``CLEAR_MARGIN``), yet moving the prompt changes it
    sure_and_right: int | None  # DP's surest place among the items it gets right
    no_preference: int | None  # DP's least sure place, when it is close to no preference at all


def notable_items(dp: DevAnalysis, examples: list[Example], factor: str = "position") -> NotableItems:
    """The items Compare offers beside a random one, from DP's analysis (its place, or ``factor``). Where the place
    matters: among the items whose answer is clear, the one whose answer the most places change (DP right first).
    How sure DP is of an item's place is the probability of its layout against no preference
    (``layout_confidence``), as Compare shows it."""
    if factor not in dp.choice_probs:
        return NotableItems(None, None, None)
    sure = item_confidence(dp, factor)
    own = dp.predictions
    right = [own[i] == example.label for i, example in enumerate(examples)]
    forced = dp.counterfactual.get(factor)
    place_matters = None
    if forced is not None:
        changed = (forced.argmax(-1) != torch.tensor(own[:len(forced)])[:, None]).sum(-1).tolist()
        clear = [margin >= CLEAR_MARGIN for margin in answer_margins(dp.class_probs)]
        best = max(range(len(forced)), key=lambda i: (changed[i] > 0 and clear[i], right[i], changed[i], -i))
        place_matters = best if changed[best] and clear[best] else None
    sure_and_right = max((i for i in range(len(examples)) if right[i]), key=lambda i: sure[i][0], default=None)
    unsure = min(range(len(examples)), key=lambda i: sure[i][0] / no_preference_bar(sure[i][1]))
    return NotableItems(place_matters, sure_and_right,
                        unsure if sure[unsure][0] < no_preference_bar(sure[unsure][1]) else None)


def item_confidence(dp: DevAnalysis, factor: str) -> list[tuple[float, float]]:
    """Per item (its first row): the probability of DP's choice and what no preference would give it."""
    rows_per_item = len(dp.tokens_after) // dp.num_items
    probs = dp.choice_probs[factor][::rows_per_item]
    if factor != "position":
        chosen = probs.max(-1).values.tolist()
        return [(probability, 1 / probs.shape[1]) for probability in chosen]
    return [layout_confidence(row.tolist(), int(length), int(after)) for row, length, after in
            zip(probs, dp.active_length[::rows_per_item], dp.tokens_after[::rows_per_item])]
