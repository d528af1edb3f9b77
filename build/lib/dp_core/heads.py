"""What reads the encoder's output: a trained linear head on a pooled state, or a verbalizer (the backbone's own LM
head scoring each label's word)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbone import Backbone
from .options import option
from .tasks import Task

POOLINGS = ("mean", "cls", "pooler", "last")
HEADS = ("linear", "verbalizer")
# Closes every row where the model answers: a decoder's next token after it (both heads read that place, so they
# compare like with like); a masked LM's [MASK] (verbalizer only). T5's decoder asks by itself.
ANSWER_TEMPLATE = "\nAnswer:"
# What the linear head reads when not told: [CLS] in encoders (measured best of mean / cls / pooler on the default
# backbone, docs/benchmarks.md); the last real place in a decoder, the only one that has seen the whole sequence;
# the mean of T5's encoder states (T5 has no summary token).
DEFAULT_POOLING = {"encoder": "cls", "decoder": "last", "encoder-decoder": "mean"}


@dataclass
class HeadConfig:
    pooling: str | None = option(None, "what the linear head reads (default: [CLS] in encoders, the last token in "
                                 "decoders, the mean in T5)", choices=POOLINGS)
    dropout: float = option(0.1, "dropout before the linear head", flag="--head-dropout")
    backbone_dropout: bool = option(True, "no dropout inside the frozen encoder while training (both references "
                                    "keep it)", flag="--no-backbone-dropout")
    kind: str = option("linear", "linear: a trained Linear; verbalizer: the backbone's LM head scores each label's "
                       "word, nothing trained but the prompt", flag="--head", choices=HEADS)

    def __post_init__(self):
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.kind!r}")


class Verbalizer(nn.Module):
    """Scores each label's word with the backbone's own LM head at the answer place: a decoder's next-token logits
    after the answer template, T5's first decoder token, a masked LM's [MASK]. It trains nothing: only the prompt
    learns to make the right word likely."""

    def __init__(self, backbone: Backbone, task: Task):
        super().__init__()
        self.backbone = backbone  # shared and frozen; not a registered submodule
        self.family = backbone.family.name
        if self.family == "encoder":
            backbone.masked_lm_head  # refuses, in one line, a checkpoint without one
        words = [word_token(backbone.tokenizer, word) for word in task.label_words]
        if len(set(words)) < len(words):
            raise ValueError(f"label words {task.label_words} share a first token in {backbone.name!r}")
        self.register_buffer("word_ids", torch.tensor(words), persistent=False)

    def vocabulary_logits(self, hidden: torch.Tensor, mask: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
        """(rows, vocabulary) what the LM predicts at the answer place."""
        if self.family == "encoder-decoder":
            full = self.backbone.full
            start = torch.full((len(hidden), 1), full.config.decoder_start_token_id, device=hidden.device)
            return full(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=start).logits[:, 0]
        at_place = hidden[torch.arange(len(hidden), device=hidden.device), place]
        if self.family == "decoder":
            return self.backbone.full.get_output_embeddings()(at_place)
        return self.backbone.masked_lm_head(at_place)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
        return self.vocabulary_logits(hidden, mask, place)[:, self.word_ids].float()


def answer_template(backbone: Backbone, head: str) -> str:
    """What closes every row: the answer template for a decoder (both heads), and for a masked LM's verbalizer the
    template with its [MASK]; nothing otherwise."""
    family = backbone.family.name
    if family == "decoder":
        return ANSWER_TEMPLATE
    if family == "encoder" and head == "verbalizer":
        return f"{ANSWER_TEMPLATE} {backbone.tokenizer.mask_token}"
    return ""


def word_token(tokenizer, word: str) -> int:
    """The first token of `` word`` as it follows other text (BPE vocabularies keep the leading space)."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    spoken = [token for token in ids if tokenizer.decode([token]).strip()]
    return spoken[0]
