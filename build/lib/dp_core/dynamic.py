"""Dynamic Prompting (Yang et al. 2023, arXiv 2303.02909): the prompt's position, length and pool mix, chosen per
task or per instance (docs/concepts.md explains each).

- *position* p in 0..L: slots 0..p-1 go right after the input's text, slots p..L-1 before it.
- *length* l in 1..L: only the first l slots are active; every p >= l is then one layout.
- *pool*: a softmax mix of k prompts (a Gumbel one-hot as an option).

Discrete choices are hard Gumbel-Softmax draws while training and the argmax at evaluation; the layout of the hard
choice is built directly (``dp_core.layout``). The estimators that teach the choices: ``DynamicPromptConfig.estimator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone
from .options import comma_list, option
from .prompts import (INITS, NUM_TOKENS_HELP, MethodConfig, PromptModule, PromptPlan, check_deep_prompts,
                      initial_prompt_vectors)

FACTORS = ("position", "length", "pool")
LEVELS = ("task", "instance")
WHERE = ("input", "deep", "both")
ESTIMATORS = ("score_function", "straight_through", "exact")
FEATURE_NORMS = ("none", "layer", "unit")
TAU_SCHEDULES = ("run", "reference", "exponential")
# What the ready-trained prompts, the app's Train tab and the results grid use (docs/dp_learning.md): unit-length
# features and the choice network on its own learning rate, so the choices commit within a few hundred steps.
READY_TRAINED = {"feature_norm": "unit", "choice_lr": 0.1}


@dataclass
class DynamicPromptConfig(MethodConfig):
    method: ClassVar[str] = "dp"
    num_tokens: int = option(16, NUM_TOKENS_HELP)
    factors: tuple[str, ...] = option(("position",), "what DP chooses: a comma list of position, length, pool "
                                      "(default: position)", parse=comma_list, metavar="FACTORS")
    level: str = option("instance", "one choice per task, or per instance by a light network", choices=LEVELS)
    where: str = option("input", "input-level tokens (the paper), deep keys/values (P-tuning v2), or both",
                        choices=WHERE)
    pool_size: int = option(4, "prompts in the pool")
    pool_gumbel: bool = option(False, "a hard one-hot pool choice instead of a softmax mix")
    tau_start: float = option(1.0, "Gumbel-Softmax temperature at the start")
    tau_min: float = option(0.5, "the lowest temperature")
    tau_rate: float = option(3e-6, "decay rate of the reference and exponential schedules")
    tau_schedule: str = option("run", "run: tau_start to tau_min over this run; reference: its per-step rule, "
                               "written for 20,000 steps; exponential: tau_start * exp(-tau_rate * step)",
                               choices=TAU_SCHEDULES)
    network_hidden: int = option(0, "0: one Linear per factor (the reference); more: a shared hidden ReLU layer")
    feature_norm: str = option("none", "what the choice network reads: raw features (none, the reference), "
                               "LayerNorm-ed (layer), or LayerNorm-ed at unit length (unit)", choices=FEATURE_NORMS)
    choice_lr: float | None = option(None, "the choice network's own learning rate (default: the prompt's)")
    estimator: str = option("score_function", "how choices learn: the sampled choice's log-probability times the "
                            "loss (score_function), the reference's gradient (straight_through), or every "
                            "candidate's loss for a few items (exact)", choices=ESTIMATORS)
    exact_items: int = option(4, "exact estimator: items per batch whose every candidate is tried")
    samples: int = option(1, "layouts drawn per item while training; more than 1: each one's baseline is the "
                          "item's other samples")
    entropy_bonus: float = option(0.0, "weight of the choices' entropy in the loss, annealed to 0 over the run")
    choice_warmup: float = option(0.0, "share of the run with random layouts while the choice network waits")
    refit_choices: bool = option(False, "once the checkpoint is kept, refit the place and length choices to the "
                                 "frozen prompt (kept only if the selection split confirms)")
    place_given_length: bool = option(False, "draw the place given the drawn length, among its l + 1 distinct "
                                      "layouts")
    prompt_dropout: float = option(0.1, "dropout on the prompt")
    init: str = option("vocab", "input-level prompts: start from embeddings of frequent words (vocab) or noise "
                       "(random)", flag="--prompt-init", choices=INITS)

    # Values of options added after checkpoints were first saved, for records that lack them (as they were then).
    saved_before: ClassVar[dict] = {"tau_schedule": "reference"}

    def __post_init__(self):
        self.factors = tuple(self.factors)
        if isinstance(self.feature_norm, bool):  # --dp-set feature_norm=false / true
            self.feature_norm = "layer" if self.feature_norm else "none"
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {self.feature_norm!r}")
        unknown = [f for f in self.factors if f not in FACTORS]
        if unknown or not self.factors:
            raise ValueError(f"factors must be a non-empty subset of {FACTORS}, got {self.factors}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        if self.where not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, got {self.where!r}")
        if self.tau_schedule not in TAU_SCHEDULES:
            raise ValueError(f"tau_schedule must be one of {TAU_SCHEDULES}, got {self.tau_schedule!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.samples < 1 or (self.samples > 1 and self.estimator != "score_function"):
            raise ValueError(f"samples must be 1, or > 1 with the score-function estimator, got {self.samples}")
        if self.place_given_length and not {"position", "length"} <= set(self.factors):
            raise ValueError(f"place_given_length draws the place given the length: it needs both factors, "
                             f"got {self.factors}")

    def build(self, backbone: Backbone) -> PromptModule:
        return DynamicPrompt(self, backbone)

    @property
    def choice_factors(self) -> tuple[str, ...]:
        return self.factors

    def temperature(self, step: int, progress: float | None = None) -> float:
        """Gumbel-Softmax temperature at optimizer step ``step``, ``progress`` of the way through the run (0..1;
        None: no planned length, the "run" schedule stays at tau_start). Only the straight-through gradient
        feels it: a hard sample is the argmax of logits + Gumbel noise at any temperature."""
        if self.tau_schedule == "run":
            fraction = 0.0 if progress is None else min(1.0, max(0.0, progress))
            return self.tau_start * (self.tau_min / self.tau_start) ** fraction
        exponent = self.tau_rate * (step * (step + 1) / 2 if self.tau_schedule == "reference" else step)
        return max(self.tau_start * math.exp(-exponent), self.tau_min)


class FeatureNorm(nn.Module):
    """The instance features as the choice network reads them (``DynamicPromptConfig.feature_norm``); no
    parameters, so checkpoints do not depend on it."""

    def __init__(self, hidden: int, kind: str):
        super().__init__()
        self.kind, self.scale = kind, hidden ** -0.5

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return features
        normed = F.layer_norm(features, features.shape[-1:])
        return normed * self.scale if self.kind == "unit" else normed


class DynamicPrompt(PromptModule):
    needs_features = True

    def __init__(self, config: DynamicPromptConfig, backbone: Backbone):
        super().__init__(config, config.num_tokens)
        length, hidden = config.num_tokens, backbone.hidden_size
        self.num_layers, self.num_heads = backbone.num_layers, backbone.num_key_value_heads
        if config.where != "input":
            check_deep_prompts(backbone)
        if config.where == "deep" and "position" in config.factors and backbone.positions != "absolute":
            raise ValueError(f"DP deep chooses a place only through where the input's absolute positions start; "
                             f"{backbone.config.model_type} has {backbone.positions} positions: choose length or "
                             f"pool there, or put the prompt at the input (where='input')")
        pool = config.pool_size if "pool" in config.factors else 1
        candidates = {"position": length + 1, "length": length, "pool": pool}
        self.factor_sizes = {factor: candidates[factor] for factor in config.factors}
        self.input_pool = self.deep_pool = None
        if config.where in ("input", "both"):
            self.input_pool = nn.Parameter(initial_prompt_vectors(backbone, (pool, length), config.init))
        if config.where in ("deep", "both"):  # nn.Embedding's N(0, 1), as P-tuning v2 / PEFT
            width = 2 * self.num_layers * backbone.num_key_value_heads * backbone.head_dim
            self.deep_pool = nn.Parameter(torch.randn(pool, length, width))
        if config.level == "task":
            self.task_logits = nn.ParameterDict({f: nn.Parameter(torch.zeros(n)) for f, n in self.sizes.items()})
        else:
            width = config.network_hidden or hidden
            self.trunk = nn.Sequential(nn.Linear(hidden, width), nn.ReLU()) if config.network_hidden else nn.Identity()
            self.heads = nn.ModuleDict({f: nn.Linear(width, n) for f, n in self.sizes.items()})
        self.feature_norm = FeatureNorm(hidden, config.feature_norm)
        self.dropout = nn.Dropout(config.prompt_dropout)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.run_start, self.run_steps = 0, None  # set by the training loop: what "progress" counts against

    @property
    def sizes(self) -> dict[str, int]:
        return self.factor_sizes

    @property
    def choice_lr(self) -> float | None:
        return self.config.choice_lr

    @property
    def samples(self) -> int:
        return self.config.samples

    @property
    def exact_items(self) -> int:
        return self.config.exact_items if self.config.estimator == "exact" else 0

    @property
    def refits_choices(self) -> bool:
        return self.config.refit_choices

    @property
    def place_given_length(self) -> bool:
        return self.config.place_given_length

    def schedule_run(self, total_steps: int) -> None:
        """The training loop plans ``total_steps`` from now: temperature, warm-up and entropy follow this run."""
        self.run_start, self.run_steps = int(self.steps_done), max(1, int(total_steps))

    @property
    def progress(self) -> float | None:
        if self.run_steps is None:
            return None
        return min(1.0, (int(self.steps_done) - self.run_start) / self.run_steps)

    def temperature(self) -> float:
        return self.config.temperature(int(self.steps_done), self.progress)

    def warming_up(self) -> bool:
        return self.training and self.progress is not None and self.progress < self.config.choice_warmup

    def choice_parameters(self) -> list[nn.Parameter]:
        """What decides the layout (its own learning rate: ``choice_lr``)."""
        if self.config.level == "task":
            return list(self.task_logits.parameters())
        return list(self.trunk.parameters()) + list(self.heads.parameters())

    def factor_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each factor's own logits, before the place is conditioned on the length."""
        rows = features.shape[0]
        if self.config.level == "task":
            return {f: logit[None].expand(rows, -1) for f, logit in self.task_logits.items()}
        hidden = self.trunk(self.feature_norm(features))
        return {f: head(hidden) for f, head in self.heads.items()}

    def logits(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The logits DP draws its choices from. With ``place_given_length`` the place's are those given ``lengths``
        (rows,) active tokens; by default DP's own length (its argmax, as at evaluation)."""
        logits = self.factor_logits(features)
        if not self.config.place_given_length:
            return logits
        return self.condition_place(logits, logits["length"].argmax(-1) + 1 if lengths is None else lengths)

    @staticmethod
    def condition_place(logits: dict[str, torch.Tensor], lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Places past each row's length removed (-inf): p > l repeats the layout of p = l."""
        places = torch.arange(logits["position"].shape[-1], device=logits["position"].device)
        past = places[None, :] > lengths.to(places.device)[:, None]
        return {**logits, "position": logits["position"].masked_fill(past, float("-inf"))}

    def choose(self, logits: torch.Tensor, forced: torch.Tensor | None = None) -> torch.Tensor:
        """Hard one-hot: a Gumbel-Softmax sample while training (straight-through gradients, or none for the
        score-function estimator, which learns from the sampled choice's log-probability), argmax otherwise;
        ``forced`` (rows,) candidate indices override the choice (counterfactuals). Candidates at -inf (places
        past the length) are never drawn."""
        if forced is not None:
            return F.one_hot(forced.to(logits.device), logits.shape[-1]).float()
        if not self.training:
            return F.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        if self.warming_up():
            allowed = torch.isfinite(logits).float().reshape(-1, logits.shape[-1])
            uniform = torch.multinomial(allowed, 1).view(logits.shape[:-1])
            return F.one_hot(uniform, logits.shape[-1]).float()
        sample = F.gumbel_softmax(logits.float(), tau=self.temperature(), hard=True)
        return sample if self.config.estimator == "straight_through" else sample.detach()

    def surrogate_loss(self, plan: PromptPlan, row_losses: torch.Tensor) -> torch.Tensor:
        """Score-function term: (instance loss - baseline) * log p(sampled choices), minus the annealed entropy
        bonus. ``row_losses`` holds ``samples`` blocks of rows (the batch repeated); the baseline of a row is the
        mean loss of its item's other samples, or with one sample the batch mean."""
        decisions = plan.decisions or {}
        term = row_losses.new_zeros(())
        log_prob = decisions.get("choice_log_prob")
        if log_prob is not None:
            samples = self.config.samples
            losses = row_losses.detach().view(samples, -1)
            if samples > 1:
                baseline = (losses.sum(0, keepdim=True) - losses) / (samples - 1)
            else:
                baseline = losses.mean()
            term = term + ((losses - baseline).flatten() * log_prob).mean()
        entropy = decisions.get("choice_entropy")
        if entropy is not None:
            weight = self.config.entropy_bonus * (1.0 - (self.progress or 0.0))
            term = term - weight * entropy.mean()
        return term

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None, forced: dict[str, torch.Tensor] | None = None) -> PromptPlan:
        """``forced``: factor -> (rows,) candidate index that replaces the choice (position p, length l - 1, pool
        prompt k), to ask what the output would be with the prompt elsewhere."""
        forced = forced or {}
        unknown = set(forced) - set(self.sizes)
        if unknown:
            raise ValueError(f"this prompt does not choose {sorted(unknown)}; it chooses {list(self.sizes)}")
        rows, length = input_ids.shape[0], self.config.num_tokens
        if self.training:
            self.steps_done += 1
        logits = self.factor_logits(features)
        slot_index = torch.arange(length, device=input_ids.device)

        position_weights = length_weights = None
        split_position = torch.zeros(rows, dtype=torch.long, device=input_ids.device)
        active = torch.ones(rows, length, dtype=torch.bool, device=input_ids.device)
        if self.config.place_given_length:  # the length first, then the place among that length's layouts
            length_weights = self.choose(logits["length"], forced.get("length"))
            logits = self.condition_place(logits, length_weights.argmax(-1) + 1)
        if "position" in logits:
            position_weights = self.choose(logits["position"], forced.get("position"))
            split_position = position_weights.argmax(-1)
        if "length" in logits:
            if length_weights is None:
                length_weights = self.choose(logits["length"], forced.get("length"))
            active = slot_index[None, :] < length_weights.argmax(-1, keepdim=True) + 1
        decisions = {f"{factor}_probs": logit.float().softmax(-1) for factor, logit in logits.items()}

        if "pool" in logits:
            pool_weights = self.choose(logits["pool"], forced.get("pool")) \
                if self.config.pool_gumbel or "pool" in forced else decisions["pool_probs"]
        else:
            pool_weights = torch.ones(rows, 1, device=input_ids.device)
        if self.training:
            sampled = {"position": position_weights, "length": length_weights,
                       "pool": pool_weights if self.config.pool_gumbel else None}
            decisions.update(self.learning_signals(logits, decisions, sampled))
        decisions["pool_weights"] = pool_weights.detach()
        input_prompts, deep_prompts = self.mixed_prompts(pool_weights, length_weights, active)
        straight_through = self.training and self.config.estimator == "straight_through"
        return PromptPlan(split_position=split_position, active=active, input_prompts=input_prompts,
                          deep_prompts=deep_prompts, decisions=decisions,
                          position_weights=position_weights if straight_through else None,
                          length_weights=length_weights if straight_through and self.input_pool is not None else None)

    def learning_signals(self, logits: dict[str, torch.Tensor], decisions: dict[str, torch.Tensor],
                         sampled: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """While training: the choices' entropy (for its bonus) and the sampled choices' log-probability (for the
        score-function estimator)."""
        signals = {}
        discrete = [f for f in ("position", "length") if f in logits]
        if self.config.entropy_bonus > 0 and discrete:
            # each divided by the log of its candidate count (a place given the length has l + 1)
            signals["choice_entropy"] = sum(
                -(p * p.clamp_min(1e-12).log()).sum(-1) / torch.isfinite(logits[f]).sum(-1).float().log()
                for f, p in ((f, decisions[f"{f}_probs"]) for f in discrete))
        chosen = [(logits[f], weights) for f, weights in sampled.items() if weights is not None]
        if self.config.estimator == "score_function" and not self.warming_up() and chosen:
            signals["choice_log_prob"] = sum(
                logit.float().log_softmax(-1).gather(-1, weights.argmax(-1, keepdim=True)).squeeze(-1)
                for logit, weights in chosen)
        return signals

    def mixed_prompts(self, pool_weights: torch.Tensor, length_weights: torch.Tensor | None, active: torch.Tensor
                      ) -> tuple[torch.Tensor | None, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """Each row's prompt, mixed from the pool: input-level tokens and per-layer keys/values, where DP has them."""
        input_prompts = deep_prompts = None
        if self.input_pool is not None:
            input_prompts = self.dropout(torch.einsum("bk,kld->bld", pool_weights, self.input_pool))
        if self.deep_pool is not None:
            deep = self.dropout(torch.einsum("bk,kld->bld", pool_weights, self.deep_pool))
            if length_weights is not None:
                # Straight-through gate: exactly 1 on active slots in the forward pass (inactive ones are
                # masked), and the gradient of "slot k is active" = sum of the weights of lengths > k.
                keep = torch.flip(torch.cumsum(torch.flip(length_weights, [1]), 1), [1])
                deep = deep * (active.float() + keep - keep.detach())[:, :, None]
            deep_prompts = self.split_layers(deep)
        return input_prompts, deep_prompts

    def split_layers(self, deep: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, L, 2 * layers * hidden) → per layer (key, value) of shape (B, heads, L, head_dim), PEFT's layout."""
        rows, length, _ = deep.shape
        per_layer = deep.view(rows, length, 2 * self.num_layers, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        return [tuple(pair) for pair in per_layer.split(2)]
