"""Every prompt method by name, and its config from CLI-style options or a saved checkpoint."""

from __future__ import annotations

from .dynamic import DynamicPromptConfig
from .prompts import FineTuneConfig, MethodConfig, PromptTuningConfig, PTuningV1Config, PTuningV2Config

METHODS: dict[str, type[MethodConfig]] = {
    config.method: config
    for config in (PTuningV2Config, PromptTuningConfig, PTuningV1Config, FineTuneConfig, DynamicPromptConfig)
}


def method_config(method: str, **options) -> MethodConfig:
    """A method's config from options, ignoring those the method does not have (so one CLI serves all)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    config_class = METHODS[method]
    known = set(config_class.__dataclass_fields__)
    return config_class(**{name: value for name, value in options.items() if name in known and value is not None})


def method_config_from_dict(data: dict) -> MethodConfig:
    data = dict(data)
    method = data.pop("method")
    for name in ("layers", "factors"):
        if data.get(name) is not None:
            data[name] = tuple(data[name])
    config_class = METHODS[method]
    return config_class(**{**getattr(config_class, "saved_before", {}), **data})
