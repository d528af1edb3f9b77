"""DP in the loops people already use: transformers' Trainer and a plain Accelerate loop."""

import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from dp_core.dynamic import DynamicPromptConfig
from dp_core.hf import PromptForSequenceClassification, RunLength

GOOD, BAD = ["great", "wonderful", "loved", "superb"], ["awful", "boring", "hated", "dull"]


def reviews(model, count=64):
    rows = {"text": [f"The film was {(GOOD if i % 2 else BAD)[i % 4]}." for i in range(count)],
            "label": [i % 2 for i in range(count)]}
    return Dataset.from_dict(rows).map(model.tokenize, batched=True, remove_columns=["text"])


def dp_model(default_backbone):
    torch.manual_seed(0)
    return PromptForSequenceClassification(default_backbone, DynamicPromptConfig(num_tokens=4),
                                           label_names=("bad", "good"))


def early_and_late(losses):
    return sum(losses[:5]) / 5, sum(losses[-5:]) / 5


def test_trainer_trains_dp_and_its_loss_falls(default_backbone, tmp_path):
    model = dp_model(default_backbone)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=40,
                             learning_rate=3e-2, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True)
    trainer = Trainer(model=model, args=args, train_dataset=reviews(model),
                      data_collator=DataCollatorWithPadding(model.tokenizer), callbacks=[RunLength(model)])
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    early, late = early_and_late(losses)
    assert len(losses) == 40 and late < early
    assert model.classifier.prompt.run_steps == 40  # DP's schedules learned the run's length at its start
    assert int(model.classifier.prompt.steps_done) == 40


def test_a_plain_accelerate_loop_trains_dp_and_the_loss_falls(default_backbone):
    model = dp_model(default_backbone)
    loader = torch.utils.data.DataLoader(reviews(model), batch_size=8, shuffle=True,
                                         collate_fn=DataCollatorWithPadding(model.tokenizer))
    accelerator = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.schedule_run(24)
    model.train()
    losses = []
    for _ in range(3):
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    early, late = early_and_late(losses)
    assert len(losses) == 24 and late < early


def test_the_prompt_and_head_save_and_load_with_the_same_logits(default_backbone, tmp_path):
    model = dp_model(default_backbone).eval()
    batch = DataCollatorWithPadding(model.tokenizer)([reviews(model, 4)[i] for i in range(4)])
    before = model(**batch).logits
    model.save_pretrained(tmp_path)
    loaded = PromptForSequenceClassification.from_pretrained(tmp_path, backbone=default_backbone).eval()
    assert torch.allclose(loaded(**batch).logits, before, atol=1e-6)
    assert loaded.classifier.task.label_names == ("bad", "good")
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())  # no backbone


def test_left_padding_is_refused_in_one_line(default_backbone):
    model = dp_model(default_backbone)
    with pytest.raises(ValueError, match="padded on the right"):
        model(input_ids=torch.tensor([[0, 101, 102]]), attention_mask=torch.tensor([[0, 1, 1]]))
