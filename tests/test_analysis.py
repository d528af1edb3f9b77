"""A prompt's analysis on dev: what it holds, how it is kept beside a checkpoint, and that the app reads it."""

import json

import pytest
import torch

from app.state import CHECKPOINTS
from app.tabs.compare import item_batch
from dp_core.analysis import DEV_ITEMS, DevAnalysis, add_counterfactuals, analyse, is_current, load_analysis
from dp_core.comparison import choice_worth, compare_on_dev
from dp_core.explain import counterfactuals, explain_examples
from dp_core.model import PromptClassifier
from dp_core.prompts import PTuningV2Config
from dp_core.tasks import TASKS, load_examples
from tests.test_choices import batch_of, dp
from tests.test_dynamic import spread_choices

SHIPPED = [path.parent for path in sorted(CHECKPOINTS.rglob("config.json"))]


def strong_dp(backbone, task, data_dir, **options):
    """A DP whose candidates visibly change its output (a strong head and prompt, choices spread over the items)."""
    model = dp(backbone, task, **options)
    spread_choices(model, batch_of(backbone, data_dir, task))
    with torch.no_grad():
        model.head[1].weight.normal_(std=1.0)
        for pool in (model.prompt.input_pool, model.prompt.deep_pool):
            if pool is not None:
                pool.normal_(std=3.0)
    return model


@pytest.mark.parametrize("task", ["rte", "copa"])
def test_an_analysis_holds_what_explaining_and_forcing_each_item_give(task, tiny_backbone, data_dir):
    examples = load_examples(task, "val", data_dir)[:6]
    model = strong_dp(tiny_backbone, task, data_dir)
    analysis = analyse(model, examples, batch_size=4)
    explained = explain_examples(model, examples)
    rows = [decision for i in range(len(examples)) for decision in explained.item(i)]
    assert analysis.num_items == 6 and len(analysis.tokens_after) == len(rows) == 6 * len(examples[0].pairs)
    assert torch.allclose(analysis.class_probs, torch.tensor([explained.item(i)[0].class_probs for i in range(6)]),
                          atol=1e-5)
    assert analysis.tokens_after.tolist() == [row.tokens_after for row in rows]
    assert analysis.active_length.tolist() == [row.active_length for row in rows]
    assert analysis.input_lengths.tolist() == [sum(kind == "input" for _, kind in row.layout) for row in rows]
    assert torch.allclose(analysis.choice_probs["position"], torch.tensor([row.position_probs for row in rows]))
    for index, example in enumerate(examples):  # the same class probabilities as forcing the item on its own
        for factor in ("position", "length", "pool"):
            alone = counterfactuals(model, item_batch(model, example), factor)[0]
            assert torch.allclose(analysis.counterfactual[factor][index], alone, atol=1e-5)


def test_the_scores_come_first_and_the_candidates_are_added_on_the_first_items(tiny_backbone, data_dir):
    examples = load_examples("rte", "val", data_dir)[:8]
    model = strong_dp(tiny_backbone, "rte", data_dir, factors=("position",))
    first = analyse(model, examples, counterfactual_items=0)
    assert first.counterfactual == {} and first.counterfactual_items == 0
    added = add_counterfactuals(first, model, examples, items=3)
    assert added.counterfactual_items == 3 and torch.equal(added.class_probs, first.class_probs)
    assert torch.allclose(added.counterfactual["position"], analyse(model, examples).counterfactual["position"][:3],
                          atol=1e-6)
    fixed = analyse(PromptClassifier(tiny_backbone, "rte", PTuningV2Config(num_tokens=4)).eval(), examples)
    assert fixed.choice_probs == {} and fixed.counterfactual == {} and fixed.tokens_after.sum() == 0
    assert fixed.active_length.tolist() == [4] * 8  # every slot of a fixed prompt is on, all before the input


def test_an_analysis_kept_beside_a_checkpoint_is_read_only_for_its_weights_and_items(tmp_path, tiny_backbone,
                                                                                     data_dir):
    examples = load_examples("cb", "val", data_dir)[:5]
    model = strong_dp(tiny_backbone, "cb", data_dir)
    folder = model.save_pretrained(tmp_path / "dp")
    assert not is_current(folder, examples) and load_analysis(folder, model, examples) is None
    analysis = analyse(model, examples)
    analysis.save(folder)
    assert is_current(folder, examples)
    read = load_analysis(folder, model, examples)
    assert list(read.choice_probs) == list(read.counterfactual) == ["position", "length", "pool"]  # the model's order
    for name in ("class_probs", "input_lengths", "tokens_after", "active_length"):
        assert torch.equal(getattr(read, name), getattr(analysis, name))
    assert all(torch.equal(read.counterfactual[f], analysis.counterfactual[f]) for f in analysis.counterfactual)
    assert load_analysis(folder, model, examples[:4]) is None and not is_current(folder, examples[1:])  # other items
    with torch.no_grad():
        model.head[1].bias.add_(0.1)  # other weights: the analysis is of an earlier checkpoint
    assert load_analysis(folder, model, examples) is None
    model.save_pretrained(folder)
    assert not is_current(folder, examples)


def made(class_probs, tokens_after=None):
    items = len(class_probs)
    zeros = torch.zeros(items, dtype=torch.long)
    return DevAnalysis(torch.tensor(class_probs), zeros + 10, zeros if tokens_after is None else tokens_after,
                       zeros + 4, {}, {}, "w", "e")


def test_a_comparison_pairs_the_two_methods_on_the_same_items(data_dir):
    examples = load_examples("rte", "val", data_dir)[:6]
    gold = [e.label for e in examples]
    fixed = made([[1.0, 0.0] if y == 0 else [0.0, 1.0] for y in gold])  # right on every item
    dp_probs = [[1.0, 0.0] if y == 0 else [0.0, 1.0] for y in gold]
    dp_probs[0], dp_probs[1] = dp_probs[0][::-1], dp_probs[1][::-1]  # wrong on the first two
    comparison = compare_on_dev(TASKS["rte"], examples, fixed, made(dp_probs))
    assert comparison.fixed.value == 1.0 and comparison.dp.value == pytest.approx(4 / 6)
    assert comparison.difference.value == pytest.approx(-2 / 6) and comparison.difference.high <= 0.0
    assert comparison.disagreements == [0, 1] and comparison.items == 6
    most = max(set(gold), key=gold.count)
    assert comparison.constant_label == most and comparison.constant.value == pytest.approx(gold.count(most) / 6)
    with pytest.raises(ValueError, match="do not match"):
        compare_on_dev(TASKS["rte"], examples[:5], fixed, made(dp_probs))


def test_choice_worth_scores_the_items_whose_candidates_were_tried(tiny_backbone, data_dir):
    examples = load_examples("rte", "val", data_dir)[:8]
    model = strong_dp(tiny_backbone, "rte", data_dir, factors=("position", "length"))
    analysis = add_counterfactuals(analyse(model, examples, counterfactual_items=0), model, examples, items=5)
    worth = choice_worth(TASKS["rte"], examples, analysis)
    assert worth.items == 5 and set(worth.statistics) == {"position", "length"}
    position = worth.statistics["position"]
    assert sum(position.counts) == 8  # how sure and how often the same: every row
    assert len(position.predictions["own"]) == 5 and position.oracle_score >= position.own_score  # scores: the 5
    assert set(worth.intervals) == {(f, n) for f in ("position", "length") for n in ("own", "best single", "oracle")}


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda folder: "/".join(folder.parts[-3:]))
def test_every_shipped_prompt_has_a_current_analysis_of_its_first_dev_items(folder, data_dir):
    task = json.loads((folder / "config.json").read_text())["task"]
    examples = load_examples(task, "val", data_dir)[:DEV_ITEMS]
    assert is_current(folder, examples), f"run: python -m dp_core.analysis {folder} --data-dir <SuperGLUE folder>"


def test_explore_and_the_what_if_of_a_dev_item_on_a_shipped_prompt_run_no_backbone_pass(data_dir, monkeypatch):
    from app import state
    from app.tabs.compare import stored_what_if
    from app.tabs.explore import run_exploration

    shared = state.Shared(str(data_dir))
    def refuse(*args, **kwargs):
        raise AssertionError("the backbone ran")

    monkeypatch.setattr(shared.backbone(state.DEFAULT_BACKBONE).model, "forward", refuse)
    for task, where in (("cb", "deep"), ("wic", "input")):
        updates = list(run_exploration(shared, task, where, "counterpart"))
        assert len(updates) == 1, "a shipped analysis holds everything: one complete update"
        table, _, verdict, choices, *_ = updates[0]
        items = min(DEV_ITEMS, len(load_examples(task, "val", data_dir)))
        assert set(table["value"]["items"]) == {items} and f"On the first {items} dev items" in verdict
        assert len(choices["value"]) == 3  # position, length and pool, each tried on every item
        _, dp_side = shared.models(None, task, where)
        assert set(stored_what_if(shared, None, dp_side[1], task, items - 1)) == {"position", "length", "pool"}


def test_explore_on_a_run_of_this_session_shows_the_scores_then_the_choices_and_keeps_them_for_the_session(
        data_dir, tiny_backbone):
    from app import state
    from app.tabs.explore import run_exploration
    from dp_core.dynamic import DynamicPromptConfig

    shared = state.Shared(str(data_dir))
    shared.backbones[tiny_backbone.name] = tiny_backbone
    fixed = PromptClassifier(tiny_backbone, "cb", PTuningV2Config(num_tokens=4)).eval()
    dp_model = PromptClassifier(tiny_backbone, "cb", DynamicPromptConfig(num_tokens=4, where="deep")).eval()
    session = state.Session(runs={("cb", tiny_backbone.name): {state.FIXED: fixed, "DP deep: position": dp_model}})
    first, last = run_exploration(shared, "cb", "deep", "ptv2", tiny_backbone.name, session)
    # the scores first, the choices to come (their table hidden meanwhile)
    assert first[3] == {"__type__": "update", "visible": False} and "trying every candidate" in first[2]
    assert first[0]["value"].equals(last[0]["value"]) and "On the first 56 dev items" in last[2]
    assert len(last[3]["value"]) == 1 and last[3]["visible"]
    assert set(session.analyses) == {id(fixed), id(dp_model)} and session.analyses[id(dp_model)].counterfactual_items
    assert not set(shared.analyses) & set(session.analyses)  # a session's runs stay with the session
    again = list(run_exploration(shared, "cb", "deep", "ptv2", tiny_backbone.name, session))
    assert len(again) == 1 and again[0][0]["value"].equals(last[0]["value"])  # made once: read back at once


def test_the_notable_items_are_where_the_place_changes_the_answer_where_dp_is_sure_and_where_it_has_no_preference(
        data_dir):
    from dp_core.comparison import notable_items

    examples = load_examples("rte", "val", data_dir)[:4]
    gold = [e.label for e in examples]
    own = [gold[0], 1 - gold[1], gold[2], gold[3]]  # DP wrong on item 1 only
    analysis = made([[1.0, 0.0] if y == 0 else [0.0, 1.0] for y in own])
    tops = torch.tensor([0.9, 0.24, 0.6, 0.5])  # five places: under 0.4 is no preference
    analysis.choice_probs["position"] = torch.cat([tops[:, None], ((1 - tops) / 4)[:, None].expand(-1, 4)], 1)
    forced = torch.zeros(4, 5, 2)
    forced[torch.arange(4), :, torch.tensor(own)] = 1.0  # every place gives DP's own answer ...
    forced[1, 1:] = forced[1, 1:].flip(-1)  # ... but two places change item 1's (DP wrong there)
    forced[2, 2] = forced[2, 2].flip(-1)  # ... and one place item 2's (DP right there: shown first)
    analysis.counterfactual["position"] = forced
    picked = notable_items(analysis, examples)
    assert (picked.place_matters, picked.sure_and_right, picked.no_preference) == (2, 0, 1)
    analysis.choice_probs["position"][1] = torch.tensor([0.7, 0.1, 0.1, 0.05, 0.05])  # every item now prefers one
    forced[2, 2] = forced[2, 1]
    assert notable_items(analysis, examples).no_preference is None
    assert notable_items(analysis, examples).place_matters == 1  # the only item whose answer the place changes
    assert notable_items(made([[1.0, 0.0]] * 4), examples).place_matters is None  # a fixed prompt has no place
    analysis.class_probs[1] = torch.tensor([0.45, 0.55]) if own[1] == 1 else torch.tensor([0.55, 0.45])
    assert notable_items(analysis, examples).place_matters is None  # a 10-point margin is a coin toss: not shown


def test_the_first_example_a_visitor_sees_is_input_dp_where_the_place_changes_the_answer_as_the_lesson_says(
        data_dir):
    from pathlib import Path

    from app import state
    from app.tabs.start import first_example

    from dp_core.comparison import CLEAR_MARGIN, answer_margins

    shared = state.Shared(str(data_dir))
    task, index = first_example(shared, "cb")
    assert task != "cb"  # the default backbone's CB has no such item: the first task that has one (the page says so)
    assert first_example(shared, task) == (task, index)  # a task that has one keeps it
    _, dp_side = shared.models(None, task, "input")
    analysis = shared.known_analysis(None, dp_side[1], shared.dev_examples(task)[:DEV_ITEMS])
    answers = analysis.counterfactual["position"][index].argmax(-1)
    assert len(set(answers.tolist())) > 1  # the place changes this item's answer ...
    assert answer_margins(analysis.class_probs)[index] >= CLEAR_MARGIN  # ... which DP gives clearly
    lesson = (Path(__file__).parent.parent / "docs" / "teaching.md").read_text()
    assert f"{task.upper()} dev example {index}" in lesson  # docs/teaching.md names the example the page shows
