"""Which pooling serves the head best on a backbone: trains P-tuning v2 with each and prints dev scores.

    python -m benchmarks.pooling --data-dir ../shared/superglue --tasks cb rte --epochs 3 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics

from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.config import TrainConfig
from dp_core.heads import POOLINGS, HeadConfig
from dp_core.prompts import PTuningV2Config
from dp_core.train import load_task_data, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--tasks", nargs="+", default=["cb", "rte"])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    backbone = load_backbone(args.backbone)
    print(f"| task | pooling | dev score (mean ± std over seeds {args.seeds}) |\n|---|---|---|")
    for task in args.tasks:
        data = load_task_data(TrainConfig(task=task, data_dir=args.data_dir))
        for pooling in POOLINGS:
            scores = [
                run(TrainConfig(task=task, prompt=PTuningV2Config(num_tokens=16), head=HeadConfig(pooling=pooling),
                                data_dir=args.data_dir, epochs=args.epochs, seed=seed), backbone=backbone,
                    data=data).best_metrics["score"]
                for seed in args.seeds
            ]
            print(f"| {task} | {pooling} | {statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
