"""Each plain reading, shown for a model built to produce it: the facts it states (which class, which place, which
figure), and that it stays under 40 words."""

from dataclasses import replace

import torch

from app import readings
from dp_core.choices import layout_confidence, split_choice_statistics
from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import counterfactuals, explain, explain_examples
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import load_examples


def task_level(backbone, logits=None, head_scale=1.0, factors=("position",), **options):
    config = DynamicPromptConfig(num_tokens=4, level="task", factors=factors, prompt_dropout=0.0, **options)
    model = PromptClassifier(backbone, "rte", config, HeadConfig(dropout=0.0, backbone_dropout=False)).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model.prompt.input_pool.normal_(std=3.0)
        model.head[1].weight.mul_(head_scale)
        if logits is not None:
            model.prompt.task_logits["position"].copy_(torch.tensor(logits))
    return model


def short(*texts):
    assert all(len(text.split()) <= 40 for text in texts), [len(text.split()) for text in texts]
    return " ".join(texts)


def read(model, data_dir, index=0):
    """What Compare says of the place for one RTE dev item: how sure, the habit over 16 items, what moving changes."""
    examples = load_examples("rte", "val", data_dir)[:16]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    stats = split_choice_statistics(model, split, batch_size=16)["position"]
    batch = collate(split, [index], model.backbone.tokenizer.pad_token_id)
    decision = explain(model, batch)[0]
    forced = counterfactuals(model, batch, "position")[0]
    probability, share = layout_confidence(decision.position_probs, decision.active_length, decision.tokens_after)
    predicted = forced.argmax(-1).tolist()
    own = max(range(len(decision.class_probs)), key=decision.class_probs.__getitem__)
    return {"sure": short(readings.sure_title("position", probability, share)),
            "habit": short(readings.habit_reading("position", stats.summary(), decision.split_position)),
            "what if": short(readings.what_if_reading("position", predicted, own, model.task.label_names)),
            "predicted": predicted, "chosen": decision.split_position, "own": own}, stats


def test_a_committed_choice_reads_sure_and_the_same_place_for_almost_every_item(tiny_backbone, data_dir):
    said, stats = read(task_level(tiny_backbone, [0.0, 0.0, 6.0, 0.0, 0.0]), data_dir)
    assert stats.commitment > 0.9 and stats.collapse == 1.0
    assert said["sure"].startswith("Place: sure, 99%") and "(no preference: 20%)" in said["sure"]  # 1 in 5
    assert "this place to 100%" in said["habit"] and "one place for the whole task" in said["habit"]


def test_a_uniform_choice_reads_no_preference_with_one_figure_against_another(tiny_backbone, data_dir):
    said, _ = read(task_level(tiny_backbone, [0.0] * 5), data_dir)
    assert said["sure"] == "Place: a coin toss, 20% (no preference: 20%)"


def test_a_head_that_ignores_the_input_reads_that_the_place_changes_nothing(tiny_backbone, data_dir):
    said, stats = read(task_level(tiny_backbone, [0.0, 3.0, 0.0, 0.0, 0.0], head_scale=0.0), data_dir)
    assert stats.changes_prediction == 0.0 and len(set(said["predicted"])) == 1
    answer = task_level(tiny_backbone).task.label_names[said["predicted"][0]]
    assert f"“{answer}” at every place" in said["what if"]
    assert "0%" in said["habit"] and "decides little" in said["habit"]


def test_a_place_that_matters_reads_how_many_places_change_the_answer_and_to_what(tiny_backbone, data_dir):
    model = task_level(tiny_backbone, [0.0, 0.0, 0.0, 0.0, 1.0])
    examples = load_examples("rte", "val", data_dir)[:16]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    batch = collate(split, list(range(16)), model.backbone.tokenizer.pad_token_id)
    with torch.no_grad():  # a strong head centred on every candidate's outputs: the class hangs on the place
        model.head[1].weight.normal_(std=30.0)
        pooled = torch.cat([model.encode(batch, forced={"position": torch.full((16,), c)}).pooled for c in range(5)])
        model.head[1].bias.copy_(-(pooled @ model.head[1].weight.T).mean(0))
    changing = []
    for index in range(16):
        said, _ = read(model, data_dir, index)
        predicted, chosen, own = said["predicted"], said["chosen"], said["own"]
        assert predicted[chosen] == own  # DP's own answer is the one at its own place
        if len(set(predicted)) > 1:
            changed = sum(answer != own for answer in predicted)
            names = model.task.label_names
            assert said["what if"].startswith(f"At {changed} of 5 places")
            assert f"from DP's “{names[own]}” to “{names[1 - own]}”" in said["what if"]
            changing.append(index)
        assert said["sure"].startswith("Place: leaning, 40%")  # place 4: e / (e + 4)
        assert "decides little" not in said["habit"]
    assert changing


def test_a_layout_is_as_sure_as_every_place_that_makes_it_against_its_own_no_preference_figure(tiny_backbone,
                                                                                             data_dir):
    model = task_level(tiny_backbone, factors=("position", "length"))
    with torch.no_grad():  # top place 0 (34%), yet places 2-4 are one layout (all after): 62%; length 2 for sure
        model.prompt.task_logits["position"].copy_(torch.tensor([2.0, 0.0, 1.5, 1.5, 1.5]))
        model.prompt.task_logits["length"].copy_(torch.tensor([0.0, 8.0, 0.0, 0.0]))
    split = encode_examples(model.backbone.tokenizer, model.task, load_examples("rte", "val", data_dir)[:1], 128)
    decision = explain(model, collate(split, [0], model.backbone.tokenizer.pad_token_id))[0]
    assert decision.active_length == 2 and decision.tokens_after == 0
    assert layout_confidence(decision.position_probs, 2, 0) == (decision.position_probs[0], 0.2)
    all_after, share = layout_confidence(decision.position_probs, 2, 2)  # any place past the length
    assert abs(all_after - sum(decision.position_probs[2:])) < 1e-6 and share == 0.6
    assert readings.sure_title("position", all_after, share) == "Place: a coin toss, 62% (no preference: 60%)"


def test_a_place_drawn_given_the_length_is_read_against_that_lengths_layouts(tiny_backbone, data_dir):
    model = task_level(tiny_backbone, factors=("position", "length"), place_given_length=True)
    with torch.no_grad():  # length 2 for sure: places 0, 1, 2 are its three layouts; 3 and 4 get nothing
        model.prompt.task_logits["position"].copy_(torch.tensor([2.0, 0.0, 1.5, 1.5, 1.5]))
        model.prompt.task_logits["length"].copy_(torch.tensor([0.0, 8.0, 0.0, 0.0]))
    split = encode_examples(model.backbone.tokenizer, model.task, load_examples("rte", "val", data_dir)[:1], 128)
    decision = explain(model, collate(split, [0], model.backbone.tokenizer.pad_token_id))[0]
    top = torch.tensor([2.0, 0.0, 1.5]).softmax(-1)[0]
    probability, share = layout_confidence(decision.position_probs, decision.active_length, decision.tokens_after)
    assert decision.position_probs[3:] == [0.0, 0.0] and abs(probability - top) < 1e-6 and share == 1 / 3
    assert readings.sure_verdict(probability, share) == "a coin toss"


def test_the_same_place_for_almost_every_item_counts_layouts_when_dp_also_chooses_the_length():
    # 95 % of the dev rows at place 9, but at two lengths: 1 or 5 tokens after the input, two layouts
    stats = {"collapse": 0.95, "most_common": 9, "layout_counts": [0, 40, 0, 0, 0, 60] + [0] * 11,
             "changes_prediction": 0.2}
    assert readings.habit_reading("position", stats, 9, tokens_after=5) == ""  # 60 %: not almost every item
    stats["layout_counts"] = [0, 5, 0, 0, 0, 95] + [0] * 11
    assert "this place to 95%" in readings.habit_reading("position", stats, 9, tokens_after=5)
    assert readings.habit_reading("position", stats, 9, tokens_after=1) == ""  # this item has the other layout


def test_of_two_candidates_a_clear_majority_is_sure_and_a_slight_one_no_preference():
    assert readings.sure_title("length", 0.8, 0.5) == "Length: sure, 80% (no preference: 50%)"
    assert readings.sure_verdict(0.6, 0.5) == "a coin toss"
    # from four candidates on, twice the uniform share is the line
    assert readings.sure_verdict(0.55, 0.25) == "sure"


def test_where_each_method_put_its_prompt_names_the_task_s_texts_and_the_counts(tiny_backbone, data_dir):
    examples = load_examples("copa", "val", data_dir)[:1]
    model = PromptClassifier(tiny_backbone, "copa", DynamicPromptConfig(num_tokens=4, factors=("position", "length")))
    rows = explain_examples(model.eval(), examples).item(0)
    decision = replace(rows[0], active_length=3, tokens_after=1, tokens_before=2)  # both choices' rows alike
    said = short(readings.where_reading([decision, decision], "copa"))
    assert said.startswith("DP put 1 prompt token after the choice and 2 before the premise")
    assert "switched 1 of 4 off" in said
    apart = replace(decision, tokens_after=2, tokens_before=1)  # one place per row, each said
    said = short(readings.where_reading([decision, apart], "copa"))
    assert said.startswith("With choice 1, DP put 1 prompt token after the choice and 2 before the premise; "
                           "with choice 2, 2 and 1.")
    rte = load_examples("rte", "val", data_dir)[:1]
    for method, where in ((PTuningV2Config(num_tokens=4), "in every layer"),
                          (PromptTuningConfig(num_tokens=4), "before the premise")):
        fixed = explain_examples(PromptClassifier(tiny_backbone, "rte", method).eval(), rte).decisions
        said = short(readings.where_reading(fixed, "rte"))
        assert where in said and "4 prompt" in said
    deep = PromptClassifier(tiny_backbone, "rte", DynamicPromptConfig(num_tokens=4, where="deep")).eval()
    decision = explain_examples(deep, rte).decisions[0]
    said = short(readings.where_reading([decision], "rte"))
    # in the count the what-if strip and Explore use: vectors after the input, the rest before it
    assert "every layer" in said and f"Its place: {decision.tokens_after} vector" in said
    assert said.endswith(f"after the input and {decision.tokens_before} before it.")


def test_a_tie_is_said_as_a_tie_and_a_clear_answer_is_not():
    labels = ("entailment", "not_entailment")
    said = short(readings.tie_reading([0.49, 0.51], labels))
    assert said == "A tie: 51% against 49%."
    assert readings.tie_reading([0.7, 0.3], labels) == ""
