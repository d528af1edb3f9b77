"""Everything the app shows about a trained prompt on a dev set, computed once and kept beside its checkpoint.

Per dev item: the class probabilities; for Dynamic Prompting also the probability of every candidate of each choice,
the layout it chose, and the class probabilities with each candidate forced (what moving the prompt would change).
``analyse`` computes it, ``DevAnalysis.save`` writes ``analysis.safetensors`` beside ``model.safetensors``, and
``load_analysis`` reads it back only when the same weights scored the same dev items.

    python -m dp_core.analysis assets/checkpoints/cb/dp_deep --data-dir ../shared/superglue
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .backbone import load_backbone
from .choices import SplitPredictions, chosen_factors, predict_split
from .data import EncodedSplit, iterate_batches
from .explain import counterfactuals
from .model import CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_PREFIX, PromptClassifier
from .tasks import DataError, Example, load_examples

ANALYSIS_FILE = "analysis.safetensors"
DEV_ITEMS = 300  # the first dev items analysed: BoolQ's 3,270 long passages would take hours on a CPU


@dataclass
class DevAnalysis:
    """One trained prompt on the first items of a dev set. Rows: one per item, two per COPA item (one per choice)."""

    class_probs: torch.Tensor  # (items, labels)
    input_lengths: torch.Tensor  # (rows,) the input's tokens, special tokens included
    tokens_after: torch.Tensor  # (rows,) active prompt tokens after the input (0 for a fixed prompt)
    active_length: torch.Tensor  # (rows,) active prompt tokens
    choice_probs: dict[str, torch.Tensor]  # DP: factor -> (rows, candidates)
    counterfactual: dict[str, torch.Tensor]  # DP: factor -> (first items, candidates, labels); empty until added
    weights: str  # fingerprint of the weights that made it
    examples: str  # fingerprint of the items it scored

    @property
    def num_items(self) -> int:
        return len(self.class_probs)

    @property
    def predictions(self) -> list[int]:
        return self.class_probs.argmax(-1).tolist()

    @property
    def counterfactual_items(self) -> int:
        """How many of the first items have every candidate tried (0 before ``add_counterfactuals``)."""
        return min((len(forced) for forced in self.counterfactual.values()), default=0)

    def split_predictions(self) -> SplitPredictions:
        """In the shape ``dp_core.choices.predictions_choice_statistics`` reads."""
        return SplitPredictions(self.class_probs, self.choice_probs, self.counterfactual, self.tokens_after,
                                self.active_length)

    def save(self, folder: str | Path) -> Path:
        tensors = {"class_probs": self.class_probs, "input_lengths": self.input_lengths,
                   "tokens_after": self.tokens_after, "active_length": self.active_length,
                   **{f"choice_probs.{factor}": probs for factor, probs in self.choice_probs.items()},
                   **{f"counterfactual.{factor}": forced for factor, forced in self.counterfactual.items()}}
        path = Path(folder) / ANALYSIS_FILE
        save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(path),
                  metadata={"weights": self.weights, "examples": self.examples})
        return path


def examples_fingerprint(examples: list[Example]) -> str:
    """Which items, in which order, with which labels: an analysis of other items is not read."""
    record = json.dumps([[example.pairs, example.label, example.group] for example in examples])
    return hashlib.sha256(record.encode()).hexdigest()[:16]


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """The trained weights (``PromptClassifier.trainable_state``, or a checkpoint's file): an analysis of an earlier
    checkpoint in the same folder is not read."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_analysis(folder: str | Path, model: PromptClassifier, examples: list[Example]) -> DevAnalysis | None:
    """The analysis kept beside a checkpoint, if it was made by ``model``'s weights on ``examples``; else None."""
    path = Path(folder) / ANALYSIS_FILE
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as stored:
        metadata = stored.metadata() or {}
        if metadata.get("weights") != weights_fingerprint(model.trainable_state()) or \
                metadata.get("examples") != examples_fingerprint(examples):
            return None
        tensors = {name: stored.get_tensor(name) for name in stored.keys()}

    def by_factor(prefix: str) -> dict[str, torch.Tensor]:  # in the model's order (the file sorts its names)
        return {factor: tensors[prefix + factor] for factor in chosen_factors(model) if prefix + factor in tensors}

    return DevAnalysis(tensors["class_probs"], tensors["input_lengths"], tensors["tokens_after"],
                       tensors["active_length"], by_factor("choice_probs."), by_factor("counterfactual."),
                       metadata["weights"], metadata["examples"])


def is_current(folder: str | Path, examples: list[Example]) -> bool:
    """Whether a checkpoint folder holds an analysis of ``examples`` made by the weights saved there (no backbone
    needed: how a test checks every shipped one)."""
    path = Path(folder) / ANALYSIS_FILE
    if not path.exists():
        return False
    with safe_open(str(path), framework="pt") as stored:
        metadata = stored.metadata() or {}
    saved = {name.removeprefix(WEIGHTS_PREFIX): tensor for name, tensor in
             load_file(str(Path(folder) / WEIGHTS_FILE)).items()}
    return metadata.get("weights") == weights_fingerprint(saved) and \
        metadata.get("examples") == examples_fingerprint(examples)


@torch.no_grad()
def analyse(model: PromptClassifier, examples: list[Example], counterfactual_items: int | None = None,
            batch_size: int = 64) -> DevAnalysis:
    """The analysis of ``examples``; DP's candidates tried on the first ``counterfactual_items`` of them (None: all;
    0: none yet, for a page that shows the scores first and adds them with ``add_counterfactuals``)."""
    split = model.encode_examples(examples)
    predicted = predict_split(model, split, batch_size)
    analysis = DevAnalysis(predicted.class_probs, torch.tensor([len(row) for row in split.input_ids]),
                           predicted.tokens_after, predicted.active_length, predicted.choice_probs, {},
                           weights_fingerprint(model.trainable_state()), examples_fingerprint(examples))
    if counterfactual_items == 0 or not chosen_factors(model):
        return analysis
    return add_counterfactuals(analysis, model, examples, counterfactual_items, batch_size, split)


@torch.no_grad()
def add_counterfactuals(analysis: DevAnalysis, model: PromptClassifier, examples: list[Example],
                        items: int | None = None, batch_size: int = 64,
                        split: EncodedSplit | None = None) -> DevAnalysis:
    """``analysis`` with every candidate of each of DP's choices forced on its first ``items`` items (None: all).

    One instance-feature pass per batch, then the candidates stacked as rows (``PromptClassifier
    .candidate_probabilities``): a forward pass takes several candidates of a whole batch at once."""
    split = (split or model.encode_examples(examples)).first(len(examples) if items is None else items)
    factors = chosen_factors(model)
    forced = {factor: torch.zeros(len(split), model.prompt.sizes[factor], model.task.num_labels)
              for factor in factors}
    was_training = model.training
    model.eval()
    for batch in iterate_batches(split, batch_size, model.backbone.tokenizer.pad_token_id, shuffle=False):
        batch = batch.to(model.backbone.device)
        features = model.instance_features(batch)
        for factor in factors:
            forced[factor][batch.items.cpu()] = counterfactuals(model, batch, factor, features)
    model.train(was_training)
    return replace(analysis, counterfactual=forced)


def analyse_checkpoint(folder: Path, data_dir: str | None, items: int = DEV_ITEMS,
                       counterfactual_items: int | None = None, backbones: dict | None = None) -> str:
    """Writes a checkpoint's analysis unless a current one is there; says what it did, in a line. ``backbones``:
    name -> backbone, loaded into on first need and shared by the next folders."""
    record = json.loads((folder / CONFIG_FILE).read_text())
    examples = load_examples(record["task"], "val", data_dir)[:items]
    if is_current(folder, examples):
        return f"{folder}: current, kept"
    backbones = {} if backbones is None else backbones
    if record["backbone"] not in backbones:
        backbones[record["backbone"]] = load_backbone(record["backbone"])
    model = PromptClassifier.from_pretrained(folder, backbone=backbones[record["backbone"]]).eval()
    started = time.perf_counter()
    path = analyse(model, examples, counterfactual_items).save(folder)
    return (f"{folder}: {len(examples)} items in {time.perf_counter() - started:.0f} s, "
            f"{path.stat().st_size / 1024:.0f} KiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dp_core.analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="checkpoint folders (config.json inside)")
    parser.add_argument("--data-dir", default=None, help="local SuperGLUE folder (default: the Hugging Face Hub)")
    parser.add_argument("--items", type=int, default=DEV_ITEMS, help="the first dev items to analyse")
    parser.add_argument("--counterfactual-items", type=int, default=None,
                        help="DP: try every candidate on the first N of them only (default: on all)")
    args = parser.parse_args(argv)
    backbones: dict = {}
    for folder in args.folders:
        try:
            print(analyse_checkpoint(folder, args.data_dir, args.items, args.counterfactual_items, backbones),
                  flush=True)
        except (DataError, ValueError) as error:
            print(f"{folder}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
