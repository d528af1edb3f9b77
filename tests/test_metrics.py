from dp_core.metrics import accuracy, compute_metrics, exact_match, f1_for, macro_f1, score_interval


def test_accuracy_and_f1():
    predictions, labels = [1, 1, 0, 0], [1, 0, 0, 1]
    assert accuracy(predictions, labels) == 0.5
    assert f1_for(predictions, labels, positive=1) == 0.5  # tp 1, predicted 2, actual 2
    assert f1_for([0, 0], [0, 0], positive=1) == 0.0


def test_macro_f1_averages_every_class():
    predictions, labels = [0, 0, 1, 2], [0, 1, 1, 2]
    # class 0: tp1 p2 a1 → 2/3; class 1: tp1 p1 a2 → 2/3; class 2: 1
    assert abs(macro_f1(predictions, labels, 3) - (2 / 3 + 2 / 3 + 1) / 3) < 1e-12


def test_exact_match_needs_every_answer_of_a_question():
    assert exact_match([1, 0, 1, 1], [1, 0, 0, 1], ["q1", "q1", "q2", "q2"]) == 0.5


def test_score_is_the_mean_of_the_task_metrics():
    metrics = compute_metrics(("f1a", "exact_match"), [1, 0, 1, 1], [1, 0, 0, 1], ["a", "a", "b", "b"], 2)
    assert metrics["score"] == (metrics["f1a"] + metrics["exact_match"]) / 2
    assert abs(metrics["f1a"] - 0.8) < 1e-12


def test_score_interval_covers_the_score_and_narrows_with_more_items():
    import random

    generator = random.Random(0)

    def interval(count):
        labels = [generator.randint(0, 1) for _ in range(count)]
        predictions = [y if generator.random() < 0.7 else 1 - y for y in labels]
        low, high = score_interval(["accuracy"], predictions, labels, [str(i) for i in range(count)], 2)
        assert low <= accuracy(predictions, labels) <= high
        return high - low

    small, large = interval(56), interval(2000)
    assert 0.15 < small < 0.35 and 0.02 < large < 0.06  # ~ 2 * 1.96 * sqrt(.21 / n)


def test_score_interval_resamples_multirc_questions_whole():
    # Two questions, every answer right in one and wrong in the other: exact match is 0, 0.5 or 1 per draw.
    low, high = score_interval(["exact_match"], [1, 1, 0, 0], [1, 1, 1, 1], ["q1", "q1", "q2", "q2"], 2, samples=200)
    assert (low, high) == (0.0, 1.0)


def test_paired_difference_interval_sees_the_dev_items_noise_and_the_pairing():
    from dp_core.metrics import paired_difference_interval

    count = 638
    labels = [i % 2 for i in range(count)]
    groups = [str(i) for i in range(count)]
    b = [y if i % 3 else 1 - y for i, y in enumerate(labels)]  # right on two thirds
    better = [y if i < 30 else p for i, (y, p) in enumerate(zip(labels, b))]  # right on 10 items more
    worse = [1 - y if 30 <= i < 45 and i % 3 else p for i, (y, p) in enumerate(zip(labels, b))]  # 10 fewer
    gain = accuracy(better, labels) - accuracy(b, labels)
    assert abs(gain - 10 / count) < 1e-12 and abs(accuracy(worse, labels) - accuracy(b, labels) + gain) < 1e-12
    low, high = paired_difference_interval(["accuracy"], [better], [b], labels, groups, 2)
    assert 0 < low <= gain <= high < 0.04  # every item where the two differ favours one: the interval leaves 0
    alone_low, alone_high = score_interval(["accuracy"], b, labels, groups, 2)
    assert high - low < (alone_high - alone_low) / 2  # pairing cancels what both runs share
    low, high = paired_difference_interval(["accuracy"], [better, worse], [b, b], labels, groups, 2)
    assert low < 0 < high  # one seed 10 items better, one 10 worse: the mean over seeds is 0
    assert paired_difference_interval(["accuracy", "macro_f1"], [b], [b], labels, groups, 2) == (0.0, 0.0)
