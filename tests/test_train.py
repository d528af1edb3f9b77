import json
import math
import re
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
import torch

from dp_core import cli, evaluation
from dp_core.cli import describe_choice
from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.methods import METHODS, method_config
from dp_core.model import HeadConfig, PromptClassifier
from dp_core.prompts import PTuningV2Config
from dp_core.tasks import TASKS
from dp_core.train import load_task_data, run, train


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_trains_and_evaluates_end_to_end(task, data_dir, default_backbone):
    config = TrainConfig(task=task, prompt=PTuningV2Config(num_tokens=4), data_dir=str(data_dir),
                         fewglue=task == "boolq", k_shot=8, dev_limit=12, max_steps=2, batch_size=4)
    result = run(config, backbone=default_backbone)
    assert result.stopped_because == "finished" and result.best_step in (1, 2)
    assert set(result.best_metrics) == {*TASKS[task].metrics, "score"}
    assert all(0.0 <= value <= 1.0 for value in result.best_metrics.values())
    assert [entry["step"] for entry in result.history if "loss" in entry] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_fits_a_small_training_set(method, data_dir, default_backbone):
    """The loss falls far below the label prior's (~0.66 here): prompt, network and head really train."""
    options = {"num_tokens": 4, "encoder": "mlp", "prompt_dropout": 0.0}
    config = TrainConfig(task="rte", prompt=method_config(method, **options), data_dir=str(data_dir), k_shot=8,
                         dev_limit=8, max_steps=12, batch_size=8, lr=1e-3 if method == "finetune" else 3e-2,
                         lr_head=3e-2, warmup_ratio=0.0, head=HeadConfig(dropout=0.0), eval_every=12, max_length=64)
    losses = [event.loss for event in train(config, backbone=default_backbone) if event.kind == "step"]
    assert sum(losses[-3:]) / 3 < 0.2, losses


def small_config(data_dir, **changes):
    base = dict(task="cb", prompt=PTuningV2Config(num_tokens=4), data_dir=str(data_dir), k_shot=16, dev_limit=16,
                max_steps=4, batch_size=4, eval_every=2)
    return TrainConfig(**{**base, **changes})


def test_same_seed_same_numbers(data_dir, tiny_backbone):
    first = run(small_config(data_dir, seed=3), backbone=tiny_backbone)
    second = run(small_config(data_dir, seed=3), backbone=tiny_backbone)
    other = run(small_config(data_dir, seed=4), backbone=tiny_backbone)
    assert first.history == second.history
    assert first.history != other.history


def test_time_budget_stops_cleanly(data_dir, tiny_backbone):
    result = run(small_config(data_dir, max_steps=10_000, time_budget_s=0.5), backbone=tiny_backbone)
    assert result.stopped_because == "time budget"
    assert result.best_metrics is not None and 0 < result.best_step < 10_000


def test_a_time_budget_bounds_the_whole_run_dp_s_end_included(data_dir, tiny_backbone):
    from dp_core.dynamic import DynamicPromptConfig
    from dp_core.train import END_SHARE, affordable_items, prepare, training_seconds

    dp = small_config(data_dir, prompt=DynamicPromptConfig(num_tokens=4), time_budget_s=10.0)
    setup = prepare(dp, tiny_backbone, None)
    assert training_seconds(setup) == 10.0 * (1 - END_SHARE)  # DP's forced candidates at the end get the rest
    assert training_seconds(prepare(replace(dp, counterfactuals="none"), tiny_backbone, None)) == 10.0
    candidates = sum(setup.model.prompt.sizes.values())
    per_item = 0.01 * candidates  # an evaluation of the 16 dev rows took 0.16 s: each row's candidates, 0.01 s each
    assert affordable_items(setup, 3 * per_item, eval_seconds=0.16) == 3 and affordable_items(setup, 0.0, 0.16) == 0
    ended = run(replace(dp, time_budget_s=0.0, max_steps=10_000), backbone=tiny_backbone)  # nothing left at the end
    assert ended.stopped_because == "time budget" and ended.choices["position"]["own_score"] is None
    full = run(replace(dp, time_budget_s=None), backbone=tiny_backbone)  # no budget: every candidate on every item
    assert full.choices["position"]["own_score"] is not None


def test_cancel_stops_within_one_step_and_keeps_the_best_checkpoint(data_dir, tiny_backbone):
    cancel = threading.Event()
    events = []
    for event in train(small_config(data_dir, max_steps=1000, eval_every=1000), backbone=tiny_backbone,
                       cancel=cancel):
        events.append(event)
        if event.kind == "step" and event.step == 3:
            cancel.set()
    steps = [event.step for event in events if event.kind == "step"]
    assert steps == [1, 2, 3]
    done = events[-1]
    assert done.kind == "done" and done.result.stopped_because == "cancelled"
    assert done.result.best_step == 3 and done.metrics is not None


def test_events_stream_progress(data_dir, tiny_backbone):
    events = list(train(small_config(data_dir), backbone=tiny_backbone))
    kinds = [event.kind for event in events]
    assert kinds == ["step", "step", "eval", "step", "step", "eval", "done"]
    assert all(event.examples_per_s > 0 and event.eta_s is not None for event in events if event.kind == "step")
    assert events[-2].metrics is not None and events[0].total_steps == 4


def test_cli_writes_metrics_and_checkpoint(data_dir, tiny_bert_path, tmp_path, capsys):
    code = cli.main(["--task", "wic", "--method", "ptv2", "--backbone", str(tiny_bert_path),
                     "--data-dir", str(data_dir), "--k-shot", "8", "--dev-limit", "8", "--max-steps",
                     "2", "--batch-size", "4", "--num-tokens", "4", "--output-dir", str(tmp_path / "out"),
                     "--device", "cpu"])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["task"] == "wic" and "accuracy" in metrics["best"] and metrics["trainable_parameters"] > 0
    assert metrics["command"].startswith("python -m dp_core.train --task wic --method ptv2 --backbone")
    assert metrics["selected_on"] == "dev" and "holdout" not in metrics
    loaded = PromptClassifier.from_pretrained(tmp_path / "out", device="cpu")
    assert loaded.metadata["metrics"] == metrics["best"] and loaded.task.name == "wic"
    printed = json.loads(capsys.readouterr().out)
    assert printed["best"] == metrics["best"]


@pytest.mark.parametrize("arguments, message", [
    (["--task", "mnli"], "error: unknown task 'mnli'"),
    (["--task", "rte", "--data-dir", "/nonexistent/superglue"], "error: data folder /nonexistent/superglue does not"),
])
def test_cli_bad_input_is_one_line(arguments, message, capsys):
    assert cli.main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(message) and "\n" not in error


def test_truncation_is_reported(data_dir, tiny_backbone):
    result = run(small_config(data_dir, max_length=16, max_steps=1), backbone=tiny_backbone)
    assert result.truncated["train"] > 0 and result.truncated["dev"] > 0
    assert torch.is_tensor(next(iter(result.model.trainable_state().values())))


def test_holdout_selection_never_trains_on_held_out_items_and_scores_dev_once(data_dir, tiny_backbone, monkeypatch):
    seen_train, evaluated = [], []
    encode = PromptClassifier.encode_examples

    def spy_encode(model, examples):
        (seen_train if not seen_train else evaluated).append([e.group for e in examples])
        return encode(model, examples)

    monkeypatch.setattr(PromptClassifier, "encode_examples", spy_encode)
    config = small_config(data_dir, k_shot=None, dev_limit=16, select_on="holdout", holdout_max=40, max_steps=4)
    events = list(train(config, backbone=tiny_backbone))
    result = events[-1].result
    train_groups, (dev_groups, held_groups) = set(seen_train[0]), evaluated
    assert len(held_groups) == 32 and not train_groups & set(held_groups)  # CB: 10 % of 250 is below the 32
    assert result.train_size == 218 and result.holdout_size == 32 and result.selected_on == "holdout"
    assert len(dev_groups) == 16
    dev = encode(result.model, load_task_data(config)[1])
    assert result.dev_metrics == evaluation.evaluate(result.model, dev)  # the kept checkpoint, on dev
    assert events[-1].metrics == result.dev_metrics


def test_holdout_seed_keeps_the_same_items_out_whatever_the_run_seed(data_dir, tiny_backbone, monkeypatch):
    encode, held_out = PromptClassifier.encode_examples, []

    def spy_encode(model, examples):
        held_out.append({e.group for e in examples})
        return encode(model, examples)

    monkeypatch.setattr(PromptClassifier, "encode_examples", spy_encode)
    for seed, holdout_seed in [(0, None), (1, None), (1, 0)]:
        config = small_config(data_dir, k_shot=None, dev_limit=8, select_on="holdout", holdout_max=40, max_steps=1,
                              seed=seed, holdout_seed=holdout_seed)
        list(train(config, backbone=tiny_backbone))
    run_seed_0, run_seed_1, run_seed_1_held_with_0 = held_out[2::3]  # encoded in the order train, dev, held-out
    assert len(run_seed_0) == 32 and run_seed_1 != run_seed_0 and run_seed_1_held_with_0 == run_seed_0


def test_few_shot_sets_hold_out_eight_items_and_capping_holds(data_dir):
    from dp_core.tasks import load_examples, load_fewglue, split_holdout

    fewglue = load_fewglue("cb", str(data_dir))
    rest, held = split_holdout(fewglue, seed=0)
    assert len(held) == 8 and len(rest) == len(fewglue) - 8
    multirc = load_examples("multirc", "train", str(data_dir))[:3000]
    rest, held = split_holdout(multirc, seed=1, maximum=20)
    assert len({e.group for e in held}) == 20 and not {e.group for e in held} & {e.group for e in rest}
    assert split_holdout(multirc, seed=1, maximum=20) == (rest, held)


def test_patience_stops_after_evaluations_without_improvement(data_dir, tiny_backbone):
    result = run(small_config(data_dir, max_steps=200, eval_every=1, patience=2, lr=0.0, lr_head=0.0),
                 backbone=tiny_backbone)
    assert result.stopped_because == "patience"
    assert result.best_step == 1 and max(e["step"] for e in result.history) == 3


def test_select_from_keeps_nothing_early_and_patience_waits_for_it(data_dir, tiny_backbone):
    flat = dict(max_steps=8, eval_every=1, patience=2, lr=0.0, lr_head=0.0)  # every evaluation scores the same
    result = run(small_config(data_dir, select_from=0.5, **flat), backbone=tiny_backbone)
    assert result.best_step == 4 and result.stopped_because == "patience"  # kept at 4 of 8, then 2 more evaluations
    assert [e["step"] for e in result.history if "score" in e] == [1, 2, 3, 4, 5, 6]
    cut_short = run(small_config(data_dir, select_from=0.5, time_budget_s=0.0, **flat), backbone=tiny_backbone)
    assert cut_short.stopped_because == "time budget" and cut_short.best_step == 1  # ended early: its last evaluation


def test_bad_selection_settings_are_refused():
    with pytest.raises(ValueError, match="select_on"):
        TrainConfig(select_on="test")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="select_from"):
        TrainConfig(select_from=1.0)


def test_cli_records_holdout_selection(data_dir, tiny_bert_path, tmp_path, capsys):
    code = cli.main(["--task", "cb", "--method", "ptv2", "--backbone", str(tiny_bert_path), "--data-dir",
                     str(data_dir), "--dev-limit", "8", "--max-steps", "2", "--batch-size", "4",
                     "--num-tokens", "4", "--select-on", "holdout", "--holdout-max", "40", "--device", "cpu",
                     "--output-dir", str(tmp_path / "out")])
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["selected_on"] == "holdout" and metrics["holdout_size"] == 32 and metrics["train_size"] == 218
    assert set(metrics["holdout"]) == set(metrics["best"]) and metrics["dev_size"] == 8
    err = capsys.readouterr().err
    assert "step 2, holdout: accuracy" in err
    assert re.search(r"step [12] kept; scoring it on dev \(8 items\)", err)  # while the bar stands still
    assert "instance features" not in err  # a fixed prompt reads none


def test_cli_refits_dp_choices_on_the_kept_checkpoint_and_records_it(data_dir, tiny_bert_path, tmp_path, capsys):
    code = cli.main(["--task", "cb", "--method", "dp", "--factors", "position,length", "--backbone",
                     str(tiny_bert_path), "--data-dir", str(data_dir), "--dev-limit", "8", "--max-steps", "2",
                     "--batch-size", "4", "--num-tokens", "4", "--select-on", "holdout", "--holdout-max", "40",
                     "--device", "cpu", "--refit-choices", "--output-dir", str(tmp_path / "out")])
    assert code == 0
    err = capsys.readouterr().err
    assert ("forcing each candidate of position, length, one at a time, on every item of dev and of the held-out "
            "split") in err
    assert "218 training items" in err  # the refit's sample: every training item left after the held-out split
    assert "8 dev rows" in err and "32 held-out rows" in err  # the features computed before the first step
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    refit = metrics["refit"]
    said = re.search(r"refit of position, length (kept|not kept) after (\d+) steps: held-out expected loss "
                     r"[\d.]+ -> [\d.]+, held-out score ([\d.]+) -> ([\d.]+)", err)
    assert said and (said[1] == "kept") == refit["kept"] and int(said[2]) == refit["steps"]
    assert [float(said[3]), float(said[4])] == pytest.approx(refit["holdout_score"], abs=1e-4)
    assert refit["factors"] == ["position", "length"] and refit["fit_items"] == 218  # every training item (< 256)
    before, after = refit["holdout_score"]
    assert metrics["holdout"]["score"] == (after if refit["kept"] else before)
    assert refit["kept"] == (refit["best_step"] > 0 and after >= before)
    best_held_out = max(entry["score"] for entry in metrics["history"] if "score" in entry)
    assert before == pytest.approx(best_held_out)  # the refit starts from the kept checkpoint
    loaded = PromptClassifier.from_pretrained(tmp_path / "out", device="cpu")
    assert loaded.method.refit_choices


def test_gradient_accumulation_takes_one_step_per_group_of_batches(data_dir, tiny_backbone):
    config = small_config(data_dir, prompt=DynamicPromptConfig(num_tokens=4), gradient_accumulation_steps=3,
                          max_steps=2, eval_every=2)
    events = list(train(config, backbone=tiny_backbone))
    assert [e.step for e in events if e.kind == "step"] == [1, 2]
    assert int(events[-1].result.model.prompt.steps_done) == 6  # DP counts its training forward passes
    assert events[-1].result.mixed_precision == "no" and events[-1].result.processes == 1


@pytest.mark.slow
def test_cli_runs_with_bf16_autocast_on_cpu(data_dir, tiny_bert_path, tmp_path):
    """In a process of its own: Accelerate keeps one precision per process (and run as ``-m``, the module is
    ``__main__``: its lines on the end of the run must still show)."""
    finished = subprocess.run(
        [sys.executable, "-m", "dp_core.train", "--task", "cb", "--method", "ptv2", "--backbone", str(tiny_bert_path),
         "--data-dir", str(data_dir), "--select-on", "holdout", "--holdout-max", "40", "--dev-limit", "8",
         "--max-steps", "2", "--batch-size", "4", "--num-tokens", "4", "--device", "cpu", "--mixed-precision", "bf16",
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert re.search(r"step [12] kept; scoring it on dev \(8 items\)", finished.stderr)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["mixed_precision"] == "bf16" and 0.0 <= metrics["best"]["score"] <= 1.0
    assert all(math.isfinite(entry["loss"]) for entry in metrics["history"] if "loss" in entry)


def test_the_eval_line_tells_a_place_with_a_length_over_layouts():
    """Rows of length 2 at places 2, 5 and 9 all put both tokens after the input: one layout, not three places."""
    place = {"commitment": 0.3, "collapse": 0.4, "counts": [1, 0, 4, 0, 0, 3, 0, 0, 0, 2]}
    assert describe_choice("pool", place) == "pool commitment 0.30 collapse 0.40"
    with_length = {**place, "layout_commitment": 0.8, "layout_no_preference": 0.59, "layout_counts": [1, 0, 9]}
    assert describe_choice("position", with_length) == (
        "position commitment 0.30 collapse 0.40 (over layouts: commitment 0.80, no preference 0.59, collapse 0.90)")


def test_tracking_dev_beside_holdout_selection_shows_what_dev_selection_would_report(data_dir, tiny_backbone):
    config = small_config(data_dir, k_shot=None, select_on="holdout", holdout_max=40, max_steps=6, eval_every=1,
                          track_dev=True)
    result = run(config, backbone=tiny_backbone)
    tracked = {entry["step"]: entry["dev"] for entry in result.history if "dev" in entry}
    assert sorted(tracked) == [1, 2, 3, 4, 5, 6]
    assert tracked[result.best_step] == result.dev_metrics  # the kept checkpoint's dev score, as tracked
    assert result.dev_selected_metrics == max(tracked.values(), key=lambda m: m["score"])
    assert run(small_config(data_dir, select_on="holdout", holdout_max=40), backbone=tiny_backbone
               ).dev_selected_metrics is None  # not tracked: nothing to report
