"""DP in the loops people already use: transformers' Trainer (its checkpoints too), a plain Accelerate loop, the
Auto classes and pipeline; predict for plain texts."""

import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import (AutoConfig, AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                          TrainingArguments, pipeline)

from dp_core.dynamic import DynamicPromptConfig
from dp_core.hf import PromptConfig, PromptForSequenceClassification, RunLength
from dp_core.prompts import PromptTuningConfig

from .test_families import family_backbones  # noqa: F401 - the fixture

GOOD, BAD = ["great", "wonderful", "loved", "superb"], ["awful", "boring", "hated", "dull"]


def reviews(model, count=64):
    rows = {"text": [f"The film was {(GOOD if i % 2 else BAD)[i % 4]}." for i in range(count)],
            "label": [i % 2 for i in range(count)]}
    return Dataset.from_dict(rows).map(model.tokenize, batched=True, remove_columns=["text"])


def dp_model(default_backbone, method=None):
    torch.manual_seed(0)
    config = PromptConfig(method=method or DynamicPromptConfig(num_tokens=4), label_names=("bad", "good"))
    return PromptForSequenceClassification(config, shared_backbone=default_backbone)


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
    loaded = PromptForSequenceClassification.from_pretrained(tmp_path, shared_backbone=default_backbone).eval()
    assert torch.allclose(loaded(**batch).logits, before, atol=1e-6)
    assert loaded.classifier.task.label_names == ("bad", "good") and loaded.config.id2label == {0: "bad", 1: "good"}
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())  # no backbone
    assert (tmp_path / "model.safetensors").stat().st_size < 100_000  # the prompt, the head, DP's network


def test_a_trainer_checkpoint_loads_through_the_auto_classes_and_pipeline_with_the_same_logits(default_backbone,
                                                                                              tmp_path):
    model = dp_model(default_backbone)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=4, save_steps=4,
                             learning_rate=3e-2, report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args, train_dataset=reviews(model),
                      data_collator=DataCollatorWithPadding(model.tokenizer), callbacks=[RunLength(model)])
    trainer.train()
    checkpoint = tmp_path / "checkpoint-4"
    assert AutoConfig.from_pretrained(checkpoint).model_type == "dp_prompt"
    loaded = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    assert type(loaded) is PromptForSequenceClassification
    texts = ["The film was great.", "The film was dull."]
    inputs = model.tokenizer(texts, padding=True, return_tensors="pt")
    model.eval()
    assert torch.allclose(loaded(**inputs).logits, model(**inputs).logits, atol=1e-5)
    answers = pipeline("text-classification", model=str(checkpoint), top_k=None)(texts)
    for answer, predicted in zip(answers, loaded.predict(texts)):
        scores = {entry["label"]: entry["score"] for entry in answer}
        assert scores.keys() == predicted.probabilities.keys()
        assert all(abs(scores[name] - predicted.probabilities[name]) < 1e-5 for name in scores)


def test_predict_gives_labels_probabilities_and_where_dp_put_the_prompt(default_backbone):
    dp = dp_model(default_backbone).eval()
    single, = dp.predict("The film was great.")
    assert single.label in ("bad", "good") and abs(sum(single.probabilities.values()) - 1) < 1e-5
    assert single.tokens_after + single.tokens_before == single.active_length <= 4
    fixed = dp_model(default_backbone, PromptTuningConfig(num_tokens=4)).eval()
    pair, = fixed.predict(["A cat sat."], pairs=["A cat."])
    assert pair.tokens_after is None and pair.active_length is None  # a fixed prompt chooses nothing
    with pytest.raises(ValueError, match="2 texts but 1 second texts"):
        fixed.predict(["a", "b"], pairs=["c"])


def test_left_padding_is_refused_in_one_line(default_backbone):
    model = dp_model(default_backbone)
    with pytest.raises(ValueError, match="padded on the right"):
        model(input_ids=torch.tensor([[0, 101, 102]]), attention_mask=torch.tensor([[0, 1, 1]]))


def test_a_plain_tokenizer_s_rows_read_as_the_layout_s_on_a_decoder(family_backbones):  # noqa: F811
    """pipeline tokenizes with the plain tokenizer: a decoder's answer template and the length cut are added in
    forward, so its rows give the logits of the layout's own tokenisation."""
    backbone = family_backbones["llama"]
    model = PromptForSequenceClassification(PromptConfig(backbone=backbone.name, method=PromptTuningConfig(
        num_tokens=4), label_names=("bad", "good")), shared_backbone=backbone).eval()
    assert model.classifier.answer_ids  # a decoder's head reads its answer template
    texts = {"text": ["A fine film about a cat.", "Dull."]}
    own = DataCollatorWithPadding(model.tokenizer)([{**row} for row in Dataset.from_dict(texts).map(
        model.tokenize, batched=True, remove_columns=["text"])])
    plain = model.tokenizer(texts["text"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**plain).logits, model(**own).logits, atol=1e-5)
        long = model.tokenizer([" word" * 400], return_tensors="pt")  # past max_length: cut, not an error
        assert model(**long).logits.shape == (1, 2)
