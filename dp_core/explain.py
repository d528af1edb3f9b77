"""What a prompt did with each instance of a batch, ready to draw (the app's Compare view reads this).

Works for every method: fixed ones report split 0 and every slot active; Dynamic Prompting reports its
per-instance split, length, pool weights and the probability of every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import Batch
from .model import PromptClassifier

# Kinds of place in ``InstanceDecision.layout``.
INPUT, BEFORE, AFTER, INACTIVE = "input", "prompt-before", "prompt-after", "inactive"


@dataclass
class InstanceDecision:
    item: int  # the item in the batch (COPA has two rows, one per choice, per item)
    tokens_before: int  # active prompt tokens before the input
    tokens_after: int  # active prompt tokens after the input text (the split position p counts all slots)
    split_position: int
    active_length: int
    num_slots: int
    pool_weights: list[float]
    position_probs: list[float] | None  # probability of p = 0..L (DP with the position factor)
    length_probs: list[float] | None  # probability of l = 1..L (DP with the length factor)
    class_probs: list[float]  # of the row's item
    layout: list[tuple[str, str]]  # (text, kind) in sequence order; inactive slots stay on their side
    deep: bool  # deep (key/value) prompts: slots have no place of their own, only the input's positions move


def token_layout(tokens: list[str], split_position: int, active: list[bool]) -> list[tuple[str, str]]:
    """``[CLS] <slots p..L-1> text <slots 0..p-1> [SEP]`` with every slot shown, inactive ones marked."""
    def slot(j: int, kind: str) -> tuple[str, str]:
        return (f"P{j + 1}", kind if active[j] else INACTIVE)

    before = [slot(j, BEFORE) for j in range(split_position, len(active))]
    after = [slot(j, AFTER) for j in range(split_position)]
    words = [(token, INPUT) for token in tokens]
    return words[:1] + before + words[1:-1] + after + words[-1:]


@torch.no_grad()
def explain(model: PromptClassifier, batch: Batch, features: torch.Tensor | None = None) -> list[InstanceDecision]:
    was_training = model.training
    model.eval()
    encoded = model.encode(batch, features)
    model.train(was_training)
    plan, decisions = encoded.plan, encoded.plan.decisions or {}
    class_probs = encoded.logits.float().softmax(-1).cpu()
    rows_per_item = batch.input_ids.shape[0] // batch.num_items
    tokenizer = model.backbone.tokenizer
    results = []
    for row in range(batch.input_ids.shape[0]):
        real = int(batch.attention_mask[row].sum())
        tokens = tokenizer.convert_ids_to_tokens(batch.input_ids[row, :real].tolist())
        split = int(plan.split_position[row])
        active = plan.active[row].tolist()
        probs = {name: value[row].tolist() for name, value in decisions.items()}
        results.append(InstanceDecision(
            item=row // rows_per_item,
            tokens_before=sum(active[split:]),
            tokens_after=sum(active[:split]),
            split_position=split,
            active_length=sum(active),
            num_slots=len(active),
            pool_weights=probs.get("pool_weights", [1.0]),
            position_probs=probs.get("position_probs"),
            length_probs=probs.get("length_probs"),
            class_probs=class_probs[row // rows_per_item].tolist(),
            layout=token_layout(tokens, split, active),
            deep=plan.input_prompts is None and plan.deep_prompts is not None,
        ))
    return results
