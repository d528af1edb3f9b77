"""``python -m dp_core.train``: the options come from the config dataclasses' fields, the output is metrics.json.

    python -m dp_core.train --task rte --method dp --factors position,length --data-dir ../shared/superglue
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from accelerate import PartialState

from .backbone import BackboneError, resolve_device
from .config import TrainConfig, TrainResult
from .heads import HeadConfig
from .methods import METHODS, method_config
from .multitask import train_shared_prompt
from .options import add_method_options, add_options, option, values_of
from .recipes import RECIPES, recipe_defaults
from .metrics import score_definition
from .tasks import DataError, get_task
from .train import log, train


@dataclass
class CommandOptions:
    """What the command does besides training."""

    method: str = option("ptv2", "the prompt method", choices=tuple(METHODS))
    output_dir: str | None = option(None, "where metrics.json and the checkpoint go")
    multitask: str | None = option(None, "first train the prompt (and DP's network) shared across these tasks, "
                                   "e.g. cb,rte,copa; then --task", metavar="TASKS")
    multitask_steps: int = option(200, "steps of the shared stage (tasks take turns)")
    push_to_hub: str | None = option(None, "push the checkpoint to this Hub repo", metavar="REPO_ID")
    recipe: str | None = option(None, "start from a reference's settings (dpt: the Dynamic Prompting paper's, "
                                "docs/training.md); options given explicitly win", choices=tuple(RECIPES))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dp_core.train",
                                     description="Train a prompt method on a SuperGLUE task or on your own data.")
    add_options(parser, CommandOptions)
    add_options(parser.add_argument_group("training"), TrainConfig)
    add_options(parser.add_argument_group("head"), HeadConfig)
    add_method_options(parser.add_argument_group("prompt methods (each option: the methods that have it)"),
                       METHODS.values())
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, read over a recipe's values where ``--recipe`` names one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.recipe:
        parser.set_defaults(**recipe_defaults(args.recipe))
        args = parser.parse_args(argv)
    return args


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    method_options = {name: value for config_class in METHODS.values()
                      for name, value in values_of(config_class, args).items()}
    return TrainConfig(**values_of(TrainConfig, args), prompt=method_config(args.method, **method_options),
                       head=HeadConfig(**values_of(HeadConfig, args)))


def describe_choice(factor: str, stats: dict) -> str:
    """One factor's choices on the evaluation line. A place with a chosen length is also told over layouts: every
    place past the row's length puts all its tokens after the input, so 17 places can be fewer distinct layouts."""
    text = f"{factor} commitment {stats['commitment']:.2f} collapse {stats['collapse']:.2f}"
    if stats.get("layout_commitment") is None:
        return text
    layouts = stats.get("layout_counts")
    collapse = "" if not layouts else f", collapse {max(layouts) / max(1, sum(layouts)):.2f}"
    return (text + f" (over layouts: commitment {stats['layout_commitment']:.2f}, no preference "
            f"{stats['layout_no_preference']:.2f}{collapse})")


def run_shared_stage(config: TrainConfig, tasks: list[str], steps: int, folder: Path) -> Path:
    """The multitask stage one, with a progress bar; the shared prompt is saved as a checkpoint folder."""
    from tqdm.auto import tqdm

    with tqdm(total=steps, desc=f"shared {config.prompt.method} on {','.join(tasks)}", unit="step") as progress:
        def on_step(step: int, task: str, loss: float) -> None:
            progress.update(1)
            progress.set_postfix(task=task, loss=f"{loss:.3f}")

        models = train_shared_prompt(config, tasks, steps, on_step=on_step)
    return models[tasks[0]].save_pretrained(folder, extra={"multitask": {"tasks": tasks, "steps": steps}})


def train_with_progress(config: TrainConfig, main_process: bool) -> tuple[TrainResult, float, float]:
    """Train with a progress bar and one line per evaluation; the result, examples per second and seconds."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    progress = None
    log.setLevel(logging.INFO if main_process else logging.WARNING)  # train()'s lines on the end of a run
    with logging_redirect_tqdm([log], tqdm_class=tqdm):
        for event in train(config):
            if progress is None:
                progress = tqdm(total=event.total_steps, desc=f"{config.prompt.method} on {config.data or config.task}",
                                unit="step", disable=not main_process)
            if event.kind == "step":
                progress.update(1)
                progress.set_postfix(loss=f"{event.loss:.3f}", ex_s=f"{event.examples_per_s:.1f}")
            elif event.kind == "eval" and main_process:
                progress.write(f"step {event.step}, {config.select_on}: " + ", ".join(
                    [f"{k} {v:.4f}" for k, v in event.metrics.items()]
                    + [describe_choice(factor, c) for factor, c in (event.choices or {}).items()]), file=sys.stderr)
    progress.close()
    return event.result, event.examples_per_s, event.elapsed_s


def summary_of(command: str, config: TrainConfig, result: TrainResult, examples_per_s: float,
               elapsed_s: float) -> dict:
    """metrics.json without the history."""
    holdout, task = result.holdout_size > 0, result.model.task
    data = {"data": {"source": config.data, "text_columns": list(config.text_columns),
                     "label_column": config.label_column, "labels": list(task.label_names)}} if config.data else {}
    return {
        "command": command, "task": task.name, **data, "method": config.prompt.method, "backbone": config.backbone,
        "score": score_definition(task.metrics), "best": result.dev_metrics,
        "dev_interval": list(result.dev_interval) if result.dev_interval else None,
        "majority": result.majority_metrics, "best_step": result.best_step, "stopped": result.stopped_because,
        "selected_on": result.selected_on, "processes": result.processes,
        "mixed_precision": result.mixed_precision, "trainable_parameters": result.model.trainable_parameter_count(),
        "train_size": result.train_size, "dev_size": result.dev_size, "majority_baseline": result.majority_baseline,
        "truncated": result.truncated, "examples_per_s": examples_per_s, "elapsed_s": elapsed_s,
        **({"holdout_size": result.holdout_size, "holdout": result.best_metrics} if holdout else {}),
        **({"dev_selected": result.dev_selected_metrics} if holdout and result.dev_selected_metrics else {}),
        **({"choices": result.choices} if result.choices else {}),
        **({"holdout_choices": result.holdout_choices} if result.holdout_choices else {}),
        **({"refit": result.refit} if result.refit else {}),
    }


def last_line(summary: dict) -> str:
    """The run in one line: its dev score with its interval, beside always answering the commonest label, in the
    same units."""
    best, interval, majority = summary["best"], summary.get("dev_interval"), summary.get("majority") or {}
    span = f" (95 % interval {interval[0]:.3f} to {interval[1]:.3f})" if interval else ""
    said = f"dev score {best['score']:.3f}{span} on {summary['dev_size']} items; score = {summary['score']}."
    if majority:
        said += (f" Always answering {majority['label']!r}: {majority['score']:.3f}"
                 + (f" (accuracy {majority['accuracy']:.3f})" if "accuracy" in majority and
                    majority["accuracy"] != majority["score"] else "") + ".")
    return said


def save(args: argparse.Namespace, config: TrainConfig, result: TrainResult, summary: dict) -> None:
    if sum(result.truncated.values()):
        print(f"note: {result.truncated} items were longer than max_length {result.model.max_length} and were "
              "truncated", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    print(last_line(summary), file=sys.stderr)
    if args.output_dir:
        output = Path(args.output_dir)
        result.model.save_pretrained(output, metrics=result.dev_metrics,
                                     extra={"train_config": config.to_dict(), "summary": summary})
        (output / "metrics.json").write_text(json.dumps({**summary, "history": result.history}, indent=2))
        print(f"saved to {output}", file=sys.stderr)
    if args.push_to_hub:
        print(result.model.push_to_hub(args.push_to_hub, metrics=result.dev_metrics), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args)
        config.text_data() if config.data else get_task(config.task)  # a bad task or data option fails here
        if args.multitask:
            tasks = [get_task(name).name for name in args.multitask.split(",")]
            folder = Path(args.output_dir or tempfile.mkdtemp(prefix="dp_shared_")) / "shared_prompt"
            config = replace(config, init_prompt=str(run_shared_stage(config, tasks, args.multitask_steps, folder)))
            print(f"shared prompt saved to {folder}; continuing on {config.task}", file=sys.stderr)
        # Under `accelerate launch` one process speaks and saves. (Asked with the run's device: Accelerate's state
        # is made once per process, and without cpu=True it finds no GPU and no processes beside it.)
        main_process = PartialState(cpu=resolve_device(config.device).type != "cuda").is_main_process
        result, examples_per_s, elapsed_s = train_with_progress(config, main_process)
    except (DataError, BackboneError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "dp_core.train", *(sys.argv[1:] if argv is None else argv)])
    if main_process:
        save(args, config, result, summary_of(command, config, result, examples_per_s, elapsed_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
