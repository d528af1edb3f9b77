"""A prompt classifier as a transformers model: one ``PreTrainedModel`` that the Auto classes, ``pipeline``,
``Trainer`` checkpoints and ``push_to_hub`` accept, with a ``predict`` for plain texts.

    from dp_core import DynamicPromptConfig, PromptConfig, PromptForSequenceClassification
    model = PromptForSequenceClassification(PromptConfig(method=DynamicPromptConfig(), label_names=("bad", "good")))
    dataset = dataset.map(model.tokenize, batched=True)      # its tokenisation: the layout's special tokens
    Trainer(model, args, train_dataset=dataset, data_collator=DataCollatorWithPadding(model.tokenizer),
            callbacks=[RunLength(model)]).train()
    model.save_pretrained("my-dp")                            # the prompt, the head, DP's network; the backbone named
    AutoModelForSequenceClassification.from_pretrained("my-dp")  # once dp_core is imported
    pipeline("text-classification", model="my-dp")

What is saved is small, as with PEFT: the trained weights, the configuration (the backbone's name, the method, the
head, the labels) and the tokenizer; the frozen backbone is loaded by name. ``forward(input_ids, attention_mask,
labels=None)`` returns what transformers' classifiers return (loss, logits). While training, the loss carries DP's own
terms (score function, entropy bonus); DP's schedules count against the run's length: ``RunLength`` tells them
Trainer's ``max_steps``; in a plain loop call ``model.schedule_run(steps)`` first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import (AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel,
                          TrainerCallback)
from transformers.modeling_outputs import SequenceClassifierOutput

from .backbone import DEFAULT_BACKBONE, Backbone, load_backbone
from .data import Batch, encode_examples
from .explain import explain_examples
from .heads import HeadConfig
from .labelled import task_from_record
from .methods import method_config_from_dict
from .model import PromptClassifier
from .prompts import MethodConfig, PTuningV2Config
from .tasks import TASKS, Example, Task

MODEL_TYPE = "dp_prompt"
TEXT_COLUMNS = ("text", "text_pair")  # what a task made here reads (pipeline's and datasets' names)


class PromptConfig(PretrainedConfig):
    """What rebuilds a prompt classifier around its frozen backbone.

    Args:
        backbone: the frozen model's Hub id, local folder or short name (``dp_core.backbone``); loaded by name.
        method: the prompt method (a ``MethodConfig``, or its ``to_dict()``); P-tuning v2 when not given.
        head: the head (a ``HeadConfig``, or its fields).
        label_names: the classes in label order (``id2label`` is made from them).
        task: a SuperGLUE task's name, or a name for your own data.
        text_columns: your own data's text columns (one, or two read as a pair).
        max_input_tokens: input tokens read per row, prompt places aside (transformers keeps ``max_length`` for
            generation).
        metadata: what the run that trained it recorded (scores, DP's choices), kept with it.
    """

    model_type = MODEL_TYPE

    def __init__(self, backbone: str = DEFAULT_BACKBONE, method: MethodConfig | dict | None = None,
                 head: HeadConfig | dict | None = None, label_names: tuple[str, ...] | None = None,
                 task: str = "classification", text_columns: tuple[str, ...] = TEXT_COLUMNS,
                 max_input_tokens: int = 128,
                 metadata: dict | None = None, **kwargs):
        method = method if method is not None else PTuningV2Config()
        self.backbone = backbone
        self.method = method.to_dict() if isinstance(method, MethodConfig) else dict(method)
        self.head = asdict(head) if isinstance(head, HeadConfig) else dict(head or asdict(HeadConfig()))
        self.task = task
        self.text_columns = list(text_columns)
        self.max_input_tokens = max_input_tokens
        self.metadata = metadata or {}
        if label_names is None and task in TASKS and not kwargs.get("id2label"):
            label_names = TASKS[task].label_names
        if label_names is not None:
            kwargs["id2label"] = dict(enumerate(label_names))
            kwargs["label2id"] = {name: index for index, name in enumerate(label_names)}
        super().__init__(**kwargs)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.id2label[index] for index in range(len(self.id2label)))

    def build_task(self) -> Task:
        """A SuperGLUE task by its name, else a task of the configured text columns and labels."""
        if self.task in TASKS and tuple(TASKS[self.task].label_names) == self.label_names:
            return TASKS[self.task]
        return task_from_record({"name": self.task, "text_columns": self.text_columns,
                                 "label_names": list(self.label_names)})

    @classmethod
    def of(cls, classifier: PromptClassifier, metadata: dict | None = None) -> PromptConfig:
        """The configuration of a classifier built in code (a training run's)."""
        task = classifier.task
        return cls(backbone=classifier.backbone.name, method=classifier.method, head=classifier.head_config,
                   label_names=task.label_names, task=task.name, text_columns=task.text_columns or TEXT_COLUMNS,
                   max_input_tokens=classifier.max_length, metadata=metadata)


@dataclass
class Prediction:
    """One input's answer: its label, every class's probability and, for Dynamic Prompting, where the prompt went
    (prompt tokens after and before the input, and how many were on)."""

    label: str
    probabilities: dict[str, float]
    tokens_after: int | None = None
    tokens_before: int | None = None
    active_length: int | None = None


class PromptForSequenceClassification(PreTrainedModel):
    """A frozen backbone, a prompt method and a head. Only the prompt and the head (and DP's network) are parameters
    of this module: the backbone is shared and frozen, moved with ``to()`` and never saved."""

    config_class = PromptConfig
    base_model_prefix = "classifier"
    main_input_name = "input_ids"

    def __init__(self, config: PromptConfig, shared_backbone: Backbone | None = None,
                 classifier: PromptClassifier | None = None):
        super().__init__(config)
        if classifier is None:
            backbone = shared_backbone or load_backbone(config.backbone)
            classifier = PromptClassifier(backbone, config.build_task(), method_config_from_dict(config.method),
                                          HeadConfig(**config.head), config.max_input_tokens)
        self.classifier = classifier
        self.post_init()

    @classmethod
    def get_init_context(cls, *args, **kwargs):
        """transformers builds a model on the meta device and then loads every weight; this one loads its frozen
        backbone while it is built, so it is built on a real device (its own weights are loaded after)."""
        return [context for context in super().get_init_context(*args, **kwargs)
                if not isinstance(context, torch.device)]

    def _init_weights(self, module) -> None:
        """The prompt methods initialise their own weights; the backbone is pretrained."""

    @classmethod
    def from_classifier(cls, classifier: PromptClassifier, metadata: dict | None = None
                        ) -> PromptForSequenceClassification:
        """A classifier built in code (a training run's) as this model, sharing its weights."""
        return cls(PromptConfig.of(classifier, metadata), classifier=classifier)

    @property
    def tokenizer(self):
        return self.classifier.backbone.tokenizer

    @property
    def metadata(self) -> dict:
        return self.config.metadata

    def to(self, *args, **kwargs):
        """Moves the frozen backbone too (it is not a submodule, so that it is never saved)."""
        moved = super().to(*args, **kwargs)
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:
            self.classifier.move_backbone(device)
        return moved

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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **_) -> SequenceClassifierOutput:
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if bool((attention_mask[:, 0] == 0).any()):
            raise ValueError("inputs must be padded on the right (tokenizer.padding_side = 'right')")
        input_ids, attention_mask, token_type_ids = self.classifier.fit_rows(input_ids, attention_mask,
                                                                             token_type_ids)
        rows = torch.arange(len(input_ids), device=input_ids.device)
        batch = Batch(input_ids, attention_mask, token_type_ids, labels if labels is not None else
                      torch.zeros_like(rows), rows, rows)
        if self.training and labels is not None:
            loss, logits = self.classifier.training_outputs(batch)
            return SequenceClassifierOutput(loss=loss, logits=logits)
        logits = self.classifier(batch)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def predict(self, texts: str | list[str], pairs: list[str | None] | None = None,
                batch_size: int = 64) -> list[Prediction]:
        """Labels for texts (and, for a task of pairs, their second texts): every class's probability and, for DP,
        where the prompt went."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = list(pairs) if pairs is not None else [None] * len(texts)
        if len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} second texts")
        examples = [Example(((text, pair),), 0, str(index)) for index, (text, pair) in enumerate(zip(texts, pairs))]
        decisions = explain_examples(self.classifier.eval(), examples, batch_size).decisions
        names = self.classifier.task.label_names
        chooses = bool(self.classifier.prompt.sizes)
        return [Prediction(names[max(range(len(names)), key=decision.class_probs.__getitem__)],
                           dict(zip(names, decision.class_probs)),
                           *((decision.tokens_after, decision.tokens_before, decision.active_length) if chooses
                             else ()))
                for decision in decisions]

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        """The trained weights only (``PromptClassifier.trainable_names``): what ``save_pretrained`` and Trainer's
        checkpoints keep."""
        full = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        kept = {f"{prefix}{self.base_model_prefix}.{name}" for name in self.classifier.trainable_names()}
        return type(full)((name, tensor) for name, tensor in full.items() if name in kept)

    def save_pretrained(self, save_directory: str | Path, *args, save_tokenizer: bool = True, **kwargs) -> None:
        """The configuration, the trained weights and (``save_tokenizer``) the tokenizer, which ``pipeline`` reads
        from the folder."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if save_tokenizer and kwargs.get("is_main_process", True):
            self.tokenizer.save_pretrained(save_directory)


class RunLength(TrainerCallback):
    """Tells DP's schedules how long a Trainer run is, when it begins (they count forward passes)."""

    def __init__(self, model: PromptForSequenceClassification):
        self.model = model

    def on_train_begin(self, args, state, control, **kwargs):
        self.model.schedule_run(state.max_steps * args.gradient_accumulation_steps)


AutoConfig.register(MODEL_TYPE, PromptConfig, exist_ok=True)
AutoModelForSequenceClassification.register(PromptConfig, PromptForSequenceClassification, exist_ok=True)
