"""Train-step time of fixed prompts, each Dynamic Prompting factor, full DP, and the reference's assembly.

    python -m benchmarks.dp_speed --data-dir ../shared/superglue --steps 20

Same batches (RTE train, length-bucketed), same machine, one optimizer step each: forward, backward, AdamW.
DP reads cached instance features (the backbone is frozen, so they are computed once per split).
"reference assembly" re-implements the reference's way for the position factor, kept here only: per example,
each of the L + 1 candidate sequences is built by concatenation and they are summed with the one-hot
weights, and the instance features come from a second backbone pass at every step. Printed for the whole
step, and for the assembly alone (the part the two ways do differently, without the shared encoder).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dp_core.backbone import DEFAULT_BACKBONE, load_backbone
from dp_core.data import encode_examples, iterate_batches
from dp_core.dynamic import DynamicPromptConfig
from dp_core.model import PromptClassifier, run_encoder
from dp_core.layout import Layout
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples


def reference_layout(model: PromptClassifier, batch, features: torch.Tensor) -> Layout:
    """The reference's position factor: per example, every candidate sequence concatenated, mixed by the weights."""
    plan = model.prompt(input_ids=batch.input_ids, attention_mask=batch.attention_mask, features=features)
    weights = plan.position_weights  # (B, L + 1) straight-through one-hot
    prompts = plan.input_prompts
    embeddings = model.backbone.model.get_input_embeddings()(batch.input_ids)
    length = model.method.num_tokens
    rows = []
    for row in range(batch.input_ids.shape[0]):
        real = int(batch.attention_mask[row].sum())
        tokens, prompt = embeddings[row, :real], prompts[row]
        candidates = [torch.cat([tokens[:1], prompt[split:], tokens[1:-1], prompt[:split], tokens[-1:]])
                      for split in range(length + 1)]
        mixed = sum(weight * candidate for weight, candidate in zip(weights[row], candidates))
        rows.append(F.pad(mixed, (0, 0, 0, batch.input_ids.shape[1] + length - mixed.shape[0])))
    embeds = torch.stack(rows)
    mask = (torch.arange(embeds.shape[1], device=embeds.device)[None, :] < (batch.attention_mask.sum(1) + length)[:, None]).long()
    positions = torch.arange(embeds.shape[1], device=embeds.device)[None, :].expand(len(rows), -1)
    return Layout(embeds, mask, positions, torch.zeros_like(mask), mask, None)


def reference_step(model: PromptClassifier, batch) -> torch.Tensor:
    """The reference's step: a second backbone pass for the features at every step, then its assembly."""
    layout = reference_layout(model, batch, model.instance_features(batch))
    hidden, _ = run_encoder(model.backbone.model, layout, None)
    return F.cross_entropy(model.head(hidden[:, 0]), batch.labels)


def timed_assembly(model: PromptClassifier, batch, features, reference: bool) -> float:
    """Only the sequence's assembly (prompt network, placement) and its backward, without the encoder."""
    start = time.perf_counter()
    layout = reference_layout(model, batch, features) if reference else model.build_layout(batch, features)[1]
    layout.inputs_embeds.square().mean().backward()
    if model.backbone.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed_step(model: PromptClassifier, optimizer, batch, features, reference: bool) -> float:
    start = time.perf_counter()
    loss = reference_step(model, batch) if reference else model.training_loss(
        batch, features if model.needs_features else None)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if model.backbone.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE)
    parser.add_argument("--num-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    backbone = load_backbone(args.backbone, device=args.device)
    task = get_task("rte")
    max_length = min(128, backbone.max_positions - args.num_tokens)
    split = encode_examples(backbone.tokenizer, task, load_examples("rte", "train", args.data_dir), max_length)
    batches = [batch.to(backbone.device) for batch in
               iterate_batches(split, args.batch_size, backbone.tokenizer.pad_token_id, shuffle=True, seed=0)]
    length = args.num_tokens
    variants = {
        "fixed P-tuning v2 (deep)": PTuningV2Config(num_tokens=length),
        "fixed prompt tuning (input)": PromptTuningConfig(num_tokens=length),
    }
    for where in ("deep", "input"):
        for factors in (("position",), ("length",), ("pool",), ("position", "length", "pool")):
            name = "full DP" if len(factors) == 3 else f"DP {factors[0]}"
            variants[f"{name} ({where})"] = DynamicPromptConfig(num_tokens=length, factors=factors, where=where)
    variants["DP position (input), straight-through"] = DynamicPromptConfig(
        num_tokens=length, factors=("position",), estimator="straight_through")
    print(f"{backbone.device}, backbone {args.backbone}, L = {length}, batch {args.batch_size}, median of "
          f"{args.steps} steps, torch threads {torch.get_num_threads()}\n")
    models = {}
    for name, config in variants.items():
        torch.manual_seed(0)
        models[name] = PromptClassifier(backbone, task, config)
    reference_name = "reference assembly, DP position (input)"
    models[reference_name] = PromptClassifier(backbone, task, DynamicPromptConfig(
        num_tokens=length, factors=("position",), estimator="straight_through"))
    optimizers = {name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
                  for name, m in models.items()}
    timings: dict[str, list[float]] = {name: [] for name in models}
    # Interleaved: every variant takes its step on the same batch before the next batch, so a busy moment of
    # the machine falls on all variants alike. Features are cached per batch (the backbone is frozen).
    for index, batch in enumerate(batches[: args.steps + 2]):
        features = models["full DP (input)"].instance_features(batch)
        for name, model in models.items():
            model.train()
            seconds = timed_step(model, optimizers[name], batch, features, reference=name == reference_name)
            if index >= 2:  # the first two warm up
                timings[name].append(seconds)
    times = {name: statistics.median(values) for name, values in timings.items()}
    print("| variant | step (ms) | × fixed P-tuning v2 | × fixed prompt tuning |\n|---|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {1000 * seconds:.0f} | {seconds / times['fixed P-tuning v2 (deep)']:.2f} | "
              f"{seconds / times['fixed prompt tuning (input)']:.2f} |")
    ratio = times["reference assembly, DP position (input)"] / times["DP position (input), straight-through"]
    print(f"\nwhole step, reference assembly / ours (same factor, same estimator): {ratio:.1f}×")
    ours, reference = models["DP position (input), straight-through"], models[reference_name]
    assembly: dict[bool, list[float]] = {False: [], True: []}
    for batch in batches[: args.steps + 2]:
        features = ours.instance_features(batch)
        for is_reference, model in ((False, ours), (True, reference)):
            model.zero_grad(set_to_none=True)
            assembly[is_reference].append(timed_assembly(model, batch, features, is_reference))
    ours_s, reference_s = (statistics.median(assembly[flag][2:]) for flag in (False, True))
    print(f"assembly alone (prompt network + placement, forward and backward): ours {1000 * ours_s:.1f} ms, "
          f"reference {1000 * reference_s:.1f} ms, reference / ours {reference_s / ours_s:.1f}×")


if __name__ == "__main__":
    main()
