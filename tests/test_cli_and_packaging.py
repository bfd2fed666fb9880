"""The engine's command line as a user runs it, and the Dockerfile lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_engine.cli import serving_model_file
from mnist_engine.training.events import RunReport, TrainingEvent, decode_line

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_engine(
    *arguments: str, model_dir: Path, data_dir: Path, timeout: float = 300, **settings: str
) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "MNIST_MODEL_DIR": str(model_dir),
        "MNIST_DATA_DIR": str(data_dir),
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "mnist_engine", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=PROJECT_ROOT,
        timeout=timeout,
    )


@pytest.mark.slow
def test_train_json_emits_parseable_events_and_promotes(tmp_path: Path, data_dir: Path) -> None:
    completed = run_engine(
        "train",
        "--arch",
        "dense",
        "--epochs",
        "2",
        "--train-limit",
        "3000",
        "--validation-size",
        "1000",
        "--test-limit",
        "1000",
        "--batch-size",
        "32",
        "--json",
        model_dir=tmp_path,
        data_dir=data_dir,
    )
    assert completed.returncode == 0, completed.stderr
    # Every line is one typed message of the protocol the service reads.
    messages = [decode_line(line) for line in completed.stdout.splitlines()]
    assert None not in messages, completed.stdout
    events = [message for message in messages if isinstance(message, TrainingEvent)]
    kinds = [event.kind for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    result = messages[-1]
    assert isinstance(result, RunReport)
    assert result.promoted and result.promotion_reason == "no model is serving yet"
    assert result.test_accuracy is not None and result.test_accuracy > 0.8
    assert (tmp_path / "current").read_text().strip() == result.version
    assert (tmp_path / str(result.version) / "curves.png").read_bytes()[:4] == b"\x89PNG"

    info = run_engine("info", "--json", model_dir=tmp_path, data_dir=data_dir)
    assert json.loads(info.stdout)["current_version"] == result.version
    evaluated = run_engine("evaluate", "--json", model_dir=tmp_path, data_dir=data_dir)
    assert json.loads(evaluated.stdout)["samples"] == 10000

    # Fine-tuning (as the scheduled retraining does) starts from the serving model, briefly and gently.
    small = ("--train-limit", "3000", "--validation-size", "1000", "--test-limit", "1000", "--json")
    tuned = run_engine(
        "train", "--arch", "dense", "--fine-tune", *small, model_dir=tmp_path, data_dir=data_dir
    )
    assert tuned.returncode == 0, tuned.stderr
    tuned_report = decode_line(tuned.stdout.splitlines()[-1])
    assert isinstance(tuned_report, RunReport) and tuned_report.epochs_done == 2
    metadata = json.loads((tmp_path / str(tuned_report.version) / "metadata.json").read_text())
    parameters = metadata["parameters"]
    assert parameters["initial_model"] == str(tmp_path / str(result.version) / "model.keras")
    assert parameters["learning_rate"] == pytest.approx(2e-4)
    # The serving model is dense: a small-cnn cannot start from it.
    assert serving_model_file(tmp_path, "small-cnn") is None
    assert serving_model_file(tmp_path, "dense") is not None


def test_predict_on_a_fresh_install_reads_with_the_shipped_model(tmp_path: Path, data_dir: Path) -> None:
    image = tmp_path / "seven.png"
    Image.fromarray(
        255 - np.kron(np.load(data_dir / "mnist.npz")["x_test"][0], np.ones((8, 8), np.uint8))
    ).save(image)
    completed = run_engine(
        "predict", str(image), "--json", model_dir=tmp_path / "models", data_dir=data_dir, SHIPPED_MODEL="1"
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["digits"] == "7"
    assert "shipped with the code" in completed.stderr


def test_predict_without_a_model_says_how_to_train_one(tmp_path: Path, data_dir: Path) -> None:
    image = tmp_path / "digit.png"
    image.write_bytes(b"\x89PNG not really")
    completed = run_engine("predict", str(image), "--json", model_dir=tmp_path / "models", data_dir=data_dir)
    assert completed.returncode == 2
    assert "python -m mnist_engine train" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_unknown_architecture_is_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    completed = run_engine("train", "--arch", "resnet", model_dir=tmp_path, data_dir=data_dir)
    assert completed.returncode == 2 and "invalid choice: 'resnet'" in completed.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    completed = subprocess.run([hadolint, str(PROJECT_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_engine_never_imports_db_or_bot() -> None:
    for source in (PROJECT_ROOT / "mnist_engine").rglob("*.py"):
        text = source.read_text()
        for forbidden in (
            "import db",
            "from db",
            "import bot",
            "from bot",
            "import telegram",
            "from telegram",
        ):
            assert forbidden not in text, f"{source.name} contains {forbidden!r}"


def test_photo_and_serving_read_pictures_without_tensorflow(tmp_path: Path, trained_model_dir: Path) -> None:
    """The service's reading processes load the pipeline and LiteRT, never TensorFlow (seconds, memory)."""
    script = f"""
import sys
import numpy as np
from mnist_engine.photo import recognize
from mnist_engine.serving import CurrentModel
from PIL import Image
import io
buffer = io.BytesIO()
Image.fromarray(np.full((200, 200), 255, np.uint8)).save(buffer, "PNG")
recognize(buffer.getvalue(), CurrentModel({str(trained_model_dir)!r}))
from bot.core import reading_pool, replies, texts
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
print(loaded)
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_the_gpu_extra_adds_cuda_to_the_one_tensorflow() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    def tensorflow_distributions(extra: str) -> set[str]:
        names = set()
        for line in requires("mnist-digit-bot") or []:
            requirement = Requirement(line)
            applies = requirement.marker is None or requirement.marker.evaluate({"extra": extra})
            if applies and requirement.name.startswith("tensorflow"):
                names.add(requirement.name)
        return names

    assert tensorflow_distributions("") == {"tensorflow"}
    assert tensorflow_distributions("gpu") == {"tensorflow"}  # the same build, with [and-cuda]


def test_no_chart_is_drawn_through_pyplot() -> None:
    """pyplot keeps global state and is not thread-safe; the service draws from threads."""
    for package in ("bot", "mnist_engine"):
        for source in (PROJECT_ROOT / package).rglob("*.py"):
            text = source.read_text()
            assert "import matplotlib.pyplot" not in text and "from matplotlib import pyplot" not in text, (
                source
            )


def test_a_bad_training_option_is_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    completed = run_engine("train", "--epochs", "0", model_dir=tmp_path, data_dir=data_dir)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1] == "error: epochs must be between 1 and 500, got 0"
    assert "Traceback" not in completed.stderr


def test_a_database_that_cannot_be_opened_is_one_line_then_its_cause(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "123456789:AAE-test-token-for-the-local-emulator01",
        "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "MNIST_DATA_DIR": str(tmp_path),
        "MNIST_MODEL_DIR": str(tmp_path / "models"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bot"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert lines[0].startswith("mnist-digit-bot: cannot open the database 127.0.0.1:1/none: OperationalError")
    # The whole cause follows in the log: the driver's own words, with the traceback.
    assert "Preparing the database failed" in completed.stderr and "Traceback" in completed.stderr
    assert "Connection refused" in completed.stderr or "connection failed" in completed.stderr
