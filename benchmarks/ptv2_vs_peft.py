"""Our P-tuning v2 against PEFT's PrefixTuning: same backbone, data, batches, optimiser, schedule and budget.

    python -m benchmarks.ptv2_vs_peft --data-dir ../shared/superglue --tasks cb rte --seeds 0 1 2

Both train the prompt and a linear head with AdamW (one learning rate for both, as in the PEFT figures the
project was given), linear warm-up/decay, gradient clipping, the same length-bucketed batches in the same
order, and report the best end-of-epoch dev accuracy. Speed counts training steps only (examples/s).
PEFT needs ``pip install peft`` (it is in requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from peft import PrefixTuningConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

from dp_core.backbone import DEFAULT_BACKBONE, load_backbone, resolve_backbone_path
from dp_core.config import TrainConfig
from dp_core.data import encode_examples, iterate_batches
from dp_core.metrics import accuracy
from dp_core.prompts import PTuningV2Config
from dp_core.tasks import get_task
from dp_core.train import load_task_data, train

DEFAULT_EPOCHS = {"cb": 4, "rte": 2}


def train_peft(config: TrainConfig, backbone, train_examples, dev_examples) -> tuple[float, float]:
    """Best end-of-epoch dev accuracy and training examples/s of PEFT PrefixTuning under ``config``."""
    set_seed(config.seed)
    task = get_task(config.task)
    path = resolve_backbone_path(config.backbone)
    base = AutoModelForSequenceClassification.from_pretrained(path, num_labels=task.num_labels)
    model = get_peft_model(base, PrefixTuningConfig(task_type=TaskType.SEQ_CLS,
                                                    num_virtual_tokens=config.prompt.num_tokens))
    model.to(backbone.device)
    max_length = backbone.max_positions - config.prompt.num_tokens
    max_length = min(config.max_length, max_length)
    train_split = encode_examples(backbone.tokenizer, task, train_examples, max_length)
    dev_split = encode_examples(backbone.tokenizer, task, dev_examples, max_length)
    pad = backbone.tokenizer.pad_token_id
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total = math.ceil(config.epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    best, seen, train_time, step = 0.0, 0, 0.0, 0
    for epoch in range(math.ceil(config.epochs)):
        model.train()
        for batch in iterate_batches(train_split, config.batch_size, pad, shuffle=True, seed=config.seed + epoch):
            start = time.perf_counter()
            batch = batch.to(backbone.device)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           token_type_ids=batch.token_type_ids).logits
            loss = F.cross_entropy(logits, batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.grad_clip)
            optimizer.step()
            scheduler.step()
            train_time += time.perf_counter() - start
            seen += batch.num_items
            step += 1
            if step >= total:
                break
        model.eval()
        predictions = [0] * len(dev_split)
        with torch.no_grad():
            for batch in iterate_batches(dev_split, config.eval_batch_size, pad, shuffle=False):
                batch = batch.to(backbone.device)
                logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                               token_type_ids=batch.token_type_ids).logits
                for item, prediction in zip(batch.items.tolist(), logits.argmax(-1).tolist()):
                    predictions[item] = prediction
        best = max(best, accuracy(predictions, dev_split.labels))
    return best, seen / train_time


def train_ours(config: TrainConfig, backbone, data) -> tuple[float, float]:
    best, speed = 0.0, 0.0
    for event in train(config, backbone=backbone, data=data):
        if event.kind == "eval":
            best = max(best, event.metrics["accuracy"])
        if event.kind == "done":
            speed = event.examples_per_s
    return best, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--tasks", nargs="+", default=["cb", "rte"])
    parser.add_argument("--epochs", type=float, default=None, help="default: cb 4, rte 2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num-tokens", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    backbone = load_backbone(args.backbone, device=args.device)
    print(f"backbone {args.backbone} on {backbone.device}, {args.num_tokens} prompt tokens, lr {args.lr}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}\n")
    print("| task | epochs | seed | ours dev acc | PEFT dev acc | ours ex/s | PEFT ex/s | speed ratio |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    for task in args.tasks:
        epochs = args.epochs or DEFAULT_EPOCHS.get(task, 2)
        data = load_task_data(TrainConfig(task=task, data_dir=args.data_dir))
        rows = []
        for seed in args.seeds:
            config = TrainConfig(task=task, prompt=PTuningV2Config(num_tokens=args.num_tokens),
                                 backbone=args.backbone, data_dir=args.data_dir, epochs=epochs, seed=seed,
                                 batch_size=args.batch_size, lr=args.lr, lr_head=args.lr, device=args.device)
            ours = train_ours(config, backbone, data)
            peft = train_peft(config, backbone, *data)
            rows.append((ours, peft))
            print(f"| {task} | {epochs:g} | {seed} | {ours[0]:.3f} | {peft[0]:.3f} | {ours[1]:.1f} | {peft[1]:.1f} "
                  f"| {ours[1] / peft[1]:.2f}× |", flush=True)
        mean = lambda values: statistics.mean(values)  # noqa: E731
        summary.append(f"| {task} | {mean([o[0] for o, _ in rows]):.3f} | {mean([p[0] for _, p in rows]):.3f} | "
                       f"{mean([o[1] for o, _ in rows]):.1f} | {mean([p[1] for _, p in rows]):.1f} | "
                       f"{mean([o[1] / p[1] for o, p in rows]):.2f}× |")
    print("\n| task | ours dev acc (mean) | PEFT dev acc (mean) | ours ex/s | PEFT ex/s | speed ratio |")
    print("|---|---|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
