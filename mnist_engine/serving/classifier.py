"""One loaded model version, classifying batches of 28×28 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_engine.registry import MODEL_FILE, TFLITE_FILE
from mnist_engine.serving.backends import Backend, LiteRTBackend, TensorFlowBackend
from mnist_engine.serving.model_input import to_model_input


class NoModelError(RuntimeError):
    """No model has been trained yet; the message says how to train one."""


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
