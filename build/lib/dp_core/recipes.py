"""Named sets of training options that reproduce a reference's setup (``--recipe`` on the CLI).

Each recipe holds option values by config field name; options given explicitly win over them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .config import TrainConfig
from .heads import HeadConfig
from .methods import method_config


@dataclass(frozen=True)
class Recipe:
    description: str
    source: str  # where each value comes from
    method: str
    training: dict[str, Any]  # TrainConfig fields
    prompt: dict[str, Any]  # the method config's fields
    head: dict[str, Any]  # HeadConfig fields


RECIPES = {
    "dpt": Recipe(
        description="Dynamic Prompting as the paper ran it: T5-large LM-adapted, 20 input-level tokens, the place "
                    "chosen per instance, Adafactor at 0.3, constant after 500 warm-up steps, a verbalizer",
        source="Xianjun-Yang/DPT: tutorial/adap_ins_pos_main.py's defaults, "
               "experiments/cb_t5_large_softprompt.yaml's batch, length and clipping",
        method="dp",
        training={"backbone": "google/t5-large-lm-adapt", "optimizer": "adafactor", "lr": 0.3, "schedule": "constant",
                  "warmup_steps": 500, "max_steps": 20_000, "eval_every": 500, "batch_size": 8, "max_length": 256,
                  "grad_clip": 1.0},
        prompt={"num_tokens": 20, "where": "input", "factors": ("position",), "level": "instance", "init": "vocab",
                "estimator": "straight_through", "tau_schedule": "reference", "feature_norm": "none"},
        head={"kind": "verbalizer"},
    ),
}


def recipe_config(name: str, **overrides: Any) -> TrainConfig:
    """A recipe's TrainConfig, with any TrainConfig field overridden (``task``, ``backbone``, ``max_steps``, ...)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    config = TrainConfig(**recipe.training, prompt=method_config(recipe.method, **recipe.prompt),
                         head=HeadConfig(**recipe.head))
    return replace(config, **overrides)


def recipe_defaults(name: str) -> dict[str, Any]:
    """A recipe's values by option name, for the CLI's defaults (the method included)."""
    recipe = RECIPES[name]
    return {"method": recipe.method, **recipe.training, **recipe.prompt, **recipe.head}
