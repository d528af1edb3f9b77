"""The page: a task picker over the Start, Train, Compare, Explore, Learn and Your data tabs (a module each in app/tabs).

UI only: every computation is a call into dp_core. What the tabs share (backbones, ready-trained prompts,
session state) lives in app/state.py.
"""

from __future__ import annotations

import gradio as gr

from dp_core.tasks import TASKS

from .state import Session, Shared
from .tabs import compare, explore, learn, start, train, your_data


def build_demo(data_dir: str | None = None) -> gr.Blocks:
    shared = Shared(data_dir)
    with gr.Blocks(title="Dynamic Prompting Lab") as demo:
        session = gr.State(None, time_to_live=3600, delete_callback=lambda s: s and s.close())
        gr.Markdown("# Dynamic Prompting Lab\nWhere should a learned prompt go? Dynamic Prompting lets each input "
                    "choose; fixed P-tuning v2 does not. Start with three clicks.")
        task = gr.Dropdown(list(TASKS), value="cb", label="SuperGLUE task")
        with gr.Tabs() as tabs:
            with gr.Tab("Start here", id="start"):
                start_tab = start.build()
            with gr.Tab("Train", id="train"):
                train_backbone = train.build(shared, session, task)
            with gr.Tab("Compare", id="compare"):
                compare_tab = compare.build(shared, session, task)
            with gr.Tab("Explore", id="explore"):
                explore_tab = explore.build(shared, session, task, compare_tab, tabs)
            with gr.Tab("Learn", id="learn"):
                learn.build()
            with gr.Tab("Your data", id="your-data"):
                your_data.build(shared)
        start.wire(start_tab, shared, task, tabs, compare_tab, explore_tab)
        # Compare and Explore show the backbone one trains on (each can still pick another)
        train_backbone.change(lambda name: (name, name), train_backbone, [compare_tab.sides[2], explore_tab.sides[2]],
                              api_visibility="private", queue=False)
        demo.load(Session, None, session, api_visibility="private")
    return demo
