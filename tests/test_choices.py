import logging
import math

import pytest
import torch

from dp_core.choices import (choice_statistics, layout_commitment, layout_probabilities, predict_split,
                             split_choice_statistics)
from dp_core.config import TrainConfig
from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import counterfactuals
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PTuningV2Config
from dp_core.tasks import get_task, load_examples
from dp_core.train import run
from tests.test_dynamic import spread_choices


def batch_of(backbone, data_dir, task, count=6):
    examples = load_examples(task, "val", data_dir)[:count]
    split = encode_examples(backbone.tokenizer, get_task(task), examples, max_length=48)
    return collate(split, list(range(count)), backbone.tokenizer.pad_token_id)


def dp(backbone, task, **options):
    config = DynamicPromptConfig(**{"num_tokens": 4, "prompt_dropout": 0.0, "factors": ("position", "length", "pool"),
                                    **options})
    return PromptClassifier(backbone, task, config, HeadConfig(dropout=0.0, backbone_dropout=False)).eval()


@pytest.mark.parametrize("task", ["rte", "copa"])
@pytest.mark.parametrize("where", ["input", "deep"])
@pytest.mark.parametrize("factor", ["position", "length", "pool"])
def test_counterfactuals_equal_forcing_one_candidate_at_a_time(task, where, factor, tiny_backbone, data_dir):
    batch = batch_of(tiny_backbone, data_dir, task)
    model = dp(tiny_backbone, task, where=where, pool_size=3)
    spread_choices(model, batch)
    with torch.no_grad():  # a strong head and prompt, so the candidates visibly change the output
        model.head[1].weight.normal_(std=1.0)
        for pool in (model.prompt.input_pool, model.prompt.deep_pool):
            if pool is not None:
                pool.normal_(std=3.0)
    rows = batch.input_ids.shape[0]
    stacked = counterfactuals(model, batch, factor, max_rows=2 * rows)  # two candidates per pass
    size = model.prompt.sizes[factor]
    assert stacked.shape == (batch.num_items, size, get_task(task).num_labels)
    with torch.no_grad():
        one_at_a_time = torch.stack([model(batch, forced={factor: torch.full((rows,), c)}).softmax(-1)
                                     for c in range(size)], dim=1)
    assert torch.allclose(stacked, one_at_a_time, atol=1e-5)
    spread = (stacked[:, 0].log() - stacked[:, -1].log()).abs().max()
    assert spread > 1e-3, "the candidates must make a difference here"
    with torch.no_grad():  # forcing each row's own choice gives the model's own output
        own = model.encode(batch).plan
        chosen = {"position": own.split_position, "length": own.active.sum(-1) - 1}.get(factor)
        if chosen is not None:
            assert torch.allclose(model(batch, forced={factor: chosen}), model(batch), atol=1e-6)


@pytest.mark.parametrize("where", ["input", "deep"])
def test_place_counterfactuals_past_the_longest_prompt_equal_forcing_them(where, tiny_backbone, data_dir):
    """Counterfactuals compute the places up to the batch's longest prompt and repeat the last: still exact."""
    batch = batch_of(tiny_backbone, data_dir, "copa")
    model = dp(tiny_backbone, "copa", where=where)
    spread_choices(model, batch)
    with torch.no_grad():
        model.head[1].weight.normal_(std=1.0)
        for pool in (model.prompt.input_pool, model.prompt.deep_pool):
            if pool is not None:
                pool.normal_(std=3.0)
        model.prompt.heads["length"].weight.zero_()
        model.prompt.heads["length"].bias.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0]))  # two tokens on every row
        assert (model.encode(batch).plan.active.sum(-1) == 2).all()
        rows = batch.input_ids.shape[0]
        one_at_a_time = torch.stack([model(batch, forced={"position": torch.full((rows,), c)}).softmax(-1)
                                     for c in range(5)], dim=1)
    stacked = counterfactuals(model, batch, "position")
    assert torch.allclose(stacked, one_at_a_time, atol=1e-5)
    assert (stacked[:, 0] - stacked[:, 2]).abs().max() > 1e-3, "the places before the length must differ"


def test_counterfactuals_refuse_what_the_model_does_not_choose(tiny_backbone, data_dir):
    batch = batch_of(tiny_backbone, data_dir, "rte")
    with pytest.raises(ValueError, match="does not choose 'length'"):
        counterfactuals(dp(tiny_backbone, "rte", factors=("position",)), batch, "length")
    fixed = PromptClassifier(tiny_backbone, "rte", PTuningV2Config(num_tokens=4)).eval()
    with pytest.raises(ValueError, match="does not choose"):
        counterfactuals(fixed, batch, "position")


def test_choice_statistics_on_a_hand_made_distribution():
    task = get_task("rte")  # accuracy; labels 0/1
    # Four rows, three candidates: two sure of candidate 0, one sure of 2, one uniform (its argmax is 0).
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])
    labels, groups = [0, 1, 1, 0], ["a", "b", "c", "d"]
    # Predicted class of each item under each forced candidate (as probabilities).
    forced_class = torch.tensor([[0, 1, 1], [0, 0, 0], [1, 0, 1], [1, 0, 1]])
    counterfactual = torch.nn.functional.one_hot(forced_class, 2).float()
    own = [0, 0, 1, 1]
    stats = choice_statistics("position", probs, task, labels, groups, own, counterfactual)
    assert stats.candidates == ["0", "1", "2"] and stats.counts == [3, 0, 1]
    assert stats.commitment == pytest.approx(0.85)  # median of 0.9, 0.8, 1.0, 1/3
    entropies = [-sum(p * math.log(p) for p in row if p > 0) / math.log(3) for row in probs.tolist()]
    assert stats.entropy == pytest.approx(sum(entropies) / 4, abs=1e-5)
    assert stats.collapse == 0.75 and stats.most_common == 0
    assert stats.own_score == 0.5
    assert stats.single_scores == [0.5, 0.25, 0.25] and stats.best_single == 0
    assert stats.oracle_score == 0.75  # item 1 (gold 1) is never predicted 1
    assert stats.changes_prediction == 0.75  # item 1 is predicted 0 wherever the prompt goes
    assert stats.predictions["oracle"] == [0, 0, 1, 0]
    summary = stats.summary()
    assert "predictions" not in summary and summary["best_single"] == 0 and summary["most_common"] == 0
    bare = choice_statistics("length", probs, task, labels, groups)
    assert bare.candidates == ["1", "2", "3"] and bare.own_score is None and bare.single_scores is None


def test_places_past_the_length_merge_into_one_layout():
    # L = 4: places 0..4. A row of length 2 has three layouts (0, 1 or 2 tokens after); one of length 4 has five.
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15], [0.1, 0.2, 0.3, 0.25, 0.15]])
    merged = layout_probabilities(probs, torch.tensor([2, 4]))
    assert torch.allclose(merged[0], torch.tensor([0.1, 0.2, 0.7, 0.0, 0.0]))
    assert torch.allclose(merged[1], probs[1])


def test_layout_commitment_merges_places_and_says_what_no_preference_gives():
    # L = 4 (places 0..4), rows of length 2: layouts 0, 1 or 2 tokens after the input.
    probs = torch.tensor([[0.4, 0.1, 0.2, 0.2, 0.1], [0.05, 0.05, 0.3, 0.3, 0.3], [0.1, 0.6, 0.1, 0.1, 0.1]])
    committed, no_preference = layout_commitment(probs, torch.tensor([2, 2, 2]))
    assert committed == pytest.approx(0.6)  # top layouts 0.5, 0.9 and 0.6 (the first row's all-after beats place 0)
    assert no_preference == pytest.approx(0.6)  # uniform over 5 places: 3 of them put both tokens after
    # drawn given the length, no preference is uniform over the 3 layouts
    assert layout_commitment(probs, torch.tensor([2, 2, 2]), given_length=True)[1] == pytest.approx(1 / 3)
    # at the full length every place is its own layout: the commitment over places, uniform 1/5
    assert layout_commitment(probs, torch.tensor([4, 4, 4])) == pytest.approx((0.4, 0.2))


@pytest.mark.parametrize("where", ["input", "deep"])
def test_forcing_a_place_past_the_length_gives_the_same_output(where, tiny_backbone, data_dir):
    """What layout_probabilities assumes: with l active tokens, every place p >= l is one and the same layout."""
    batch = batch_of(tiny_backbone, data_dir, "rte")
    model = dp(tiny_backbone, "rte", where=where)
    with torch.no_grad():
        model.head[1].weight.normal_(std=1.0)
        for pool in (model.prompt.input_pool, model.prompt.deep_pool):
            if pool is not None:
                pool.normal_(std=3.0)
        rows = batch.input_ids.shape[0]
        two_tokens = torch.full((rows,), 1)  # length index 1: two active tokens
        outputs = [model(batch, forced={"position": torch.full((rows,), p), "length": two_tokens}) for p in range(5)]
    assert torch.allclose(outputs[2], outputs[3], atol=1e-6) and torch.allclose(outputs[2], outputs[4], atol=1e-6)
    assert (outputs[0] - outputs[2]).abs().max() > 1e-3, "fewer tokens after the input is another layout"


def test_split_statistics_agree_with_the_batches(tiny_backbone, data_dir):
    examples = load_examples("copa", "val", data_dir)[:10]
    model = dp(tiny_backbone, "copa", factors=("position", "length"))
    split = encode_examples(tiny_backbone.tokenizer, model.task, examples, model.max_length)
    predictions = predict_split(model, split, batch_size=4, counterfactual_factors=("position",))
    assert predictions.class_probs.shape == (10, 2) and predictions.choice_probs["position"].shape == (20, 5)
    assert predictions.counterfactual["position"].shape == (10, 5, 2) and "length" not in predictions.counterfactual
    stats = split_choice_statistics(model, split, batch_size=3)
    assert set(stats) == {"position", "length"} and sum(stats["position"].counts) == 20
    own = predictions.class_probs.argmax(-1).tolist()
    assert stats["position"].predictions["own"] == own
    assert 0.0 <= stats["length"].oracle_score <= 1.0 and stats["length"].oracle_score >= stats["length"].own_score
    lengths = predictions.choice_probs["length"].argmax(-1) + 1  # each row's own length
    assert (stats["position"].layout_commitment, stats["position"].layout_no_preference) == \
        pytest.approx(layout_commitment(predictions.choice_probs["position"], lengths))
    assert stats["position"].layout_commitment >= stats["position"].commitment
    assert stats["length"].layout_commitment is None and "layout_commitment" in stats["position"].summary()
    drawn = [0] * 5  # each row's layout as drawn: min(top place, own length) tokens after the input
    for place, length in zip(predictions.choice_probs["position"].argmax(-1).tolist(), lengths.tolist()):
        drawn[min(place, length)] += 1
    assert stats["position"].layout_counts == drawn and stats["position"].summary()["layout_counts"] == drawn
    with torch.no_grad():  # every row at place 4 with 2 active tokens: one layout, both tokens after
        model.prompt.heads["position"].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 50.0]))
        model.prompt.heads["length"].bias.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0]))
    both_after = split_choice_statistics(model, split, counterfactual=False)["position"]
    assert both_after.counts == [0, 0, 0, 0, 20] and both_after.layout_counts == [0, 0, 20, 0, 0]
    position_only = split_choice_statistics(dp(tiny_backbone, "copa", factors=("position",)), split,
                                            counterfactual=False)
    assert position_only["position"].layout_commitment is None  # one length: every place is its own layout
    assert position_only["position"].layout_counts is None  # its counts are its layouts


def test_training_records_choices_at_every_evaluation(tiny_backbone, data_dir):
    config = TrainConfig(task="cb", prompt=DynamicPromptConfig(num_tokens=4, factors=("position", "length")),
                         data_dir=str(data_dir), k_shot=8, dev_limit=8, max_steps=4, eval_every=2, batch_size=4)
    result = run(config, backbone=tiny_backbone)
    evaluations = [entry for entry in result.history if "score" in entry]
    assert [entry["step"] for entry in evaluations] == [2, 4]
    for entry in evaluations:
        assert set(entry["choices"]) == {"position", "length"}
        assert sum(entry["choices"]["position"]["counts"]) == 8 and entry["choices"]["position"]["own_score"] is None
    final = result.choices["position"]  # counterfactuals of the kept checkpoint, at the end
    assert len(final["single_scores"]) == 5 and final["own_score"] == pytest.approx(result.best_metrics["score"])
    fixed = run(TrainConfig(task="cb", prompt=PTuningV2Config(num_tokens=4), data_dir=str(data_dir), k_shot=8,
                            dev_limit=8, max_steps=2, batch_size=4), backbone=tiny_backbone)
    assert fixed.choices is None and all("choices" not in entry for entry in fixed.history)


def test_counterfactual_scores_at_every_evaluation_on_request(tiny_backbone, data_dir):
    config = TrainConfig(task="copa", prompt=DynamicPromptConfig(num_tokens=3), data_dir=str(data_dir), k_shot=8,
                         dev_limit=6, max_steps=2, eval_every=1, batch_size=4, counterfactuals="every_eval")
    result = run(config, backbone=tiny_backbone)
    evaluations = [entry["choices"]["position"] for entry in result.history if "score" in entry]
    assert len(evaluations) == 2 and all(len(e["single_scores"]) == 4 and e["oracle_score"] is not None
                                         for e in evaluations)
    with pytest.raises(ValueError, match="counterfactuals must be one of"):
        TrainConfig(counterfactuals="always")


def test_counterfactual_scores_on_the_first_items_only_keep_multirc_questions_whole(tiny_backbone, data_dir, caplog):
    dev = load_examples("multirc", "val", data_dir)[:14]
    split = encode_examples(tiny_backbone.tokenizer, get_task("multirc"), dev, max_length=48)
    first = split.first(5)
    assert first.groups[-1] == split.groups[4] and split.groups[len(first)] != split.groups[4]  # the question's end
    assert len(first) >= 5 and first.num_rows == len(first) * split.rows_per_item
    assert first.labels == split.labels[:len(first)]
    assert len(split.first(100)) == len(split)
    config = TrainConfig(task="multirc", prompt=DynamicPromptConfig(num_tokens=3, factors=("position", "length")),
                         data_dir=str(data_dir), k_shot=4, dev_limit=14, max_steps=2, batch_size=4, max_length=48,
                         counterfactual_items=5)
    caplog.set_level(logging.INFO, logger="dp_core")
    result = run(config, backbone=tiny_backbone)
    assert "position, length" in caplog.text and "the first 5 items of dev" in caplog.text  # what, and on how many
    dev_split = result.model.encode_examples(dev)
    expected = split_choice_statistics(result.model, dev_split.first(5))
    for factor, summary in result.choices.items():
        assert summary["counterfactual_items"] == len(dev_split.first(5)) < 14
        assert sum(summary["counts"]) == 14  # the cheap statistics over every dev item
        assert summary["single_scores"] == pytest.approx(expected[factor].single_scores)
        assert summary["own_score"] == pytest.approx(expected[factor].own_score)
    assert "counterfactual_items" not in run(TrainConfig(**{**config.__dict__, "counterfactual_items": 20}),
                                             backbone=tiny_backbone).choices["position"]  # 20 >= 14: all of them
    with pytest.raises(ValueError, match="counterfactual_items must be at least 1"):
        TrainConfig(counterfactual_items=0)


def test_entropy_counts_only_the_candidates_a_row_can_have():
    """A place drawn given the length l has l + 1 candidates: uniform over them is entropy 1, not log(l+1)/log(5)."""
    probs = torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2]])
    stats = choice_statistics("position", probs, get_task("rte"), [0, 0], ["0", "1"])
    assert abs(stats.entropy - 1.0) < 1e-5 and abs(stats.commitment - (1 / 3 + 0.2) / 2) < 1e-6
