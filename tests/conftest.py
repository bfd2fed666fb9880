"""Shared fixtures: verified MNIST (fetched once into the data directory) and quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
