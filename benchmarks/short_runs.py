"""What the Train tab's short runs reach, and what they cannot show.

    python -m benchmarks.short_runs --data-dir ../shared/superglue --tune
    python -m benchmarks.short_runs --data-dir ../shared/superglue --output assets/short_runs.json
    python -m benchmarks.short_runs --output assets/short_runs.json --refresh-converged

``--tune``: 60 s runs on CB, as the Train tab makes them (app.state.short_run), with each candidate learning rate
and evaluation cadence (and, row 0, the tab's earlier warm-up), for P-tuning v2 and deep DP; the kept checkpoint and
the score that ranks candidates are on held-out training items (never dev). Without it: every task, the Train tab's
defaults, its two default methods; the file written holds, per task and method, the best dev evaluation of the short
run (what the tab shows), the majority-class score, and the converged score of the results grid
(benchmarks/results/dp_results.jsonl) where it has finished (at least 3 seeds; the mean over all it holds), so the
tab can say what a short run can and cannot show. Timings are those of this machine.
``--refresh-converged`` re-reads only the grid's scores into the file, as the grid goes on.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

from app.state import FIXED, METHOD_CHOICES, SHORT_RUN, short_run
from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.tasks import TASKS
from dp_core.train import load_task_data, run

DEEP_DP = "DP deep: position + length + pool"
# The results grid's name for each of the Train tab's methods.
IN_GRID = {FIXED: "P-tuning v2", DEEP_DP: "DP deep"}
# The Train tab's runs before: its linear schedule planned over 1,000 epochs, so a short run never left the warm-up.
BEFORE = {"lr": 1e-2, "lr_head": 1e-2, "eval_every": 10, "warmup_ratio": 0.06}
CANDIDATES = [BEFORE] + [{"lr": lr, "lr_head": lr, "eval_every": every, "warmup_ratio": 0.0}
                         for lr in (3e-3, 1e-2, 3e-2) for every in (10, 25)]


def one_run(task: str, method: str, backbone, data, data_dir: str | None, budget_s: float, seed: int,
            select_on: str, **settings) -> dict:
    config = replace(short_run(task, backbone.name, budget_s, data_dir, seed=seed, **settings),
                     prompt=METHOD_CHOICES[method](), select_on=select_on)
    result = run(config, backbone=backbone, data=data)
    return {"score": result.best_metrics["score"], "dev": (result.dev_metrics or result.best_metrics)["score"],
            "majority": result.majority_baseline, "steps": max(entry["step"] for entry in result.history)}


def converged(results: Path, min_seeds: int = 3) -> dict[tuple[str, str], float]:
    """Mean held-out-selected dev score per (task, grid variant), for cells with at least ``min_seeds`` runs: a cell
    the grid has only begun is not yet its converged score."""
    scores: dict[tuple[str, str], list[float]] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            scores.setdefault((record["task"], record["variant"]), []).append(record["dev_score"])
    return {key: statistics.mean(values) for key, values in scores.items() if len(values) >= min_seeds}


def with_converged(record: dict, results: Path) -> dict:
    """The short runs in ``record`` with the grid's converged scores as they are now: written after the short runs,
    and (``--refresh-converged``) again as the grid goes on, between the timing-sensitive reruns of the runs."""
    grid = converged(results)
    for task, outcomes in record["tasks"].items():
        for method, outcome in outcomes.items():
            outcome["converged"] = grid.get((task, IN_GRID[method]))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="--tune: only these candidates (0: before)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--results", default="benchmarks/results/dp_results.jsonl")
    parser.add_argument("--output", default=None)
    parser.add_argument("--refresh-converged", action="store_true",
                        help="only update the converged scores in --output from --results; train nothing")
    args = parser.parse_args()
    if args.refresh_converged:
        if not args.output:
            parser.error("--refresh-converged needs --output (the file to update)")
        record = with_converged(json.loads(Path(args.output).read_text()), Path(args.results))
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
        return
    backbone = load_backbone(DEFAULT_BACKBONE)
    methods = [FIXED, DEEP_DP]
    if args.tune:
        data = load_task_data(short_run("cb", backbone.name, args.budget_s, args.data_dir))
        print(f"CB, {args.budget_s:g} s a run, seeds {args.seeds}; held-out score of the kept checkpoint "
              "(mean over seeds) and its dev score")
        print("| row | lr | evaluate every | warm-up share | "
              + " | ".join(f"{m}: held-out / dev / steps" for m in methods) + " |")
        print("|---|---|---|---|" + "---|" * len(methods))
        for row, candidate in enumerate(CANDIDATES):
            if args.rows is not None and row not in args.rows:
                continue
            cells = []
            for method in methods:
                runs = [one_run("cb", method, backbone, data, args.data_dir, args.budget_s, seed, "holdout",
                                **candidate)
                        for seed in args.seeds]
                cells.append(f"{statistics.mean(r['score'] for r in runs):.3f} / "
                             f"{statistics.mean(r['dev'] for r in runs):.3f} / "
                             f"{statistics.mean(r['steps'] for r in runs):.0f}")
            print(f"| {row} | {candidate['lr']:g} | {candidate['eval_every']} | {candidate['warmup_ratio']:g} of 1,000 "
                  "epochs | " + " | ".join(cells) + " |", flush=True)
        return
    record = {"budget_s": args.budget_s, "settings": SHORT_RUN, "tasks": {}}
    print(f"{args.budget_s:g} s a method, the Train tab's defaults {SHORT_RUN}; best dev evaluation (as the tab "
          "shows it), the majority class, and the results grid's converged score")
    for task in args.tasks:
        data = load_task_data(short_run(task, backbone.name, args.budget_s, args.data_dir))
        record["tasks"][task] = {}
        for method in methods:
            outcome = one_run(task, method, backbone, data, args.data_dir, args.budget_s, args.seeds[0], "dev")
            record["tasks"][task][method] = outcome
            print(f"{task} | {method} | short run {outcome['dev']:.3f} at {outcome['steps']} steps | majority "
                  f"{outcome['majority']:.3f}", flush=True)
    record = with_converged(record, Path(args.results))
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
