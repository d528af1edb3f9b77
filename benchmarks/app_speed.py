"""The app's acceptance figures: cold start, Compare latency, Explore's time, and a 60 s CB run of both methods.

    python -m benchmarks.app_speed --data-dir ../shared/superglue
    python -m benchmarks.app_speed --data-dir ../shared/superglue --only explore
    python -m benchmarks.app_speed --data-dir ../shared/superglue --only class --visitors 30
    python -m benchmarks.app_speed --data-dir ../shared/superglue --only uploads --visitors 30

Cold start: from a fresh Python process to the page answering HTTP (imports, backbone, ready-trained prompts).
Compare: the round trip over HTTP through Gradio's queue (POST the inputs, read the answer's event stream: the
browser's path), to the first streamed update (both methods' predictions and layouts) and to the end (the what-if
plots), per dev example; beside it the same HTTP round trip
of a no-op event, Gradio's own floor. gradio_client is used only to pick the examples: it adds ~65 ms of its
own per call on this machine, which no visitor pays.
Explore, in-process on CB and WiC: on a ready-trained prompt (its shipped analyses read) and on the same prompts as a
session's runs (analysed there: the scores first, then every candidate on the first 100 items).
Training: fixed P-tuning v2 and DP (input, position + length + pool) on CB, 60 s each, against the majority class.
A class at once: ``--visitors`` sessions press Compare (each its own dev example), Explore and Train (the default
methods on CB, a third of them with another seed) at the same moment; each one's wait before its first update.
Uploads at once: ``--visitors`` sessions each upload a file of their own (no two alike: no run is shared), then press
Your data's Train at the same moment (``--upload-seconds`` per method); each one's wait for its first update and for
its scores. Before them, one visitor's worst file the page accepts (2,000 rows, 50 labels, long texts), timed from
Train to scores: the job's bound.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

from app import readings, views
from app.state import DEFAULT_BACKBONE, FIXED, Session, Shared
from app.tabs.compare import what_if
from app.tabs.explore import run_exploration
from dp_core.model import PromptClassifier
from dp_core.explain import explain_examples


def cold_start(data_dir: str, port: int) -> tuple[float, subprocess.Popen]:
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", data_dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return time.perf_counter() - started, server
        except OSError:
            time.sleep(0.1)


def round_trip(http: httpx.Client, api_name: str, data: list) -> tuple[float, float]:
    """Seconds from posting an event's inputs to its first streamed update (Compare streams the predictions
    first, then the what-if plots) and to its completed answer; the same twice for an event that does not stream."""
    started = time.perf_counter()
    event = http.post(f"/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    first = None
    with http.stream("GET", f"/gradio_api/call/{api_name}/{event}") as answer:
        for line in answer.iter_lines():
            if line.startswith("event: generating") and first is None:
                first = time.perf_counter() - started
            elif line.startswith("event: complete"):
                done = time.perf_counter() - started
                return (first or done), done
            elif line.startswith("event: error"):
                break
    raise RuntimeError(f"{api_name} did not complete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--budget", type=float, default=60, help="seconds per method of the CB run; 0 skips it")
    parser.add_argument("--only", choices=["explore", "class", "uploads"],
                        help="time Explore alone, a class at once, or a class uploading at once")
    parser.add_argument("--visitors", type=int, default=30, help="sessions of the class")
    parser.add_argument("--class-budget", type=float, default=20, help="seconds per method of the class's runs")
    parser.add_argument("--upload-seconds", type=float, default=30, help="Your data's seconds per method")
    args = parser.parse_args()
    if args.only == "explore":
        explore_times(args.data_dir)
        return
    seconds, server = cold_start(args.data_dir, args.port)
    print(f"cold start to a usable page: {seconds:.1f} s")
    if args.only in ("class", "uploads"):
        url = f"http://127.0.0.1:{args.port}/"
        try:
            if args.only == "class":
                class_at_once(url, args.visitors, args.class_budget)
            else:
                upload_bound(url, args.upload_seconds)
                uploads_at_once(url, args.visitors, args.upload_seconds)
        finally:
            server.terminate()
        return
    try:
        client = Client(f"http://127.0.0.1:{args.port}/", verbose=False)
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}") as http:
            floor = [round_trip(http, "stop", [])[1] for _ in range(args.examples)]
            print(f"no-op event (Gradio's floor): median {1000 * statistics.median(floor):.0f} ms")
            through_client = []
            for _ in range(args.examples):
                started = time.perf_counter()
                client.predict(api_name="/stop")
                through_client.append(time.perf_counter() - started)
            print(f"no-op event through gradio_client: median {1000 * statistics.median(through_client):.0f} ms")
            for task in ("cb", "rte", "copa", "wic"):
                firsts, times = [], []
                for index in range(args.examples):
                    _, *boxes, question = client.predict(task, index, api_name="/pick")
                    first, done = round_trip(http, "compare", [task, *boxes, question, "deep", "ptv2"])
                    firsts.append(first)
                    times.append(done)
                print(f"compare {task}: predictions shown after a median {1000 * statistics.median(firsts):.0f} ms "
                      f"(max {1000 * max(firsts):.0f}), what-if plots complete after "
                      f"{1000 * statistics.median(times):.0f} ms (max {1000 * max(times):.0f}) over {len(times)} "
                      "dev examples")
        if not args.budget:
            return
        dp = "DP input: position + length + pool"
        final = client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED, dp], args.budget, 0, 0,
                               api_name="/train")
        summary = final[4]
        for row in summary["data"]:
            record = dict(zip(summary["headers"], row))
            print(f"CB {args.budget:g} s: {record['method']}: best dev score {record['best dev score']:.3f} "
                  f"(one-answer baseline {record['one-answer baseline']:.3f}), {record['examples/s']} ex/s")
    finally:
        server.terminate()
    handler_split(args.data_dir, args.examples)


def class_at_once(url: str, visitors: int, budget_s: float) -> None:
    """Every visitor presses Compare, Explore and Train at one moment; prints the waits before the first updates."""
    clients = [Client(url, verbose=False) for _ in range(visitors)]
    picked = [client.predict("cb", index, api_name="/pick") for index, client in enumerate(clients)]
    methods = [FIXED, "DP deep: position + length + pool"]
    started, jobs = time.perf_counter(), []
    for index, (client, (_, *boxes, question)) in enumerate(zip(clients, picked)):
        seed = 0 if index % 3 else 1 + index % 2  # two in three ask for the defaults; the others for two other seeds
        jobs += [("Compare", client.submit("cb", *boxes, question, "deep", "ptv2", api_name="/compare")),
                 ("Explore", client.submit("cb", "deep", "ptv2", api_name="/explore")),
                 ("Train", client.submit("cb", DEFAULT_BACKBONE, methods, budget_s, 0, seed, api_name="/train"))]
    first: dict[int, float] = {}
    while len(first) < len(jobs):
        for number, (_, job) in enumerate(jobs):
            if number not in first and (job.outputs() or job.done()):
                first[number] = time.perf_counter() - started
        time.sleep(0.02)
    for event in ("Compare", "Explore", "Train"):
        waits = sorted(first[n] for n, (name, _) in enumerate(jobs) if name == event)
        print(f"{visitors} visitors at once, {event}: first update after a median {statistics.median(waits):.1f} s, "
              f"the last after {waits[-1]:.1f} s")
    trains = [job for name, job in jobs if name == "Train"]
    finals = [job.result() for job in trains]
    runs = len({str(final[4]) for final in finals})
    print(f"Train ({len(methods)} methods, {budget_s:g} s each): {runs} runs for {visitors} visitors, every visitor's "
          f"done after {time.perf_counter() - started:.0f} s")


def labelled_file(path: Path, rows: int, labels: int, words: int, extra: str = "") -> Path:
    """A CSV a visitor might bring: ``rows`` texts of ``words`` words, ``labels`` labels in turn (``extra`` makes
    one row differ, so that no two visitors' files are alike)."""
    vocabulary = ["great", "dull", "film", "plot", "acting", "slow", "bright", "story", "music", "ending"]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "label"])
        for row in range(rows):
            text = " ".join(vocabulary[(row * 7 + word) % len(vocabulary)] for word in range(words))
            writer.writerow([text + (extra if row == 0 else ""), f"class {row % labels}"])
    return path


def upload_bound(url: str, seconds: float) -> None:
    """One visitor's worst file the page accepts, timed from Train to its scores: reading, both methods, scoring."""
    client = Client(url, verbose=False)
    with tempfile.TemporaryDirectory() as folder:
        path = handle_file(str(labelled_file(Path(folder) / "worst.csv", 2000, 50, 150)))
        client.predict(path, api_name="/upload_preview")
        started = time.perf_counter()
        status, *_ = client.predict(path, "review", "(none)", "label", seconds, api_name="/train_uploaded")
    took = time.perf_counter() - started
    print(f"Your data, the worst accepted file (2,000 rows, 50 labels, 150 words a text), {seconds:g} s a method: "
          f"scores after {took:.0f} s, {took - 2 * seconds:.0f} s past the training budget "
          f"({'scores' if 'interval' in status else 'no scores'})")


def uploads_at_once(url: str, visitors: int, seconds: float) -> None:
    """Every visitor uploads a file of its own, then all press Train at one moment: the waits for the first update
    and for the scores, and the budgets the hall gave."""
    clients = [Client(url, verbose=False) for _ in range(visitors)]
    with tempfile.TemporaryDirectory() as folder:
        files = [handle_file(str(labelled_file(Path(folder) / f"class-{n}.csv", 200, 2, 12, f" {n}")))
                 for n in range(visitors)]
        started = time.perf_counter()
        previews = [client.submit(file, api_name="/upload_preview") for client, file in zip(clients, files)]
        for preview in previews:
            preview.result()
        print(f"{visitors} uploads read at once: all previews after {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        jobs = [client.submit(file, "review", "(none)", "label", seconds, api_name="/train_uploaded")
                for client, file in zip(clients, files)]
        first: dict[int, float] = {}
        while len(first) < len(jobs):
            for number, job in enumerate(jobs):
                if number not in first and (job.outputs() or job.done()):
                    first[number] = time.perf_counter() - started
            time.sleep(0.02)
        firsts = sorted(first.values())
        done = []
        for job in jobs:
            job.result()
            done.append(time.perf_counter() - started)
    budgets = [float(line.split("Your budget: ")[1].split(" s")[0]) for job in jobs for line in
               [job.outputs()[0][0]] if "Your budget: " in line]
    scored = sum("interval" in job.outputs()[-1][0] for job in jobs)
    print(f"{visitors} visitors uploading at once, Your data's Train ({seconds:g} s a method asked): first update "
          f"after a median {statistics.median(firsts):.1f} s, the last after {firsts[-1]:.1f} s; scores for "
          f"{scored} of {visitors}, the last after {max(done):.0f} s; budgets given {min(budgets):.0f} to "
          f"{max(budgets):.0f} s a method")


def as_session_runs(shared: Shared, task: str, where: str) -> Session:
    """The ready-trained pair that Explore sets side by side, loaded again as if trained in a session: nothing of
    theirs is read from beside the checkpoints, so Explore analyses them as it would a new run."""
    runs = {}
    for title, model in shared.ready(task).items():
        if model in [side[1] for side in shared.models(None, task, where) if side]:
            runs[title] = PromptClassifier.from_pretrained(shared.folders[id(model)], backbone=model.backbone).eval()
    return Session(runs={(task, DEFAULT_BACKBONE): runs})


def explore_times(data_dir: str) -> None:
    """Seconds to Explore's first update and to its last, on shipped prompts and on a session's runs."""
    shared = Shared(data_dir)
    for task in ("cb", "wic"):
        for where in ("deep", "input"):
            times = {}
            for source, session in (("shipped", None), ("session", as_session_runs(shared, task, where))):
                started, first = time.perf_counter(), None
                for update in run_exploration(shared, task, where, "counterpart",
                                              DEFAULT_BACKBONE, session):
                    first = first or time.perf_counter() - started
                times[source] = (first, time.perf_counter() - started, update[2].split(":")[0])
            (_, shipped, _), (first, done, counted) = times["shipped"], times["session"]
            print(f"explore {task} DP {where}: a ready-trained prompt {shipped:.1f} s; as a session's run: scores "
                  f"after {first:.1f} s, DP's choices after {done:.1f} s ({counted.lower()})", flush=True)


def handler_split(data_dir: str, count: int) -> None:
    """Where Compare's time goes inside the handler: each method's pass and the drawing, in-process."""
    shared = Shared(data_dir)
    for task in ("cb", "rte", "copa", "wic"):
        (_, fixed), (_, dp) = shared.models(None, task, "deep", "ptv2")
        parts: dict[str, list[float]] = {"fixed prompt": [], "DP (feature pass + prompted pass)": [],
                                         "what if (every place and length)": [], "drawing": []}
        for example in shared.dev_examples(task)[:count]:
            started = time.perf_counter()
            fixed_rows = explain_examples(fixed, [example]).item(0)
            parts["fixed prompt"].append(time.perf_counter() - started)
            started = time.perf_counter()
            dp_rows = explain_examples(dp, [example]).item(0)
            parts["DP (feature pass + prompted pass)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            what_if(dp, example, dp_rows, dp.task.label_names)
            parts["what if (every place and length)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            for rows in (fixed_rows, dp_rows):
                for row in rows:
                    views.layout_html(row)
                readings.where_reading(rows, task)
            views.candidate_frames(dp_rows[0])
            parts["drawing"].append(time.perf_counter() - started)
        print(f"inside compare {task}: " + ", ".join(f"{name} {1000 * statistics.median(times):.0f} ms"
                                                    for name, times in parts.items()))


if __name__ == "__main__":
    main()
