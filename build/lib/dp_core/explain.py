"""What a prompt did with each instance of a batch, ready to draw (the app's Compare view reads this).

Works for every method: fixed ones report split 0 and every slot active; Dynamic Prompting reports its
per-instance split, length, pool weights and the probability of every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .data import Batch, iterate_batches
from .model import PromptClassifier
from .tasks import Example

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


def token_layout(tokens: list[str], split_position: int, active: list[bool],
                 special_tokens: tuple[int, int] = (1, 1)) -> list[tuple[str, str]]:
    """``[CLS] <slots p..L-1> text <slots 0..p-1> [SEP]`` with every slot shown, inactive ones marked; the tokens
    kept at the ends are the model's (``PromptClassifier.special_tokens``: a decoder's answer template closes)."""
    def slot(j: int, kind: str) -> tuple[str, str]:
        return (f"P{j + 1}", kind if active[j] else INACTIVE)

    lead, tail = special_tokens
    before = [slot(j, BEFORE) for j in range(split_position, len(active))]
    after = [slot(j, AFTER) for j in range(split_position)]
    words = [(token, INPUT) for token in tokens]
    end = len(words) - tail
    return words[:lead] + before + words[lead:end] + after + words[end:]


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
        ids = batch.input_ids[row, :real].tolist()
        # WordPiece pieces read as they are ("##ing"); byte-level and sentencepiece ones ("Ġthe", "▁the") decoded
        tokens = tokenizer.convert_ids_to_tokens(ids) if model.backbone.family.name == "encoder" \
            else [tokenizer.decode([token]) for token in ids]
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
            layout=token_layout(tokens, split, active, model.special_tokens),
            deep=plan.input_prompts is None and plan.deep_prompts is not None,
        ))
    return results


@torch.no_grad()
def counterfactuals(model: PromptClassifier, batch: Batch, factor: str, features: torch.Tensor | None = None,
                    max_rows: int = 512) -> torch.Tensor:
    """Class probabilities (items, candidates, labels) with DP's ``factor`` forced to each of its candidates
    (position p = 0..L, length l = 1..L, pool prompt 1..k) for every row, its other choices kept (a place drawn
    given the length, ``place_given_length``, is DP's own place for each forced length); evaluation mode.

    Candidates are stacked as extra rows of one batch (up to ``max_rows`` rows per forward pass), so there is no
    loop over instances; the result equals forcing one candidate at a time. COPA forces both rows of an item.
    Places past the batch's longest prompt are one layout (all its tokens after the input): computed once.
    """
    was_training = model.training
    model.eval()
    probabilities = model.candidate_probabilities(batch, factor, features, max_rows)
    model.train(was_training)
    return probabilities.cpu()


@dataclass
class Explanation:
    decisions: list[InstanceDecision]  # one per row, in item order (COPA: two rows, one per choice, per item)
    truncated: int  # items cut to fit the model's max_length

    by_item: dict[int, list[InstanceDecision]] = field(init=False, repr=False)

    def __post_init__(self):  # Explore asks for every item of a dev set: look them up, do not scan
        self.by_item = {}
        for decision in self.decisions:
            self.by_item.setdefault(decision.item, []).append(decision)

    def item(self, index: int) -> list[InstanceDecision]:
        return self.by_item.get(index, [])


@torch.no_grad()
def explain_examples(model: PromptClassifier, examples: list[Example], batch_size: int = 64) -> Explanation:
    """``explain`` for a list of examples (typed in, or a whole dev set), batched by length, in their order."""
    split = model.encode_examples(examples)
    decisions: list[InstanceDecision] = []
    for batch in iterate_batches(split, batch_size, model.backbone.tokenizer.pad_token_id, shuffle=False):
        items = batch.items.tolist()
        decisions += [replace(d, item=items[d.item]) for d in explain(model, batch.to(model.backbone.device))]
    decisions.sort(key=lambda decision: decision.item)  # stable: a COPA item's rows keep their order
    return Explanation(decisions, split.truncated)
