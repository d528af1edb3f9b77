#!/usr/bin/env bash
# Re-makes the app's ready-trained prompts with the project's own CLI, then their README table.
# Usage (from the repository root):  bash assets/checkpoints/train_all.sh ../shared/superglue [seconds]
# TASKS="wic wsc" re-makes only those tasks; the table is always rebuilt from every folder.
set -euo pipefail
DATA=${1:?give the SuperGLUE folder}
BUDGET=${2:-40}
PY=${PYTHON:-.venv/bin/python}
# Each folder's method, written once: the runs below use it and the table shows it.
export FIXED_OPTIONS="--method ptv2" DP_OPTIONS="--method dp --factors position,length,pool --where deep"
for task in ${TASKS:-boolq cb copa rte wic wsc multirc}; do
  extra=()
  [ "$task" = boolq ] && extra=(--fewglue)  # no offline BoolQ train file: the 32-example FewGLUE set
  for name in fixed dp; do
    options=FIXED_OPTIONS; [ "$name" = dp ] && options=DP_OPTIONS
    # shellcheck disable=SC2086  # the options are several words on purpose
    "$PY" -m dp_core.train --task "$task" ${!options} --data-dir "$DATA" --epochs 1000 --time-budget "$BUDGET" \
      --eval-every 20 --dev-limit 300 "${extra[@]}" --output-dir "assets/checkpoints/$task/$name" >/dev/null
  done
done
"$PY" - <<'PYTHON'
import json
import os
from pathlib import Path
root = Path("assets/checkpoints")
lines = ["# Ready-trained prompts", "", "Made by `bash assets/checkpoints/train_all.sh <SuperGLUE folder> <seconds>` "
         "on the default backbone (all-MiniLM-L6-v2) on 2 CPU cores, official SuperGLUE train files (BoolQ: the "
         "32-example FewGLUE set), evaluated every 20 steps on the first 300 dev items; the best evaluation is kept. "
         "`trained for` is each run's time budget as spent (DP's one-off feature pass over the train set not "
         "counted). Each folder's `metrics.json` has the full history.", "",
         "| task | method | command options | train items | trained for | best at step | dev score | majority score |",
         "|---|---|---|---|---|---|---|---|"]
for task in ["boolq", "cb", "copa", "rte", "wic", "wsc", "multirc"]:
    for name in ["fixed", "dp"]:
        m = json.loads((root / task / name / "metrics.json").read_text())
        options = os.environ["FIXED_OPTIONS" if name == "fixed" else "DP_OPTIONS"]
        lines.append(f"| {task} | {name} | `{options}` | {m['train_size']} | {m['elapsed_s']:.0f} s | "
                     f"{m['best_step']} | {m['best']['score']:.3f} | {m['majority_baseline']:.3f} |")
(root / "README.md").write_text("\n".join(lines) + "\n")
PYTHON
