"""What the page says about a result, in plain words: one short reading per function, each at most 40 words.

Plain functions of the numbers they read (no Gradio), so tests can check the facts each one states. One idea per
sentence, in a student's words: "how sure", "the same place for almost every item".
"""

from __future__ import annotations

from dp_core.choices import COLLAPSED, COMMITTED, HARDLY_MATTERS, ChoiceStatistics, no_preference_bar
from dp_core.draws import Draws
from dp_core.explain import InstanceDecision
from dp_core.tasks import Task

# What the text before and after the prompt's split is called in each task.
TEXT_NAMES = {"boolq": ("question", "passage"), "cb": ("premise", "hypothesis"), "copa": ("premise", "choice"),
              "rte": ("premise", "hypothesis"), "wic": ("first sentence", "second sentence"),
              "wsc": ("text", "question"), "multirc": ("paragraph", "answer")}
WHAT = {"position": "place", "length": "length", "pool": "pool prompt"}
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "f1a": "F1 over answers", "exact_match": "exact match"}


def tokens(count: int) -> str:
    return f"{count} prompt token" + ("" if count == 1 else "s")


def where_reading(decision: InstanceDecision, task_name: str) -> str:
    """Where a method put its prompt for one example."""
    first, last = TEXT_NAMES.get(task_name, ("input", "input"))
    chooses = decision.position_probs is not None or decision.length_probs is not None
    if decision.deep:
        if not chooses:
            return f"The same {decision.num_slots} prompt vectors in every layer, for every input."
        return (f"DP's prompt is in every layer ({decision.active_length} of {decision.num_slots} vectors on). Its "
                f"place only moves where the input's positions start: at {decision.tokens_before}.")
    if not chooses:
        return f"The same {tokens(decision.num_slots)} before the {first}, for every input."
    switched_off = decision.num_slots - decision.active_length
    off = f" It switched {switched_off} of {decision.num_slots} off." if decision.length_probs is not None else ""
    return (f"DP put {tokens(decision.tokens_after)} after the {last} and {decision.tokens_before} before the "
            f"{first}.{off}")


def sure_reading(factor: str, probability: float, no_preference: float) -> str:
    """How sure DP is of one choice: its probability against what no preference would give it."""
    what, against = WHAT[factor], f"with no preference: {no_preference:.0%}"
    if probability < no_preference_bar(no_preference):
        return f"DP has no preference for this {what}: {probability:.0%} ({against}). Its pick is close to a coin toss."
    if probability >= COMMITTED:
        return f"DP is sure of this {what}: {probability:.0%} ({against})."
    return f"DP leans to this {what}: {probability:.0%} ({against})."


def habit_reading(factor: str, task_stats: dict | None, chosen: int, tokens_after: int | None = None) -> str:
    """What DP does with this choice over the whole dev set, when that says something: the same choice for almost
    every item, or a choice that hardly changes any answer. For the place with a chosen length, the same layout
    (``tokens_after`` of this item against the dev set's ``layout_counts``)."""
    if not task_stats:
        return ""
    what, said = WHAT[factor], []
    counts = task_stats.get("layout_counts") if tokens_after is not None else None
    share, most, mine = ((max(counts) / max(1, sum(counts)), counts.index(max(counts)), tokens_after) if counts else
                         (task_stats["collapse"], task_stats["most_common"], chosen))
    if share >= COLLAPSED and mine == most:
        said.append(f"DP gives this same {what} to {share:.0%} of the dev items.")
    changes = task_stats.get("changes_prediction")
    if changes is not None and changes < HARDLY_MATTERS:
        said.append(f"On this task the {what} changes only {changes:.0%} of the dev answers: it decides little.")
    return " ".join(said)


def what_if_reading(factor: str, predicted: list[int], chosen: int, label_names: tuple[str, ...]) -> str:
    """What moving the prompt (or changing its length) would change for this example."""
    what = WHAT[factor]
    if len(set(predicted)) == 1:
        return f"The answer is “{label_names[predicted[0]]}” at every {what}: here the {what} changes nothing."
    changed = sum(answer != predicted[chosen] for answer in predicted)
    others = ", ".join(f"“{label_names[answer]}”" for answer in sorted(set(predicted) - {predicted[chosen]}))
    return (f"At {changed} of {len(predicted)} {what}s the answer changes, to {others}. DP's {what} gives "
            f"“{label_names[predicted[chosen]]}”.")


def draws_reading(draws: Draws, temperature: float, samples: int) -> str:
    """What the playground shows: the hard draws follow the chances; the temperature shapes only the soft draw."""
    gap = max(abs(hard - chance) for hard, chance in zip(draws.hard_shares, draws.probabilities))
    return (f"The {samples:,} hard draws follow the chances (within {gap:.0%}), whatever τ. "
            f"At τ = {temperature:g} a soft draw puts {draws.soft_top_weight:.0%} on its top place "
            f"(one-hot: 100%; even: {1 / len(draws.probabilities):.0%}).")


def metric_name(task: Task) -> str:
    """What a task's score is: its one metric, or the mean of its two (CB: accuracy and macro-F1)."""
    names = [METRIC_NAMES[metric] for metric in task.metrics]
    return names[0] if len(names) == 1 else f"mean of {' and '.join(names)}"


def difference_reading(difference: float, low: float, high: float, items: int) -> str:
    """Whether DP beat the fixed prompt on these items, said no more strongly than the paired interval allows."""
    span = f"95 % interval {low:+.3f} to {high:+.3f}"
    if low > 0 or high < 0:
        side = "above" if low > 0 else "below"
        return (f"**DP scores {abs(difference):.3f} {side} the fixed prompt** on these {items} items ({span}). "
                "That holds for this one trained pair.")
    return (f"**These {items} items cannot tell DP from the fixed prompt**: DP − fixed is {difference:+.3f} "
            f"({span}, which holds 0).")


def baseline_reading(scores: dict[str, float], answer: str, baseline: float) -> str:
    """Which methods do no better on these items than giving one answer to all of them (nothing when both do)."""
    below = [name for name, score in scores.items() if score <= baseline]
    if not below:
        return ""
    who = "Neither method scores" if len(below) > 1 else f"{below[0]} scores no"
    return (f"**{who} {'above' if len(below) > 1 else 'better than'} always answering “{answer}”** ({baseline:.3f}) "
            "on these items: nothing learned shows here.")


def choice_verdict(factor: str, stats: ChoiceStatistics) -> str:
    """What DP's statistics over the dev items say of one choice, in one or two sentences."""
    what, changes = WHAT[factor], stats.changes_prediction or 0.0
    title = f"**{what.capitalize()}**:"
    if changes < HARDLY_MATTERS:
        return (f"{title} the answer is the same at every {what} for {1 - changes:.0%} of these items. "
                f"Here DP's {what} decides little.")
    same = same_choice_share(stats)
    if same >= COLLAPSED:
        return f"{title} DP gives {same:.0%} of the items the same {what}: one {what} for almost the whole task."
    sure, no_preference = how_sure(stats)
    if sure < no_preference_bar(no_preference):
        return f"{title} DP has no real preference: {sure:.0%} in the median (with no preference: {no_preference:.0%})."
    best = max(stats.single_scores)
    return (f"{title} DP is {sure:.0%} sure in the median (with no preference: {no_preference:.0%}). Its own "
            f"{what}s score {stats.own_score:.3f}; the best single {what} {best:.3f}.")


def how_sure(stats: ChoiceStatistics) -> tuple[float, float]:
    """One figure of how sure DP is of a choice over the dev items, beside what no preference gives: over distinct
    layouts where places share one (the place with a chosen length), else over the candidates."""
    if stats.layout_commitment is not None:
        return stats.layout_commitment, stats.layout_no_preference
    return stats.commitment, 1 / len(stats.candidates)


def short_run_reading(budget: str, stuck: list[str], methods: int, lucky: bool) -> str:
    """What a short run's table says: which methods a short run shows nothing of, and when its figure was luck."""
    said = []
    if len(stuck) == methods:
        said.append(f"Neither beats always giving one answer in {budget}: a short run shows nothing learned here.")
    elif stuck:
        said.append(f"{' and '.join(stuck)} does no better than always giving one answer in {budget}.")
    if lucky:
        said.append(f"A {budget} run above the converged score was lucky in its best evaluation: not a better run.")
    return " ".join(said)


def waiting_reading(place: int, seconds: float, task: str, methods: tuple[str, ...]) -> str:
    """Where a queued training run stands, and whose curves show meanwhile."""
    return (f"Your run is number {place} in line: it starts in about {seconds:.0f} s. Meanwhile, the run in "
            f"progress (another visitor's: {task}, {', '.join(methods)}):")


def same_choice_share(stats: ChoiceStatistics) -> float:
    """The share of rows given the most common choice; for the place with a chosen length, the most common layout
    as drawn (two places past the length are the same layout; one place at two lengths is not)."""
    if stats.layout_counts:
        return max(stats.layout_counts) / max(1, sum(stats.layout_counts))
    return stats.collapse
