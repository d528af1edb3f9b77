"""Prompts on every supported family, on tiny random models built here (no download): BERT, RoBERTa, T5, Llama,
Qwen2 and GPT-2. Each tiny model gets the default backbone's WordPiece vocabulary with its family's special tokens
(T5: a closing </s> only; Llama: an opening <s> only; GPT-2: none)."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PrefixTuningConfig, TaskType, get_peft_model
from tokenizers import processors
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, BertModel, GPT2Config, GPT2LMHeadModel,
                          LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
                          RobertaConfig, RobertaModel, T5Config, T5ForConditionalGeneration)

from dp_core.backbone import BackboneError, load_backbone, resolve_backbone_path
from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.encoder import body_inputs, run_encoder
from dp_core.layout import Frame, PromptPlan, assemble
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples

from .conftest import TINY

SMALL = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=96)
# name -> (config, model class, tokenizer template for one text, for a pair)
FAMILIES = {
    "bert": (lambda: BertConfig(**TINY), BertModel, None),
    "roberta": (lambda: RobertaConfig(**TINY, pad_token_id=0), RobertaModel, None),
    "bert-mlm": (lambda: BertConfig(**TINY), BertForMaskedLM, None),
    "t5": (lambda: T5Config(vocab_size=30522, d_model=32, d_ff=64, num_layers=2, num_heads=4, d_kv=8,
                            decoder_start_token_id=0, pad_token_id=0, eos_token_id=102),
           T5ForConditionalGeneration, ("$A [SEP]", "$A [SEP] $B [SEP]")),
    "llama": (lambda: LlamaConfig(**SMALL, num_key_value_heads=2, pad_token_id=0), LlamaForCausalLM,
              ("[CLS] $A", "[CLS] $A $B")),
    "qwen2": (lambda: Qwen2Config(**SMALL, num_key_value_heads=2, pad_token_id=0), Qwen2ForCausalLM,
              ("$A", "$A $B")),
    "gpt2": (lambda: GPT2Config(vocab_size=30522, n_embd=32, n_layer=2, n_head=4, n_positions=96, pad_token_id=0,
                                bos_token_id=101, eos_token_id=102),
             GPT2LMHeadModel, ("$A", "$A $B")),
}
DECODERS = ["llama", "qwen2", "gpt2"]


def family_tokenizer(template: tuple[str, str] | None):
    """The default backbone's tokenizer, or the same vocabulary with another family's special tokens."""
    base = AutoTokenizer.from_pretrained(resolve_backbone_path("default"))
    if template is None:
        return base
    backend = copy.deepcopy(base.backend_tokenizer)
    backend.post_processor = processors.TemplateProcessing(
        single=template[0], pair=template[1], special_tokens=[("[CLS]", base.cls_token_id),
                                                              ("[SEP]", base.sep_token_id)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", eos_token="[SEP]",
                                   bos_token="[CLS]", unk_token="[UNK]")


@pytest.fixture(scope="module")
def family_backbones(tmp_path_factory):
    backbones = {}
    for name, (make_config, model_class, template) in FAMILIES.items():
        folder = tmp_path_factory.mktemp(f"tiny-{name}")
        torch.manual_seed(0)
        model_class(make_config()).save_pretrained(folder)
        family_tokenizer(template).save_pretrained(folder)
        backbones[name] = load_backbone(str(folder), device="cpu")
    return backbones


def batch_of(backbone, data_dir, task="rte", count=4):
    examples = load_examples(task, "val", data_dir)[:count]
    split = encode_examples(backbone.tokenizer, get_task(task), examples, max_length=40)
    return collate(split, list(range(count)), backbone.tokenizer.pad_token_id)


def laid_out(backbone, batch, split, prompt_embeds, num_slots=4):
    model = backbone.model.eval()
    rows = batch.input_ids.shape[0]
    active = torch.ones(rows, num_slots, dtype=torch.bool) if prompt_embeds is not None \
        else torch.zeros(rows, num_slots, dtype=torch.bool)
    plan = PromptPlan(torch.full((rows,), split, dtype=torch.long), active, input_prompts=prompt_embeds)
    frame = Frame(backbone.special_tokens, backbone.position_base, backbone.max_positions)
    return assemble(model.get_input_embeddings()(batch.input_ids), batch.attention_mask, batch.token_type_ids,
                    plan, frame)


def test_each_family_keeps_its_special_tokens_at_the_ends(family_backbones):
    expected = {"bert": (1, 1), "roberta": (1, 1), "bert-mlm": (1, 1), "t5": (0, 1), "llama": (1, 0),
                "qwen2": (0, 0), "gpt2": (0, 0)}
    assert {name: backbone.special_tokens for name, backbone in family_backbones.items()} == expected
    assert {name: backbone.family.name for name, backbone in family_backbones.items()} == {
        "bert": "encoder", "roberta": "encoder", "bert-mlm": "encoder", "t5": "encoder-decoder", "llama": "decoder",
        "qwen2": "decoder",
        "gpt2": "decoder"}


def test_a_decoder_tokenizer_gets_a_line_break_between_the_texts_of_a_pair(family_backbones, data_dir):
    backbone = family_backbones["gpt2"]
    example = load_examples("rte", "val", data_dir)[0]
    split = encode_examples(backbone.tokenizer, get_task("rte"), [example], max_length=200)
    apart = backbone.tokenizer(example.pairs[0][0] + "\n" + example.pairs[0][1])["input_ids"]
    assert split.input_ids[0] == apart


@pytest.mark.parametrize("name", list(FAMILIES))
def test_prompts_switched_off_reproduce_the_plain_model_and_switched_on_change_it(name, family_backbones, data_dir):
    backbone = family_backbones[name]
    batch = batch_of(backbone, data_dir)
    model = backbone.model.eval()
    real = batch.attention_mask.bool()
    with torch.no_grad():
        plain = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      **body_inputs(model, None, batch.token_type_ids)).last_hidden_state
        off, _ = run_encoder(model, laid_out(backbone, batch, 0, None), None)
        torch.manual_seed(1)
        prompts = torch.randn(len(batch.input_ids), 4, backbone.hidden_size)
        on, _ = run_encoder(model, laid_out(backbone, batch, 0, prompts), None)
    assert torch.allclose(off[real], plain[real], atol=1e-5)
    lead = backbone.special_tokens[0]
    assert not torch.allclose(on[:, lead + 4:lead + 8], plain[:, lead:lead + 4], atol=1e-3)


@pytest.mark.parametrize("name", DECODERS)
def test_in_a_decoder_a_prompt_after_the_input_leaves_it_unchanged_and_one_before_it_does_not(
        name, family_backbones, data_dir):
    backbone = family_backbones[name]
    batch = batch_of(backbone, data_dir)
    model = backbone.model.eval()
    torch.manual_seed(1)
    prompts = torch.randn(len(batch.input_ids), 4, backbone.hidden_size)
    real = batch.attention_mask.bool()
    with torch.no_grad():
        plain = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      **body_inputs(model, None, None)).last_hidden_state
        after, _ = run_encoder(model, laid_out(backbone, batch, 4, prompts), None)  # every slot after the text
        before, _ = run_encoder(model, laid_out(backbone, batch, 0, prompts), None)
    width = plain.shape[1]
    assert torch.allclose(after[:, :width][real], plain[real], atol=1e-5)  # the input's places did not move
    rows, last = torch.arange(len(plain)), batch.attention_mask.sum(1) - 1
    assert not torch.allclose(before[rows, last + 4], plain[rows, last], atol=1e-3)  # the last text token sees it


def test_in_an_encoder_a_prompt_after_the_input_changes_it(family_backbones, data_dir):
    backbone = family_backbones["bert"]
    batch = batch_of(backbone, data_dir)
    torch.manual_seed(1)
    prompts = torch.randn(len(batch.input_ids), 4, backbone.hidden_size)
    with torch.no_grad():
        plain = backbone.model.eval()(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        after, _ = run_encoder(backbone.model, laid_out(backbone, batch, 4, prompts), None)
    assert not torch.allclose(after[:, 1:5], plain[:, 1:5], atol=1e-3)  # bidirectional: text tokens see it


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_decoder_ptv2_matches_peft_prefix_tuning(name, family_backbones, data_dir):
    backbone = family_backbones[name]
    batch = batch_of(backbone, data_dir)
    reference = get_peft_model(copy.deepcopy(backbone.full), PrefixTuningConfig(task_type=TaskType.CAUSAL_LM,
                                                                                num_virtual_tokens=6)).eval()
    ours = PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=6)).eval()
    with torch.no_grad():
        ours.prompt.embedding.weight.copy_(reference.prompt_encoder["default"].embedding.weight)
        expected = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        plan, layout = ours.build_layout(batch)
        hidden, _ = run_encoder(backbone.model, layout, plan.deep_prompts)
        logits = backbone.full.get_output_embeddings()(hidden)
    real = batch.attention_mask.bool()
    assert torch.allclose(logits[real], expected[real], atol=1e-4)


def test_t5_refuses_deep_prompts_with_its_reason_and_takes_input_level_ones(family_backbones, data_dir):
    backbone = family_backbones["t5"]
    for method in (PTuningV2Config(num_tokens=4), DynamicPromptConfig(num_tokens=4, where="deep")):
        with pytest.raises(ValueError, match="deep prompts do not work on t5: T5's encoder attention takes no"):
            PromptClassifier(backbone, "rte", method)
    model = PromptClassifier(backbone, "rte", PromptTuningConfig(num_tokens=4))
    assert model.head_config.pooling == "mean"
    assert model(batch_of(backbone, data_dir)).shape == (4, 2)


def test_rotary_decoders_refuse_a_deep_place_choice(family_backbones):
    with pytest.raises(ValueError, match="llama has rotary positions"):
        PromptClassifier(family_backbones["llama"], "rte", DynamicPromptConfig(num_tokens=4, where="deep"))
    PromptClassifier(family_backbones["llama"], "rte", DynamicPromptConfig(num_tokens=4, where="deep",
                                                                           factors=("length", "pool")))
    PromptClassifier(family_backbones["gpt2"], "rte", DynamicPromptConfig(num_tokens=4, where="deep"))


@pytest.mark.parametrize("name", ["t5", "llama", "gpt2"])
def test_dp_with_its_choice_forced_to_the_fixed_layout_is_prompt_tuning(name, family_backbones, data_dir):
    backbone = family_backbones[name]
    batch = batch_of(backbone, data_dir)
    torch.manual_seed(0)
    dp = PromptClassifier(backbone, "rte", DynamicPromptConfig(num_tokens=4, prompt_dropout=0.0)).eval()
    fixed = PromptClassifier(backbone, "rte", PromptTuningConfig(num_tokens=4)).eval()
    with torch.no_grad():
        fixed.prompt.embedding.weight.copy_(dp.prompt.input_pool[0])
        fixed.head.load_state_dict(dp.head.state_dict())
        rows = torch.zeros(len(batch.input_ids), dtype=torch.long)
        assert torch.allclose(dp(batch, forced={"position": rows}), fixed(batch), atol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_the_linear_head_of_a_decoder_reads_the_last_real_place(name, family_backbones, data_dir):
    backbone = family_backbones[name]
    model = PromptClassifier(backbone, "rte", PromptTuningConfig(num_tokens=4), HeadConfig(dropout=0.0)).eval()
    assert model.head_config.pooling == "last"
    batch = batch_of(backbone, data_dir)
    with torch.no_grad():
        encoded = model.encode(batch)
        plan, layout = model.build_layout(batch)
        hidden, _ = run_encoder(backbone.model, layout, None)
        last = layout.attention_mask.sum(1) - 1
        assert torch.allclose(encoded.pooled, hidden[torch.arange(len(hidden)), last], atol=1e-6)


@pytest.mark.slow
def test_smollm2_loads_offline_as_a_llama_decoder_and_trains(offline, data_dir):
    from dp_core.config import TrainConfig
    from dp_core.train import run

    backbone = load_backbone("smollm2-135m", device="cpu")
    assert (backbone.family.name, backbone.config.model_type, backbone.num_layers, backbone.hidden_size) == \
        ("decoder", "llama", 30, 576)
    assert backbone.special_tokens == (0, 0)
    assert backbone.token_cost == 134_515_008 - 49_152 * 576  # the tied embedding table counted nowhere
    config = TrainConfig(task="cb", backbone="smollm2-135m", data_dir=str(data_dir), max_steps=2, batch_size=4,
                         dev_limit=4, max_length=48, counterfactuals="none",
                         prompt=DynamicPromptConfig(num_tokens=4, where="input"))
    result = run(config, backbone=backbone)
    assert result.model.head_config.pooling == "last" and result.dev_metrics["score"] >= 0


def test_the_cached_copy_of_a_gguf_decoder_is_written_whole_and_a_second_writer_leaves_it(tmp_path):
    from dp_core.backbone import _save_copy

    config, model_class, template = FAMILIES["gpt2"]
    model, tokenizer = model_class(config()).eval(), family_tokenizer(template)
    folder = tmp_path / "cache" / "model"
    _save_copy(model, tokenizer, folder)
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(written)
    copy_back = model_class.from_pretrained(folder).eval()
    inputs = torch.tensor([[101, 2000, 2001, 102]])
    assert torch.equal(copy_back(inputs).logits, model(inputs).logits)
    _save_copy(model_class(config()), tokenizer, folder)  # another process got there first: its copy stays
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    assert [path.name for path in folder.parent.iterdir()] == ["model"]  # no half-written folder left behind


def spelled_out(model, batch, token_id: int):
    """The batch with the prompt's slots written as real tokens: the prompt vectors become that token's embedding,
    and the same token is inserted where the layout puts the slots (all before the text)."""
    backbone = model.backbone
    with torch.no_grad():
        model.prompt.embedding.weight.copy_(backbone.model.get_input_embeddings().weight[token_id])
    lead, slots = backbone.special_tokens[0], model.method.num_tokens
    lengths = batch.attention_mask.sum(1).tolist()
    rows = [row[:length].tolist() for row, length in zip(batch.input_ids, lengths)]
    rows = [row[:lead] + [token_id] * slots + row[lead:] for row in rows]
    types = [row[:length].tolist() for row, length in zip(batch.token_type_ids, lengths)]
    types = [row[:lead] + [0] * slots + row[lead:] for row in types]  # slots before the text are of the first text
    width = max(map(len, rows))
    input_ids = torch.tensor([row + [backbone.tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    token_types = torch.tensor([row + [0] * (width - len(row)) for row in types])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return input_ids, token_types, mask


@pytest.mark.parametrize("name", ["llama", "gpt2", "t5", "bert-mlm"])
def test_the_verbalizer_scores_are_the_lm_logits_of_the_label_words(name, family_backbones, data_dir):
    backbone = family_backbones[name]
    model = PromptClassifier(backbone, "cb", PromptTuningConfig(num_tokens=3), HeadConfig(kind="verbalizer")).eval()
    examples = load_examples("cb", "val", data_dir)[:4]
    batch = collate(model.encode_examples(examples), list(range(4)), backbone.tokenizer.pad_token_id)
    words = [backbone.tokenizer(" " + word, add_special_tokens=False)["input_ids"][0]
             for word in ("yes", "no", "maybe")]
    input_ids, token_types, mask = spelled_out(model, batch, token_id=2023)
    rows = torch.arange(len(input_ids))
    with torch.no_grad():
        ours = model(batch)
        if name == "t5":
            start = torch.zeros(len(input_ids), 1, dtype=torch.long)
            expected = backbone.full(input_ids=input_ids, attention_mask=mask, decoder_input_ids=start).logits[:, 0]
        elif name == "bert-mlm":
            masked_lm = BertForMaskedLM.from_pretrained(resolve_backbone_path(backbone.name)).eval()
            place = (input_ids == backbone.tokenizer.mask_token_id).nonzero()[:, 1]
            logits = masked_lm(input_ids=input_ids, attention_mask=mask, token_type_ids=token_types).logits
            expected = logits[rows, place]
        else:
            expected = backbone.full(input_ids=input_ids, attention_mask=mask).logits[rows, mask.sum(1) - 1]
    assert torch.allclose(ours, expected[:, words], atol=1e-4)
    if name != "t5":  # the answer template closes each row
        answer = backbone.tokenizer("\nAnswer:", add_special_tokens=False)["input_ids"]
        assert all(answer == row[len(row) - len(answer) - backbone.special_tokens[1] - (name == "bert-mlm"):][
            :len(answer)] for row in (r[:int(m.sum())].tolist() for r, m in zip(input_ids, mask)))


def test_a_sentence_encoder_without_an_lm_head_refuses_the_verbalizer(family_backbones):
    with pytest.raises(BackboneError, match="has no masked-LM head in its checkpoint"):
        PromptClassifier(family_backbones["bert"], "rte", PromptTuningConfig(num_tokens=3),
                         HeadConfig(kind="verbalizer"))


def test_the_verbalizer_trains_nothing_but_the_prompt(family_backbones):
    model = PromptClassifier(family_backbones["gpt2"], "copa", PromptTuningConfig(num_tokens=3),
                             HeadConfig(kind="verbalizer"))
    assert set(model.trainable_state()) == {"prompt.embedding.weight"}


def test_a_fixed_suffix_prompt_goes_after_the_text_and_before_the_answer_template(family_backbones, data_dir):
    backbone = family_backbones["gpt2"]
    model = PromptClassifier(backbone, "rte", PromptTuningConfig(num_tokens=3, place="after")).eval()
    batch = collate(model.encode_examples(load_examples("rte", "val", data_dir)[:2]), [0, 1],
                    backbone.tokenizer.pad_token_id)
    _, layout = model.build_layout(batch)
    answer = len(model.answer_ids)
    for row, length in zip(layout.slot, layout.attention_mask.sum(1)):
        assert row[length - answer - 3:length - answer].tolist() == [0, 1, 2]  # the slots, then "\nAnswer:"
        assert (row[:length - answer - 3] == -1).all() and (row[length - answer:length] == -1).all()


def test_the_drawing_of_a_decoder_keeps_its_answer_template_after_the_prompt(family_backbones, data_dir):
    from dp_core.explain import explain_examples

    backbone = family_backbones["gpt2"]
    model = PromptClassifier(backbone, "rte", PromptTuningConfig(num_tokens=3, place="after")).eval()
    drawn = explain_examples(model, load_examples("rte", "val", data_dir)[:1]).item(0)[0].layout
    answer = [backbone.tokenizer.decode([token]) for token in model.answer_ids]
    kinds = [kind for _, kind in drawn]
    assert [text for text, _ in drawn[-len(answer):]] == answer  # "\nAnswer:" closes the row, as the layout does
    assert kinds[-len(answer) - 3:-len(answer)] == ["prompt-after"] * 3 and "prompt-before" not in kinds
