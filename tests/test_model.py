import pytest
import torch
from peft import PrefixTuningConfig, TaskType, get_peft_model
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, ElectraConfig, ElectraModel, RobertaConfig,
                          RobertaModel, XLMRobertaConfig, XLMRobertaModel)

from dp_core.backbone import BackboneError, load_backbone, resolve_backbone_path
from dp_core.data import collate, encode_examples
from dp_core.encoder import cache_keyword, run_encoder, run_layers
from dp_core.layout import Frame, PromptPlan, assemble
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import FineTuneConfig, PromptTuningConfig, PTuningV1Config, PTuningV2Config
from dp_core.tasks import Example, get_task, load_examples

from .conftest import TINY, save_tiny


def padded_batch(backbone, data_dir, task="rte", count=6):
    examples = load_examples(task, "val", data_dir)[:count]
    split = encode_examples(backbone.tokenizer, get_task(task), examples, max_length=64)
    batch = collate(split, list(range(count)), backbone.tokenizer.pad_token_id)
    assert (batch.attention_mask == 0).any(), "the batch must contain padding"
    return batch


@pytest.mark.parametrize("which", ["tiny", "default"])
def test_ptv2_matches_peft_prefix_tuning(which, request, data_dir):
    backbone = request.getfixturevalue("tiny_backbone" if which == "tiny" else "default_backbone")
    path = backbone.name if which == "tiny" else resolve_backbone_path(backbone.name)
    torch.manual_seed(0)
    reference = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    peft_model = get_peft_model(reference, PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=8))
    peft_model.eval()
    ours = PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=8), HeadConfig(pooling="pooler")).eval()
    with torch.no_grad():
        ours.prompt.embedding.weight.copy_(peft_model.prompt_encoder["default"].embedding.weight)
        ours.head[1].weight.copy_(reference.classifier.weight)  # PEFT wraps the head as a module to save
        ours.head[1].bias.copy_(reference.classifier.bias)
    batch = padded_batch(backbone, data_dir)
    with torch.no_grad():
        # PEFT's prefix-tuning forward, step by step: PEFT 0.21 looks for a ``past_key_values`` argument that
        # transformers 5.24 renamed ``cache``, so its own forward refuses BERT there. PEFT makes the keys/values,
        # transformers' own cache attention reads them, the mask gets ones for the prefix as PEFT gives it.
        prefix = peft_model.get_prompt(len(batch.input_ids))
        mask = torch.cat([torch.ones(len(batch.input_ids), 8, dtype=batch.attention_mask.dtype),
                          batch.attention_mask], dim=1)
        pooled = reference.bert(input_ids=batch.input_ids, attention_mask=mask, token_type_ids=batch.token_type_ids,
                                **{cache_keyword(type(reference.bert)): prefix}).pooler_output
        expected = reference.classifier(pooled)
        assert torch.allclose(ours(batch), expected, atol=1e-5)


def plain_and_prompted(backbone, batch, prompt_embeds=None, deep=None, active=None):
    model = backbone.model.eval()
    num_slots = 4
    active = torch.zeros(batch.input_ids.shape[0], num_slots, dtype=torch.bool) if active is None else active
    plan = PromptPlan(torch.zeros(len(active), dtype=torch.long), active, input_prompts=prompt_embeds,
                      deep_prompts=deep)
    layout = assemble(model.get_input_embeddings()(batch.input_ids), batch.attention_mask, batch.token_type_ids,
                      plan, Frame(position_base=backbone.position_base, max_positions=backbone.max_positions))
    with torch.no_grad():
        plain = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      token_type_ids=batch.token_type_ids).last_hidden_state
        prompted, _ = run_encoder(model, layout, deep)
    real = batch.attention_mask.bool()
    return plain, prompted, real, layout


def random_prompts(backbone, rows, num_slots=4):
    torch.manual_seed(1)
    config = backbone.config
    head_dim = config.hidden_size // config.num_attention_heads
    shape = (rows, config.num_attention_heads, num_slots, head_dim)
    deep = [(torch.randn(shape), torch.randn(shape)) for _ in range(config.num_hidden_layers)]
    return torch.randn(rows, num_slots, config.hidden_size), deep


def tiny_of(kind, tmp_path):
    configs = {"bert": None, "roberta": (RobertaConfig, RobertaModel), "electra": (ElectraConfig, ElectraModel),
               "xlm-roberta": (XLMRobertaConfig, XLMRobertaModel)}
    config_class, model_class = configs[kind]
    extra = {"embedding_size": 32} if kind == "electra" else {}
    return load_backbone(str(save_tiny(tmp_path, config_class(**TINY, **extra), model_class)), device="cpu")


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra", "xlm-roberta"])
def test_prompts_switched_off_reproduce_the_plain_model_and_switched_on_change_it(kind, tmp_path, tiny_backbone,
                                                                                 data_dir):
    backbone = tiny_backbone if kind == "bert" else tiny_of(kind, tmp_path)
    batch = padded_batch(backbone, data_dir)
    tokens, deep = random_prompts(backbone, batch.input_ids.shape[0])
    for prompt_embeds, deep_prompts in [(tokens, None), (None, deep), (tokens, deep)]:
        plain, prompted, real, layout = plain_and_prompted(backbone, batch, prompt_embeds, deep_prompts)
        assert torch.allclose(prompted[:, : plain.shape[1]][real], plain[real], atol=1e-5)
        active = torch.ones(batch.input_ids.shape[0], 4, dtype=torch.bool)
        _, prompted_on, _, layout_on = plain_and_prompted(backbone, batch, prompt_embeds, deep_prompts, active)
        on_input = prompted_on[layout_on.slot == -1]
        assert on_input.shape == plain[real].shape
        assert (on_input - plain[real]).abs().max() > 1e-3, "the prompt must change the output"


def test_layer_by_layer_path_equals_the_cache_path(tiny_backbone, data_dir):
    batch = padded_batch(tiny_backbone, data_dir)
    _, deep = random_prompts(tiny_backbone, batch.input_ids.shape[0])
    active = torch.ones(batch.input_ids.shape[0], 4, dtype=torch.bool)
    _, via_cache, _, layout = plain_and_prompted(tiny_backbone, batch, None, deep, active)
    with torch.no_grad():
        via_layers, _ = run_layers(tiny_backbone.model.eval(), layout, deep)
    real = layout.attention_mask.bool()
    assert torch.allclose(via_layers[real], via_cache[real], atol=1e-5)


def test_ptv2_layer_range_prompts_only_those_layers(tiny_backbone, data_dir):
    batch = padded_batch(tiny_backbone, data_dir)
    model = PromptClassifier(tiny_backbone, "rte", PTuningV2Config(num_tokens=4, layers=(1, 2))).eval()
    full = PromptClassifier(tiny_backbone, "rte", PTuningV2Config(num_tokens=4)).eval()
    assert model.prompt.embedding.weight.shape[1] * 2 == full.prompt.embedding.weight.shape[1]
    pairs = model.prompt.key_values(1)
    assert pairs[0] is None and pairs[1] is not None
    before = model(batch).detach()
    with torch.no_grad():
        model.prompt.embedding.weight.mul_(3)
    assert not torch.allclose(model(batch), before)
    with pytest.raises(ValueError, match="layers must satisfy"):
        PromptClassifier(tiny_backbone, "rte", PTuningV2Config(num_tokens=4, layers=(1, 5)))


def test_trainable_parameter_counts(tiny_backbone):
    hidden, layers, labels = 32, 2, 2
    head = hidden * labels + labels
    count = lambda config: PromptClassifier(tiny_backbone, "rte", config).trainable_parameter_count()  # noqa: E731
    assert count(PTuningV2Config(num_tokens=8)) == 8 * 2 * layers * hidden + head
    assert count(PromptTuningConfig(num_tokens=8)) == 8 * hidden + head
    assert count(PTuningV1Config(num_tokens=8, encoder="mlp")) == 8 * hidden + 2 * (hidden * hidden + hidden) + head
    backbone_size = sum(p.numel() for p in tiny_backbone.model.parameters())
    assert count(FineTuneConfig()) == backbone_size + head
    assert all(not p.requires_grad for p in tiny_backbone.model.parameters()), "the shared backbone stays frozen"


def test_copa_scores_each_choice(tiny_backbone, data_dir):
    examples = load_examples("copa", "val", data_dir)[:3]
    split = encode_examples(tiny_backbone.tokenizer, get_task("copa"), examples, 64)
    batch = collate(split, [0, 1, 2], tiny_backbone.tokenizer.pad_token_id)
    assert batch.input_ids.shape[0] == 6
    logits = PromptClassifier(tiny_backbone, "copa", PTuningV2Config(num_tokens=4)).eval()(batch)
    assert logits.shape == (3, 2)


def test_checkpoint_round_trip_is_safetensors_and_json(tiny_backbone, data_dir, tmp_path):
    model = PromptClassifier(tiny_backbone, "cb", PTuningV2Config(num_tokens=4, reparameterize=True,
                                                                  reparam_hidden=16)).eval()
    torch.nn.init.normal_(model.head[1].weight)
    model.save_pretrained(tmp_path / "ckpt", metrics={"accuracy": 0.5})
    saved = {p.name: p.stat().st_size for p in (tmp_path / "ckpt").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= set(saved)  # what from_pretrained reads
    assert saved["model.safetensors"] < 200_000  # the prompt and the head, never the backbone
    loaded = PromptClassifier.from_pretrained(tmp_path / "ckpt", backbone=tiny_backbone).eval()
    batch = padded_batch(tiny_backbone, data_dir, task="cb", count=4)
    assert torch.equal(loaded(batch), model(batch))
    assert loaded.metadata["metrics"] == {"accuracy": 0.5} and loaded.method.reparameterize


def test_unsupported_architecture_is_refused_with_the_list(tiny_distilbert_path):
    with pytest.raises(BackboneError, match="'distilbert' is not supported.*encoders: bert, roberta, electra.*decoders: llama.*t5"):
        load_backbone(str(tiny_distilbert_path), device="cpu")


def test_hub_id_that_cannot_be_fetched_offline(offline):
    with pytest.raises(BackboneError) as error:
        load_backbone("someone/not-cached-model", device="cpu")
    assert "\n" not in str(error.value) and "offline?" in str(error.value)


def test_long_inputs_are_truncated_to_fit_the_prompt_and_counted(tiny_backbone):
    model = PromptClassifier(tiny_backbone, "rte", PromptTuningConfig(num_tokens=16), max_length=200)
    assert model.max_length == 96 - 16
    long = Example(pairs=(("word " * 300, "short"),), label=0, group="0")
    split = encode_examples(tiny_backbone.tokenizer, get_task("rte"), [long, long], model.max_length)
    assert split.truncated == 2 and max(len(row) for row in split.input_ids) == model.max_length
    batch = collate(split, [0, 1], tiny_backbone.tokenizer.pad_token_id)
    assert model.eval()(batch).shape == (2, 2)  # prompt + input fit the position table


def test_a_half_precision_copy_of_a_backbone_loads_in_float32(tiny_bert_path, tmp_path):
    """How the default backbone travels to a GPU machine: an fp16 copy; autocast, not the weights, sets precision."""
    half = load_backbone(str(tiny_bert_path), device="cpu").model.half()
    half.save_pretrained(tmp_path / "fp16")
    AutoTokenizer.from_pretrained(str(tiny_bert_path)).save_pretrained(tmp_path / "fp16")
    loaded = load_backbone(str(tmp_path / "fp16"), device="cpu")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert loaded.model.embeddings.word_embeddings.weight.equal(half.embeddings.word_embeddings.weight.float())
