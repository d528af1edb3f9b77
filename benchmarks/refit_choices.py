"""What DP's second time scale (dp_core.refit) does to the ready-trained DP prompts, without retraining them.

    python -m benchmarks.refit_choices --data-dir ../shared/superglue --results benchmarks/results/refit_choices.jsonl

For each ready-trained DP checkpoint of the default backbone (``--checkpoints``: another folder of them), the
training run is rebuilt from its metrics.json command (same training items, same held-out items), its position and
length choices are refit to the frozen prompt's candidate losses, and the place is scored on dev as the
checkpoint's README scores it: commitment, share of predictions the place changes, own places against the single
place picked on the held-out items. One JSON line per checkpoint (a rerun skips those done); the table is printed
from all of them. Nothing is saved to the checkpoints: the shipped prompts are re-made by
assets/checkpoints/train_all.sh.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from dp_core.backbone import Backbone, load_backbone
from dp_core.choices import choice_statistics, predict_split
from dp_core.cli import build_parser, config_from_args
from dp_core.evaluation import refit_kept_choices, split_features
from dp_core.model import PromptClassifier
from dp_core.tasks import split_holdout
from dp_core.train import load_task_data

TASKS = ["cb", "copa", "rte", "wic", "wsc", "boolq", "multirc"]


def place_figures(model: PromptClassifier, split, features, held_out_pick: int | None = None) -> dict:
    """Commitment, changes and (with the held-out pick) own − single for the place, as the checkpoints' README."""
    predictions = predict_split(model, split, 64, features, ("position",))
    stats = choice_statistics("position", predictions.choice_probs["position"], model.task, split.labels,
                              split.groups, predictions.class_probs.argmax(-1).tolist(),
                              predictions.counterfactual["position"])
    figures = {"commitment": stats.commitment, "collapse": stats.collapse, "changes": stats.changes_prediction,
               "own": stats.own_score, "best_single": stats.best_single}
    if held_out_pick is not None:
        figures["own_minus_single"] = stats.own_score - stats.single_scores[held_out_pick]
    return figures


def refit_checkpoint(folder: Path, data_dir: str, backbones: dict[str, Backbone]) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    arguments = shlex.split(metrics["command"])[3:]  # after "python -m dp_core.train"
    arguments += ["--data-dir", data_dir]
    config = config_from_args(build_parser().parse_args(arguments))
    train_examples, dev_examples = load_task_data(config)
    train_examples, held_examples = split_holdout(train_examples, config.seed, config.holdout_max)
    if config.backbone not in backbones:
        backbones[config.backbone] = load_backbone(config.backbone)
    model = PromptClassifier.from_pretrained(folder, backbone=backbones[config.backbone]).eval()
    splits = {"holdout": model.encode_examples(held_examples), "dev": model.encode_examples(dev_examples)}
    features = {name: split_features(model, split) for name, split in splits.items()}
    before = {"holdout": metrics["holdout"]["score"], "dev": metrics["best"]["score"],
              **{key: metrics["choices"]["position"][key] for key in ("commitment", "collapse")},
              "changes": metrics["choices"]["position"]["changes_prediction"]}
    picked = metrics["holdout_choices"]["position"]["best_single"]
    before["own_minus_single"] = (metrics["choices"]["position"]["own_score"]
                                  - metrics["choices"]["position"]["single_scores"][picked])
    result, _ = refit_kept_choices(model, config, train_examples, splits["holdout"], features["holdout"])
    after = dict(before)  # not kept: the checkpoint as it was, already scored in its metrics.json
    if result.kept:
        held_out = place_figures(model, splits["holdout"], features["holdout"])
        after = place_figures(model, splits["dev"], features["dev"], held_out["best_single"])
        after["holdout"] = result.holdout_score[1]
        after["dev"] = after.pop("own")
    return {"task": metrics["task"], "method": folder.name, "refit": result.summary(), "before": before,
            "after": after}


def table(records: list[dict]) -> str:
    header = ("| task | method | kept (step) | held-out loss | held-out score | dev score | commitment | changes | "
              "own − single |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for record in sorted(records, key=lambda r: (TASKS.index(r["task"]), r["method"])):
        refit, before, after = record["refit"], record["before"], record["after"]
        lines.append(
            f"| {record['task']} | {record['method']} | {'yes' if refit['kept'] else 'no'} ({refit['best_step']}) | "
            f"{refit['holdout_loss'][0]:.3f} → {refit['holdout_loss'][1]:.3f} | "
            f"{before['holdout']:.3f} → {after['holdout']:.3f} | {before['dev']:.3f} → {after['dev']:.3f} | "
            f"{before['commitment']:.2f} → {after['commitment']:.2f} | {before['changes']:.0%} → "
            f"{after['changes']:.0%} | {before['own_minus_single']:+.3f} → {after['own_minus_single']:+.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--results", default="benchmarks/results/refit_choices.jsonl")
    parser.add_argument("--checkpoints", default="assets/checkpoints", help="folders <task>/<method> inside")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--methods", nargs="+", default=["dp_input", "dp_deep"])
    args = parser.parse_args()
    results = Path(args.results)
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(record["task"], record["method"]) for record in records}
    backbones: dict[str, Backbone] = {}
    for task in args.tasks:
        for method in args.methods:
            folder = Path(args.checkpoints) / task / method
            if (task, method) in done or not (folder / "metrics.json").exists():
                continue
            record = refit_checkpoint(folder, args.data_dir, backbones)
            print(json.dumps(record), flush=True)
            with results.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            records.append(record)
    print(table(records))


if __name__ == "__main__":
    main()
