"""What the page says about a result, in plain words: one short reading per function, each at most 40 words.

Plain functions of the numbers they read (no Gradio), so tests can check the facts each one states. One idea per
sentence, in a student's words: "how sure", "the same place for almost every item".
"""

from __future__ import annotations

from dp_core.choices import COLLAPSED, COMMITTED, HARDLY_MATTERS, ChoiceStatistics, no_preference_bar
from dp_core.draws import Draws
from dp_core.explain import InstanceDecision
from dp_core.metrics import score_definition
from dp_core.tasks import Task

# What the text before and after the prompt's split is called in each task.
TEXT_NAMES = {"boolq": ("question", "passage"), "cb": ("premise", "hypothesis"), "copa": ("premise", "choice"),
              "rte": ("premise", "hypothesis"), "wic": ("first sentence", "second sentence"),
              "wsc": ("text", "question"), "multirc": ("paragraph", "answer")}
WHAT = {"position": "place", "length": "length", "pool": "pool prompt"}
TIE = 0.05  # two answers closer than this (probability points) read as a tie
# What "no preference" means wherever a figure is set beside it (Compare's meters, Explore's table), said once there.
NO_PREFERENCE_MEANS = "No preference: every candidate equally likely."


def tokens(count: int) -> str:
    return f"{count} prompt token" + ("" if count == 1 else "s")


def where_reading(rows: list[InstanceDecision], task_name: str) -> str:
    """Where a method put its prompt for one example: each row's place where an item has several that differ
    (COPA: one row per choice), in the same count the what-if strip and Explore use, tokens after the input."""
    first, last = TEXT_NAMES.get(task_name, ("input", "input"))
    decision = rows[0]
    chooses = decision.position_probs is not None or decision.length_probs is not None
    if not chooses:
        what = f"{decision.num_slots} prompt vectors in every layer" if decision.deep else \
            f"{tokens(decision.num_slots)} before the {first}"
        return f"The same {what}, for every input."
    places = [(row.tokens_after, row.tokens_before) for row in rows]
    if decision.deep:
        on = f"{decision.active_length} of {decision.num_slots} vectors on"
        after = f"{decision.tokens_after} vector" + ("" if decision.tokens_after == 1 else "s")
        return f"DP's prompt is in every layer ({on}). Its place: {after} after the input and " \
               f"{decision.tokens_before} before it."
    if len(set(places)) == 1:
        after, before = tokens(decision.tokens_after), decision.tokens_before
        said = f"DP put {after} after the {last} and {before} before the {first}."
    else:
        (after, before), *others = places
        said = (f"With choice 1, DP put {tokens(after)} after the {last} and {before} before the {first}; " +
                "; ".join(f"with choice {row + 2}, {after} and {before}" for row, (after, before) in enumerate(others))
                + ".")
    off = sorted({row.num_slots - row.active_length for row in rows} - {0})
    if decision.length_probs is not None and off:
        said += f" It switched {' or '.join(map(str, off))} of {decision.num_slots} off."
    return said


def tie_reading(class_probs: list[float], label_names: tuple[str, ...]) -> str:
    """A near tie said as one: the two top answers within ``TIE`` of each other (nothing otherwise)."""
    ranked = sorted(range(len(class_probs)), key=class_probs.__getitem__, reverse=True)
    top, second = ranked[0], ranked[1]
    if class_probs[top] - class_probs[second] >= TIE:
        return ""
    return f"A tie: {class_probs[top]:.0%} against {class_probs[second]:.0%}."


def sure_verdict(probability: float, no_preference: float) -> str:
    """How sure DP is of one choice, in a word or two: "sure", "leaning" or "a coin toss" (near no preference)."""
    if probability < no_preference_bar(no_preference):
        return "a coin toss"
    return "sure" if probability >= COMMITTED else "leaning"


def sure_title(factor: str, probability: float, no_preference: float, row: str = "") -> str:
    """A meter's title: the choice (``row``: whose, where an item's rows chose apart), how sure in a word, both
    figures."""
    return (f"{WHAT[factor].capitalize()}{row}: {sure_verdict(probability, no_preference)}, {probability:.0%} "
            f"(no preference: {no_preference:.0%})")


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
        said.append(f"DP gives this {what} to {share:.0%} of the dev items: one {what} for the whole task.")
    changes = task_stats.get("changes_prediction")
    if changes is not None and changes < HARDLY_MATTERS:
        said.append(f"On this task the {what} changes only {changes:.0%} of the dev answers: it decides little.")
    return " ".join(said)


def what_if_reading(factor: str, predicted: list[int], own_answer: int, label_names: tuple[str, ...]) -> str:
    """What moving the prompt (or changing its length) would change for this example: the answer at each candidate
    (``predicted``) against DP's own answer."""
    what = WHAT[factor]
    if len(set(predicted)) == 1:
        return f"The answer is “{label_names[predicted[0]]}” at every {what}: here the {what} changes nothing."
    changed = sum(answer != own_answer for answer in predicted)
    others = ", ".join(f"“{label_names[answer]}”" for answer in sorted(set(predicted) - {own_answer}))
    return (f"At {changed} of {len(predicted)} {what}s the answer changes from DP's “{label_names[own_answer]}” "
            f"to {others}.")


def draws_reading(draws: Draws, temperature: float, samples: int) -> str:
    """What the playground shows: the hard draws follow the chances; the temperature shapes only the soft draw."""
    gap = max(abs(hard - chance) for hard, chance in zip(draws.hard_shares, draws.probabilities))
    return (f"The {samples:,} hard draws follow the chances (within {gap:.0%}), whatever τ. "
            f"At τ = {temperature:g} the soft draw shown puts {max(draws.soft_sample):.0%} on one place; soft draws "
            f"average {draws.soft_top_weight:.0%} (one-hot: 100%; even: {1 / len(draws.probabilities):.0%}).")


def metric_name(task: Task) -> str:
    """What a task's score is: its one metric, or the mean of its two (CB: accuracy and macro-F1)."""
    return score_definition(task.metrics)


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
