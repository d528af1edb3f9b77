"""What a training run is asked (TrainConfig), what it streams (TrainEvent) and what it returns (TrainResult).

Every TrainConfig field with help is also an option of ``python -m dp_core.train`` (``dp_core.options``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .backbone import DEFAULT_BACKBONE
from .heads import HeadConfig
from .labelled import TextData
from .model import PromptClassifier
from .options import comma_list, option
from .prompts import MethodConfig, PTuningV2Config
from .tasks import DataError

COUNTERFACTUAL_WHEN = ("none", "end", "every_eval")
SELECT_ON = ("dev", "holdout")
PRECISIONS = ("auto", "no", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adafactor")
SCHEDULES = ("linear", "constant")


@dataclass
class TrainConfig:
    task: str = option("rte", "boolq, cb, copa, rte, wic, wsc or multirc")
    data: str | None = option(None, "your own data instead of --task: a .csv, .tsv, .jsonl or .parquet file, or a "
                              "Hub dataset id", metavar="PATH_OR_HUB_ID")
    text_columns: tuple[str, ...] = option((), "with --data: one or two text columns, e.g. premise,hypothesis",
                                           parse=comma_list, metavar="A[,B]")
    label_column: str = option("label", "with --data: the label column (integers or strings)")
    label_names: tuple[str, ...] = option((), "with --data: the labels' names in order (default: the data's values, "
                                          "sorted)", parse=comma_list, metavar="A,B,...")
    validation: str | None = option(None, "with --data: a dev file, or the Hub dataset's split (default: its "
                                    "validation split, else a seeded 10 % of the rows)")
    prompt: MethodConfig = field(default_factory=PTuningV2Config)
    head: HeadConfig = field(default_factory=HeadConfig)
    backbone: str = option(DEFAULT_BACKBONE, "Hub id or folder")
    data_dir: str | None = option(None, "local SuperGLUE folder (default: $DP_SUPERGLUE_DIR, else the Hub)")
    k_shot: int | None = option(None, "train on k items drawn with the seed")
    fewglue: bool = option(False, "train on the 32-example FewGLUE set")
    dev_limit: int | None = option(None, "evaluate on the first N dev items only (quick runs)")
    epochs: float = option(3.0, "epochs to train")
    max_steps: int | None = option(None, "optimizer steps to train (overrides --epochs)")
    time_budget_s: float | None = option(None, "stop cleanly after this many seconds of training",
                                         flag="--time-budget")
    batch_size: int = option(16, "items per batch")
    lr: float = option(1e-2, "learning rate of the prompt (fine-tuning: of the backbone, use ~2e-5)")
    lr_head: float = option(1e-2, "learning rate of the head")
    weight_decay: float = option(0.0, "weight decay")
    optimizer: str = option("adamw", "adamw, or adafactor (transformers', at a fixed learning rate, as the prompt "
                            "tuning and DPT references)", choices=OPTIMIZERS)
    schedule: str = option("linear", "the learning rate after warm-up: linear decay to 0, or constant",
                           choices=SCHEDULES)
    warmup_ratio: float = option(0.06, "share of the steps with a rising learning rate")
    warmup_steps: int | None = option(None, "steps with a rising learning rate (overrides --warmup-ratio)")
    grad_clip: float = option(1.0, "largest gradient norm")
    eval_every: int | None = option(None, "steps between evaluations (default: once per epoch)")
    eval_batch_size: int = option(64, "items per batch when evaluating")
    max_length: int = option(128, "tokens kept of each input")
    seed: int = option(0, "seed of the prompt's start, the batches and the held-out split")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    init_prompt: str | None = option(None, "start from the prompt of this checkpoint folder, or of a PEFT prompt or "
                                     "prefix adapter folder", metavar="DIR")
    counterfactuals: str = option("end", "DP: score every forced candidate on dev (own vs best single vs oracle) "
                                  "at the end, every evaluation, or never; each costs (candidates + 1) evaluations",
                                  choices=COUNTERFACTUAL_WHEN)
    counterfactual_items: int | None = option(None, "DP: at the end, score the forced candidates on the first N "
                                              "items of dev and of the held-out split only")
    select_on: str = option("dev", "keep the checkpoint that scores best on dev (flattering) or on held-out "
                            "training items (10 %, at least 32; few-shot: 8), dev then scored once",
                            choices=SELECT_ON)
    holdout_max: int | None = option(None, "at most this many held-out items (their evaluations cost time)")
    holdout_seed: int | None = option(None, "draw the held-out split with this seed instead of --seed (runs of "
                                      "several seeds on the same items)")
    track_dev: bool = option(False, "with --select-on holdout: score dev at every evaluation too (never to select), "
                             "to show what dev selection would have reported")
    patience: int | None = option(None, "stop after this many evaluations without a better score")
    select_from: float = option(0.0, "keep no checkpoint from the first SHARE of the planned steps (e.g. 0.25), and "
                                "start counting patience there: early evaluations on few held-out items win by chance",
                                metavar="SHARE")
    mixed_precision: str = option("auto", "auto: bf16 on a CUDA GPU that has it (else fp16), none on CPU",
                                  choices=PRECISIONS)
    gradient_accumulation_steps: int = option(1, "batches per optimizer step")

    def __post_init__(self):
        if self.counterfactuals not in COUNTERFACTUAL_WHEN:
            raise ValueError(f"counterfactuals must be one of {COUNTERFACTUAL_WHEN}, got {self.counterfactuals!r}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {SELECT_ON}, got {self.select_on!r}")
        if self.counterfactual_items is not None and self.counterfactual_items < 1:
            raise ValueError(f"counterfactual_items must be at least 1, got {self.counterfactual_items}")
        if not 0.0 <= self.select_from < 1.0:
            raise ValueError(f"select_from is a share of the run, from 0 up to (not including) 1, "
                             f"got {self.select_from}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience counts evaluations and must be at least 1, got {self.patience}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if self.optimizer not in OPTIMIZERS or self.schedule not in SCHEDULES:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} and schedule one of {SCHEDULES}, "
                             f"got {self.optimizer!r} and {self.schedule!r}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be at least 1, got {self.gradient_accumulation_steps}")

    def text_data(self) -> TextData | None:
        """The data this run reads instead of a SuperGLUE task, if any."""
        if self.data is None:
            return None
        if not self.text_columns:
            raise DataError("--data needs --text-columns: the one or two columns that hold the text")
        return TextData(self.data, self.text_columns, self.label_column, self.label_names or None, self.validation,
                        self.seed)

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps of a run that plans ``total_steps``."""
        return self.warmup_steps if self.warmup_steps is not None else int(self.warmup_ratio * total_steps)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["prompt"] = self.prompt.to_dict()
        return record


@dataclass
class TrainEvent:
    """One streamed update. ``kind``: "step", "eval" or "done"."""

    kind: str
    step: int
    total_steps: int
    epoch: float
    loss: float | None = None
    metrics: dict[str, float] | None = None
    choices: dict[str, dict] | None = None  # DP, "eval" events: per factor, ChoiceStatistics.summary() there
    examples_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    result: TrainResult | None = None


@dataclass
class TrainResult:
    model: PromptClassifier
    best_metrics: dict[str, float]  # the kept checkpoint on the split it was selected on (``selected_on``)
    best_step: int
    history: list[dict]  # evaluations are on the selection split (with ``track_dev``, "dev" too)
    stopped_because: str  # "finished", "time budget", "cancelled", "patience"
    train_size: int
    dev_size: int
    majority_baseline: float
    truncated: dict[str, int]
    choices: dict[str, dict] | None = None  # DP: statistics of the kept checkpoint's choices on dev
    dev_metrics: dict[str, float] | None = None  # the kept checkpoint on dev (== best_metrics when selected on dev)
    selected_on: str = "dev"
    holdout_size: int = 0
    holdout_choices: dict[str, dict] | None = None  # DP, selected on holdout: its choices there (best single pick)
    processes: int = 1  # data-parallel processes that shared each batch
    mixed_precision: str = "no"  # what the run used ("no", "bf16", "fp16")
    dev_selected_metrics: dict[str, float] | None = None  # ``track_dev``: the best dev evaluation of the run
    dev_predictions: list[int] | None = None  # the kept checkpoint's labels on dev, in item order (paired tests)
    refit: dict | None = None  # DP with ``refit_choices``: ``RefitResult.summary()``
