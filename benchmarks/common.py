"""What several benchmarks share: a paired t interval over seeds, written as the tables show it."""

from __future__ import annotations

import statistics

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(differences: list[float]) -> str:
    """Mean with its 95 % t interval ("+0.012 [-0.030, +0.054]"); the mean alone for one value."""
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return f"{mean:+.3f}"
    half = T_975.get(len(differences) - 1, 1.96) * statistics.stdev(differences) / len(differences) ** 0.5
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"
