"""Your own data: a CSV or JSONL file with text and label columns trains end to end; bad files get one line."""

import csv
import json

import pytest

from dp_core import cli
from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.labelled import TextData, load_text_data
from dp_core.model import PromptClassifier
from dp_core.tasks import DataError
from dp_core.train import run

GOOD, BAD = ["great", "wonderful", "loved", "superb"], ["awful", "boring", "hated", "dull"]


def write_reviews(path, rows=40, label=lambda i: "good" if i % 2 == 0 else "bad", text=None):
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "stars"])
        for i in range(rows):
            words = GOOD if i % 2 == 0 else BAD
            writer.writerow([text(i) if text else f"The film was {words[i % 4]}.", label(i)])
    return path


def test_a_csv_becomes_a_task_with_a_seeded_dev_split(tmp_path):
    path = write_reviews(tmp_path / "reviews.csv")
    task, train, dev = load_text_data(TextData(str(path), ("review",), "stars"))
    assert (task.name, task.label_names, task.metrics) == ("reviews", ("bad", "good"), ("accuracy", "macro_f1"))
    assert (len(train), len(dev)) == (36, 4) and not {e.group for e in train} & {e.group for e in dev}
    assert all(e.pairs[0][1] is None for e in train)  # one text column: no second text
    assert all(task.label_names[e.label] == ("good" if (int(e.group) - 1) % 2 == 0 else "bad") for e in train + dev)
    again = load_text_data(TextData(str(path), ("review",), "stars")).dev
    assert [e.group for e in again] == [e.group for e in dev]  # the same seed, the same dev rows


def test_jsonl_with_two_text_columns_integer_labels_and_given_names(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"premise": f"A cat sat {i}.", "hypothesis": "A cat sat.", "label": i % 3} for i in range(30)]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    dev = tmp_path / "dev.jsonl"
    dev.write_text("\n".join(json.dumps(row) for row in rows[:6]) + "\n")
    task, train, dev_items = load_text_data(TextData(str(path), ("premise", "hypothesis"), "label",
                                                     ("yes", "no", "maybe"), validation=str(dev)))
    assert task.label_names == ("yes", "no", "maybe") and (len(train), len(dev_items)) == (30, 6)
    assert train[4].pairs == (("A cat sat 4.", "A cat sat."),) and train[4].label == 1


@pytest.mark.parametrize("problem, expected", [
    ("missing column", r"reviews\.csv: no column 'rating'; its columns: review, stars"),
    ("one label", r"reviews\.csv: column 'stars' holds one label only \('good'\)"),
    ("encoding", r"reviews\.csv, line 4: not UTF-8 text"),
    ("unknown label", r"reviews\.csv, row 1: column 'stars' holds 'good', not one of \['pos', 'neg'\]"),
])
def test_bad_files_are_refused_in_one_line_naming_file_row_and_column(tmp_path, problem, expected):
    path = tmp_path / "reviews.csv"
    label_column, names = "stars", None
    if problem == "missing column":
        write_reviews(path)
        label_column = "rating"
    elif problem == "one label":
        write_reviews(path, label=lambda i: "good")
    elif problem == "encoding":
        write_reviews(path)
        lines = path.read_bytes().split(b"\n")
        lines[3] = "Caf\u00e9 cr\u00e8me,good".encode("latin-1")
        path.write_bytes(b"\n".join(lines))
    else:
        write_reviews(path)
        names = ("pos", "neg")
    with pytest.raises(DataError, match=expected):
        load_text_data(TextData(str(path), ("review",), label_column, names))


def test_the_cli_trains_dp_on_a_csv_and_the_checkpoint_knows_its_task(tmp_path, tiny_bert_path, capsys):
    path = write_reviews(tmp_path / "reviews.csv")
    code = cli.main(["--data", str(path), "--text-columns", "review", "--label-column", "stars", "--method", "dp",
                     "--backbone", str(tiny_bert_path), "--max-steps", "2", "--num-tokens", "4", "--device", "cpu",
                     "--output-dir", str(tmp_path / "out")])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["task"], metrics["train_size"], metrics["dev_size"]) == ("reviews", 36, 4)
    # the data it read, not a SuperGLUE task; the score defined; its interval; the majority class in its units
    assert metrics["data"] == {"source": str(path), "text_columns": ["review"], "label_column": "stars",
                               "labels": ["bad", "good"]}
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["metadata"]["train_config"]["task"] is None and saved["metadata"]["train_config"]["data"] == str(path)
    low, high = metrics["dev_interval"]
    assert metrics["score"] == "mean of accuracy and macro-F1" and low <= metrics["best"]["score"] <= high
    assert metrics["majority"]["score"] == metrics["majority_baseline"] and metrics["majority"]["label"] in ("bad",
                                                                                                            "good")
    last = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("dev score"))
    assert last.startswith(f"dev score {metrics['best']['score']:.3f} (95 % interval {low:.3f} to {high:.3f}) on 4 "
                           "items; score = mean of accuracy and macro-F1. Always answering")
    model = PromptClassifier.from_pretrained(tmp_path / "out", device="cpu")
    assert model.task.label_names == ("bad", "good") and model.task.text_columns == ("review",)


def test_a_bad_file_on_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = write_reviews(tmp_path / "reviews.csv", label=lambda i: "good")
    code = cli.main(["--data", str(path), "--text-columns", "review", "--label-column", "stars",
                     "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and "one label only" in err[-1]
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "out").exists()
    assert cli.main(["--data", str(path), "--output-dir", str(tmp_path / "out")]) == 2  # no --text-columns
    assert "--text-columns" in capsys.readouterr().err


def test_python_trains_on_a_csv_with_one_config(tmp_path, tiny_backbone):
    path = write_reviews(tmp_path / "reviews.csv")
    config = TrainConfig(data=str(path), text_columns=("review",), label_column="stars", max_steps=2,
                         prompt=DynamicPromptConfig(num_tokens=4), device="cpu")
    result = run(config, backbone=tiny_backbone)
    assert result.model.task.name == "reviews" and result.dev_size == 4 and set(result.choices) == {"position"}


def test_a_dataset_with_splits_reads_its_validation_split_as_a_hub_dataset_would(tmp_path):
    folder = tmp_path / "my_reviews"  # the layout of a Hub dataset repo: one file per split
    folder.mkdir()
    write_reviews(folder / "train.csv", rows=30)
    write_reviews(folder / "validation.csv", rows=10)
    task, train, dev = load_text_data(TextData(str(folder), ("review",), "stars"))
    assert task.name == "my_reviews" and (len(train), len(dev)) == (30, 10)  # the data's own dev split, not 10 %
    assert not {e.group for e in train} & {e.group for e in dev}


def hostile(path, problem):
    """A file that cannot make a classifier as it stands, one per rule (issue 47's uploads, made here)."""
    if problem == "empty file":
        path.write_text("")
    elif problem == "header only":
        path.write_text("review,stars\n")
    elif problem == "broken json line":
        path = path.with_suffix(".jsonl")
        path.write_text('{"review": "A film.", "stars": "good"}\n{"review": "Another.", "stars": "bad"}\n{"review": oops\n')
    elif problem == "one column only":
        write_reviews(path)
    elif problem == "labels that are numbers":
        write_reviews(path, rows=100, label=lambda i: f"{i / 7:.2f}")
    elif problem == "every label distinct":
        write_reviews(path, rows=1500, label=lambda i: f"row {i}")
    elif problem == "more labels than a class reads":
        write_reviews(path, rows=180, label=lambda i: f"class {i % 60}")
    elif problem == "a label with one row":
        write_reviews(path, label=lambda i: "rare" if i == 7 else ["good", "bad"][i % 2])
    elif problem == "two rows":
        write_reviews(path, rows=2)
    return path


@pytest.mark.parametrize("problem, columns, expected", [
    ("empty file", ("review", "stars"), r"r\.csv: no rows$"),
    ("header only", ("review", "stars"), r"r\.csv: no rows under its header"),
    ("broken json line", ("review", "stars"), r"r\.jsonl, line 3: not JSON \(Expecting value\)"),
    ("one column only", ("review", "review"), r"column 'review' cannot be both a text and the label"),
    ("labels that are numbers", ("review", "stars"), r"column 'stars' holds numbers such as 0\.14, not labels"),
    ("every label distinct", ("review", "stars"), r"column 'stars' looks like free text or ids, not labels: "
                                                  r"1,500 of 1,500 rows differ"),
    ("more labels than a class reads", ("review", "stars"), r"column 'stars' holds 60 labels; at most 50 here"),
    ("a label with one row", ("review", "stars"), r"label 'rare' of column 'stars' has 1 row; each label needs 2"),
    ("two rows", ("review", "stars"), r"2 rows with a text and a label; 20 at least are needed"),
])
def test_data_that_cannot_make_a_classifier_is_refused_in_one_line(tmp_path, problem, columns, expected):
    path = hostile(tmp_path / "r.csv", problem)
    with pytest.raises(DataError, match=expected) as refused:
        load_text_data(TextData(str(path), columns[:1], columns[1], max_labels=50))
    said = str(refused.value)
    assert "\n" not in said and "Error" not in said.split(":")[0] and "Instruction" not in said  # our words


def test_semicolons_tabs_and_a_byte_order_mark_are_read_as_columns(tmp_path):
    rows = [("review", "stars")] + [(f"The film was {(GOOD if i % 2 else BAD)[i % 4]}", "good" if i % 2 else "bad")
                                    for i in range(30)]
    for name, separator in (("semi.csv", ";"), ("tabbed.csv", "\t")):
        path = tmp_path / name
        path.write_text("\ufeff" + "\n".join(separator.join(row) for row in rows) + "\n", encoding="utf-8")
        task, train, dev = load_text_data(TextData(str(path), ("review",), "stars"))
        assert task.label_names == ("bad", "good") and len(train) + len(dev) == 30
        assert train[0].fields["review"].startswith("The film was")


def test_rows_with_an_empty_text_or_label_are_left_out_and_counted(tmp_path):
    path = write_reviews(tmp_path / "r.csv", text=lambda i: "" if i in (2, 5) else f"A film, {i}.",
                         label=lambda i: "" if i == 9 else ["good", "bad"][i % 2])
    read = load_text_data(TextData(str(path), ("review",), "stars"))
    assert read.skipped == 3 and len(read.train) + len(read.dev) == 37
    assert not {"3", "6", "10"} & {example.group for example in read.train + read.dev}  # the file's rows 3, 6, 10


def test_dp_predict_answers_an_unlabelled_file_row_by_row_and_refuses_bad_ones_in_one_line(tmp_path, tiny_bert_path,
                                                                                            capsys):
    from dp_core import predict

    path = write_reviews(tmp_path / "reviews.csv")
    assert cli.main(["--data", str(path), "--text-columns", "review", "--label-column", "stars", "--method", "dp",
                     "--backbone", str(tiny_bert_path), "--max-steps", "2", "--num-tokens", "4", "--device", "cpu",
                     "--output-dir", str(tmp_path / "model")]) == 0
    unlabelled = tmp_path / "new.csv"
    unlabelled.write_text("review\nA wonderful film.\nA dull film.\nIt was fine.\n")
    assert predict.main([str(tmp_path / "model"), str(unlabelled), "--output", str(tmp_path / "answers.jsonl")]) == 0
    answers = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [row["review"] for row in answers] == ["A wonderful film.", "A dull film.", "It was fine."]
    for row in answers:  # the label, each class's probability, DP's place
        assert row["label"] in ("bad", "good") and abs(row["probability bad"] + row["probability good"] - 1) < 1e-5
        assert row["tokens_after"] + row["tokens_before"] == row["tokens_on"] <= 4
    capsys.readouterr()
    unlabelled.write_text("review\nA film.\n\"\"\n")
    assert predict.main([str(tmp_path / "model"), str(unlabelled), "--output", str(tmp_path / "a.csv")]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]  # after the backbone's loading bar
    assert said.startswith("error: ") and "row 2: column 'review' is empty" in said
    assert predict.main([str(tmp_path / "model"), str(unlabelled), "--text-columns", "text",
                         "--output", str(tmp_path / "a.csv")]) == 2
    assert "no column 'text'; its columns: review" in capsys.readouterr().err
