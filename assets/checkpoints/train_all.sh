#!/usr/bin/env bash
# Re-makes the app's ready-trained prompts with the project's own CLI, then their README table.
# Usage (from the repository root):  bash assets/checkpoints/train_all.sh ../shared/superglue
# TASKS="wic wsc" or METHODS="dp_input" re-make only those; BACKBONE=smollm2-135m trains on another backbone (into
# assets/checkpoints/<backbone>/<task>/<method>; the app offers them in Compare and Explore; a rotary decoder takes
# METHODS="prompt_tuning dp_input": its deep prompts have no place to choose). A folder whose
# metrics.json records the very command about to run is kept, so a stopped run resumes where it was; the table is
# always rebuilt from every folder.
set -euo pipefail
DATA=${1:?give the SuperGLUE folder}
PY=${PYTHON:-.venv/bin/python}
BACKBONE=${BACKBONE:-}  # empty: the default backbone
# The results grid's budgets (docs/results.md, "How the grid is run"), where fixed P-tuning v2's held-out score had
# stopped rising: at most EPOCHS epochs, an evaluation on 200 held-out training items (few-shot BoolQ: 8) every EVERY
# steps, stopped after 5 evaluations without improvement or after 900 s of training. Never selected on dev; dev (its
# first 300 items) is scored once, at the end. MultiRC is not in the grid on CPU: one epoch at most.
declare -A EPOCHS=([cb]=15 [copa]=20 [rte]=6 [wic]=5 [wsc]=10 [boolq]=20 [multirc]=1)
declare -A EVERY=([cb]=14 [copa]=23 [rte]=70 [wic]=100 [wsc]=32 [boolq]=6 [multirc]=50)
COMMON="--select-on holdout --holdout-max 200 --patience 5 --dev-limit 300"
# No checkpoint from the first quarter of the planned steps is kept, and patience counts from there: on a few dozen
# held-out items an early evaluation can win by one item, and a DP kept there has a choice network that has hardly
# trained (docs/dp_learning.md, "Keeping no early checkpoint"). Not on MultiRC, whose 900 s cap ends a run within
# the first quarter of its epoch, nor on another backbone, whose costlier steps the cap cuts short on most tasks.
SELECT_FROM="--select-from 0.25"
# DP: the score-function estimator with dp_core.dynamic.READY_TRAINED (unit-length features, the choice network on
# its own learning rate; docs/dp_learning.md). tests/test_app.py checks the app trains DP the same way.
DP="--method dp --factors position,length,pool --feature-norm unit --choice-lr 0.1"
declare -A OPTIONS=([ptv2]="--method ptv2" [prompt_tuning]="--method prompt_tuning"
                    [dp_input]="$DP --where input" [dp_deep]="$DP --where deep")
for task in ${TASKS:-cb copa rte wic wsc boolq multirc}; do
  extra="--epochs ${EPOCHS[$task]} --eval-every ${EVERY[$task]} --time-budget 900"
  [ "$task" = boolq ] && extra="$extra --fewglue"  # no offline BoolQ train file: the 32-example FewGLUE set
  # MultiRC: the answer sits after a long paragraph; 40 held-out questions (about 200 answers) keep evaluations short
  [ "$task" = multirc ] && extra="$extra --max-length 256 --holdout-max 40"
  [ "$task" != multirc ] && [ -z "$BACKBONE" ] && extra="$extra $SELECT_FROM"
  # DP's end-of-run counterfactuals try every candidate place, length and pool prompt on each dev and held-out item:
  # on SmolLM2 at max length 256 that is hours on CPU, so another backbone's MultiRC scores them on the first 100
  # answers of each (whole questions; the table says so)
  [ "$task" = multirc ] && [ -n "$BACKBONE" ] && extra="$extra --counterfactual-items 100"
  folders=()
  for name in ${METHODS:-ptv2 prompt_tuning dp_input dp_deep}; do
    folder="assets/checkpoints/${BACKBONE:+$BACKBONE/}$task/$name"
    folders+=("$folder")
    # shellcheck disable=SC2206  # the options are several words on purpose
    arguments=(--task "$task" ${OPTIONS[$name]} $COMMON $extra ${BACKBONE:+--backbone "$BACKBONE"} --data-dir "$DATA"
               --output-dir "$folder")
    if "$PY" -c 'import json, shlex, sys; sys.exit(json.load(open(sys.argv[1]))["command"] != shlex.join(
        ["python", "-m", "dp_core.train", *sys.argv[2:]]))' "$folder/metrics.json" "${arguments[@]}" 2>/dev/null; then
      echo "$task $name: made with this command already, kept"
      continue
    fi
    echo "${BACKBONE:+$BACKBONE }$task $name: training ($(date +%H:%M))"
    "$PY" -m dp_core.train "${arguments[@]}" >/dev/null
  done
  # What Explore and Compare's what-if plots show per dev item (its first 300), computed once and kept beside each
  # checkpoint; a folder whose analysis is of its weights and items already is kept. SmolLM2's MultiRC: DP's
  # candidates tried on the first 100 answers, as its training did.
  "$PY" -m dp_core.analysis "${folders[@]}" --data-dir "$DATA" \
    $([ "$task" = multirc ] && [ -n "$BACKBONE" ] && echo "--counterfactual-items 100")
done
"$PY" - <<'PYTHON'
import json
import shlex
from pathlib import Path

from dp_core.backbone import DEFAULT_BACKBONE
from dp_core.choices import HARDLY_MATTERS

root = Path("assets/checkpoints")
TASKS = ["cb", "copa", "rte", "wic", "wsc", "boolq", "multirc"]
lines = [
    "# Ready-trained prompts", "",
    "Made by `bash assets/checkpoints/train_all.sh <SuperGLUE folder>` on 2 CPU cores, from the official SuperGLUE "
    "train files (BoolQ: FewGLUE's 32 items). The budgets are the results grid's (docs/results.md): per task, a "
    "maximum of epochs past where fixed P-tuning v2's held-out score stopped rising.", "",
    "| rule | value |", "|---|---|",
    "| held out of training, to select on | a seeded 10 % of the training items, 32 to 200 (BoolQ: 8; MultiRC: 40 "
    "questions) |",
    "| evaluated | every few steps (`eval every`), on the held-out items |",
    "| kept | the checkpoint that scores best there; on the default backbone, none from the first quarter of the "
    "planned steps (not on MultiRC) |",
    "| stopped | after 5 evaluations without improvement, at the maximum of epochs, or after 900 s of training |",
    "| MultiRC | one epoch at most, max length 256 |",
    "| dev | its first 300 items, scored once, for the kept checkpoint |", "",
    "Each folder's `metrics.json` has the command, the held-out history and, for DP, its choices. The default "
    "backbone's prompts are in `<task>/<method>`, another backbone's in `<backbone>/<task>/<method>`. SmolLM2's steps "
    "cost about 8× the default's, so the 900 s cap ends more of its runs (`stopped`: time budget); their held-out "
    "score may still have been rising.", "",
    "`best at` equal to `steps` means the held-out score was still rising when the run ended. The DP columns are for "
    "the place (position), on dev.", "",
    "| column | meaning |", "|---|---|",
    "| commitment | the median probability of DP's top choice (1/17 = 0.06 is no preference) |",
    "| changes | the share of dev items whose prediction depends on the place |",
    "| own − single | DP's own places against the single place that scored best on the held-out items, on dev |",
    "| (first N) | those two on the first N dev and held-out items only |",
]
runs = {}  # backbone -> [(task, folder name, metrics, folder bytes)]
analyses = {}  # backbone -> [bytes of each folder's analysis.safetensors]
for path in sorted(root.rglob("metrics.json")):
    m = json.loads(path.read_text())
    backbone = m.get("backbone", DEFAULT_BACKBONE)
    folder_bytes = sum(file.stat().st_size for file in path.parent.iterdir())
    analysis = path.parent / "analysis.safetensors"
    analyses.setdefault(backbone, []).append(analysis.stat().st_size if analysis.exists() else 0)
    runs.setdefault(backbone, []).append((m["task"], path.parent.name, m, folder_bytes))
earlier = []
for backbone in sorted(runs, key=lambda name: name != DEFAULT_BACKBONE):
    sizes = [folder_bytes for *_, folder_bytes in runs[backbone]]
    lines += ["", f"## {backbone}", "",
              f"{len(sizes)} folders, {sum(sizes) / 1e6:.1f} MB in all (the largest {max(sizes) / 1e3:.0f} kB). Each "
              f"holds the trained prompt and head, not the frozen backbone, and its analysis of the first 300 dev "
              f"items, which Explore reads (`analysis.safetensors`: {sum(analyses[backbone]) / 1e3:.0f} kB in all, "
              f"the largest {max(analyses[backbone]) / 1e3:.0f} kB).", "",
              "| task | method | train items | eval every | steps | best at | stopped | held-out score | dev score | "
              "majority | commitment | changes | own − single |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    committed = {}
    for task, name, m, _ in sorted(runs[backbone], key=lambda run: (TASKS.index(run[0]), run[1])):
        if "command" not in m:
            earlier.append(f"| {task} | {name} | {m['train_size']} | {m['best_step']} | "
                           f"{m['best']['score']:.3f} | {m['majority_baseline']:.3f} |")
            continue
        steps = max(entry["step"] for entry in m["history"])
        dp = ["", "", ""]
        position, held_out = m.get("choices", {}).get("position"), m.get("holdout_choices", {}).get("position")
        if position and held_out and position.get("single_scores"):
            picked = held_out["best_single"]
            first = f" (first {position['counterfactual_items']})" if "counterfactual_items" in position else ""
            dp = [f"{position['commitment']:.2f}", f"{position['changes_prediction']:.0%}{first}",
                  f"{position['own_score'] - position['single_scores'][picked]:+.3f} (place {picked})"]
        if name.startswith("dp_") and position:
            committed.setdefault(name, []).append((task, position["commitment"], position["changes_prediction"]))
        arguments = shlex.split(m["command"])  # the cadence asked for: a run may stop before its first evaluation
        every = arguments[arguments.index("--eval-every") + 1] if "--eval-every" in arguments else \
            next(entry["step"] for entry in m["history"] if "score" in entry)
        lines.append(f"| {task} | {name} | {m['train_size']} | {every} | {steps} | {m['best_step']} | "
                     f"{m['stopped']} | {m['holdout']['score']:.3f} | {m['best']['score']:.3f} | "
                     f"{m['majority_baseline']:.3f} | {' | '.join(dp)} |")
    for name, tasks in committed.items():
        sure = [task for task, commitment, _ in tasks if commitment >= 0.5]
        idle = [task for task, commitment, changes in tasks if commitment < 0.5 and changes < HARDLY_MATTERS]
        lines += ["", f"{name}: the place is committed (median top-choice probability >= 0.5) on {len(sure)} of "
                      f"{len(tasks)} tasks ({', '.join(sure) or 'none'})" +
                      (f"; where it is not, on {', '.join(idle)}, the place changes under {HARDLY_MATTERS:.0%} of the "
                       "predictions and the app says it decides little there." if idle else ".")]
if earlier:
    lines += ["", "Made by an earlier version of this script (time budget, best **dev** evaluation kept: the score "
              "flatters it), not yet re-made:", "", "| task | folder | train items | best at | dev score | majority |",
              "|---|---|---|---|---|---|", *earlier]
lines += ["", "Commands, one per folder.", "", "```bash"]
lines += [m["command"] for backbone in runs for _, _, m, _ in runs[backbone] if "command" in m]
lines += ["```"]
(root / "README.md").write_text("\n".join(lines) + "\n")
PYTHON
