"""Do Dynamic Prompting's choices decide anything? Fixed prompts and DP variants with equal budgets and seeds; per
run, how committed DP's choices are and what they are worth against forcing one choice on every item.

    python -m benchmarks.dp_choices --data-dir ../shared/superglue --label after --output docs/dp_choices_after.md

Each run trains on the task's train split minus a seeded held-out 10 % (at least 32 items); the checkpoint is
selected on that held-out part, never on dev. Dev is scored once at the end, with DP's own choices, with every
single candidate forced on every item, and with the per-item oracle. "Best single" is the candidate that scores
best on the held-out training items, scored on dev: what one task-level choice picked without dev reaches.
The oracle is an upper bound that noise inflates on small dev sets (each item counts as right if any of the 17
positions predicts its gold label).

Finished runs are appended to ``--results`` (one JSON line each) and skipped on a rerun, so the grid can run in
the background over several sittings. ``--dp-set key=value`` changes every DP variant's config (e.g.
``--dp-set estimator=straight_through``); ``--label`` keeps such settings apart in the results file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import interval
from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.train import load_task_data, run

FIXED_OF = {"input": "prompt tuning (fixed)", "deep": "P-tuning v2 (fixed)"}
MATTERS = 0.1  # the place "changes predictions" on a task when it does for at least this share of dev items


def variants(num_tokens: int, dp_options: dict) -> dict:
    def dp(where: str, factors: tuple[str, ...]) -> DynamicPromptConfig:
        options = dict(dp_options)
        if "length" not in factors:  # drawing the place given the length needs a length
            options.pop("place_given_length", None)
        return DynamicPromptConfig(num_tokens=num_tokens, where=where, factors=factors, **options)

    dp_variants = {f"DP {where}, {' + '.join(factors)}": dp(where, factors)
                   for where in ("input", "deep") for factors in (("position",), ("position", "length"))}
    return {"prompt tuning (fixed)": PromptTuningConfig(num_tokens=num_tokens),
            "P-tuning v2 (fixed)": PTuningV2Config(num_tokens=num_tokens), **dp_variants}


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_one(task: str, name: str, method, seed: int, args, backbone, data) -> dict:
    config = TrainConfig(task=task, prompt=method, backbone=args.backbone, max_steps=args.max_steps,
                         eval_every=max(1, args.max_steps // args.evaluations), seed=seed, counterfactuals="end",
                         batch_size=args.batch_size, lr=args.lr, lr_head=args.lr, select_on="holdout",
                         holdout_max=args.holdout_max)
    started = time.perf_counter()
    result = run(config, backbone=backbone, data=data)  # selected on held-out training items; dev scored once
    record = {"task": task, "variant": name, "seed": seed, "label": args.label if name.startswith("DP") else "fixed",
              "settings": " ".join(args.dp_set) if name.startswith("DP") else "",
              "dev_score": result.dev_metrics["score"], "holdout_score": result.best_metrics["score"],
              "best_step": result.best_step, "majority": result.majority_baseline, "train_items": result.train_size,
              "holdout_items": result.holdout_size, "dev_items": result.dev_size,
              "seconds": round(time.perf_counter() - started, 1), "config": method.to_dict(), "factors": {}}
    for factor, dev in (result.choices or {}).items():
        picked = result.holdout_choices[factor]["best_single"]  # on the held-out training items
        record["factors"][factor] = {
            "commitment": dev["commitment"], "entropy": dev["entropy"], "collapse": dev["collapse"],
            "changes_prediction": dev["changes_prediction"], "own": dev["own_score"],
            "best_single_holdout_pick": picked, "best_single": dev["single_scores"][picked],
            "best_single_hindsight": max(dev["single_scores"]), "oracle": dev["oracle_score"],
            "counts": dev["counts"], "single_scores": dev["single_scores"],
        }
    return record


def untrained_commitment(record: dict) -> float:
    """The position commitment of a choice network with no preference, median over the run's dev rows: 1/(L+1)
    over the places, or, for a place drawn given the length, 1/(l+1) over the layouts of each row's length."""
    places = len(record["factors"]["position"]["counts"])
    if not record["config"].get("place_given_length"):
        return 1 / places
    counts = record["factors"]["length"]["counts"]  # dev rows given each length 1..L
    return statistics.median(1 / (length + 2) for length, count in enumerate(counts) for _ in range(count))


def key(record: dict) -> tuple:
    return record["label"], record["task"], record["variant"], record["seed"]


def over_seeds(position: list[dict]) -> list[str]:
    """A DP variant's place choices over its seeds, as the tables print them: mean commitment, mean collapse, and own
    places against the best single one (mean with its 95 % t interval)."""
    return [f"{statistics.mean(f['commitment'] for f in position):.2f}",
            f"{statistics.mean(f['collapse'] for f in position):.2f}",
            interval([f["own"] - f["best_single"] for f in position])]


def report(records: list[dict], label: str, tasks: list[str], command: str, args) -> str:
    fixed = {(r["task"], r["variant"], r["seed"]): r["dev_score"] for r in records if r["label"] == "fixed"}
    runs = [r for r in records if r["label"] in ("fixed", label) and r["task"] in tasks]
    lines = [f"Command: `{command}`", "",
             f"Backbone {args.backbone}, {args.num_tokens} prompt tokens, {args.max_steps} steps of batch "
             f"{args.batch_size}, lr {args.lr}; checkpoint selected on a held-out 10 % of train (32 to "
             f"{args.holdout_max} items); dev "
             f"(first {args.dev_limit} items) scored once. DP settings: `{label}`.", "",
             "| task | variant | seed | dev score | DP − fixed | factor | commitment | collapse | changes pred. | "
             "own | best single (held-out pick) | best single (hindsight) | oracle |", "|---" * 13 + "|"]
    for r in sorted(runs, key=lambda r: (tasks.index(r["task"]), r["variant"], r["seed"])):
        where = "input" if "input" in r["variant"] else "deep"
        base = fixed.get((r["task"], FIXED_OF[where], r["seed"]))
        delta = f"{r['dev_score'] - base:+.3f}" if r["variant"].startswith("DP") and base is not None else ""
        head = f"| {r['task']} | {r['variant']} | {r['seed']} | {r['dev_score']:.3f} | {delta} |"
        if not r["factors"]:
            lines.append(head + " | | | | | | | |")
        for factor, f in r["factors"].items():
            lines.append(f"{head} {factor} | {f['commitment']:.2f} | {f['collapse']:.2f} | "
                         f"{f['changes_prediction']:.2f} | {f['own']:.3f} | {f['best_single']:.3f} "
                         f"(p={f['best_single_holdout_pick']}) | {f['best_single_hindsight']:.3f} | {f['oracle']:.3f} |")
    with_length = any("length" in r["factors"] for r in runs)  # position + length variants: two more columns
    columns = ["task", "variant", "seeds", "dev score", "DP − fixed", "commitment (position; no preference)",
               "collapse", "changes pred.", "own − best single"] \
        + ["commitment (length)", "changes pred. (length)"] * with_length
    lines += ["", "Means over seeds (DP − fixed: paired 95 % t interval; own − best single: held-out pick):", "",
              "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    targets: dict[str, dict[str, list[bool]]] = {}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["variant"]), []).append(r)
    for (task, variant), group in sorted(groups.items(), key=lambda kv: (tasks.index(kv[0][0]), kv[0][1])):
        mean = statistics.mean(r["dev_score"] for r in group)
        cells = [task, variant, str(len(group)), f"{mean:.3f}"] + [""] * (len(columns) - 4)
        if variant.startswith("DP"):
            where = "input" if "input" in variant else "deep"
            pairs = [(r["dev_score"], fixed[(task, FIXED_OF[where], r["seed"])]) for r in group
                     if (task, FIXED_OF[where], r["seed"]) in fixed]
            cells[4] = interval([d - f for d, f in pairs]) if pairs else ""
            position = [r["factors"]["position"] for r in group]
            cells[5], cells[6], cells[8] = over_seeds(position)
            cells[5] += f" ({statistics.mean(untrained_commitment(r) for r in group):.2f})"
            changes = statistics.mean(f["changes_prediction"] for f in position)
            cells[7] = f"{changes:.2f}"
            lengths = [r["factors"]["length"] for r in group if "length" in r["factors"]]
            if lengths:
                cells[9] = f"{statistics.mean(f['commitment'] for f in lengths):.2f}"
                cells[10] = f"{statistics.mean(f['changes_prediction'] for f in lengths):.2f}"
            commitment = statistics.mean(f["commitment"] for f in position)
            own_gap = statistics.mean(f["own"] - f["best_single"] for f in position)
            record = targets.setdefault(variant, {"own >= best single": [], "committed where it matters": []})
            record["own >= best single"].append(own_gap >= 0)
            if changes >= MATTERS:
                record["committed where it matters"].append(commitment >= 0.5)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Targets (position, means over seeds): own choices >= the best single place picked on held-out "
              f"training items; median top-choice probability >= 0.5 on the tasks where the place changes >= "
              f"{MATTERS:.0%} of dev predictions.", "", "| variant | own >= best single | committed where it matters |",
              "|---|---|---|"]
    for variant, record in sorted(targets.items()):
        lines.append(f"| {variant} | " + " | ".join(f"{sum(hits)} of {len(hits)} tasks"
                                                     for hits in record.values()) + " |")
    return "\n".join(lines) + "\n"


def label_table(records: list[dict], labels: list[str]) -> str:
    """One line per DP run of the given labels (settings side by side), then one per label and task over its
    seeds; position factor, nothing is trained."""
    lines = ["| label | DP settings (changed from the defaults of the time) | task | variant | seed | commitment | "
             "collapse | changes pred. | own | best single (held-out pick) | oracle |", "|---" * 11 + "|"]
    for label in labels:
        for r in (r for r in records if r["label"] == label):
            f = r["factors"]["position"]
            lines.append(f"| {label} | {r.get('settings', '')} | {r['task']} | {r['variant']} | {r['seed']} | "
                         f"{f['commitment']:.2f} | {f['collapse']:.2f} | {f['changes_prediction']:.2f} | "
                         f"{f['own']:.3f} | {f['best_single']:.3f} | {f['oracle']:.3f} |")
    lines += ["", "Over the seeds of each label and task (means; own − best single with its 95 % t interval):", "",
              "| label | task | seeds | commitment | collapse | own − best single |", "|---" * 6 + "|"]
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        for task in dict.fromkeys(r["task"] for r in runs):
            position = [r["factors"]["position"] for r in runs if r["task"] == task]
            lines.append(f"| {label} | {task} | {len(position)} | " + " | ".join(over_seeds(position)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--tasks", nargs="+", default=["cb", "copa", "rte", "wic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--evaluations", type=int, default=3, help="held-out evaluations per run, evenly spaced")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2, help="prompt and head learning rate")
    parser.add_argument("--dev-limit", type=int, default=150, help="score on the first N dev items")
    parser.add_argument("--num-tokens", type=int, default=16)
    parser.add_argument("--holdout-max", type=int, default=100,
                        help="at most this many held-out training items (counterfactuals cost 17x an evaluation)")
    parser.add_argument("--variants", nargs="+", default=None, help="names from the table (default: all)")
    parser.add_argument("--dp-set", nargs="*", default=[], metavar="KEY=VALUE", help="DP config changes")
    parser.add_argument("--label", default="defaults", help="names these DP settings in the results file")
    parser.add_argument("--results", default="benchmarks/results/dp_choices.jsonl", help="JSON lines, appended")
    parser.add_argument("--output", default=None, help="markdown file to write")
    parser.add_argument("--compare-labels", nargs="+", default=None, metavar="LABEL",
                        help="print the runs of these labels side by side from --results (trains nothing)")
    args = parser.parse_args()
    if args.compare_labels:
        records = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
        print(label_table(records, args.compare_labels))
        return
    dp_options = {name: parse_value(value) for name, _, value in (item.partition("=") for item in args.dp_set)}
    chosen = {name: method for name, method in variants(args.num_tokens, dp_options).items()
              if args.variants is None or name in args.variants}
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
        if results.exists() else []
    done = {key(r) for r in records}
    backbone = None
    for task in args.tasks:  # the most informative comparisons first: each task's fixed runs, then its DP runs
        data = None
        for seed in args.seeds:
            for name, method in chosen.items():
                label = args.label if name.startswith("DP") else "fixed"
                if (label, task, name, seed) in done:
                    continue
                backbone = backbone or load_backbone(args.backbone)
                if data is None:
                    train_examples, dev_examples = load_task_data(TrainConfig(task=task, data_dir=args.data_dir))
                    data = (train_examples, dev_examples[: args.dev_limit])
                record = run_one(task, name, replace(method), seed, args, backbone, data)
                records.append(record)
                with results.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                summary = ", ".join(f"{factor} commit {f['commitment']:.2f} collapse {f['collapse']:.2f} own "
                                    f"{f['own']:.3f} single {f['best_single']:.3f} oracle {f['oracle']:.3f}"
                                    for factor, f in record["factors"].items())
                print(f"{task} | {name} | seed {seed} | dev {record['dev_score']:.3f} | {record['seconds']} s"
                      + (f" | {summary}" if summary else ""), file=sys.stderr, flush=True)
    command = "python -m benchmarks.dp_choices " + shlex.join(sys.argv[1:])
    text = report([r for r in records if r["variant"] in chosen], args.label, args.tasks, command, args)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
