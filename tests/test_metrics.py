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
