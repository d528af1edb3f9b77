"""Explore: both methods on the dev set with intervals, how decided DP's choices are and what they are worth,
their distribution by label and length, and the examples where the methods disagree.

Everything is read from the methods' analyses (``dp_core.analysis``): shipped beside a ready-trained prompt, made once
for a run of this session (the scores first, then every candidate tried on each item).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE, BackboneError
from dp_core.comparison import ChoiceWorth, DevComparison, choice_worth, compare_on_dev
from dp_core.tasks import DataError, Example, Task, get_task

from .. import readings, views
from ..state import (COUNTERFACTUAL_LIMIT, DEV_LIMIT, DP_WHERE, Session, Shared, counterfactual_limit, recorded,
                     task_fields)
from .compare import LEFT, CompareTab, show_item, side_pickers

FINE_PRINT = """
- **How sure**: the median, over the items, of the probability DP gives its own choice. For the place, places that
  make the same layout count as one (every place past the prompt's length puts all of it after the input).
- **Same choice for**: the share of items given the most common choice (for the place: the most common layout).
- **Answers it changes**: the share of items whose answer changes when the choice is forced elsewhere.
- **Best choice per item**: each item gets a choice that predicts its gold label, if any does. An upper bound that
  chance inflates on a small dev set: an item whose answer flips by chance counts as right.
- **Best single choice**: picked on these same dev items, so optimistic too. A checkpoint selected on held-out
  training items also shows the single choice that scored best there.
- Intervals: 95 % bootstrap over the items (whole MultiRC questions).
"""
CHOICES = {"tokens after the input": "tokens_after", "active length": "active_length"}  # plotted: column -> field
SPLITS = ("gold label", "input length")
LENGTH_GROUPS = 3  # the input lengths split into this many groups of about as many items each
DISAGREEMENTS_SHOWN = 10  # rows of the disagreement table: each shown whole, no scroll box


def length_groups(lengths: list[int], groups: int = LENGTH_GROUPS) -> pd.Categorical:
    """The items' input lengths in ``groups`` ranges of about as many items each (this task's own lengths: COPA's
    are all short), named by their token ranges, shortest first."""
    ordered = sorted(lengths)
    edges = sorted({ordered[max(0, len(ordered) * group // groups - 1)] for group in range(1, groups)})
    bounds = [0, *edges, max(ordered)]
    names = [f"{low + 1}-{high} tokens" for low, high in zip(bounds, bounds[1:]) if high > low]
    return pd.cut(lengths, bins=sorted(set(bounds)), labels=names)


def choice_frame(task: Task, examples: list[Example], analysis) -> pd.DataFrame:
    """Each item's layout as DP chose it (its first row), with its gold label and input length."""
    rows_per_item = len(analysis.tokens_after) // analysis.num_items
    firsts = slice(0, None, rows_per_item)
    return pd.DataFrame({
        **{column: getattr(analysis, name)[firsts].tolist() for column, name in CHOICES.items()},
        "gold label": pd.Categorical([task.label_names[e.label] for e in examples], categories=task.label_names),
        "input length": length_groups(analysis.input_lengths[firsts].tolist())})


def choice_plots(frame: pd.DataFrame, slots: int) -> list[gr.BarPlot]:
    """Where DP put the prompt and how long it made it, by gold label and by input length: a bar per candidate."""
    candidates = {"tokens after the input": range(slots + 1), "active length": range(1, slots + 1)}
    tallest = {choice: int(frame[choice].value_counts().max()) for choice in candidates}
    # y to a little above the tallest bar, which otherwise ends at the frame's edge and looks cut off
    return [gr.BarPlot(views.choice_counts(frame, split_by, choice, candidates[choice]),
                       sort=[str(candidate) for candidate in candidates[choice]],
                       y_lim=[0, tallest[choice] + max(1, tallest[choice] // 10)])
            for split_by in SPLITS for choice in candidates]


def shown_table(frame: pd.DataFrame | None, **settings) -> dict:
    """A table's update: shown with ``frame`` (``update["value"]``), or hidden without one (before Explore has run,
    a table has no headers to show)."""
    return gr.update(value=frame, visible=True, **settings) if frame is not None else gr.update(visible=False)


def disagreement_table(task: Task, examples: list[Example], comparison: DevComparison, fixed, dp) -> dict:
    """The first items the two methods answer differently, each row whole, the count in the label."""
    rows = [{"dev #": i, "gold": task.label_names[examples[i].label],
             "fixed": task.label_names[fixed.predictions[i]], "DP": task.label_names[dp.predictions[i]],
             "input": " / ".join(str(examples[i].fields.get(name, "")) for name in task_fields(task.name))[:120]}
            for i in comparison.disagreements[:DISAGREEMENTS_SHOWN]]
    total = len(comparison.disagreements)
    shown = f"the first {len(rows)} of {total}" if total > len(rows) else f"all {total}"
    return shown_table(pd.DataFrame(rows, columns=["dev #", "gold", "fixed", "DP", "input"]),
                       label=f"Where the methods disagree: {shown} items (click a row to open it in Compare)")


def scores_reading(task: Task, comparison: DevComparison, sources: tuple[str, str]) -> tuple[pd.DataFrame, str]:
    answer = task.label_names[comparison.constant_label]
    table = views.scores_table(comparison, sources, answer, readings.metric_name(task))
    said = [readings.difference_reading(comparison.difference.value, comparison.difference.low,
                                        comparison.difference.high, comparison.items),
            readings.baseline_reading({sources[0]: comparison.fixed.value, sources[1]: comparison.dp.value}, answer,
                                      comparison.constant.value)]
    return table, "\n\n".join(sentence for sentence in said if sentence)


def worth_reading(worth: ChoiceWorth, dp_model) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The verdict on DP's choices, their short table, and the fine print (every figure with its interval, the single
    choice picked on held-out items where recorded)."""
    held_out = recorded(dp_model).get("holdout_choices", {})  # checkpoints selected on held-out items
    picks = {factor: record["best_single"] for factor, record in held_out.items()
             if record.get("best_single") is not None}
    said = [readings.choice_verdict(factor, stats) for factor, stats in worth.statistics.items()]
    return ("\n\n".join([f"On the first {worth.items} dev items:", *said]), views.choice_summary(worth.statistics),
            views.choice_table(worth.statistics, worth.intervals, picks))


def hidden_results(message: str) -> tuple:
    """Explore's outputs when there is nothing to show: the reason in one line, the tables and plots empty."""
    hidden = shown_table(None)
    empty = [gr.BarPlot(pd.DataFrame(columns=["items"]))] * len(SPLITS) * len(CHOICES)
    return (hidden, views.error_html(message), "", hidden, *empty, hidden, hidden, "")


def run_exploration(shared: Shared, task_name: str, dp_where: str, left: str,
                    backbone_name: str = DEFAULT_BACKBONE, state: Session | None = None):
    """Both methods on the first dev items: the scores, plots and disagreements, then what DP's choices are worth
    (at once where the analyses are shipped; else the second part follows, every candidate tried on each item).
    ``left``: "counterpart" (like for like) or "ptv2". What is missing is said in one line where the scores go."""
    backbone_name = backbone_name or DEFAULT_BACKBONE
    try:
        fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                                  left if left in LEFT else "counterpart", backbone_name)
        examples = shared.dev_examples(task_name)[:DEV_LIMIT]
    except (DataError, BackboneError) as error:
        yield hidden_results(str(error))
        return
    if fixed is None or dp is None:
        yield hidden_results(f"Explore needs a fixed and a DP {dp_where} prompt for {task_name} on {backbone_name}: "
                             "train them on the Train tab.")
        return
    task = get_task(task_name)
    fixed_analysis, dp_analysis = (shared.analysis(state, side[1], examples) for side in (fixed, dp))
    comparison = shared.once(state, (fixed[1], dp[1]), "comparison",
                             lambda: compare_on_dev(task, examples, fixed_analysis, dp_analysis))
    table, said = scores_reading(task, comparison, (fixed[0], dp[0]))
    scored = (shown_table(table), said)
    plots = choice_plots(choice_frame(task, examples, dp_analysis), dp[1].method.num_tokens)
    disagreeing = disagreement_table(task, examples, comparison, fixed_analysis, dp_analysis)
    place = views.place_note(dp[1].backbone, deep=dp_where == "deep")
    limit = counterfactual_limit(dp[1].backbone, shared.backbone(DEFAULT_BACKBONE))
    if dp_analysis.counterfactual_items < min(limit, len(examples)):  # the slow part is still to come: show the rest
        counted = f"*On the first {min(limit, len(examples))} dev items: trying every candidate place on each…*"
        yield (*scored, counted, shown_table(None), *plots, disagreeing, shown_table(None), place)
    dp_analysis = shared.analysis(state, dp[1], examples, counterfactual_items=limit)
    worth = shared.once(state, (dp[1],), f"worth {dp_analysis.counterfactual_items}",
                        lambda: choice_worth(task, examples, dp_analysis, dp[1].prompt.config.place_given_length))
    verdict, summary, details = worth_reading(worth, dp[1])
    yield (*scored, verdict, shown_table(summary), *plots, disagreeing, shown_table(details), place)


def open_in_compare(table: pd.DataFrame, event: gr.SelectData):
    """Compare opened on the clicked item's dev index (``show_item`` then picks and compares it)."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    return gr.Tabs(selected="compare"), int(table.iloc[row]["dev #"])


@dataclass
class ExploreTab:
    """What other tabs wire to: which models are explored, and the exploration."""

    sides: tuple[gr.Radio, gr.Radio]  # DP, what it is set against
    run: tuple  # (function, inputs, outputs)


def build(shared: Shared, session: gr.State, task: gr.Dropdown, backbone: gr.Dropdown, compare: CompareTab,
          tabs: gr.Tabs) -> ExploreTab:
    gr.Markdown(f"Both methods on the task's dev set: its first {DEV_LIMIT} items at most (the table says how many).")
    with gr.Row():
        dp_kind, left_side = side_pickers("DP", "Against")
    run_explore = gr.Button("Evaluate on the dev set", variant="primary")
    scores = gr.Dataframe(label="Dev score with a 95 % bootstrap interval", interactive=False, visible=False)
    beat = gr.Markdown()
    gr.Markdown("### DP's choices: how sure it is, and what they change")
    choice_verdict = gr.Markdown()
    choice_stats = gr.Dataframe(label="How decided DP is, and what its choices are worth", interactive=False,
                                wrap=True, visible=False)
    gr.Markdown(readings.NO_PREFERENCE_MEANS)
    with gr.Accordion("Every figure, with its interval, and what each means", open=False):
        choice_details = gr.Dataframe(interactive=False, wrap=True, visible=False)
        gr.Markdown(f"Every candidate is tried on each item: on a ready-trained prompt every item above, on a run "
                    f"of this session the first {COUNTERFACTUAL_LIMIT} (fewer on bigger backbones).\n{FINE_PRINT}")
    place = gr.Markdown()
    plots = []
    for split_by in SPLITS:
        with gr.Row():
            plots.append(gr.BarPlot(x="tokens after the input", y="items", color=split_by,
                                    title=f"Where DP put the prompt, by {split_by}"))
            plots.append(gr.BarPlot(x="active length", y="items", color=split_by,
                                    title=f"How long DP made it, by {split_by}"))
    disagreements = gr.Dataframe(label="Where the methods disagree (click a row to open it in Compare)",
                                 interactive=False, wrap=True, column_widths=["8%", "12%", "12%", "12%", "56%"],
                                 max_height=2000, visible=False)

    explored = functools.partial(run_exploration, shared)
    explore_inputs = [task, dp_kind, left_side, backbone, session]
    explore_outputs = [scores, beat, choice_verdict, choice_stats, *plots, disagreements, choice_details, place]
    run_explore.click(explored, explore_inputs, explore_outputs, api_name="explore",
                      show_progress_on=[choice_verdict, choice_stats])  # the scores stay in view while these come
    disagreements.select(open_in_compare, disagreements, [tabs, compare.dev_index], api_visibility="private").then(
        functools.partial(show_item, shared), [task, compare.dev_index, dp_kind, left_side, backbone, session],
        compare.item_outputs, api_visibility="private")
    return ExploreTab((dp_kind, left_side), (explored, explore_inputs, explore_outputs))
