"""How DP draws a discrete choice while training: Gumbel noise on the logits, a hard pick and its soft relaxation.

The hard pick, argmax(logits + Gumbel noise), follows softmax(logits) exactly, whatever the temperature (the
Gumbel-max trick). The temperature shapes only the soft sample softmax((logits + noise) / tau), whose gradient the
straight-through estimator uses: near one-hot when tau is small, near uniform when it is large.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Draws:
    probabilities: list[float]  # softmax(logits): the chance a hard draw picks each candidate
    hard_shares: list[float]  # the share of the draws that picked each candidate
    soft_sample: list[float]  # the first draw's soft sample at the temperature
    soft_top_weight: float  # the soft samples' mean weight on their top candidate (1: one-hot, 1/C: uniform)


def draw_choices(logits: list[float], temperature: float, samples: int = 1000, seed: int = 0) -> Draws:
    """``samples`` Gumbel-Softmax draws from ``logits`` at ``temperature``, seeded."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scores = torch.tensor(logits, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.rand(samples, len(logits), generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    noisy = scores + -torch.log(-torch.log(uniform))  # logits plus standard Gumbel noise
    hard = torch.bincount(noisy.argmax(-1), minlength=len(logits)).double() / samples
    soft = (noisy / temperature).softmax(-1)
    return Draws(scores.softmax(-1).tolist(), hard.tolist(), soft[0].tolist(), float(soft.max(-1).values.mean()))
