"""How sure the ready-trained DPs are of their layout, once the places that give the same layout are merged.

    python -m benchmarks.equivalent_places --data-dir ../shared/superglue

DP chooses a place p in 0..L and a length l in 1..L. Only the first l slots are active and slots 0..p-1 go after
the input, so every p >= l puts all l tokens after it: for a row of length l there are l + 1 layouts, not L + 1.
The commitment of docs/dp_learning.md (the median top probability of the 17 places) splits a preferred "all after"
over the places that give it. This prints, per DP checkpoint (on dev, as the checkpoints' README scores it): the
chosen lengths, that commitment, the commitment over distinct layouts (``dp_core.choices.layout_probabilities``), what
an untrained choice network (uniform over the places) gives over distinct layouts (its "all after" holds every
place p >= l; a DP that draws the place given the length starts uniform over the l + 1 layouts), and the share of
rows whose drawn layout (the top place, as DP decides) is not their most probable layout, with the dev score of the
layouts drawn and of the most probable ones (every row's place forced to its most probable layout, its length and
pool prompt DP's own). Forward passes only; nothing is saved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dp_core.backbone import Backbone, load_backbone
from dp_core.choices import layout_commitment, layout_probabilities, predict_split, task_score
from dp_core.data import iterate_batches
from dp_core.evaluation import split_features
from dp_core.model import PromptClassifier
from dp_core.tasks import load_examples

TASKS = ["cb", "copa", "rte", "wic", "wsc", "boolq", "multirc"]


def layout_figures(position_probs: torch.Tensor, lengths: torch.Tensor, given_length: bool = False) -> dict:
    """The figures of one checkpoint from its rows' place distributions (rows, L + 1) and lengths (rows,);
    ``given_length``: the DP draws the place given the length, so a network with no preference is uniform over the
    l + 1 layouts rather than over the places."""
    layouts = layout_probabilities(position_probs, lengths)
    committed, untrained = layout_commitment(position_probs, lengths, given_length)
    drawn = torch.minimum(position_probs.argmax(-1), lengths)  # tokens after the input in the layout DP uses
    return {"length_median": float(lengths.float().quantile(0.5)),
            "length_range": [int(lengths.min()), int(lengths.max())],
            "commitment": float(position_probs.max(-1).values.quantile(0.5)),
            "layout_commitment": committed, "untrained_layout_commitment": untrained,
            "drawn_not_most_probable": float((drawn != layouts.argmax(-1)).float().mean())}


def checkpoint_figures(folder: Path, data_dir: str, backbones: dict[str, Backbone]) -> dict | None:
    """None for a DP that does not choose its place."""
    metrics = json.loads((folder / "metrics.json").read_text())
    if metrics["backbone"] not in backbones:
        backbones[metrics["backbone"]] = load_backbone(metrics["backbone"])
    model = PromptClassifier.from_pretrained(folder, backbone=backbones[metrics["backbone"]]).eval()
    dev = load_examples(metrics["task"], "val", data_dir)[: metrics["dev_size"]]
    split = model.encode_examples(dev)
    features = split_features(model, split)
    predictions = predict_split(model, split, 64, features)
    choices = predictions.choice_probs
    if "position" not in choices:
        return None
    slots = model.prompt.sizes["position"] - 1
    lengths = choices["length"].argmax(-1) + 1 if "length" in choices else torch.full((split.num_rows,), slots)
    most_probable = layout_probabilities(choices["position"], lengths).argmax(-1)  # place a: a tokens after
    own = predictions.class_probs.argmax(-1).tolist()
    return {"backbone": metrics["backbone"], "task": metrics["task"], "method": folder.name,
            **layout_figures(choices["position"], lengths, model.method.place_given_length),
            "dev_score": task_score(model.task, own, split.labels, split.groups),
            "dev_score_most_probable_layout": task_score(model.task, forced_predictions(model, split, features,
                                                                                       most_probable),
                                                         split.labels, split.groups)}


@torch.no_grad()
def forced_predictions(model: PromptClassifier, split, features: torch.Tensor | None,
                       places: torch.Tensor) -> list[int]:
    """Each item's predicted class with every row's place forced to ``places`` (rows,), its other choices DP's."""
    predicted = torch.zeros(len(split), dtype=torch.long)
    for batch in iterate_batches(split, 64, model.backbone.tokenizer.pad_token_id, shuffle=False):
        batch = batch.to(model.backbone.device)
        rows = batch.rows.cpu()
        logits = model(batch, None if features is None else features[batch.rows],
                       forced={"position": places[rows].to(batch.input_ids.device)})
        predicted[batch.items.cpu()] = logits.argmax(-1).cpu()
    return predicted.tolist()


def table(records: list[dict]) -> str:
    lines = ["| backbone | task | method | length (median, range) | commitment (17 places) | commitment (layouts) | "
             "untrained network (layouts) | drawn ≠ most probable layout | dev score: drawn | most probable layout |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        low, high = record["length_range"]
        lines.append(f"| {record['backbone']} | {record['task']} | {record['method']} | "
                     f"{record['length_median']:.0f} ({low}-{high}) | {record['commitment']:.2f} | "
                     f"{record['layout_commitment']:.2f} | {record['untrained_layout_commitment']:.2f} | "
                     f"{record['drawn_not_most_probable']:.0%} | {record['dev_score']:.3f} | "
                     f"{record['dev_score_most_probable_layout']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--checkpoints", default="assets/checkpoints",
                        help="folders <task>/<method> inside, another backbone's in <backbone>/<task>/<method>")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    args = parser.parse_args()
    root = Path(args.checkpoints)
    other_backbones = sorted(path for path in root.iterdir() if path.is_dir() and path.name not in TASKS)
    folders = [folder for backbone_root in [root, *other_backbones] for task in args.tasks
               for folder in sorted((backbone_root / task).glob("dp_*")) if (folder / "metrics.json").exists()]
    backbones: dict[str, Backbone] = {}
    records = []
    for folder in folders:
        record = checkpoint_figures(folder, args.data_dir, backbones)
        if record is not None:
            records.append(record)
            print(json.dumps(record), flush=True)
    print(table(records))


if __name__ == "__main__":
    main()
