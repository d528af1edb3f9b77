"""The training CLI is generated from the config dataclasses: every field is an option, parsed to that field."""

import argparse
import dataclasses

import pytest

from dp_core.cli import CommandOptions, build_parser, config_from_args
from dp_core.config import TrainConfig
from dp_core.dynamic import DynamicPromptConfig
from dp_core.methods import METHODS
from dp_core.model import HeadConfig
from dp_core.options import add_options, flag_of, option, option_fields, value_type

NESTED = {"prompt", "head"}  # TrainConfig's method and head configs: options of their own classes


@pytest.mark.parametrize("config_class", [TrainConfig, HeadConfig, *METHODS.values()], ids=lambda c: c.__name__)
def test_every_config_field_is_an_option_with_help(config_class):
    names = {f.name for f in dataclasses.fields(config_class)} - NESTED
    assert {f.name for f in option_fields(config_class)} == names


def test_every_option_of_the_parser_is_a_config_field():
    parser = build_parser()
    destinations = {action.dest for action in parser._actions} - {"help"}
    fields = {f.name for config_class in (CommandOptions, TrainConfig, HeadConfig, *METHODS.values())
              for f in option_fields(config_class)}
    assert destinations == fields


def changed_value(config_class, config_field):
    """A value other than the default, and how it is written on the command line."""
    kind, choices = value_type(config_class, config_field.name), config_field.metadata["choices"]
    default = config_field.default
    if choices:
        value = next(choice for choice in choices if choice != default)
        return value, [value]
    if kind is int:
        return 7, ["7"]
    if kind is float:
        return 0.375, ["0.375"]
    if kind is str:
        return "elsewhere", ["elsewhere"]
    if kind is tuple:  # read from a comma list
        return ("premise", "hypothesis"), ["premise,hypothesis"]
    raise AssertionError(f"no test value for {config_field.name}")


@pytest.mark.parametrize("config_field", [f for f in option_fields(TrainConfig) if f.name != "task"],
                         ids=lambda f: f.name)
def test_each_training_option_reaches_its_config_field(config_field):
    if value_type(TrainConfig, config_field.name) is bool:
        argv, value = [flag_of(config_field)], not config_field.default
    else:
        value, written = changed_value(TrainConfig, config_field)
        argv = [flag_of(config_field), *written]
    if config_field.name == "select_from":
        value, argv = 0.25, ["--select-from", "0.25"]
    config = config_from_args(build_parser().parse_args(argv))
    assert getattr(config, config_field.name) == value


@pytest.mark.parametrize("config_field", option_fields(DynamicPromptConfig), ids=lambda f: f.name)
def test_each_dp_option_reaches_dp_config(config_field):
    kind = value_type(DynamicPromptConfig, config_field.name)
    argv = ["--method", "dp", "--factors", "position,length"]
    if config_field.name == "factors":
        value, argv = ("length", "pool"), ["--method", "dp", "--factors", "length,pool"]
    elif kind is bool:
        value = True
        argv += [flag_of(config_field)]
    else:
        value, written = changed_value(DynamicPromptConfig, config_field)
        if config_field.name == "samples":  # more than one sample needs the score-function estimator (the default)
            value, written = 3, ["3"]
        argv += [flag_of(config_field), *written]
    config = config_from_args(build_parser().parse_args(argv)).prompt
    assert isinstance(config, DynamicPromptConfig)
    assert getattr(config, config_field.name) == value


def test_a_method_keeps_its_own_defaults_where_no_option_is_given():
    ptv2 = config_from_args(build_parser().parse_args(["--method", "ptv2"])).prompt
    prompt_tuning = config_from_args(build_parser().parse_args(["--method", "prompt_tuning"])).prompt
    assert (ptv2.prompt_dropout, prompt_tuning.prompt_dropout) == (0.1, 0.0)  # one option, two defaults


def test_a_shared_option_names_the_methods_that_have_it():
    actions = {action.dest: action for action in build_parser()._actions}
    assert actions["num_tokens"].help.startswith("ptv2, prompt_tuning, ptv1, dp:")
    assert actions["layers"].help.startswith("ptv2:")
    assert actions["layers"].type("3:6") == (3, 6)


def test_a_new_option_is_one_field():
    @dataclasses.dataclass
    class Extra:
        warm_restarts: int = option(2, "restarts of the schedule")
        verbose: bool = option(False, "say more")
        silent_field: int = 0  # no help: not an option

    parser = argparse.ArgumentParser()
    add_options(parser, Extra)
    args = parser.parse_args(["--warm-restarts", "5", "--verbose"])
    assert (args.warm_restarts, args.verbose) == (5, True)
    assert not hasattr(args, "silent_field")
    assert "(default: 2)" in parser.format_help()


def test_the_public_api_is_listed_in_one_place_and_every_name_resolves():
    import dp_core

    for name in dp_core.__all__:
        assert getattr(dp_core, name) is not None, name
    assert dp_core.TrainConfig is TrainConfig and dp_core.HeadConfig is HeadConfig


def test_the_cli_runs_as_a_module_without_warnings():
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "dp_core.train", "--help"],
                              capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr[-1000:]
    assert "--feature-norm" in finished.stdout and "--time-budget" in finished.stdout


def test_help_says_what_each_task_s_score_is_and_what_the_time_budget_bounds(capsys):
    from dp_core import cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "CB's, the mean of accuracy and macro-F1" in said and "MultiRC's, of F1 over answers and exact match" in said
    assert "your own data's, of accuracy and macro-F1" in said and "the whole run may take" in said
