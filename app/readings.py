"""What the page says about a result, in plain words: one short reading per function, each at most 40 words.

Plain functions of the numbers they read (no Gradio), so tests can check the facts each one states.
"""

from __future__ import annotations

from dp_core.draws import Draws


def draws_reading(draws: Draws, temperature: float, samples: int) -> str:
    """What the playground shows: the hard draws follow the chances; the temperature shapes only the soft draw."""
    gap = max(abs(hard - chance) for hard, chance in zip(draws.hard_shares, draws.probabilities))
    return (f"The {samples:,} hard draws follow the chances (within {gap:.0%}), whatever τ. "
            f"At τ = {temperature:g} a soft draw puts {draws.soft_top_weight:.0%} on its top place "
            f"(one-hot: 100%; even: {1 / len(draws.probabilities):.0%}).")
