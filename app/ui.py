"""The page. For now a placeholder that says what is coming; the full app is built on dp_core's public API."""

from __future__ import annotations

import gradio as gr

from dp_core.tasks import TASKS

INTRO = """# Dynamic Prompting Lab
Train soft prompts on a frozen encoder and see, side by side, what **fixed P-tuning v2** and
**Dynamic Prompting** (Yang et al. 2023) do with each input.

The interactive app is coming. Today `dp_core` trains and evaluates the fixed prompt methods
(P-tuning v2, prompt tuning, P-tuning v1, fine-tuning) on these SuperGLUE tasks:
"""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Dynamic Prompting Lab") as demo:
        gr.Markdown(INTRO + ", ".join(task.folder for task in TASKS.values()) + ".")
        gr.Markdown("Command line: `python -m dp_core.train --task rte --method ptv2 --data-dir ../shared/superglue`")
    return demo
