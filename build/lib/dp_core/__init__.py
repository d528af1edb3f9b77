"""Dynamic Prompting Lab's core: SuperGLUE tasks, frozen backbones, prompt methods, training and analysis.

What a user imports, in one place (importing it also makes ``PromptForSequenceClassification`` known to
transformers' ``AutoConfig``, ``AutoModelForSequenceClassification`` and ``pipeline``):

    from dp_core import DynamicPromptConfig, TrainConfig, run
    result = run(TrainConfig(task="cb", prompt=DynamicPromptConfig(factors=("position", "length"))))

The streaming loop is ``dp_core.train.train``; the map of the files is in README.md ("The code").
"""

import importlib

# name -> the module that defines it; imported when first asked for, so ``python -m dp_core.train`` and light
# modules such as ``dp_core.options`` do not load everything first
PUBLIC = {
    "DEFAULT_BACKBONE": "backbone", "Backbone": "backbone", "BackboneError": "backbone", "load_backbone": "backbone",
    "DataError": "tasks", "Example": "tasks", "Task": "tasks", "get_task": "tasks", "load_examples": "tasks",
    "MethodConfig": "prompts", "PromptModule": "prompts", "PromptPlan": "prompts", "PTuningV2Config": "prompts",
    "PromptTuningConfig": "prompts", "PTuningV1Config": "prompts", "FineTuneConfig": "prompts",
    "DynamicPromptConfig": "dynamic", "METHODS": "methods", "method_config": "methods",
    "HeadConfig": "heads", "PromptClassifier": "model",
    "TrainConfig": "config", "TrainEvent": "config", "TrainResult": "config",
    "load_task_data": "train", "run": "train", "train_shared_prompt": "multitask",
    "evaluate": "evaluation", "split_features": "evaluation",
    "ChoiceStatistics": "choices", "split_choice_statistics": "choices",
    "counterfactuals": "explain", "explain_examples": "explain",
    "DevAnalysis": "analysis", "analyse": "analysis", "load_analysis": "analysis",
    "TextData": "labelled", "load_text_data": "labelled", "recipe_config": "recipes",
    "PromptForSequenceClassification": "hf", "PromptConfig": "hf", "Prediction": "hf", "RunLength": "hf",
    "export_peft": "peft_interop", "load_peft_prompt": "peft_interop",
}
__all__ = list(PUBLIC)

# The model class known to transformers' Auto classes and pipeline as soon as dp_core is imported
from . import hf as _registered  # noqa: E402,F401


def __getattr__(name: str):
    if name not in PUBLIC:
        raise AttributeError(f"module 'dp_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
