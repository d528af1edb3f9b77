#!/usr/bin/env bash
# Re-makes the app's ready-trained prompts with the project's own CLI, then their README table.
# Usage (from the repository root):  bash assets/checkpoints/train_all.sh ../shared/superglue [seconds]
set -euo pipefail
DATA=${1:?give the SuperGLUE folder}
BUDGET=${2:-40}
PY=${PYTHON:-.venv/bin/python}
for task in boolq cb copa rte wic wsc multirc; do
  extra=()
  [ "$task" = boolq ] && extra=(--fewglue)  # no offline BoolQ train file: the 32-example FewGLUE set
  "$PY" -m dp_core.train --task "$task" --method ptv2 --data-dir "$DATA" --epochs 1000 --time-budget "$BUDGET" \
    --eval-every 20 --dev-limit 300 "${extra[@]}" --output-dir "assets/checkpoints/$task/fixed" >/dev/null
  "$PY" -m dp_core.train --task "$task" --method dp --factors position,length,pool --where deep --data-dir "$DATA" \
    --epochs 1000 --time-budget "$BUDGET" --eval-every 20 --dev-limit 300 "${extra[@]}" \
    --output-dir "assets/checkpoints/$task/dp" >/dev/null
done
"$PY" - "$DATA" "$BUDGET" <<'PYTHON'
import json, sys
from pathlib import Path
root = Path("assets/checkpoints")
lines = ["# Ready-trained prompts", "", "Made by `bash assets/checkpoints/train_all.sh <SuperGLUE folder> "
         f"{sys.argv[2]}` on the default backbone (all-MiniLM-L6-v2), a {sys.argv[2]} s budget per run on 2 CPU cores, "
         "official SuperGLUE train files (BoolQ: the 32-example FewGLUE set), evaluated every 20 steps on the first "
         "300 dev items; the best evaluation is kept. Each folder's `metrics.json` has the full history.", "",
         "| task | method | command options | train items | best at step | dev score | majority score |", "|---|---|---|---|---|---|---|"]
for task in ["boolq", "cb", "copa", "rte", "wic", "wsc", "multirc"]:
    for name in ["fixed", "dp"]:
        m = json.loads((root / task / name / "metrics.json").read_text())
        options = "--method ptv2" if name == "fixed" else "--method dp --factors position,length,pool --where deep"
        lines.append(f"| {task} | {name} | `{options}` | {m['train_size']} | {m['best_step']} | "
                     f"{m['best']['score']:.3f} | {m['majority_baseline']:.3f} |")
(root / "README.md").write_text("\n".join(lines) + "\n")
PYTHON
