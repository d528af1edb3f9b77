"""What every training loop here shares: parameter groups, the optimizer and its schedule, the device, a step."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list
from torch import nn
from transformers import get_scheduler
from transformers.optimization import Adafactor

from .backbone import Backbone, resolve_device
from .config import TrainConfig
from .model import PromptClassifier
from .prompts import PromptModule



def parameter_groups(heads: list[nn.Parameter], prompt: PromptModule | nn.Module, config: TrainConfig,
                     choice_lr: float | None = None, choice: list[nn.Parameter] = ()) -> list[dict]:
    """Heads, prompt (or backbone) and, where it has its own learning rate, DP's choice network."""
    apart = {id(p) for p in [*heads, *choice]}
    method = [p for p in prompt.parameters() if p.requires_grad and id(p) not in apart]
    groups = [{"params": heads, "lr": config.lr_head}, {"params": method, "lr": config.lr},
              {"params": list(choice), "lr": choice_lr}]
    return [group for group in groups if group["params"]]


def make_optimizer(groups: list[dict], config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, or transformers' Adafactor at each group's fixed learning rate (no relative step, no scaling)."""
    if config.optimizer == "adafactor":
        return Adafactor(groups, lr=config.lr, weight_decay=config.weight_decay, scale_parameter=False,
                         relative_step=False, warmup_init=False)
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """Warm-up, then linear decay to 0 or a constant learning rate (transformers' schedules)."""
    name = "linear" if config.schedule == "linear" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=config.warmup(total_steps), num_training_steps=total_steps)


def build_optimizer(model: PromptClassifier, config: TrainConfig) -> torch.optim.Optimizer:
    choice_lr = model.prompt.choice_lr
    choice = model.prompt.choice_parameters() if choice_lr is not None else []
    heads = [p for p in model.head.parameters() if p.requires_grad]
    return make_optimizer(parameter_groups(heads, model, config, choice_lr, choice), config)


def make_accelerator(config: TrainConfig, backbone: Backbone | None = None) -> Accelerator:
    """Device (the given backbone's, else ``config.device``), mixed precision and accumulation, for this process.
    Accelerate keeps one state per process: every run in a process must ask for the same device and precision."""
    cpu = (backbone.device if backbone is not None else resolve_device(config.device)).type != "cuda"
    precision = config.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    # DP's choice network and pool do not all get gradients at every step (e.g. hard pool choices).
    return Accelerator(cpu=cpu, mixed_precision=precision,
                       gradient_accumulation_steps=config.gradient_accumulation_steps,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def agreed(accelerator: Accelerator, value):
    """The main process's ``value`` in every process, so all take the same decisions (stop, keep a checkpoint)."""
    if accelerator.num_processes == 1:
        return value
    box = [value]
    broadcast_object_list(box)
    return box[0]


def backward_and_step(accelerator: Accelerator, loss: torch.Tensor, optimizer, grad_clip: float) -> None:
    """Backward, clip the gradient norm once the (accumulated) step is complete, step the prepared optimizer
    (Accelerate skips it, and the zeroing, until then)."""
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
