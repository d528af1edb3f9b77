"""Prompts to and from PEFT adapters, written and read by PEFT itself.

- ``export_peft``: a fixed prompt trained here as a PEFT adapter folder. P-tuning v2 becomes ``PrefixTuning`` (the
  same parameter layout; the same outputs). Prompt tuning becomes ``PromptTuning``; PEFT puts its tokens before
  everything, ours go after a leading special token ([CLS], BOS), so the outputs are the same only where the
  tokenizer adds none (GPT-2).
- ``load_peft_prompt``: a PEFT prompt or prefix adapter as the starting prompt of a fixed method or of DP (every
  pool prompt starts from it). ``--init-prompt ADAPTER_FOLDER`` does it from the CLI.

Only the prompt travels: PEFT's prompt adapters hold no head. The adapter names its base model as PEFT can load it
where you are: a Hub id (never a path of this machine; a backbone read from a local folder is named by the folder's
name, which ``base_model_name_or_path`` can point at your copy). PEFT's prompt-learning forward drops token type ids:
on text pairs, a backbone that reads them (BERT's segments) gives PEFT other outputs than dp_core; ``export_notes``
says so, in one line.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from .backbone import DEFAULT_BACKBONE, SMOLLM2, SMOLLM2_HUB_ID, resolve_backbone_path
from .dynamic import DynamicPromptConfig
from .model import PromptClassifier
from .prompts import PromptTuningConfig, PTuningV2Config

ADAPTER_CONFIG = "adapter_config.json"


def is_peft_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def peft_config_of(model: PromptClassifier):
    """The PEFT config of a model's fixed prompt; a one-line error for what PEFT cannot hold."""
    from peft import PrefixTuningConfig, TaskType
    from peft import PromptTuningConfig as PeftPromptTuning

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
                        num_transformer_submodules=1, base_model_name_or_path=base_model_name(backbone.name),
                        inference_mode=True)


def base_model_name(name: str) -> str:
    """How an adapter names its base model: the Hub id behind a short name or an offline copy; a local folder by its
    name alone (no path of this machine)."""
    if name == SMOLLM2:
        return SMOLLM2_HUB_ID
    if resolve_backbone_path(name) != name and resolve_backbone_path(DEFAULT_BACKBONE) == resolve_backbone_path(name):
        return DEFAULT_BACKBONE
    path = Path(name).expanduser()
    return path.name if path.exists() else name


def export_notes(model: PromptClassifier) -> list[str]:
    """What PEFT will not keep of this model, one line each."""
    notes = []
    if (getattr(model.backbone.config, "type_vocab_size", 1) or 1) > 1:
        notes.append("PEFT drops token type ids: on text pairs it reads both texts as the first segment, so its "
                     "outputs differ from dp_core's there (single texts match)")
    if Path(model.backbone.name).expanduser().exists():
        notes.append(f"the adapter names its base model {base_model_name(model.backbone.name)!r}: point "
                     "base_model_name_or_path at your copy of it")
    return notes


def export_peft(model: PromptClassifier, folder: str | Path) -> Path:
    """Write the model's prompt as a PEFT adapter folder that ``PeftModel.from_pretrained`` loads on the backbone;
    what PEFT will not keep is warned (``export_notes``)."""
    from peft import get_peft_model

    config = peft_config_of(model)
    base = copy.deepcopy(model.backbone.full if model.backbone.family.name == "decoder" else model.backbone.model)
    base.name_or_path = base.config._name_or_path = config.base_model_name_or_path  # what PEFT records, its card says
    wrapped = get_peft_model(base, config)  # a copy: PEFT wraps the model it is given
    with torch.no_grad():
        wrapped.prompt_encoder["default"].embedding.weight.copy_(model.prompt.embedding.weight)
    wrapped.save_pretrained(str(folder), save_embedding_layers=False)  # the prompt only: no vocabulary lookup
    for note in export_notes(model):
        warnings.warn(note, stacklevel=2)
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
        model = PromptClassifier.from_pretrained(args.checkpoint, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said below, once each
            folder = export_peft(model, args.out)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"PEFT adapter written to {folder}; PeftModel.from_pretrained(base_model, {str(folder)!r}) loads it")
    for note in export_notes(model):
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
