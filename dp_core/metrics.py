"""The official SuperGLUE metrics, and the single score used to pick the best checkpoint."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    return sum(p == y for p, y in zip(predictions, labels)) / max(1, len(labels))


def f1_for(predictions: Sequence[int], labels: Sequence[int], positive: int) -> float:
    true_pos = sum(p == positive and y == positive for p, y in zip(predictions, labels))
    predicted = sum(p == positive for p in predictions)
    actual = sum(y == positive for y in labels)
    return 0.0 if true_pos == 0 else 2 * true_pos / (predicted + actual)


def macro_f1(predictions: Sequence[int], labels: Sequence[int], num_labels: int) -> float:
    return sum(f1_for(predictions, labels, label) for label in range(num_labels)) / num_labels


def exact_match(predictions: Sequence[int], labels: Sequence[int], groups: Sequence[str]) -> float:
    """MultiRC EM: a question counts only when every one of its answers is right."""
    right: dict[str, bool] = defaultdict(lambda: True)
    for p, y, group in zip(predictions, labels, groups):
        right[group] &= p == y
    return sum(right.values()) / max(1, len(right))


def compute_metrics(
    metric_names: Sequence[str], predictions: Sequence[int], labels: Sequence[int],
    groups: Sequence[str], num_labels: int,
) -> dict[str, float]:
    """The task's metrics plus ``score``: their mean, as SuperGLUE averages CB's and MultiRC's two."""
    table = {
        "accuracy": lambda: accuracy(predictions, labels),
        "macro_f1": lambda: macro_f1(predictions, labels, num_labels),
        "f1a": lambda: f1_for(predictions, labels, positive=1),
        "exact_match": lambda: exact_match(predictions, labels, groups),
    }
    results = {name: table[name]() for name in metric_names}
    results["score"] = sum(results.values()) / len(results)
    return results


def bootstrap_draws(groups: Sequence[str], samples: int, seed: int) -> Iterator[tuple[list[int], list[str]]]:
    """Resamples of whole groups (MultiRC questions; else items): each as the item indices drawn and the group
    name each takes (a group drawn twice counts twice, for exact match)."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    members = list(by_group.values())
    generator = random.Random(seed)
    for _ in range(samples):
        drawn = generator.choices(members, k=len(members))
        yield ([index for picked in drawn for index in picked],
               [str(copy) for copy, picked in enumerate(drawn) for _ in picked])


def percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    ordered, tail = sorted(values), (1 - confidence) / 2
    return ordered[int(tail * (len(ordered) - 1))], ordered[round((1 - tail) * (len(ordered) - 1))]


def score_interval(
    metric_names: Sequence[str], predictions: Sequence[int], labels: Sequence[int], groups: Sequence[str],
    num_labels: int, confidence: float = 0.95, samples: int = 1000, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``score``, resampling whole groups (MultiRC questions; else items),
    so small dev sets (CB: 56 items) show how little a few points mean."""
    scores = [compute_metrics(metric_names, [predictions[i] for i in chosen], [labels[i] for i in chosen], copies,
                              num_labels)["score"]
              for chosen, copies in bootstrap_draws(groups, samples, seed)]
    return percentile_interval(scores, confidence)


def paired_difference_interval(
    metric_names: Sequence[str], predictions_a: Sequence[Sequence[int]], predictions_b: Sequence[Sequence[int]],
    labels: Sequence[int], groups: Sequence[str], num_labels: int, confidence: float = 0.95, samples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of the mean over paired runs (seeds) of score(a) − score(b), every run scored on the same
    resampled dev items: the dev set's own sampling noise, which an interval over seeds alone leaves out."""
    differences = []
    for chosen, copies in bootstrap_draws(groups, samples, seed):
        gold = [labels[i] for i in chosen]

        def score(predictions: Sequence[int]) -> float:
            return compute_metrics(metric_names, [predictions[i] for i in chosen], gold, copies, num_labels)["score"]

        differences.append(sum(score(a) - score(b) for a, b in zip(predictions_a, predictions_b, strict=True))
                           / len(predictions_a))
    return percentile_interval(differences, confidence)


METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "f1a": "F1 over answers", "exact_match": "exact match"}


def score_definition(metric_names: Sequence[str]) -> str:
    """What ``score`` is for a task of these metrics, in words: its one metric, or the mean of its two."""
    names = [METRIC_NAMES[name] for name in metric_names]
    return names[0] if len(names) == 1 else f"mean of {' and '.join(names)}"
