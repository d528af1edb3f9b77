"""The multitask regime's first stage: one prompt module shared by several tasks, each with its own head.

Stage two continues per task from the shared prompt (``TrainConfig.init_prompt``; ``--multitask`` on the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from accelerate.utils import set_seed

from .backbone import Backbone, load_backbone
from .config import TrainConfig
from .evaluation import RowFeatures
from .model import PromptClassifier
from .optimization import backward_and_step, make_accelerator, make_optimizer, make_scheduler, parameter_groups
from .train import endless_batches, load_task_data


def shared_models(config: TrainConfig, tasks: list[str], backbone: Backbone) -> dict[str, PromptClassifier]:
    """A model per task, all holding the first one's prompt module."""
    models: dict[str, PromptClassifier] = {}
    for name in tasks:
        model = PromptClassifier(backbone, name, config.prompt, config.head, config.max_length)
        if models:
            model.prompt = next(iter(models.values())).prompt
        models[name] = model.train()
    return models


def train_shared_prompt(config: TrainConfig, tasks: list[str], steps: int, backbone: Backbone | None = None,
                        on_step: Callable[[int, str, float], None] | None = None) -> dict[str, PromptClassifier]:
    """Train one prompt module (prompts and DP's instance network) on batches of the tasks in turn. Returns a model
    per task, all sharing that module."""
    if config.prompt.trains_backbone:
        raise ValueError("the multitask regime shares a prompt; fine-tuning has none to share")
    set_seed(config.seed)
    accelerator = make_accelerator(config, backbone)  # one process; its device and mixed precision
    backbone = backbone or load_backbone(config.backbone, accelerator.device)
    models = shared_models(config, tasks, backbone)
    splits = {name: models[name].encode_examples(load_task_data(replace(config, task=name))[0]) for name in tasks}
    features = {name: RowFeatures(models[name], splits[name].num_rows) if models[name].needs_features else None
                for name in tasks}
    shared = models[tasks[0]].prompt
    heads = [p for model in models.values() for p in model.head.parameters()]
    choice = shared.choice_parameters() if shared.choice_lr is not None else []
    optimizer = make_optimizer(parameter_groups(heads, shared, config, shared.choice_lr, choice), config)
    scheduler = make_scheduler(optimizer, config, steps)
    optimizer = accelerator.prepare(optimizer)
    shared.schedule_run(steps)
    pad = backbone.tokenizer.pad_token_id
    streams = {name: endless_batches(splits[name], config, pad) for name in tasks}
    for step in range(1, steps + 1):
        name = tasks[(step - 1) % len(tasks)]
        batch = next(streams[name]).to(accelerator.device)
        task_features = None if features[name] is None else features[name](batch)
        with accelerator.autocast():
            loss = models[name].training_loss(batch, task_features)
        backward_and_step(accelerator, loss, optimizer, config.grad_clip)
        scheduler.step()
        if on_step is not None:
            on_step(step, name, loss.item())
    for model in models.values():
        model.eval()
    return models
