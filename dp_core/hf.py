"""A prompt method as a transformers-style classifier, for the loops people already use (Trainer, Accelerate).

    model = PromptForSequenceClassification("sentence-transformers/all-MiniLM-L6-v2", DynamicPromptConfig(),
                                            label_names=("negative", "positive"))
    dataset = dataset.map(model.tokenize, batched=True)      # its tokenisation: the layout's special tokens
    Trainer(model, args, train_dataset=dataset, data_collator=DataCollatorWithPadding(model.tokenizer),
            callbacks=[RunLength(model)]).train()

``forward(input_ids, attention_mask, labels=None)`` returns what transformers' classifiers return (loss, logits).
While training, the loss carries DP's own terms (score function, entropy bonus). DP's temperature, warm-up and
entropy schedules count against the run's planned length: ``RunLength`` tells it Trainer's ``max_steps`` when
training begins; in a plain loop call ``model.schedule_run(steps)`` first (without it they stay at their start).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput

from .backbone import Backbone, load_backbone
from .data import Batch, encode_examples
from .heads import HeadConfig
from .labelled import text_task
from .model import PromptClassifier
from .prompts import MethodConfig
from .tasks import Example


class PromptForSequenceClassification(nn.Module):
    """A frozen backbone, a prompt method and a head. Only the prompt and the head are parameters of this module
    (the backbone is shared and frozen), so a loop's optimizer and ``save_pretrained`` see those alone."""

    def __init__(self, backbone: str | Backbone, method: MethodConfig, label_names: tuple[str, ...] = ("0", "1"),
                 head: HeadConfig | None = None, max_length: int = 128, device: str = "auto",
                 classifier: PromptClassifier | None = None):
        super().__init__()
        if classifier is None:
            backbone = load_backbone(backbone, device=device) if isinstance(backbone, str) else backbone
            task = text_task("classification", ("text", "text_pair"), tuple(label_names))
            classifier = PromptClassifier(backbone, task, method, head, max_length)
        self.classifier = classifier

    @property
    def tokenizer(self):
        return self.classifier.backbone.tokenizer

    def tokenize(self, rows: dict) -> dict:
        """``datasets.map(batched=True)``: "text" (and "text_pair") to input ids as the layout reads them (a
        decoder's answer template, truncation that leaves room for the prompt)."""
        pairs = rows.get("text_pair") or [None] * len(rows["text"])
        examples = [Example(((text, pair),), 0, str(index)) for index, (text, pair) in
                    enumerate(zip(rows["text"], pairs))]
        split = encode_examples(self.tokenizer, self.classifier.task, examples, self.classifier.max_length,
                                self.classifier.answer_ids)
        return {"input_ids": split.input_ids, "token_type_ids": split.token_type_ids}

    def schedule_run(self, total_steps: int) -> None:
        """DP's schedules (temperature, warm-up, entropy bonus) follow a run of this many forward passes."""
        self.classifier.prompt.schedule_run(total_steps)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        if bool((attention_mask[:, 0] == 0).any()):
            raise ValueError("inputs must be padded on the right (tokenizer.padding_side = 'right')")
        rows = torch.arange(len(input_ids), device=input_ids.device)
        batch = Batch(input_ids, attention_mask, torch.zeros_like(input_ids) if token_type_ids is None
                      else token_type_ids, labels if labels is not None else torch.zeros_like(rows), rows, rows)
        if self.training and labels is not None:
            loss, logits = self.classifier.training_outputs(batch)
            return SequenceClassifierOutput(loss=loss, logits=logits)
        logits = self.classifier(batch)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def save_pretrained(self, directory: str | Path, **_) -> Path:
        """The prompt and the head (safetensors) and what rebuilds them (JSON); never the backbone."""
        return self.classifier.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, source: str | Path, backbone: Backbone | None = None,
                        device: str = "auto") -> PromptForSequenceClassification:
        """From a folder or a Hub repo made by ``save_pretrained`` or ``push_to_hub``."""
        return cls(None, None, classifier=PromptClassifier.from_pretrained(source, backbone, device))

    def push_to_hub(self, repo_id: str, private: bool = False, token: str | None = None) -> str:
        return self.classifier.push_to_hub(repo_id, private=private, token=token)


class RunLength(TrainerCallback):
    """Tells DP's schedules how long a Trainer run is, when it begins (they count forward passes)."""

    def __init__(self, model: PromptForSequenceClassification):
        self.model = model

    def on_train_begin(self, args, state, control, **kwargs):
        self.model.schedule_run(state.max_steps * args.gradient_accumulation_steps)
