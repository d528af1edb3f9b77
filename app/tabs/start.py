"""Start here: what the app shows, in four steps of one click each. What a soft prompt is (one sentence and a
picture), one example where the prompt's place changes the answer (Compare, input DP beside prompt tuning), whether DP
beat the fixed prompt on that task (Explore), and where the place matters most (a decoder, in Compare)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from dp_core.backbone import DEFAULT_BACKBONE, FAMILIES, BackboneError
from dp_core.comparison import notable_items
from dp_core.explain import AFTER, BEFORE, INPUT
from dp_core.tasks import DataError

from .. import views
from ..state import DECODERS, DEV_LIMIT, PROMPT_TUNING, SHORT_NAMES, Session, Shared
from .compare import NOTABLE, PICKED, CompareTab, note_only, notable_index, offered, show_item
from .explore import ExploreTab

# Where the first example is looked for after the visitor's own task, in order: tasks whose input DP's place changes
# answers on the default backbone (COPA: 20 % of its dev answers; docs/findings). An input-level prompt's place is
# real: it is read like words.
FIRST_TASKS = ("copa", "boolq", "wic", "rte", "cb", "wsc", "multirc")
WORDS = [("[CLS]", INPUT), ("the", INPUT), ("cat", INPUT), ("sat", INPUT), ("[SEP]", INPUT)]
NOTHING_TRAINED = "No ready-trained example where the place changes the answer: train one on the Train tab."
PLACE_MATTERS = next(which for which, kind in NOTABLE.items() if kind == "place_matters")


@dataclass
class StartTab:
    example: gr.Button
    verdict: gr.Button
    most: gr.Button


def picture() -> str:
    """A fixed prompt before the input; DP's prompt split around it."""
    fixed = [WORDS[0], *[(f"P{j}", BEFORE) for j in range(1, 5)], *WORDS[1:]]
    dynamic = [WORDS[0], ("P3", BEFORE), ("P4", BEFORE), *WORDS[1:4], ("P1", AFTER), ("P2", AFTER), WORDS[4]]
    return (views.strip_html(fixed, f"{PROMPT_TUNING.capitalize()}: the same place for every input") +
            views.strip_html(dynamic, "Dynamic Prompting: a learned place, which may differ from input to input"))


def first_example(shared: Shared, task: str | None = None) -> tuple[str, int] | None:
    """The first shipped input DP on the default backbone with a dev item whose clear answer changes with the place:
    on ``task`` first, then on the tasks of ``FIRST_TASKS``."""
    for candidate in dict.fromkeys([task, *FIRST_TASKS]) if task else FIRST_TASKS:
        _, dp = shared.models(None, candidate, "input")
        if dp is None:
            continue
        examples = shared.dev_examples(candidate)[:DEV_LIMIT]
        analysis = shared.known_analysis(None, dp[1], examples)
        index = None if analysis is None else notable_items(analysis, examples).place_matters
        if index is not None:
            return candidate, index
    return None


SETTINGS = 7  # what ``settings`` fills: the task, the backbone, Compare's and Explore's side pickers, the tab


def settings(shared: Shared, task: str, backbone: str, state: Session) -> list:
    """The top pickers and both tabs' side pickers set for input DP beside its like-for-like fixed prompt, and the
    tab: Compare."""
    state.sides = ("input", "counterpart")
    dp_kind, left = offered(shared, task, backbone, *state.sides, state)
    return [task, backbone, dp_kind, left, dp_kind, left, gr.Tabs(selected="compare")]


def with_note(outputs: list, note: str) -> list:
    """What showing an item fills, with ``note`` before the comparison's own note."""
    if note:
        own = outputs[PICKED]
        outputs[PICKED] = note + (f"<br>{own}" if isinstance(own, str) and own else "")
    return outputs


def show_example(shared: Shared, task: str, state: Session | None):
    """Step 2: the visitor's task (else the first that has one) in Compare, an example where the place changes the
    answer, input DP on the right, prompt tuning on the left, on the default backbone; a move to another task said."""
    state = state or Session()
    found = first_example(shared, task)
    if found is None:
        yield [gr.skip()] * SETTINGS + note_only(NOTHING_TRAINED)
        return
    shown, index = found
    note = "" if shown == task else (f"{task} has no dev item where DP's place flips a clear answer; here is "
                                     f"{shown}'s.")
    fixed = settings(shared, shown, DEFAULT_BACKBONE, state)
    for outputs in show_item(shared, shown, index, "input", "counterpart", DEFAULT_BACKBONE, state):
        yield fixed + with_note(outputs, note)


def show_place_matters_most(shared: Shared, state: Session | None):
    """Step 4: the ready-trained input DP whose place changes the most dev answers (a decoder's), in Compare, on an
    example where it flips a clear answer."""
    state = state or Session()
    reasons = []
    for task, backbone, _ in shared.place_matters_most():
        try:
            index = notable_index(shared, PLACE_MATTERS, task, "input", backbone, state)
        except (BackboneError, DataError) as error:
            index = str(error)
        if isinstance(index, int):
            fixed = settings(shared, task, backbone, state)
            for outputs in show_item(shared, task, index, "input", "counterpart", backbone, state):
                yield fixed + outputs
            return
        reasons.append(index)
    yield [gr.skip()] * SETTINGS + note_only(reasons[0] if reasons else NOTHING_TRAINED)


def show_verdict(shared: Shared, task: str, backbone: str, state: Session | None):
    """Step 3: the same pair on the whole dev set, in Explore (the task and backbone as they are now)."""
    _, _, dp_kind, left, *_ = settings(shared, task, backbone, state or Session())
    return gr.Tabs(selected="explore"), dp_kind, left, dp_kind, left


def most_text(shared: Shared) -> str:
    """Step 4's words: why the place matters on the backbone where it changes the most answers, and how many."""
    ranked = shared.place_matters_most()
    if not ranked:
        return "Train an input-level DP on the Train tab to see where its place matters."
    task, backbone, share = ranked[0]
    family = next(family for family in FAMILIES if family.name == ("decoder" if backbone in DECODERS else "encoder"))
    name = SHORT_NAMES.get(backbone, backbone).split(" ·")[0]
    return f"{family.place_in_brief} On {name}, DP's place changes {share:.0%} of {task}'s dev answers."


def build(shared: Shared) -> StartTab:
    gr.Markdown("### 1. A soft prompt is a few learned vectors set beside the input of a frozen model.\n"
                "Only they are trained. Dynamic Prompting (DP) also learns *where* they go: per input, or one place "
                "for the whole task.")
    gr.HTML(picture())
    gr.Markdown("### 2. See one example where the place changes the answer")
    example = gr.Button("Show me an example (opens Compare)", variant="primary")
    gr.Markdown("### 3. Did DP beat the fixed prompt on this task?")
    verdict = gr.Button("Score both on the dev set (opens Explore)")
    gr.Markdown(f"### 4. Where the place matters most\n{most_text(shared)}")
    most = gr.Button("Where the place matters most (opens Compare)")
    return StartTab(example, verdict, most)


def wire(start: StartTab, shared: Shared, task: gr.Dropdown, backbone: gr.Dropdown, session: gr.State, tabs: gr.Tabs,
         compare: CompareTab, explore: ExploreTab) -> None:
    """The steps' clicks: each sets the pickers as a visitor would, then shows the result."""
    pickers = [task, backbone, *compare.sides, *explore.sides, tabs]
    start.example.click(functools.partial(show_example, shared), [task, session], pickers + compare.item_outputs,
                        api_name="first_example")
    start.most.click(functools.partial(show_place_matters_most, shared), session, pickers + compare.item_outputs,
                     api_name="place_matters_most")
    run_explore, explore_inputs, explore_outputs = explore.run
    start.verdict.click(functools.partial(show_verdict, shared), [task, backbone, session],
                        [tabs, *compare.sides, *explore.sides], api_visibility="private").success(
        run_explore, explore_inputs, explore_outputs, api_visibility="private")
