"""A frozen backbone steered by a prompt module, read by a head: the classifier, and its checkpoints.

``PromptClassifier.encode`` reads top to bottom: the prompt module plans the prompt for the batch, the
layout places it, the encoder runs (deep prompts as extra keys/values), the head reads the pooled output.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from .backbone import Backbone, load_backbone
from .data import Batch, EncodedSplit, encode_examples
from .encoder import body_inputs, position_table, run_encoder
from .heads import DEFAULT_POOLING, HeadConfig, Verbalizer, answer_template
from .labelled import task_from_record
from .layout import Frame, Layout, assemble
from .methods import method_config_from_dict
from .prompts import MethodConfig, PromptModule, PromptPlan
from .tasks import Example, Task, get_task

CONFIG_FILE = "config.json"  # transformers' (dp_core.hf.PromptConfig)
LEGACY_CONFIG_FILE = "dp_config.json"  # checkpoints saved before dp_core 0.2
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_PREFIX = "classifier."  # the classifier's weights inside PromptForSequenceClassification's


@dataclass
class Encoded:
    logits: torch.Tensor  # (items, labels)
    pooled: torch.Tensor  # (rows, H)
    layout: Layout
    plan: PromptPlan


def forced_losses(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The gold label's cross-entropy under each forced candidate: (items, candidates, labels) -> (items, candidates)."""
    gold = labels.to(probabilities.device)[:, None, None].expand(-1, probabilities.shape[1], 1)
    return -probabilities.clamp_min(1e-12).log().gather(2, gold).squeeze(-1)


def expected_choice_loss(choice_logits: dict[str, torch.Tensor], losses: dict[str, torch.Tensor],
                         rows_per_item: int) -> torch.Tensor:
    """Mean over rows of sum_c p(c | row) loss(item, c), summed over the factors in ``losses``: the expected loss
    whose gradient DP's exact estimator and the refit follow (COPA: each choice's row has its own distribution; a
    forced candidate applies to every row of its item)."""
    return sum((choice_logits[factor].float().softmax(-1) * loss.repeat_interleave(rows_per_item, 0)).sum(-1).mean()
               for factor, loss in losses.items())


class PromptClassifier(nn.Module):
    def __init__(self, backbone: Backbone, task: Task | str, method: MethodConfig,
                 head: HeadConfig | None = None, max_length: int = 128):
        super().__init__()
        self.backbone = backbone  # shared and frozen; not a registered submodule
        self.task = get_task(task) if isinstance(task, str) else task
        self.method = method
        head = head or HeadConfig()
        self.head_config = head if head.pooling else replace(head, pooling=DEFAULT_POOLING[backbone.family.name])
        if self.head_config.pooling == "pooler" and getattr(backbone.model, "pooler", None) is None:
            raise ValueError(f"backbone {backbone.name!r} has no pooler; use pooling 'mean' or 'cls'")
        self.prompt: PromptModule = method.build(backbone)
        # Fine-tuning trains its own copy, so the shared frozen backbone stays untouched.
        self.tuned_encoder = copy.deepcopy(backbone.model).requires_grad_(True) if method.trains_backbone else None
        num_outputs = 1 if self.task.multiple_choice else self.task.num_labels
        if self.head_config.kind == "verbalizer":
            self.head = Verbalizer(backbone, self.task)
        else:
            self.head = nn.Sequential(nn.Dropout(self.head_config.dropout),
                                      nn.Linear(backbone.hidden_size, num_outputs))
        template = answer_template(backbone, self.head_config.kind)
        self.answer_ids = tuple(backbone.tokenizer(template, add_special_tokens=False)["input_ids"]) if template \
            else ()
        lead, tail = backbone.special_tokens
        self.special_tokens = (lead, tail + len(self.answer_ids))  # the answer template stays at the end too
        self.max_length = min(max_length, backbone.max_positions - self.prompt_places)
        if self.max_length < 8:
            raise ValueError(f"{self.prompt_places} prompt tokens leave no room for input in {backbone.name!r}")
        self.to(backbone.device)

    @property
    def encoder(self) -> nn.Module:
        return self.tuned_encoder if self.tuned_encoder is not None else self.backbone.model

    @property
    def prompt_places(self) -> int:
        """Sequence places the prompt may take (input-level tokens, or the position shift of deep ones)."""
        return self.prompt.prompt_places

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def needs_features(self) -> bool:
        return self.prompt.needs_features

    @torch.no_grad()
    def instance_features(self, batch: Batch) -> torch.Tensor:
        """The frozen backbone's masked mean over the raw input's real tokens (what DP's network reads)."""
        model = self.backbone.model
        model.eval()
        hidden = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       **body_inputs(model, None, batch.token_type_ids)).last_hidden_state.float()
        weights = batch.attention_mask.unsqueeze(-1).float()
        return (hidden * weights).sum(1) / weights.sum(1)

    def build_layout(self, batch: Batch, features: torch.Tensor | None = None,
                     forced: dict[str, torch.Tensor] | None = None) -> tuple[PromptPlan, Layout]:
        """The prompt's decisions for the batch and the sequence they make, before the encoder reads it.

        ``features``: cached instance features of the batch's rows (DP); computed here when not given.
        ``forced``: DP only, factor -> (rows,) candidate that replaces the prompt's own choice.
        """
        if forced and not self.needs_features:
            raise ValueError(f"{self.method.method} makes no choices to force")
        if self.needs_features and features is None:
            features = self.instance_features(batch)
        plan: PromptPlan = self.prompt(batch.input_ids, batch.attention_mask, features, forced)
        encoder = self.encoder
        frame = Frame(self.special_tokens, self.backbone.position_base, self.backbone.max_positions,
                      position_table(encoder) if plan.position_weights is not None else None)
        layout = assemble(encoder.get_input_embeddings()(batch.input_ids), batch.attention_mask,
                          batch.token_type_ids, plan, frame)
        return plan, layout

    def encode(self, batch: Batch, features: torch.Tensor | None = None,
               forced: dict[str, torch.Tensor] | None = None) -> Encoded:
        """The items' logits with everything that made them; ``features`` and ``forced`` as in ``build_layout``."""
        plan, layout = self.build_layout(batch, features, forced)
        encoder = self.encoder
        if self.tuned_encoder is None:
            encoder.train(self.training and self.head_config.backbone_dropout)
        hidden, pooler_output = run_encoder(encoder, layout, plan.deep_prompts)
        pooled = self.pool(hidden.float(), layout.attention_mask, pooler_output)
        if self.head_config.kind == "verbalizer":
            logits = self.head(hidden, layout.attention_mask, self.answer_place(layout.attention_mask))
        else:
            logits = self.head(pooled)
        logits = logits.view(batch.num_items, -1)
        return Encoded(logits=logits, pooled=pooled, layout=layout, plan=plan)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, pooler_output: torch.Tensor | None) -> torch.Tensor:
        if self.head_config.pooling == "pooler":
            return pooler_output.float()
        if self.head_config.pooling == "cls":
            return hidden[:, 0]
        if self.head_config.pooling == "last":
            return hidden[torch.arange(len(hidden), device=hidden.device), self.answer_place(mask)]
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def answer_place(self, mask: torch.Tensor) -> torch.Tensor:
        """(rows,) the last place before the closing special tokens (a decoder: its last token; after an answer
        template, the template's end or its [MASK]). Kept places come first in every row."""
        return (mask.sum(1).long() - 1 - self.backbone.special_tokens[1]).clamp(min=0)

    def move_backbone(self, device: str | torch.device) -> None:
        """The frozen backbone (shared, not a submodule) onto ``device``, with the model."""
        device = torch.device(device)
        for module in (self.backbone.model, self.backbone.full):
            if module is not None:
                module.to(device)
        self.backbone.device = device

    def fit_rows(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows from a plain tokenizer (``pipeline``'s) as ``encode_examples`` makes them: the answer template a
        decoder's head reads before the closing special tokens, and at most ``max_length`` tokens (the text cut, its
        special tokens kept). Rows made by ``encode_examples`` come back as they are."""
        token_type_ids = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        lengths, tail, answer = attention_mask.sum(1).tolist(), self.backbone.special_tokens[1], list(self.answer_ids)
        rows, types, changed = [], [], False
        for ids, kinds, length in zip(input_ids.tolist(), token_type_ids.tolist(), lengths):
            ids, kinds = ids[:length], kinds[:length]
            body = length - tail
            closed = not answer or ids[body - len(answer):body] == answer
            if closed and length <= self.max_length:
                rows.append(ids), types.append(kinds)
                continue
            changed = True
            keep = self.max_length - tail - (0 if closed else len(answer))
            head = min(body, keep)
            rows.append(ids[:head] + ([] if closed else answer) + ids[body:])
            types.append(kinds[:head] + ([] if closed else [kinds[body - 1]] * len(answer)) + kinds[body:])
        if not changed:
            return input_ids, attention_mask, token_type_ids
        width, pad = max(map(len, rows)), self.backbone.tokenizer.pad_token_id
        fitted = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=input_ids.device)
        fitted_types = torch.tensor([kinds + [0] * (width - len(kinds)) for kinds in types], device=input_ids.device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows], device=input_ids.device)
        return fitted, mask, fitted_types

    def encode_examples(self, examples: list[Example]) -> EncodedSplit:
        """The examples tokenised for this model: its max length, and its answer template where it has one."""
        return encode_examples(self.backbone.tokenizer, self.task, examples, self.max_length, self.answer_ids)

    def forward(self, batch: Batch, features: torch.Tensor | None = None,
                forced: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.encode(batch, features, forced).logits

    def training_loss(self, batch: Batch, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.training_outputs(batch, features)[0]

    def training_outputs(self, batch: Batch, features: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss and the items' logits (of the first layout drawn). The loss is the cross-entropy plus
        the prompt module's own term where it has one (DP's score-function estimator; with ``samples`` > 1 every
        item is laid out that many times, each with its own sampled choices)."""
        items, samples = batch.num_items, self.prompt.samples
        if samples > 1:
            if self.needs_features and features is None:
                features = self.instance_features(batch)
            batch, features = batch.repeat(samples), features.repeat(samples, 1)
        encoded = self.encode(batch, features)
        item_losses = F.cross_entropy(encoded.logits.float(), batch.labels, reduction="none")
        loss = item_losses.mean()
        rows_per_item = batch.input_ids.shape[0] // batch.num_items
        surrogate = self.prompt.surrogate_loss(encoded.plan, item_losses.repeat_interleave(rows_per_item))
        if surrogate is not None:
            loss = loss + surrogate
        if self.prompt.exact_items and not self.prompt.warming_up():
            loss = loss + self.expected_choice_loss(batch, features)
        return loss, encoded.logits[:items]

    def candidate_probabilities(self, batch: Batch, factor: str, features: torch.Tensor | None = None,
                                max_rows: int = 512) -> torch.Tensor:
        """Class probabilities (items, candidates, labels) with DP's ``factor`` forced to every candidate, the
        candidates stacked as rows (``dp_core.explain.counterfactuals`` is the public way to ask)."""
        sizes = self.prompt.sizes
        if factor not in sizes:
            raise ValueError(f"{self.method.method} does not choose {factor!r}; it chooses {list(sizes) or 'nothing'}")
        if features is None:
            features = self.instance_features(batch)
        rows, items, candidates = batch.input_ids.shape[0], batch.num_items, sizes[factor]
        distinct = candidates
        if factor == "position" and "length" in sizes and not self.training:
            # Places p >= l put all l active tokens after the input: past the batch's longest prompt every place
            # is the same layout as that one, so it is computed once and repeated.
            plan = self.prompt(batch.input_ids, batch.attention_mask, features)
            distinct = min(candidates, int(plan.active.sum(-1).max()) + 1)
        per_pass = max(1, max_rows // rows)
        probabilities = []
        for first in range(0, distinct, per_pass):
            chosen = torch.arange(first, min(first + per_pass, distinct), device=batch.input_ids.device)
            copies = len(chosen)
            logits = self(batch.repeat(copies), features.repeat(copies, 1),
                          forced={factor: chosen.repeat_interleave(rows)})
            probabilities.append(logits.float().softmax(-1).view(copies, items, -1).transpose(0, 1))
        probabilities.append(probabilities[-1][:, -1:].expand(-1, candidates - distinct, -1))
        return torch.cat(probabilities, dim=1)

    def expected_choice_loss(self, batch: Batch, features: torch.Tensor | None) -> torch.Tensor:
        """DP's "exact" estimator: for the first ``exact_items`` items, the loss of every candidate place and
        length (forward passes without gradient, dropout off), weighted by the choice network's probabilities;
        its gradient is that of the expected loss, exactly, for those items."""
        items = min(self.prompt.exact_items, batch.num_items)
        rows_per_item = batch.input_ids.shape[0] // batch.num_items
        rows = items * rows_per_item
        first = Batch(batch.input_ids[:rows], batch.attention_mask[:rows], batch.token_type_ids[:rows],
                      batch.labels[:items], batch.items[:items], batch.rows[:rows])
        first_features = features[:rows] if features is not None else self.instance_features(first)
        logits = self.prompt.logits(first_features)
        term = logits[next(iter(logits))].new_zeros(())
        for factor in ("position", "length"):
            if factor not in logits:
                continue
            self.eval()
            with torch.no_grad():
                forced = self.candidate_probabilities(first, factor, first_features)  # (items, candidates, labels)
            self.train()
            term = term + expected_choice_loss(logits, {factor: forced_losses(forced, first.labels)}, rows_per_item)
        return term

    # --- checkpoints: trained weights as safetensors, everything else as JSON; never pickle --------------

    def trainable_names(self) -> set[str]:
        """What a checkpoint keeps: the trained parameters and the prompt module's buffers (DP's step count drives its
        temperature); never the frozen backbone or a frozen head's borrowed weights."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return names | {f"prompt.{name}" for name, _ in self.prompt.named_buffers()}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The tensors ``trainable_names`` names, detached copies."""
        names = self.trainable_names()
        return {name: tensor.detach().clone().contiguous() for name, tensor in self.state_dict().items()
                if name in names}

    def config_dict(self) -> dict:
        return {"backbone": self.backbone.name, "task": self.task.name, "method": self.method.to_dict(),
                "head": asdict(self.head_config), "max_length": self.max_length,
                **({"task_spec": self.task.spec} if self.task.spec else {})}

    def save_pretrained(self, directory: str | Path, metrics: dict | None = None, extra: dict | None = None,
                        tokenizer: bool = True) -> Path:
        """A checkpoint as ``PromptForSequenceClassification`` saves it (config.json, model.safetensors, the
        tokenizer unless ``tokenizer`` is False): the Auto classes, ``pipeline`` and ``from_pretrained`` read it.
        ``metrics`` and ``extra`` (what the run recorded) are kept in its configuration's ``metadata``."""
        from .hf import PromptForSequenceClassification

        wrapped = PromptForSequenceClassification.from_classifier(self, {"metrics": metrics or {}, **(extra or {})})
        wrapped.save_pretrained(directory, save_tokenizer=tokenizer)
        return Path(directory)

    @classmethod
    def from_pretrained(cls, source: str | Path, backbone: Backbone | None = None,
                        device: str = "auto") -> "PromptClassifier":
        """Load from a folder or a Hub repo id; pass ``backbone`` to share one already loaded. Reads checkpoints
        saved before config.json (dp_config.json) too."""
        from .hf import PromptConfig, PromptForSequenceClassification

        directory = Path(source)
        if not directory.is_dir():
            from huggingface_hub import snapshot_download

            directory = Path(snapshot_download(repo_id=str(source)))
        if (directory / LEGACY_CONFIG_FILE).is_file() and not (directory / CONFIG_FILE).is_file():
            return cls.from_legacy(directory, backbone, device)
        config = PromptConfig.from_pretrained(directory)
        if backbone is None:
            backbone = load_backbone(config.backbone, device=device)
        elif backbone.name != config.backbone:
            raise ValueError(f"checkpoint was trained on {config.backbone!r}, not {backbone.name!r}")
        wrapped, info = PromptForSequenceClassification.from_pretrained(
            directory, config=config, shared_backbone=backbone, output_loading_info=True)
        model = wrapped.classifier
        missing = {f"classifier.{name}" for name in model.trainable_names()} & set(info["missing_keys"])
        if missing:
            raise ValueError(f"checkpoint {directory} lacks {sorted(missing)[:3]}")
        model.metadata = config.metadata
        return model

    @classmethod
    def from_legacy(cls, directory: Path, backbone: Backbone | None, device: str) -> "PromptClassifier":
        """A checkpoint of dp_core before 0.2 (dp_config.json and the classifier's own weight names)."""
        record = json.loads((directory / LEGACY_CONFIG_FILE).read_text())
        if backbone is None:
            backbone = load_backbone(record["backbone"], device=device)
        elif backbone.name != record["backbone"]:
            raise ValueError(f"checkpoint was trained on {record['backbone']!r}, not {backbone.name!r}")
        task = task_from_record(record["task_spec"]) if "task_spec" in record else record["task"]
        model = cls(backbone, task, method_config_from_dict(record["method"]),
                    HeadConfig(**record["head"]), max_length=record["max_length"])
        state = load_file(str(directory / WEIGHTS_FILE), device=str(backbone.device))
        missing = model.trainable_names() - set(state)
        if missing:
            raise ValueError(f"checkpoint {directory} lacks {sorted(missing)[:3]}")
        model.load_state_dict(state, strict=False)
        model.metadata = {key: record[key] for key in record if key not in model.config_dict()}
        return model

    def load_prompt(self, source: str | Path) -> None:
        """Start from the prompt module of another checkpoint (same method and backbone, any task): how the
        multitask regime continues per task from prompts trained on several."""
        state = load_file(str(Path(source) / WEIGHTS_FILE), device=str(self.backbone.device))
        prompt_state = {name.removeprefix(WEIGHTS_PREFIX).removeprefix("prompt."): tensor
                        for name, tensor in state.items() if name.removeprefix(WEIGHTS_PREFIX).startswith("prompt.")}
        try:
            self.prompt.load_state_dict(prompt_state)
        except RuntimeError as error:
            detail = " ".join(str(error).split())
            raise ValueError(f"the prompt in {source} does not fit this method ({detail[:300]})") from None

    def push_to_hub(self, repo_id: str, metrics: dict | None = None, private: bool = False,
                    token: str | None = None) -> str:
        """The checkpoint on the Hub, as ``PromptForSequenceClassification.push_to_hub`` puts it."""
        from .hf import PromptForSequenceClassification

        wrapped = PromptForSequenceClassification.from_classifier(self, {"metrics": metrics or {}})
        commit = wrapped.push_to_hub(repo_id, private=private, token=token,
                                     commit_message=f"dp_core {self.method.method} on {self.task.name}")
        return str(getattr(commit, "commit_url", commit))
