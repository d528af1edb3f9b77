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

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.comparison import ChoiceWorth, DevComparison, choice_worth, compare_on_dev
from dp_core.tasks import DataError, Example, Task, get_task

from .. import readings, views
from ..state import COUNTERFACTUAL_LIMIT, DEV_LIMIT, DP_WHERE, Session, Shared, counterfactual_limit, recorded
from .compare import LEFT, CompareTab, backbone_picker

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


def choice_frame(task: Task, examples: list[Example], analysis) -> pd.DataFrame:
    """Each item's layout as DP chose it (its first row), with its gold label and input length."""
    rows_per_item = len(analysis.tokens_after) // analysis.num_items
    firsts = slice(0, None, rows_per_item)
    return pd.DataFrame({
        **{column: getattr(analysis, name)[firsts].tolist() for column, name in CHOICES.items()},
        "gold label": pd.Categorical([task.label_names[e.label] for e in examples], categories=task.label_names),
        "input length": pd.cut(analysis.input_lengths[firsts].tolist(), bins=[0, 32, 64, 96, 10_000],
                               labels=["1-32 tokens", "33-64 tokens", "65-96 tokens", "97+ tokens"])})


def choice_plots(frame: pd.DataFrame, slots: int) -> list[gr.BarPlot]:
    """Where DP put the prompt and how long it made it, by gold label and by input length: a bar per candidate."""
    candidates = {"tokens after the input": range(slots + 1), "active length": range(1, slots + 1)}
    tallest = {choice: int(frame[choice].value_counts().max()) for choice in candidates}
    # y to a little above the tallest bar, which otherwise ends at the frame's edge and looks cut off
    return [gr.BarPlot(views.choice_counts(frame, split_by, choice, candidates[choice]),
                       sort=[str(candidate) for candidate in candidates[choice]],
                       y_lim=[0, tallest[choice] + max(1, tallest[choice] // 10)])
            for split_by in SPLITS for choice in candidates]


def disagreement_table(task: Task, examples: list[Example], comparison: DevComparison, fixed, dp) -> pd.DataFrame:
    rows = [{"dev #": i, "gold": task.label_names[examples[i].label],
             "fixed": task.label_names[fixed.predictions[i]], "DP": task.label_names[dp.predictions[i]],
             "input": " / ".join(str(v) for v in examples[i].fields.values())[:160]} for i in comparison.disagreements]
    return pd.DataFrame(rows, columns=["dev #", "gold", "fixed", "DP", "input"])


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


def run_exploration(shared: Shared, task_name: str, dp_where: str, left: str,
                    backbone_name: str = DEFAULT_BACKBONE, state: Session | None = None):
    """Both methods on the first dev items: the scores, plots and disagreements, then what DP's choices are worth
    (at once where the analyses are shipped; else the second part follows, every candidate tried on each item)."""
    fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                              LEFT.get(left, "counterpart"), backbone_name or DEFAULT_BACKBONE)
    if fixed is None or dp is None:
        raise gr.Error(f"Explore needs a fixed and a DP {dp_where} prompt for this task on {backbone_name}: "
                       "train them first.")
    try:
        examples = shared.dev_examples(task_name)[:DEV_LIMIT]
    except DataError as error:
        raise gr.Error(str(error)) from None
    task = get_task(task_name)
    fixed_analysis, dp_analysis = (shared.analysis(state, side[1], examples) for side in (fixed, dp))
    comparison = shared.once(state, (fixed[1], dp[1]), "comparison",
                             lambda: compare_on_dev(task, examples, fixed_analysis, dp_analysis))
    scored = scores_reading(task, comparison, (fixed[0], dp[0]))
    plots = choice_plots(choice_frame(task, examples, dp_analysis), dp[1].method.num_tokens)
    disagreeing = disagreement_table(task, examples, comparison, fixed_analysis, dp_analysis)
    limit = counterfactual_limit(dp[1].backbone, shared.backbone(DEFAULT_BACKBONE))
    if dp_analysis.counterfactual_items < min(limit, len(examples)):  # the slow part is still to come: show the rest
        counted = f"*On the first {min(limit, len(examples))} dev items: trying every candidate place on each…*"
        yield (*scored, counted, None, *plots, disagreeing, None, views.place_note(dp[1].backbone))
    dp_analysis = shared.analysis(state, dp[1], examples, counterfactual_items=limit)
    worth = shared.once(state, (dp[1],), f"worth {dp_analysis.counterfactual_items}",
                        lambda: choice_worth(task, examples, dp_analysis, dp[1].prompt.config.place_given_length))
    verdict, summary, details = worth_reading(worth, dp[1])
    yield (*scored, verdict, summary, *plots, disagreeing, details, views.place_note(dp[1].backbone))


def open_in_compare(table: pd.DataFrame, dp_where, left, backbone_name, event: gr.SelectData):
    """The clicked item in Compare, with the same two models as here."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    return gr.Tabs(selected="compare"), int(table.iloc[row]["dev #"]), dp_where, left, backbone_name


@dataclass
class ExploreTab:
    """What other tabs wire to: which models are explored, and the exploration."""

    sides: tuple[gr.Radio, gr.Radio, gr.Dropdown]  # DP, what it is set against, the backbone
    run: tuple  # (function, inputs, outputs)


def build(shared: Shared, session: gr.State, task: gr.Dropdown, compare: CompareTab, tabs: gr.Tabs) -> ExploreTab:
    gr.Markdown(f"Both methods on the task's dev set: its first {DEV_LIMIT} items at most (the table says how many).")
    with gr.Row():
        dp_kind = gr.Radio(list(DP_WHERE), value="deep", label="DP")
        left_side = gr.Radio(list(LEFT), value=next(iter(LEFT)), label="Against")
        backbone = backbone_picker(shared)
    run_explore = gr.Button("Evaluate on the dev set", variant="primary")
    scores = gr.Dataframe(label="Dev score with a 95 % bootstrap interval", interactive=False)
    beat = gr.Markdown()
    gr.Markdown("### DP's choices: how sure it is, and what they change")
    choice_verdict = gr.Markdown()
    choice_stats = gr.Dataframe(label="How decided DP is, and what its choices are worth", interactive=False,
                                wrap=True)
    with gr.Accordion("Every figure, with its interval, and what each means", open=False):
        choice_details = gr.Dataframe(interactive=False, wrap=True)
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
                                 interactive=False, wrap=True, column_widths=["8%", "12%", "12%", "12%", "56%"])

    explored = functools.partial(run_exploration, shared)
    explore_inputs = [task, dp_kind, left_side, backbone, session]
    explore_outputs = [scores, beat, choice_verdict, choice_stats, *plots, disagreements, choice_details, place]
    run_explore.click(explored, explore_inputs, explore_outputs, api_name="explore",
                      show_progress_on=[choice_verdict, choice_stats])  # the scores stay in view while these come
    pick, pick_inputs, pick_outputs = compare.pick
    run_compare, compare_inputs, compare_outputs = compare.compare
    disagreements.select(open_in_compare, [disagreements, dp_kind, left_side, backbone],
                         [tabs, compare.dev_index, *compare.sides], api_visibility="private").then(
        pick, pick_inputs, pick_outputs, api_visibility="private").then(
        run_compare, compare_inputs, compare_outputs, api_visibility="private")
    return ExploreTab((dp_kind, left_side, backbone), (explored, explore_inputs, explore_outputs))
