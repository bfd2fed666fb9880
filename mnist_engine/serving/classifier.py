"""One loaded model version, classifying batches of 28×28 digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mnist_engine.registry import METADATA_FILE, MODEL_FILE, TFLITE_FILE
from mnist_engine.serving.backends import Backend, LiteRTBackend, TensorFlowBackend
from mnist_engine.serving.calibration import apply_temperature
from mnist_engine.serving.model_input import to_model_input


class NoModelError(RuntimeError):
    """No model has been trained yet; the message says how to train one."""


class Classifier:
    """One loaded model: classifies batches of uint8 28×28 digits (white on black)."""

    def __init__(self, backend: Backend, version: str | None = None, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.backend = backend
        self.version = version
        self.temperature = temperature
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
        temperature = _stored_temperature(directory / METADATA_FILE)
        if prefer_litert and tflite.exists() and path.suffix != ".keras":
            return cls(LiteRTBackend(tflite), version, temperature)
        if keras_file.exists():
            return cls(TensorFlowBackend(keras_file), version, temperature)
        raise NoModelError(f"No model file in {path}: expected {MODEL_FILE} or {TFLITE_FILE}")

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Return calibrated class probabilities (N, 10) for uint8 images (N, 28, 28)."""
        if len(images) == 0:
            return np.empty((0, 10), dtype=np.float32)
        probabilities = np.asarray(self.backend(to_model_input(images)), dtype=np.float32)
        return apply_temperature(probabilities, self.temperature)


def _stored_temperature(metadata_path: Path) -> float:
    """The temperature a version was calibrated with; 1.0 for versions from before calibration."""
    try:
        temperature = json.loads(metadata_path.read_text(encoding="utf-8")).get("temperature", 1.0)
    except (OSError, ValueError, AttributeError):
        return 1.0
    return float(temperature) if isinstance(temperature, int | float) and temperature > 0 else 1.0
