import json

import pytest

from dp_core import tasks
from dp_core.tasks import DataError, TASKS, example_from_fields, load_examples, load_fewglue, sample_k_shot

EXPECTED_VAL_SIZES = {"boolq": 3270, "cb": 56, "copa": 100, "rte": 277, "wic": 638, "wsc": 104, "multirc": 4848}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_reads_its_validation_split(data_dir, name):
    examples = load_examples(name, "val", data_dir)
    task = TASKS[name]
    assert len(examples) == EXPECTED_VAL_SIZES[name]
    assert {example.label for example in examples} == set(range(task.num_labels))
    assert all(len(example.pairs) == (2 if task.multiple_choice else 1) for example in examples)
    assert all(text for example in examples for pair in example.pairs for text in pair)


def test_labels_follow_the_official_names(data_dir):
    first_cb = json.loads((data_dir / "CB" / "val.jsonl").read_text().splitlines()[0])
    example = load_examples("cb", "val", data_dir)[0]
    assert TASKS["cb"].label_names[example.label] == first_cb["label"]


def test_copa_scores_two_choices_with_the_question(data_dir):
    example = load_examples("copa", "val", data_dir)[0]  # question "effect", label 1
    (premise_a, choice_a), (premise_b, choice_b) = example.pairs
    assert premise_a == premise_b == "The man turned on the faucet."
    assert choice_a.startswith("What happened as a result?") and choice_a.endswith("The toilet filled with water.")
    assert choice_b.endswith("Water flowed from the spout.")
    assert example.label == 1


def test_wic_marks_the_target_word_in_both_sentences(data_dir):
    example = load_examples("wic", "val", data_dir)[0]
    first, second = example.pairs[0]
    assert first == "class: An emerging professional *class*."
    assert "*class*" in second


def test_wsc_marks_both_spans(data_dir):
    example = load_examples("wsc", "val", data_dir)[1]  # span1 "Mr. Moncrieff", span2 "his"
    text, question = example.pairs[0]
    assert "*Mr. Moncrieff*" in text and "#his#" in text
    assert question == 'Does "his" refer to "Mr. Moncrieff"?'


def test_multirc_is_one_item_per_answer_grouped_by_question(data_dir):
    examples = load_examples("multirc", "val", data_dir)
    questions = {example.group for example in examples}
    assert len(questions) == 953  # official MultiRC dev: 953 questions over 83 passages
    first = examples[0]
    passage, question_answer = first.pairs[0]
    assert passage.startswith("What causes a change in motion?")
    assert question_answer == "Would the mass of a baseball affect how much force you have to use to pick it up? No"


def test_hub_rows_are_normalised_like_local_ones(monkeypatch):
    rows = [{"paragraph": "P", "question": "Q?", "answer": "A", "label": 1,
             "idx": {"paragraph": 3, "question": 7, "answer": 0}}]
    import datasets

    calls = []
    monkeypatch.delenv(tasks.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kw: calls.append((args, kw)) or rows)
    (example,) = load_examples("multirc", "val")
    assert calls == [(("aps/super_glue", "multirc"), {"split": "validation"})]
    assert example.pairs == (("P", "Q? A"),) and example.label == 1 and example.group == "3-7"


def test_hub_failure_is_one_clear_line(monkeypatch, offline):
    monkeypatch.delenv(tasks.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError) as error:
        load_examples("rte", "val")
    message = str(error.value)
    assert "\n" not in message and "aps/super_glue" in message and "--data-dir" in message


def test_unknown_task_lists_the_supported_ones():
    with pytest.raises(DataError, match="unknown task 'mnli'; supported: boolq, cb"):
        load_examples("mnli", "val")


def test_wrong_data_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_examples("rte", "val", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"RTE/val.jsonl: file not found"):
        load_examples("rte", "val", tmp_path)


def test_missing_train_split_names_the_file(data_dir):
    with pytest.raises(DataError, match=r"BoolQ/train.jsonl: file not found"):
        load_examples("boolq", "train", data_dir)


@pytest.mark.parametrize("line, expected", [
    ('{"premise": "a", "hypothesis": "b", "label": "entailment"', r"val.jsonl:2: not valid JSON"),
    ('{"premise": "a", "label": "entailment"}', r"val.jsonl:2: field 'hypothesis' is missing"),
    ('{"premise": "a", "hypothesis": "b", "label": "maybe"}', r"val.jsonl:2: field 'label': 'maybe' is not one of"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, line, expected):
    folder = tmp_path / "RTE"
    folder.mkdir()
    good = '{"premise": "a", "hypothesis": "b", "label": "entailment"}'
    (folder / "val.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=expected):
        load_examples("rte", "val", tmp_path)


def test_k_shot_is_seeded_and_keeps_multirc_questions_whole(data_dir):
    rte = load_examples("rte", "train", data_dir)
    assert sample_k_shot(rte, 8, seed=1) == sample_k_shot(rte, 8, seed=1)
    assert sample_k_shot(rte, 8, seed=1) != sample_k_shot(rte, 8, seed=2)
    multirc = load_examples("multirc", "val", data_dir)
    chosen = sample_k_shot(multirc, 5, seed=0)
    assert len({example.group for example in chosen}) == 5
    for group in {example.group for example in chosen}:
        assert sum(e.group == group for e in chosen) == sum(e.group == group for e in multirc)


def test_fewglue_has_32_items(data_dir):
    assert len(load_fewglue("boolq", data_dir)) == 32
    assert len(load_fewglue("cb", data_dir)) == 32


def test_typed_fields_become_the_same_input_as_the_official_record(data_dir):
    for name in ("rte", "copa", "wic", "wsc", "boolq"):
        official = load_examples(name, "val", data_dir)[0]
        typed = example_from_fields(name, {k: str(v) for k, v in official.fields.items()})
        assert typed.pairs == official.pairs, name


def test_typed_wic_and_wsc_find_the_word_and_spans_themselves():
    wic = example_from_fields("wic", {"word": "run", "sentence1": "She was running late.", "sentence2": "Run it."})
    assert wic.pairs[0] == ("run: She was *running* late.", "*Run* it.")
    wsc = example_from_fields("wsc", {"text": "Mark told Pete lies about himself.", "span1_text": "Pete",
                                      "span2_text": "himself"})
    assert wsc.fields["span1_index"] == 2 and wsc.fields["span2_index"] == 5 and "#himself.#" in wsc.pairs[0][0]


@pytest.mark.parametrize("name, fields, message", [
    ("rte", {"premise": "  ", "hypothesis": "x"}, "RTE needs a non-empty 'premise'"),
    ("cb", {"premise": "x"}, "CB needs a non-empty 'hypothesis'"),
    ("copa", {"premise": "a", "choice1": "b", "choice2": "c", "question": "why"}, "COPA's question must be"),
    ("wic", {"word": "cat", "sentence1": "A dog.", "sentence2": "A cat."}, "the word 'cat' does not occur in sentence 1"),
    ("wsc", {"text": "a b", "span1_text": "a", "span2_text": "b", "span1_index": "one"}, "span1_index must be a whole"),
    ("wsc", {"text": "a b", "span1_text": "z", "span2_text": "b"}, "span 1 'z' does not occur in the text"),
])
def test_bad_typed_fields_give_one_clear_line(name, fields, message):
    with pytest.raises(DataError) as error:
        example_from_fields(name, fields)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_majority_baseline_is_measured_like_the_score(data_dir):
    from dp_core.metrics import compute_metrics
    from dp_core.tasks import get_task, majority_baseline

    train, dev = load_examples("cb", "train", data_dir), load_examples("cb", "val", data_dir)
    labels = [example.label for example in dev]
    most_common = max(set(e.label for e in train), key=[e.label for e in train].count)
    expected = compute_metrics(("accuracy", "macro_f1"), [most_common] * len(dev), labels, ["g"] * len(dev), 3)
    assert majority_baseline(get_task("cb"), train, dev) == expected["score"] < expected["accuracy"]


def test_multirc_baseline_says_true_to_every_answer_and_the_shipped_prompts_record_it(data_dir):
    """"false" everywhere scores F1a 0: a baseline of 0 would let any prompt look as if it had learned something."""
    import json
    from pathlib import Path

    from dp_core.metrics import compute_metrics
    from dp_core.tasks import get_task, majority_baseline

    task = get_task("multirc")
    train, dev = load_examples("multirc", "train", data_dir), load_examples("multirc", "val", data_dir)[:300]
    all_true = compute_metrics(task.metrics, [1] * len(dev), [e.label for e in dev], [e.group for e in dev], 2)
    assert task.label_names[1] == "true" and sum(e.label == 0 for e in train) > len(train) / 2  # "false" is commoner
    assert majority_baseline(task, train, dev) == all_true["score"] > 0.3
    shipped = sorted(Path("assets/checkpoints/multirc").glob("*/metrics.json"))
    assert shipped and all(json.loads(path.read_text())["majority_baseline"] == all_true["score"] for path in shipped)
