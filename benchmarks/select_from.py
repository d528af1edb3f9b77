"""What keeping no checkpoint from the first part of a run (``--select-from``) does to each method, from full runs.

    python -m benchmarks.select_from --data-dir ../shared/superglue --tasks cb copa --seeds 0 1 2 \
        --folder runs/select_from --shares 0 0.25

Each run trains at the ready-trained prompts' settings (assets/checkpoints/train_all.sh: held-out selection on up to
200 items, the task's maximum of epochs and evaluation cadence, 900 s at most) but to its planned end, with dev
tracked at every evaluation (never to select): one folder per task, method and seed under ``--folder``, kept, so a
rerun trains only what is missing. A run's steps do not depend on when it would have stopped, so every selection
rule can be replayed on its evaluations: for each share, the checkpoint that patience 5 on the held-out score keeps
when evaluations before that share of the planned steps are not kept and do not count, as a ``--select-from`` run
would. Printed per task, method and share, the mean over seeds of the kept step, held-out score, dev score and the
place's commitment on the held-out items, and the dev score against share 0 (paired over seeds, 95 % t interval);
then each DP against its fixed counterpart on dev under each share.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
from pathlib import Path

from benchmarks.common import interval
from dp_core.cli import build_parser, config_from_args
from dp_core.cli import main as train_main
from dp_core.train import planned_steps

TASKS = ["cb", "copa", "rte", "wic", "wsc", "boolq"]
EPOCHS = {"cb": 15, "copa": 20, "rte": 6, "wic": 5, "wsc": 10, "boolq": 20}  # as assets/checkpoints/train_all.sh
EVERY = {"cb": 14, "copa": 23, "rte": 70, "wic": 100, "wsc": 32, "boolq": 6}
DP = ["--method", "dp", "--factors", "position,length,pool", "--feature-norm", "unit", "--choice-lr", "0.1"]
METHODS = {"ptv2": ["--method", "ptv2"], "prompt_tuning": ["--method", "prompt_tuning"],
           "dp_input": [*DP, "--where", "input"], "dp_deep": [*DP, "--where", "deep"]}
PAIRS = [("dp_input", "prompt_tuning"), ("dp_deep", "ptv2")]  # each DP and its fixed counterpart, as Compare pairs them
PATIENCE = 5


def train_full_run(task: str, method: str, seed: int, data_dir: str, folder: Path) -> dict:
    """The run's metrics.json, trained first if the folder has none."""
    if not (folder / "metrics.json").exists():
        arguments = ["--task", task, *METHODS[method], "--select-on", "holdout", "--holdout-max", "200",
                     "--dev-limit", "300", "--time-budget", "900", "--track-dev", "--data-dir", data_dir,
                     "--epochs", str(EPOCHS[task]), "--eval-every", str(EVERY[task]), "--seed", str(seed),
                     *(["--fewglue"] if task == "boolq" else []), "--output-dir", str(folder)]
        if train_main(arguments) != 0:
            raise SystemExit(f"{task} {method} seed {seed}: training failed")
    return json.loads((folder / "metrics.json").read_text())


def kept_evaluation(evaluations: list[dict], total_steps: int, share: float, patience: int = PATIENCE) -> dict:
    """The evaluation a run with ``--select-from share --patience patience`` keeps (train.py's rule, replayed on a
    run's evaluations; its last evaluation ended it)."""
    start, best, since = math.ceil(share * total_steps), None, 0
    for evaluation in evaluations:
        last = evaluation is evaluations[-1]
        if evaluation["step"] < start and not (last and best is None):
            continue
        since += 1
        if best is None or evaluation["score"] > best["score"]:
            best, since = evaluation, 0
        if since >= patience:
            break
    return best


def replay(metrics: dict, share: float) -> dict:
    evaluations = [entry for entry in metrics["history"] if "score" in entry]
    config = config_from_args(build_parser().parse_args(shlex.split(metrics["command"])[3:]))  # the run's own
    kept = kept_evaluation(evaluations, planned_steps(config, metrics["train_size"]), share)
    place = kept.get("choices", {}).get("position")
    return {"step": kept["step"], "holdout": kept["score"], "dev": kept["dev"]["score"],
            "commitment": place["commitment"] if place else None}


def table(runs: dict[tuple[str, str, int], dict], shares: list[float]) -> str:
    lines = ["| task | method | select from | seeds | kept at (steps) | held-out score | dev score | "
             "dev − share 0 | commitment (held-out) |", "|---|---|---|---|---|---|---|---|---|"]
    cells = sorted({(task, method) for task, method, _ in runs}, key=lambda c: (TASKS.index(c[0]), c[1]))
    for task, method in cells:
        seeds = sorted(seed for t, m, seed in runs if (t, m) == (task, method))
        base = [replay(runs[task, method, seed], 0.0) for seed in seeds]
        for share in shares:
            kept = [replay(runs[task, method, seed], share) for seed in seeds]
            commitments = [k["commitment"] for k in kept if k["commitment"] is not None]
            lines.append(
                f"| {task} | {method} | {share:g} | {len(seeds)} | {', '.join(str(k['step']) for k in kept)} | "
                f"{statistics.mean(k['holdout'] for k in kept):.3f} | {statistics.mean(k['dev'] for k in kept):.3f} | "
                f"{interval([k['dev'] - b['dev'] for k, b in zip(kept, base)]) if share else ''} | "
                f"{', '.join(f'{c:.2f}' for c in commitments)} |")
    return "\n".join(lines)


def pair_table(runs: dict[tuple[str, str, int], dict], shares: list[float]) -> str:
    """DP against its fixed counterpart on dev under each share: whether the rule tilts the comparison."""
    lines = ["| task | pair | select from | seeds | DP − fixed (dev) |", "|---|---|---|---|---|"]
    for task in sorted({task for task, _, _ in runs}, key=TASKS.index):
        for dp, fixed in PAIRS:
            seeds = sorted(seed for t, m, seed in runs if (t, m) == (task, dp) and (task, fixed, seed) in runs)
            for share in shares if seeds else []:
                differences = [replay(runs[task, dp, seed], share)["dev"] - replay(runs[task, fixed, seed], share)["dev"]
                               for seed in seeds]
                lines.append(f"| {task} | {dp} − {fixed} | {share:g} | {len(seeds)} | {interval(differences)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--tasks", nargs="+", default=["cb", "copa"], choices=TASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.25])
    parser.add_argument("--folder", type=Path, default=Path("runs/select_from"))
    args = parser.parse_args(argv)
    runs = {(task, method, seed): train_full_run(task, method, seed, args.data_dir,
                                                 args.folder / task / method / f"s{seed}")
            for task in args.tasks for method in args.methods for seed in args.seeds}
    print(table(runs, args.shares))
    print()
    print(pair_table(runs, args.shares))


if __name__ == "__main__":
    main()
