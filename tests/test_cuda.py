"""The project on one CUDA GPU (skipped without one): P-tuning v2, prompt tuning and DP under bf16 / fp16 autocast
against fp32, a short run's loss falling, and a checkpoint trained on the GPU giving the same logits on CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from dp_core.backbone import load_backbone
from dp_core.data import collate, encode_examples
from dp_core.dynamic import DynamicPromptConfig
from dp_core.model import PromptClassifier
from dp_core.prompts import PromptTuningConfig, PTuningV2Config
from dp_core.tasks import get_task, load_examples

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")

# On class probabilities (a head's scale would make a tolerance on logits arbitrary): bf16 keeps 8 bits of
# mantissa, fp16 11.
AUTOCAST_TOLERANCE = {torch.bfloat16: 0.05, torch.float16: 0.01}
CROSS_DEVICE_TOLERANCE = 1e-4  # fp32 logits, GPU against CPU (different kernels sum in other orders)
METHODS = {
    "ptv2": lambda: PTuningV2Config(num_tokens=8),
    "prompt_tuning": lambda: PromptTuningConfig(num_tokens=8),
    "dp": lambda: DynamicPromptConfig(num_tokens=8, where="both", factors=("position", "length", "pool")),
}


@pytest.fixture(scope="module")
def gpu_backbone():
    return load_backbone(device="cuda")


def rte_batch(model: PromptClassifier, data_dir, items: int = 16):
    split = encode_examples(model.backbone.tokenizer, get_task("rte"), load_examples("rte", "val", data_dir)[:items],
                            model.max_length)
    return collate(split, list(range(items)), model.backbone.tokenizer.pad_token_id).to(model.backbone.device)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_autocast_probabilities_match_fp32(method, dtype, gpu_backbone, data_dir):
    torch.manual_seed(0)
    model = PromptClassifier(gpu_backbone, "rte", METHODS[method]()).eval()
    batch = rte_batch(model, data_dir)
    rows = batch.input_ids.shape[0]
    # DP's layout forced alike in both precisions: a near tie between two places may break either way.
    forced = {"position": torch.arange(rows) % 9, "length": torch.arange(rows) % 8} if method == "dp" else None
    with torch.no_grad():
        full = model(batch, forced=forced).float().softmax(-1)
        with torch.autocast("cuda", dtype=dtype):
            low = model(batch, forced=forced).float().softmax(-1)
    assert (full - low).abs().max().item() < AUTOCAST_TOLERANCE[dtype]


def test_a_gpu_run_learns_and_its_checkpoint_gives_the_same_logits_on_cpu(data_dir, tmp_path):
    folder = tmp_path / "run"
    finished = subprocess.run(
        [sys.executable, "-m", "dp_core.train", "--task", "rte", "--method", "dp", "--factors", "position,length",
         "--data-dir", str(data_dir), "--k-shot", "16", "--dev-limit", "16", "--max-steps", "40", "--batch-size", "16",
         "--lr", "3e-2", "--lr-head", "3e-2", "--device", "cuda", "--output-dir", str(folder)],
        capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["mixed_precision"] in ("bf16", "fp16")
    losses = [entry["loss"] for entry in metrics["history"] if "loss" in entry]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it fits its 16 items
    on_gpu = PromptClassifier.from_pretrained(folder, device="cuda").eval()
    on_cpu = PromptClassifier.from_pretrained(folder, device="cpu").eval()
    with torch.no_grad():
        gpu_logits = on_gpu(rte_batch(on_gpu, data_dir)).float().cpu()
        cpu_logits = on_cpu(rte_batch(on_cpu, data_dir)).float()
    assert (gpu_logits - cpu_logits).abs().max().item() < CROSS_DEVICE_TOLERANCE
