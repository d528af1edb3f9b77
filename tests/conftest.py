"""Shared fixtures. The SuperGLUE folder comes from --superglue-dir or $DP_SUPERGLUE_DIR (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, DistilBertConfig, DistilBertModel

from dp_core.backbone import Backbone, load_backbone, resolve_backbone_path
from dp_core.tasks import DATA_DIR_ENV


def pytest_addoption(parser):
    parser.addoption("--superglue-dir", default=None, help=f"SuperGLUE jsonl folder (or ${DATA_DIR_ENV})")


@pytest.fixture(scope="session")
def data_dir(request) -> Path:
    chosen = request.config.getoption("--superglue-dir") or os.environ.get(DATA_DIR_ENV)
    if not chosen or not Path(chosen).is_dir():
        pytest.fail(f"tests need the SuperGLUE folder: pass --superglue-dir or set ${DATA_DIR_ENV} (got {chosen!r})")
    return Path(chosen)


@pytest.fixture(scope="session")
def default_backbone() -> Backbone:
    return load_backbone(device="cpu")


def save_tiny(folder: Path, config, model_class) -> Path:
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_backbone_path("default")).save_pretrained(folder)
    return folder


TINY = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=96)


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-bert"), BertConfig(**TINY), BertModel)


@pytest.fixture(scope="session")
def tiny_backbone(tiny_bert_path) -> Backbone:
    return load_backbone(str(tiny_bert_path), device="cpu")


@pytest.fixture(scope="session")
def tiny_distilbert_path(tmp_path_factory) -> Path:
    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64)
    return save_tiny(tmp_path_factory.mktemp("tiny-distilbert"), config, DistilBertModel)


@pytest.fixture
def offline(monkeypatch):
    """Offline mode as a user would set it (HF_HUB_OFFLINE=1); the libraries read it at import time."""
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def app_url(data_dir):
    """The app, launched once on a free port, as `python app.py` would."""
    import socket

    from app.ui import LAUNCH_OPTIONS, build_demo

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = build_demo(str(data_dir))
    demo.queue(default_concurrency_limit=1).launch(server_port=port, prevent_thread_lock=True, quiet=True,
                                                   **LAUNCH_OPTIONS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
