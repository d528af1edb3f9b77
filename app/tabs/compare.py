"""Compare: one example, a fixed prompt on the left and DP on the right. A picture per question: where each method
put its prompt (the token strip), how sure DP was (a meter against no preference), and what moving the prompt would
change (a strip of the answer at every place); every probability one click deeper."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.choices import chosen_factors, layout_confidence
from dp_core.comparison import notable_items
from dp_core.data import collate
from dp_core.explain import InstanceDecision, counterfactuals, explain_examples
from dp_core.tasks import DataError, Example, example_from_fields, get_task

from .. import readings, views
from ..state import (BACKBONE_CHOICES, DEV_LIMIT, DP_WHERE, FIELD_LABELS, HOSTED, MAX_CHARS, PickedExample, Session,
                     Shared, counterfactual_limit, learned_nothing, recorded, task_fields)

WHAT_IF = ("position", "length")  # the factors whose "what if" Compare draws
WHAT_IF_NAMES = {"position": "place", "length": "length"}
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


@dataclass
class Side:
    """One method on the example: its class probabilities, its layout drawn, where it put the prompt in words."""

    label: dict | None = None
    layout: str = ""
    reading: str = ""
    decision: InstanceDecision | None = None  # its first row (COPA: the first choice's)


@dataclass
class Comparison:
    """Everything Compare shows, in the order of its outputs."""

    note: str = ""
    fixed: Side = field(default_factory=Side)
    dp: Side = field(default_factory=Side)
    sure: str = ""  # the meters: how sure DP is of each choice
    what_if: str = ""  # the strips and what moving the prompt changes, in words
    place: str = ""  # what a prompt's place means on the backbone (fine print)
    candidates: list = field(default_factory=lambda: [pd.DataFrame()] * 3)  # every candidate's probability
    what_if_frames: list = field(default_factory=lambda: [views.empty_what_if()] * 2)

    def outputs(self) -> list:
        plots = [gr.BarPlot(frame, sort=list(dict.fromkeys(frame.get("candidate", [])))) for frame in
                 [*self.candidates, *self.what_if_frames]]
        return [self.note, self.fixed.label, self.fixed.layout, self.fixed.reading, self.dp.label, self.dp.layout,
                self.dp.reading, *plots, self.sure, self.what_if, self.place]


def item_batch(model, example):
    """One example as a batch (COPA: its two rows)."""
    split = model.encode_examples([example])
    return collate(split, [0], model.backbone.tokenizer.pad_token_id).to(model.backbone.device)


def side_view(source: str, model, example: Example, task_name: str, notes: list[str]) -> Side:
    """One method's prediction, its layout drawn, and where it put the prompt in words."""
    warning = learned_nothing(source, model)
    if warning:
        notes.append(warning)
    explanation = explain_examples(model, [example])
    if explanation.truncated:
        notes.append(f"{source}: the input was longer than {model.max_length} tokens and was truncated.")
    rows = explanation.item(0)
    captions = ["with choice 1", "with choice 2"] if len(rows) > 1 else [""]
    layers = model.backbone.num_layers
    drawing = "".join(views.layout_html(row, caption, layers) for row, caption in zip(rows, captions))
    return Side(views.class_probabilities(rows[0], model.task.label_names), drawing,
                f"*{source}.* {readings.where_reading(rows[0], task_name)}", rows[0])


def sure_view(model, decision: InstanceDecision) -> tuple[str, list[str]]:
    """How sure DP is of its place and its length: a meter each, and in words (with its habit over the dev set)."""
    stats, meters, said = recorded(model).get("choices") or {}, [], []
    if decision.position_probs is not None:
        probability, share = layout_confidence(decision.position_probs, decision.active_length,
                                               decision.tokens_after)
        meters.append(views.sure_meter("How sure DP is of this place", probability, share))
        said += [readings.sure_reading("position", probability, share),
                 readings.habit_reading("position", stats.get("position"), decision.split_position,
                                        decision.tokens_after)]
    if decision.length_probs is not None:
        probability, share = decision.length_probs[decision.active_length - 1], 1 / len(decision.length_probs)
        meters.append(views.sure_meter("How sure DP is of this length", probability, share))
        said += [readings.sure_reading("length", probability, share),
                 readings.habit_reading("length", stats.get("length"), decision.active_length - 1)]
    return "".join(meters), [sentence for sentence in said if sentence]


def what_if(model, example, decision, label_names, stored: dict | None = None
            ) -> tuple[list[pd.DataFrame], list[str], str]:
    """For DP's place and length: the class probabilities at every candidate (every row of the item forced alike),
    as plot tables, in words, and as strips with DP's choice and the fixed layout marked. ``stored``: factor -> the
    item's class probabilities at every candidate, read from an analysis (then the backbone does not run)."""
    batch = None if stored else item_batch(model, example)
    chosen = {"position": decision.split_position, "length": decision.active_length - 1}
    fixed = {"position": 0, "length": decision.num_slots - 1}  # the fixed prompt's layout: all before, all on
    fixed_words = {"position": "all before", "length": "all on"}
    titles = {"position": "If the input's positions started elsewhere (prompt vectors before the input)"
              if decision.deep else "If the prompt moved (tokens after the input)",
              "length": "If the prompt were longer or shorter (active tokens)"}
    frames, said, strips = [], [], []
    for factor in WHAT_IF:
        if factor not in chosen_factors(model):
            frames.append(views.empty_what_if())
            continue
        forced = (stored[factor] if stored else counterfactuals(model, batch, factor)[0]).tolist()
        names = views.candidate_names(factor, len(forced))
        frames.append(views.counterfactual_frame(factor, forced, chosen[factor], fixed[factor], label_names))
        marks = {fixed[factor]: fixed_words[factor], chosen[factor]: "DP"}  # DP's choice wins a shared square
        strips.append(views.what_if_strip(titles[factor], forced, marks, names, label_names))
        predicted = [max(range(len(row)), key=row.__getitem__) for row in forced]
        said.append(readings.what_if_reading(factor, predicted, chosen[factor], label_names))
    return frames, said, "".join(strips)


def stored_what_if(shared: Shared, state: Session, model, task_name: str, index: int) -> dict | None:
    """A dev item's class probabilities at every candidate, from an analysis at hand (shipped, or made by Explore)."""
    known = shared.known_analysis(state, model, shared.dev_examples(task_name)[:DEV_LIMIT])
    if known is None or index >= known.counterfactual_items:
        return None
    return {factor: forced[index] for factor, forced in known.counterfactual.items()}


def typed_example(shared: Shared, task_name: str, typed: dict[str, str], state: Session | None
                  ) -> tuple[Example, int | None, list[str]]:
    """The example in the task's fields (cut to MAX_CHARS each); the dev index when it is the picked dev item
    unchanged (whose WiC offsets, WSC indices and gold label it keeps); what was cut, in words."""
    wanted = task_fields(task_name)
    cut = [name for name in wanted if len(typed.get(name) or "") > MAX_CHARS]
    typed = {name: (typed.get(name) or "")[:MAX_CHARS] for name in wanted}
    index, gold = None, None
    picked = state.picked if state else None
    if picked and picked.task == task_name and all(picked.fields.get(name, "") == typed[name] for name in wanted):
        typed, index = {**picked.fields, **typed}, picked.index
        gold = shared.dev_examples(task_name)[index].label
    notes = [f"Cut to {MAX_CHARS} characters: {', '.join(cut)}."] if cut else []
    return example_from_fields(task_name, typed, gold), index, notes


def run_compare(shared: Shared, task_name: str, premise: str = "", hypothesis: str = "", question: str = "",
                passage: str = "", choice1: str = "", choice2: str = "", word: str = "", sentence1: str = "",
                sentence2: str = "", text: str = "", span1_text: str = "", span2_text: str = "", paragraph: str = "",
                answer: str = "", copa_asks: str = "cause", dp_where: str = "deep", left: str = next(iter(LEFT)),
                backbone_name: str = DEFAULT_BACKBONE, state: Session | None = None):
    """Predict one example with a fixed prompt and with DP; fill the fields the task uses (the others are ignored).
    COPA: ``copa_asks`` is "cause" or "effect"; ``backbone_name``: the backbone both sides are on. The predictions
    come first; the what-if strips follow (read from the analysis for a picked dev item, else computed)."""
    typed = {"premise": premise, "hypothesis": hypothesis, "question": question, "passage": passage,
             "choice1": choice1, "choice2": choice2, "word": word, "sentence1": sentence1, "sentence2": sentence2,
             "text": text, "span1_text": span1_text, "span2_text": span2_text, "paragraph": paragraph,
             "answer": answer, **({"question": copa_asks} if task_name == "copa" else {})}
    try:
        example, index, notes = typed_example(shared, task_name, typed, state)
    except DataError as error:
        gr.Warning(str(error))
        yield [views.error_html(str(error))] + [gr.skip()] * (len(Comparison().outputs()) - 1)
        return
    fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                              LEFT.get(left, "counterpart"), backbone_name or DEFAULT_BACKBONE)
    if fixed is None and dp is None:
        gr.Warning(f"No trained prompt for {task_name} on {backbone_name} yet: train one on the Train tab.")
        yield [views.error_html(f"No trained prompt for this task on {backbone_name} yet.")] + \
            [gr.skip()] * (len(Comparison().outputs()) - 1)
        return
    shown = Comparison()
    for name, side in (("fixed", fixed), ("dp", dp)):
        kind = "fixed prompt" if name == "fixed" else f"DP {dp_where} prompt"
        view = side_view(*side, example, task_name, notes) if side else \
            Side(reading=f"*No {kind} for this task yet: train one on the Train tab.*")
        setattr(shown, name, view)
    label_names = get_task(task_name).label_names
    if index is not None:
        notes.append(f"Gold label of dev example {index}: <b>{label_names[example.label]}</b>.")
    shown.note = "<br>".join(notes)
    if dp is None:
        yield shown.outputs()
        return
    shown.place = views.place_note(dp[1].backbone)
    shown.sure, said = sure_view(dp[1], shown.dp.decision)
    shown.dp.reading = "\n\n".join([shown.dp.reading, *said])
    shown.candidates = views.candidate_frames(shown.dp.decision)
    stored = index is not None and stored_what_if(shared, state, dp[1], task_name, index)
    if not stored:
        yield shown.outputs()  # the predictions at once; the what-if follows
    shown.what_if_frames, said, strips = what_if(dp[1], example, shown.dp.decision, label_names, stored or None)
    shown.what_if = strips + "".join(f"<p>{sentence}</p>" for sentence in said)
    yield shown.outputs()


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


def pick_example(shared: Shared, task_name: str, index, state: Session | None) -> list:
    """A dev example into the task's fields (COPA's cause/effect into its radio); the session remembers it."""
    state = state or Session()
    try:
        examples = shared.dev_examples(task_name)
    except DataError as error:
        raise gr.Error(str(error)) from None
    index = int(index or 0)
    if not 0 <= index < len(examples):
        raise gr.Error(f"{get_task(task_name).folder} has dev examples 0 to {len(examples) - 1}.")
    values = {name: str(value) for name, value in examples[index].fields.items()}
    state.picked = PickedExample(task_name, index, values)
    boxes = [values.get(name, "") if not (task_name == "copa" and name == "question") else ""
             for name in FIELD_LABELS]
    return [state, index, *boxes, values.get("question", "cause") if task_name == "copa" else "cause"]


def random_index(shared: Shared, task_name: str) -> int:
    try:
        return random.randrange(len(shared.dev_examples(task_name)))
    except DataError as error:
        raise gr.Error(str(error)) from None


def show_fields(task_name: str) -> list:
    """The task's own fields visible, the others hidden (COPA's question is a radio)."""
    wanted = task_fields(task_name)
    return [gr.update(visible=name in wanted and not (task_name == "copa" and name == "question"))
            for name in FIELD_LABELS] + [gr.update(visible=task_name == "copa")]


def backbone_picker(shared: Shared) -> gr.Dropdown:
    """Which backbone's prompts are set side by side (both sides are always on the same one)."""
    ready = ", ".join(shared.ready_backbones()) or "none"
    return gr.Dropdown(BACKBONE_CHOICES, value=DEFAULT_BACKBONE, label="Backbone", allow_custom_value=not HOSTED,
                       info=f"both sides on this one: this session's runs, else ready-trained prompts ({ready})")


def results_layout() -> tuple[list, list]:
    """The two sides, the what-if strips and, one click deeper, every probability: the outputs in the order
    ``Comparison.outputs`` fills them, and those the slow what-if part lands in."""
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
            sure = gr.HTML()
            dp_reading = gr.Markdown()
    what_if_strips = gr.HTML()
    with gr.Accordion("Every probability behind these pictures", open=False):
        with gr.Row():
            candidates = [gr.BarPlot(x="candidate", y="probability", title=f"How sure DP is: {name}", x_title=name,
                                     y_lim=[0, 1]) for name in views.CANDIDATE_PLOTS]
        with gr.Row():
            what_if_plots = [gr.BarPlot(x="candidate", y="probability", color="class", y_lim=[0, 1.001],
                                        title="Class probabilities at every " + WHAT_IF_NAMES[f],
                                        x_title="tokens after the input" if f == "position" else "active length",
                                        caption="DP's own prompt at each: “· DP” its choice, “· fixed” the fixed "
                                                "prompt's layout")
                             for f in WHAT_IF]
        place = gr.Markdown()
    return ([note, fixed_label, fixed_layout, fixed_reading, dp_label, dp_layout, dp_reading, *candidates,
             *what_if_plots, sure, what_if_strips, place], [what_if_strips, *what_if_plots])


def build(shared: Shared, session: gr.State, task: gr.Dropdown) -> CompareTab:
    with gr.Row():
        dev_index = gr.Number(0, precision=0, minimum=0, label="Dev example #")
        pick = gr.Button("Pick this dev example")
        pick_random = gr.Button("Random dev example")
    with gr.Row():
        notable = {which: gr.Button(which, size="sm") for which in NOTABLE}
    with gr.Row():
        dp_kind = gr.Radio(list(DP_WHERE), value="deep", label="DP on the right",
                           info="input: prompt tokens read like words; deep: vectors in every layer")
        left_side = gr.Radio(list(LEFT), value=next(iter(LEFT)), label="On the left",
                             info="prompt tuning beside input DP, P-tuning v2 beside deep DP; or P-tuning v2 always")
        backbone = backbone_picker(shared)
    inputs = {name: gr.Textbox("", label=label, lines=3 if name in ("passage", "paragraph", "text") else 1,
                               visible=name in task_fields("cb")) for name, label in FIELD_LABELS.items()}
    copa_question = gr.Radio(["cause", "effect"], value="cause", label="COPA asks for the", visible=False)
    compare = gr.Button("Compare", variant="primary")
    outputs, slow = results_layout()

    # Listeners
    field_boxes = list(inputs.values())
    task.change(show_fields, task, [*field_boxes, copa_question], queue=False, api_visibility="private")
    picked = functools.partial(pick_example, shared)
    pick_outputs = [session, dev_index, *field_boxes, copa_question]
    pick.click(picked, [task, dev_index, session], pick_outputs, api_name="pick")
    pick_random.click(functools.partial(random_index, shared), task, dev_index, api_visibility="private").then(
        picked, [task, dev_index, session], pick_outputs, api_visibility="private")
    compared = functools.partial(run_compare, shared)
    compare_outputs = outputs  # in Comparison.outputs()'s order
    compare_inputs = [task, *field_boxes, copa_question, dp_kind, left_side, backbone, session]
    for which, button in notable.items():  # the item, then it is picked and compared, as a click on each would do
        button.click(functools.partial(notable_index, shared, which), [task, dp_kind, backbone, session], dev_index,
                     api_name=f"notable_{NOTABLE[which]}").success(
            picked, [task, dev_index, session], pick_outputs, api_visibility="private").success(
            compared, compare_inputs, compare_outputs, api_visibility="private")
    # Progress only where the what-if part lands: the predictions, drawn first, stay in view meanwhile.
    compare.click(compared, compare_inputs, compare_outputs, api_name="compare",
                  show_progress_on=slow)
    return CompareTab(dev_index, (dp_kind, left_side, backbone), (picked, [task, dev_index, session], pick_outputs),
                      (compared, compare_inputs, compare_outputs))


assert list(FIELD_LABELS) == ["premise", "hypothesis", "question", "passage", "choice1", "choice2", "word",
                              "sentence1", "sentence2", "text", "span1_text", "span2_text", "paragraph", "answer"], \
    "run_compare's named parameters follow FIELD_LABELS"
