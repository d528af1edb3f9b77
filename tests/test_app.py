"""The app through gradio_client, as a browser would drive it: every task predicts, training streams and stops,
bad input gets a clear message and the app stays up."""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from dataclasses import replace

import pandas as pd
import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

from app import readings, views  # noqa: E402
from app.state import (  # noqa: E402
    CHECKPOINTS, FIELD_LABELS, FIXED, GPU_CALL_MAX_S, MAX_BUDGET_S, MAX_SEED, RUN_OVERHEAD_S, gpu_duration,
    method_budget, method_title)
from dp_core.explain import InstanceDecision  # noqa: E402
from dp_core.methods import method_config_from_dict  # noqa: E402
from dp_core.metrics import compute_metrics  # noqa: E402
from dp_core.tasks import TASKS, load_examples  # noqa: E402

DP = "DP input: position + length + pool"


@pytest.fixture
def client(app_url):
    return Client(app_url, verbose=False)  # a fresh client is a fresh browser session


def compare_args(task, fields, question="cause", where="deep", left="ptv2"):
    return [task] + [fields.get(name, "") for name in FIELD_LABELS] + [question, where, left]


def shipped_metrics(task: str) -> dict[str, dict]:
    """metrics.json of the ready-trained P-tuning v2 and deep DP of a task, by title (the last folder of a title
    in name order, as the app loads them)."""
    shown = {}
    for config in sorted((CHECKPOINTS / task).glob("*/config.json")):
        title = method_title(method_config_from_dict(json.loads(config.read_text())["method"]))
        if title in (FIXED, "DP deep: position + length + pool"):
            shown[title] = json.loads((config.parent / "metrics.json").read_text())
    assert len(shown) == 2, shown.keys()
    return shown


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_predicts_a_picked_dev_example_with_the_ready_trained_prompts(task, client, data_dir):
    state_index, *boxes, question = client.predict(task, 3, api_name="/pick")
    assert state_index == 3 and any(boxes)
    note, fixed, fixed_layout, fixed_reading, dp, dp_layout, dp_reading, *plots, sure, what_if, place = \
        client.predict(*([task] + boxes + [question, "deep", "ptv2"]), api_name="/compare")
    candidates, what_ifs = plots[:3], plots[3:]
    labels = set(TASKS[task].label_names)
    assert fixed["label"] in labels and dp["label"] in labels
    gold = TASKS[task].label_names[load_examples(task, "val", data_dir)[3].label]  # the dev record's own label
    assert f"Gold label of dev example 3: <b>{gold}</b>" in note
    shipped = shipped_metrics(task)  # a warning naming exactly the sides at the constant guess, with their scores
    stuck = [title for title, metrics in shipped.items() if metrics["best"]["score"] <= metrics["majority_baseline"]]
    for title, metrics in shipped.items():
        name = "DP" if title.startswith("DP") else "the fixed prompt"
        assert bool(re.search(fr"{name} (scored )?{metrics['best']['score']:.3f}", note, re.I)) == (title in stuck), note
    assert ("Neither prompt beats one answer for all" in note) == (len(stuck) == 2)
    # Deep prompts drawn as they are: vectors in every layer, none after the input; the positions' start said
    assert "prompt-deep" in dp_layout and "prompt-after" not in dp_layout and "positions start at" in dp_layout
    assert "ready-trained" in dp_reading and "every layer" in dp_reading and "every layer" in fixed_reading
    # Each plot comes as an update with its candidates' order: {"sort": [...], "value": {"columns", "data"}}.
    assert all(plot["sort"] == [name for name, _ in plot["value"]["data"]] for plot in candidates)
    positions, lengths, pool = (plot["value"]["data"] for plot in candidates)  # the ready DP chooses all three
    assert len(positions) == 17 and len(lengths) == 16 and len(pool) == 4
    assert all(abs(sum(p for _, p in rows) - 1) < 1e-4 for rows in (positions, lengths, pool))
    # What if the prompt went elsewhere: every class at every place (tokens after the input: 0 to the longest
    # prompt of the item's rows, past which every place is the same layout) and length (16), in order, marked.
    longest = max(int(n) for n in re.findall(r"(\d+) prompt vectors ×", dp_layout))
    place_rows, length_rows = ([dict(zip(plot["value"]["columns"], row)) for row in plot["value"]["data"]]
                               for plot in what_ifs)
    assert len(place_rows) == (longest + 1) * len(labels) and len(length_rows) == 16 * len(labels)
    assert [row["candidate"].split(" · ")[0] for row in place_rows[::len(labels)]] == \
        [str(p) for p in range(longest + 1)]
    dp_marked = [row["candidate"] for row in place_rows if row["candidate"].endswith(" · DP")]
    fixed_marked = [row["candidate"] for row in place_rows if row["candidate"].endswith(" · fixed")]
    assert len(dp_marked) == len(labels)  # DP's place marked once (every row of a deep prompt is alike) ...
    assert fixed_marked == ([] if dp_marked[0] == "0 · DP" else ["0 · fixed"] * len(labels))  # ... over "fixed"
    # The same as pictures: a meter per choice, a strip of answers per choice (a square per candidate)
    assert sure.count("class='dp-meter'") == 2 and "No preference: every candidate equally likely" in sure
    answers = re.findall(r"data-answer='([^']*)'", what_if)
    assert len(answers) == longest + 1 + 16 and set(answers) <= {html.escape(label) for label in labels}
    assert what_if.count("▲ DP") == 2  # DP's choice marked once on each strip
    assert re.search(r"Place: (sure|leaning|a coin toss), \d+% \(no preference: \d+%\)", sure)  # how sure, in words
    assert re.search(r"at every place|At \d+ of \d+ places", what_if)
    assert "its place only moves where the input's positions start" in place  # said where the place is shown


@pytest.mark.slow
def test_training_streams_curves_then_compare_uses_the_new_run(client):
    job = client.submit("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED, DP], 5, 8, 0, api_name="/train")
    updates = list(job)
    assert len(updates) >= 3  # live updates, not one answer at the end
    status, losses, devs, choices, summary = updates[-1]
    assert status.startswith("Done.")
    assert {row[0] for row in losses["data"]} == {FIXED, DP} and devs["value"]["data"]
    assert devs["colors_in_legend"] == [FIXED, DP]  # named: a legend first seen with only empty points has none
    assert [row[0] for row in summary["data"]] == [FIXED, DP]
    spread = [dict(zip(choices["value"]["columns"], row)) for row in choices["value"]["data"]]
    steps = {row["step"] for row in spread}  # DP's places over the dev set, at each of its evaluations
    assert steps and all(abs(sum(r["share of dev items"] for r in spread if r["step"] == s) - 1) < 1e-6 for s in steps)
    fields = {"premise": "The cat sat on the mat.", "hypothesis": "A cat sat."}
    result = client.predict(*compare_args("cb", fields, where="input"), api_name="/compare")
    assert "trained in this session" in result[3] and "trained in this session" in result[6]
    other = Client(client.src, verbose=False)  # another session does not see this session's run
    assert "ready-trained" in other.predict(*compare_args("cb", fields), api_name="/compare")[6]


@pytest.mark.slow
def test_visitors_asking_for_the_same_run_at_once_watch_one_run_and_each_keeps_it(app_url):
    visitors = [Client(app_url, verbose=False) for _ in range(2)]
    jobs = [visitor.submit("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED], 5, 8, 1, api_name="/train")
            for visitor in visitors]
    finals = [job.result() for job in jobs]
    assert all(final[0].startswith("Done.") for final in finals)
    assert finals[0][4] == finals[1][4]  # one run: the same steps, scores and examples/s, not two alike
    fields = {"premise": "The cat sat on the mat.", "hypothesis": "A cat sat."}
    for visitor in visitors:
        assert "trained in this session" in visitor.predict(*compare_args("cb", fields), api_name="/compare")[3]


@pytest.mark.slow
def test_the_decoder_backbone_trains_and_compare_says_what_its_place_means(client):
    from app.state import PROMPT_TUNING

    fields = {"premise": "The cat sat on the mat.", "hypothesis": "A cat sat."}
    # the decoder ships prompt tuning and DP input only (assets/checkpoints/train_all.sh): none for deep DP's side
    nothing = client.predict(*compare_args("cb", fields, where="deep"), "smollm2-135m", api_name="/compare")
    assert "No trained prompt for cb on smollm2-135m yet" in nothing[0]
    like_for_like = compare_args("cb", fields, where="input", left="counterpart")
    shipped = client.predict(*like_for_like, "smollm2-135m", api_name="/compare")
    assert "ready-trained on smollm2-135m" in shipped[3] and "ready-trained on smollm2-135m" in shipped[6]
    job = client.submit("cb", "smollm2-135m", [PROMPT_TUNING, DP], 5, 8, 0, api_name="/train")
    status, *_ = list(job)[-1]
    assert status.startswith("Done.")
    result = client.predict(*like_for_like, "smollm2-135m", api_name="/compare")
    assert "trained in this session on smollm2-135m" in result[3]  # this session's runs before the shipped ones
    assert "trained in this session on smollm2-135m" in result[6]
    assert "On a decoder each token reads only what comes before it" in result[-1]
    default = client.predict(*compare_args("cb", fields, where="input"), api_name="/compare")
    assert "ready-trained" in default[6] and "smollm2" not in default[6]  # the default backbone's prompts
    _, _, verdict, *_ = client.predict("cb", "input", "counterpart", "smollm2-135m",
                                    api_name="/explore")
    assert verdict.startswith("On the first 20 dev items:")  # this session's run: every candidate on fewer items


def test_the_verbalizer_on_a_sentence_encoder_is_refused_in_one_line(client):
    with pytest.raises(Exception, match="has no masked-LM head in its checkpoint"):
        client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED], 5, 8, 0,
                       "verbalizer (the LM's own label words)", api_name="/train")
    assert client.predict("cb", 0, api_name="/pick")[0] == 0  # still up


@pytest.mark.slow
def test_stop_ends_a_run_within_a_step_and_keeps_its_checkpoint(client):
    job = client.submit("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED], 120, 8, 0, api_name="/train")
    started = time.monotonic()
    while not job.outputs() and time.monotonic() - started < 60:
        time.sleep(0.2)
    client.predict(api_name="/stop")
    final = job.result()
    assert time.monotonic() - started < 120  # sooner than the 120 s it was given: stopped, not finished
    assert final[0].startswith("Stopped") and final[4]["data"][0][3] == "cancelled"


@pytest.mark.parametrize("fields, message", [
    ({"premise": "", "hypothesis": "x"}, "RTE needs a non-empty &#x27;premise&#x27;"),
    ({"premise": "<script>alert(1)</script>", "hypothesis": "<b>bold</b>"}, None),
])
def test_bad_or_odd_input_is_answered_clearly_and_escaped(fields, message, client):
    note, *rest = client.predict(*compare_args("rte", fields), api_name="/compare")
    if message:
        assert message in note
    else:
        assert "<script>" not in rest[1] + rest[4] and "&lt;" in rest[4]


def test_out_of_range_dev_index_seed_and_no_method_are_errors_not_crashes(client):
    with pytest.raises(Exception, match="dev examples 0 to 55"):
        client.predict("cb", 999, api_name="/pick")
    with pytest.raises(Exception, match="Choose at least one method"):
        client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [], 5, 8, 0, api_name="/train")
    for seed in (-1, 2**70):
        with pytest.raises(Exception, match=f"Seed must be a whole number from 0 to {MAX_SEED}"):
            client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED], 5, 8, seed, api_name="/train")
    assert client.predict("cb", 0, api_name="/pick")[0] == 0  # still up


def test_long_input_is_cut_with_a_visible_note(client):
    note, *_ = client.predict(*compare_args("rte", {"premise": "word " * 1000, "hypothesis": "x"}), api_name="/compare")
    assert "Cut to 2000 characters: premise" in note and "cut to its first 128 tokens" in note


@pytest.mark.slow
def test_few_shot_k_above_the_train_set_says_so(client):
    status, *_ = client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED], 5, 10_000, 0,
                                api_name="/train")
    assert status.startswith("Done.")
    assert all(fact in status for fact in ("k = 10000", "250 training items", "cb"))  # asked, had, which task


def test_compare_takes_named_parameters(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/compare"]
    names = [parameter["parameter_name"] for parameter in info["parameters"]]
    assert names[:3] == ["task_name", "premise", "hypothesis"] and "copa_asks" in names and "dp_where" in names
    assert "backbone_name" in names
    note, *rest = client.predict(task_name="rte", premise="A cat sat on a mat.", hypothesis="A cat sat.",
                                 dp_where="deep", left="ptv2", api_name="/compare")
    assert rest[0]["label"] in TASKS["rte"].label_names


def test_explore_reports_intervals_distributions_and_disagreements(client, data_dir):
    # The shipped analysis holds every candidate tried on every item: one complete update
    (table, beat, verdict, summary, *plots, disagreements, choices, place), = list(
        client.submit("cb", "deep", "ptv2", api_name="/explore"))
    assert all(shown["visible"] for shown in (table, summary, disagreements, choices))  # hidden until Explore runs
    table, summary, disagreements, choices = (shown["value"] for shown in (table, summary, disagreements, choices))
    assert table["headers"][1] == "score (mean of accuracy and macro-F1)"  # CB's score, named
    assert len(table["data"]) == 4 and all("–" in row[2] for row in table["data"])
    (_, fixed_score, *_), (_, dp_score, *_), (gain, difference, *_), (constant, baseline, *_) = table["data"]
    fixed_score, dp_score, difference, baseline = map(float, (fixed_score, dp_score, difference, baseline))
    assert gain == "DP − fixed (paired, same items)" and abs(difference - (dp_score - fixed_score)) < 2e-3
    dev, task = load_examples("cb", "val", data_dir)[:300], TASKS["cb"]  # the bar: the best one answer for all
    scores = {name: compute_metrics(task.metrics, [label] * len(dev), [e.label for e in dev], [e.group for e in dev],
                                    task.num_labels)["score"] for label, name in enumerate(task.label_names)}
    answer = max(scores, key=scores.get)
    assert constant == f"always “{answer}” (the best single answer on these items)"
    assert abs(baseline - scores[answer]) < 1e-3
    assert (f"always answering “{answer}”" in beat) == (min(fixed_score, dp_score) <= baseline)
    assert ("cannot tell DP from the fixed prompt" in beat) or ("the fixed prompt** on these 56 items" in beat)
    rows = [dict(zip(choices["headers"], row)) for row in choices["data"]]
    assert [row["factor"] for row in rows] == ["position", "length", "pool"]  # the ready DP chooses all three
    assert all(" – " in row["score, DP's own choices"] and " – " in row["best choice per item (upper bound)"]
               for row in rows)
    assert "**Place**" in verdict and "**Length**" in verdict and "its place only moves" in place
    layouts = re.fullmatch(r"(\d\.\d\d) \(no preference: (\d\.\d\d)\)", rows[0]["how sure, over distinct layouts"])
    assert layouts and rows[1]["how sure, over distinct layouts"] == "–"  # only places can be one layout
    short = [dict(zip(summary["headers"], row)) for row in summary["data"]]
    assert [row["choice"] for row in short] == ["place", "length", "pool prompt"]
    # one figure of how sure DP is of its place: over distinct layouts, against what no preference gives there
    assert short[0]["how sure (median)"] == f"{float(layouts[1]):.0%} (no preference: {float(layouts[2]):.0%})"
    changes = rows[0]["answers the choice changes"]
    assert ("Here DP's place decides little" in verdict) == (changes < 0.05)
    assert all(len(sentence.split()) <= 40 for sentence in verdict.split("\n\n"))
    held_out = json.loads((CHECKPOINTS / "cb" / "dp_deep" / "metrics.json").read_text())["holdout_choices"]
    picked = rows[0]["best single choice (picked on held-out training items)"]  # the shipped DP was selected there
    assert picked.endswith(f" at {held_out['position']['best_single']}")
    columns = [[dict(zip(plot["value"]["columns"], row)) for row in plot["value"]["data"]] for plot in plots]
    assert len(plots) == 4 and all(sum(row["items"] for row in rows) == 56 for rows in columns)  # each item once
    slots = json.loads((CHECKPOINTS / "cb" / "dp_deep" / "config.json").read_text())["method"]["num_tokens"]
    # a bar for every candidate, in order: places 0..L, lengths 1..L
    for plot, rows, first in zip(plots, columns, (0, 1, 0, 1)):
        candidates = [str(c) for c in range(first, slots + 1)]
        assert plot["sort"] == candidates
        stacks = Counter()
        for row in rows:
            stacks[row.get("tokens after the input", row.get("active length"))] += row["items"]
        assert set(stacks) == set(candidates)
        assert plot["y_lim"][0] == 0 and plot["y_lim"][1] > max(stacks.values())  # room above the tallest bar
    labels = list(dict.fromkeys(row["gold label"] for row in columns[0]))  # first-seen order: the legend's
    assert labels == [name for name in ("entailment", "contradiction", "neutral") if name in labels]
    # input lengths in three ranges of about as many items each, shortest first, each range's bar drawn
    counts = Counter()
    for row in columns[2]:
        counts[row["input length"]] += row["items"]
    bins = list(counts)
    assert len(bins) == 3 and bins == sorted(bins, key=lambda name: int(name.split("-")[0]))
    assert min(counts.values()) >= 56 // 3 - 3
    assert disagreements["headers"] == ["dev #", "gold", "fixed", "DP", "input"]
    assert len(disagreements["data"]) <= 10  # every row whole: no scroll box


def test_layout_drawing_escapes_text_and_marks_every_slot():
    decision = InstanceDecision(item=0, tokens_before=1, tokens_after=1, split_position=1, active_length=2, num_slots=3,
                                pool_weights=[0.25, 0.75], position_probs=[0.1, 0.8, 0.05, 0.05],
                                length_probs=[0.2, 0.7, 0.1], class_probs=[0.4, 0.6],
                                layout=[("[CLS]", "input"), ("P2", "prompt-before"), ("P3", "inactive"),
                                        ("<b>", "input"), ("P1", "prompt-after"), ("[SEP]", "input")], deep=False)
    drawing = views.layout_html(decision, "choice <1>")
    assert "&lt;b&gt;" in drawing and "<b>" not in drawing and "choice &lt;1&gt;" in drawing
    assert drawing.count('data-kind="prompt-before"') == 1 and drawing.count('data-kind="inactive"') == 1
    spaced = views.layout_html(replace(decision, layout=[(" ", "input"), ("4", "input"), ("\n", "input")]))
    assert re.findall(r">([^<]*)</span>", spaced)[:3] == ["␣", "4", "↵"]  # whitespace tokens stay visible
    positions, lengths, pool = views.candidate_frames(decision)
    assert list(positions.candidate) == ["0", "1", "2", "3"] and list(lengths.candidate) == ["1", "2", "3"]
    assert list(pool.candidate) == ["prompt 1", "prompt 2"] and list(pool.probability) == [0.25, 0.75]


def test_choice_counts_give_every_candidate_a_slot_and_keep_the_groups_order():
    frame = pd.DataFrame({"tokens after the input": [3, 1, 3, 0],
                          "gold label": pd.Categorical(["neutral", "entailment", "entailment", "neutral"],
                                                       categories=["entailment", "contradiction", "neutral"])})
    counts = views.choice_counts(frame, "gold label", "tokens after the input", range(5))
    assert counts.to_dict("records") == [
        {"gold label": "entailment", "tokens after the input": "1", "items": 1},
        {"gold label": "entailment", "tokens after the input": "2", "items": 0},  # never chosen: an empty slot
        {"gold label": "entailment", "tokens after the input": "3", "items": 1},
        {"gold label": "entailment", "tokens after the input": "4", "items": 0},
        {"gold label": "neutral", "tokens after the input": "0", "items": 1},
        {"gold label": "neutral", "tokens after the input": "3", "items": 1}]


def test_budgets_stay_within_the_spaces_bounds():
    assert method_budget(None, 2, zero_gpu=False) == 60 and method_budget(0.2, 2, zero_gpu=False) == 1
    assert method_budget(10 * MAX_BUDGET_S, 4, zero_gpu=False) == MAX_BUDGET_S
    for methods in range(1, 5):
        for wanted in (5, 60, MAX_BUDGET_S, 10 * MAX_BUDGET_S):
            seconds = method_budget(wanted, methods, zero_gpu=True)
            asked = gpu_duration("cb", "backbone", ["method"] * methods, wanted, 0, 0, None)
            # ZeroGPU refuses long calls: the request stays bounded and the whole run fits in what it asked for.
            assert asked <= GPU_CALL_MAX_S and methods * seconds + RUN_OVERHEAD_S <= asked + 1
            assert seconds == min(wanted, method_budget(wanted, methods, zero_gpu=False),
                                  (GPU_CALL_MAX_S - RUN_OVERHEAD_S) / methods)


def test_app_honours_gradios_server_variables_and_flags_win(monkeypatch):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("app_entry", Path(__file__).resolve().parent.parent / "app.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    launched = {}

    class Demo:
        def queue(self, **_):
            return self

        def launch(self, **options):
            launched.update(options)

    monkeypatch.setattr(entry, "build_demo", lambda data_dir: Demo())
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    entry.main(["--data-dir", "/nonexistent"])
    assert launched["server_port"] == 7999 and launched["server_name"] == "0.0.0.0"
    entry.main(["--port", "7001", "--host", "127.0.0.1", "--data-dir", "/nonexistent"])
    assert launched["server_port"] == 7001 and launched["server_name"] == "127.0.0.1"


def test_the_train_tab_trains_dp_as_the_ready_trained_prompts_were_made():
    from app.state import METHOD_CHOICES

    for where in ("input", "deep"):
        shipped = json.loads((CHECKPOINTS / "cb" / f"dp_{where}" / "config.json").read_text())["method"]
        offered = json.loads(json.dumps(METHOD_CHOICES[f"DP {where}: position + length + pool"]().to_dict()))
        assert {key: offered[key] for key in shipped} == shipped


def test_the_train_tabs_choice_chart_counts_layouts_when_dp_also_chooses_the_length():
    from app.tabs.train import choice_spread

    def shares(position):
        return {row["tokens after the input"]: row["share of dev items"] for row in choice_spread(3, position)}

    # every row drawn at place 4 with 2 active tokens: both tokens after the input, not 4
    both_after = shares({"position": {"counts": [0, 0, 0, 0, 20], "layout_counts": [0, 0, 20, 0, 0]}})
    assert both_after["2"] == 1.0 and both_after["4"] == 0.0
    position_only = shares({"position": {"counts": [5, 0, 0, 0, 15], "layout_counts": None}})
    assert position_only["0"] == 0.25 and position_only["4"] == 0.75


def test_the_train_tab_says_what_a_short_run_can_and_cannot_show():
    from app.tabs.train import short_run_note

    def measured(fixed, dp, converged=None):
        return {"budget_s": 60, "tasks": {"rte": {
            FIXED: {"dev": fixed, "majority": 0.527, "steps": 70, "converged": converged},
            "DP deep: position + length + pool": {"dev": dp, "majority": 0.527, "steps": 60, "converged": None}}}}

    def rows(note):  # the table's rows by their label: each figure says what it is
        return {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in note.splitlines()
                if line.startswith("| ") and not line.startswith("| dev score (accuracy)")}

    stuck = short_run_note("rte", measured(0.527, 0.53))
    assert "What a 60 s run can show on rte" in stuck
    assert rows(stuck)["a 60 s run: its best evaluation"] == ["0.527", "0.530 |"]
    assert rows(stuck)["always the most common answer"] == ["0.527", "0.527 |"]
    assert rows(stuck)["converged: the results grid's mean over seeds"] == ["–", "– |"]  # not measured yet
    assert "Neither beats always giving one answer" in stuck
    learning = short_run_note("rte", measured(0.60, 0.53, converged=0.65))
    assert "DP deep: position + length + pool does no better than always giving one answer" in learning
    assert rows(learning)["converged: the results grid's mean over seeds"][0] == "0.650"
    assert "lucky" not in learning
    flattered = short_run_note("rte", measured(0.60, 0.53, converged=0.55))
    assert "lucky in its best evaluation" in flattered
    assert short_run_note("wsc", measured(0.6, 0.6)) == ""
    ready = short_run_note("rte", measured(0.527, 0.53), ready={FIXED: (0.58, "holdout")})
    assert rows(ready)["ready-trained: what Compare and Explore use"] == ["0.580", "– |"]
    older = short_run_note("rte", measured(0.527, 0.53), ready={FIXED: (0.58, "dev")})
    assert "ready-trained: what Compare and Explore use (selected on dev)" in rows(older)
    assert all(len(line.split()) <= 40 for line in flattered.splitlines() if not line.startswith("|"))


def test_the_short_run_note_says_on_another_backbone_that_it_was_measured_on_the_default(client):
    default = client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", api_name="/short_run_note")
    assert default.startswith("**What a 60 s run can show on cb**")
    decoder = client.predict("cb", "smollm2-135m", api_name="/short_run_note")
    assert decoder.startswith("*Measured on the default backbone, not on smollm2-135m*") and default in decoder


def test_the_train_tab_starts_a_decoder_with_methods_whose_place_it_can_use():
    from app.state import DEFAULT_METHODS, METHOD_CHOICES, PROMPT_TUNING, default_methods
    from dp_core.backbone import DEFAULT_BACKBONE, SMOLLM2

    assert default_methods(DEFAULT_BACKBONE) == [FIXED, "DP deep: position + length + pool"]
    assert default_methods(SMOLLM2) == [PROMPT_TUNING, "DP input: position"]
    assert all(method in METHOD_CHOICES for methods in DEFAULT_METHODS.values() for method in methods)


def test_explore_tries_every_candidate_on_fewer_items_where_a_pass_costs_more():
    from types import SimpleNamespace

    from app.state import counterfactual_limit

    default = SimpleNamespace(token_cost=11_000_000)
    assert counterfactual_limit(default, default) == 100
    assert counterfactual_limit(SimpleNamespace(token_cost=22_000_000), default) == 50
    assert counterfactual_limit(SimpleNamespace(token_cost=106_000_000), default) == 20  # SmolLM2: never under 20
    assert counterfactual_limit(SimpleNamespace(token_cost=1_000_000), default) == 100  # a tiny model: never over


def test_ready_trained_prompts_of_another_backbone_load_when_asked_and_stay_with_their_backbone(
        tmp_path, monkeypatch, data_dir, tiny_backbone, default_backbone):
    from app import state
    from dp_core.model import PromptClassifier
    from dp_core.prompts import PromptTuningConfig, PTuningV2Config

    for folder, backbone, method in (("cb/ptv2", default_backbone, PTuningV2Config(num_tokens=4)),
                                     ("tiny/cb/prompt_tuning", tiny_backbone, PromptTuningConfig(num_tokens=4))):
        PromptClassifier(backbone, "cb", method).save_pretrained(tmp_path / folder)
    monkeypatch.setattr(state, "CHECKPOINTS", tmp_path)
    shared = state.Shared(str(data_dir))
    assert shared.ready_backbones() == [state.DEFAULT_BACKBONE, tiny_backbone.name]
    assert list(shared.ready("cb")) == [FIXED] and list(shared.loaded) == [("cb", state.DEFAULT_BACKBONE)]
    shared.backbones[tiny_backbone.name] = tiny_backbone  # as if loaded before; the prompts load on first use
    assert list(shared.ready("cb", tiny_backbone.name)) == [state.PROMPT_TUNING]
    fixed, dp = shared.models(None, "cb", "input", backbone=tiny_backbone.name)
    assert fixed[0] == f"{state.PROMPT_TUNING}, ready-trained on {tiny_backbone.name}" and dp is None
    assert shared.models(None, "cb", "input")[0] is None  # no prompt tuning on the default backbone here
    own = PromptClassifier(tiny_backbone, "cb", PTuningV2Config(num_tokens=4))
    session = state.Session(runs={("cb", tiny_backbone.name): {FIXED: own}})
    assert shared.models(session, "cb", "deep", backbone=tiny_backbone.name)[0][0].startswith(
        f"{FIXED}, trained in this session on {tiny_backbone.name}")
    assert shared.models(session, "cb", "deep")[0][0] == f"{FIXED}, ready-trained"  # a session's run stays on its own


def test_whether_dp_beat_the_fixed_prompt_is_said_no_more_strongly_than_its_interval():
    above = readings.difference_reading(0.05, 0.01, 0.09, 100)
    assert above.startswith("**DP scores 0.050 above the fixed prompt** on these 100 items")
    assert "below" in readings.difference_reading(-0.05, -0.09, -0.01, 100)
    tie = readings.difference_reading(0.02, -0.03, 0.07, 56)
    assert tie.startswith("**These 56 items cannot tell DP from the fixed prompt**") and "holds 0" in tie
    assert all(len(text.split()) <= 40 for text in (above, tie))


def test_a_method_no_better_than_one_answer_for_every_item_is_said_to_show_nothing_learned():
    assert readings.baseline_reading({"fixed": 0.6, "DP": 0.55}, "entailment", 0.5) == ""
    one = readings.baseline_reading({"fixed": 0.6, "DP": 0.5}, "entailment", 0.5)  # a tie is no better
    assert one.startswith("**DP scores no better than always answering “entailment”** (0.500)")
    neither = readings.baseline_reading({"fixed": 0.4, "DP": 0.45}, "true", 0.5)
    assert neither.startswith("**Neither method") and all(len(text.split()) <= 40 for text in (one, neither))


def test_streaming_events_keep_what_they_stream_in_view(client):
    """Gradio covers an event's outputs with its progress bar until the event ends: Train's live curves and
    Explore's first scores would be hidden while they stream, so Train shows it on its status line and Explore and
    Compare where their slow second part lands."""
    events = {event.get("api_name"): event for event in client.config["dependencies"]}
    components = {component["id"]: component for component in client.config["components"]}
    train, explore, compare = events["train"], events["explore"], events["compare"]

    def kinds(ids):
        return [components[i]["type"] for i in ids or []]

    assert kinds(train["show_progress_on"]) == ["markdown"]  # the status line, not the curves
    assert set(train["show_progress_on"]) < set(train["outputs"])
    # Explore: on the choice verdict and table only; the scores (its first output), plots and disagreements stay
    assert kinds(explore["show_progress_on"]) == ["markdown", "dataframe"]
    assert explore["outputs"][0] not in explore["show_progress_on"]
    # Compare: on the what-if strips and plots, not on the two predictions
    assert kinds(compare["show_progress_on"]) == ["html", "nativeplot", "nativeplot"]
    assert not {i for i in compare["outputs"] if components[i]["type"] == "label"} & set(compare["show_progress_on"])


def test_input_lengths_split_into_three_ranges_of_this_task_s_own_lengths():
    from app.tabs.explore import length_groups

    copa_like = [9, 10, 10, 11, 12, 12, 13, 14, 15, 17, 18, 21]  # all short: one fixed bin of 1-32 would hold all
    groups = length_groups(copa_like)
    assert list(groups.categories) == ["1-11 tokens", "12-14 tokens", "15-21 tokens"]
    assert sorted(Counter(groups).values()) == [4, 4, 4]
    assert list(length_groups([7] * 5).categories) == ["1-7 tokens"]  # one length: one range
