"""What the shipped prompts answer in docs/teaching.md's lesson: the page's own readings, printed.

    python -m benchmarks.lesson --data-dir ../shared/superglue

Step 2 (the first example where the place changes the answer), step 3 (Explore on that task), and the three picked
examples on CB's input DP, each as the app says it; nothing is trained and the backbone runs only for Compare's
two predictions.
"""

from __future__ import annotations

import argparse
import re

from app.state import Shared
from app.tabs.compare import NOTABLE, notable_index, pick_example, run_compare
from app.tabs.explore import run_exploration
from app.tabs.start import first_example


def plain(text: str) -> str:
    """A reading without its Markdown and HTML."""
    return re.sub(r"<[^>]+>|\*\*|\*", "", text.replace("<br>", " ").replace("\n\n", " ")).strip()


def compare_example(shared: Shared, task: str, index: int, where: str = "input", left: str = "P-tuning v2") -> None:
    state, _, *boxes, question = pick_example(shared, task, index, None)
    *_, outputs = run_compare(shared, task, *boxes, question, where, left, state=state)
    note, fixed, _, fixed_reading, dp, _, dp_reading, *_, sure, what_if, _ = outputs
    print(f"  {plain(note)}")
    for side, probabilities, reading in (("left", fixed, fixed_reading), ("right", dp, dp_reading)):
        answer = max(probabilities, key=probabilities.get)
        print(f"  {side}: {answer} ({probabilities[answer]:.0%}) — {plain(reading)}")
    for sentence in re.findall(r"<p>(.*?)</p>", what_if):
        print(f"  what if: {plain(sentence)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    shared = Shared(args.data_dir)
    task, index = first_example(shared)
    print(f"Step 2: {task} dev example {index}, input DP beside P-tuning v2")
    compare_example(shared, task, index)
    *_, last = run_exploration(shared, task, "input", "P-tuning v2")
    table, beat, verdict = last[0], last[1], last[2]
    print(f"Step 3: {task} dev set, input DP against P-tuning v2")
    for row in table.itertuples(index=False):
        print(f"  {row[0]}: {row[1]:.3f} ({row[2]}) on {row[3]} items")
    for line in (beat + "\n\n" + verdict).split("\n\n"):
        print(f"  {plain(line)}")
    for which in NOTABLE:
        try:
            picked = notable_index(shared, which, "cb", "input", "sentence-transformers/all-MiniLM-L6-v2", None)
        except Exception as error:  # noqa: BLE001 (the page says it as a one-line error)
            print(f"CB input DP, {which}: {error}")
            continue
        print(f"CB input DP, {which}: dev example {picked}")
        compare_example(shared, "cb", picked)


if __name__ == "__main__":
    main()
