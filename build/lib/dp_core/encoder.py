"""Running a backbone's body on a layout: deep prompts enter every layer's attention as its key/value cache."""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from transformers import DynamicCache
from transformers.masking_utils import create_bidirectional_mask

from .backbone import family_of
from .layout import Layout


def position_table(model: nn.Module) -> torch.Tensor | None:
    """The absolute position embeddings (BERT-like, GPT-2), or None where positions are rotary or relative."""
    embeddings = getattr(getattr(model, "embeddings", None), "position_embeddings", None) or getattr(model, "wpe", None)
    return embeddings.weight if embeddings is not None else None


@functools.cache
def cache_keyword(module_type: type) -> str:
    """The name a module's forward gives its key/value cache: ``cache`` from transformers 5.24 on (the old
    ``past_key_values`` still works there, with a deprecation warning, until 5.40)."""
    return "cache" if "cache" in inspect.signature(module_type.forward).parameters else "past_key_values"


def body_inputs(model: nn.Module, position_ids: torch.Tensor | None, token_type_ids: torch.Tensor | None) -> dict:
    """What a family's body reads besides tokens and mask: encoders take positions and token types; decoders
    positions only (GPT-2 would embed token types as words); T5 neither (its positions are relative)."""
    family = family_of(model.config.model_type).name
    if family == "encoder-decoder":
        return {}
    if family == "decoder":
        return {"position_ids": position_ids, "use_cache": False}
    return {"position_ids": position_ids, "token_type_ids": token_type_ids}


def run_encoder(model: nn.Module, layout: Layout, deep_prompts) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Last hidden state and pooler output. Deep prompts enter every layer's attention as a key/value cache."""
    inputs = dict(inputs_embeds=layout.inputs_embeds,
                  **body_inputs(model, layout.position_ids, layout.token_type_ids))
    if deep_prompts is None:
        out = model(attention_mask=layout.attention_mask, **inputs)
        return out.last_hidden_state, getattr(out, "pooler_output", None)
    if any(pair is None for pair in deep_prompts):
        return run_layers(model, layout, deep_prompts)
    out = model(attention_mask=torch.cat([layout.deep_mask, layout.attention_mask], dim=1),
                **{cache_keyword(type(model)): DynamicCache(ddp_cache_data=deep_prompts)}, **inputs)
    return out.last_hidden_state, getattr(out, "pooler_output", None)


def run_layers(model: nn.Module, layout: Layout, deep_prompts) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layer by layer, for prompts in some layers only: each layer gets the mask that matches its keys."""
    hidden = model.embeddings(inputs_embeds=layout.inputs_embeds, position_ids=layout.position_ids,
                              token_type_ids=layout.token_type_ids)
    cache = DynamicCache(ddp_cache_data=[pair if pair is not None else (None, None) for pair in deep_prompts])
    full_mask = torch.cat([layout.deep_mask, layout.attention_mask], dim=1)
    with_prompt = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=full_mask)
    without = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=layout.attention_mask)
    for layer, pair in zip(model.encoder.layer, deep_prompts):
        hidden = layer(hidden, without) if pair is None else layer(hidden, with_prompt,
                                                                   **{cache_keyword(type(layer)): cache})
    pooler = getattr(model, "pooler", None)
    return hidden, pooler(hidden) if pooler is not None else None
