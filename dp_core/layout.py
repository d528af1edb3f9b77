"""Where prompt tokens sit in the sequence: the seam every prompt method goes through.

A prompt has ``L`` slots. For each instance, a prompt module decides a *split position* ``p`` (slots
``0..p-1`` go after the input, slots ``p..L-1`` before it, as in the Dynamic Prompting reference) and which
slots are *active* (an inactive slot takes no place and is never attended). Fixed methods use ``p = 0`` and
all slots active.

- Input-level prompts (prompt tuning, P-tuning v1) are read like words:
  ``[CLS] <before slots> input text <after slots> [SEP] <padding>``. They take real places, so the
  position ids of every token follow from the layout, and they flow through every layer.
- Deep prompts (P-tuning v2) are extra keys/values in every layer and have no place in the sequence. In a
  bidirectional encoder with absolute positions, moving them changes only one thing: the input's position
  ids start after the active "before" slots (the original P-tuning v2 and PEFT start them at the prefix
  length). "After" slots are attended exactly like "before" ones.

The layout is built with one stable sort per batch: no Python loop over instances or split positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

INPUT_TOKEN = -1  # value of ``Layout.slot`` at places holding input tokens
EMPTY = -2  # padding or an inactive prompt slot


@dataclass
class Layout:
    inputs_embeds: torch.Tensor  # (B, T, H)
    attention_mask: torch.Tensor  # (B, T), 1 where attended
    position_ids: torch.Tensor  # (B, T)
    token_type_ids: torch.Tensor  # (B, T)
    slot: torch.Tensor  # (B, T): prompt slot at each place, INPUT_TOKEN or EMPTY
    deep_mask: torch.Tensor | None  # (B, L): which deep key/value slots are attended


def assemble(
    token_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor,
    split_position: torch.Tensor,
    active: torch.Tensor,
    prompt_embeds: torch.Tensor | None = None,
    deep: bool = False,
    position_base: int = 0,
    max_positions: int | None = None,
) -> Layout:
    """Lay out one batch. Inputs must be right-padded and end in a closing special token ([SEP] / </s>).

    ``split_position`` (B,) holds p, ``active`` (B, L) the active slots; ``prompt_embeds`` (B, L, H) are
    input-level prompt tokens (None when the prompt is deep-only).
    """
    batch, length = attention_mask.shape
    num_slots = active.shape[1]
    slot_index = torch.arange(num_slots, device=active.device)
    goes_after = slot_index[None, :] < split_position[:, None]  # (B, L)
    deep_mask = active.long() if deep else None

    if prompt_embeds is None:
        # Deep-only: the sequence is the input itself; active "before" slots shift its positions.
        offset = (active & ~goes_after).sum(1) if deep else torch.zeros_like(split_position)
        positions = position_base + offset[:, None] + torch.arange(length, device=offset.device)[None, :]
        if max_positions is not None:
            positions = positions.clamp(max=position_base + max_positions - 1)
        slot = torch.where(attention_mask.bool(), INPUT_TOKEN, EMPTY)
        return Layout(token_embeds, attention_mask, positions, token_type_ids, slot, deep_mask)

    real_length = attention_mask.sum(1, keepdim=True)  # (B, 1)
    token_index = torch.arange(length, device=attention_mask.device)[None, :]
    # Sort key = group * stride + rank in group; groups: [CLS], before, text, after, closing token, empty.
    stride = length + num_slots + 1
    token_group = torch.where(token_index == 0, 0, torch.where(token_index < real_length - 1, 2, 4))
    token_group = torch.where(token_index < real_length, token_group, 5)
    slot_group = torch.where(goes_after, 3, 1).masked_fill(~active, 5)
    group = torch.cat([token_group, slot_group], dim=1)
    rank = torch.cat([token_index.expand(batch, -1), length + slot_index[None, :].expand(batch, -1)], dim=1)
    order = torch.argsort(group * stride + rank, dim=1, stable=True)  # (B, S + L)

    kept = torch.gather(group, 1, order) < 5
    width = int(kept.sum(1).max())
    order, kept = order[:, :width], kept[:, :width]
    source = torch.cat([token_embeds, prompt_embeds.to(token_embeds.dtype)], dim=1)
    embeds = torch.gather(source, 1, order[:, :, None].expand(-1, -1, source.shape[-1]))
    closing_type = torch.gather(token_type_ids, 1, real_length - 1)  # after-slots join the last segment
    slot_types = torch.where(goes_after, closing_type, torch.zeros_like(closing_type))
    types = torch.gather(torch.cat([token_type_ids, slot_types], dim=1), 1, order)
    slot_of_source = torch.cat([torch.full_like(token_type_ids, INPUT_TOKEN), slot_index.expand(batch, -1)], dim=1)
    slot = torch.gather(slot_of_source, 1, order).masked_fill(~kept, EMPTY)
    positions = position_base + torch.arange(width, device=order.device)[None, :].expand(batch, -1)
    if max_positions is not None:
        positions = positions.clamp(max=position_base + max_positions - 1)
    return Layout(embeds, kept.long(), positions, types, slot, deep_mask)
