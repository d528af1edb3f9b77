"""Fine-tuning, prompt tuning, P-tuning v2 and Dynamic Prompting on SuperGLUE, selected without looking at dev.

    python -m benchmarks.dp_results --data-dir ../shared/superglue --output docs/results.md

Every run keeps a seeded 10 % of its training items out (at least 32, at most ``--holdout-max``; few-shot sets: 8),
evaluates on them every ``--eval-every`` steps, keeps the best checkpoint there and stops after ``--patience``
evaluations without improvement or at ``--max-epochs`` (per task, ``--max-epochs-for task=N``) or ``--cap-s``
seconds. Dev is scored once, for that checkpoint; it is also scored at every evaluation (never to select), so the
same runs give a second table: what keeping the best dev evaluation, as the reference implementations do, would
have reported. Same seeds, batch and prompt length for every method. DP uses the settings of the ready-trained
prompts (docs/dp_learning.md).

Finished runs are appended to ``--results`` (one JSON line each) and skipped on a rerun, so the grid can run in the
background over several sittings; the most informative cells come first (CB, COPA, RTE, WiC; P-tuning v2 and its
DP before the rest). ``--estimate`` prints the grid's cost from a few timed steps and trains nothing.
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

import torch

from benchmarks.common import interval
from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.config import TrainConfig
from dp_core.dynamic import READY_TRAINED, DynamicPromptConfig
from dp_core.methods import method_config
from dp_core.metrics import paired_difference_interval
from dp_core.model import HeadConfig
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import DataError, get_task
from dp_core.train import load_task_data, run

DP = {"factors": ("position", "length", "pool"), **READY_TRAINED}
TASKS = ["cb", "copa", "rte", "wic", "wsc", "multirc", "boolq"]


def encoder_variants(num_tokens: int) -> dict[str, tuple]:
    """name -> (method config, prompt learning rate, head); in the order the grid runs them."""
    return {
        "P-tuning v2": (PTuningV2Config(num_tokens=num_tokens), 1e-2, "linear"),
        "DP deep": (DynamicPromptConfig(num_tokens=num_tokens, where="deep", **DP), 1e-2, "linear"),
        "prompt tuning": (PromptTuningConfig(num_tokens=num_tokens), 1e-2, "linear"),
        "DP input": (DynamicPromptConfig(num_tokens=num_tokens, where="input", **DP), 1e-2, "linear"),
        "fine-tuning": (method_config("finetune"), 2e-5, "linear"),
    }


def decoder_variants(num_tokens: int) -> dict[str, tuple]:
    """A causal decoder: where an input-level prompt goes decides what it can read. Fixed prefix and suffix, DP's
    place chosen once per task and per instance; with a linear head on the last token and with the verbalizer."""
    place = {**READY_TRAINED, "factors": ("position",), "where": "input", "num_tokens": num_tokens}
    variants = {}
    for head in ("linear", "verbalizer"):
        variants |= {
            f"prefix · {head}": (PromptTuningConfig(num_tokens=num_tokens), 1e-2, head),
            f"suffix · {head}": (PromptTuningConfig(num_tokens=num_tokens, place="after"), 1e-2, head),
            f"DP task · {head}": (DynamicPromptConfig(level="task", **place), 1e-2, head),
            f"DP instance · {head}": (DynamicPromptConfig(level="instance", **place), 1e-2, head),
        }
    return variants


GRIDS = {"encoder": encoder_variants, "decoder": decoder_variants}
TITLES = {"encoder": "Fine-tuning, prompt tuning, P-tuning v2 and Dynamic Prompting on the default encoder",
          "decoder": "Where the prompt goes in a causal decoder: prefix, suffix and DP's place, two heads"}
# What each grid sets side by side: (method, the one it is measured against).
COMPARISONS = {
    "encoder": [("DP input", "prompt tuning"), ("DP deep", "P-tuning v2"), ("P-tuning v2", "prompt tuning")],
    "decoder": [(f"{dp} · {head}", f"{fixed} · {head}") for head in ("linear", "verbalizer")
                for dp, fixed in (("DP instance", "prefix"), ("DP instance", "suffix"), ("DP task", "prefix"))]
               + [(f"{place} · verbalizer", f"{place} · linear") for place in ("prefix", "suffix")],
}


def task_data(task: str, args) -> tuple[tuple, bool]:
    """The task's splits, and whether its training set is FewGLUE's 32 items (``--fewglue``, or offline BoolQ)."""
    config = TrainConfig(task=task, data_dir=args.data_dir, dev_limit=args.dev_limit, fewglue=args.fewglue)
    try:
        return load_task_data(config), args.fewglue
    except DataError:  # offline BoolQ: FewGLUE's 32 examples
        return load_task_data(replace(config, fewglue=True)), True


def per_task(pairs: list[str], task: str, default: float) -> float:
    """A task's value from ``TASK=VALUE`` options (``--max-epochs-for``, ``--eval-every-for``), else the default."""
    return float(dict(pair.split("=") for pair in pairs).get(task, default))


def max_epochs(task: str, args) -> float:
    return per_task(args.max_epochs_for, task, args.max_epochs)


def eval_every(task: str, args) -> int:
    return int(per_task(args.eval_every_for, task, args.eval_every))


def config_for(task: str, method, lr: float, head: str, seed: int, args, fewglue: bool,
               max_steps: int | None = None) -> TrainConfig:
    return TrainConfig(task=task, prompt=method, head=HeadConfig(kind=head), backbone=args.backbone,
                       data_dir=args.data_dir, fewglue=fewglue, epochs=max_epochs(task, args), max_steps=max_steps,
                       time_budget_s=args.cap_s, seed=seed, lr=lr, lr_head=1e-2, eval_every=eval_every(task, args),
                       select_on="holdout", holdout_max=args.holdout_max, patience=args.patience, track_dev=True,
                       counterfactuals="none", max_length=256 if task == "multirc" else 128)


def budget(task: str, args) -> dict:
    """What a run's result depends on besides task, method and seed: a rerun with another budget trains anew."""
    return {"max_epochs": max_epochs(task, args), "cap_s": args.cap_s, "eval_every": eval_every(task, args),
            "patience": args.patience, "holdout_max": args.holdout_max, "dev_limit": args.dev_limit,
            "backbone": args.backbone, "num_tokens": args.num_tokens, "grid": args.grid,
            **({"fewglue": True} if args.fewglue else {})}


def flattened_at(curve: list[list[float]], tolerance: float = 0.01) -> float:
    """The first epoch after which the held-out score never rose more than ``tolerance`` above its best so far."""
    best_so_far = [max(score for _, score, _ in curve[: index + 1]) for index in range(len(curve))]
    for index, (epoch, _, _) in enumerate(curve):
        if all(score <= best_so_far[index] + tolerance for _, score, _ in curve[index + 1:]):
            return epoch
    return curve[-1][0]


def estimate(args, backbone, chosen: dict) -> None:
    """Seconds per step of each cell from a few steps, times the steps an epoch budget allows (an upper bound:
    patience usually stops runs earlier), plus nothing for evaluations."""
    total = 0.0
    for task in args.tasks:
        data, fewglue = task_data(task, args)
        for name, (method, lr, head) in chosen.items():
            started = time.perf_counter()
            result = run(config_for(task, method, lr, head, 0, args, fewglue, max_steps=args.estimate_steps),
                         backbone=backbone, data=data)
            per_step = (time.perf_counter() - started) / args.estimate_steps
            steps = -(-result.train_size // 16) * max_epochs(task, args)
            seconds = min(per_step * steps, args.cap_s or float("inf")) * len(args.seeds)
            total += seconds
            print(f"{task} | {name}: {per_step:.2f} s per step (with set-up), {steps:.0f} steps at most, "
                  f"{seconds / 60:.0f} min for {len(args.seeds)} seeds", flush=True)
    print(f"whole grid, at most: {total / 3600:.1f} h")


def device_name(device: torch.device) -> str:
    """Said beside each figure: a GPU by its name, a CPU by its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def seeds_held(records: list[dict], tasks: list[str]) -> str:
    """The seeds the tables hold, per task where tasks differ: a grid extended to more seeds on some tasks keeps
    their earlier runs, so the table can hold 5 seeds on one task and 3 on another."""
    groups: dict[tuple[int, ...], list[str]] = {}  # the seeds held -> the tasks that hold them
    for task in tasks:
        held = tuple(sorted({r["seed"] for r in records if r["task"] == task}))
        if held:
            groups.setdefault(held, []).append(task)
    if len(groups) <= 1:
        return f"seeds {list(next(iter(groups), ()))}"
    return "seeds " + "; ".join(f"{list(held)} on {', '.join(on)}" for held, on in groups.items())


def report(records: list[dict], tasks: list[str], names: list[str], command: str, args) -> str:
    cells: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        cells.setdefault((record["task"], record["variant"]), []).append(record)
    dev = f"first {args.dev_limit} dev items" if args.dev_limit else "dev"
    selection = ("Trained on FewGLUE's 32 items per task (the same for every seed), selected on 8 of them held out, "
                 if args.fewglue else "Selected on held-out training items, ")
    lines = [f"Command: `{command}`", "",
             f"Backbone {args.backbone}, {args.num_tokens} prompt tokens, batch 16, {seeds_held(records, tasks)}. "
             f"{selection}"
             f"{dev} scored once; at most {args.max_epochs:g} epochs "
             f"({', '.join(args.max_epochs_for) or 'every task'}), patience {args.patience} evaluations every "
             f"{args.eval_every} steps ({', '.join(args.eval_every_for) or 'every task'}), capped at {args.cap_s:g} s "
             f"a run. Ran on {', '.join(sorted({r.get('device', 'CPU') for r in records})) or '-'}.", "",
             "| task | majority | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    finished = {(r["task"], r["variant"], r["seed"]) for r in records}
    if any((task, name, seed) not in finished for task in tasks for name in names for seed in args.seeds):
        lines[2:2] = ["**Partial: the grid is still running.** The number of finished runs is in brackets in each "
                      "cell; empty cells have none yet.", ""]

    def mean_std(values: list[float]) -> str:
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"

    for task in tasks:
        row = [mean_std([r["dev_score"] for r in cells[(task, name)]]) + f" ({len(cells[(task, name)])})"
               if (task, name) in cells else "" for name in names]
        majority = next((r["majority"] for r in records if r["task"] == task), None)
        if majority is not None:
            lines.append(f"| {task} | {majority:.3f} | " + " | ".join(row) + " |")
    pairs = [(a, b) for a, b in COMPARISONS[args.grid] if a in names and b in names]
    gap_names = [name for name in ("P-tuning v2", "DP input", "DP deep") if name in names] \
        if {"prompt tuning", "fine-tuning"} <= set(names) else []
    if pairs or gap_names:
        lines += comparisons(cells, tasks, names, pairs, gap_names)
    if pairs:
        lines += item_intervals(cells, tasks, pairs, args)
    lines += ["", "The same runs had they kept their best **dev** evaluation (as the references report): the dev "
              "score that selection would show, and how much it exceeds the held-out selection's:", "",
              "| task | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for task in tasks:
        row = []
        for name in names:
            runs = cells.get((task, name), [])
            if runs:
                inflation = statistics.mean(r["dev_selected"] - r["dev_score"] for r in runs)
                row.append(f"{statistics.mean(r['dev_selected'] for r in runs):.3f} (+{inflation:.3f})")
            else:
                row.append("")
        if any(row):
            lines.append(f"| {task} | " + " | ".join(row) + " |")
    lines += place_choices(cells, tasks, names, args.num_tokens)
    if args.curves:
        lines += curves(records, tasks)
    reference = names[0]  # P-tuning v2 in the encoder grid, the linear prefix in the decoder grid
    lines += ["", f"Budgets: how runs ended, where their kept checkpoint was, and the epoch after which {reference}'s "
              "held-out score rose no more than 0.01 (median over seeds; the maximum is set above it so that the "
              "fixed method has converged):", "",
              "| task | max epochs | stopped by patience / epoch cap / time cap | kept checkpoint, median epoch | "
              f"{reference} flattened at epoch |", "|---|---|---|---|---|"]
    for task in tasks:
        runs = [r for r in records if r["task"] == task]
        if not runs:
            continue
        ended = [sum(r["stopped"] == reason for r in runs) for reason in ("patience", "finished", "time budget")]
        kept = statistics.median(r["best_epoch"] for r in runs)
        fixed = [flattened_at(r["curve"]) for r in runs if r["variant"] == reference]
        lines.append(f"| {task} | {runs[0]['budget']['max_epochs']:g} | {' / '.join(map(str, ended))} | {kept:.1f} | "
                     + (f"{statistics.median(fixed):.1f}" if fixed else "") + " |")
    return "\n".join(lines) + "\n"


def comparisons(cells: dict, tasks: list[str], names: list[str], pairs: list[tuple[str, str]],
                gap_names: list[str]) -> list[str]:
    """Each method against its counterpart, paired over seeds; the share of the prompt-tuning-to-fine-tuning gap."""
    lines = ["", "Each method against its counterpart (paired over the seeds both have, in brackets; mean and 95 % t "
             "interval)"
             + (", and the share of the gap from prompt tuning to fine-tuning each method closes (mean scores)"
                if gap_names else "") + ":", "",
             "| task | " + " | ".join(f"{a} − {b}" for a, b in pairs)
             + "".join(f" | gap closed: {name}" for name in gap_names) + " |",
             "|---" * (len(pairs) + len(gap_names) + 1) + "|"]

    def by_seed(task: str, name: str) -> dict[int, float]:
        return {r["seed"]: r["dev_score"] for r in cells.get((task, name), [])}

    for task in tasks:
        differences = []
        for a_name, b_name in pairs:
            a, b = by_seed(task, a_name), by_seed(task, b_name)
            seeds = sorted(set(a) & set(b))
            differences.append(f"{interval([a[s] - b[s] for s in seeds])} ({len(seeds)})" if seeds else "")
        means = {name: statistics.mean(by_seed(task, name).values()) for name in names if by_seed(task, name)}
        gap = [gap_closed(means, name) for name in gap_names]
        if means:
            lines.append(f"| {task} | " + " | ".join(differences + gap) + " |")
    return lines


def item_intervals(cells: dict, tasks: list[str], pairs: list[tuple[str, str]], args) -> list[str]:
    """The same differences with the dev items' noise: a paired bootstrap over items of the mean over seeds, from
    the runs that kept their dev predictions."""
    rows = []
    for task in tasks:
        row, dev, spec = [], None, get_task(task)
        for a_name, b_name in pairs:
            a, b = ({r["seed"]: r["dev_predictions"] for r in cells.get((task, name), []) if r.get("dev_predictions")}
                    for name in (a_name, b_name))
            seeds = sorted(set(a) & set(b))
            if not seeds:
                row.append("")
                continue
            dev = dev or task_data(task, args)[0][1]
            low, high = paired_difference_interval(
                spec.metrics, [list(map(int, a[seed])) for seed in seeds], [list(map(int, b[seed])) for seed in seeds],
                [example.label for example in dev], [example.group for example in dev], spec.num_labels)
            row.append(f"[{low:+.3f}, {high:+.3f}] ({len(seeds)})")
        if any(row):
            rows.append(f"| {task} | " + " | ".join(row) + " |")
    if not rows:
        return []
    return ["", "The same differences over the dev items: a 95 % paired bootstrap interval of the mean over seeds, "
            "every run scored on the same resampled items (whole MultiRC questions), seeds in brackets. It holds the "
            "dev set's own sampling noise, which the interval over seeds leaves out, but takes the seeds' runs as "
            "they are, so it is narrow where few seeds disagree: a difference stands only where both intervals leave "
            "0. Only runs that kept their dev predictions (recorded since 2026-11-25) count:", "",
            "| task | " + " | ".join(f"{a} − {b}" for a, b in pairs) + " |", "|---" * (len(pairs) + 1) + "|", *rows]


def gap_closed(means: dict[str, float], name: str, least: float = 0.02) -> str:
    """The share of the prompt-tuning-to-fine-tuning gap a method closes; said in words where fine-tuning does not
    beat prompt tuning by ``least`` (a share of a gap that small is noise over noise)."""
    if not {"prompt tuning", "fine-tuning", name} <= set(means):
        return ""
    gap = means["fine-tuning"] - means["prompt tuning"]
    if gap < least:
        return f"no gap (fine-tuning − prompt tuning {gap:+.3f})"
    return f"{(means[name] - means['prompt tuning']) / gap:.0%}"


def layout_counts(choices: dict) -> list[int] | None:
    """Rows given each number of tokens after the input. A DP that also chooses the length counts layouts (every
    place past its length is one: all its tokens after); runs recorded before ``layout_counts`` existed hold places
    only, which are not tokens after the input there: None."""
    if "length" not in choices:
        return choices["position"]["counts"]
    return choices["position"].get("layout_counts")


def place_choices(cells: dict, tasks: list[str], names: list[str], num_tokens: int) -> list[str]:
    """Where DP put the prompt on dev, per DP variant, from the runs that recorded their choices: in a causal decoder
    only prompt tokens after the input can read it. What the place changes (counterfactuals: a dev pass per
    candidate) is shown only where the runs computed it."""
    rows, places_only = [], False
    for task in tasks:
        for name in names:
            runs = [r for r in cells.get((task, name), []) if (r.get("choices") or {}).get("position")]
            if not runs:
                continue
            place = [r["choices"]["position"] for r in runs]
            layouts = [counts for r in runs if (counts := layout_counts(r["choices"]))]
            places_only |= len(layouts) < len(runs)
            after = [sum(tokens * n for tokens, n in enumerate(counts)) / max(1, sum(counts)) for counts in layouts]
            common = [max(range(len(counts)), key=counts.__getitem__) for counts in layouts]
            merged = [p for p in place if p.get("layout_commitment") is not None]
            commitment = (f"{statistics.mean(p['layout_commitment'] for p in merged):.2f} (no preference "
                          f"{statistics.mean(p['layout_no_preference'] for p in merged):.2f})"
                          if len(merged) == len(place) else f"{statistics.mean(p['commitment'] for p in place):.2f}")
            changes = [p["changes_prediction"] for p in place if p.get("changes_prediction") is not None]
            margins = [p["own_score"] - p["single_scores"][r["holdout_choices"]["position"]["best_single"]]
                       for r, p in zip(runs, place) if p.get("single_scores")
                       and (r.get("holdout_choices") or {}).get("position", {}).get("best_single") is not None]
            rows.append([task, name, f"{statistics.mean(after):.1f}" if after else "–",
                         " / ".join(f"{tokens} ({counts[tokens] / max(1, sum(counts)):.0%})"
                                    for tokens, counts in zip(common, layouts)) or "–",
                         commitment, f"{statistics.mean(changes):.0%}" if changes else "",
                         f"{statistics.mean(margins):+.3f}" if margins else "", str(len(runs))])
    if not rows:
        return []
    columns = ["task", "variant", "after", "most common", "commitment", "changes", "own − single", "runs"]
    counterfactual = any(row[5] or row[6] for row in rows)
    if not counterfactual:  # no dev pass per candidate was made: drop the two empty columns
        columns, rows = columns[:5] + columns[7:], [row[:5] + row[7:] for row in rows]
    return ["", "Where DP put the prompt on dev (mean over the runs that recorded their choices): *after*, how many "
            f"of its {num_tokens} tokens went after the input on average (where DP also chooses the length, every "
            "place past it is one layout, all its tokens after); *most common*, each run's most common number of "
            "tokens after the input and the share of items given it; *commitment*, the median probability of DP's "
            f"top place (uniform: 1/{num_tokens + 1} = {1 / (num_tokens + 1):.2f}) or, where DP also chooses the "
            "length, of its top layout beside what a choice network with no preference gives there"
            + ("; runs recorded before layouts were counted kept places only, so they count in *commitment* and "
               "*runs* only" if places_only else "")
            + ("; *changes*, the share of dev items whose prediction depends on the place; *own − single*, DP's own "
               "places against the single place that scored best on the held-out training items, both on dev:"
               if counterfactual else "; what the place changes is not computed here (a dev pass per candidate):"),
            "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def curves(records: list[dict], tasks: list[str]) -> list[str]:
    """Held-out (and dev) score at every evaluation of the first run of each task: what the budgets stand on."""
    lines = ["", "Held-out / dev score at each evaluation (epoch: held-out / dev), first run of each task:", ""]
    for task in tasks:
        run = next((r for r in records if r["task"] == task), None)
        if run is not None:
            points = " · ".join(f"{epoch:.1f}: {held:.2f} / {dev:.2f}" for epoch, held, dev in run["curve"])
            lines.append(f"- **{task}** ({run['variant']}, seed {run['seed']}): {points}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data-dir", default=None)
    add("--backbone", default=DEFAULT_BACKBONE)
    add("--tasks", nargs="+", default=TASKS)
    add("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add("--grid", default="encoder", choices=list(GRIDS),
        help="encoder: fine-tuning, prompt tuning, P-tuning v2, DP input/deep; decoder: prefix, suffix, task- and "
             "instance-level DP, each with the linear and the verbalizer head")
    add("--variants", nargs="+", default=None, help="names from the table (default: all)")
    add("--num-tokens", type=int, default=16)
    add("--max-epochs", type=float, default=10.0)
    add("--max-epochs-for", nargs="*", default=[], metavar="TASK=EPOCHS", help="per-task maxima, e.g. rte=3 wic=2")
    add("--eval-every", type=int, default=50)
    add("--eval-every-for", nargs="*", default=[], metavar="TASK=STEPS", help="per-task cadence, e.g. cb=14")
    add("--patience", type=int, default=5)
    add("--holdout-max", type=int, default=200)
    add("--dev-limit", type=int, default=None)
    add("--fewglue", action="store_true",
        help="train on FewGLUE's 32 items per task (8 held out), the few-shot setting; affordable on CPU for a decoder")
    add("--cap-s", type=float, default=600.0, help="seconds a run may train at most (on 2 CPU cores)")
    add("--results", default="benchmarks/results/dp_results.jsonl", help="JSON lines, appended")
    add("--output", default=None, help="markdown file whose section (--section, default: the grid's) is written")
    add("--section", default=None, help="the name of the section to write (another run of the same grid)")
    add("--title", default=None, help="the section's title")
    add("--curves", action="store_true", help="also list each task's first run's scores at every evaluation")
    add("--estimate", action="store_true", help="time a few steps per cell and print the grid's cost")
    add("--report-only", action="store_true", help="write the tables from the runs so far; train nothing")
    add("--estimate-steps", type=int, default=3)
    args = parser.parse_args()
    chosen = {name: value for name, value in GRIDS[args.grid](args.num_tokens).items()
              if args.variants is None or name in args.variants}
    if args.estimate:
        estimate(args, load_backbone(args.backbone), chosen)
        return
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] \
        if results.exists() else []
    records = [r for r in records if r.get("budget") == budget(r["task"], args)]
    done = {(r["task"], r["variant"], r["seed"]) for r in records}
    backbone = None
    for task in args.tasks:
        if args.report_only or all((task, name, seed) in done for name in chosen for seed in args.seeds):
            continue
        data, fewglue = task_data(task, args)
        backbone = backbone or load_backbone(args.backbone)  # only when something is left to train
        for seed in args.seeds:
            for name, (method, lr, head) in chosen.items():
                if (task, name, seed) in done:
                    continue
                started = time.perf_counter()
                result = run(config_for(task, method, lr, head, seed, args, fewglue), backbone=backbone, data=data)
                record = {"task": task, "variant": name, "seed": seed, "dev_score": result.dev_metrics["score"],
                          "dev_selected": result.dev_selected_metrics["score"],
                          "holdout_score": result.best_metrics["score"], "best_step": result.best_step,
                          "best_epoch": next(entry["epoch"] for entry in result.history
                                             if entry["step"] == result.best_step),
                          "steps": max(entry["step"] for entry in result.history), "stopped": result.stopped_because,
                          "majority": result.majority_baseline, "train_items": result.train_size,
                          "fewglue": fewglue, "seconds": round(time.perf_counter() - started, 1),
                          "config": method.to_dict(), "budget": budget(task, args),
                          "device": device_name(backbone.device), "precision": result.mixed_precision,
                          "dev_predictions": "".join(map(str, result.dev_predictions or [])),
                          "choices": result.choices, "holdout_choices": result.holdout_choices,
                          "curve": [[round(entry["epoch"], 3), entry["score"], entry["dev"]["score"]]
                                    for entry in result.history if "score" in entry]}
                with results.open("a") as stream:
                    stream.write(json.dumps(record) + "\n")
                records.append(record)
                print(f"{task} | {name} | seed {seed} | dev {record['dev_score']:.4f} (dev-selected "
                      f"{record['dev_selected']:.4f}) | {record['stopped']} at step {record['steps']}",
                      file=sys.stderr, flush=True)
    command = shlex.join(argument for argument in sys.argv[1:] if argument != "--report-only")
    text = report([r for r in records if r["task"] in args.tasks and r["variant"] in chosen], args.tasks,
                  list(chosen), f"python -m benchmarks.dp_results {command}", args)
    print(text)
    if args.output:
        title = args.title or TITLES[args.grid]
        write_section(Path(args.output), args.section or args.grid, f"## {title}\n\n{text}")


def write_section(path: Path, section: str, text: str) -> None:
    """Each grid owns one marked section of the file: a rerun replaces it and keeps the rest (the reading)."""
    start, end = f"<!-- {section}: written by benchmarks.dp_results -->", f"<!-- end of {section} -->"
    section = f"{start}\n{text}{end}\n"
    current = path.read_text() if path.exists() else "# Results\n\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        current = before + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + section
    path.write_text(current)


if __name__ == "__main__":
    main()
