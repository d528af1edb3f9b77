"""What the tabs share: the methods on offer, budgets, the per-session state and the resources every visitor reads.

Shared by every visitor: the frozen backbone(s), the ready-trained prompts in assets/ (read-only) and dev sets.
Per browser session (gr.State): the runs trained in that session, the run it watches and the dev example it
picked.
Compare and Explore set side by side only models on the same backbone.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dp_core.analysis import DEV_ITEMS, DevAnalysis, add_counterfactuals, analyse, examples_fingerprint, load_analysis
from dp_core.backbone import DEFAULT_BACKBONE, DESCRIPTIONS, SMOLLM2, Backbone, load_backbone
from dp_core.config import TrainConfig
from dp_core.dynamic import READY_TRAINED, DynamicPromptConfig
from dp_core.methods import method_config_from_dict
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import MethodConfig, PromptTuningConfig, PTuningV2Config
from dp_core.tasks import OFFSET_FIELDS, Example, get_task, load_examples

from .hall import RunRecord

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The default backbone's ready-trained prompts: checkpoints/<task>/<method>; another backbone's:
# checkpoints/<backbone>/<task>/<method> (each folder's config.json names its backbone).
CHECKPOINTS = ASSETS / "checkpoints"
HOSTED = bool(os.environ.get("SPACE_ID"))  # set on Hugging Face Spaces
# What the Train tab offers (on a Space, the allow-list): the default, the SmolLM2 decoder (offline where its package
# is installed, else from the Hub), and Hub encoders.
BACKBONES = (DEFAULT_BACKBONE, SMOLLM2, "sentence-transformers/all-MiniLM-L12-v2", "bert-base-uncased", "roberta-base")
# Short names in the picker (a long one runs under its arrow); the picked one's description is said beneath it.
SHORT_NAMES = {DEFAULT_BACKBONE: "all-MiniLM-L6-v2 · encoder (default)", SMOLLM2: "SmolLM2-135M · decoder"}
BACKBONE_CHOICES = [(SHORT_NAMES.get(name, f"{name.split('/')[-1]} · encoder (Hub)"), name) for name in BACKBONES]


def backbone_description(name: str) -> str:
    """What the picked backbone is, in the picker's info line."""
    return DESCRIPTIONS.get(name, f"{name}, downloaded from the Hugging Face Hub")
HEADS = {"linear head": "linear", "verbalizer (the LM's own label words)": "verbalizer"}
MAX_BUDGET_S = int(os.environ.get("DP_MAX_BUDGET_S", "300"))  # per method, so a public Space cannot be exhausted
# The time the queue may hold (app/hall.py): the runs waiting share what is left of it, so that a
# class of visitors with different settings waits minutes, not an hour.
QUEUE_S = int(os.environ.get("DP_QUEUE_S", "600"))
# What a run in the hall costs beyond its training budget, which counts its evaluations and DP's feature pass: the
# setup and, for Your data, scoring the dev rows (about 3 s on the default backbone; benchmarks.app_speed, uploads).
HALL_RUN_OVERHEAD_S = 3.0
DEV_LIMIT = DEV_ITEMS  # dev items scored while training and in Explore: the items the shipped analyses hold
COUNTERFACTUAL_LIMIT = 100  # dev items whose every candidate Explore tries for a session's run (shipped: all of them)
MAX_CHARS = 2000  # per typed field; longer text is cut with a note (the model reads at most 128 tokens anyway)
MAX_SEED = 2**32 - 1  # what the random generators accept
T = TypeVar("T")

# The Train tab's learning rates and evaluation cadence. benchmarks.short_runs --tune measured 60 s runs on CB with
# each candidate (docs/benchmarks.md): held-out scores did not separate them; these are the results grid's rate and
# the livelier cadence.
SHORT_RUN = {"lr": 1e-2, "lr_head": 1e-2, "eval_every": 10}
# What those runs reach per task in 60 s, beside the converged scores: benchmarks.short_runs --output writes it.
SHORT_RUNS_FILE = ASSETS / "short_runs.json"
SHORT_RUNS = json.loads(SHORT_RUNS_FILE.read_text()) if SHORT_RUNS_FILE.exists() else {}

FIXED = "P-tuning v2 (fixed)"
PROMPT_TUNING = "prompt tuning (fixed)"
FULL = ("position", "length", "pool")
DP_SETTINGS = {"num_tokens": 16, **READY_TRAINED}  # DP as the ready-trained prompts were made
METHOD_CHOICES = {
    FIXED: lambda: PTuningV2Config(num_tokens=16),
    PROMPT_TUNING: lambda: PromptTuningConfig(num_tokens=16),
    "DP input: position + length + pool": lambda: DynamicPromptConfig(where="input", factors=FULL, **DP_SETTINGS),
    "DP deep: position + length + pool": lambda: DynamicPromptConfig(where="deep", factors=FULL, **DP_SETTINGS),
    "DP input: position": lambda: DynamicPromptConfig(where="input", factors=("position",), **DP_SETTINGS),
}
# The methods the Train tab starts with, per kind of backbone: on an encoder, P-tuning v2 and its deep DP; on a
# decoder, where the place of an input-level prompt decides what it can read, a fixed prefix and DP's place.
DECODERS = (SMOLLM2,)  # the offered backbones that are decoders (the others are encoders)
DEFAULT_METHODS = {"encoder": [FIXED, "DP deep: position + length + pool"],
                   "decoder": [PROMPT_TUNING, "DP input: position"]}


def default_methods(backbone: str) -> list[str]:
    return DEFAULT_METHODS["decoder" if backbone in DECODERS else "encoder"]


# The like-for-like fixed counterpart of each kind of DP: the same prompt, at the fixed place.
COUNTERPART = {"input": PROMPT_TUNING, "deep": FIXED}
DP_WHERE = ("input", "deep")

# Every field a task may ask for, with its label (COPA's cause/effect is a radio of its own).
FIELD_LABELS = {"premise": "Premise", "hypothesis": "Hypothesis", "question": "Question", "passage": "Passage",
                "choice1": "Choice 1", "choice2": "Choice 2", "word": "Word", "sentence1": "Sentence 1",
                "sentence2": "Sentence 2", "text": "Text", "span1_text": "Span 1 (the noun)",
                "span2_text": "Span 2 (the pronoun)", "paragraph": "Paragraph", "answer": "Answer"}

# ZeroGPU refuses a GPU call that asks for more than a few minutes (900 s and 1200 s are known to be refused),
# so there a whole Train run (every method) must fit in one call of at most this long.
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
GPU_CALL_MAX_S = int(os.environ.get("DP_GPU_CALL_MAX_S", "240"))
RUN_OVERHEAD_S = 60  # data, DP's dev features and the final evaluations, outside the per-method budgets


def short_run(task: str, backbone: str, budget_s: float, data_dir: str | None, k_shot: int | None = None,
              seed: int = 0, head: str = "linear", **settings) -> TrainConfig:
    """The Train tab's run of one method (its ``prompt`` set by the caller): as long as the budget allows, a constant
    learning rate (a schedule planned over an unknown number of steps would barely leave its warm-up), dev scored
    every SHORT_RUN["eval_every"] steps. ``settings`` override SHORT_RUN (benchmarks.short_runs tries them)."""
    chosen = {"warmup_ratio": 0.0, **SHORT_RUN, **settings}
    return TrainConfig(task=task, backbone=backbone, data_dir=data_dir, k_shot=k_shot,
                       fewglue=task == "boolq" and data_dir is not None, dev_limit=DEV_LIMIT, epochs=1000,
                       time_budget_s=budget_s, seed=seed, counterfactuals="none", head=HeadConfig(kind=head),
                       **chosen)


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


def method_title(method: MethodConfig) -> str:
    """How the app names a method's configuration, as in the Train tab's list."""
    if isinstance(method, DynamicPromptConfig):
        return f"DP {method.where}: {' + '.join(method.factors)}"
    return {"ptv2": FIXED, "prompt_tuning": PROMPT_TUNING}.get(method.method, method.method)


def dp_where(model: PromptClassifier) -> str | None:
    """"input" or "deep" for a DP model (both: "deep", whose place is the weaker); None for fixed methods."""
    return method_where(model.method)


def method_where(method: MethodConfig) -> str | None:
    """``dp_where`` of a method's configuration."""
    if not isinstance(method, DynamicPromptConfig):
        return None
    return "input" if method.where == "input" else "deep"


@dataclass
class Offer:
    """What Compare and Explore can set side by side for a task on a backbone: the kinds of DP that have a prompt
    there, the one to show, and the fixed prompts to set against it as a radio takes them, (label, value), like for
    like first."""

    dp_kinds: list[str]
    dp_kind: str
    lefts: list[tuple[str, str]]


def left_choices(dp_kind: str, fixed_titles: set[str]) -> list[tuple[str, str]]:
    """The fixed sides to set against a DP of ``dp_kind``, (label, value), for the fixed prompts at hand."""
    lefts = [(f"like for like: {COUNTERPART[dp_kind]}", "counterpart")]
    if COUNTERPART[dp_kind] != FIXED and FIXED in fixed_titles:
        lefts.append((FIXED, "ptv2"))
    return lefts


def recorded(model: PromptClassifier) -> dict:
    """What the run that made a model recorded, in metrics.json's shape ("best", "majority_baseline", "choices",
    "holdout_choices"): a checkpoint's summary, or the same kept by the Train tab for a session's run."""
    return (getattr(model, "metadata", None) or {}).get("summary", {})


def learned_nothing(sides: dict[str, PromptClassifier]) -> str | None:
    """One plain warning for the sides (what to call it -> model) whose recorded dev score is no better than a
    constant guess (the majority class; MultiRC: "true" for every answer, since "false" everywhere scores F1a 0)."""
    stuck, majority = {}, None
    for name, model in sides.items():
        summary = recorded(model)
        best, majority_here = summary.get("best", {}).get("score"), summary.get("majority_baseline")
        if best is not None and majority_here is not None and best <= majority_here:
            stuck[name], majority = best, majority_here
    if not stuck:
        return None
    if len(stuck) > 1:
        scores = ", ".join(f"{name} {best:.3f}" for name, best in stuck.items())
        return f"Neither prompt beats one answer for all on dev ({majority:.3f}): {scores}."
    (name, best), = stuck.items()
    return f"{name.capitalize()} scored {best:.3f} on dev: no better than one answer for all ({majority:.3f})."


def trained_on(model: PromptClassifier) -> str:
    """The backbone and head of a model where they are not the default ones, in words."""
    parts = [] if model.backbone.name == DEFAULT_BACKBONE else [f" on {model.backbone.name}"]
    if model.head_config.kind == "verbalizer":
        parts.append(" with the verbalizer head")
    return "".join(parts)


def task_fields(task_name: str) -> list[str]:
    return [name for name in get_task(task_name).input_fields if name not in OFFSET_FIELDS]


@dataclass
class PickedExample:
    """A dev example picked in Compare: its task, its index in the dev set, its fields as the boxes show them."""

    task: str
    index: int
    fields: dict[str, str]


@dataclass
class Session:
    """One browser session's own runs; nobody else sees them. Freed when the session ends."""

    # (task, backbone) -> method title -> model
    runs: dict[tuple[str, str], dict[str, PromptClassifier]] = field(default_factory=dict)
    watching: RunRecord | None = None  # the training run this session last asked for (app/hall.py)
    picked: PickedExample | None = None  # the dev example last picked in Compare
    sides: tuple[str, str] = ("deep", "counterpart")  # the DP and the fixed side the visitor last asked to compare
    analyses: dict[int, DevAnalysis] = field(default_factory=dict)  # id(model) -> its runs on dev

    def close(self) -> None:
        self.runs.clear()
        self.analyses.clear()

    def owns(self, model: PromptClassifier) -> bool:
        return any(model is own for runs in self.runs.values() for own in runs.values())


Side = tuple[str, PromptClassifier]  # (where it comes from, in words; the model)


def counterfactual_limit(backbone: Backbone, default: Backbone) -> int:
    """Explore forces every candidate (17 places, 16 lengths) on each item: on a bigger backbone it takes fewer items,
    so that the wait stays near the default's (SmolLM2: 20 items, not 100 in 7.6 min; benchmarks.backbone_cost);
    never under 20, where the intervals say how little that is."""
    return max(20, min(COUNTERFACTUAL_LIMIT, round(COUNTERFACTUAL_LIMIT * default.token_cost / backbone.token_cost)))


class Shared:
    """What every session reads: backbones (loaded once), ready-trained prompts (the default backbone's at start,
    another's when first asked for), dev sets, and the ready-trained prompts' analyses on dev (shipped beside them)."""

    def __init__(self, data_dir: str | None):
        self.data_dir = data_dir
        self.lock = threading.Lock()
        self.backbones: dict[str, Backbone] = {}
        self.dev: dict[str, list[Example]] = {}
        self.analyses: dict[int, DevAnalysis] = {}  # id(model) -> a ready-trained prompt's analysis on dev
        self.folders: dict[int, Path] = {}  # id(model) -> the folder a ready-trained prompt was loaded from
        self.results: dict[tuple, object] = {}  # what is computed from ready-trained prompts alone, once for all
        self.ready_folders: dict[tuple[str, str], dict[str, Path]] = {}  # (task, backbone) -> method title -> folder
        self.ready_methods: dict[tuple[str, str], dict[str, MethodConfig]] = {}  # the same -> its configuration
        self.place_changes: dict[tuple[str, str], float] = {}  # an input DP's share of dev answers its place changes
        for config in sorted(CHECKPOINTS.rglob("config.json")):
            record = json.loads(config.read_text())
            key, method = (record["task"], record["backbone"]), method_config_from_dict(record["method"])
            self.ready_folders.setdefault(key, {})[method_title(method)] = config.parent
            self.ready_methods.setdefault(key, {})[method_title(method)] = method
            if method_where(method) == "input":
                choices = json.loads((config.parent / "metrics.json").read_text()).get("choices") or {}
                self.place_changes[key] = (choices.get("position") or {}).get("changes_prediction") or 0.0
        self.loaded: dict[tuple[str, str], dict[str, PromptClassifier]] = {}
        for task, backbone in self.ready_folders:
            if backbone == DEFAULT_BACKBONE:
                self.ready(task)

    def backbone(self, name: str) -> Backbone:
        with self.lock:
            if name not in self.backbones:
                self.backbones[name] = load_backbone(name)
            return self.backbones[name]

    def ready(self, task: str, backbone: str = DEFAULT_BACKBONE) -> dict[str, PromptClassifier]:
        """The ready-trained prompts of a task on a backbone, by method title (loaded on first use)."""
        key = (task, backbone)
        if key not in self.loaded and key in self.ready_folders:
            frozen = self.backbone(backbone)
            models = {title: PromptClassifier.from_pretrained(folder, backbone=frozen).eval()
                      for title, folder in self.ready_folders[key].items()}
            with self.lock:
                self.loaded.setdefault(key, models)
                self.folders.update({id(model): self.ready_folders[key][title] for title, model in models.items()})
        return self.loaded.get(key, {})

    def analysis(self, state: Session | None, model: PromptClassifier, examples: list[Example],
                 counterfactual_items: int | None = 0) -> DevAnalysis:
        """A model's analysis of ``examples``, with DP's candidates tried on the first ``counterfactual_items`` (None:
        all). A ready-trained prompt's is read from beside it when its weights and items match (no backbone pass);
        anything missing is made here once and kept, for everyone (ready-trained) or for the session (its runs)."""
        known = self.known_analysis(state, model, examples)
        if known is None:
            known = analyse(model, examples, counterfactual_items=0)
        wanted = len(examples) if counterfactual_items is None else min(counterfactual_items, len(examples))
        if known.choice_probs and known.counterfactual_items < wanted:
            known = add_counterfactuals(known, model, examples, wanted)
        self.analysis_cache(state, model)[id(model)] = known
        return known

    def known_analysis(self, state: Session | None, model: PromptClassifier,
                       examples: list[Example]) -> DevAnalysis | None:
        """The analysis of ``examples`` at hand (made before, or shipped beside a ready-trained prompt); never made
        here."""
        cache = self.analysis_cache(state, model)
        known = cache.get(id(model))
        if known is None and id(model) in self.folders:
            known = cache[id(model)] = load_analysis(self.folders[id(model)], model, examples)
        return known if known is not None and known.examples == examples_fingerprint(examples) else None

    def once(self, state: Session | None, models: tuple[PromptClassifier, ...], name: str,
             compute: Callable[[], T]) -> T:
        """``compute()``, kept for every visitor when ``models`` are all ready-trained (a class asking for the same
        task's Explore waits for it once); computed afresh for a session's own runs."""
        if state is not None and any(state.owns(model) for model in models):
            return compute()
        key = (name, *(id(model) for model in models))
        if key not in self.results:
            self.results[key] = compute()
        return self.results[key]

    def analysis_cache(self, state: Session | None, model: PromptClassifier) -> dict[int, DevAnalysis]:
        """Where a model's analysis is kept: with the session for its own runs, else for everyone."""
        return state.analyses if state is not None and state.owns(model) else self.analyses

    def offer(self, session: Session | None, task: str, backbone: str, wanted: str = "deep") -> Offer:
        """The kinds of DP and the fixed sides at hand for a task on a backbone (this session's runs and the
        ready-trained), without loading any of them: the ``wanted`` kind of DP where it has a prompt, else the first
        that has one."""
        methods = dict(self.ready_methods.get((task, backbone), {}))
        methods.update({title: model.method for title, model in
                        (session.runs if session else {}).get((task, backbone), {}).items()})
        kinds = [kind for kind in DP_WHERE if any(method_where(method) == kind for method in methods.values())]
        kind = wanted if wanted in kinds or not kinds else kinds[0]
        return Offer(kinds, kind, left_choices(kind, set(methods)))

    def place_matters_most(self) -> list[tuple[str, str, float]]:
        """The ready-trained input DPs by how many dev answers their place changes, the most first: (task, backbone,
        share), as their runs recorded it."""
        ranked = sorted(self.place_changes.items(), key=lambda pair: -pair[1])
        return [(task, backbone, share) for (task, backbone), share in ranked]

    def ready_backbones(self) -> list[str]:
        """The backbones that have ready-trained prompts, the default first."""
        return sorted({backbone for _, backbone in self.ready_folders}, key=lambda name: name != DEFAULT_BACKBONE)

    def dev_examples(self, task: str) -> list[Example]:
        with self.lock:
            if task not in self.dev:
                self.dev[task] = load_examples(task, "val", self.data_dir)
            return self.dev[task]

    def available(self, session: Session | None, task: str, backbone: str = DEFAULT_BACKBONE) -> dict[str, Side]:
        """Every model for the task on that backbone by method title: this session's runs first, else the
        ready-trained."""
        sides = {title: (f"{title}, ready-trained{trained_on(model)}", model)
                 for title, model in self.ready(task, backbone).items()}
        own = (session.runs if session else {}).get((task, backbone), {})
        sides.update({title: (f"{title}, trained in this session{trained_on(model)}", model)
                      for title, model in own.items()})
        return sides

    def models(self, session: Session | None, task: str, where: str = "deep", left: str = "counterpart",
               backbone: str = DEFAULT_BACKBONE) -> tuple[Side | None, Side | None]:
        """The fixed side and the DP side for Compare and Explore, both on ``backbone``: the DP of that kind (the
        session's best run, else the ready-trained), and on the left its like-for-like fixed counterpart (prompt
        tuning for input DP, P-tuning v2 for deep DP) or, with ``left="ptv2"``, P-tuning v2 for either."""
        sides = self.available(session, task, backbone)
        own = (session.runs if session else {}).get((task, backbone), {})
        candidates = [title for title, (_, model) in sides.items() if dp_where(model) == where]
        dp = None
        if candidates:
            trained = [title for title in candidates if title in own]
            pool = trained or candidates
            best = max(pool, key=lambda title: recorded(sides[title][1]).get("best", {}).get("score", 0.0))
            dp = sides[best]
        fixed_title = FIXED if left == "ptv2" else COUNTERPART[where]
        return sides.get(fixed_title), dp
