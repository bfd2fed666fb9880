"""What the front ends' benchmarks share: the serving model copied into a scratch folder, the photos
they send, and a training run in its own process as load (scripts/benchmark_{bot,web,discord}.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The photo helper is the tests' own code, not part of the installed project.
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from bot_support import digit_photo  # noqa: E402

from mnist_engine.registry import ModelRegistry  # noqa: E402
from mnist_engine.training.dataset import load_mnist  # noqa: E402

PHOTO_COUNT = 20
PHOTO_SIZE = (1280, 960)  # Telegram's photo size


def serving_version(model_dir: Path) -> str:
    """The version the benchmark serves; exits with what to do when none is trained yet."""
    version = ModelRegistry(model_dir).current_version()
    if version is None:
        raise SystemExit("No serving model: run `python -m mnist_engine train` first.")
    return version


def benchmark_photos(data_dir: Path) -> list[bytes]:
    """JPEG photos of the first MNIST test digits on paper, each one digit."""
    mnist = load_mnist(data_dir)
    return [digit_photo([mnist.x_test[index]], seed=index, size=PHOTO_SIZE) for index in range(PHOTO_COUNT)]


def copy_serving_model(model_dir: Path, version: str, scratch: Path) -> Path:
    """Copy the version into `scratch/models` and serve it there; return the copy's folder."""
    copy = Path(shutil.copytree(model_dir / version, scratch / "models" / version))
    ModelRegistry(copy.parent).set_current(version)
    return copy


def background_training(data_dir: Path, model_dir: Path) -> subprocess.Popen[bytes]:
    """The training the service would run, in its own process, as load during a baseline's burst."""
    environment = {**os.environ, "MNIST_MODEL_DIR": str(model_dir), "MNIST_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_engine", "train", "--arch", "dense", "--epochs", "100", "--json"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
