"""Test-set evaluation: accuracy, loss, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mnist_engine.serving.model_input import to_model_input

NUM_CLASSES = 10


@dataclass(frozen=True)
class Evaluation:
    """How a model did on a labelled set; `confusion[true][predicted]` counts images."""

    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion: list[list[int]]
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """Return the evaluation as a JSON-ready dict."""
        return asdict(self)


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score predicted class probabilities (N, 10) against integer labels (N,)."""
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(f"probabilities must have shape (N, {NUM_CLASSES}), got {probabilities.shape}")
    if len(probabilities) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need as many labels as predictions (>0), got {len(labels)} and {len(probabilities)}"
        )
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    # Categorical cross-entropy, clipped like Keras so one confident mistake cannot give infinity.
    true_class_probability = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    confusion = np.bincount(labels * NUM_CLASSES + predicted, minlength=NUM_CLASSES**2).reshape(
        NUM_CLASSES, NUM_CLASSES
    )
    class_totals = confusion.sum(axis=1)
    per_class = np.divide(
        confusion.diagonal(), class_totals, out=np.zeros(NUM_CLASSES), where=class_totals > 0
    )
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(-np.log(true_class_probability).mean()),
        per_class_accuracy=[round(float(value), 6) for value in per_class],
        confusion=confusion.tolist(),
        samples=len(labels),
    )


def evaluate_model(model: Any, images: np.ndarray, labels: np.ndarray, batch_size: int = 1024) -> Evaluation:
    """Evaluate a Keras model on uint8 images (N, 28, 28)."""
    probabilities = model.predict(to_model_input(images), batch_size=batch_size, verbose=0)
    return evaluate_probabilities(np.asarray(probabilities), labels)
