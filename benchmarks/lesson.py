"""What the shipped prompts answer in docs/teaching.md's lesson: the page's own readings, printed.

    python -m benchmarks.lesson --data-dir ../shared/superglue

Step 2 (the first example where the place changes a clear answer, looked for on CB first, as the page does), step 3
(Explore on that task), step 4 (where the place matters most: a decoder's example, then its Explore), the three
picked examples on CB's input DP, and how many words Compare says on the examples students met. Nothing is trained;
the backbones run only for Compare's predictions.
"""

from __future__ import annotations

import argparse
import html
import re

from app.state import Shared
from app.tabs.compare import NOTABLE, notable_index, pick_example, run_compare
from app.tabs.explore import run_exploration
from app.tabs.start import PLACE_MATTERS, first_example
from dp_core.backbone import DEFAULT_BACKBONE

# The examples whose Compare prose students read (issue 46): (task, dev index), each with both kinds of DP.
READ_BY_STUDENTS = (("cb", 13), ("copa", 97), ("wic", 5), ("rte", 3))
WORDS_AT_MOST = 200  # what Compare may say on one example, in words (the pictures' labels and tokens not counted)


def plain(text: str) -> str:
    """A reading without its Markdown and HTML."""
    return re.sub(r"<[^>]+>|\*\*|\*", "", text.replace("<br>", " ").replace("\n\n", " ")).strip()


def visible_words(outputs: list) -> int:
    """The words of prose Compare shows (its note, readings, meters, strips' titles and sentences, the place's
    sentence): not the input's own tokens on the chips, not the numbers on the strips' squares, not signs (▲ ■)."""
    note, _, fixed_layout, fixed_reading, _, dp_layout, dp_reading, *_, sure, what_if, place = outputs
    shown = " ".join(text for text in (note, fixed_layout, fixed_reading, dp_layout, dp_reading, sure, what_if, place)
                     if isinstance(text, str))
    shown = re.sub(r'<span class="dp-token"[^>]*>[^<]*</span>', " ", shown)  # the input's tokens and the prompt's
    shown = re.sub(r"<div class='dp-cell'.*?</div></div>", " ", shown, flags=re.S)  # a square: its number, its mark
    return sum(any(character.isalnum() for character in word) for word in html.unescape(plain(shown)).split())


def compare_example(shared: Shared, task: str, index: int, where: str = "input", left: str = "counterpart",
                    backbone: str = DEFAULT_BACKBONE, show: bool = True) -> list:
    """Compare on a dev example as the page shows it (printed when ``show``); its outputs."""
    state, _, *boxes, question = pick_example(shared, task, index, None)
    *_, outputs = run_compare(shared, task, *boxes, question, where, left, backbone, state=state)
    note, fixed, _, fixed_reading, dp, _, dp_reading, *_, sure, what_if, place = outputs
    if show:
        print(f"  {plain(note)}")
        for side, probabilities, reading in (("left", fixed, fixed_reading), ("right", dp, dp_reading)):
            answer = max(probabilities, key=probabilities.get)
            print(f"  {side}: {answer} ({probabilities[answer]:.0%}) — {plain(reading)}")
        for title in re.findall(r"<div class='dp-meter'[^>]*><div[^>]*>(.*?)</div>", sure):
            print(f"  meter: {plain(title)}")
        for sentence in re.findall(r"<p>(.*?)</p>", what_if):
            print(f"  what if: {plain(sentence)}")
        print(f"  place: {plain(place)}")
    return outputs


def explore_verdict(shared: Shared, task: str, backbone: str = DEFAULT_BACKBONE) -> None:
    """Explore's scores and verdict for input DP beside prompt tuning, as the page says them."""
    *_, last = run_exploration(shared, task, "input", "counterpart", backbone)
    table, beat, verdict = last[0]["value"], last[1], last[2]
    for row in table.itertuples(index=False):
        print(f"  {row[0]}: {row[1]:.3f} ({row[2]}) on {row[3]} items")
    for line in (beat + "\n\n" + verdict).split("\n\n"):
        print(f"  {plain(line)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    shared = Shared(args.data_dir)
    task, index = first_example(shared, "cb")
    print(f"Step 2 (task cb picked): {task} dev example {index}, input DP beside prompt tuning")
    compare_example(shared, task, index)
    print(f"Step 3: {task} dev set, input DP against prompt tuning")
    explore_verdict(shared, task)
    most_task, backbone, share = shared.place_matters_most()[0]
    picked = notable_index(shared, PLACE_MATTERS, most_task, "input", backbone, None)
    print(f"Step 4: {most_task} on {backbone}, where the place changes {share:.0%} of the dev answers: "
          f"dev example {picked}")
    compare_example(shared, most_task, picked, backbone=backbone)
    print(f"Step 4, Explore: {most_task} dev set on {backbone}")
    explore_verdict(shared, most_task, backbone)
    for which in NOTABLE:
        picked = notable_index(shared, which, "cb", "input", DEFAULT_BACKBONE, None)
        print(f"CB input DP, {which}: {picked if isinstance(picked, str) else f'dev example {picked}'}")
        if not isinstance(picked, str):
            compare_example(shared, "cb", picked)
    print(f"Words Compare says (at most {WORDS_AT_MOST}):")
    for task, index in READ_BY_STUDENTS:
        counts = [visible_words(compare_example(shared, task, index, where, show=False)) for where in ("deep", "input")]
        print(f"  {task} #{index}: deep DP {counts[0]}, input DP {counts[1]}")


if __name__ == "__main__":
    main()
