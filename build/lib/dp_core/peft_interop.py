"""Prompts to and from PEFT adapters, written and read by PEFT itself.

- ``export_peft``: a fixed prompt trained here as a PEFT adapter folder. P-tuning v2 becomes ``PrefixTuning`` (the
  same parameter layout; the same outputs). Prompt tuning becomes ``PromptTuning``; PEFT puts its tokens before
  everything, ours go after a leading special token ([CLS], BOS), so the outputs are the same only where the
  tokenizer adds none (GPT-2).
- ``load_peft_prompt``: a PEFT prompt or prefix adapter as the starting prompt of a fixed method or of DP (every
  pool prompt starts from it). ``--init-prompt ADAPTER_FOLDER`` does it from the CLI.

Only the prompt travels: PEFT's prompt adapters hold no head.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from .dynamic import DynamicPromptConfig
from .model import PromptClassifier
from .prompts import PromptTuningConfig, PTuningV2Config

ADAPTER_CONFIG = "adapter_config.json"


def is_peft_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def peft_config_of(model: PromptClassifier):
    """The PEFT config of a model's fixed prompt; a one-line error for what PEFT cannot hold."""
    from peft import PrefixTuningConfig, PromptTuningConfig as PeftPromptTuning, TaskType

    method, backbone = model.method, model.backbone
    task_type = TaskType.CAUSAL_LM if backbone.family.name == "decoder" else TaskType.FEATURE_EXTRACTION
    if isinstance(method, PTuningV2Config) and not method.reparameterize and method.layers is None:
        config_class = PrefixTuningConfig
    elif isinstance(method, PromptTuningConfig) and method.place == "before":
        config_class = PeftPromptTuning
    else:
        raise ValueError(f"PEFT's prompt adapters hold P-tuning v2 in every layer without an MLP, or prompt tuning "
                         f"before the input: not this {method.method}")
    return config_class(task_type=task_type, num_virtual_tokens=method.num_tokens, token_dim=backbone.hidden_size,
                        num_layers=backbone.num_layers, num_attention_heads=backbone.num_heads,
                        num_transformer_submodules=1, base_model_name_or_path=backbone.name, inference_mode=True)


def export_peft(model: PromptClassifier, folder: str | Path) -> Path:
    """Write the model's prompt as a PEFT adapter folder that ``PeftModel.from_pretrained`` loads on the backbone."""
    from peft import get_peft_model

    config = peft_config_of(model)
    base = model.backbone.full if model.backbone.family.name == "decoder" else model.backbone.model
    wrapped = get_peft_model(copy.deepcopy(base), config)  # a copy: PEFT wraps the model it is given
    with torch.no_grad():
        wrapped.prompt_encoder["default"].embedding.weight.copy_(model.prompt.embedding.weight)
    wrapped.peft_config["default"].base_model_name_or_path = model.backbone.name  # the Hub id, not a local copy
    wrapped.save_pretrained(str(folder), save_embedding_layers=False)  # the prompt only: no vocabulary lookup
    return Path(folder)


def load_peft_prompt(model: PromptClassifier, folder: str | Path) -> None:
    """Start ``model``'s prompt from a PEFT prompt or prefix adapter (shapes must agree)."""
    from peft import PeftConfig
    from peft.utils import load_peft_weights

    config = PeftConfig.from_pretrained(str(folder))
    vectors = load_peft_weights(str(folder), device="cpu")["prompt_embeddings"]
    kind, method = config.peft_type.value, model.method
    deep = kind == "PREFIX_TUNING"
    if kind not in ("PREFIX_TUNING", "PROMPT_TUNING"):
        raise ValueError(f"{folder}: a {kind} adapter holds no prompt to start from")
    if isinstance(method, DynamicPromptConfig):
        target = model.prompt.deep_pool if deep else model.prompt.input_pool
        if target is None:
            raise ValueError(f"{folder}: a {'prefix' if deep else 'prompt tuning'} adapter cannot start DP "
                             f"where='{method.where}'")
        source = vectors[None].expand_as(target) if vectors.shape == target.shape[1:] else vectors
    else:
        target = model.prompt.embedding.weight
        source = vectors
    if source.shape != target.shape:
        raise ValueError(f"{folder}: its prompt is {tuple(vectors.shape)}, this {method.method} needs "
                         f"{tuple(target.shape[-2:])}")
    with torch.no_grad():
        target.copy_(source.to(target.device))


def main(argv: list[str] | None = None) -> int:
    """``python -m dp_core.peft_interop CHECKPOINT OUT``: a checkpoint folder's fixed prompt as a PEFT adapter."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m dp_core.peft_interop", description=main.__doc__)
    parser.add_argument("checkpoint", help="a checkpoint folder made by dp_core (P-tuning v2 or prompt tuning)")
    parser.add_argument("out", help="the PEFT adapter folder to write")
    args = parser.parse_args(argv)
    try:
        folder = export_peft(PromptClassifier.from_pretrained(args.checkpoint, device="cpu"), args.out)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"PEFT adapter written to {folder}; PeftModel.from_pretrained(base_model, {str(folder)!r}) loads it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
