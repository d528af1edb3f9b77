"""How large the instance features are that DP's choice network reads, and how a fresh network chooses on them.

    python -m benchmarks.choice_features --data-dir ../shared/superglue --task cb

Adam moves each weight by about its learning rate per step, so an instance's logits move by up to
lr x |features|_1: the features' scale is part of the choice network's step size.
"""

from __future__ import annotations

import argparse

import torch

from dp_core.backbone import load_backbone
from dp_core.config import TrainConfig
from dp_core.dynamic import FEATURE_NORMS, DynamicPromptConfig
from dp_core.evaluation import split_features
from dp_core.model import PromptClassifier
from dp_core.train import load_task_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="cb")
    args = parser.parse_args()
    backbone = load_backbone()
    _, dev = load_task_data(TrainConfig(task=args.task, data_dir=args.data_dir))
    for norm in FEATURE_NORMS:
        torch.manual_seed(0)
        model = PromptClassifier(backbone, args.task, DynamicPromptConfig(feature_norm=norm)).eval()
        split = model.encode_examples(dev)
        features = split_features(model, split)
        read = model.prompt.feature_norm(features)
        with torch.no_grad():
            logits = model.prompt.logits(features)["position"]
        print(f"{norm:>5}: |features|_1 {read.abs().sum(-1).mean():6.1f}, a fresh network's logits spread "
              f"{logits.std(-1).mean():.3f} across the 17 places, median top probability "
              f"{logits.softmax(-1).max(-1).values.median():.3f}")


if __name__ == "__main__":
    main()
