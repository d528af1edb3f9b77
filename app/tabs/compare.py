"""Compare: one example, a fixed prompt on the left and DP on the right; where DP put the prompt, how sure it
was, and what the prediction would be with the prompt anywhere else."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.choices import change_reading, chosen_factors, confidence_reading
from dp_core.data import collate
from dp_core.comparison import notable_items
from dp_core.explain import counterfactuals, explain_examples, plain_reading
from dp_core.tasks import DataError, example_from_fields, get_task

from .. import views
from ..state import (BACKBONE_CHOICES, DEV_LIMIT, DP_WHERE, FIELD_LABELS, HOSTED, MAX_CHARS, Session, Shared,
                     counterfactual_limit, learned_nothing, recorded, task_fields)

WHAT_IF = ("position", "length")  # the factors whose "what if" plot Compare draws
LEFT = {"its fixed counterpart (like for like)": "counterpart", "P-tuning v2": "ptv2"}
# The dev items Compare offers beside a random one (dp_core.comparison.NotableItems), by button.
NOTABLE = {"Where the place changes the answer": "place_matters", "Where DP is sure and right": "sure_and_right",
           "Where DP has no preference": "no_preference"}


@dataclass
class CompareTab:
    """What other tabs wire to: the dev index box, which models are compared, the pick step and the comparison."""

    dev_index: gr.Number
    sides: tuple[gr.Radio, gr.Radio, gr.Dropdown]  # DP on the right, the left side, the backbone
    pick: tuple  # (function, inputs, outputs)
    compare: tuple  # (function, inputs, outputs)


def dev_summary(model) -> dict:
    """DP's choice statistics on dev as recorded when it was trained (session runs and checkpoints)."""
    return recorded(model).get("choices") or {}


def item_batch(model, example):
    """One example as a batch (COPA: its two rows)."""
    split = model.encode_examples([example])
    return collate(split, [0], model.backbone.tokenizer.pad_token_id).to(model.backbone.device)


def confidence(model, decision) -> list[str]:
    """How sure DP is of each choice it made for this example (cheap: no candidate is tried)."""
    stats = dev_summary(model)
    probs = {"position": decision.position_probs, "length": decision.length_probs}
    return [confidence_reading(factor, probs[factor], stats.get(factor), decision.active_length)
            for factor in WHAT_IF if probs[factor] is not None]


def what_if(model, example, decision, label_names, stored: dict | None = None) -> tuple[list[pd.DataFrame], list[str]]:
    """For DP's position and length: the class probabilities with that factor at every candidate (every row of
    the item forced alike), DP's own choice (``decision``: the item's first row, from ``explain_examples``) and
    the fixed layout marked, and what moving it changes, in words. ``stored``: factor -> the item's class
    probabilities at every candidate, read from an analysis (then the backbone does not run)."""
    batch = None if stored else item_batch(model, example)
    chosen = {"position": decision.split_position, "length": decision.active_length - 1}
    fixed = {"position": 0, "length": decision.num_slots - 1}
    frames, readings = [], []
    for factor in WHAT_IF:
        if factor not in chosen_factors(model):
            frames.append(pd.DataFrame(columns=["candidate", "class", "probability"]))
            continue
        forced = (stored[factor] if stored else counterfactuals(model, batch, factor)[0]).tolist()
        frames.append(views.counterfactual_frame(factor, forced, chosen[factor], fixed[factor], label_names))
        readings.append(change_reading(factor, forced, chosen[factor], label_names))
    return frames, readings


def stored_what_if(shared: Shared, state: Session, model, task_name: str, index: int) -> dict | None:
    """A dev item's class probabilities at every candidate, from an analysis at hand (shipped, or made by Explore)."""
    known = shared.known_analysis(state, model, shared.dev_examples(task_name)[:DEV_LIMIT])
    if known is None or index >= known.counterfactual_items:
        return None
    return {factor: forced[index] for factor, forced in known.counterfactual.items()}


def notable_index(shared: Shared, which: str, task_name: str, dp_where: str, backbone_name: str,
                  state: Session | None) -> int:
    """The dev item of a kind worth seeing (``NOTABLE``), found in the analysis of the DP shown on the right."""
    _, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                          backbone=backbone_name or DEFAULT_BACKBONE)
    if dp is None:
        raise gr.Error(f"No DP {dp_where} prompt for {task_name} on {backbone_name} yet: train one on the Train tab.")
    try:
        examples = shared.dev_examples(task_name)[:DEV_LIMIT]
    except DataError as error:
        raise gr.Error(str(error)) from None
    analysis = shared.analysis(state, dp[1], examples, counterfactual_limit(dp[1].backbone,
                                                                            shared.backbone(DEFAULT_BACKBONE)))
    index = getattr(notable_items(analysis, examples), NOTABLE[which])
    if index is None:
        raise gr.Error(f"No such example among {task_name}'s first {len(examples)} dev items for this DP.")
    return index


def backbone_picker(shared: Shared) -> gr.Dropdown:
    """Which backbone's prompts are set side by side (both sides are always on the same one)."""
    ready = ", ".join(shared.ready_backbones()) or "none"
    return gr.Dropdown(BACKBONE_CHOICES, value=DEFAULT_BACKBONE, label="Backbone", allow_custom_value=not HOSTED,
                       info=f"both sides on this one: this session's runs, else ready-trained prompts ({ready})")


def build(shared: Shared, session: gr.State, task: gr.Dropdown) -> CompareTab:
    with gr.Row():
        dev_index = gr.Number(0, precision=0, minimum=0, label="Dev example #")
        pick = gr.Button("Pick this dev example")
        pick_random = gr.Button("Random dev example")
    with gr.Row():
        notable = {which: gr.Button(which, size="sm") for which in NOTABLE}
    with gr.Row():
        dp_kind = gr.Radio(list(DP_WHERE), value="deep", label="DP on the right",
                           info="input: prompt tokens read like words; deep: keys/values in every layer")
        left_side = gr.Radio(list(LEFT), value=next(iter(LEFT)), label="On the left",
                             info="prompt tuning beside input DP, P-tuning v2 beside deep DP; or P-tuning v2 always")
        backbone = backbone_picker(shared)
    inputs = {name: gr.Textbox("", label=label, lines=3 if name in ("passage", "paragraph", "text") else 1,
                               visible=name in task_fields("cb")) for name, label in FIELD_LABELS.items()}
    copa_question = gr.Radio(["cause", "effect"], value="cause", label="COPA asks for the", visible=False)
    compare = gr.Button("Compare", variant="primary")
    note = gr.HTML()
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Fixed prompt")
            fixed_label = gr.Label(label="Prediction")
            fixed_layout = gr.HTML()
            fixed_reading = gr.Markdown()
        with gr.Column():
            gr.Markdown("### Dynamic Prompting")
            dp_label = gr.Label(label="Prediction")
            dp_layout = gr.HTML()
            dp_reading = gr.Markdown()
            candidates = [gr.BarPlot(x="candidate", y="probability", title=f"How sure DP is: {name}",
                                     x_title=name, y_lim=[0, 1]) for name in views.CANDIDATE_PLOTS]
    with gr.Row():
        what_if_plots = [gr.BarPlot(x="candidate", y="probability", color="class", y_lim=[0, 1.001],
                                    title=f"What if the prompt's {'place' if f == 'position' else 'length'} "
                                          "were different: class probabilities",
                                    x_title="tokens after the input" if f == "position" else "active length",
                                    caption="“· DP” marks DP's own choice, “· fixed” the fixed prompt's layout")
                         for f in WHAT_IF]
    field_boxes = list(inputs.values())

    def show_fields(task_name):
        wanted = task_fields(task_name)
        return [gr.update(visible=name in wanted and not (task_name == "copa" and name == "question"))
                for name in inputs] + [gr.update(visible=task_name == "copa")]

    task.change(show_fields, task, [*field_boxes, copa_question], queue=False, api_visibility="private")

    def pick_example(task_name, index, state):
        state = state or Session()
        try:
            examples = shared.dev_examples(task_name)
        except DataError as error:
            raise gr.Error(str(error)) from None
        index = int(index or 0)
        if not 0 <= index < len(examples):
            raise gr.Error(f"{get_task(task_name).folder} has dev examples 0 to {len(examples) - 1}.")
        values = {name: str(value) for name, value in examples[index].fields.items()}
        state.picked = (task_name, index, values)
        boxes = [values.get(name, "") if not (task_name == "copa" and name == "question") else ""
                 for name in inputs]
        return [state, index, *boxes, values.get("question", "cause") if task_name == "copa" else "cause"]

    def random_index(task_name):
        try:
            return random.randrange(len(shared.dev_examples(task_name)))
        except DataError as error:
            raise gr.Error(str(error)) from None

    pick_outputs = [session, dev_index, *field_boxes, copa_question]
    pick.click(pick_example, [task, dev_index, session], pick_outputs, api_name="pick")
    pick_random.click(random_index, task, dev_index, api_visibility="private").then(
        pick_example, [task, dev_index, session], pick_outputs, api_visibility="private")

    def run_compare(task_name: str, premise: str = "", hypothesis: str = "", question: str = "", passage: str = "",
                    choice1: str = "", choice2: str = "", word: str = "", sentence1: str = "", sentence2: str = "",
                    text: str = "", span1_text: str = "", span2_text: str = "", paragraph: str = "",
                    answer: str = "", copa_asks: str = "cause", dp_where: str = "deep", left: str = next(iter(LEFT)),
                    backbone_name: str = DEFAULT_BACKBONE, state: Session | None = None):
        """Predict one example with a fixed prompt and with DP; fill the fields the task uses (the others are
        ignored). COPA: ``copa_asks`` is "cause" or "effect"; ``backbone_name``: the backbone both sides are on.
        Streams twice: the predictions first, then the same with the "what if" plots (DP with the prompt at every
        place and length: candidates x a forward pass)."""
        typed = {"premise": premise, "hypothesis": hypothesis, "question": question, "passage": passage,
                 "choice1": choice1, "choice2": choice2, "word": word, "sentence1": sentence1,
                 "sentence2": sentence2, "text": text, "span1_text": span1_text, "span2_text": span2_text,
                 "paragraph": paragraph, "answer": answer}
        skip = [gr.skip()] * (len(compare_outputs) - 1)
        if task_name == "copa":
            typed["question"] = copa_asks
        wanted = task_fields(task_name)
        cut = [name for name in wanted if len(typed.get(name) or "") > MAX_CHARS]
        typed = {name: (typed.get(name) or "")[:MAX_CHARS] for name in wanted}
        gold = None
        if state and state.picked and state.picked[0] == task_name and \
                all(state.picked[2].get(name, "") == typed[name] for name in wanted):
            typed = {**state.picked[2], **typed}  # keep WiC's offsets and WSC's indices of the dev record
            gold = shared.dev_examples(task_name)[state.picked[1]].label
        try:
            example = example_from_fields(task_name, typed)
        except DataError as error:
            gr.Warning(str(error))
            yield [views.error_html(str(error))] + skip
            return
        fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                                  LEFT.get(left, "counterpart"), backbone_name or DEFAULT_BACKBONE)
        if fixed is None and dp is None:
            gr.Warning(f"No trained prompt for {task_name} on {backbone_name} yet: train one on the Train tab.")
            yield [views.error_html(f"No trained prompt for this task on {backbone_name} yet.")] + skip
            return
        label_names = get_task(task_name).label_names
        outputs, notes, dp_rows = [], [], None
        if cut:
            notes.append(f"Cut to {MAX_CHARS} characters: {', '.join(cut)}.")
        for side in (fixed, dp):
            if side is None:
                kind = "fixed prompt" if side is fixed else f"DP {dp_where} prompt"
                outputs += [gr.skip(), "", f"*No {kind} for this task yet: train one on the Train tab.*"]
                continue
            source, model = side
            warning = learned_nothing(source, model)
            if warning:
                notes.append(warning)
            explanation = explain_examples(model, [example])
            if explanation.truncated:
                notes.append(f"{source}: the input was longer than {model.max_length} tokens and was truncated.")
            rows = explanation.item(0)
            captions = [f"{name}" for name in ("with choice 1", "with choice 2")] if len(rows) > 1 else [""]
            drawing = "".join(views.layout_html(row, caption) for row, caption in zip(rows, captions))
            reading = f"*{source}.* " + " ".join(plain_reading(row, task_name) for row in rows[:1])
            if side is dp:
                dp_rows = rows
                reading = "\n\n".join([reading, *confidence(model, rows[0]), views.place_note(model.backbone)])
            outputs += [views.class_probabilities(rows[0], label_names), drawing, reading]
        if gold is not None:
            notes.append(f"Gold label of dev example {state.picked[1]}: <b>{label_names[gold]}</b>.")
        frames = views.candidate_frames(dp_rows[0]) if dp_rows else [pd.DataFrame()] * 3
        plots = [gr.BarPlot(frame, sort=list(frame.get("candidate", []))) for frame in frames]  # in order
        empty = [pd.DataFrame(columns=["candidate", "class", "probability"])] * 2
        stored = dp and gold is not None and stored_what_if(shared, state, dp[1], task_name, state.picked[1])
        if not stored:
            yield ["<br>".join(notes), *outputs, *plots, *empty]  # the predictions at once; the what-if follows
        if dp_rows is None:
            return
        frames, changes = what_if(dp[1], example, dp_rows[0], label_names, stored)
        outputs[-1] = "\n\n".join([outputs[-1], *changes])
        what_ifs = [gr.BarPlot(frame, sort=list(dict.fromkeys(frame["candidate"]))) for frame in frames]
        yield ["<br>".join(notes), *outputs, *plots, *what_ifs]

    compare_outputs = [note, fixed_label, fixed_layout, fixed_reading, dp_label, dp_layout, dp_reading, *candidates,
                       *what_if_plots]
    compare_inputs = [task, *field_boxes, copa_question, dp_kind, left_side, backbone, session]
    # Progress only where the what-if part lands (DP's reading gains what moving the prompt changes): the
    # predictions, drawn first, stay in view meanwhile.
    for which, button in notable.items():  # the item, then it is picked and compared, as a click on each would do
        button.click(functools.partial(notable_index, shared, which), [task, dp_kind, backbone, session], dev_index,
                     api_name=f"notable_{NOTABLE[which]}").success(
            pick_example, [task, dev_index, session], pick_outputs, api_visibility="private").success(
            run_compare, compare_inputs, compare_outputs, api_visibility="private")
    compare.click(run_compare, compare_inputs, compare_outputs, api_name="compare",
                  show_progress_on=[dp_reading, *what_if_plots])
    return CompareTab(dev_index, (dp_kind, left_side, backbone),
                      (pick_example, [task, dev_index, session], pick_outputs),
                      (run_compare, compare_inputs, compare_outputs))


assert list(FIELD_LABELS) == ["premise", "hypothesis", "question", "passage", "choice1", "choice2", "word",
                              "sentence1", "sentence2", "text", "span1_text", "span2_text", "paragraph", "answer"], \
    "run_compare's named parameters follow FIELD_LABELS"