"""What one training step costs on each backbone: the default encoder against the SmolLM2 decoder.

    python -m benchmarks.backbone_cost --data-dir ../shared/superglue

Prompt tuning and P-tuning v2 (16 tokens) on the same RTE items, batch 16, max length 128, through
``PromptClassifier.training_loss``, backward and an AdamW step; the median of ``--steps`` timed steps after one
warm-up step. The app and the docs quote the ratio ("about N x the default backbone's cost per step").
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dp_core.backbone import DEFAULT_BACKBONE, SMOLLM2, load_backbone
from dp_core.data import iterate_batches
from dp_core.model import PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import load_examples


def step_seconds(model: PromptClassifier, batches: list, steps: int) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    times = []
    for index in range(steps + 1):
        batch = batches[index % len(batches)]
        started = time.perf_counter()
        loss = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if index:  # the first step warms up
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbones", nargs="+", default=[DEFAULT_BACKBONE, SMOLLM2])
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--items", type=int, default=96)
    args = parser.parse_args()
    examples = load_examples("rte", "train", args.data_dir)[: args.items]
    print(f"torch threads: {torch.get_num_threads()}; RTE, batch 16, max length 128, median of {args.steps} steps")
    print("| backbone | method | s per step | × the first backbone |\n|---|---|---|---|")
    first: dict[str, float] = {}
    for name in args.backbones:
        backbone = load_backbone(name, device="cpu")
        for method in (PromptTuningConfig(num_tokens=16), PTuningV2Config(num_tokens=16)):
            torch.manual_seed(0)
            model = PromptClassifier(backbone, "rte", method)
            split = model.encode_examples(examples)
            batches = list(iterate_batches(split, 16, backbone.tokenizer.pad_token_id, shuffle=True, seed=0))
            seconds = step_seconds(model, batches, args.steps)
            first.setdefault(method.method, seconds)
            print(f"| {name} | {method.method} | {seconds:.2f} | {seconds / first[method.method]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
