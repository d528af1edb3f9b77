"""The app's acceptance figures: cold start, Compare latency, and a 60 s CB run of both methods.

    python -m benchmarks.app_speed --data-dir ../shared/superglue

Cold start: from a fresh Python process to the page answering HTTP (imports, backbone, ready-trained prompts).
Compare: the whole round trip through gradio_client (both methods, drawing included), per dev example.
Training: fixed P-tuning v2 and DP (input, position + length + pool) on CB, 60 s each, against the majority class.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request

from gradio_client import Client

from app.ui import FIXED


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--budget", type=float, default=60)
    args = parser.parse_args()
    seconds, server = cold_start(args.data_dir, args.port)
    print(f"cold start to a usable page: {seconds:.1f} s")
    try:
        client = Client(f"http://127.0.0.1:{args.port}/", verbose=False)
        for task in ("cb", "rte", "copa", "wic"):
            times = []
            for index in range(args.examples):
                _, *boxes, question = client.predict(task, index, api_name="/pick")
                started = time.perf_counter()
                client.predict(task, *boxes, question, api_name="/compare")
                times.append(time.perf_counter() - started)
            print(f"compare {task}: median {1000 * statistics.median(times):.0f} ms, "
                  f"max {1000 * max(times):.0f} ms over {len(times)} dev examples")
        dp = "DP input: position + length + pool"
        final = client.predict("cb", "sentence-transformers/all-MiniLM-L6-v2", [FIXED, dp], args.budget, 0, 0,
                               api_name="/train")
        summary = final[3]
        for row in summary["data"]:
            record = dict(zip(summary["headers"], row))
            print(f"CB {args.budget:g} s: {record['method']}: best dev score {record['best dev score']:.3f} "
                  f"(majority class {record['majority class score']:.3f}), {record['examples/s']} ex/s")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
