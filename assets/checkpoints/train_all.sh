#!/usr/bin/env bash
# Re-makes the app's ready-trained prompts with the project's own CLI, then their README table.
# Usage (from the repository root):  bash assets/checkpoints/train_all.sh ../shared/superglue
# TASKS="wic wsc" or METHODS="dp_input" re-make only those. A folder whose metrics.json records the very command
# about to run is kept, so a stopped run resumes where it was; the table is always rebuilt from every folder.
set -euo pipefail
DATA=${1:?give the SuperGLUE folder}
PY=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-300}
# Selected on 100 held-out training items (few-shot BoolQ: 8), never on dev; dev is scored once, at the end.
COMMON="--select-on holdout --holdout-max 100 --max-steps $STEPS --eval-every 25 --patience 6 --dev-limit 300"
# DP: the score-function estimator with dp_core.dynamic.READY_TRAINED (unit-length features, the choice network on
# its own learning rate; docs/dp_learning.md). tests/test_app.py checks the app trains DP the same way.
DP="--method dp --factors position,length,pool --feature-norm unit --choice-lr 0.1"
declare -A OPTIONS=([ptv2]="--method ptv2" [prompt_tuning]="--method prompt_tuning"
                    [dp_input]="$DP --where input" [dp_deep]="$DP --where deep")
for task in ${TASKS:-cb copa rte wic wsc boolq multirc}; do
  extra=""
  [ "$task" = boolq ] && extra="--fewglue"  # no offline BoolQ train file: the 32-example FewGLUE set
  # MultiRC: the answer sits after a long paragraph; 40 held-out questions (about 200 answers) keep evaluations short
  [ "$task" = multirc ] && extra="--max-length 256 --holdout-max 40"
  for name in ${METHODS:-ptv2 prompt_tuning dp_input dp_deep}; do
    folder="assets/checkpoints/$task/$name"
    # shellcheck disable=SC2206  # the options are several words on purpose
    arguments=(--task "$task" ${OPTIONS[$name]} $COMMON $extra --data-dir "$DATA" --output-dir "$folder")
    if "$PY" -c 'import json, shlex, sys; sys.exit(json.load(open(sys.argv[1]))["command"] != shlex.join(
        ["python", "-m", "dp_core.train", *sys.argv[2:]]))' "$folder/metrics.json" "${arguments[@]}" 2>/dev/null; then
      echo "$task $name: made with this command already, kept"
      continue
    fi
    echo "$task $name: training ($(date +%H:%M))"
    "$PY" -m dp_core.train "${arguments[@]}" >/dev/null
  done
done
"$PY" - <<'PYTHON'
import json
from pathlib import Path

root = Path("assets/checkpoints")
lines = [
    "# Ready-trained prompts", "",
    "Made by `bash assets/checkpoints/train_all.sh <SuperGLUE folder>` on the default backbone (all-MiniLM-L6-v2) on 2 "
    "CPU cores, from the official SuperGLUE train files (BoolQ: the 32-example FewGLUE set). Each run keeps a seeded "
    "10 % of its training items out (at least 32, at most 100; BoolQ: 8), evaluates on them every 25 steps, keeps the "
    "checkpoint that scores best there and stops after 6 evaluations without improvement; dev (its first 300 "
    "items) is scored once, for that checkpoint. Each folder's `metrics.json` has the command, the held-out history "
    "and, for DP, its choices on dev and on the held-out items.", "",
    "`best at` equal to `steps` means the held-out score was still rising when the run ended: a longer run may do "
    "better. DP columns, for the place (position) on dev: *commitment*, the median probability of DP's top choice "
    "(1/17 = 0.06 is no preference); *changes*, the share of dev items whose prediction depends on the place; "
    "*own − single*, DP's own places against the single place that scored best on the held-out training items, "
    "both scored on dev.", "",
    "| task | method | train items | steps | best at | stopped | held-out score | dev score | majority | "
    "commitment | changes | own − single |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
earlier = []
for task in ["cb", "copa", "rte", "wic", "wsc", "boolq", "multirc"]:
    for folder in sorted((root / task).glob("*/metrics.json")):
        m = json.loads(folder.read_text())
        if "command" not in m:
            earlier.append(f"| {task} | {folder.parent.name} | {m['train_size']} | {m['best_step']} | "
                           f"{m['best']['score']:.3f} | {m['majority_baseline']:.3f} |")
            continue
        steps = max(entry["step"] for entry in m["history"])
        dp = ["", "", ""]
        position, held_out = m.get("choices", {}).get("position"), m.get("holdout_choices", {}).get("position")
        if position and held_out and position.get("single_scores"):
            picked = held_out["best_single"]
            dp = [f"{position['commitment']:.2f}", f"{position['changes_prediction']:.0%}",
                  f"{position['own_score'] - position['single_scores'][picked]:+.3f} (place {picked})"]
        lines.append(f"| {task} | {folder.parent.name} | {m['train_size']} | {steps} | {m['best_step']} | "
                     f"{m['stopped']} | {m['holdout']['score']:.3f} | {m['best']['score']:.3f} | "
                     f"{m['majority_baseline']:.3f} | {' | '.join(dp)} |")
committed = {}
for task in ["cb", "copa", "rte", "wic", "wsc", "boolq", "multirc"]:
    for where in ("input", "deep"):
        path = root / task / f"dp_{where}" / "metrics.json"
        if path.exists():
            position = json.loads(path.read_text()).get("choices", {}).get("position")
            committed.setdefault(where, []).append((task, position is not None and position["commitment"] >= 0.5))
for where, tasks in committed.items():
    sure = [task for task, yes in tasks if yes]
    lines.append("")
    lines.append(f"DP {where}: the place is committed (median top-choice probability >= 0.5) on {len(sure)} of "
                 f"{len(tasks)} tasks ({', '.join(sure) or 'none'}).")
if earlier:
    lines += ["", "Made by an earlier version of this script (time budget, best **dev** evaluation kept: the score "
              "flatters it), not yet re-made:", "", "| task | folder | train items | best at | dev score | majority |",
              "|---|---|---|---|---|---|", *earlier]
lines += ["", "Commands, one per folder:", ""]
for folder in sorted(root.glob("*/*/metrics.json")):
    m = json.loads(folder.read_text())
    if "command" in m:
        lines.append(f"- `{m['command']}`")
(root / "README.md").write_text("\n".join(lines) + "\n")
PYTHON
