"""Prompts to and from PEFT: an exported adapter gives PEFT's model our outputs; a PEFT adapter starts our prompts."""

import copy
from pathlib import Path

import pytest
import torch
from peft import PeftModel, PrefixTuningConfig, TaskType, get_peft_model

from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.encoder import run_encoder
from dp_core.model import PromptClassifier
from dp_core.peft_interop import export_peft, load_peft_prompt
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.train import run

from .test_families import batch_of, family_backbones  # noqa: F401 - the fixture

ATOL = 1e-4  # float32 through two implementations of the same attention


def our_lm_logits(model, batch):
    plan, layout = model.build_layout(batch)
    hidden, _ = run_encoder(model.backbone.model, layout, plan.deep_prompts)
    return model.backbone.full.get_output_embeddings()(hidden), layout


def randomised(model):
    torch.manual_seed(1)
    with torch.no_grad():
        model.prompt.embedding.weight.normal_()
    return model


@pytest.mark.parametrize("name, method", [("gpt2", PTuningV2Config(num_tokens=5)), ("llama", PTuningV2Config(num_tokens=5)),
                                          ("gpt2", PromptTuningConfig(num_tokens=5))],
                         ids=["gpt2-ptv2", "llama-ptv2", "gpt2-prompt-tuning"])
def test_an_exported_adapter_gives_peft_the_same_logits(name, method, family_backbones, data_dir, tmp_path):  # noqa: F811
    backbone = family_backbones[name]
    ours = randomised(PromptClassifier(backbone, "rte", method)).eval()
    export_peft(ours, tmp_path / "adapter")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(backbone.full), str(tmp_path / "adapter")).eval()
    batch = batch_of(backbone, data_dir)
    with torch.no_grad():
        expected = peft_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits, layout = our_lm_logits(ours, batch)
    real = batch.attention_mask.bool()
    if isinstance(method, PromptTuningConfig):  # PEFT's rows start with the prompt, as ours on GPT-2: compare the text
        assert torch.allclose(logits[layout.slot == -1], expected[:, method.num_tokens:][real], atol=ATOL)
    else:
        assert torch.allclose(logits[real], expected[real], atol=ATOL)


def test_a_peft_prefix_adapter_starts_p_tuning_v2_and_dp_deep(family_backbones, data_dir, tmp_path):  # noqa: F811
    backbone = family_backbones["gpt2"]
    torch.manual_seed(2)
    peft_model = get_peft_model(copy.deepcopy(backbone.full), PrefixTuningConfig(task_type=TaskType.CAUSAL_LM,
                                                                                 num_virtual_tokens=5))
    peft_model.save_pretrained(str(tmp_path / "prefix"))
    vectors = peft_model.prompt_encoder["default"].embedding.weight.detach()
    fixed = PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=5))
    load_peft_prompt(fixed, tmp_path / "prefix")
    assert torch.equal(fixed.prompt.embedding.weight.detach(), vectors)
    dp = PromptClassifier(backbone, "rte", DynamicPromptConfig(num_tokens=5, where="deep", factors=("length", "pool"),
                                                               pool_size=3))
    load_peft_prompt(dp, tmp_path / "prefix")
    assert all(torch.equal(prompt, vectors) for prompt in dp.prompt.deep_pool.detach())  # every pool prompt
    with pytest.raises(ValueError, match=r"its prompt is \(5, 128\)"):
        load_peft_prompt(PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=4)), tmp_path / "prefix")


def test_init_prompt_takes_a_peft_adapter_folder(tiny_backbone, data_dir, tmp_path, monkeypatch):
    from dp_core import train as train_module

    fixed = randomised(PromptClassifier(tiny_backbone, "cb", PromptTuningConfig(num_tokens=4)))
    export_peft(fixed, tmp_path / "adapter")
    started = {}

    def watched(model, folder):  # the pool as the run starts from it
        load_peft_prompt(model, folder)
        started["pool"] = model.prompt.input_pool.detach().clone()

    monkeypatch.setattr(train_module, "load_peft_prompt", watched)
    config = TrainConfig(task="cb", prompt=DynamicPromptConfig(num_tokens=4), data_dir=str(data_dir), k_shot=8,
                         dev_limit=8, max_steps=1, batch_size=4, init_prompt=str(tmp_path / "adapter"), device="cpu")
    run(config, backbone=tiny_backbone)
    assert all(torch.equal(prompt, fixed.prompt.embedding.weight.detach()) for prompt in started["pool"])


def test_peft_s_own_forward_on_an_encoder_matches_ours_and_the_export_says_it_drops_token_types(
        family_backbones, data_dir, tmp_path):  # noqa: F811
    from dp_core.data import Batch

    backbone = family_backbones["bert"]
    ours = randomised(PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=5))).eval()
    with pytest.warns(UserWarning, match="PEFT drops token type ids"):
        export_peft(ours, tmp_path / "adapter")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(backbone.model), str(tmp_path / "adapter")).eval()
    paired = batch_of(backbone, data_dir)  # RTE: premise and hypothesis, segments 0 and 1
    single = Batch(paired.input_ids, paired.attention_mask, torch.zeros_like(paired.token_type_ids), paired.labels,
                   paired.items, paired.rows)  # as PEFT reads every row
    real = paired.attention_mask.bool()
    with torch.no_grad(), pytest.warns(UserWarning, match="Token type ids are not supported"):
        theirs = peft_model(input_ids=paired.input_ids, attention_mask=paired.attention_mask,
                            token_type_ids=paired.token_type_ids).last_hidden_state
    with torch.no_grad():
        same_segments = run_encoder(backbone.model, *_layout(ours, single))[0]
        two_segments = run_encoder(backbone.model, *_layout(ours, paired))[0]
    assert torch.allclose(same_segments[real], theirs[real], atol=ATOL)  # PEFT's forward runs on BERT, and agrees
    assert not torch.allclose(two_segments[real], theirs[real], atol=ATOL)  # ... but not on pairs: as the note says


def _layout(model, batch):
    plan, layout = model.build_layout(batch)
    return layout, plan.deep_prompts


def test_an_adapter_names_its_base_model_as_peft_can_load_it_never_a_path_of_this_machine(
        default_backbone, family_backbones, tmp_path):  # noqa: F811
    import json
    import warnings

    for backbone, named in ((default_backbone, "sentence-transformers/all-MiniLM-L6-v2"),
                            (family_backbones["gpt2"], Path(family_backbones["gpt2"].name).name)):
        folder = tmp_path / backbone.name.replace("/", "_")[-20:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_peft(randomised(PromptClassifier(backbone, "rte", PTuningV2Config(num_tokens=5))), folder)
        assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == named
        for saved in folder.iterdir():
            if saved.suffix in (".json", ".md"):
                text = saved.read_text()
                assert str(tmp_path) not in text and "site-packages" not in text and "/work" not in text, saved
