"""Data parallelism through Accelerate: two CPU processes (gloo), each with half of every batch, take the steps one
process takes with the whole batch."""

from __future__ import annotations

import socket
import subprocess
import sys

import json

import pytest
import torch
from safetensors.torch import load_file

from dp_core.data import encode_examples, iterate_batches
from dp_core.tasks import get_task, load_examples

TOLERANCE = 1e-5  # float32; the two halves' gradients are summed in another order than the whole batch's


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def trained_weights(command: list[str], folder, processes: int = 1) -> dict[str, torch.Tensor]:
    finished = subprocess.run([*command, "--output-dir", str(folder)], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert json.loads((folder / "metrics.json").read_text())["processes"] == processes
    return load_file(str(folder / "model.safetensors"))


def test_each_process_takes_its_own_half_of_every_batch(data_dir, default_backbone):
    split = encode_examples(default_backbone.tokenizer, get_task("cb"), load_examples("cb", "train", data_dir)[:40], 64)
    whole, first, second = (list(iterate_batches(split, 8, 0, shuffle=True, seed=3, shard=shard))
                            for shard in ((0, 1), (0, 2), (1, 2)))
    assert len(whole) == len(first) == len(second) == 5
    for batch, a, b in zip(whole, first, second):
        assert a.items.tolist() + b.items.tolist() == batch.items.tolist() and a.num_items == b.num_items == 4


@pytest.mark.slow
def test_two_processes_with_half_a_batch_each_make_the_update_of_one_with_all(data_dir, tiny_bert_path, tmp_path):
    # No dropout anywhere: each process draws its own masks, so with dropout the runs could not match.
    run = ["-m", "dp_core.train", "--task", "cb", "--method", "ptv2", "--backbone", str(tiny_bert_path),
           "--data-dir", str(data_dir), "--k-shot", "16", "--dev-limit", "8", "--max-steps", "3", "--eval-every", "3",
           "--num-tokens", "4", "--prompt-dropout", "0", "--head-dropout", "0", "--no-backbone-dropout",
           "--device", "cpu", "--counterfactuals", "none"]
    one = trained_weights([sys.executable, *run, "--batch-size", "8"], tmp_path / "one")
    # `--multi_gpu` on a machine without a GPU starts the processes through torchrun; `--device cpu` makes
    # Accelerate run them on CPU with gloo (`--cpu` alone starts one process unless MPI is set up).
    two = trained_weights([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "--main_process_port", str(free_port()), *run, "--batch-size", "8"], tmp_path / "two",
                          processes=2)
    half = trained_weights([sys.executable, *run, "--batch-size", "4"], tmp_path / "half")
    assert one.keys() == two.keys() and one
    assert max((one[name] - two[name]).abs().max().item() for name in one) < TOLERANCE
    # The comparison can fail: one process that sees only half of each batch ends elsewhere.
    assert max((one[name] - half[name]).abs().max().item() for name in one) > 100 * TOLERANCE
