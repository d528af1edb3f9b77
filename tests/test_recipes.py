"""The DPT recipe: Adafactor, a constant schedule after warm-up, and the reference's settings, one flag away."""

import json

import pytest
from transformers.optimization import Adafactor

from dp_core import cli
from dp_core.dynamic import DynamicPromptConfig
from dp_core.recipes import RECIPES, recipe_config
from dp_core.optimization import build_optimizer, make_scheduler
from dp_core.train import run

from .test_benchmarks import tiny


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    return tiny("t5", tmp_path_factory.mktemp("tiny-t5"))


def test_the_recipe_holds_the_references_settings():
    config = recipe_config("dpt", task="cb")
    assert (config.backbone, config.optimizer, config.lr, config.schedule) == ("google/t5-large-lm-adapt",
                                                                               "adafactor", 0.3, "constant")
    assert (config.warmup_steps, config.max_steps, config.batch_size) == (500, 20_000, 8)
    assert isinstance(config.prompt, DynamicPromptConfig) and config.head.kind == "verbalizer"
    assert (config.prompt.num_tokens, config.prompt.where, config.prompt.factors) == (20, "input", ("position",))
    assert "Xianjun-Yang/DPT" in RECIPES["dpt"].source


def test_options_given_on_the_command_line_win_over_the_recipe():
    args = cli.parse_args(["--recipe", "dpt", "--task", "rte", "--lr", "0.1", "--num-tokens", "8"])
    config = cli.config_from_args(args)
    assert (config.task, config.lr, config.prompt.num_tokens, config.optimizer) == ("rte", 0.1, 8, "adafactor")
    plain = cli.config_from_args(cli.parse_args(["--task", "rte"]))
    assert (plain.optimizer, plain.schedule, plain.lr) == ("adamw", "linear", 1e-2)  # no recipe, no change


def test_a_constant_schedule_holds_the_rate_after_its_warm_up(tiny_backbone):
    from dp_core.model import PromptClassifier

    config = recipe_config("dpt", task="cb", warmup_steps=3)
    model = PromptClassifier(tiny_backbone, "cb", config.prompt)
    optimizer = build_optimizer(model, config)
    assert isinstance(optimizer, Adafactor)
    scheduler = make_scheduler(optimizer, config, total_steps=10)
    prompt = model.prompt.input_pool
    group = next(group for group in optimizer.param_groups if any(p is prompt for p in group["params"]))
    start, rates = prompt.detach().clone(), []
    for _ in range(8):
        rates.append(group["lr"])
        (prompt ** 2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.0, 0.1, 0.2, 0.3]) and rates[3:] == pytest.approx([0.3] * 5)
    assert (prompt.detach() - start).abs().max() > 0  # Adafactor updates the prompt's group


def test_the_recipe_trains_dp_on_a_tiny_t5_with_adafactor(tiny_t5, data_dir):
    config = recipe_config("dpt", task="cb", backbone=tiny_t5, data_dir=str(data_dir), k_shot=8, dev_limit=8,
                           max_steps=4, eval_every=2, warmup_steps=1, batch_size=4, max_length=64, device="cpu")
    result = run(config)
    assert result.model.head_config.kind == "verbalizer" and result.model.prompt.input_pool.shape[1] == 20
    assert set(result.choices) == {"position"} and [entry["step"] for entry in result.history if "score" in entry] \
        == [2, 4]


def test_the_cli_runs_the_recipe_and_records_it(tiny_t5, data_dir, tmp_path):
    code = cli.main(["--recipe", "dpt", "--task", "cb", "--backbone", tiny_t5, "--data-dir", str(data_dir),
                     "--k-shot", "8", "--dev-limit", "8", "--max-steps", "2", "--eval-every", "2", "--warmup-steps", "1",
                     "--batch-size", "4", "--max-length", "64", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert code == 0
    recorded = json.loads((tmp_path / "config.json").read_text())["metadata"]["train_config"]
    assert (recorded["optimizer"], recorded["schedule"], recorded["lr"]) == ("adafactor", "constant", 0.3)
    assert recorded["prompt"]["num_tokens"] == 20 and recorded["head"]["kind"] == "verbalizer"
