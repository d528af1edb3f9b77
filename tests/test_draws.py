"""The Learn tab's playground: what Gumbel-Softmax draws, and what the page says of it."""

import pytest

from app import readings
from app.tabs.learn import draws_frames
from dp_core.draws import draw_choices

SCORES = [1.5, 0.5, 0.0, -1.0]


def test_hard_draws_follow_the_softmax_whatever_the_temperature():
    cold, hot = draw_choices(SCORES, 0.1, samples=4000), draw_choices(SCORES, 5.0, samples=4000)
    assert cold.hard_shares == hot.hard_shares  # the same noise picks the same places: tau plays no part
    assert sum(cold.probabilities) == pytest.approx(1.0) and cold.probabilities[0] == max(cold.probabilities)
    assert max(abs(h - p) for h, p in zip(cold.hard_shares, cold.probabilities)) < 0.03


def test_the_temperature_takes_the_soft_draw_from_one_hot_to_even():
    weights = [draw_choices(SCORES, tau).soft_top_weight for tau in (0.05, 0.5, 2.0, 50.0)]
    assert weights == sorted(weights, reverse=True)
    assert weights[0] > 0.95 and weights[-1] < 0.3  # four places: even is 0.25
    assert sum(draw_choices(SCORES, 1.0).soft_sample) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        draw_choices(SCORES, 0.0)


def test_the_playground_draws_again_with_another_seed_and_reads_in_under_40_words():
    first, second = draws_frames(*SCORES, 1.0, 0), draws_frames(*SCORES, 1.0, 1)
    assert [len(frame) for frame in first[:3]] == [4, 4, 4] and first[0].equals(second[0])  # the chances stay
    assert not first[1].equals(second[1])  # new draws
    draws = draw_choices(SCORES, 0.1)
    reading = readings.draws_reading(draws, 0.1, 1000)
    assert len(reading.split()) <= 40 and "τ = 0.1" in reading and f"{draws.soft_top_weight:.0%}" in reading


def test_the_playground_s_reading_says_the_soft_draw_it_draws():
    chances, hard, soft, reading = draws_frames(*SCORES, 1.0, 0)
    assert f"the soft draw shown puts {max(soft.share):.0%} on one place" in reading  # the bar beside it
    average = draw_choices(SCORES, 1.0).soft_top_weight
    assert f"soft draws average {average:.0%}" in reading and len(reading.split()) <= 40
