"""One story on every page: what the lesson's pages say agrees with itself (one place, one number per row; a tie said
as a tie; the fixed sides named alike), each example a student meets is worth meeting, and the steps go where they
say. The ready-trained prompts on the default backbone (the decoder's steps are in test_browser.py and test_app.py)."""

from __future__ import annotations

import re

import pytest

from app import state, views
from app.tabs.compare import PICKED, pick_example, run_compare, what_if_marks
from app.tabs.start import SETTINGS, first_example, show_example
from benchmarks.lesson import READ_BY_STUDENTS, WORDS_AT_MOST, visible_words
from dp_core.backbone import DEFAULT_BACKBONE, SMOLLM2
from dp_core.comparison import CLEAR_MARGIN


@pytest.fixture(scope="module")
def shared(data_dir):
    return state.Shared(str(data_dir))


def compared(shared, task, index, where):
    session, _, *boxes, question = pick_example(shared, task, index, None)
    *_, outputs = run_compare(shared, task, *boxes, question, where, "counterpart", DEFAULT_BACKBONE, session)
    return outputs


@pytest.mark.parametrize("task, index", READ_BY_STUDENTS)
def test_compare_says_at_most_200_words_on_the_examples_students_read(shared, task, index):
    for where in ("deep", "input"):
        assert visible_words(compared(shared, task, index, where)) <= WORDS_AT_MOST


def marked(what_if: str, title: str) -> dict[str, str]:
    """A what-if strip's marks: mark -> the name of the square under which it stands."""
    strip = what_if.split(html_escape(title), 1)[1].split("class='dp-what-if'", 1)[0]
    cells = re.findall(r"<div title='[^']*'[^>]*>([^<]*)</div><div class='dp-mark'[^>]*>([^<]*)</div>", strip)
    return {mark.removeprefix("▲ "): name for name, mark in cells if mark}


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_one_place_is_one_number_per_row_in_the_reading_the_strip_and_the_layout(shared):
    # COPA #97, input DP: each choice's row has its own place, and each is said and marked as the same number
    _, _, _, _, _, dp_layout, dp_reading, *_, sure, what_if, _ = compared(shared, "copa", 97, "input")
    places = re.search(r"With choice 1, DP put (\d+) prompt tokens? after the choice and (\d+) before the premise; "
                       r"with choice 2, (\d+) and (\d+)\.", dp_reading)
    assert places, dp_reading
    marks = marked(what_if, "Moving DP's prompt: tokens after the input")
    assert marks["DP 1"] == places[1] and marks["DP 2"] == places[3]  # the strip counts tokens after the input
    assert sure.count("Place (choice") == 2  # how sure DP is of each row's place
    # CB #13, deep DP: the reading, the strip and the layout say one place, counted the same way
    _, _, _, _, _, dp_layout, dp_reading, *_, what_if, _ = compared(shared, "cb", 13, "deep")
    after, before = re.search(r"Its place: (\d+) vectors? after the input and (\d+) before it", dp_reading).groups()
    assert marked(what_if, "Moving DP's prompt: tokens after the input")["DP"] == after
    assert f"The input's positions start at <b>{before}</b>" in dp_layout
    assert "before the input)" not in what_if  # no strip counts the other way


def test_a_strip_marks_the_fixed_layout_and_dp_s_own_choice_which_wins_a_shared_square():
    from dp_core.explain import InstanceDecision

    def decision(after: int, length: int) -> InstanceDecision:
        return InstanceDecision(0, length - after, after, after, length, 16, [1.0], [0.0] * 17, [0.0] * 16, [0.5, 0.5],
                                [], False)

    assert what_if_marks("position", [decision(5, 12)]) == {0: "fixed", 5: "DP"}
    assert what_if_marks("position", [decision(0, 12)]) == {0: "DP"}
    assert what_if_marks("position", [decision(1, 9), decision(5, 9)]) == {0: "fixed", 1: "DP 1", 5: "DP 2"}
    assert what_if_marks("length", [decision(1, 9)]) == {15: "fixed", 8: "DP"}


def test_the_first_example_keeps_the_visitor_s_task_or_says_which_it_shows(shared):
    moved = list(show_example(shared, "cb", None))[-1]
    task, backbone, dp_kind, left, *_ = moved[:SETTINGS]
    shown, _ = first_example(shared, "cb")
    assert task == shown != "cb" and backbone == DEFAULT_BACKBONE
    assert "cb has no dev item where DP's place flips a clear answer" in moved[SETTINGS + PICKED]
    assert dp_kind.value == "input" and left.value == "counterpart"
    kept = list(show_example(shared, shown, None))[-1]
    assert kept[0] == shown and "has no dev item" not in kept[SETTINGS + PICKED]


def test_the_examples_shown_first_have_a_clear_answer_that_the_place_changes(shared):
    task, index = first_example(shared, "cb")
    outputs = compared(shared, task, index, "input")
    dp, what_if = outputs[4], outputs[-2]  # DP's class probabilities, the strips
    top, second = sorted(dp.values(), reverse=True)[:2]
    assert top - second >= CLEAR_MARGIN  # not a coin toss, which any move would flip
    assert re.search(r"At \d+ of \d+ places the answer changes from DP's", what_if)


def test_each_tab_offers_the_prompts_that_exist_for_its_task_and_backbone(shared):
    decoder = shared.offer(None, "wic", SMOLLM2, "deep")
    assert decoder.dp_kinds == ["input"] and decoder.dp_kind == "input"  # the decoder ships input DP only
    assert decoder.lefts == [(f"like for like: {state.PROMPT_TUNING}", "counterpart")]  # and no P-tuning v2
    encoder = shared.offer(None, "cb", DEFAULT_BACKBONE, "input")
    assert encoder.dp_kinds == ["input", "deep"] and encoder.dp_kind == "input"
    assert [value for _, value in encoder.lefts] == ["counterpart", "ptv2"]
    assert [value for _, value in shared.offer(None, "cb", DEFAULT_BACKBONE, "deep").lefts] == ["counterpart"]
    nothing = shared.offer(None, "cb", "bert-base-uncased", "deep")
    assert nothing.dp_kinds == [] and nothing.dp_kind == "deep"  # nothing trained: the page says to train


def test_the_place_matters_most_on_the_decoder_as_its_runs_recorded(shared):
    task, backbone, share = shared.place_matters_most()[0]
    assert (task, backbone) == ("wic", SMOLLM2) and share > 0.8
    assert all(share >= later for *_, later in shared.place_matters_most())


def test_the_backbone_picker_names_fit_its_box():
    assert all(len(label) <= 40 for label, _ in state.BACKBONE_CHOICES)
    assert "decoder" in dict((value, label) for label, value in state.BACKBONE_CHOICES)[SMOLLM2]


def test_word_pieces_are_drawn_joined_and_said_once():
    wordpiece = [("[CLS]", "input"), ("sens", "input"), ("##ation", "input"), ("P1", "prompt-after"), ("a", "input")]
    assert views.word_pieces(wordpiece) == [False, False, True, False, False]
    byte_level = [(" She", "input"), (" t", "input"), ("rem", "input"), ("or", "input"), (".", "input")]
    assert views.word_pieces(byte_level) == [False, False, True, True, False]
    drawn = views.strip_html(wordpiece)
    assert "##" not in drawn and drawn.count("data-piece=1") == 1
    assert views.word_pieces([("the", "input"), ("cat", "input")]) == [False, False]  # WordPiece words: not pieces


def test_the_lesson_says_the_figures_the_page_shows(shared):
    from pathlib import Path

    lesson = (Path(__file__).parent.parent / "docs" / "teaching.md").read_text()
    task, index = first_example(shared, "cb")
    assert f"{task.upper()} dev example {index}" in lesson  # step 2, as the page opens it from CB
    most, _, share = shared.place_matters_most()[0]
    assert f"the place changes {share:.0%}".replace("%", " %") in lesson and most.upper().replace("WIC", "WiC") in lesson
