"""Shared fixtures: verified MNIST (fetched once into the data directory), quiet TensorFlow, a small
serving model, and the Telegram Bot API emulator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Runs started by the tests train on MNIST alone: making the pipeline crops takes minutes. The
# crops have tests of their own (test_pipeline_crops.py).
os.environ["TRAINING_PHOTO_CROPS"] = "0"
# A first start trains its first model, as without a shipped one: the shipped model has its own tests.
os.environ["SHIPPED_MODEL"] = "0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data directory the engine uses, so MNIST is downloaded once and then reused."""
    return Path(os.environ.get("MNIST_DATA_DIR", PROJECT_ROOT / "data")).resolve()


@pytest.fixture(scope="session")
def mnist(data_dir: Path):
    """Verified official MNIST."""
    from mnist_engine.training.dataset import load_mnist

    return load_mnist(data_dir)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory, mnist):
    """A serving small CNN trained for one epoch on 15,000 MNIST images (about 98% on the test set)."""
    from mnist_engine.registry import ModelRegistry
    from mnist_engine.training.store import save_version
    from mnist_engine.training.train import TrainingConfig, train

    model_dir = tmp_path_factory.mktemp("served-models")
    registry = ModelRegistry(model_dir)
    config = TrainingConfig(
        architecture="small-cnn", epochs=1, train_limit=15000, validation_size=2000, test_limit=2000
    )
    registry.set_current(save_version(registry, train(mnist, config)))
    return model_dir


@pytest.fixture
def model_dir(trained_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the served models, so a test that promotes does not affect the others."""
    return Path(shutil.copytree(trained_model_dir, tmp_path / "models"))


@pytest.fixture
def emulator():
    """A running Telegram Bot API emulator."""
    from bot_support import TOKEN
    from emulator import BotApiEmulator

    with BotApiEmulator(token=TOKEN) as running:
        yield running
