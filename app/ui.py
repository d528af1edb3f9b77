"""The page: Train, Compare, Explore and Learn tabs. UI only: every computation is a call into dp_core.

Shared by every visitor: the frozen backbone(s) and the ready-trained prompts in assets/ (read-only).
Per browser session (gr.State): the runs trained in that session, its Stop flag and the dev example it picked.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr
import pandas as pd

from dp_core.backbone import DEFAULT_BACKBONE, Backbone, BackboneError, load_backbone
from dp_core.dynamic import PLACE_EXPLANATION, DynamicPromptConfig
from dp_core.explain import explain_examples, plain_reading
from dp_core.metrics import compute_metrics, score_interval
from dp_core.model import PromptClassifier
from dp_core.prompts import PTuningV2Config
from dp_core.tasks import OFFSET_FIELDS, TASKS, DataError, Example, example_from_fields, get_task, load_examples
from dp_core.train import TrainConfig, load_task_data, train

from . import views

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CHECKPOINTS = ASSETS / "checkpoints"
HOSTED = bool(os.environ.get("SPACE_ID"))  # set on Hugging Face Spaces
HUB_BACKBONES = ("sentence-transformers/all-MiniLM-L12-v2", "bert-base-uncased", "roberta-base")  # allow-list
MAX_BUDGET_S = int(os.environ.get("DP_MAX_BUDGET_S", "300"))  # per method, so a public Space cannot be exhausted
DEV_LIMIT = 300  # dev items used while training and in Explore (BoolQ's 3,270 long passages take minutes on CPU)
MAX_CHARS = 2000  # per typed field; longer text is cut with a note (the model reads at most 128 tokens anyway)
FULL = ("position", "length", "pool")
METHOD_CHOICES = {
    "P-tuning v2 (fixed)": lambda: PTuningV2Config(num_tokens=16),
    "DP input: position + length + pool": lambda: DynamicPromptConfig(num_tokens=16, where="input", factors=FULL),
    "DP deep: position + length + pool": lambda: DynamicPromptConfig(num_tokens=16, where="deep", factors=FULL),
    "DP input: position": lambda: DynamicPromptConfig(num_tokens=16, where="input", factors=("position",)),
}
FIXED = "P-tuning v2 (fixed)"
# Every field a task may ask for, with its label (COPA's cause/effect is a radio of its own).
FIELD_LABELS = {"premise": "Premise", "hypothesis": "Hypothesis", "question": "Question", "passage": "Passage",
                "choice1": "Choice 1", "choice2": "Choice 2", "word": "Word", "sentence1": "Sentence 1",
                "sentence2": "Sentence 2", "text": "Text", "span1_text": "Span 1 (the noun)",
                "span2_text": "Span 2 (the pronoun)", "paragraph": "Paragraph", "answer": "Answer"}

# ZeroGPU refuses a GPU call that asks for more than a few minutes (900 s and 1200 s are known to be refused),
# so there a whole Train run (every method) must fit in one call of at most this long.
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
GPU_CALL_MAX_S = int(os.environ.get("DP_GPU_CALL_MAX_S", "240"))
RUN_OVERHEAD_S = 60  # data, DP's feature pass and the final evaluations, outside the per-method budgets


def method_budget(budget_s: float | None, methods: int, zero_gpu: bool = ZERO_GPU) -> float:
    """Seconds each method trains: the slider's value within the Space's bounds (and one GPU call on ZeroGPU)."""
    seconds = max(1.0, min(float(budget_s or 60), MAX_BUDGET_S))
    if zero_gpu:
        seconds = min(seconds, max(1.0, (GPU_CALL_MAX_S - RUN_OVERHEAD_S) / max(1, methods)))
    return seconds


def gpu_duration(task_name, backbone_name, chosen, budget_s, *rest, **named) -> int:
    """The GPU time one Train run asks ZeroGPU for (same arguments as the run)."""
    methods = len(chosen or []) or 1
    return min(GPU_CALL_MAX_S, int(methods * method_budget(budget_s, methods, zero_gpu=True) + RUN_OVERHEAD_S))


try:  # ZeroGPU Spaces: run training on the GPU; elsewhere the decorator has no effect
    import spaces

    on_gpu = spaces.GPU(duration=gpu_duration)
except ImportError:
    def on_gpu(function):
        return function


@dataclass
class Session:
    """One browser session's own runs; nobody else sees them. Freed when the session ends."""

    runs: dict[str, dict[str, PromptClassifier]] = field(default_factory=dict)  # task -> method -> best model
    cancel: threading.Event = field(default_factory=threading.Event)
    picked: tuple[str, int, dict] | None = None  # (task, dev index, its fields) last picked in Compare

    def close(self) -> None:
        self.runs.clear()


class Shared:
    """What every session reads: backbones (loaded once), ready-trained prompts, dev sets."""

    def __init__(self, data_dir: str | None):
        self.data_dir = data_dir
        self.lock = threading.Lock()
        self.backbones: dict[str, Backbone] = {}
        self.dev: dict[str, list[Example]] = {}
        default = self.backbone(DEFAULT_BACKBONE)
        self.ready: dict[str, dict[str, PromptClassifier]] = {}
        for folder in sorted(CHECKPOINTS.glob("*/*/dp_config.json")):
            model = PromptClassifier.from_pretrained(folder.parent, backbone=default)
            role = FIXED if model.method.method == "ptv2" else method_title(model.method)
            self.ready.setdefault(model.task.name, {})[role] = model.eval()

    def backbone(self, name: str) -> Backbone:
        with self.lock:
            if name not in self.backbones:
                self.backbones[name] = load_backbone(name)
            return self.backbones[name]

    def dev_examples(self, task: str) -> list[Example]:
        with self.lock:
            if task not in self.dev:
                self.dev[task] = load_examples(task, "val", self.data_dir)
            return self.dev[task]

    def models(self, session: Session | None, task: str) -> tuple[tuple[str, PromptClassifier] | None, ...]:
        """(source, model) for the fixed and the DP side: this session's runs first, else the ready-trained."""
        own = (session.runs if session else {}).get(task, {})
        ready = self.ready.get(task, {})
        fixed = (f"{FIXED}, trained in this session", own[FIXED]) if FIXED in own else \
            ((f"{FIXED}, ready-trained", ready[FIXED]) if FIXED in ready else None)
        dp_runs = {name: model for name, model in own.items() if name != FIXED}
        if dp_runs:
            name = max(dp_runs, key=lambda n: dp_runs[n].metadata.get("score", 0.0))
            dp = (f"{name}, trained in this session", dp_runs[name])
        else:
            dp = next(((f"{name}, ready-trained", model) for name, model in ready.items() if name != FIXED), None)
        return fixed, dp


def method_title(method) -> str:
    """How the app names a DP checkpoint's configuration, as in the Train tab's list."""
    return f"DP {method.where}: {' + '.join(method.factors)}"


def task_fields(task_name: str) -> list[str]:
    return [name for name in get_task(task_name).input_fields if name not in OFFSET_FIELDS]


def build_demo(data_dir: str | None = None) -> gr.Blocks:
    shared = Shared(data_dir)
    task_names = list(TASKS)

    with gr.Blocks(title="Dynamic Prompting Lab") as demo:
        session = gr.State(None, time_to_live=3600, delete_callback=lambda s: s and s.close())
        gr.Markdown("# Dynamic Prompting Lab\nSoft prompts steer a frozen encoder. **P-tuning v2** gives every "
                    "input the same prompt; **Dynamic Prompting** lets each input choose where the prompt goes, "
                    "how long it is and which mix of a pool of prompts it uses. Train both, then see the "
                    "difference on any example.")
        task = gr.Dropdown(task_names, value="cb", label="SuperGLUE task")

        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train"):
                with gr.Row():
                    backbone = gr.Dropdown([DEFAULT_BACKBONE, *HUB_BACKBONES], value=DEFAULT_BACKBONE,
                                           label="Frozen backbone", allow_custom_value=not HOSTED,
                                           info="bundled offline; the others download from the Hub")
                    methods = gr.CheckboxGroup(list(METHOD_CHOICES), value=[FIXED, "DP input: position + length + pool"],
                                               label="Methods (each gets the same budget)")
                with gr.Row():
                    budget = gr.Slider(5, MAX_BUDGET_S, value=60, step=5, label="Budget per method (seconds)")
                    k_shot = gr.Number(0, precision=0, minimum=0, label="Few-shot k (0: the whole train set)")
                    seed = gr.Number(0, precision=0, label="Seed")
                with gr.Row():
                    start = gr.Button("Train", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
                status = gr.Markdown()
                with gr.Row():
                    # A fixed colour per method: the plot keeps the colours of its first update otherwise.
                    colours = dict(zip(METHOD_CHOICES, ("#6b7280", "#2563eb", "#ea580c", "#16a34a")))
                    loss_plot = gr.LinePlot(x="step", y="loss", color="method", color_map=colours,
                                            title="Training loss")
                    dev_plot = gr.ScatterPlot(x="step", y="dev score", color="method", color_map=colours,
                                              title="Dev score (each evaluation)")
                summary = gr.Dataframe(label="Best dev score of each run", interactive=False)

            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    dev_index = gr.Number(0, precision=0, minimum=0, label="Dev example #")
                    pick = gr.Button("Pick this dev example")
                    pick_random = gr.Button("Random dev example")
                inputs = {name: gr.Textbox(label=label, lines=3 if name in ("passage", "paragraph", "text") else 1,
                                           visible=name in task_fields("cb")) for name, label in FIELD_LABELS.items()}
                copa_question = gr.Radio(["cause", "effect"], value="cause", label="COPA asks for the", visible=False)
                compare = gr.Button("Compare", variant="primary")
                note = gr.HTML()
                with gr.Row():
                    with gr.Column():
                        fixed_title = gr.Markdown("### P-tuning v2 (fixed)")
                        fixed_label = gr.Label(label="Prediction")
                        fixed_layout = gr.HTML()
                        fixed_reading = gr.Markdown()
                    with gr.Column():
                        dp_title = gr.Markdown("### Dynamic Prompting")
                        dp_label = gr.Label(label="Prediction")
                        dp_layout = gr.HTML()
                        dp_reading = gr.Markdown()
                        candidates = [gr.BarPlot(x="candidate", y="probability", title=f"Probability: {name}",
                                                 x_title=name, y_lim=[0, 1]) for name in views.CANDIDATE_PLOTS]

            with gr.Tab("Explore", id="explore"):
                gr.Markdown(f"Both methods on the task's dev set (the first {DEV_LIMIT} items).")
                run_explore = gr.Button("Evaluate on the dev set", variant="primary")
                scores = gr.Dataframe(label="Dev score with a 95 % bootstrap interval", interactive=False)
                choice_plots = []
                for split_by in ("gold label", "input length"):
                    with gr.Row():
                        choice_plots.append(gr.BarPlot(x="tokens after the input", y="items", color=split_by,
                                                       title=f"Where DP put the prompt, by {split_by}"))
                        choice_plots.append(gr.BarPlot(x="active length", y="items", color=split_by,
                                                       title=f"How long DP made it, by {split_by}"))
                disagreements = gr.Dataframe(label="Where the methods disagree (click a row to open it in Compare)",
                                             interactive=False)

            with gr.Tab("Learn", id="learn"):
                gr.Markdown(LEARN_TEXT)
                figure = ASSETS / "how_dp_works.png"
                if figure.exists():
                    gr.Image(str(figure), show_label=False, interactive=False)
                gr.Markdown(f"**What a prompt's place changes in this backbone.** {PLACE_EXPLANATION}")

        field_boxes = list(inputs.values())

        # --- Train ---------------------------------------------------------------------------------------

        @on_gpu
        def run_training(task_name, backbone_name, chosen, budget_s, k, seed_value, state,
                         progress=gr.Progress()):
            state = state or Session()
            if not chosen:
                raise gr.Error("Choose at least one method.")
            if HOSTED and backbone_name not in (DEFAULT_BACKBONE, *HUB_BACKBONES):
                raise gr.Error("This Space trains only the listed backbones.")
            wanted_s, budget_s = float(budget_s or 60), method_budget(budget_s, len(chosen))
            if ZERO_GPU and budget_s < min(wanted_s, MAX_BUDGET_S):
                gr.Info(f"On this GPU Space one run may hold the GPU for {GPU_CALL_MAX_S} s: "
                        f"each of the {len(chosen)} methods gets {budget_s:.0f} s.")
            state.cancel.clear()
            try:
                backbone_model = shared.backbone(backbone_name)
                offline_boolq = task_name == "boolq" and shared.data_dir is not None
                base = TrainConfig(task=task_name, backbone=backbone_name, data_dir=shared.data_dir,
                                   k_shot=int(k) or None, fewglue=offline_boolq, dev_limit=DEV_LIMIT,
                                   epochs=1000, time_budget_s=budget_s, eval_every=10, seed=int(seed_value or 0))
                data = load_task_data(base)
            except (DataError, BackboneError, ValueError) as error:
                raise gr.Error(str(error)) from None
            # Every chosen method appears from the first update on (an empty point at step 0): the plots fix
            # their legend from the methods they first see.
            losses = [{"method": label, "step": 0, "loss": float("nan")} for label in chosen]
            devs = [{"method": label, "step": 0, "dev score": float("nan")} for label in chosen]
            best = []
            last_yield = 0.0
            for position, label in enumerate(chosen):
                config = replace(base, prompt=METHOD_CHOICES[label]())
                for event in train(config, backbone=backbone_model, cancel=state.cancel, data=data):
                    if event.kind == "step":
                        losses.append({"method": label, "step": event.step, "loss": event.loss})
                    elif event.kind == "eval":
                        devs.append({"method": label, "step": event.step, "dev score": event.metrics["score"]})
                    else:
                        result = event.result
                        result.model.metadata = {"score": result.best_metrics["score"]}
                        state.runs.setdefault(task_name, {})[label] = result.model
                        best.append({"method": label, "best dev score": round(result.best_metrics["score"], 4),
                                     "at step": result.best_step, "stopped": result.stopped_because,
                                     "majority class score": round(result.majority_baseline, 4),
                                     "examples/s": round(event.examples_per_s, 1)})
                    fraction = min(1.0, event.elapsed_s / budget_s)
                    progress((position + fraction) / len(chosen), desc=f"{label}: step {event.step}")
                    text = (f"**{label}** ({position + 1} of {len(chosen)}): step {event.step}, "
                            f"{event.examples_per_s:.1f} examples/s, about {max(0.0, budget_s - event.elapsed_s):.0f} s "
                            f"left for this method. Train {len(data[0])} items, dev {len(data[1])}.")
                    if event.kind != "step" or time.monotonic() - last_yield > 0.5:
                        last_yield = time.monotonic()
                        yield (state, text, pd.DataFrame(losses, columns=["method", "step", "loss"]),
                               pd.DataFrame(devs, columns=["method", "step", "dev score"]), pd.DataFrame(best))
                if state.cancel.is_set():
                    break
            stopped = "Stopped; the best checkpoint so far is kept." if state.cancel.is_set() else "Done."
            yield (state, f"{stopped} Open **Compare** to see the trained prompts at work.",
                   pd.DataFrame(losses, columns=["method", "step", "loss"]),
                   pd.DataFrame(devs, columns=["method", "step", "dev score"]), pd.DataFrame(best))

        def stop_training(state):
            if state is not None:
                state.cancel.set()
            return "Stopping after the current step…"

        start.click(run_training, [task, backbone, methods, budget, k_shot, seed, session],
                    [session, status, loss_plot, dev_plot, summary], api_name="train", concurrency_limit=1,
                    concurrency_id="train")
        stop.click(stop_training, session, status, api_name="stop", queue=False)

        # --- Compare -------------------------------------------------------------------------------------

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

        def run_compare(task_name, *values):
            *texts, question, state = values
            typed = dict(zip(inputs, texts))
            if task_name == "copa":
                typed["question"] = question
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
                return [views.error_html(str(error))] + [gr.skip()] * 9
            fixed, dp = shared.models(state, task_name)
            if fixed is None and dp is None:
                gr.Warning(f"No trained prompt for {task_name} yet: train one on the Train tab.")
                return [views.error_html("No trained prompt for this task yet.")] + [gr.skip()] * 9
            label_names = get_task(task_name).label_names
            outputs, notes, dp_rows = [], [], None
            if cut:
                notes.append(f"Cut to {MAX_CHARS} characters: {', '.join(cut)}.")
            for side in (fixed, dp):
                if side is None:
                    outputs += [gr.skip(), "", "*No model on this side yet: train one on the Train tab.*"]
                    continue
                source, model = side
                explanation = explain_examples(model, [example])
                if explanation.truncated:
                    notes.append(f"{source}: the input was longer than {model.max_length} tokens and was truncated.")
                rows = explanation.item(0)
                dp_rows = rows if side is dp else None
                captions = [f"{name}" for name in ("with choice 1", "with choice 2")] if len(rows) > 1 else [""]
                drawing = "".join(views.layout_html(row, caption) for row, caption in zip(rows, captions))
                reading = f"*{source}.* " + " ".join(plain_reading(row, task_name) for row in rows[:1])
                outputs += [views.class_probabilities(rows[0], label_names), drawing, reading]
            if gold is not None:
                notes.append(f"Gold label of dev example {state.picked[1]}: <b>{label_names[gold]}</b>.")
            frames = views.candidate_frames(dp_rows[0]) if dp_rows else [pd.DataFrame()] * 3
            plots = [gr.BarPlot(frame, sort=list(frame.get("candidate", []))) for frame in frames]  # in order
            return ["<br>".join(notes), *outputs, *plots]

        compare_outputs = [note, fixed_label, fixed_layout, fixed_reading, dp_label, dp_layout, dp_reading, *candidates]
        compare_inputs = [task, *field_boxes, copa_question, session]
        compare.click(run_compare, compare_inputs, compare_outputs, api_name="compare")

        # --- Explore -------------------------------------------------------------------------------------

        def run_exploration(task_name, state):
            fixed, dp = shared.models(state, task_name)
            if fixed is None or dp is None:
                raise gr.Error("Explore needs both a fixed and a DP prompt for this task: train them first.")
            try:
                examples = shared.dev_examples(task_name)[:DEV_LIMIT]
            except DataError as error:
                raise gr.Error(str(error)) from None
            task_spec = get_task(task_name)
            labels, groups = [e.label for e in examples], [e.group for e in examples]
            results, table = {}, []
            for name, (source, model) in (("fixed", fixed), ("dp", dp)):
                explanation = explain_examples(model, examples)
                firsts = [explanation.item(i)[0] for i in range(len(examples))]
                predictions = [max(range(len(d.class_probs)), key=d.class_probs.__getitem__) for d in firsts]
                results[name] = (firsts, predictions)
                metrics = compute_metrics(task_spec.metrics, predictions, labels, groups, task_spec.num_labels)
                low, high = score_interval(task_spec.metrics, predictions, labels, groups, task_spec.num_labels)
                table.append({"method": source, "score": round(metrics["score"], 3),
                              "95 % interval": f"{low:.3f} – {high:.3f}", "items": len(examples)})
            decisions, dp_predictions = results["dp"]
            gold_names = [task_spec.label_names[y] for y in labels]
            lengths = [sum(kind == "input" for _, kind in d.layout) for d in decisions]
            frame = pd.DataFrame({"tokens after the input": [d.tokens_after for d in decisions],
                                  "active length": [d.active_length for d in decisions],
                                  "gold label": pd.Categorical(gold_names, categories=task_spec.label_names),
                                  "input length": pd.cut(lengths, bins=[0, 32, 64, 96, 10_000],
                                                         labels=["1-32 tokens", "33-64 tokens", "65-96 tokens",
                                                                 "97+ tokens"])})
            # Grouped by category first, so each legend lists labels and length bins in their own order.
            counts = [frame.groupby([split_by, choice], observed=True).size().reset_index(name="items")
                      .astype({split_by: str})
                      for split_by in ("gold label", "input length")
                      for choice in ("tokens after the input", "active length")]
            fixed_predictions = results["fixed"][1]
            rows = [{"dev #": i, "gold": gold_names[i], "fixed": task_spec.label_names[fixed_predictions[i]],
                     "DP": task_spec.label_names[dp_predictions[i]],
                     "input": " / ".join(str(v) for v in examples[i].fields.values())[:160]}
                    for i in range(len(examples)) if fixed_predictions[i] != dp_predictions[i]]
            return (pd.DataFrame(table), *counts, pd.DataFrame(rows, columns=["dev #", "gold", "fixed", "DP", "input"]))

        run_explore.click(run_exploration, [task, session], [scores, *choice_plots, disagreements],
                          api_name="explore")

        def open_in_compare(table: pd.DataFrame, event: gr.SelectData):
            row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
            return gr.Tabs(selected="compare"), int(table.iloc[row]["dev #"])

        disagreements.select(open_in_compare, disagreements, [tabs, dev_index], api_visibility="private").then(
            pick_example, [task, dev_index, session], pick_outputs, api_visibility="private").then(
            run_compare, compare_inputs, compare_outputs, api_visibility="private")

        demo.load(Session, None, session, api_visibility="private")
    return demo


LEARN_TEXT = """
## Soft prompts in four steps
1. **A frozen encoder.** A pretrained model reads text; we never change its weights.
2. **Prompt tuning** (Lester et al. 2021) puts a few learned vectors — *soft prompt tokens* — in front of the
   input. Only they (and a small classifier head) are trained.
3. **P-tuning v2** (Liu et al. 2021) goes deeper: learned keys and values in *every* layer's attention, the
   same for every input.
4. **Dynamic Prompting** (Yang et al. 2023) lets each input decide, through a small network that reads the
   frozen model's summary of the input: *where* the prompt goes (how many tokens before and after the input),
   *how long* it is (the rest are switched off) and *which* prompt (a mix of a pool of prompts). The choices
   are discrete; during training they are sampled (Gumbel-Softmax) and at evaluation the most likely one is
   taken, so the same input always gets the same prompt.

In the picture below the blue tokens are prompt tokens before the input, the orange ones after it, the dashed
ones switched off.
"""
