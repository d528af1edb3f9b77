"""Fixed prompts against Dynamic Prompting variants on SuperGLUE: mean ± std over seeds, DP − fixed with a 95 % interval.

    python -m benchmarks.dp_results --data-dir ../shared/superglue --tasks cb rte copa wic boolq \
        --seeds 0 1 2 --max-steps 80 --evaluations 2 --dev-limit 640 --output docs/results.md

Every variant gets the same budget (optimizer steps or epochs, batch, learning rates, prompt length) and the
same seeds. The score is the best of the run's dev evaluations (evenly spaced, the last at the end), as the
P-tuning v2 reference reports its best epoch; nothing is tuned on the dev set beyond that. BoolQ trains on FewGLUE (32 examples) when the local folder has no BoolQ
train file. The interval for DP − fixed is a paired t interval over seeds.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

from benchmarks.common import interval
from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.dynamic import DynamicPromptConfig
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import DataError
from dp_core.train import TrainConfig, load_task_data, run



def variants(num_tokens: int) -> dict:
    full = ("position", "length", "pool")
    return {
        "P-tuning v2 (fixed)": PTuningV2Config(num_tokens=num_tokens),
        "DP deep, position": DynamicPromptConfig(num_tokens=num_tokens, where="deep", factors=("position",)),
        "DP deep, full": DynamicPromptConfig(num_tokens=num_tokens, where="deep", factors=full),
        "prompt tuning (fixed)": PromptTuningConfig(num_tokens=num_tokens),
        "DP input, position": DynamicPromptConfig(num_tokens=num_tokens, where="input", factors=("position",)),
        "DP input, full": DynamicPromptConfig(num_tokens=num_tokens, where="input", factors=full),
    }



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--tasks", nargs="+", default=["cb", "rte", "copa", "wic", "boolq"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=None, help="a step budget for every task (overrides epochs)")
    parser.add_argument("--evaluations", type=int, default=None,
                        help="dev evaluations per run, evenly spaced (with --max-steps; default: once per epoch)")
    parser.add_argument("--dev-limit", type=int, default=None, help="evaluate on the first N dev items")
    parser.add_argument("--num-tokens", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=None, help="names from the table (default: all)")
    parser.add_argument("--output", default=None, help="markdown file to write")
    args = parser.parse_args()
    backbone = load_backbone(args.backbone)
    chosen = {name: config for name, config in variants(args.num_tokens).items()
              if args.variants is None or name in args.variants}
    scores: dict[tuple[str, str], list[float]] = {}
    notes = []
    majority: dict[str, float] = {}
    eval_every = -(-args.max_steps // args.evaluations) if args.max_steps and args.evaluations else None
    budget = f"{args.max_steps} steps" if args.max_steps else f"{args.epochs:g} epochs"
    for task in args.tasks:
        fewglue = False
        try:
            data = load_task_data(TrainConfig(task=task, data_dir=args.data_dir, dev_limit=args.dev_limit))
        except DataError:
            data = load_task_data(TrainConfig(task=task, data_dir=args.data_dir, dev_limit=args.dev_limit,
                                              fewglue=True))
            fewglue = True
            notes.append(f"{task}: trained on FewGLUE (32 examples); no full train split available")
        if args.dev_limit and len(data[1]) == args.dev_limit:
            notes.append(f"{task}: evaluated on the first {args.dev_limit} dev items")
        for name, method in chosen.items():
            for seed in args.seeds:
                config = TrainConfig(task=task, prompt=method, backbone=args.backbone, data_dir=args.data_dir,
                                     fewglue=fewglue, epochs=args.epochs, seed=seed, max_steps=args.max_steps,
                                     eval_every=eval_every)
                result = run(config, backbone=backbone, data=data)
                scores.setdefault((task, name), []).append(result.best_metrics["score"])
                majority[task] = result.majority_baseline
                print(f"{task} | {name} | seed {seed} | {result.best_metrics['score']:.4f}", file=sys.stderr,
                      flush=True)
    lines = [f"Command: `python -m benchmarks.dp_results {shlex.join(sys.argv[1:])}`", "",
             f"Backbone {args.backbone}, {args.num_tokens} prompt tokens, {budget} of batch 16, seeds "
             f"{args.seeds}; dev score (CB: mean of accuracy and macro-F1; others: accuracy), best of the run's dev evaluations.", ""]
    lines += ["| task | majority score | " + " | ".join(chosen) + " |", "|---" * (len(chosen) + 2) + "|"]
    for task in args.tasks:
        cells = []
        for name in chosen:
            values = scores[(task, name)]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        lines.append(f"| {task} | {majority[task]:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "DP − its fixed counterpart (paired over seeds, 95 % t interval):", "",
              "| task | variant | DP − fixed |", "|---|---|---|"]
    for task in args.tasks:
        for name in chosen:
            if not name.startswith("DP"):
                continue
            fixed = "P-tuning v2 (fixed)" if "deep" in name else "prompt tuning (fixed)"
            if (task, fixed) in scores:
                differences = [d - f for d, f in zip(scores[(task, name)], scores[(task, fixed)])]
                lines.append(f"| {task} | {name} | {interval(differences)} |")
    lines += [""] + [f"- {note}" for note in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
