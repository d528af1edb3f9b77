"""Fixed prompt methods: a config dataclass and a module each, as PEFT's tuners are laid out.

Every prompt module is a :class:`PromptModule`: it maps a batch to a :class:`PromptPlan`, what the layout
(``dp_core.layout``) needs to place the prompt. Fixed methods give every instance the same prompt, split position 0
(all before the input) and every slot active; Dynamic Prompting decides these per instance through the same plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from .backbone import Backbone
from .layout import PromptPlan
from .options import option

PLACES = ("before", "after")
INITS = ("vocab", "random")
NUM_TOKENS_HELP = "prompt tokens (input level) or key/value slots per layer (deep)"


def parse_layers(text: str) -> tuple[int, int]:
    """"3:6" -> (3, 6)."""
    first, _, last = text.partition(":")
    return int(first), int(last)


def check_deep_prompts(backbone: Backbone) -> None:
    """Deep prompts need every layer's attention to take extra keys/values; say in one line where it does not."""
    reason = backbone.family.no_deep_prompts
    if reason:
        raise ValueError(f"deep prompts do not work on {backbone.config.model_type}: {reason}")


def fixed_plan(batch_size: int, num_tokens: int, device: torch.device, **prompts) -> PromptPlan:
    return PromptPlan(
        split_position=torch.zeros(batch_size, dtype=torch.long, device=device),
        active=torch.ones(batch_size, num_tokens, dtype=torch.bool, device=device),
        **prompts,
    )


@dataclass
class MethodConfig:
    method: ClassVar[str]
    trains_backbone: ClassVar[bool] = False

    def build(self, backbone: Backbone) -> "PromptModule":
        raise NotImplementedError

    @property
    def choice_factors(self) -> tuple[str, ...]:
        """What the method chooses per task or instance (Dynamic Prompting: position, length, pool)."""
        return ()

    def to_dict(self) -> dict:
        return {"method": self.method, **asdict(self)}


class PromptModule(nn.Module):
    """The contract between a prompt method and the classifier and trainer, which call nothing else. Fixed methods
    keep the defaults; Dynamic Prompting overrides the choice part."""

    needs_features: ClassVar[bool] = False  # reads the frozen backbone's features of each input (DP's choices)

    def __init__(self, config: MethodConfig, prompt_places: int):
        super().__init__()
        self.config = config
        self.prompt_places = prompt_places  # sequence places the prompt may take (input tokens or a deep shift)

    @property
    def sizes(self) -> dict[str, int]:
        """Factor -> how many candidates the module chooses among (empty: it chooses nothing)."""
        return {}

    @property
    def choice_lr(self) -> float | None:
        """The learning rate of the choice parameters, if they train apart from the prompt."""
        return None

    @property
    def samples(self) -> int:
        """Layouts drawn per item while training."""
        return 1

    @property
    def exact_items(self) -> int:
        """Items per batch whose every candidate is tried for the exact estimator (0: none)."""
        return 0

    @property
    def refits_choices(self) -> bool:
        """Whether the kept checkpoint's choices are refit to its frozen prompt (``dp_core.refit``)."""
        return False

    @property
    def place_given_length(self) -> bool:
        """Whether the place is drawn given the drawn length."""
        return False

    def choice_parameters(self) -> list[nn.Parameter]:
        """What decides the layout."""
        return []

    def schedule_run(self, total_steps: int) -> None:
        """The training loop plans ``total_steps`` forward passes from now (DP's schedules follow the run)."""

    def warming_up(self) -> bool:
        """Whether layouts are still drawn at random while the choices wait."""
        return False

    def surrogate_loss(self, plan: PromptPlan, row_losses: torch.Tensor) -> torch.Tensor | None:
        """A loss term of the module's own, added to the rows' cross-entropy (None: none)."""
        return None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, forced: dict[str, torch.Tensor] | None = None) -> PromptPlan:
        raise NotImplementedError


# --- P-tuning v2 -------------------------------------------------------------------------------------


@dataclass
class PTuningV2Config(MethodConfig):
    """Deep prompts: ``num_tokens`` learned keys/values in every layer (or in ``layers`` = [first, last))."""

    method: ClassVar[str] = "ptv2"
    num_tokens: int = option(16, NUM_TOKENS_HELP)
    layers: tuple[int, int] | None = option(None, "prompt only layers FIRST to LAST, e.g. 3:6 (the P-tuning v2 "
                                            "paper's depth ablation; default: all)", parse=parse_layers,
                                            metavar="FIRST:LAST")
    reparameterize: bool = option(False, "an MLP prefix encoder as the reference: Embedding, Linear, Tanh, Linear")
    reparam_hidden: int = option(512, "hidden width of that prefix encoder")
    prompt_dropout: float = option(0.1, "dropout on the prompt")

    def build(self, backbone: Backbone) -> PromptModule:
        return DeepPrompt(self, backbone)


class DeepPrompt(PromptModule):
    """Per-layer prompt keys/values, parameter layout identical to PEFT's ``PrefixEncoder``."""

    def __init__(self, config: PTuningV2Config, backbone: Backbone):
        super().__init__(config, config.num_tokens)
        check_deep_prompts(backbone)
        first, last = config.layers or (0, backbone.num_layers)
        if not 0 <= first < last <= backbone.num_layers:
            raise ValueError(f"layers must satisfy 0 <= first < last <= {backbone.num_layers}, got {config.layers}")
        if (first, last) != (0, backbone.num_layers) and backbone.family.name != "encoder":
            raise ValueError("prompts in some layers only run layer by layer, written for BERT-like encoders")
        self.prompt_layers = range(first, last)
        self.num_layers, self.num_heads = backbone.num_layers, backbone.num_key_value_heads
        hidden = backbone.hidden_size
        width = 2 * len(self.prompt_layers) * backbone.num_key_value_heads * backbone.head_dim
        if config.reparameterize:
            self.embedding = nn.Embedding(config.num_tokens, hidden)
            self.transform = nn.Sequential(
                nn.Linear(hidden, config.reparam_hidden), nn.Tanh(), nn.Linear(config.reparam_hidden, width)
            )
        else:
            self.embedding = nn.Embedding(config.num_tokens, width)
            self.transform = nn.Identity()
        self.dropout = nn.Dropout(config.prompt_dropout)

    def key_values(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """(key, value) of shape (B, heads, L, head_dim) for each prompted layer; None for the others."""
        tokens = self.transform(self.embedding.weight)  # (L, 2 * layers * hidden)
        tokens = self.dropout(tokens)
        length = tokens.shape[0]
        per_layer = tokens.view(length, 2 * len(self.prompt_layers), self.num_heads, -1).permute(1, 2, 0, 3)
        per_layer = per_layer.unsqueeze(1).expand(-1, batch_size, -1, -1, -1)  # (2 * layers, B, heads, L, d)
        pairs = iter(per_layer.split(2))
        return [tuple(next(pairs)) if layer in self.prompt_layers else None for layer in range(self.num_layers)]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, forced: dict[str, torch.Tensor] | None = None) -> PromptPlan:
        batch = input_ids.shape[0]
        return fixed_plan(batch, self.config.num_tokens, input_ids.device, deep_prompts=self.key_values(batch))


# --- Prompt tuning (Lester et al.) and P-tuning v1 -----------------------------------------------------


@dataclass
class PromptTuningConfig(MethodConfig):
    """``num_tokens`` input-level soft tokens, initialised from vocabulary embeddings or at random."""

    method: ClassVar[str] = "prompt_tuning"
    num_tokens: int = option(16, NUM_TOKENS_HELP)
    init: str = option("vocab", "start from embeddings of frequent words (vocab) or from noise (random)",
                       flag="--prompt-init", choices=INITS)
    prompt_dropout: float = option(0.0, "dropout on the prompt")
    place: str = option("before", "a prefix (before the input, as Lester et al.) or a suffix (after it)",
                        choices=PLACES)

    def __post_init__(self):
        if self.place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, got {self.place!r}")

    def build(self, backbone: Backbone) -> PromptModule:
        return InputPrompt(self, backbone)


@dataclass
class PTuningV1Config(MethodConfig):
    """Input-level soft tokens produced by a small prompt encoder (P-tuning, Liu et al. 2021)."""

    method: ClassVar[str] = "ptv1"
    num_tokens: int = option(16, NUM_TOKENS_HELP)
    encoder: str = option("lstm", "the prompt encoder", flag="--prompt-encoder", choices=("lstm", "mlp"))
    prompt_dropout: float = option(0.0, "dropout on the prompt")

    def build(self, backbone: Backbone) -> PromptModule:
        return InputPrompt(self, backbone)


class PromptEncoder(nn.Module):
    """P-tuning v1's reparameterisation: (bi-LSTM →) MLP over a learned embedding."""

    def __init__(self, kind: str, hidden: int):
        super().__init__()
        if kind not in ("lstm", "mlp"):
            raise ValueError(f"prompt encoder must be 'lstm' or 'mlp', got {kind!r}")
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=2, bidirectional=True, batch_first=True) \
            if kind == "lstm" else None
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if self.lstm is not None:
            embeddings = self.lstm(embeddings[None])[0][0]
        return self.mlp(embeddings)


def initial_prompt_vectors(backbone: Backbone, shape: tuple[int, ...], init: str) -> torch.Tensor:
    """Prompt vectors of shape ``shape + (hidden,)``: embedding rows of frequent words ("vocab"; BERT-style
    vocabularies keep rare pieces at the end) or Gaussian noise at the embeddings' scale ("random")."""
    word_embeddings = backbone.model.get_input_embeddings().weight.detach().cpu()
    if init == "vocab":
        upper = min(5000, word_embeddings.shape[0])
        return word_embeddings[torch.randint(min(1000, upper - 1), upper, shape)].clone()
    if init == "random":
        return torch.randn(*shape, word_embeddings.shape[1]) * float(word_embeddings.std())
    raise ValueError(f"prompt init must be 'vocab' or 'random', got {init!r}")


class InputPrompt(PromptModule):
    def __init__(self, config: PromptTuningConfig | PTuningV1Config, backbone: Backbone):
        super().__init__(config, config.num_tokens)
        self.embedding = nn.Embedding(config.num_tokens, backbone.hidden_size)
        init = config.init if isinstance(config, PromptTuningConfig) else "random"
        self.embedding.weight.data.copy_(initial_prompt_vectors(backbone, (config.num_tokens,), init))
        self.encoder = PromptEncoder(config.encoder, backbone.hidden_size) \
            if isinstance(config, PTuningV1Config) else nn.Identity()
        self.dropout = nn.Dropout(config.prompt_dropout)

    def tokens(self, batch_size: int) -> torch.Tensor:
        return self.dropout(self.encoder(self.embedding.weight)).unsqueeze(0).expand(batch_size, -1, -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, forced: dict[str, torch.Tensor] | None = None) -> PromptPlan:
        batch = input_ids.shape[0]
        plan = fixed_plan(batch, self.config.num_tokens, input_ids.device, input_prompts=self.tokens(batch))
        if isinstance(self.config, PromptTuningConfig) and self.config.place == "after":  # all after the text
            plan.split_position.fill_(self.config.num_tokens)
        return plan


# --- Fine-tuning ---------------------------------------------------------------------------------------


@dataclass
class FineTuneConfig(MethodConfig):
    """No prompt: the whole backbone trains with the same head (the gap prompt methods try to close)."""

    method: ClassVar[str] = "finetune"
    trains_backbone: ClassVar[bool] = True

    def build(self, backbone: Backbone) -> PromptModule:
        return NoPrompt(self, 0)


class NoPrompt(PromptModule):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, forced: dict[str, torch.Tensor] | None = None) -> PromptPlan:
        return fixed_plan(input_ids.shape[0], 0, input_ids.device)
