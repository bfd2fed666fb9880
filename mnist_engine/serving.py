"""Fast, thread-safe inference on 28×28 digits.

`model.predict` costs tens of milliseconds per call because it builds a data pipeline each
time; serving instead uses a LiteRT interpreter on the exported `model.tflite` (well under a
millisecond per digit on a CPU) and falls back to a `tf.function` with a fixed input signature
when no flatbuffer is there. See scripts/benchmark_engine.py for the measured difference.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from mnist_engine.evaluation import to_model_input
from mnist_engine.registry import CURRENT_POINTER, MODEL_FILE, TFLITE_FILE, ModelRegistry, RegistryError

logger = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No model has been trained yet; the message says how to train one."""


class Backend(Protocol):
    """Something that maps float32 (N, 28, 28, 1) inputs to (N, 10) probabilities."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class LiteRTBackend:
    """A LiteRT interpreter sized for one image; a lock makes it safe to share between threads."""

    name = "litert"

    def __init__(self, flatbuffer_path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(flatbuffer_path), num_threads=num_threads)
        input_index = self._interpreter.get_input_details()[0]["index"]
        self._interpreter.resize_tensor_input(input_index, [1, 28, 28, 1])
        self._interpreter.allocate_tensors()
        self._input_index = input_index
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # One invoke per image: resizing the interpreter per batch size costs more than it saves
        # for the handful of digits in a photo.
        outputs = np.empty((len(batch), 10), dtype=np.float32)
        with self._lock:
            for index, image in enumerate(batch):
                self._interpreter.set_tensor(self._input_index, image[np.newaxis])
                self._interpreter.invoke()
                outputs[index] = self._interpreter.get_tensor(self._output_index)[0]
        return outputs


class TensorFlowBackend:
    """The Keras model behind a `tf.function` traced once for (None, 28, 28, 1) float32."""

    name = "tf.function"

    def __init__(self, keras_path: Path) -> None:
        import keras
        import tensorflow as tf

        model = keras.models.load_model(keras_path, compile=False)
        self._function = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._function(batch).numpy()


class Classifier:
    """One loaded model: classifies batches of uint8 28×28 digits (white on black)."""

    def __init__(self, backend: Backend, version: str | None = None) -> None:
        self.backend = backend
        self.version = version
        self.predict_proba(np.zeros((1, 28, 28), dtype=np.uint8))  # warm up before the first user waits

    @classmethod
    def load(cls, path: Path, prefer_litert: bool = True) -> Classifier:
        """Load a version directory, a model.keras or a model.tflite."""
        path = Path(path)
        if path.is_dir():
            directory, version = path, path.name
        else:
            directory, version = path.parent, None
        tflite = path if path.suffix == ".tflite" else directory / TFLITE_FILE
        keras_file = path if path.suffix == ".keras" else directory / MODEL_FILE
        if prefer_litert and tflite.exists() and path.suffix != ".keras":
            return cls(LiteRTBackend(tflite), version)
        if keras_file.exists():
            return cls(TensorFlowBackend(keras_file), version)
        raise NoModelError(f"No model file in {path}: expected {MODEL_FILE} or {TFLITE_FILE}")

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Return class probabilities (N, 10) for uint8 images (N, 28, 28)."""
        if len(images) == 0:
            return np.empty((0, 10), dtype=np.float32)
        return np.asarray(self.backend(to_model_input(images)), dtype=np.float32)


class CurrentModel:
    """The registry's serving model, loaded once and reloaded when `current` changes.

    Reading the one-line pointer costs microseconds, so every call checks it; a new model is
    loaded and warmed before it replaces the old one, so requests never see a half-loaded model.
    """

    def __init__(self, model_dir: Path) -> None:
        self.registry = ModelRegistry(model_dir)
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._pointer_state: tuple[int, int] | None = None

    def get(self) -> Classifier:
        """Return the serving classifier, loading or reloading it if `current` changed."""
        state = self._read_pointer_state()
        classifier = self._classifier
        if classifier is not None and state == self._pointer_state:
            return classifier
        with self._lock:
            if self._classifier is None or state != self._pointer_state:
                self._classifier = self._load()
                self._pointer_state = state
            return self._classifier

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Classify with the serving model."""
        return self.get().predict_proba(images)

    @property
    def version(self) -> str | None:
        """The loaded version's name (None before the first load)."""
        return None if self._classifier is None else self._classifier.version

    def _read_pointer_state(self) -> tuple[int, int] | None:
        try:
            stat = (self.registry.root / CURRENT_POINTER).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def _load(self) -> Classifier:
        try:
            version = self.registry.current_version()
        except RegistryError as error:
            raise NoModelError(str(error)) from error
        if version is None:
            raise NoModelError(
                f"No model is serving yet in {self.registry.root}. "
                "Train one with `python -m mnist_engine train` (or `make train`)."
            )
        if self._classifier is not None and self._classifier.version == version:
            return self._classifier
        logger.info("Loading model %s", version)
        return Classifier.load(self.registry.path(version))
