"""The whole training workflow: load data, train, store a version with its pictures, apply promotion."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_engine.callbacks import EventHandler
from mnist_engine.dataset import load_mnist
from mnist_engine.plots import plot_confusion_matrix, plot_training_curves
from mnist_engine.registry import DEFAULT_TOLERANCE, ModelRegistry, PromotionDecision
from mnist_engine.training import ExtraSamples, TrainingConfig, TrainingResult, train


@dataclass(frozen=True)
class TrainingOutcome:
    """A stored version and whether it now serves."""

    version: str | None  # None for a cancelled run, which is not stored
    decision: PromotionDecision | None  # None when promotion was not asked for or the run was cancelled
    result: TrainingResult


def train_and_store(
    data_dir: Path,
    model_dir: Path,
    config: TrainingConfig,
    *,
    extra: ExtraSamples | None = None,
    on_event: EventHandler | None = None,
    cancel_event: threading.Event | None = None,
    promote: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> TrainingOutcome:
    """Train on verified MNIST (plus extra samples), save a new version, promote it by the rule."""
    mnist = load_mnist(data_dir)
    registry = ModelRegistry(model_dir)
    with tempfile.TemporaryDirectory() as scratch:
        result = train(
            mnist,
            config,
            extra=extra,
            on_event=on_event,
            cancel_event=cancel_event,
            checkpoint_dir=Path(scratch),
        )
        if result.cancelled:
            # Someone stopped it on purpose: a half-trained model is not worth a version.
            return TrainingOutcome(version=None, decision=None, result=result)
        architecture = result.config.architecture
        pictures = {
            "curves.png": plot_training_curves(
                result.history,
                Path(scratch) / "curves.png",
                title=f"{architecture}: test accuracy {result.evaluation.accuracy:.2%}",
            ),
            "confusion.png": plot_confusion_matrix(
                result.evaluation.confusion,
                Path(scratch) / "confusion.png",
                title="MNIST test confusion matrix",
            ),
        }
        version = registry.save(result, architecture=architecture, extra_files=pictures)
    decision = registry.promote_if_better(version, tolerance) if promote else None
    return TrainingOutcome(version=version, decision=decision, result=result)


def load_extra_samples(path: Path) -> ExtraSamples:
    """Read extra samples from an npz with `images` (N, 28, 28) uint8 and `labels` (N,)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return ExtraSamples(images=archive["images"], labels=archive["labels"])
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"{path} is not an npz of `images` (N, 28, 28) uint8 and `labels`: {error}"
        ) from error
