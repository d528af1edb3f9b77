"""Seconds per DP training step with each choice estimator, on the same task, data and batches.

    python -m benchmarks.estimator_cost --data-dir ../shared/superglue --task cb --steps 8

The exact estimator adds (candidates x exact_items) rows of forward pass without gradient to every step.
"""

from __future__ import annotations

import argparse

from dp_core.backbone import load_backbone
from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.train import load_task_data, train

SETTINGS = {"score function": dict(estimator="score_function"),
            "exact, 4 items": dict(estimator="exact", exact_items=4),
            "exact, 16 items (the whole batch)": dict(estimator="exact", exact_items=16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="cb")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    backbone = load_backbone()
    data = load_task_data(TrainConfig(task=args.task, data_dir=args.data_dir, dev_limit=8))
    for name, options in SETTINGS.items():
        config = TrainConfig(task=args.task, prompt=DynamicPromptConfig(**options), max_steps=args.steps,
                             eval_every=10**6, counterfactuals="none")
        elapsed = [event.elapsed_s for event in train(config, backbone=backbone, data=data) if event.kind == "step"]
        per_step = (elapsed[-1] - elapsed[1]) / (len(elapsed) - 2)  # the first step warms up
        print(f"{name}: {per_step:.2f} s per step ({args.task}, batch 16, input DP, position)")


if __name__ == "__main__":
    main()
