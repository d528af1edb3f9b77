"""Where prompt tokens sit in the sequence: the seam every prompt method goes through.

A prompt has ``L`` slots. For each instance, a prompt module decides a *split position* ``p`` (slots
``0..p-1`` go after the input, slots ``p..L-1`` before it, as in the Dynamic Prompting reference) and which
slots are *active* (an inactive slot takes no place and is never attended). Fixed methods use ``p = 0`` and
all slots active.

- Input-level prompts (prompt tuning, P-tuning v1) are read like words:
  ``[CLS] <before slots> input text <after slots> [SEP] <padding>`` (a decoder's or T5's own special tokens, if
  any, stay at the ends the same way). They take real places, so the
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
class PromptPlan:
    """What a prompt module decides for a batch: everything the layout needs to place the prompt."""

    split_position: torch.Tensor  # (B,) slots 0..p-1 go after the input, the rest before
    active: torch.Tensor  # (B, L) bool
    input_prompts: torch.Tensor | None = None  # (B, L, H) read as tokens
    deep_prompts: list[tuple[torch.Tensor, torch.Tensor] | None] | None = None  # per layer (B, heads, L, d)
    position_weights: torch.Tensor | None = None  # (B, L + 1) straight-through one-hot of the split (DP)
    length_weights: torch.Tensor | None = None  # (B, L) straight-through one-hot of the length (DP)
    decisions: dict[str, torch.Tensor] | None = None  # DP: probabilities of every candidate, pool weights


@dataclass(eq=False)
class Frame:
    """What the backbone fixes about every row, whatever the prompt."""

    special_tokens: tuple[int, int] = (1, 1)  # opening and closing special tokens: [CLS] … [SEP] (1, 1), T5 (0, 1)
    position_base: int = 0  # the first position id (RoBERTa: 2)
    max_positions: int | None = None  # position ids past the table are clamped
    position_table: torch.Tensor | None = None  # position embeddings: deep prompts' place gradient goes through them


@dataclass
class Layout:
    inputs_embeds: torch.Tensor  # (B, T, H)
    attention_mask: torch.Tensor  # (B, T), 1 where attended
    position_ids: torch.Tensor  # (B, T)
    token_type_ids: torch.Tensor  # (B, T)
    slot: torch.Tensor  # (B, T): prompt slot at each place, INPUT_TOKEN or EMPTY
    deep_mask: torch.Tensor | None  # (B, L): which deep key/value slots are attended


def assemble(token_embeds: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
             plan: PromptPlan, frame: Frame = Frame()) -> Layout:
    """Lay out one batch as ``plan`` says. Inputs must be right-padded; the frame's special tokens stay at the ends
    and the prompt goes between.

    The plan's ``input_prompts`` are read as tokens (None: deep-only prompts, which take no place). Its
    ``position_weights`` and ``length_weights`` are straight-through one-hot choices (DP): the layout is the hard
    choice, and they receive the gradient that mixing every candidate layout by them would give
    (:class:`ChoiceGradient`). Deep-only prompts take that gradient through ``frame.position_table``.
    """
    if plan.input_prompts is None:
        return deep_only_layout(token_embeds, attention_mask, token_type_ids, plan, frame)
    batch, length = attention_mask.shape
    split_position, active = plan.split_position, plan.active
    slot_index = torch.arange(active.shape[1], device=active.device)
    real_length = attention_mask.sum(1)
    order, kept = place_order(real_length, length, split_position, active, frame.special_tokens)
    width = int(kept.sum(1).max())
    order, kept = order[:, :width], kept[:, :width]
    source = torch.cat([token_embeds, plan.input_prompts.to(token_embeds.dtype)], dim=1)
    embeds = take_rows(source, order)
    if plan.position_weights is not None or plan.length_weights is not None:
        embeds = with_choice_gradients(embeds, source, real_length, split_position, active, plan.position_weights,
                                       plan.length_weights, frame.special_tokens)
    goes_after = slot_index[None, :] < split_position[:, None]  # (B, L)
    closing_type = torch.gather(token_type_ids, 1, real_length[:, None] - 1)  # after-slots join the last segment
    slot_types = torch.where(goes_after, closing_type, torch.zeros_like(closing_type))
    types = torch.gather(torch.cat([token_type_ids, slot_types], dim=1), 1, order)
    slot_of_source = torch.cat([torch.full_like(token_type_ids, INPUT_TOKEN), slot_index.expand(batch, -1)], dim=1)
    slot = torch.gather(slot_of_source, 1, order).masked_fill(~kept, EMPTY)
    positions = clamped(frame, torch.arange(width, device=order.device)[None, :].expand(batch, -1))
    deep_mask = active.long() if plan.deep_prompts is not None else None
    return Layout(embeds, kept.long(), positions, types, slot, deep_mask)


def clamped(frame: Frame, positions: torch.Tensor) -> torch.Tensor:
    """Position ids from the frame's base, clamped to its table (long inputs keep their last position)."""
    positions = frame.position_base + positions
    if frame.max_positions is None:
        return positions
    return positions.clamp(max=frame.position_base + frame.max_positions - 1)


def deep_only_layout(token_embeds: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                     plan: PromptPlan, frame: Frame) -> Layout:
    """The sequence is the input itself; with deep prompts, their active "before" slots shift its positions."""
    batch, length = attention_mask.shape
    split_position, active = plan.split_position, plan.active
    deep = plan.deep_prompts is not None
    slot_index = torch.arange(active.shape[1], device=active.device)
    goes_after = slot_index[None, :] < split_position[:, None]
    offset = (active & ~goes_after).sum(1) if deep else torch.zeros_like(split_position)
    positions = clamped(frame, offset[:, None] + torch.arange(length, device=offset.device)[None, :])
    slot = torch.where(attention_mask.bool(), INPUT_TOKEN, EMPTY)
    if deep and plan.position_weights is not None and frame.position_table is not None:
        candidates = torch.arange(active.shape[1] + 1, device=active.device)
        before = (active[:, None, :] & (slot_index[None, None, :] >= candidates[None, :, None])).sum(-1)
        index = (frame.position_base + before[:, :, None] + torch.arange(length, device=before.device)).clamp(
            max=frame.position_table.shape[0] - 1)  # (B, L + 1, S)
        source = frame.position_table.detach()[None].expand(batch, -1, -1)
        token_embeds = ChoiceGradient.apply(token_embeds, plan.position_weights, source, index, None)
    return Layout(token_embeds, attention_mask, positions, token_type_ids, slot, active.long() if deep else None)


def take_rows(source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``source[b, index[b, t]]`` for every row b: one ``index_select`` over the flattened batch, several times
    faster on CPU than ``gather`` with an index expanded over the hidden size, both ways."""
    batch, places = index.shape
    flat_index = index + torch.arange(batch, device=index.device)[:, None] * source.shape[1]
    return source.flatten(0, 1).index_select(0, flat_index.flatten()).view(batch, places, source.shape[-1])


def place_order(real_length: torch.Tensor, length: int, split_position: torch.Tensor,
                active: torch.Tensor, special_tokens: tuple[int, int] = (1, 1)) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row, which source element (input token i < length, or prompt slot length + j) goes to each
    place, and whether that place is kept (attended). Rows are independent, so candidate layouts can be
    stacked as extra rows. One stable sort: key = group * stride + rank within the group, with groups
    opening special tokens, before slots, input text, after slots, closing special tokens, then everything
    dropped (padding, inactive).
    """
    lead, tail = special_tokens
    rows, num_slots = active.shape
    device = active.device
    token_index = torch.arange(length, device=device)[None, :]
    slot_index = torch.arange(num_slots, device=device)[None, :]
    real = real_length[:, None]
    token_group = torch.where(token_index < lead, 0, torch.where(token_index < real - tail, 2, 4))
    token_group = torch.where(token_index < real, token_group, 5)
    slot_group = torch.where(slot_index < split_position[:, None], 3, 1).masked_fill(~active, 5)
    group = torch.cat([token_group, slot_group], dim=1)
    rank = torch.cat([token_index, length + slot_index], dim=1).expand(rows, -1)
    order = torch.argsort(group * (length + num_slots + 1) + rank, dim=1, stable=True)
    return order, torch.gather(group, 1, order) < 5


class ChoiceGradient(torch.autograd.Function):
    """The identity on the sequence, so the logits are exactly those of the hard choice. Backward: the
    sequence's gradient passes through, and each candidate's one-hot weight receives the straight-through
    gradient dL/dw[b, j] = sum_t <dL/dx[b, t], source[b, index[b, j, t]]> over the places t it fills -- what
    the reference's sum of all candidate sequences weighted by the one-hot gives -- from one (B, T, N) score
    matrix instead of building every candidate. ``filled`` (B, J, T): places a candidate leaves empty (None:
    it fills all)."""

    @staticmethod
    def forward(ctx, sequence: torch.Tensor, weights: torch.Tensor, source: torch.Tensor, index: torch.Tensor,
                filled: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(source, index, filled)
        return sequence.view_as(sequence)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        source, index, filled = ctx.saved_tensors
        scores = torch.bmm(grad.to(source.dtype), source.transpose(1, 2))  # (B, T, N)
        batch, candidates, places = index.shape
        picked = torch.gather(scores[:, None].expand(batch, candidates, places, -1), 3, index[..., None]).squeeze(-1)
        if filled is not None:
            picked = picked * filled
        return grad, picked.sum(-1), None, None, None


def with_choice_gradients(embeds: torch.Tensor, source: torch.Tensor, real_length: torch.Tensor,
                          split_position: torch.Tensor, active: torch.Tensor, position_weights: torch.Tensor | None,
                          length_weights: torch.Tensor | None, special_tokens: tuple[int, int] = (1, 1)
                          ) -> torch.Tensor:
    """The input-level sequence, unchanged, carrying the straight-through gradients of the position and
    length choices: every split 0..L with the chosen active slots, every length 1..L with the chosen split."""
    batch, num_slots = active.shape
    length, width = source.shape[1] - num_slots, embeds.shape[1]
    slot_index = torch.arange(num_slots, device=active.device)
    splits, actives = [], []
    if position_weights is not None:
        splits.append(torch.arange(num_slots + 1, device=active.device).expand(batch, -1))
        actives.append(active[:, None, :].expand(-1, num_slots + 1, -1))
    if length_weights is not None:
        splits.append(split_position[:, None].expand(-1, num_slots))
        actives.append((slot_index[None, :] < slot_index[:, None] + 1)[None].expand(batch, -1, -1))
    weights = torch.cat([w for w in (position_weights, length_weights) if w is not None], dim=1)
    split_rows, active_rows = torch.cat(splits, dim=1), torch.cat(actives, dim=1)
    candidates = split_rows.shape[1]
    order, kept = place_order(real_length.repeat_interleave(candidates), length, split_rows.reshape(-1),
                              active_rows.reshape(-1, num_slots), special_tokens)
    index, filled = order.view(batch, candidates, -1)[:, :, :width], kept.view(batch, candidates, -1)[:, :, :width]
    return ChoiceGradient.apply(embeds, weights, source.detach(), index, filled)
