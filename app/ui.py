"""The page: a task and a backbone picker over the Start, Train, Compare, Explore, Learn and Your data tabs (a module
each in app/tabs).

UI only: every computation is a call into dp_core. What the tabs share (backbones, ready-trained prompts,
session state) lives in app/state.py. The task and the backbone are picked once, above the tabs, and every tab uses
them; Compare's and Explore's side pickers offer the prompts that exist there and follow each other.
"""

from __future__ import annotations

import functools

import gradio as gr

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.tasks import TASKS

from .hall import RunRecord, TrainingHall
from .state import BACKBONE_CHOICES, HALL_RUN_OVERHEAD_S, HOSTED, QUEUE_S, Session, Shared, backbone_description
from .tabs import compare, explore, learn, start, train, your_data
from .tabs.compare import offered

# What the page passes to ``launch`` wherever it runs (app.py, the tests): Gradio's own words for a finished event,
# which it reads to screen readers and has no English text for in this version ("common.complete"); the size of an
# upload, refused before it is stored.
LAUNCH_OPTIONS = {"i18n": gr.I18n(en={"common.complete": "Done", "common.error": "Error"}),
                  "max_file_size": your_data.MAX_BYTES}


def build_demo(data_dir: str | None = None) -> gr.Blocks:
    shared = Shared(data_dir)
    # Train's and Your data's runs, in turn
    hall = TrainingHall(functools.partial(run_in_hall, shared), QUEUE_S, HALL_RUN_OVERHEAD_S)
    with gr.Blocks(title="Dynamic Prompting Lab") as demo:
        session = gr.State(None, time_to_live=3600, delete_callback=lambda s: s and s.close())
        gr.Markdown("# Dynamic Prompting Lab\nWhere should a learned prompt go? A fixed prompt always sits in one "
                    "place; Dynamic Prompting learns where. Start with one click a step.")
        with gr.Row():
            task = gr.Dropdown(list(TASKS), value="cb", label="SuperGLUE task")
            backbone = gr.Dropdown(BACKBONE_CHOICES, value=DEFAULT_BACKBONE, label="Backbone",
                                   allow_custom_value=not HOSTED, info=backbone_description(DEFAULT_BACKBONE))
        with gr.Tabs() as tabs:
            with gr.Tab("Start here", id="start"):
                start_tab = start.build(shared)
            with gr.Tab("Train", id="train"):
                trained = train.build(shared, session, task, backbone, hall)
            with gr.Tab("Compare", id="compare"):
                compare_tab = compare.build(shared, session, task, backbone)
            with gr.Tab("Explore", id="explore"):
                explore_tab = explore.build(shared, session, task, backbone, compare_tab, tabs)
            with gr.Tab("Learn", id="learn"):
                learn.build()
            with gr.Tab("Your data", id="your-data"):
                your_data.build(hall, session)

        # Listeners
        start.wire(start_tab, shared, task, backbone, session, tabs, compare_tab, explore_tab)
        backbone.change(lambda name: gr.Dropdown(info=backbone_description(name)), backbone, backbone,
                        queue=False, api_visibility="private")
        # The side pickers offer what exists for the task on the backbone, as near the visitor's wish as it can be,
        # and Compare's and Explore's follow each other: on a visitor's change (a button that sets them sets them
        # itself), and once a run is kept. The pickers are never read back here: a pick is checked against the
        # choices at hand, which an answer on its way may have changed.
        sides = [*compare_tab.sides, *explore_tab.sides]
        follow = functools.partial(both_sides, shared)
        for picker in (task, backbone):
            picker.input(follow, [task, backbone, session], sides, api_visibility="private")
        for tab_sides in (compare_tab.sides, explore_tab.sides):
            for which, picker in enumerate(tab_sides):
                picker.input(functools.partial(wish, shared, which), [task, backbone, picker, session], sides,
                             api_visibility="private")
        trained.then(follow, [task, backbone, session], sides, api_visibility="private")
        demo.load(Session, None, session, api_visibility="private").then(
            follow, [task, backbone, session], sides, api_visibility="private")
    return demo


def run_in_hall(shared: Shared, record: RunRecord):
    """A run of the hall: a visitor's own data (Your data), or a SuperGLUE task (Train)."""
    return (your_data.execute if record.request.data is not None else train.execute)(shared, record)


def both_sides(shared: Shared, task: str, backbone: str, state: Session | None) -> list:
    """Compare's and Explore's side pickers, alike: what exists for the task on the backbone, the visitor's wish
    where it does."""
    wanted = state.sides if state else Session().sides
    return [*offered(shared, task, backbone, *wanted, state)] * 2


def wish(shared: Shared, which: int, task: str, backbone: str, picked: str, state: Session | None) -> list:
    """A visitor's pick of DP's kind (``which`` 0) or of the fixed side (1), kept as their wish; both tabs follow."""
    if state is not None:
        state.sides = tuple(picked if index == which else side for index, side in enumerate(state.sides))
    return both_sides(shared, task, backbone, state)
