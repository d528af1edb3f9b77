"""The results grid end to end on tiny random models: it trains, resumes, and writes its tables."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from benchmarks import dp_results, gpu_carry, select_from
from dp_core.metrics import compute_metrics
from dp_core.tasks import load_examples

from .test_families import FAMILIES, family_tokenizer


def tiny(name, folder):
    make_config, model_class, template = FAMILIES[name]
    torch.manual_seed(0)
    model_class(make_config()).save_pretrained(folder)
    family_tokenizer(template).save_pretrained(folder)
    return str(folder)


def grid(monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["dp_results", *argv])
    dp_results.main()
    return capsys.readouterr().out


@pytest.mark.slow
def test_the_decoder_grid_trains_resumes_and_compares_places_and_heads(tmp_path, data_dir, monkeypatch, capsys):
    results = tmp_path / "grid.jsonl"
    argv = ["--grid", "decoder", "--backbone", tiny("gpt2", tmp_path / "gpt2"), "--data-dir", str(data_dir),
            "--tasks", "cb", "--seeds", "0", "1", "--max-epochs", "0.2", "--eval-every", "2", "--dev-limit", "8",
            "--num-tokens", "3", "--results", str(results), "--output", str(tmp_path / "table.md")]
    text = grid(monkeypatch, capsys, *argv)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 16 and {r["budget"]["grid"] for r in records} == {"decoder"}
    assert all(r["curve"] and r["best_epoch"] <= r["curve"][-1][0] + 1e-3 for r in records)
    assert {r["device"] for r in records} == {f"CPU ({torch.get_num_threads()} threads)"}
    assert f"Ran on CPU ({torch.get_num_threads()} threads)." in text
    header = next(line for line in text.splitlines() if line.startswith("| task | majority"))
    assert "suffix · verbalizer" in header and "DP instance · linear" in header
    assert "DP instance · linear − suffix · linear" in text and "prefix · verbalizer − prefix · linear" in text
    assert "gap closed" not in text  # no fine-tuning in this grid
    dev = load_examples("cb", "val", data_dir)[:8]
    for record in records:  # the kept checkpoint's dev labels, in dev's order: they give back its dev score
        predictions = list(map(int, record["dev_predictions"]))
        scored = compute_metrics(("accuracy", "macro_f1"), predictions, [e.label for e in dev],
                                 [e.group for e in dev], 3)
        assert abs(scored["score"] - record["dev_score"]) < 1e-9
    items = text.split("The same differences over the dev items")[1].split("\n\n")[1].splitlines()
    assert items[0].startswith("| task | DP instance · linear − prefix · linear | ")
    assert items[2].startswith("| cb | [") and items[2].count("] (2)") == 8  # every pair, both seeds paired
    places = text.split("Where DP put the prompt on dev")[1].split("\n\n")[1].splitlines()
    rows = {line.split(" | ")[1]: line.split(" | ") for line in places[2:]}
    assert set(rows) == {f"DP {level} · {head}" for level in ("task", "instance") for head in ("linear", "verbalizer")}
    for name, cells in rows.items():
        assert 0 <= float(cells[2]) <= 3 and cells[-1] == "2 |"  # of 3 tokens after the input; both seeds
        assert len(cells) == 6  # the grid computes no counterfactuals: no columns for what the place changes
        if name.startswith("DP task"):  # one place for the whole task: every item gets it
            assert cells[3].count("(100%)") == 2
    written = (tmp_path / "table.md").read_text()
    assert written.count("| cb |") == 9 and written.startswith("# Results") and "## Where the prompt goes" in written
    (tmp_path / "table.md").write_text(written + "A reading written by hand.\n")
    assert grid(monkeypatch, capsys, *argv) == text  # resumed: nothing trained again, the same tables
    assert len(results.read_text().splitlines()) == 16
    rewritten = (tmp_path / "table.md").read_text()  # the grid's section replaced, the reading kept
    assert rewritten.count("| cb |") == 9 and rewritten.endswith("A reading written by hand.\n")


def test_the_few_shot_grid_trains_on_fewglue_and_is_a_budget_of_its_own(tmp_path, data_dir, monkeypatch, capsys):
    results = tmp_path / "grid.jsonl"
    argv = ["--grid", "decoder", "--backbone", tiny("gpt2", tmp_path / "gpt2"), "--data-dir", str(data_dir),
            "--tasks", "cb", "--seeds", "0", "--variants", "prefix · linear", "--max-epochs", "1", "--eval-every",
            "1", "--dev-limit", "8", "--num-tokens", "3", "--results", str(results)]
    text = grid(monkeypatch, capsys, *argv, "--fewglue")
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["fewglue"] and record["budget"]["fewglue"] and record["train_items"] == 32 - 8
    assert "Trained on FewGLUE's 32 items per task (the same for every seed), selected on 8 of them held out" in text
    grid(monkeypatch, capsys, *argv)  # the full training set is another budget: trained anew, not taken from above
    full = json.loads(results.read_text().splitlines()[-1])
    assert "fewglue" not in full["budget"] and full["train_items"] > 32


def test_flattened_at_is_the_epoch_after_which_the_score_stops_rising():
    curve = [[1, 0.50, 0], [2, 0.60, 0], [3, 0.605, 0], [4, 0.58, 0], [5, 0.615, 0]]
    assert dp_results.flattened_at(curve) == 3  # 0.615 is within 0.01 of 0.605, not of 0.60
    assert dp_results.flattened_at(curve, tolerance=0.001) == 5


def test_the_place_table_counts_tokens_after_the_input_and_scores_own_places_against_the_held_out_pick():
    def run(counts, own=None, singles=None, best_single=None):
        choices = {"candidates": ["0", "1", "2", "3"], "counts": counts, "commitment": 0.8,
                   "collapse": max(counts) / sum(counts), "most_common": counts.index(max(counts)),
                   "changes_prediction": None if own is None else 0.25, "own_score": own, "single_scores": singles}
        return {"choices": {"position": choices}, "holdout_choices": {"position": {"best_single": best_single}}}

    cells = {("cb", "DP instance · linear"): [run([0, 0, 1, 3]), run([4, 0, 0, 0])]}
    lines = dp_results.place_choices(cells, ["cb"], ["DP instance · linear"], num_tokens=3)
    assert lines[-1] == "| cb | DP instance · linear | 1.4 | 3 (75%) / 0 (100%) | 0.80 | 2 |"  # (2.75 + 0) / 2
    cells = {("cb", "DP task · linear"): [run([0, 4, 0, 0], own=0.6, singles=[0.5, 0.6, 0.7, 0.4], best_single=2)]}
    lines = dp_results.place_choices(cells, ["cb"], ["DP task · linear"], num_tokens=3)
    assert lines[-3].endswith("| changes | own − single | runs |")
    assert lines[-1] == "| cb | DP task · linear | 1.0 | 1 (100%) | 0.80 | 25% | -0.100 | 1 |"  # 0.6 - 0.7
    assert dp_results.place_choices({("cb", "prefix · linear"): [{"choices": None}]}, ["cb"], ["prefix · linear"],
                                    num_tokens=3) == []


def test_the_place_table_counts_layouts_where_dp_also_chooses_the_length():
    def run(places, layouts=None):
        position = {"candidates": ["0", "1", "2", "3"], "counts": places, "commitment": 0.5, "collapse": 1.0,
                    "most_common": places.index(max(places)), "layout_commitment": 0.9, "layout_no_preference": 0.5,
                    **({"layout_counts": layouts} if layouts else {})}
        return {"choices": {"position": position, "length": {"counts": [0, 4, 0]}}}

    # places 2 and 3 with 2 active tokens: one layout, both tokens after the input (not 2.5 on average)
    cells = {("cb", "DP deep"): [run([0, 0, 2, 2], layouts=[0, 0, 4, 0]), run([4, 0, 0, 0], layouts=[4, 0, 0, 0])]}
    lines = dp_results.place_choices(cells, ["cb"], ["DP deep"], num_tokens=3)
    assert lines[-1] == "| cb | DP deep | 1.0 | 2 (100%) / 0 (100%) | 0.90 (no preference 0.50) | 2 |"
    assert "kept places only" not in lines[1]
    older = dp_results.place_choices({("cb", "DP deep"): [run([0, 0, 2, 2])]}, ["cb"], ["DP deep"], num_tokens=3)
    assert older[-1] == "| cb | DP deep | – | – | 0.90 (no preference 0.50) | 1 |"  # places are not layouts here
    assert "kept places only" in older[1]


def test_the_gap_closed_is_said_in_words_where_fine_tuning_does_not_beat_prompt_tuning():
    means = {"prompt tuning": 0.60, "fine-tuning": 0.70, "P-tuning v2": 0.65}
    assert dp_results.gap_closed(means, "P-tuning v2") == "50%"
    assert dp_results.gap_closed({**means, "fine-tuning": 0.61}, "P-tuning v2") == \
        "no gap (fine-tuning − prompt tuning +0.010)"
    assert dp_results.gap_closed({"prompt tuning": 0.6}, "P-tuning v2") == ""


def test_a_grid_with_more_seeds_on_some_tasks_says_which_and_pairs_only_the_seeds_both_sides_have():
    def runs(task, name, scores):
        return [{"task": task, "variant": name, "seed": seed, "dev_score": score} for seed, score in enumerate(scores)]

    records = runs("cb", "DP deep", [0.6, 0.7, 0.5, 0.6, 0.8]) + runs("cb", "P-tuning v2", [0.5, 0.6, 0.5, 0.5]) \
        + runs("wsc", "DP deep", [0.6, 0.6, 0.6]) + runs("wsc", "P-tuning v2", [0.5, 0.5, 0.5])
    assert dp_results.seeds_held(records, ["cb", "wsc"]) == "seeds [0, 1, 2, 3, 4] on cb; [0, 1, 2] on wsc"
    assert dp_results.seeds_held(records, ["wsc"]) == "seeds [0, 1, 2]"
    cells = {}
    for record in records:
        cells.setdefault((record["task"], record["variant"]), []).append(record)
    lines = dp_results.comparisons(cells, ["cb", "wsc"], ["P-tuning v2", "DP deep"], [("DP deep", "P-tuning v2")], [])
    assert lines[-2].startswith("| cb | +0.075 [") and lines[-2].endswith("] (4) |")  # seed 4 has no pair
    assert lines[-1] == "| wsc | +0.100 [+0.100, +0.100] (3) |"


@pytest.mark.slow
def test_the_gpu_carry_fits_one_call_and_loads_offline_by_the_backbone_name(tmp_path, default_backbone):
    archive = tmp_path / "hf.tar.xz"
    gpu_carry.pack_hf_cache(archive, "sentence-transformers/all-MiniLM-L6-v2")
    data = 2 * 2**20  # the SuperGLUE folder compressed: 1.7 MiB
    assert gpu_carry.tracked_tree_size() + archive.stat().st_size < gpu_carry.CALL_BYTES - data
    with tarfile.open(archive) as packed:  # what gpu_session.sh does with it on the GPU machine
        packed.extractall(tmp_path / "home", filter="data")
    repo = tmp_path / "home" / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    assert (repo / "refs" / "main").read_text() in {path.name for path in (repo / "snapshots").iterdir()}
    carried = AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path / "home" / "hub",
                                        local_files_only=True, dtype=torch.float32)
    inputs = default_backbone.tokenizer(["The cat sat on the mat.", "It rained."], padding=True, return_tensors="pt")
    with torch.no_grad():
        difference = carried(**inputs).last_hidden_state - default_backbone.model(**inputs).last_hidden_state
    assert 0 < difference.abs().max() < 0.05  # the fp16 copy: close, not bit-equal


def test_a_file_too_big_for_one_call_travels_in_parts_that_join_back(tmp_path):
    big, small = tmp_path / "big.whl", tmp_path / "small.whl"
    big.write_bytes(bytes(range(256)) * 20_000)  # 5.1 MB
    small.write_bytes(b"small")
    parts = gpu_carry.pack_parts([small, big], tmp_path / "parts", part_mib=2)
    assert [part.name for part in parts] == ["part-1", "part-2", "part-3"]
    chunks = sorted(chunk for part in parts for chunk in part.glob("big.whl.*-of-03"))
    assert [chunk.name for chunk in chunks] == ["big.whl.01-of-03", "big.whl.02-of-03", "big.whl.03-of-03"]
    assert b"".join(chunk.read_bytes() for chunk in chunks) == big.read_bytes()
    assert (parts[-1] / "small.whl").read_bytes() == b"small" and not (parts[0] / "small.whl").exists()
    sums = dict(line.split("  ")[::-1] for line in (parts[0] / "SHA256SUMS").read_text().splitlines())
    assert sums["big.whl"] == hashlib.sha256(big.read_bytes()).hexdigest() and set(sums) == {"big.whl", "small.whl"}


def test_short_runs_take_the_grids_converged_score_only_from_finished_cells(tmp_path, monkeypatch):
    from benchmarks import short_runs
    results = tmp_path / "grid.jsonl"
    runs = [("cb", "P-tuning v2", 0.60), ("cb", "P-tuning v2", 0.62), ("cb", "P-tuning v2", 0.64),
            ("cb", "DP deep", 0.50), ("cb", "DP deep", 0.70), ("wsc", "P-tuning v2", 0.61)]
    results.write_text("".join(json.dumps({"task": task, "variant": variant, "seed": seed, "dev_score": score})
                               + "\n" for seed, (task, variant, score) in enumerate(runs)))
    short = {"dev": 0.55, "majority": 0.36, "steps": 90, "converged": None}
    output = tmp_path / "short_runs.json"
    output.write_text(json.dumps({"budget_s": 60.0, "settings": {}, "tasks": {
        task: {method: dict(short) for method in short_runs.IN_GRID} for task in ("cb", "wsc")}}))
    monkeypatch.setattr(sys, "argv", ["short_runs", "--results", str(results), "--output", str(output),
                                      "--refresh-converged"])
    short_runs.main()
    tasks = json.loads(output.read_text())["tasks"]
    assert abs(tasks["cb"][short_runs.FIXED]["converged"] - 0.62) < 1e-9
    assert tasks["cb"][short_runs.DEEP_DP]["converged"] is None  # two of three seeds: not finished
    assert tasks["wsc"][short_runs.FIXED]["converged"] is None  # one seed: begun, not converged
    assert tasks["cb"][short_runs.FIXED]["dev"] == 0.55  # the short runs themselves are kept as they were


def test_the_refit_benchmark_rebuilds_a_checkpoints_run_and_resumes(tmp_path, data_dir, tiny_bert_path, monkeypatch,
                                                                    capsys):
    from benchmarks import refit_choices
    from dp_core import cli

    folder = tmp_path / "checkpoints" / "cb" / "dp_input"
    assert cli.main(["--task", "cb", "--method", "dp", "--factors", "position,length", "--backbone",
                     str(tiny_bert_path), "--data-dir", str(data_dir), "--dev-limit", "8", "--max-steps", "2",
                     "--batch-size", "4", "--num-tokens", "4", "--select-on", "holdout", "--holdout-max", "40",
                     "--device", "cpu", "--output-dir", str(folder)]) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    results = tmp_path / "refit.jsonl"
    argv = ["refit_choices", "--data-dir", str(data_dir), "--checkpoints", str(tmp_path / "checkpoints"),
            "--results", str(results), "--tasks", "cb", "--methods", "dp_input", "dp_deep"]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    refit_choices.main()
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["before"]["holdout"] == metrics["holdout"]["score"]  # the same held-out items as the run
    assert record["refit"]["holdout_score"][0] == pytest.approx(metrics["holdout"]["score"])
    assert record["refit"]["fit_items"] == 218 and record["before"]["dev"] == metrics["best"]["score"]
    assert "| cb | dp_input |" in capsys.readouterr().out
    refit_choices.main()  # done already: nothing trained, the table printed again
    assert len(results.read_text().splitlines()) == 1 and "| cb | dp_input |" in capsys.readouterr().out


def test_layout_figures_merge_equivalent_places_and_say_what_an_untrained_network_gives():
    from benchmarks.equivalent_places import layout_figures

    # L = 4 (places 0..4), both rows of length 2: layouts 0, 1 or 2 tokens after the input.
    probs = torch.tensor([[0.4, 0.0, 0.2, 0.2, 0.2],  # top place 0 (0.4), yet "all after" holds 0.6
                          [0.0, 0.9, 0.1, 0.0, 0.0]])  # sure of one token after
    figures = layout_figures(probs, torch.tensor([2, 2]))
    assert figures["commitment"] == pytest.approx(0.65)  # median of 0.4 and 0.9
    assert figures["layout_commitment"] == pytest.approx(0.75)  # median of 0.6 and 0.9
    assert figures["untrained_layout_commitment"] == pytest.approx(0.6)  # 3 of 5 places put both tokens after
    assert figures["drawn_not_most_probable"] == 0.5  # the first row draws place 0, its most probable layout is 2
    assert figures["length_median"] == 2 and figures["length_range"] == [2, 2]
    # a DP drawing the place given the length starts uniform over its 3 layouts, not over the 5 places
    assert layout_figures(probs, torch.tensor([2, 2]), given_length=True)["untrained_layout_commitment"] == \
        pytest.approx(1 / 3)


def test_the_equivalent_places_benchmark_reads_every_dp_checkpoint(tmp_path, data_dir, tiny_bert_path, monkeypatch,
                                                                   capsys):
    from benchmarks import equivalent_places
    from dp_core import cli

    root = tmp_path / "checkpoints"
    for method, factors in [("dp_input", "position,length"), ("dp_deep", "length")]:
        assert cli.main(["--task", "cb", "--method", "dp", "--factors", factors, "--where", method[3:],
                         "--backbone", str(tiny_bert_path), "--data-dir", str(data_dir), "--dev-limit", "8",
                         "--max-steps", "1", "--batch-size", "4", "--num-tokens", "4", "--device", "cpu",
                         "--output-dir", str(root / "cb" / method)]) == 0
    monkeypatch.setattr(sys, "argv", ["equivalent_places", "--data-dir", str(data_dir), "--checkpoints", str(root)])
    capsys.readouterr()
    equivalent_places.main()
    output = capsys.readouterr().out
    (record,) = [json.loads(line) for line in output.splitlines() if line.startswith("{")]  # dp_deep chooses no place
    assert record["task"] == "cb" and record["method"] == "dp_input" and 1 <= record["length_median"] <= 4
    assert record["layout_commitment"] >= record["commitment"]
    metrics = json.loads((root / "cb" / "dp_input" / "metrics.json").read_text())
    assert record["dev_score"] == pytest.approx(metrics["best"]["score"])  # the drawn layouts: as the run scored dev
    if record["drawn_not_most_probable"] == 0:
        assert record["dev_score_most_probable_layout"] == pytest.approx(record["dev_score"])
    # Forcing every row's own (drawn) place gives DP's own predictions back.
    from dp_core.backbone import load_backbone
    from dp_core.choices import predict_split
    from dp_core.evaluation import split_features
    from dp_core.model import PromptClassifier

    model = PromptClassifier.from_pretrained(root / "cb" / "dp_input",
                                             backbone=load_backbone(str(tiny_bert_path), device="cpu")).eval()
    split = model.encode_examples(load_examples("cb", "val", data_dir)[:8])
    features = split_features(model, split)
    predictions = predict_split(model, split, 64, features)
    drawn = predictions.choice_probs["position"].argmax(-1)
    own = predictions.class_probs.argmax(-1).tolist()
    assert equivalent_places.forced_predictions(model, split, features, drawn) == own
    assert "| cb | dp_input |" in output and "| cb | dp_deep |" not in output


def test_the_choice_grid_says_what_a_network_with_no_preference_would_commit():
    from benchmarks.dp_choices import report, untrained_commitment

    def record(variant, seed, config, factors, label="given", dev=0.6):
        return {"task": "cb", "variant": variant, "seed": seed, "label": label, "dev_score": dev, "config": config,
                "factors": factors}

    def factor(commitment, counts):
        return {"commitment": commitment, "collapse": 0.5, "changes_prediction": 0.2, "own": 0.6, "best_single": 0.6,
                "best_single_holdout_pick": 0, "best_single_hindsight": 0.6, "oracle": 0.7, "counts": counts}

    places = factor(0.8, [3, 1, 0, 0, 0])  # L = 4: five places
    given = record("DP input, position + length", 0, {"place_given_length": True},
                   {"position": places, "length": factor(0.9, [1, 3, 0, 0])})  # lengths 1, 2, 2, 2
    free = record("DP input, position + length", 0, {}, {"position": places, "length": factor(0.9, [1, 3, 0, 0])},
                  label="free")
    assert untrained_commitment(given) == pytest.approx(1 / 3)  # median of 1/2, 1/3, 1/3, 1/3
    assert untrained_commitment(free) == pytest.approx(1 / 5)
    fixed = record("prompt tuning (fixed)", 0, {}, {}, label="fixed", dev=0.5)
    args = argparse.Namespace(backbone="b", num_tokens=4, max_steps=10, batch_size=4, lr=0.01, holdout_max=32,
                              dev_limit=8)
    text = report([given, fixed], "given", ["cb"], "command", args)
    assert "| cb | DP input, position + length | 1 | 0.600 |" in text and "| 0.80 (0.33) |" in text


def test_comparing_labels_pairs_own_choices_with_the_best_single_place_over_seeds():
    from benchmarks.dp_choices import label_table

    def record(label, seed, own, best_single, commitment):
        position = {"commitment": commitment, "collapse": 0.5, "changes_prediction": 0.2, "own": own,
                    "best_single": best_single, "oracle": 0.9}
        return {"task": "copa", "variant": "DP input, position", "seed": seed, "label": label, "settings": "",
                "factors": {"position": position}}

    records = [record("a", 0, 0.60, 0.50, 0.2), record("a", 1, 0.55, 0.55, 0.4), record("a", 2, 0.50, 0.55, 0.6),
               record("b", 0, 0.70, 0.40, 0.9)]
    text = label_table(records, ["a", "b"])
    assert text.count("| a |  | copa | DP input, position |") == 3
    assert "| a | copa | 3 | 0.40 | 0.50 | +0.017 [-0.173, +0.206] |" in text  # differences +0.10, 0, -0.05
    assert "| b | copa | 1 | 0.90 | 0.50 | +0.300 |" in text


def test_replaying_select_from_on_a_full_run_keeps_what_a_select_from_run_keeps(data_dir, tiny_backbone):
    from dp_core.config import TrainConfig
    from dp_core.prompts import PTuningV2Config
    from dp_core.train import run

    base = dict(task="cb", prompt=PTuningV2Config(num_tokens=4), data_dir=str(data_dir), k_shot=None, dev_limit=8,
                max_steps=12, batch_size=4, eval_every=1, select_on="holdout", holdout_max=40, lr=0.05)
    evaluations = [e for e in run(TrainConfig(**base), backbone=tiny_backbone).history if "score" in e]
    assert len({e["score"] for e in evaluations}) > 1  # the scores move, so which one is kept is a real question
    for share in (0.0, 0.25, 0.5):
        selected = run(TrainConfig(**base, select_from=share, patience=2), backbone=tiny_backbone)
        assert select_from.kept_evaluation(evaluations, 12, share, patience=2)["step"] == selected.best_step


def test_the_select_from_tables_replay_each_share_and_pair_each_dp_with_its_fixed_counterpart():

    def full_run(scores, devs):  # CB: 218 training items, 15 epochs of 14 steps = 210 planned steps
        history = [{"step": 14 * (i + 1), "score": s, "dev": {"score": d}} for i, (s, d) in enumerate(zip(scores, devs))]
        return {"task": "cb", "train_size": 218, "history": history,
                "command": "python -m dp_core.train --task cb --epochs 15 --eval-every 14"}

    flat = [0.5] * 15
    runs = {("cb", "dp_input", 0): full_run([0.9] + flat[1:], [0.4] + [0.7] * 14),  # wins early, by chance
            ("cb", "prompt_tuning", 0): full_run(flat, [0.6] * 15)}
    rows = select_from.table(runs, [0.0, 0.25]).splitlines()
    assert "| cb | dp_input | 0 | 1 | 14 | 0.900 | 0.400 |" in rows[2]
    assert "| cb | dp_input | 0.25 | 1 | 56 | 0.500 | 0.700 | +0.300 |" in rows[3]  # step 53 on: 56 is the first
    pairs = select_from.pair_table(runs, [0.0, 0.25]).splitlines()
    assert pairs[2:] == ["| cb | dp_input − prompt_tuning | 0 | 1 | -0.200 |",
                         "| cb | dp_input − prompt_tuning | 0.25 | 1 | +0.100 |"]


def test_every_command_that_budgets_the_encoder_grid_names_the_ready_trained_prompts_budgets():
    """One set of per-task budgets: train_all.sh's, repeated by select_from and the grid's commands in the docs."""
    script = Path("assets/checkpoints/train_all.sh").read_text()

    def declared(name: str) -> dict[str, int]:
        values = re.search(rf"declare -A {name}=\((.*)\)", script).group(1)
        return {task: int(value) for task, value in re.findall(r"\[(\w+)\]=(\d+)", values)}

    grid = set(select_from.TASKS)
    budgets = {"--max-epochs-for": declared("EPOCHS"), "--eval-every-for": declared("EVERY")}
    assert select_from.EPOCHS == {task: budgets["--max-epochs-for"][task] for task in grid}
    assert select_from.EVERY == {task: budgets["--eval-every-for"][task] for task in grid}
    commands = 0
    for doc in ("docs/training.md", "docs/results.md"):
        text = Path(doc).read_text().replace("\\\n", " ")
        for flag, budget in budgets.items():
            for options in re.findall(rf"{flag}((?:\s+\w+=\d+)+)", text):
                named = {task: int(value) for task, value in re.findall(r"(\w+)=(\d+)", options)}
                if set(named) == grid:  # the encoder grid's (calibration and decoder commands name other tasks)
                    commands += 1
                    assert named == {task: budget[task] for task in grid}, (doc, flag, named)
    assert commands >= 8  # training.md's several-GPU grid; results.md's two commands and its tables' Command line
