"""Start here: what the app shows, in three steps of one click each. What a soft prompt is (one sentence and a
picture), one example where the prompt's place changes the answer (Compare, DP beside fixed P-tuning v2), and
whether DP beat the fixed prompt on that task (Explore)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.comparison import notable_items
from dp_core.explain import AFTER, BEFORE, INPUT

from .. import views
from ..state import DEV_LIMIT, Shared
from .compare import CompareTab
from .explore import ExploreTab

# Where the first example is looked for, in order: tasks whose input DP's place changes answers on the default
# backbone (COPA: 20 % of its dev answers; docs/findings). An input-level prompt's place is real: it is read like words.
FIRST_TASKS = ("copa", "boolq", "wic", "rte", "cb", "wsc", "multirc")
WORDS = [("[CLS]", INPUT), ("the", INPUT), ("cat", INPUT), ("sat", INPUT), ("[SEP]", INPUT)]


@dataclass
class StartTab:
    example: gr.Button
    verdict: gr.Button


def picture() -> str:
    """A fixed prompt before the input; DP's prompt split around it."""
    fixed = [WORDS[0], *[(f"P{j}", BEFORE) for j in range(1, 5)], *WORDS[1:]]
    dynamic = [WORDS[0], ("P3", BEFORE), ("P4", BEFORE), *WORDS[1:4], ("P1", AFTER), ("P2", AFTER), WORDS[4]]
    return (views.strip_html(fixed, "Fixed prompt (P-tuning v2): the same place for every input") +
            views.strip_html(dynamic, "Dynamic Prompting: each input gets its own place"))


def first_example(shared: Shared) -> tuple[str, int] | None:
    """The first shipped input DP on the default backbone with a dev item whose answer changes with the place."""
    for task in FIRST_TASKS:
        _, dp = shared.models(None, task, "input")
        if dp is None:
            continue
        examples = shared.dev_examples(task)[:DEV_LIMIT]
        analysis = shared.known_analysis(None, dp[1], examples)
        index = None if analysis is None else notable_items(analysis, examples).place_matters
        if index is not None:
            return task, index
    return None


def show_example(shared: Shared):
    """Step 2: the example set up in Compare (input DP on the right, fixed P-tuning v2 on the left)."""
    found = first_example(shared)
    if found is None:
        raise gr.Error("No ready-trained example where the place changes the answer: train one on the Train tab.")
    task, index = found
    return task, gr.Tabs(selected="compare"), index, "input", "P-tuning v2", DEFAULT_BACKBONE


def show_verdict(task: str):
    """Step 3: the same pair on the whole dev set, in Explore."""
    return gr.Tabs(selected="explore"), "input", "P-tuning v2", DEFAULT_BACKBONE


def build() -> StartTab:
    gr.Markdown("### 1. A soft prompt is a few learned vectors set beside the input of a frozen model.\n"
                "Only they are trained. Dynamic Prompting (DP) also learns *where* they go, for each input.")
    gr.HTML(picture())
    gr.Markdown("### 2. See one example where the place changes the answer")
    example = gr.Button("Show me an example", variant="primary")
    gr.Markdown("### 3. Did DP beat the fixed prompt on this task?")
    verdict = gr.Button("Score both on the dev set")
    return StartTab(example, verdict)


def wire(start: StartTab, shared: Shared, task: gr.Dropdown, tabs: gr.Tabs, compare: CompareTab,
         explore: ExploreTab) -> None:
    """The steps' clicks: each sets the tab up as a visitor would, then runs it."""
    pick, pick_inputs, pick_outputs = compare.pick
    run_compare, compare_inputs, compare_outputs = compare.compare
    start.example.click(functools.partial(show_example, shared), None,
                        [task, tabs, compare.dev_index, *compare.sides], api_name="first_example").success(
        pick, pick_inputs, pick_outputs, api_visibility="private").success(
        run_compare, compare_inputs, compare_outputs, api_visibility="private")
    run_explore, explore_inputs, explore_outputs = explore.run
    start.verdict.click(show_verdict, task, [tabs, *explore.sides], api_visibility="private").success(
        run_explore, explore_inputs, explore_outputs, api_visibility="private")
