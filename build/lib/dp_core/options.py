"""Config dataclass fields as command-line options: each option is written once, as a field with its help.

    num_tokens: int = option(16, "prompt tokens (input level) or key/value slots per layer (deep)")

gives ``--num-tokens`` with that help and type. Metadata may rename the flag (``flag``), restrict it (``choices``),
read it from text (``parse``) or name its value (``metavar``). A field without help is not an option.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
           flag: str | None = None, choices: Iterable[str] | None = None, parse: Callable[[str], Any] | None = None,
           metavar: str | None = None) -> Any:
    """A dataclass field that is also a command-line option (as PEFT's ``field(metadata={"help": ...})``)."""
    metadata = {"help": help, "flag": flag, "choices": tuple(choices) if choices else None, "parse": parse,
                "metavar": metavar}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def comma_list(text: str) -> tuple[str, ...]:
    """An option read as a comma list: "premise,hypothesis" -> ("premise", "hypothesis")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def option_fields(config_class: type) -> list[dataclasses.Field]:
    """The fields of a config dataclass that are command-line options."""
    return [f for f in dataclasses.fields(config_class) if f.metadata.get("help")]


def flag_of(config_field: dataclasses.Field) -> str:
    return config_field.metadata["flag"] or "--" + config_field.name.replace("_", "-")


def value_type(config_class: type, name: str) -> type:
    """A field's type without ``None`` (``int | None`` -> int)."""
    hint = typing.get_type_hints(config_class)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(kind for kind in typing.get_args(hint) if kind is not type(None))
    return typing.get_origin(hint) or hint


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type,
                owners: dict[str, str] | None = None) -> None:
    """One option per field. ``owners``: field name -> the methods that have it, for the options a method's config
    takes only when that method is chosen (only those fields; their default is None: the method's own stays)."""
    for config_field in option_fields(config_class):
        metadata, name = config_field.metadata, config_field.name
        if owners is not None and name not in owners:
            continue
        kind, flag = value_type(config_class, name), flag_of(config_field)
        default = None if owners else default_of(config_field)
        help_text = metadata["help"] if not owners else f"{owners[name]}: {metadata['help']}"
        shown = default_of(config_field)  # of this class: shown only where one method has the option
        if shown_default(shown, help_text) and "," not in (owners or {}).get(name, ""):
            help_text += f" (default: {shown})"
        arguments: dict[str, Any] = {"dest": name, "default": default, "help": help_text.replace("%", "%%")}
        if kind is bool:
            arguments["action"] = "store_false" if default is True else "store_true"
        else:
            named = metadata["metavar"] or flag.lstrip("-").replace("-", "_").upper()
            metavar = None if metadata["choices"] else named
            arguments.update(type=metadata["parse"] or kind, choices=metadata["choices"], metavar=metavar)
        parser.add_argument(flag, **arguments)


def shown_default(default: Any, help_text: str) -> bool:
    """Whether the help should end with the default: not for flags, nothing, or where the help tells it."""
    return default is not None and not isinstance(default, (bool, tuple)) and "(default" not in help_text


def default_of(config_field: dataclasses.Field) -> Any:
    if config_field.default_factory is not dataclasses.MISSING:
        return config_field.default_factory()
    return config_field.default


def values_of(config_class: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options of a config class's fields, by field name."""
    return {config_field.name: getattr(args, config_field.name) for config_field in option_fields(config_class)}


def add_method_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                       config_classes: Iterable[type]) -> None:
    """Every prompt method's options, each once: a field several methods share is one option."""
    owners: dict[str, list[str]] = {}
    first: dict[str, type] = {}
    for config_class in config_classes:
        for config_field in option_fields(config_class):
            owners.setdefault(config_field.name, []).append(config_class.method)
            first.setdefault(config_field.name, config_class)
    for config_class in dict.fromkeys(first.values()):
        add_options(parser, config_class, {name: ", ".join(owners[name]) for name, owner in first.items()
                                           if owner is config_class})
