"""Explore: both methods on the dev set with intervals, how decided DP's choices are and what they are worth,
their distribution by label and length, and the examples where the methods disagree."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.choices import HARDLY_MATTERS, ChoiceStatistics, split_choice_statistics
from dp_core.explain import explain_examples
from dp_core.metrics import compute_metrics, paired_difference_interval, score_interval
from dp_core.tasks import DataError, best_constant_guess, constant_score, get_task

from .. import views
from ..state import COUNTERFACTUAL_LIMIT, DEV_LIMIT, DP_WHERE, Session, Shared, counterfactual_limit, recorded
from .compare import LEFT, CompareTab, backbone_picker

VERDICT_NOTE = ("The oracle gives each item a choice that predicts its gold label if any does: an upper bound "
                "that noise inflates on a small dev set (an item whose prediction flips by chance counts as right). "
                "The best single choice is picked on these same dev items, so it is optimistic too; a checkpoint "
                "selected on held-out training items also shows the single choice that scored best there.")


def choice_statistics_of(shared: Shared, state: Session | None, model, examples) -> dict[str, ChoiceStatistics]:
    """DP's choice statistics on ``examples`` (the first dev items), computed once per model (ready-trained: for
    everyone)."""
    own = state is not None and any(model is m for runs in state.runs.values() for m in runs.values())
    cache = state.choice_stats if own else shared.choice_stats
    if id(model) not in cache:
        split = model.encode_examples(examples)
        cache[id(model)] = split_choice_statistics(model, split)
    return cache[id(model)]


def verdict(stats: dict[str, ChoiceStatistics]) -> str:
    """What the statistics say, in a sentence per factor."""
    lines = []
    for factor, s in stats.items():
        where = "place" if factor == "position" else factor
        if (s.changes_prediction or 0.0) < HARDLY_MATTERS:
            lines.append(f"**{factor}**: the prediction is the same whatever the {where} for "
                         f"{1 - (s.changes_prediction or 0.0):.0%} of these items: on this backbone and task DP's "
                         f"{where} hardly matters, so there is little for it to decide.")
        elif s.collapse >= 0.9:
            lines.append(f"**{factor}**: DP gives {s.collapse:.0%} of the items the same {where}: it acts as one "
                         "choice for the whole task.")
        elif s.commitment < 2.0 / len(s.candidates):
            lines.append(f"**{factor}**: DP has no real preference (median top choice {s.commitment:.0%} of "
                         f"{len(s.candidates)}): its picks are close to coin tosses.")
        else:
            lines.append(f"**{factor}**: DP's median top choice has probability {s.commitment:.0%}; its own choices "
                         f"score {s.own_score:.3f} against {max(s.single_scores):.3f} for the best single one.")
        if s.layout_commitment is not None and (s.changes_prediction or 0.0) >= HARDLY_MATTERS:
            lines[-1] += (f" Counted over distinct layouts (every place past the length puts all its tokens after "
                          f"the input), the median top layout has {s.layout_commitment:.0%}, against "
                          f"{s.layout_no_preference:.0%} for a network with no preference.")
    return "\n\n".join(lines)


def build(shared: Shared, session: gr.State, task: gr.Dropdown, compare: CompareTab, tabs: gr.Tabs) -> gr.Dropdown:
    """The tab; returns its backbone picker."""
    gr.Markdown(f"Both methods on the task's dev set (the first {DEV_LIMIT} items).")
    with gr.Row():
        dp_kind = gr.Radio(list(DP_WHERE), value="deep", label="DP")
        left_side = gr.Radio(list(LEFT), value=next(iter(LEFT)), label="Against")
        backbone = backbone_picker(shared)
    run_explore = gr.Button("Evaluate on the dev set", variant="primary")
    scores = gr.Dataframe(label="Dev score with a 95 % bootstrap interval", interactive=False)
    beat = gr.Markdown()
    gr.Markdown(f"**DP's choices** on the first dev items ({COUNTERFACTUAL_LIMIT} on the default backbone, fewer on "
                f"bigger ones), every candidate tried on each (scores with 95 % bootstrap intervals). {VERDICT_NOTE}")
    choice_verdict = gr.Markdown()
    choice_stats = gr.Dataframe(label="How decided DP is, and what its choices are worth", interactive=False)
    choice_plots = []
    for split_by in ("gold label", "input length"):
        with gr.Row():
            choice_plots.append(gr.BarPlot(x="tokens after the input", y="items", color=split_by,
                                           title=f"Where DP put the prompt, by {split_by}"))
            choice_plots.append(gr.BarPlot(x="active length", y="items", color=split_by,
                                           title=f"How long DP made it, by {split_by}"))
    disagreements = gr.Dataframe(label="Where the methods disagree (click a row to open it in Compare)",
                                 interactive=False)

    def run_exploration(task_name, dp_where, left, backbone_name=DEFAULT_BACKBONE, state=None,
                        progress=gr.Progress()):
        fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                                  LEFT.get(left, "counterpart"), backbone_name or DEFAULT_BACKBONE)
        if fixed is None or dp is None:
            raise gr.Error(f"Explore needs a fixed and a DP {dp_where} prompt for this task on {backbone_name}: "
                           "train them first.")
        try:
            examples = shared.dev_examples(task_name)[:DEV_LIMIT]
        except DataError as error:
            raise gr.Error(str(error)) from None
        task_spec = get_task(task_name)
        labels, groups = [e.label for e in examples], [e.group for e in examples]
        results, table = {}, []
        for step, (name, (source, model)) in enumerate((("fixed", fixed), ("dp", dp))):
            progress(step / 3, desc=f"{source} on the dev set")
            explanation = explain_examples(model, examples)
            firsts = [explanation.item(i)[0] for i in range(len(examples))]
            predictions = [max(range(len(d.class_probs)), key=d.class_probs.__getitem__) for d in firsts]
            metrics = compute_metrics(task_spec.metrics, predictions, labels, groups, task_spec.num_labels)
            results[name] = (firsts, predictions, metrics["score"])
            low, high = score_interval(task_spec.metrics, predictions, labels, groups, task_spec.num_labels)
            table.append({"method": source, "score": round(metrics["score"], 3),
                          "95 % interval": f"{low:.3f} – {high:.3f}", "items": len(examples)})
        gain_low, gain_high = paired_difference_interval(task_spec.metrics, [results["dp"][1]], [results["fixed"][1]],
                                                         labels, groups, task_spec.num_labels)
        gain = results["dp"][2] - results["fixed"][2]
        table.append({"method": "DP − fixed (paired, same items)", "score": round(gain, 3),
                      "95 % interval": f"{gain_low:+.3f} – {gain_high:+.3f}", "items": len(examples)})
        guess = best_constant_guess(task_spec, examples)  # the bar a trained prompt must clear on these items
        answer, baseline = task_spec.label_names[guess], constant_score(task_spec, guess, examples)
        low, high = score_interval(task_spec.metrics, [guess] * len(examples), labels, groups, task_spec.num_labels)
        table.append({"method": f"always “{answer}” (the best single answer on these items)",
                      "score": round(baseline, 3), "95 % interval": f"{low:.3f} – {high:.3f}",
                      "items": len(examples)})
        head = examples[:counterfactual_limit(dp[1].backbone, shared.backbone(DEFAULT_BACKBONE))]
        decisions, dp_predictions, _ = results["dp"]
        gold_names = [task_spec.label_names[y] for y in labels]
        lengths = [sum(kind == "input" for _, kind in d.layout) for d in decisions]
        frame = pd.DataFrame({"tokens after the input": [d.tokens_after for d in decisions],
                              "active length": [d.active_length for d in decisions],
                              "gold label": pd.Categorical(gold_names, categories=task_spec.label_names),
                              "input length": pd.cut(lengths, bins=[0, 32, 64, 96, 10_000],
                                                     labels=["1-32 tokens", "33-64 tokens", "65-96 tokens",
                                                             "97+ tokens"])})
        slots = decisions[0].num_slots
        candidates = {"tokens after the input": range(slots + 1), "active length": range(1, slots + 1)}
        tallest = {choice: int(frame[choice].value_counts().max()) for choice in candidates}
        # y to a little above the tallest bar, which otherwise ends at the frame's edge and looks cut off
        counts = [gr.BarPlot(views.choice_counts(frame, split_by, choice, candidates[choice]),
                             sort=[str(candidate) for candidate in candidates[choice]],
                             y_lim=[0, tallest[choice] + max(1, tallest[choice] // 10)])
                  for split_by in ("gold label", "input length") for choice in candidates]
        fixed_predictions = results["fixed"][1]
        rows = [{"dev #": i, "gold": gold_names[i], "fixed": task_spec.label_names[fixed_predictions[i]],
                 "DP": task_spec.label_names[dp_predictions[i]],
                 "input": " / ".join(str(v) for v in examples[i].fields.values())[:160]}
                for i in range(len(examples)) if fixed_predictions[i] != dp_predictions[i]]
        reading = " ".join([views.difference_reading(gain, gain_low, gain_high, len(examples)),
                            views.baseline_reading({table[0]["method"]: results["fixed"][2],
                                                    table[1]["method"]: results["dp"][2]}, answer, baseline)])
        scored = (pd.DataFrame(table), reading.strip())
        disagreeing = pd.DataFrame(rows, columns=["dev #", "gold", "fixed", "DP", "input"])
        counted = f"On the first {len(head)} dev items"
        if len(head) < min(COUNTERFACTUAL_LIMIT, len(examples)):
            counted += f" (not {COUNTERFACTUAL_LIMIT}: each costs more on this backbone)"
        # The scores, distributions and disagreements at once; the counterfactuals (every candidate on every item,
        # the slow part) follow.
        yield (*scored, f"*{counted}: trying every candidate place on each…*", None, *counts, disagreeing)
        progress(2 / 3, desc=f"DP with the prompt at every candidate place, on {len(head)} items")
        stats = choice_statistics_of(shared, state, dp[1], head)
        intervals = {(factor, name): score_interval(task_spec.metrics, predictions, [e.label for e in head],
                                                    [e.group for e in head], task_spec.num_labels)
                     for factor, s in stats.items() for name, predictions in s.predictions.items()}
        held_out = recorded(dp[1]).get("holdout_choices", {})  # checkpoints selected on held-out items
        picks = {factor: record["best_single"] for factor, record in held_out.items()
                 if record.get("best_single") is not None}
        yield (*scored, "\n\n".join([counted + ":", verdict(stats), views.place_note(dp[1].backbone)]),
               views.choice_table(stats, intervals, picks), *counts, disagreeing)

    run_explore.click(run_exploration, [task, dp_kind, left_side, backbone, session],
                      [scores, beat, choice_verdict, choice_stats, *choice_plots, disagreements], api_name="explore",
                      show_progress_on=[choice_verdict, choice_stats])  # the scores stay in view while these come

    def open_in_compare(table: pd.DataFrame, dp_where, left, backbone_name, event: gr.SelectData):
        """The clicked item in Compare, with the same two models as here."""
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        return gr.Tabs(selected="compare"), int(table.iloc[row]["dev #"]), dp_where, left, backbone_name

    pick, pick_inputs, pick_outputs = compare.pick
    run_compare, compare_inputs, compare_outputs = compare.compare
    disagreements.select(open_in_compare, [disagreements, dp_kind, left_side, backbone],
                         [tabs, compare.dev_index, *compare.sides], api_visibility="private").then(
        pick, pick_inputs, pick_outputs, api_visibility="private").then(
        run_compare, compare_inputs, compare_outputs, api_visibility="private")
    return backbone
