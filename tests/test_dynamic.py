from dataclasses import replace

import pytest
import torch

from dp_core.config import TrainConfig
from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import AFTER, BEFORE, INACTIVE, INPUT, explain
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples
from dp_core.train import run


def rte_batch(backbone, data_dir, count=8):
    examples = load_examples("rte", "val", data_dir)[:count]
    split = encode_examples(backbone.tokenizer, get_task("rte"), examples, max_length=48)
    return collate(split, list(range(count)), backbone.tokenizer.pad_token_id)


def dp_model(backbone, **options):
    config = DynamicPromptConfig(**{"num_tokens": 4, "prompt_dropout": 0.0, **options})
    return PromptClassifier(backbone, "rte", config, HeadConfig(pooling="cls", dropout=0.0, backbone_dropout=False))


def spread_choices(model, batch, scale=20.0):
    """Large random instance-network weights, centred on the batch, so instances make different choices."""
    torch.manual_seed(0)
    features = model.prompt.feature_norm(model.instance_features(batch))
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


@pytest.mark.parametrize("estimator", ["score_function", "straight_through", "exact"])
@pytest.mark.parametrize("factor", ["position", "length", "pool"])
@pytest.mark.parametrize("where", ["input", "deep", "both"])
def test_gradients_reach_every_instance_network_parameter(factor, where, estimator, tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=(factor,), where=where, estimator=estimator).train()
    model.training_loss(batch).backward()
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
    config = DynamicPromptConfig(tau_start=1.0, tau_min=0.5, tau_rate=3e-6, tau_schedule="reference")
    tau, expected = 1.0, []
    for step in range(1, 2001):
        tau = max(tau * torch.exp(torch.tensor(-3e-5 * step / 10)).item(), 0.5)
        expected.append(tau)
    assert all(abs(config.temperature(step) - value) < 1e-5 for step, value in zip(range(1, 2001), expected))
    assert config.temperature(10**6) == 0.5


@pytest.mark.parametrize("steps", [20, 60])
def test_the_default_temperature_follows_the_run_length(steps, tiny_backbone, data_dir):
    """The reference's rule barely moves over a few hundred steps (tau(300) = 0.87); ours reaches tau_min at the
    end of any run, and is halfway (geometrically) at its middle."""
    config = DynamicPromptConfig(num_tokens=4, tau_start=2.0, tau_min=0.5)
    seen = {}
    model = dp_model(tiny_backbone, tau_start=2.0, tau_min=0.5)
    model.prompt.schedule_run(steps)
    for step in range(steps + 1):
        seen[step] = model.prompt.temperature()
        model.prompt.steps_done += 1
    assert seen[0] == 2.0 and seen[steps] == pytest.approx(0.5) and seen[steps // 2] == pytest.approx(1.0)
    assert all(seen[s] > seen[s + 1] for s in range(steps))
    assert config.temperature(300, None) == 2.0 and DynamicPromptConfig(tau_schedule="reference").temperature(300) > 0.86
    result = run(TrainConfig(task="cb", prompt=config, data_dir=str(data_dir), k_shot=8, dev_limit=4, max_steps=steps // 10,
                             batch_size=4, counterfactuals="none"), backbone=tiny_backbone)
    prompt = result.model.prompt  # restored to the kept checkpoint, whose step count says how far the run was
    assert prompt.progress == pytest.approx(result.best_step / (steps // 10))
    assert prompt.temperature() == pytest.approx(2.0 * 0.25 ** prompt.progress)


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
    assert result.best_metrics is not None and int(result.model.prompt.steps_done) == result.best_step


FILLER = "the a house river green small run blue car tree book light stone quiet fast old".split()


def constructed_batch(backbone, count, seed):
    """Texts of two types (an 'apple' or a 'banana' hidden among filler words), half of each."""
    generator = torch.Generator().manual_seed(seed)
    texts, types = [], []
    for index in range(count):
        words = [FILLER[int(i)] for i in torch.randint(len(FILLER), (int(torch.randint(3, 9, (1,))),),
                                                          generator=generator)]
        words.insert(int(torch.randint(len(words) + 1, (1,), generator=generator)), ["apple", "banana"][index % 2])
        texts.append(" ".join(words))
        types.append(index % 2)
    encoded = backbone.tokenizer(texts, padding=True, return_tensors="pt")
    rows = torch.arange(count)
    from dp_core.data import Batch

    return Batch(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"],
                 torch.zeros(count, dtype=torch.long), rows, rows), torch.tensor(types)


def forced_logits(model, batch, factor, choice):
    """Class logits with the factor forced to one candidate for every instance."""
    head = model.prompt.heads[factor]
    saved = head.weight.detach().clone(), head.bias.detach().clone()
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(0.0)
        head.bias[choice] = 10.0
        logits = model.eval()(batch)
        head.weight.copy_(saved[0])
        head.bias.copy_(saved[1])
    return logits


def constructed_task(backbone, factor):
    """A frozen random prompt and head on the apple/banana texts: type A is classified right only with choice 0,
    type B only with choice 1 (instances where both choices agree are left out). Returns the model (its choice
    network untrained), the batch, each text's type, the kept instances and their labels."""
    num_tokens = 1 if factor == "position" else 2  # position: p in {0, 1}; length: l in {1, 2}
    torch.manual_seed(0)
    model = dp_model(backbone, num_tokens=num_tokens, factors=(factor,), level="instance")
    with torch.no_grad():
        model.head[1].weight.normal_(std=30.0)
        model.prompt.input_pool.normal_(std=3.0)
    batch, types = constructed_batch(backbone, 3000, seed=0)
    with torch.no_grad():  # centre the head so that the class depends on the instance, not on a constant
        first, second = (forced_logits(model, batch, factor, c) for c in (0, 1))
        model.head[1].bias -= torch.cat([first, second]).mean(0)
    with_first, with_second = (forced_logits(model, batch, factor, c).argmax(-1) for c in (0, 1))
    keep = with_first != with_second
    assert keep.sum() > 250, f"the construction needs instances whose class depends on the choice ({int(keep.sum())})"
    labels = torch.where(types == 0, with_first, with_second)[keep]
    return model, batch, types, torch.nonzero(keep).squeeze(1), labels


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["score_function", "exact"])
@pytest.mark.parametrize("factor", ["position", "length"])
def test_instance_level_learns_instance_dependent_choices_task_level_cannot(factor, estimator, tiny_backbone):
    """The constructed task (``constructed_task``); only the choice network trains. The reference's
    straight-through gradient stays near chance here (measured: 0.34 for position, 0.58 for length): a
    first-order guess of what moving the prompt does is poor."""
    model, batch, types, kept, labels = constructed_task(tiny_backbone, factor)
    num_tokens = model.prompt.config.num_tokens
    split_at = int(len(kept) * 0.7)

    def subset(indices):
        from dp_core.data import Batch

        return Batch(batch.input_ids[indices], batch.attention_mask[indices], batch.token_type_ids[indices],
                     labels[torch.searchsorted(kept, indices)], indices, indices)

    train_items, test_items = kept[:split_at], kept[split_at:]
    features = model.instance_features(batch)

    def train_and_score(level):
        torch.manual_seed(1)
        learner = dp_model(tiny_backbone, num_tokens=num_tokens, factors=(factor,), level=level, estimator=estimator,
                           exact_items=64)
        learner.load_state_dict(model.state_dict(), strict=False)
        choice_parameters = list((learner.prompt.heads if level == "instance" else learner.prompt.task_logits)
                                 .parameters())
        optimizer = torch.optim.Adam(choice_parameters, lr=3e-2)
        learner.train()
        for step in range(150):
            items = train_items[torch.randint(len(train_items), (64,))]
            loss = learner.training_loss(subset(items), features[items])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        learner.eval()
        with torch.no_grad():
            plan = learner.encode(subset(test_items), features[test_items]).plan
        chosen = plan.split_position if factor == "position" else plan.active.sum(-1) - 1
        return (chosen.cpu() == types[test_items]).float().mean().item()

    instance_right, task_right = train_and_score("instance"), train_and_score("task")
    assert instance_right > 0.9, f"instance-level chose right on {instance_right:.2f} of held-out items"
    assert task_right < 0.75, f"task-level chose right on {task_right:.2f} (one choice for all)"


def constructed_split(batch, indices, labels):
    """The constructed texts as an encoded split (unpadded rows), one item each."""
    from dp_core.data import EncodedSplit

    rows = [batch.attention_mask[i].bool() for i in indices.tolist()]
    return EncodedSplit([batch.input_ids[i][keep].tolist() for i, keep in zip(indices.tolist(), rows)],
                        [batch.token_type_ids[i][keep].tolist() for i, keep in zip(indices.tolist(), rows)],
                        labels.tolist(), [str(i) for i in indices.tolist()], rows_per_item=1, truncated=0)


@pytest.mark.parametrize("factor", ["position", "length"])
def test_refit_learns_the_constructed_choices_from_the_frozen_prompts_candidate_losses(factor, tiny_backbone):
    """The second time scale (dp_core.refit): prompt and head frozen, the untrained choice network refit on 40 % of
    the items' candidate losses, stopped on 25 %, chooses right on > 90 % of the rest."""
    from dp_core.evaluation import split_features
    from dp_core.refit import RefitConfig, refit_choices

    model, batch, types, kept, labels = constructed_task(tiny_backbone, factor)
    first, second = int(0.4 * len(kept)), int(0.65 * len(kept))
    fit, holdout, test = kept[:first], kept[first:second], kept[second:]
    splits = [constructed_split(batch, part, labels[torch.searchsorted(kept, part)]) for part in (fit, holdout)]
    features = [split_features(model, split) for split in splits]
    result = refit_choices(model, splits[0], features[0], splits[1], features[1], RefitConfig(lr=3e-2))
    assert result.kept and result.best_step > 0
    assert result.holdout_loss[1] < result.holdout_loss[0] and result.holdout_score[1] > result.holdout_score[0]
    model.eval()
    with torch.no_grad():
        plan = model.encode(batch, model.instance_features(batch)).plan
    chosen = plan.split_position if factor == "position" else plan.active.sum(-1) - 1
    right = (chosen[test] == types[test]).float().mean().item()
    assert right > 0.9, f"refit chose right on {right:.2f} of unseen items"


def test_refit_keeps_the_trained_choices_when_held_out_items_do_not_confirm(tiny_backbone):
    """Held-out labels flipped: whatever the fit items teach raises the held-out expected loss, so the refit stops
    at once and the choice network is left exactly as trained."""
    from dp_core.evaluation import split_features
    from dp_core.refit import refit_choices

    model, batch, _, kept, labels = constructed_task(tiny_backbone, "position")
    fit, holdout = kept[:200], kept[200:]
    splits = [constructed_split(batch, fit, labels[:200]), constructed_split(batch, holdout, 1 - labels[200:])]
    trained = {name: value.clone() for name, value in model.prompt.heads.state_dict().items()}
    result = refit_choices(model, splits[0], split_features(model, splits[0]), splits[1],
                           split_features(model, splits[1]))
    assert not result.kept and result.best_step == 0
    assert result.fit_loss[1] == result.fit_loss[0]
    for name, value in model.prompt.heads.state_dict().items():
        assert torch.equal(value, trained[name]), name


def test_refit_refuses_a_model_without_discrete_choices(tiny_backbone):
    from dp_core.refit import refit_choices

    model = dp_model(tiny_backbone, factors=("pool",))
    features = torch.zeros(2, tiny_backbone.hidden_size)
    with pytest.raises(ValueError, match="no discrete choice"):
        refit_choices(model, None, features, None, features)


def test_choice_gradients_equal_those_of_mixing_every_candidate_sequence():
    """The reference sums all candidate sequences weighted by the one-hot; we never build them, but the
    gradient reaching each weight must be the same."""
    from dp_core.layout import PromptPlan, assemble

    torch.manual_seed(0)
    batch, length, slots, hidden = 3, 7, 4, 5
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, 5:], mask[1, 6:] = 0, 0
    tokens, types, prompt = torch.randn(batch, length, hidden), torch.zeros_like(mask), torch.randn(batch, slots, hidden)
    split, chosen_length = torch.tensor([1, 3, 0]), torch.tensor([4, 2, 3])
    active = torch.arange(slots)[None] < chosen_length[:, None]
    position_weights = torch.nn.functional.one_hot(split, slots + 1).float().requires_grad_()
    length_weights = torch.nn.functional.one_hot(chosen_length - 1, slots).float().requires_grad_()
    layout = assemble(tokens, mask, types, PromptPlan(split, active, input_prompts=prompt,
                                                      position_weights=position_weights, length_weights=length_weights))
    upstream = torch.randn_like(layout.inputs_embeds) * layout.attention_mask[..., None]
    (layout.inputs_embeds * upstream).sum().backward()

    def mixed_gradient(split_position, active_slots):
        candidate = assemble(tokens, mask, types, PromptPlan(split_position, active_slots, input_prompts=prompt))
        content = candidate.inputs_embeds * candidate.attention_mask[..., None]
        width = upstream.shape[1]
        content = torch.nn.functional.pad(content, (0, 0, 0, max(0, width - content.shape[1])))[:, :width]
        return (content * upstream).sum((1, 2))

    expected_position = torch.stack([mixed_gradient(torch.full((batch,), p), active) for p in range(slots + 1)], 1)
    expected_length = torch.stack([mixed_gradient(split, torch.arange(slots)[None].expand(batch, -1) < n + 1)
                                   for n in range(slots)], 1)
    assert torch.allclose(position_weights.grad, expected_position, atol=1e-5)
    assert torch.allclose(length_weights.grad, expected_length, atol=1e-5)


def test_deep_choice_gradient_equals_that_of_mixing_every_candidate_position_shift():
    """Deep prompts have no place; a split only shifts the input's positions. The straight-through gradient
    must be that of the one-hot-weighted sum of the position embeddings every split would give."""
    from dp_core.layout import Frame, PromptPlan, assemble

    torch.manual_seed(0)
    batch, length, slots, hidden, base = 3, 6, 4, 5, 2
    tokens, table = torch.randn(batch, length, hidden), torch.randn(base + length + slots + 3, hidden)
    mask, split = torch.ones(batch, length, dtype=torch.long), torch.tensor([0, 2, 4])
    active = torch.arange(slots)[None] < torch.tensor([4, 3, 2])[:, None]
    weights = torch.nn.functional.one_hot(split, slots + 1).float().requires_grad_()
    plan = PromptPlan(split, active, deep_prompts=[], position_weights=weights)
    layout = assemble(tokens, mask, torch.zeros_like(mask), plan, Frame(position_base=base, position_table=table))
    assert torch.equal(layout.inputs_embeds, tokens)  # the forward pass is the hard choice alone
    upstream = torch.randn_like(tokens)
    (layout.inputs_embeds * upstream).sum().backward()
    before = torch.stack([(active & (torch.arange(slots)[None] >= p)).sum(1) for p in range(slots + 1)], 1)
    shifted = table[base + before[..., None] + torch.arange(length)]  # (B, L + 1, S, H)
    assert torch.allclose(weights.grad, (shifted * upstream[:, None]).sum((2, 3)), atol=1e-5)


def test_dp_checkpoint_round_trip(tiny_backbone, data_dir, tmp_path):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length", "pool"), where="both").eval()
    spread_choices(model, batch)
    model.save_pretrained(tmp_path / "dp")
    loaded = PromptClassifier.from_pretrained(tmp_path / "dp", backbone=tiny_backbone).eval()
    assert loaded.method == model.method
    assert torch.equal(loaded(batch), model(batch))
    assert explain(loaded, batch) == explain(model, batch)


def test_cli_trains_dp_with_every_option(data_dir, tiny_bert_path, tmp_path):
    from dp_core import cli

    code = cli.main(["--task", "copa", "--method", "dp", "--factors", "position,length,pool", "--level",
                     "instance", "--where", "both", "--pool-size", "3", "--backbone", str(tiny_bert_path),
                     "--data-dir", str(data_dir), "--k-shot", "8", "--dev-limit", "8", "--max-steps", "2",
                     "--batch-size", "4", "--num-tokens", "4", "--output-dir", str(tmp_path / "out"),
                     "--device", "cpu", "--estimator", "straight_through", "--place-given-length"])
    assert code == 0
    loaded = PromptClassifier.from_pretrained(tmp_path / "out", device="cpu")
    assert loaded.method.factors == ("position", "length", "pool") and loaded.method.pool_size == 3
    assert loaded.method.estimator == "straight_through" and int(loaded.prompt.steps_done) == 2
    assert loaded.method.place_given_length


def test_multitask_shares_one_prompt_and_network_then_continues_per_task(data_dir, tiny_backbone, tmp_path):
    from dp_core.config import TrainConfig
    from dp_core.multitask import train_shared_prompt
    from dp_core.train import run

    config = TrainConfig(prompt=DynamicPromptConfig(num_tokens=4, factors=("position", "pool"), pool_size=2),
                         data_dir=str(data_dir), k_shot=8, dev_limit=8, batch_size=4, lr=5e-2, device="cpu")
    tasks = ["cb", "rte", "copa"]
    before = train_shared_prompt(config, tasks, steps=0, backbone=tiny_backbone)["cb"].prompt.state_dict()
    seen = []
    models = train_shared_prompt(config, tasks, steps=6, backbone=tiny_backbone,
                                 on_step=lambda step, task, loss: seen.append(task))
    assert seen == ["cb", "rte", "copa"] * 2  # tasks take turns
    shared = models["cb"].prompt
    assert models["rte"].prompt is shared and models["copa"].prompt is shared
    assert models["cb"].head is not models["rte"].head and models["copa"].head[1].out_features == 1
    trained = shared.state_dict()
    assert not torch.equal(trained["input_pool"], before["input_pool"])
    assert any(not torch.equal(trained[name], before[name]) for name in trained if name.startswith("heads."))

    folder = models["cb"].save_pretrained(tmp_path / "shared")
    continued = run(replace(config, task="wic", init_prompt=str(folder), max_steps=1, lr=0.0), backbone=tiny_backbone)
    assert torch.equal(continued.model.prompt.input_pool, trained["input_pool"])  # stage two starts from it
    with pytest.raises(ValueError, match="does not fit this method"):
        run(replace(config, task="wic", init_prompt=str(folder), prompt=PTuningV2Config(num_tokens=4)),
            backbone=tiny_backbone)


def test_cli_multitask_regime(data_dir, tiny_bert_path, tmp_path):
    from dp_core import cli

    code = cli.main(["--task", "rte", "--method", "dp", "--multitask", "cb,rte", "--multitask-steps", "2",
                     "--backbone", str(tiny_bert_path), "--data-dir", str(data_dir), "--k-shot", "8",
                     "--dev-limit", "8", "--max-steps", "2", "--batch-size", "4", "--num-tokens", "4",
                     "--output-dir", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 0
    shared = PromptClassifier.from_pretrained(tmp_path / "out" / "shared_prompt", device="cpu")
    assert shared.metadata["multitask"] == {"tasks": ["cb", "rte"], "steps": 2}
    final = PromptClassifier.from_pretrained(tmp_path / "out", device="cpu")
    assert final.task.name == "rte" and final.metadata["train_config"]["init_prompt"].endswith("shared_prompt")
    assert int(final.prompt.steps_done) == 4  # the temperature schedule goes on from the shared stage


def test_explain_examples_keeps_item_order(tiny_backbone, data_dir):
    from dp_core.explain import explain_examples

    examples = load_examples("copa", "val", data_dir)[:5]
    model = PromptClassifier(tiny_backbone, "copa", DynamicPromptConfig(num_tokens=4, factors=("position", "length")))
    explanation = explain_examples(model.eval(), examples, batch_size=2)
    assert [d.item for d in explanation.decisions] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for index, example in enumerate(examples):  # each item's rows hold its own words, choice 1 then choice 2
        first, second = explanation.item(index)
        words = lambda d: "".join(text for text, kind in d.layout if kind == INPUT).replace("##", "")  # noqa: E731
        assert example.pairs[0][1].split()[-1].lower().strip(".") in words(first)
        assert first.class_probs == second.class_probs and len(first.class_probs) == 2


FACTOR_SETS = ["position", "length", "pool", "position,length", "position,pool", "length,pool", "position,length,pool"]


@pytest.mark.parametrize("task", ["boolq", "cb", "copa", "rte", "wic", "wsc", "multirc"])
def test_cli_options_train_every_factor_combination_at_both_levels(task, data_dir, tiny_backbone):
    from dp_core.cli import build_parser, config_from_args
    from dp_core.train import load_task_data

    data = None
    for factors in FACTOR_SETS:
        for level in ("task", "instance"):
            args = build_parser().parse_args(["--task", task, "--method", "dp", "--factors", factors, "--level", level,
                                              "--data-dir", str(data_dir), "--k-shot", "4", "--dev-limit", "4",
                                              "--max-steps", "1", "--batch-size", "2", "--num-tokens", "3"]
                                             + (["--fewglue"] if task == "boolq" else []))
            config = config_from_args(args)
            data = data or load_task_data(config)
            result = run(config, backbone=tiny_backbone, data=data)
            assert result.model.method.factors == tuple(factors.split(",")) and result.model.method.level == level
            assert result.best_metrics is not None and int(result.model.prompt.steps_done) == 1


def test_leave_one_out_baseline_judges_each_sample_against_its_items_other_samples(tiny_backbone, data_dir):
    """With K samples per item, a row's advantage is its loss minus the mean of the same item's other samples:
    an item's difficulty cancels, only what its layout changed remains."""
    batch = rte_batch(tiny_backbone, data_dir, count=4)
    model = dp_model(tiny_backbone, samples=3, estimator="score_function").train()
    plan = model.prompt(input_ids=batch.input_ids.repeat(3, 1), features=torch.randn(12, 32))
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 1.5, 2.0, 3.0, 4.0, 0.5, 2.0, 6.0, 4.0])
    log_prob = plan.decisions["choice_log_prob"]
    baseline = torch.tensor([1.0, 2.0, 4.5, 4.0, 0.75, 2.0, 4.5, 4.0, 1.25, 2.0, 3.0, 4.0])
    expected = ((losses - baseline) * log_prob).mean()
    assert torch.allclose(model.prompt.surrogate_loss(plan, losses), expected)
    model.training_loss(batch).backward()  # the batch is laid out 3 times inside; gradients reach the network
    assert model.prompt.heads["position"].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="samples must be 1"):
        DynamicPromptConfig(samples=2, estimator="straight_through")


def test_choice_network_gets_its_own_learning_rate_and_waits_during_warm_up(tiny_backbone, data_dir):
    from dp_core.optimization import build_optimizer

    model = dp_model(tiny_backbone, choice_lr=1e-4, choice_warmup=0.5, estimator="score_function")
    groups = build_optimizer(model, TrainConfig(lr=1e-2, lr_head=2e-2)).param_groups
    assert [group["lr"] for group in groups] == [2e-2, 1e-2, 1e-4]
    assert {id(p) for p in groups[2]["params"]} == {id(p) for p in model.prompt.heads.parameters()}
    batch = rte_batch(tiny_backbone, data_dir)
    model.prompt.schedule_run(10)
    model.train()
    plan = model.encode(batch).plan  # step 1 of 10: warming up, random layouts, nothing for the network to learn
    assert "choice_log_prob" not in plan.decisions
    model.prompt.steps_done.fill_(6)
    assert "choice_log_prob" in model.encode(batch).plan.decisions


def test_entropy_bonus_is_annealed_to_zero_over_the_run(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, entropy_bonus=0.2, factors=("position", "length"),
                     estimator="score_function").train()
    model.prompt.schedule_run(10)
    losses = torch.zeros(batch.input_ids.shape[0])  # no advantage: only the entropy term is left
    plan = model.encode(batch).plan
    entropy = plan.decisions["choice_entropy"]
    assert torch.allclose(model.prompt.surrogate_loss(plan, losses), -0.2 * 0.9 * entropy.mean())
    model.prompt.steps_done.fill_(10)
    plan = model.encode(batch).plan
    assert model.prompt.surrogate_loss(plan, losses).abs() < 1e-7


def test_checkpoints_saved_before_feature_norm_load_as_they_were(tiny_backbone, data_dir, tmp_path):
    import json

    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, tau_schedule="reference").eval()
    spread_choices(model, batch, scale=1.0)
    model.save_pretrained(tmp_path / "old")
    record = json.loads((tmp_path / "old" / "config.json").read_text())
    for name in ("feature_norm", "tau_schedule", "choice_lr", "samples", "entropy_bonus", "choice_warmup",
                 "exact_items"):
        record["method"].pop(name)  # as the checkpoints of before these options
    (tmp_path / "old" / "config.json").write_text(json.dumps(record))
    loaded = PromptClassifier.from_pretrained(tmp_path / "old", backbone=tiny_backbone).eval()
    assert loaded.method.feature_norm == "none" and loaded.method.tau_schedule == "reference"
    assert torch.equal(loaded(batch), model(batch))


def test_exact_estimator_gives_the_gradient_of_the_expected_loss_over_every_candidate(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir, count=6)
    model = dp_model(tiny_backbone, estimator="exact", exact_items=2, factors=("position",)).train()
    features = model.instance_features(batch)
    term = model.expected_choice_loss(batch, features)
    term.backward()
    model.eval()
    with torch.no_grad():  # by hand: each of the first 2 items at every place, its loss weighted by p(place)
        losses = torch.stack([torch.nn.functional.cross_entropy(
            model(batch, features, forced={"position": torch.full((6,), c)}), batch.labels, reduction="none")[:2]
            for c in range(5)], dim=1)
    probs = model.prompt.logits(features[:2])["position"].softmax(-1)
    assert torch.allclose(term, (probs * losses).sum(-1).mean(), atol=1e-5)
    assert model.prompt.heads["position"].weight.grad.abs().sum() > 0


def test_place_given_length_draws_only_the_drawn_lengths_distinct_layouts(tiny_backbone, data_dir):
    """Places p >= l are one layout (all l tokens after the input): drawn given the length, the place is one of
    0..l, and a network with no preference is uniform over those l + 1 layouts."""
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length"), place_given_length=True)
    with torch.no_grad():
        for head in model.prompt.heads.values():
            head.weight.zero_()
            head.bias.zero_()
        model.prompt.heads["length"].bias[2] = 5.0  # three active tokens
    plan = model.eval().encode(batch).plan
    assert (plan.active.sum(-1) == 3).all()
    assert torch.allclose(plan.decisions["position_probs"], torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0]).expand(8, -1))

    spread_choices(model, batch, scale=3.0)
    model.train()
    drawn = set()
    for _ in range(30):
        plan = model.encode(batch).plan
        lengths = plan.active.sum(-1)
        assert (plan.split_position <= lengths).all(), "a place past the length is never drawn"
        past = torch.arange(5)[None, :] > lengths[:, None]
        assert (plan.decisions["position_probs"][past] == 0).all()
        assert torch.isfinite(plan.decisions["choice_log_prob"]).all()
        drawn |= {(int(length), int(place)) for length, place in zip(lengths, plan.split_position)}
    assert any(place < length for length, place in drawn) and len({length for length, _ in drawn}) > 1

    model.prompt.schedule_run(10)
    model.prompt.config.choice_warmup = 1.0  # random layouts: still none past the length
    for _ in range(10):
        plan = model.encode(batch).plan
        assert (plan.split_position <= plan.active.sum(-1)).all()


@pytest.mark.parametrize("estimator", ["score_function", "straight_through", "exact"])
def test_place_given_length_learns_with_every_estimator(estimator, tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir)
    model = dp_model(tiny_backbone, factors=("position", "length"), place_given_length=True, estimator=estimator,
                     entropy_bonus=0.1, exact_items=2).train()
    model.prompt.schedule_run(10)
    loss = model.training_loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.prompt.heads.named_parameters():
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


def test_exact_estimator_weighs_each_place_by_its_probability_given_the_length(tiny_backbone, data_dir):
    batch = rte_batch(tiny_backbone, data_dir, count=6)
    model = dp_model(tiny_backbone, estimator="exact", exact_items=2, factors=("position", "length"),
                     place_given_length=True)
    spread_choices(model, batch, scale=3.0)
    features = model.instance_features(batch)
    term = model.train().expected_choice_loss(batch, features)
    model.eval()
    with torch.no_grad():  # by hand: each factor forced to every candidate, the other at DP's own choice
        def losses(factor, candidates):
            return torch.stack([torch.nn.functional.cross_entropy(
                model(batch, features, forced={factor: torch.full((6,), c)}), batch.labels, reduction="none")[:2]
                for c in range(candidates)], dim=1)

        logits = model.prompt.logits(features[:2])
        lengths = logits["length"].argmax(-1) + 1
        place_probs = logits["position"].softmax(-1)
    assert (place_probs[torch.arange(5)[None, :] > lengths[:, None]] == 0).all()
    expected = sum((logits[f].softmax(-1) * losses(f, n)).sum(-1).mean() for f, n in (("position", 5), ("length", 4)))
    assert torch.allclose(term, expected, atol=1e-5)


def test_place_given_length_needs_both_factors():
    with pytest.raises(ValueError, match="needs both factors"):
        DynamicPromptConfig(factors=("position",), place_given_length=True)
