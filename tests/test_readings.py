"""Each plain reading of a DP choice, shown for a model built to produce it."""

import torch

from dp_core.choices import choice_reading, confidence_reading, split_choice_statistics
from dp_core.data import encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import counterfactuals, explain
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.tasks import load_examples


def task_level(backbone, logits=None, head_scale=1.0):
    config = DynamicPromptConfig(num_tokens=4, level="task", factors=("position",), prompt_dropout=0.0)
    model = PromptClassifier(backbone, "rte", config, HeadConfig(dropout=0.0, backbone_dropout=False)).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model.prompt.input_pool.normal_(std=3.0)
        model.head[1].weight.mul_(head_scale)
        if logits is not None:
            model.prompt.task_logits["position"].copy_(torch.tensor(logits))
    return model


def reading_of(model, data_dir, index=0):
    examples = load_examples("rte", "val", data_dir)[:16]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    stats = split_choice_statistics(model, split, batch_size=16)["position"]
    from dp_core.data import collate

    batch = collate(split, [index], model.backbone.tokenizer.pad_token_id)
    decision = explain(model, batch)[0]
    forced = counterfactuals(model, batch, "position")[0].tolist()
    return choice_reading("position", decision.position_probs, forced, model.task.label_names, stats.summary()), stats


def test_committed_choice_reads_sure_and_collapsed(tiny_backbone, data_dir):
    reading, stats = reading_of(task_level(tiny_backbone, [0.0, 0.0, 6.0, 0.0, 0.0]), data_dir)
    assert stats.commitment > 0.9 and stats.collapse == 1.0
    assert "DP is sure of this place (99%)" in reading
    assert "DP chose this place for 100% of the dev set: it acts as one choice for the whole task." in reading


def test_uniform_choice_reads_no_preference(tiny_backbone, data_dir):
    reading, stats = reading_of(task_level(tiny_backbone, [0.0] * 5), data_dir)
    assert "DP has no preference for the place here (top choice 20% of 5; uniform 20%)" in reading
    assert "arbitrary pick" in reading and "sure" not in reading


def test_a_head_that_ignores_the_input_reads_place_does_not_matter(tiny_backbone, data_dir):
    model = task_level(tiny_backbone, [0.0, 3.0, 0.0, 0.0, 0.0], head_scale=0.0)
    reading, stats = reading_of(model, data_dir)
    assert stats.changes_prediction == 0.0
    assert "is the same wherever the prompt goes" in reading
    assert "Across the dev set the place changes 0% of the predictions: on this task DP's place decides little" in reading


def test_a_place_that_matters_reads_what_moving_it_changes(tiny_backbone, data_dir):
    model = task_level(tiny_backbone, [0.0, 0.0, 0.0, 0.0, 1.0])
    examples = load_examples("rte", "val", data_dir)[:16]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    from dp_core.data import collate

    batch = collate(split, list(range(16)), model.backbone.tokenizer.pad_token_id)
    with torch.no_grad():  # a strong head centred on every candidate's outputs: the class hangs on the place
        model.head[1].weight.normal_(std=30.0)
        pooled = torch.cat([model.encode(batch, forced={"position": torch.full((16,), c)}).pooled for c in range(5)])
        model.head[1].bias.copy_(-(pooled @ model.head[1].weight.T).mean(0))
    readings = [reading_of(model, data_dir, index)[0] for index in range(16)]
    assert any("With another place the prediction would change at" in text for text in readings)
    assert all("DP leans towards this place (40%; uniform 20%)" in text for text in readings)
    assert not any("decides little" in text for text in readings)  # here the place changes many predictions


def test_places_past_the_length_read_as_one_layout_and_a_drawn_layout_that_is_not_the_most_probable(
        tiny_backbone, data_dir):
    config = DynamicPromptConfig(num_tokens=4, level="task", factors=("position", "length"), prompt_dropout=0.0)
    model = PromptClassifier(tiny_backbone, "rte", config, HeadConfig(dropout=0.0, backbone_dropout=False)).eval()
    with torch.no_grad():  # top place 0 (34%), yet places 2-4 together hold 62%; length 2 for sure
        model.prompt.task_logits["position"].copy_(torch.tensor([2.0, 0.0, 1.5, 1.5, 1.5]))
        model.prompt.task_logits["length"].copy_(torch.tensor([0.0, 8.0, 0.0, 0.0]))
    examples = load_examples("rte", "val", data_dir)[:1]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    from dp_core.data import collate

    decision = explain(model, collate(split, [0], model.backbone.tokenizer.pad_token_id))[0]
    assert decision.active_length == 2 and decision.split_position == 0
    reading = confidence_reading("position", decision.position_probs, active_length=decision.active_length)
    assert "DP has no preference for the place here (top choice 34% of 5; uniform 20%)" in reading
    assert ("With 2 active tokens, the 3 places from 2 to 4 are one layout (all after the input): DP gives it 62% in "
            "all; a network with no preference 60%.") in reading
    assert "So the drawn layout is not DP's most probable one (34% against that)." in reading
    full_length = confidence_reading("position", decision.position_probs, active_length=4)
    assert "one layout" not in full_length and "drawn layout" not in full_length


def test_a_place_drawn_given_the_length_reads_against_that_lengths_layouts(tiny_backbone, data_dir):
    config = DynamicPromptConfig(num_tokens=4, level="task", factors=("position", "length"), prompt_dropout=0.0,
                                 place_given_length=True)
    model = PromptClassifier(tiny_backbone, "rte", config, HeadConfig(dropout=0.0, backbone_dropout=False)).eval()
    with torch.no_grad():  # length 2 for sure: places 0, 1, 2 are its three layouts; 3 and 4 get nothing
        model.prompt.task_logits["position"].copy_(torch.tensor([2.0, 0.0, 1.5, 1.5, 1.5]))
        model.prompt.task_logits["length"].copy_(torch.tensor([0.0, 8.0, 0.0, 0.0]))
    examples = load_examples("rte", "val", data_dir)[:1]
    split = encode_examples(model.backbone.tokenizer, model.task, examples, model.max_length)
    from dp_core.data import collate

    decision = explain(model, collate(split, [0], model.backbone.tokenizer.pad_token_id))[0]
    top = torch.tensor([2.0, 0.0, 1.5]).softmax(-1)[0]
    assert decision.active_length == 2 and decision.position_probs[3:] == [0.0, 0.0]
    reading = confidence_reading("position", decision.position_probs, active_length=decision.active_length)
    assert f"DP has no preference for the place here (top choice {top:.0%} of 3; uniform 33%)" in reading
    assert "one layout" not in reading and "drawn layout" not in reading


def test_of_two_candidates_a_clear_majority_is_sure_and_a_slight_one_no_preference():
    assert confidence_reading("length", [0.8, 0.2]).startswith("DP is sure of this length (80%)")
    assert confidence_reading("length", [0.6, 0.4]).startswith("DP has no preference for the length here")
    # from four candidates on, twice the uniform share is the line, as before
    assert confidence_reading("length", [0.55, 0.15, 0.15, 0.15]).startswith("DP is sure of this length (55%)")
