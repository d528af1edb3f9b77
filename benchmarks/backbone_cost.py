"""What training and explaining cost on each backbone: the default encoder against the SmolLM2 decoder.

    python -m benchmarks.backbone_cost --data-dir ../shared/superglue [--bf16]

Training: prompt tuning and P-tuning v2 (16 tokens) on the same RTE items, batch 16, max length 128, through
``PromptClassifier.training_loss``, backward and an AdamW step; the median of ``--steps`` timed steps after one
warm-up step (``--bf16``: again under bf16 autocast, the CPU's own). The app and the docs quote the ratio ("about
N x the default backbone's cost per step").
Explaining: an input-level DP (position + length; untrained, the cost is the same) on CB dev: Compare's "what if
the prompt went elsewhere" plots for one item (every candidate place and length), and Explore's choice statistics
with counterfactuals over its first ``COUNTERFACTUAL_LIMIT`` dev items.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from app.state import COUNTERFACTUAL_LIMIT
from dp_core.backbone import DEFAULT_BACKBONE, SMOLLM2, load_backbone
from dp_core.choices import split_choice_statistics
from dp_core.data import collate, iterate_batches
from dp_core.dynamic import DynamicPromptConfig
from dp_core.explain import counterfactuals
from dp_core.model import PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import load_examples


def step_seconds(model: PromptClassifier, batches: list, steps: int, bf16: bool = False) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    times = []
    for index in range(steps + 1):
        batch = batches[index % len(batches)]
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if index:  # the first step warms up
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def explain_seconds(backbone, data_dir: str | None) -> tuple[float, float]:
    """Compare's what-if plots for one CB dev item, and Explore's choice statistics over its first dev items."""
    torch.manual_seed(0)
    model = PromptClassifier(backbone, "cb", DynamicPromptConfig(num_tokens=16, where="input",
                                                                 factors=("position", "length")))
    examples = load_examples("cb", "val", data_dir)[:COUNTERFACTUAL_LIMIT]
    split = model.encode_examples(examples)
    item = collate(split, [0], backbone.tokenizer.pad_token_id)  # Compare's batch of one item
    started = time.perf_counter()
    for factor in ("position", "length"):
        counterfactuals(model, item, factor)
    compare = time.perf_counter() - started
    started = time.perf_counter()
    split_choice_statistics(model, split)
    return compare, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbones", nargs="+", default=[DEFAULT_BACKBONE, SMOLLM2])
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--bf16", action="store_true", help="also time the steps under bf16 autocast")
    args = parser.parse_args()
    examples = load_examples("rte", "train", args.data_dir)[: args.items]
    print(f"torch threads: {torch.get_num_threads()}; RTE, batch 16, max length 128, median of {args.steps} steps")
    print("| backbone | method | precision | s per step | × the first backbone |\n|---|---|---|---|---|")
    first: dict[tuple[str, bool], float] = {}
    explaining = []
    for name in args.backbones:
        backbone = load_backbone(name, device="cpu")
        for method in (PromptTuningConfig(num_tokens=16), PTuningV2Config(num_tokens=16)):
            for bf16 in (False, True) if args.bf16 else (False,):
                torch.manual_seed(0)
                model = PromptClassifier(backbone, "rte", method)
                split = model.encode_examples(examples)
                batches = list(iterate_batches(split, 16, backbone.tokenizer.pad_token_id, shuffle=True, seed=0))
                seconds = step_seconds(model, batches, args.steps, bf16)
                first.setdefault((method.method, bf16), seconds)
                print(f"| {name} | {method.method} | {'bf16' if bf16 else 'fp32'} | {seconds:.2f} | "
                      f"{seconds / first[(method.method, bf16)]:.1f} |", flush=True)
        explaining.append((name, *explain_seconds(backbone, args.data_dir)))
    print(f"\nDP input (position + length), CB dev: Compare's what-if plots for one item; Explore's choice "
          f"statistics over {COUNTERFACTUAL_LIMIT} items\n\n| backbone | Compare what-if, s | Explore statistics, s |"
          "\n|---|---|---|")
    for name, compare, explore in explaining:
        print(f"| {name} | {compare:.2f} | {explore:.1f} |")


if __name__ == "__main__":
    main()
