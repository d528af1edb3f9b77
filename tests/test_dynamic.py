import pytest
import torch

from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import AFTER, BEFORE, INACTIVE, INPUT, explain
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples
from dp_core.train import TrainConfig, run


def rte_batch(backbone, data_dir, count=8):
    examples = load_examples("rte", "val", data_dir)[:count]
    split = encode_examples(backbone.tokenizer, get_task("rte"), examples, max_length=48)
    return collate(split, list(range(count)), backbone.tokenizer.pad_token_id)


def dp_model(backbone, **options):
    config = DynamicPromptConfig(**{"num_tokens": 4, "prompt_dropout": 0.0, **options})
    return PromptClassifier(backbone, "rte", config, HeadConfig(pooling="cls", dropout=0.0))


def spread_choices(model, batch, scale=20.0):
    """Large random instance-network weights, centred on the batch, so instances make different choices."""
    torch.manual_seed(0)
    features = model.instance_features(batch)
    with torch.no_grad():
        for head in model.prompt.heads.values():
            head.weight.normal_(std=scale)
            head.bias.copy_(-(features @ head.weight.T).mean(0))


@pytest.mark.parametrize("where", ["input", "deep"])
def test_dp_at_position_zero_full_length_one_prompt_nests_the_fixed_method(where, tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    fixed_config = PromptTuningConfig(num_tokens=4) if where == "input" else PTuningV2Config(num_tokens=4)
    torch.manual_seed(0)
    fixed = PromptClassifier(tiny_backbone, "rte", fixed_config, HeadConfig(pooling="cls")).eval()
    dynamic = dp_model(tiny_backbone, factors=("position", "length", "pool"), pool_size=1, where=where,
                       level="task").eval()
    with torch.no_grad():
        pool = dynamic.prompt.input_pool if where == "input" else dynamic.prompt.deep_pool
        pool[0].copy_(fixed.prompt.embedding.weight)
        dynamic.head.load_state_dict(fixed.head.state_dict())
        dynamic.prompt.task_logits["position"][0] = 5.0  # p = 0: every slot before the input
        dynamic.prompt.task_logits["length"][-1] = 5.0  # l = L: every slot active
    assert torch.equal(dynamic(batch), fixed(batch))


def hand_assembled_logits(model, batch, row):
    """The sequence for one row built by concatenation, as the reference does, with no padding."""
    plan = model.encode(batch).plan
    real = int(batch.attention_mask[row].sum())
    word = model.backbone.model.get_input_embeddings()(batch.input_ids[row, :real])
    types = batch.token_type_ids[row, :real]
    split, active = int(plan.split_position[row]), plan.active[row]
    prompt = plan.input_prompts[row]
    before = [j for j in range(split, 4) if active[j]]
    after = [j for j in range(split) if active[j]]
    embeds = torch.cat([word[:1], prompt[before], word[1:-1], prompt[after], word[-1:]])
    type_ids = torch.cat([types[:1], torch.zeros(len(before), dtype=torch.long), types[1:-1],
                          types[-1:].expand(len(after)), types[-1:]])
    hidden = model.backbone.model(inputs_embeds=embeds[None], token_type_ids=type_ids[None]).last_hidden_state
    return model.head(hidden[:, 0])[0], (split, len(before) + len(after))


def test_hard_choice_equals_the_sequence_assembled_by_hand(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length")).eval()
    spread_choices(model, batch)
    with torch.no_grad():
        logits = model(batch)
        choices = set()
        for row in range(batch.input_ids.shape[0]):
            expected, choice = hand_assembled_logits(model, batch, row)
            choices.add(choice)
            assert torch.allclose(logits[row], expected, atol=1e-5), f"row {row}, choice {choice}"
    assert len(choices) >= 3, f"the test needs varied choices, got {choices}"


@pytest.mark.parametrize("where", ["input", "deep"])
def test_inactive_prompt_tokens_do_not_change_the_output(where, tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length"), where=where).eval()
    spread_choices(model, batch)
    with torch.no_grad():
        plan = model.encode(batch).plan
        assert (~plan.active).any() and plan.active.any(-1).all()
        before = model(batch)
        pool = model.prompt.input_pool if where == "input" else model.prompt.deep_pool
        lengths = plan.active.sum(-1)
        shortest = int(lengths.min())
        pool[:, shortest:] += 5 * torch.randn_like(pool[:, shortest:])  # slots inactive for the shortest rows
        after = model(batch)
    unchanged = lengths == shortest
    assert torch.equal(after[unchanged], before[unchanged])
    assert not torch.allclose(after[~unchanged], before[~unchanged]), "active slots do matter"


@pytest.mark.parametrize("factor", ["position", "length", "pool"])
@pytest.mark.parametrize("where", ["input", "deep", "both"])
def test_gradients_reach_every_instance_network_parameter(factor, where, tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=(factor,), where=where).train()
    torch.nn.functional.cross_entropy(model(batch), batch.labels).backward()
    for name, parameter in model.prompt.heads.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_evaluation_is_deterministic(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length", "pool"), where="both").eval()
    spread_choices(model, batch, scale=1.0)
    first, second = explain(model, batch), explain(model, batch)
    assert first == second
    assert torch.equal(model(batch), model(batch))


def test_training_anneals_the_temperature_with_the_reference_rule():
    config = DynamicPromptConfig(tau_start=1.0, tau_min=0.5, tau_rate=3e-6)
    tau, expected = 1.0, []
    for step in range(1, 2001):
        tau = max(tau * torch.exp(torch.tensor(-3e-5 * step / 10)).item(), 0.5)
        expected.append(tau)
    assert all(abs(config.temperature(step) - value) < 1e-5 for step, value in zip(range(1, 2001), expected))
    assert config.temperature(10**6) == 0.5


def test_explain_draws_the_layout(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir, count=4)
    model = dp_model(tiny_backbone, factors=("position", "length", "pool")).eval()
    spread_choices(model, batch)
    for decision in explain(model, batch):
        kinds = [kind for _, kind in decision.layout]
        assert decision.layout[0] == ("[CLS]", INPUT) and decision.layout[-1] == ("[SEP]", INPUT)
        assert kinds.count(BEFORE) == decision.tokens_before and kinds.count(AFTER) == decision.tokens_after
        assert kinds.count(INACTIVE) == 4 - decision.active_length
        assert decision.tokens_after + decision.tokens_before == decision.active_length
        assert len(decision.position_probs) == 5 and len(decision.length_probs) == 4
        assert abs(sum(decision.pool_weights) - 1) < 1e-5 and abs(sum(decision.class_probs) - 1) < 1e-5


@pytest.mark.parametrize("level", ["task", "instance"])
@pytest.mark.parametrize("where", ["input", "deep"])
def test_dp_trains_end_to_end(level, where, tiny_backbone, data_dir):
    config = TrainConfig(task="cb", prompt=DynamicPromptConfig(num_tokens=4, factors=("position", "length", "pool"),
                                                               level=level, where=where),
                         data_dir=str(data_dir), k_shot=8, dev_limit=8, max_steps=3, batch_size=4)
    result = run(config, backbone=tiny_backbone)
    assert result.best_metrics is not None and int(result.model.prompt.steps_done) == 3
