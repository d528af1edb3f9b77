"""dp_core as a library user gets it: a wheel built from this clone, installed into a fresh virtual environment
outside it (``--no-deps``, on top of this environment's packages), then used from another directory: train on a CSV
with ``dp-train``, predict an unlabelled file with ``dp-predict``, reload a Trainer checkpoint with the Auto classes
and ``pipeline``."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment: a minute

ROOT = Path(__file__).resolve().parent.parent

SMOKE = '''
import sys
from pathlib import Path

import dp_core
import torch
from datasets import Dataset
from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments,
                          pipeline)

assert Path(dp_core.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), dp_core.__file__
backbone, work = sys.argv[1], Path(sys.argv[2])
config = dp_core.PromptConfig(backbone=backbone, method=dp_core.DynamicPromptConfig(num_tokens=4),
                              label_names=("bad", "good"))
model = dp_core.PromptForSequenceClassification(config)
rows = {"text": [f"The film was {'great' if i % 2 else 'dull'}." for i in range(32)], "label": [i % 2 for i in range(32)]}
dataset = Dataset.from_dict(rows).map(model.tokenize, batched=True, remove_columns=["text"])
args = TrainingArguments(output_dir=str(work / "trainer"), per_device_train_batch_size=8, max_steps=2, save_steps=2,
                         report_to=[], use_cpu=True)
Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(model.tokenizer),
        callbacks=[dp_core.RunLength(model)]).train()
loaded = AutoModelForSequenceClassification.from_pretrained(work / "trainer" / "checkpoint-2").eval()
inputs = model.tokenizer(["The film was great."], return_tensors="pt")
assert torch.allclose(loaded(**inputs).logits, model.eval()(**inputs).logits, atol=1e-5)
answer = pipeline("text-classification", model=str(work / "trainer" / "checkpoint-2"))("The film was great.")
assert answer[0]["label"] in ("bad", "good")
print("smoke: ok")
'''


def run(command: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_the_wheel_installs_outside_the_clone_trains_predicts_and_reloads(tmp_path, tiny_bert_path):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    source = tmp_path / "source"  # a copy: a build leaves its build/ folder beside the sources
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "assets", "docs", "build",
                                                                 "*.egg-info", "__pycache__", ".pytest_cache"))
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheels")], tmp_path, env)
    wheel, = (tmp_path / "wheels").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("dp_core/") for name in names)
    assert not any(name.split("/")[0] in ("app", "assets", "tests", "benchmarks") for name in names)  # dp_core only

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python, scripts = venv / "bin" / "python", venv / "bin"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                    env).strip())
    (site / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the dependencies
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path, env)

    work = tmp_path / "work"  # outside the clone: dp_core can only come from the wheel
    work.mkdir()
    with (work / "reviews.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "stars"])
        writer.writerows([f"The film was {'great' if i % 2 else 'dull'}.", "good" if i % 2 else "bad"]
                         for i in range(40))
    run([str(scripts / "dp-train"), "--data", "reviews.csv", "--text-columns", "review", "--label-column", "stars",
         "--method", "dp", "--num-tokens", "4", "--max-steps", "2", "--backbone", str(tiny_bert_path),
         "--device", "cpu", "--output-dir", "model"], work, env)
    (work / "new.csv").write_text("review\nA great film.\nA dull film.\n")
    said = run([str(scripts / "dp-predict"), "model", "new.csv", "--output", "answers.csv"], work, env)
    assert "2 answers written to answers.csv" in said
    with (work / "answers.csv").open() as file:
        answers = list(csv.DictReader(file))
    assert [row["review"] for row in answers] == ["A great film.", "A dull film."]
    assert all(row["label"] in ("bad", "good") and row["tokens_on"] for row in answers)
    (work / "smoke.py").write_text(SMOKE)
    assert "smoke: ok" in run([str(python), "smoke.py", str(tiny_bert_path), str(work)], work, env)
