"""Compare: one example, a fixed prompt on the left and DP on the right. A picture per question: where each method
put its prompt (the token strip), how sure DP was (a meter against no preference), and what moving the prompt would
change (a strip of the answer at every place); every probability one click deeper."""

from __future__ import annotations

import functools
import html
import random
from dataclasses import dataclass, field

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE, BackboneError
from dp_core.choices import chosen_factors, layout_confidence
from dp_core.comparison import notable_items
from dp_core.data import collate
from dp_core.explain import InstanceDecision, counterfactuals, explain_examples
from dp_core.tasks import DataError, Example, example_from_fields, get_task

from .. import readings, views
from ..state import (DEV_LIMIT, DP_WHERE, FIELD_LABELS, FIXED, MAX_CHARS, PickedExample, Session, Shared,
                     counterfactual_limit, learned_nothing, left_choices, recorded, task_fields)

WHAT_IF = ("position", "length")  # the factors whose "what if" Compare draws
WHAT_IF_NAMES = {"position": "place", "length": "length"}
WHAT_IF_TITLES = {"position": "Moving DP's prompt: tokens after the input",
                  "length": "Making it longer or shorter: tokens on"}
# The fixed side set beside DP, by value (the radio's labels name the method: ``state.left_choices``): its like-for-like
# counterpart, or P-tuning v2 whatever DP's kind.
LEFT = ("counterpart", "ptv2")
# The dev items Compare offers beside a random one (dp_core.comparison.NotableItems), by button.
NOTABLE = {"Where the place changes the answer": "place_matters", "Where DP is sure and right": "sure_and_right",
           "Where DP has no preference": "no_preference"}


@dataclass
class CompareTab:
    """What other tabs wire to: the dev index, the sides compared (DP's kind, the fixed side) and what showing an
    item fills."""

    dev_index: gr.Number
    sides: tuple[gr.Radio, gr.Radio]  # DP on the right, the left side
    item_outputs: list  # the picked item's session, index and fields, then the comparison (``show_item``)


@dataclass
class Side:
    """One method on the example: its class probabilities, its layout drawn, where it put the prompt in words."""

    label: dict | None = None
    layout: str = ""
    reading: str = ""
    rows: list[InstanceDecision] = field(default_factory=list)  # one per row (COPA: one per choice)


@dataclass
class Comparison:
    """Everything Compare shows, in the order of its outputs."""

    note: str = ""
    fixed: Side = field(default_factory=Side)
    dp: Side = field(default_factory=Side)
    sure: str = ""  # the meters: how sure DP is of each choice
    what_if: str = ""  # the strips and what moving the prompt changes, in words
    place: str = ""  # what a prompt's place means on the backbone, in one sentence
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


def side_view(source: str, model, example: Example, task_name: str, notes: list[str], pieces: bool = True) -> Side:
    """One method's prediction, its layout drawn (one legend for its rows; what word pieces are, with ``pieces``),
    and where it put the prompt in words (each row's, where they differ); a tie said as one."""
    explanation = explain_examples(model, [example])
    truncated = f"The input was cut to its first {model.max_length} tokens."
    if explanation.truncated and truncated not in notes:
        notes.append(truncated)
    rows = explanation.item(0)
    captions = ["choice 1", "choice 2"] if len(rows) > 1 else [""]
    layers = model.backbone.num_layers
    drawing = "".join(views.layout_html(row, caption, layers, legend=None) for row, caption in zip(rows, captions))
    drawing += views.layout_legend([row.layout for row in rows if not row.deep]) + \
        (views.pieces_note(rows) if pieces else "")
    label_names = model.task.label_names
    said = [f"*{source}.* {readings.where_reading(rows, task_name)}", readings.tie_reading(rows[0].class_probs,
                                                                                          label_names)]
    return Side(views.class_probabilities(rows[0], label_names), drawing,
                " ".join(sentence for sentence in said if sentence), rows)


def chosen_candidate(factor: str, row: InstanceDecision) -> int:
    """A row's choice as the strips count it: tokens after the input (the place), or the length's index."""
    return row.tokens_after if factor == "position" else row.active_length - 1


def layouts_differ(rows: list[InstanceDecision]) -> bool:
    """Whether an item's rows (COPA's two choices) put the prompt differently."""
    return len({(row.tokens_after, row.active_length) for row in rows}) > 1


def chosen_probability(factor: str, row: InstanceDecision) -> tuple[float, float] | None:
    """How sure DP is of a row's choice of ``factor``, beside what no preference would give it (None: not chosen)."""
    if factor == "position" and row.position_probs is not None:
        return layout_confidence(row.position_probs, row.active_length, row.tokens_after)
    if factor == "length" and row.length_probs is not None:
        return row.length_probs[row.active_length - 1], 1 / len(row.length_probs)
    return None


def sure_view(model, rows: list[InstanceDecision]) -> tuple[str, list[str]]:
    """How sure DP is of its place and its length: a meter each (one per row where an item's rows chose apart),
    titled in words; and DP's habit over the dev set, where it says something."""
    stats, meters = recorded(model).get("choices") or {}, []
    first = rows[0]
    for factor in WHAT_IF:
        apart = len({chosen_candidate(factor, row) for row in rows}) > 1
        for row_index, row in enumerate(rows if apart else rows[:1]):
            sure = chosen_probability(factor, row)
            if sure is not None:
                whose = f" (choice {row_index + 1})" if apart else ""
                meters.append(views.sure_meter(readings.sure_title(factor, *sure, whose), *sure))
    if meters:
        meters.append(f"<div style='font-size:80%;color:#6b7280'>▲ {html.escape(readings.NO_PREFERENCE_MEANS)}</div>")
    said = []
    if first.position_probs is not None:
        said.append(readings.habit_reading("position", stats.get("position"), first.split_position,
                                           first.tokens_after))
    if first.length_probs is not None:
        said.append(readings.habit_reading("length", stats.get("length"), first.active_length - 1))
    return "".join(meters), [sentence for sentence in said if sentence]


def what_if_marks(factor: str, rows: list[InstanceDecision]) -> dict[int, str]:
    """The squares a strip marks: the fixed prompt's layout (all before the input, every token on), then DP's own
    choice (each row's, where they differ), which wins a shared square."""
    marks = {0 if factor == "position" else rows[0].num_slots - 1: "fixed"}
    chosen = [chosen_candidate(factor, row) for row in rows]
    if len(set(chosen)) == 1:
        marks[chosen[0]] = "DP"
    else:
        marks.update({candidate: f"DP {row + 1}" for row, candidate in enumerate(chosen)})
    return marks


def what_if(model, example, rows: list[InstanceDecision], label_names, stored: dict | None = None
            ) -> tuple[list[pd.DataFrame], list[str], str]:
    """For DP's place and length: the class probabilities at every candidate (every row of the item forced alike),
    as plot tables, in words, and as strips with DP's choice and the fixed layout marked. A place counts tokens after
    the input: places past the longest prompt are one layout (all of it after), drawn once. ``stored``: factor ->
    the item's class probabilities at every candidate, read from an analysis (then the backbone does not run)."""
    batch = None if stored else item_batch(model, example)
    own_answer = max(range(len(label_names)), key=rows[0].class_probs.__getitem__)
    frames, said, strips = [], [], []
    for factor in WHAT_IF:
        if factor not in chosen_factors(model):
            frames.append(views.empty_what_if())
            continue
        forced = (stored[factor] if stored else counterfactuals(model, batch, factor)[0]).tolist()
        if factor == "position":
            forced = forced[:max(row.active_length for row in rows) + 1]
        marks = what_if_marks(factor, rows)
        names = views.candidate_names(factor, len(forced))
        frames.append(views.counterfactual_frame(factor, forced, marks, label_names))
        strips.append(views.what_if_strip(WHAT_IF_TITLES[factor], forced, marks, names, label_names))
        predicted = [max(range(len(row)), key=row.__getitem__) for row in forced]
        said.append(readings.what_if_reading(factor, predicted, own_answer, label_names))
    if not strips:
        return frames, said, ""
    mark_words = {"fixed": "the fixed prompt's place"}
    if layouts_differ(rows):
        mark_words["DP 1, DP 2"] = "each choice's (a square moves both)"
    return frames, said, "".join(strips) + views.what_if_legend(label_names, mark_words)


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
                answer: str = "", copa_asks: str = "cause", dp_where: str = "deep", left: str = "counterpart",
                backbone_name: str = DEFAULT_BACKBONE, state: Session | None = None):
    """Predict one example with a fixed prompt and with DP; fill the fields the task uses (the others are ignored).
    COPA: ``copa_asks`` is "cause" or "effect"; ``left``: "counterpart" (like for like) or "ptv2";
    ``backbone_name``: the backbone both sides are on. The predictions come first; the what-if strips follow (read
    from the analysis for a picked dev item, else computed). Whatever goes wrong is said in the note, in one line."""
    typed = {"premise": premise, "hypothesis": hypothesis, "question": question, "passage": passage,
             "choice1": choice1, "choice2": choice2, "word": word, "sentence1": sentence1, "sentence2": sentence2,
             "text": text, "span1_text": span1_text, "span2_text": span2_text, "paragraph": paragraph,
             "answer": answer, **({"question": copa_asks} if task_name == "copa" else {})}
    backbone_name = backbone_name or DEFAULT_BACKBONE
    try:
        example, index, notes = typed_example(shared, task_name, typed, state)
        fixed, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                                  left if left in LEFT else "counterpart", backbone_name)
    except (DataError, BackboneError) as error:
        yield Comparison(note=views.error_html(str(error))).outputs()
        return
    if fixed is None and dp is None:
        yield Comparison(note=views.error_html(f"No trained prompt for {task_name} on {backbone_name} yet: train "
                                               "one on the Train tab.")).outputs()
        return
    shown = Comparison()
    for name, side in (("fixed", fixed), ("dp", dp)):
        kind = "fixed prompt" if name == "fixed" else f"DP {dp_where} prompt"
        view = side_view(*side, example, task_name, notes, pieces=name == "fixed" or fixed is None) if side else \
            Side(reading=f"*No {kind} for this task yet: train one on the Train tab.*")
        setattr(shown, name, view)
    warning = learned_nothing({name: side[1] for name, side in (("the fixed prompt", fixed), ("DP", dp)) if side})
    label_names = get_task(task_name).label_names
    if index is not None:
        notes.append(f"Gold label of dev example {index}: <b>{label_names[example.label]}</b>.")
    shown.note = "<br>".join(note for note in (warning, *notes) if note)
    if dp is None:
        yield shown.outputs()
        return
    shown.place = views.place_note(dp[1].backbone, deep=shown.dp.rows[0].deep)
    shown.sure, said = sure_view(dp[1], shown.dp.rows)
    shown.dp.reading = " ".join([shown.dp.reading, *said])
    shown.candidates = views.candidate_frames(shown.dp.rows[0])
    stored = index is not None and stored_what_if(shared, state, dp[1], task_name, index)
    if not stored:
        yield shown.outputs()  # the predictions at once; the what-if follows
    shown.what_if_frames, said, strips = what_if(dp[1], example, shown.dp.rows, label_names, stored or None)
    shown.what_if = strips + "".join(f"<p>{sentence}</p>" for sentence in said)
    yield shown.outputs()


def notable_index(shared: Shared, which: str, task_name: str, dp_where: str, backbone_name: str,
                  state: Session | None) -> int | str:
    """The dev item of a kind worth seeing (``NOTABLE``), found in the analysis of the DP shown on the right; or,
    where there is none, why, in one line."""
    _, dp = shared.models(state, task_name, dp_where if dp_where in DP_WHERE else "deep",
                          backbone=backbone_name or DEFAULT_BACKBONE)
    if dp is None:
        return f"No DP {dp_where} prompt for {task_name} on {backbone_name} yet: train one on the Train tab."
    examples = shared.dev_examples(task_name)[:DEV_LIMIT]
    analysis = shared.analysis(state, dp[1], examples, counterfactual_limit(dp[1].backbone,
                                                                            shared.backbone(DEFAULT_BACKBONE)))
    index = getattr(notable_items(analysis, examples), NOTABLE[which])
    if index is None:
        return (f"None of {task_name}'s first {len(examples)} dev items is of this kind for this DP: "
                f"{NONE[NOTABLE[which]]}")
    return index


NONE = {"place_matters": "moving its prompt never flips an answer it gives by a clear margin (20 points).",
        "sure_and_right": "it gets none right.", "no_preference": "it prefers a place for every item."}


PICKED = len(FIELD_LABELS) + 3  # what a pick fills (session, index, fields, COPA's radio): the comparison follows


def note_only(message: str) -> list:
    """What showing an item fills when it cannot: the pick left as it is, the comparison cleared, the reason in its
    note."""
    return [gr.skip()] * PICKED + Comparison(note=views.error_html(message)).outputs()


def show_item(shared: Shared, task_name: str, index, dp_where: str, left: str, backbone_name: str,
              state: Session | None):
    """A dev item picked into the fields and compared at once: what the pick and the comparison fill, in order."""
    state = state or Session()
    try:
        picked = pick_example(shared, task_name, index, state)
    except gr.Error as error:
        yield note_only(error.message)
        return
    boxes, question = picked[2:-1], picked[-1]
    for outputs in run_compare(shared, task_name, *boxes, question, dp_where, left, backbone_name, state):
        yield picked + outputs


def show_notable(shared: Shared, which: str, task_name: str, dp_where: str, left: str, backbone_name: str,
                 state: Session | None):
    """The dev item of a kind worth seeing, picked and compared; where there is none, why, in the note."""
    try:
        index = notable_index(shared, which, task_name, dp_where, backbone_name, state)
    except (DataError, BackboneError) as error:
        index = str(error)
    if isinstance(index, str):
        yield note_only(index)
        return
    yield from show_item(shared, task_name, index, dp_where, left, backbone_name, state)


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


def side_pickers(dp_label: str = "DP on the right", left_label: str = "On the left") -> tuple[gr.Radio, gr.Radio]:
    """Which DP is set on the right and which fixed prompt beside it: every choice, as the API takes them; each
    page's follow the task and the backbone (``offered``, from the page's load on)."""
    dp_kind = gr.Radio(list(DP_WHERE), value="deep", label=dp_label,
                       info="input: prompt tokens read like words; deep: vectors in every layer")
    left = gr.Radio(left_choices("input", {FIXED}), value="counterpart", label=left_label,
                    info="the fixed prompt set beside DP")
    return dp_kind, left


def offered(shared: Shared, task_name: str, backbone_name: str, dp_where: str, left: str,
            state: Session | None) -> tuple[gr.Radio, gr.Radio]:
    """The side pickers for a task on a backbone: the kinds of DP that have a prompt there (the one asked for where
    it has one) and the fixed prompts beside it (``state.Shared.offer``)."""
    offer = shared.offer(state, task_name, backbone_name or DEFAULT_BACKBONE, dp_where)
    lefts = [value for _, value in offer.lefts]
    info = ("input: prompt tokens read like words; deep: vectors in every layer" if offer.dp_kinds else
            f"nothing trained for {task_name} on this backbone yet: train on the Train tab")
    return (gr.Radio(offer.dp_kinds or list(DP_WHERE), value=offer.dp_kind, info=info),
            gr.Radio(offer.lefts, value=left if left in lefts else lefts[0]))


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
            place = gr.Markdown()
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
                                        x_title="tokens after the input" if f == "position" else "tokens on",
                                        caption="DP's own prompt at each: “· DP” its choice, “· fixed” the fixed "
                                                "prompt's layout")
                             for f in WHAT_IF]
    return ([note, fixed_label, fixed_layout, fixed_reading, dp_label, dp_layout, dp_reading, *candidates,
             *what_if_plots, sure, what_if_strips, place], [what_if_strips, *what_if_plots])


def build(shared: Shared, session: gr.State, task: gr.Dropdown, backbone: gr.Dropdown) -> CompareTab:
    with gr.Row():
        dev_index = gr.Number(0, precision=0, minimum=0, label="Dev example #")
        pick = gr.Button("Pick this dev example")
        pick_random = gr.Button("Random dev example")
    with gr.Row():
        notable = {which: gr.Button(which, size="sm") for which in NOTABLE}
    with gr.Row():
        dp_kind, left_side = side_pickers()
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
    compare_inputs = [task, *field_boxes, copa_question, dp_kind, left_side, backbone, session]
    item_outputs = pick_outputs + outputs  # in Comparison.outputs()'s order after the pick's
    for which, button in notable.items():  # the item picked and compared, as a click on each would do
        button.click(functools.partial(show_notable, shared, which), [task, dp_kind, left_side, backbone, session],
                     item_outputs, api_name=f"notable_{NOTABLE[which]}", show_progress_on=slow)
    # Progress only where the what-if part lands: the predictions, drawn first, stay in view meanwhile.
    compare.click(compared, compare_inputs, outputs, api_name="compare", show_progress_on=slow)
    return CompareTab(dev_index, (dp_kind, left_side), item_outputs)


assert list(FIELD_LABELS) == ["premise", "hypothesis", "question", "passage", "choice1", "choice2", "word",
                              "sentence1", "sentence2", "text", "span1_text", "span2_text", "paragraph", "answer"], \
    "run_compare's named parameters follow FIELD_LABELS"
