"""The Your data tab through gradio_client: upload, pick columns, train both methods, try a text; bad files say why,
in one line, before they wait for anything; runs go through the training hall with the Train tab's."""

import csv
import re

import pytest
from gradio_client import Client, handle_file

from app.state import FIXED
from app.tabs.your_data import DP, MAX_BYTES, MAX_ROWS
from tests.test_labelled import hostile

GOOD, BAD = ["great", "wonderful", "loved", "superb"], ["awful", "boring", "hated", "dull"]


@pytest.fixture
def client(app_url):
    return Client(app_url, verbose=False)


def reviews(path, rows=60):
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "review", "label"])
        for i in range(rows):
            writer.writerow([i, f"The film was {(GOOD if i % 2 else BAD)[i % 4]}.", "good" if i % 2 else "bad"])
    return path


def test_an_upload_offers_its_columns_and_shows_its_first_rows(client, tmp_path):
    text, second, label, first_rows, note = client.predict(handle_file(str(reviews(tmp_path / "r.csv"))),
                                                           api_name="/upload_preview")
    assert (text["value"], label["value"], second["value"]) == ("review", "label", "(none)")  # the first text column
    assert [choice[0] for choice in label["choices"]] == ["id", "review", "label"]
    assert first_rows["visible"] and first_rows["value"]["headers"] == ["id", "review", "label"]
    assert len(first_rows["value"]["data"]) == 5
    assert "60 rows" in note


@pytest.mark.slow
def test_training_on_an_upload_then_trying_a_text(client, tmp_path):
    path = handle_file(str(reviews(tmp_path / "r.csv")))
    client.predict(path, api_name="/upload_preview")
    status, scores, *_ = client.predict(path, "review", "(none)", "label", 10, api_name="/train_uploaded")
    methods = [row[0] for row in scores["data"]]
    assert methods[:2] == [FIXED, DP] and scores["data"][0][-1] == 6  # dev: a seeded 10 % of 60 rows
    assert "interval" in status
    fixed, dp, layout = client.predict("A wonderful film.", "", api_name="/try_uploaded")
    assert {entry["label"] for entry in fixed["confidences"]} == {"bad", "good"} and dp["label"] in ("bad", "good")
    assert "prompt vectors ×" in layout and "positions start at" in layout  # DP deep's prompt, drawn as it is


@pytest.mark.parametrize("content, expected", [
    ("too many rows", f"takes {MAX_ROWS:,} at most"),
    ("one label", "holds one label only"),
])
def test_a_bad_upload_says_why_in_one_line(client, tmp_path, content, expected):
    path = tmp_path / "r.csv"
    reviews(path, rows=MAX_ROWS + 1 if content == "too many rows" else 20)
    if content == "one label":
        path.write_text(path.read_text().replace(",bad", ",good"))
    client.predict(handle_file(str(path)), api_name="/upload_preview")
    *_, note = client.predict(handle_file(str(path)), api_name="/upload_preview")
    if content == "one label":  # the preview is fine; training says it
        note, *_ = client.predict(handle_file(str(path)), "review", "(none)", "label", 10, api_name="/train_uploaded")
    assert expected in note and "Traceback" not in note and str(tmp_path) not in note


def test_trying_a_text_before_training_says_so(client):
    *_, layout = client.predict("A film.", "", api_name="/try_uploaded")
    assert "Train both methods first" in layout


LIBRARY_WORDS = re.compile(r"Traceback|DatasetGenerationError|Instruction|ValueError|KeyError|pyarrow|pandas")


@pytest.mark.parametrize("problem", ["empty file", "header only", "broken json line", "labels that are numbers",
                                     "every label distinct", "more labels than a class reads", "a label with one row",
                                     "two rows"])
def test_every_hostile_file_gets_one_plain_line_before_it_waits_for_anything(client, tmp_path, problem):
    path = handle_file(str(hostile(tmp_path / "r.csv", problem)))
    text, _, label, _, note = client.predict(path, api_name="/upload_preview")
    said = [note]
    if text["choices"]:  # columns to pick: Train says it too, as a visitor who pressed it anyway would read
        said.append(client.predict(path, text["value"], "(none)", label["value"], 10, api_name="/train_uploaded")[0])
        assert "in line" not in said[-1] and "step" not in said[-1]  # refused when read, never queued
    for line in said:
        assert line and "\n" not in line.strip() and not LIBRARY_WORDS.search(line) and str(tmp_path) not in line
    assert client.predict("cb", 0, api_name="/pick")[0] == 0  # the page is still up


def test_one_column_and_semicolons_are_said_or_read(client, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("review\n" + "".join(f"A film numbered {i}.\n" for i in range(30)))
    *_, note = client.predict(handle_file(str(one)), api_name="/upload_preview")
    assert "the file has one column (&#x27;review&#x27;)" in note and "needs a text column and a label column" in note
    semi = tmp_path / "semi.csv"
    semi.write_text("\ufeffreview;stars\n" + "".join(f"A film, {i}.;{'good' if i % 2 else 'bad'}\n"
                                                      for i in range(30)), encoding="utf-8")
    text, _, label, _, note = client.predict(handle_file(str(semi)), api_name="/upload_preview")
    assert (text["value"], label["value"]) == ("review", "stars") and "30 rows." in note


def test_a_file_over_the_limit_is_refused_before_it_is_stored(client, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("review,stars\n" + "x" * (MAX_BYTES + 1) + ",good\n")
    with pytest.raises(Exception, match=r"(?i)file.*(large|size)|exceeds"):
        client.predict(handle_file(str(big)), api_name="/upload_preview")
    assert client.predict("cb", 0, api_name="/pick")[0] == 0  # still up


@pytest.mark.slow
def test_uploads_go_through_the_hall_alike_files_share_a_run_and_others_queue(app_url, tmp_path):
    visitors = [Client(app_url, verbose=False) for _ in range(3)]
    same = handle_file(str(reviews(tmp_path / "same.csv")))
    other = tmp_path / "other.csv"
    reviews(other, rows=61)
    files = (same, same, handle_file(str(other)))
    for visitor, file in zip(visitors, files):  # as a page does: the upload offers the columns first
        visitor.predict(file, api_name="/upload_preview")
    jobs = [visitor.submit(file, "review", "(none)", "label", 10, api_name="/train_uploaded")
            for visitor, file in zip(visitors, files)]
    updates = [list(job) for job in jobs]
    finals = [job_updates[-1] for job_updates in updates]
    assert all("interval" in final[0] for final in finals)
    assert finals[0][1] == finals[1][1]  # one run for the two alike: the same scores, not two runs alike
    said = [update[0] for job_updates in updates for update in job_updates]
    assert any(re.search(r"number 2 in line: it starts in about \d+ s", line) for line in said)  # the third waited
    assert all("Your budget: 10 s per method" in update[0] for job_updates in updates for update in job_updates[:-1])
