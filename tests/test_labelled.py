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
    again = load_text_data(TextData(str(path), ("review",), "stars"))[2]
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
    ("empty text", r"reviews\.csv, row 3: column 'review' is empty"),
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
    elif problem == "empty text":
        write_reviews(path, text=lambda i: "" if i == 2 else "A film.")
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


def test_the_cli_trains_dp_on_a_csv_and_the_checkpoint_knows_its_task(tmp_path, tiny_bert_path):
    path = write_reviews(tmp_path / "reviews.csv")
    code = cli.main(["--data", str(path), "--text-columns", "review", "--label-column", "stars", "--method", "dp",
                     "--backbone", str(tiny_bert_path), "--max-steps", "2", "--num-tokens", "4", "--device", "cpu",
                     "--output-dir", str(tmp_path / "out")])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["task"], metrics["train_size"], metrics["dev_size"]) == ("reviews", 36, 4)
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
