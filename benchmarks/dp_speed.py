"""Train-step time of fixed prompts, each Dynamic Prompting factor, full DP, and the reference's assembly.

    python -m benchmarks.dp_speed --data-dir ../shared/superglue --steps 20

Same batches (RTE train, length-bucketed), same machine, one optimizer step each: forward, backward, AdamW.
DP reads cached instance features (the backbone is frozen, so they are computed once per split).
"reference assembly" re-implements the reference's way for the position factor, kept here only: per example,
each of the L + 1 candidate rows (embeddings and attention mask) is built by concatenation and they are
summed with the one-hot weights, and the instance features come from a second backbone pass at every step.
Printed for the whole step, and for the assembly alone (the part the two ways do differently) while training,
with either gradient estimator, and at evaluation.
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
from dp_core.encoder import run_encoder
from dp_core.layout import Layout, PromptPlan, assemble
from dp_core.model import PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples


def reference_assembly(token_embeds: torch.Tensor, attention_mask: torch.Tensor, prompts: torch.Tensor,
                       weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's ``assemble_soft_template`` (DPT, soft_ins_pos_adaptive.py) with our place for [CLS]:
    per example, its closing token found, every one of the L + 1 candidate rows built by concatenation over
    the padded row and summed with the one-hot weights; the attention mask assembled the same way."""
    length = prompts.shape[1]
    closing = [int(torch.nonzero(attention_mask[row])[-1]) for row in range(attention_mask.shape[0])]

    def mix(prompt_rows: torch.Tensor, input_rows: torch.Tensor, row_weights: torch.Tensor) -> torch.Tensor:
        mixed = []
        for row, end in enumerate(closing):
            tokens, prompt = input_rows[row], prompt_rows[row]
            candidates = [torch.cat([tokens[:1], prompt[split:], tokens[1:end], prompt[:split], tokens[end:]])
                          for split in range(length + 1)]
            mixed.append(sum(weight * candidate for weight, candidate in zip(row_weights[row], candidates)))
        return torch.stack(mixed)

    embeds = mix(prompts, token_embeds, weights)
    mask = mix(attention_mask.new_ones(prompts.shape[:2]), attention_mask, weights.detach())
    return embeds, mask.long()


def reference_layout(model: PromptClassifier, batch, features: torch.Tensor) -> Layout:
    """The whole sequence the reference's way, from the same prompt module as ours (position factor)."""
    plan = model.prompt(input_ids=batch.input_ids, attention_mask=batch.attention_mask, features=features)
    embeddings = model.backbone.model.get_input_embeddings()(batch.input_ids)
    embeds, mask = reference_assembly(embeddings, batch.attention_mask, plan.input_prompts, plan.position_weights)
    positions = torch.arange(embeds.shape[1], device=embeds.device)[None, :].expand(embeds.shape[0], -1)
    return Layout(embeds, mask, positions, torch.zeros_like(mask), mask, None)


def reference_step(model: PromptClassifier, batch) -> torch.Tensor:
    """The reference's step: a second backbone pass for the features at every step, then its assembly."""
    layout = reference_layout(model, batch, model.instance_features(batch))
    hidden, _ = run_encoder(model.backbone.model, layout, None)
    return F.cross_entropy(model.head(hidden[:, 0]), batch.labels)


def placement_inputs(model: PromptClassifier, batch, features: torch.Tensor):
    """What both assemblies start from, made outside the timer: the input's token embeddings, the prompt
    rows and the straight-through one-hot split, the last two as leaves so the backward stops there."""
    model.train()
    with torch.no_grad():
        plan = model.prompt(input_ids=batch.input_ids, attention_mask=batch.attention_mask, features=features)
        tokens = model.backbone.model.get_input_embeddings()(batch.input_ids)
    return tokens, plan.input_prompts.requires_grad_(), plan.position_weights.requires_grad_()


def check_same_sequence(ours: Layout, embeds: torch.Tensor, mask: torch.Tensor) -> None:
    """Both ways must place the same vectors at the same attended places, or the timing compares nothing."""
    width = ours.inputs_embeds.shape[1]
    assert torch.equal(mask[:, :width], ours.attention_mask) and not mask[:, width:].any()
    kept = ours.attention_mask[..., None].bool()
    assert torch.allclose(embeds[:, :width] * kept, ours.inputs_embeds * kept)


def timed_placement(build, train: bool, device: torch.device) -> float:
    """One assembly: forward and backward (a gradient of ones from above) while training, forward alone
    otherwise."""
    start = time.perf_counter()
    if train:
        embeds = build()
        embeds.backward(torch.ones_like(embeds))
    else:
        with torch.no_grad():
            build()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def assembly_timings(model: PromptClassifier, batches, device: torch.device) -> dict[str, dict[str, float]]:
    """Median ms of ours and of the reference's assembly, for training with the reference's gradient,
    training with our default estimator (no gradient for the choice through the sequence), and evaluation."""
    ways = ("training, the reference's gradient (straight-through)",
            "training, our default estimator (score function)", "evaluation (forward only)")
    seconds: dict[str, dict[str, list[float]]] = {way: {"ours": [], "reference": []} for way in ways}
    for index, batch in enumerate(batches):
        tokens, prompts, weights = placement_inputs(model, batch, model.instance_features(batch))
        split = weights.argmax(-1)
        active = torch.ones(prompts.shape[:2], dtype=torch.bool, device=prompts.device)

        def ours_layout(straight_through: bool) -> Layout:
            plan = PromptPlan(split, active, input_prompts=prompts,
                              position_weights=weights if straight_through else None)
            return assemble(tokens, batch.attention_mask, batch.token_type_ids, plan)

        def ours(straight_through: bool):
            return ours_layout(straight_through).inputs_embeds

        def reference():
            return reference_assembly(tokens, batch.attention_mask, prompts, weights)[0]

        if index == 0:
            with torch.no_grad():
                check_same_sequence(ours_layout(False), *reference_assembly(tokens, batch.attention_mask, prompts,
                                                                            weights))

        for way, build, train in ((ways[0], lambda: ours(True), True), (ways[1], lambda: ours(False), True),
                                  (ways[2], lambda: ours(False), False)):
            for name, run in (("ours", build), ("reference", reference)):
                prompts.grad = weights.grad = None
                seconds[way][name].append(timed_placement(run, train, device))
    return {way: {name: 1000 * statistics.median(values[2:]) for name, values in by_name.items()}
            for way, by_name in seconds.items()}


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
    parser.add_argument("--assembly-only", action="store_true", help="skip the whole-step table")
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
    if not args.assembly_only:
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
    print("\nassembly alone (placing the prompt into the input's sequence; prompt network and encoder left out, "
          "as both ways share them), median ms over the same batches:\n")
    print("| | ours (ms) | reference (ms) | reference / ours |\n|---|---|---|---|")
    for way, figures in assembly_timings(models[reference_name], batches[: args.steps + 2], backbone.device).items():
        print(f"| {way} | {figures['ours']:.2f} | {figures['reference']:.2f} | "
              f"{figures['reference'] / figures['ours']:.1f}× |")


if __name__ == "__main__":
    main()
