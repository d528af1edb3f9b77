"""Learn: soft prompts, prompt tuning, P-tuning v2 and DP in a short text and a figure."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from dp_core.backbone import FAMILIES, POSITIONS
from dp_core.draws import draw_choices

from .. import readings
from ..state import ASSETS

DRAWS = 1000  # hard draws per picture: their shares sit within about 3 points of the chances


def build() -> None:
    gr.Markdown(LEARN_TEXT)
    figure = ASSETS / "how_dp_works.png"
    if figure.exists():
        gr.Image(str(figure), show_label=False, interactive=False)
    build_playground()
    gr.Markdown(PLACES_TEXT)
    families = ASSETS / "places_by_family.png"
    if families.exists():
        gr.Image(str(families), show_label=False, interactive=False)
    gr.Markdown("\n".join(family_line(family) for family in FAMILIES))
    gr.Markdown(CHOICES_TEXT)


PLACES = 4  # candidates in the playground: few enough to read each bar
START_SCORES = (1.5, 0.5, 0.0, -1.0)


def draws_frames(*scores_and_temperature_and_seed) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """The playground's three plots and its reading, for the sliders' scores, the temperature and the seed."""
    *scores, temperature, seed = scores_and_temperature_and_seed
    draws = draw_choices([float(score) for score in scores], float(temperature), DRAWS, int(seed or 0))

    def frame(values: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"place": [str(place) for place in range(len(values))], "share": values})

    return (frame(draws.probabilities), frame(draws.hard_shares), frame(draws.soft_sample),
            readings.draws_reading(draws, float(temperature), DRAWS))


def build_playground() -> None:
    """Play with the choice: scores for four places, a temperature, and what Gumbel-Softmax draws from them."""
    gr.Markdown("## Play with the choice\nDP scores each place, adds random (Gumbel) noise and takes the top one. "
                "Move the scores and the temperature; watch what is drawn.")
    with gr.Row():
        scores = [gr.Slider(-4, 4, value=value, step=0.1, label=f"score of place {place}")
                  for place, value in enumerate(START_SCORES)]
    with gr.Row():
        temperature = gr.Slider(0.1, 5.0, value=1.0, step=0.1, label="temperature τ")
        redraw = gr.Button("Draw again")
    seed = gr.State(0)
    *first, first_reading = draws_frames(*START_SCORES, 1.0, 0)
    with gr.Row():
        plots = [gr.BarPlot(frame, x="place", y="share", y_lim=[0, 1], title=title, x_title="tokens after the input")
                 for frame, title in zip(first, ("Chance of each place (softmax)",
                                                 f"{DRAWS:,} hard draws: share of each place",
                                                 "One soft draw at τ (what the gradient sees)"))]
    reading = gr.Markdown(first_reading)
    with gr.Accordion("How a drawn choice learns", open=False):
        gr.Markdown(ESTIMATORS_TEXT)

    # Listeners: a few hundred floats per change, no model: answered at once, outside the queue.
    inputs = [*scores, temperature, seed]
    for control in (*scores, temperature):
        control.change(draws_frames, inputs, [*plots, reading], queue=False, api_visibility="private")
    redraw.click(next_seed, seed, seed, queue=False, api_visibility="private").then(
        draws_frames, inputs, [*plots, reading], queue=False, api_name="draw_choices")


def next_seed(seed: int) -> int:
    return int(seed or 0) + 1


ESTIMATORS_TEXT = """
- **Straight-through**: the forward pass uses the hard pick; the backward pass uses the gradient of the soft draw.
  A low τ makes the soft draw close to the pick, but its gradient noisier.
- **Score function**: the choice's log-probability is pushed up or down by the loss that pick got. It needs no soft
  draw, but many draws to average out its noise.
"""


def family_line(family) -> str:
    kinds = ", ".join(f"{kind} ({POSITIONS[kind]} positions)" for kind in family.model_types)
    deep = f" Deep prompts: refused ({family.no_deep_prompts})." if family.no_deep_prompts else ""
    return f"- **{family.name.capitalize()}s** — {kinds}. {family.place}{deep}"


PLACES_TEXT = """
## What a prompt's place means in each kind of model
Where DP can put the prompt matters only as much as the model lets it. Each grid below shows who reads whom in
one layer of attention (a dark cell: the row's token reads the column's), for a prompt placed before the input
and one placed after it.
"""


LEARN_TEXT = """
## Soft prompts in four steps
1. **A frozen model.** A pretrained model reads text: an encoder such as BERT by default, or a decoder such as
   SmolLM2. Its weights never change.
2. **Prompt tuning** (Lester et al. 2021) puts a few learned vectors, *soft prompt tokens*, in front of the input.
   Only they (and a small classifier head) are trained.
3. **P-tuning v2** (Liu et al. 2021) goes deeper: learned keys and values in *every* layer, the same for every input.
4. **Dynamic Prompting** (Yang et al. 2023) lets each input decide, through a small network that reads the input.
   It picks *where* the prompt goes, *how long* it is, and *which* mix of a pool of prompts.
   Training draws these choices at random (Gumbel-Softmax); at test time the most likely one is taken.

In the picture, blue tokens are before the input, orange ones after it, dashed ones switched off.
"""

CHOICES_TEXT = """
## Is DP deciding anything?
A choice is worth showing only if DP learned it and it changes something. Compare and Explore say which:
- **How sure**: the probability DP gives its own choice, beside what no preference would give it.
- **The same place for almost every item**: then DP acts as one place for the whole task.
- **What the place changes**: the what-if strip moves DP's prompt to every place. One colour everywhere means the
  place does not matter for this example.
- **What the choices are worth**: DP's own places against the best single place, and against the best place for
  each item (an upper bound that chance inflates on a small dev set).
"""
