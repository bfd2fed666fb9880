"""The whole training workflow: load data, train, store a version with its pictures, apply promotion."""

from __future__ import annotations

import json
import logging
import platform
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_engine.registry import METADATA_FILE, MODEL_FILE, TFLITE_FILE, ModelRegistry, RegistryError
from mnist_engine.settings import DEFAULT_PROMOTION_TOLERANCE
from mnist_engine.synthetic.pipeline_crops import CropsCancelled, PipelineCrops, load_pipeline_crops
from mnist_engine.training.callbacks import EventHandler
from mnist_engine.training.dataset import Mnist, load_mnist
from mnist_engine.training.evaluation import evaluate_model
from mnist_engine.training.export import export_tflite
from mnist_engine.training.plots import plot_confusion_matrix, plot_training_curves
from mnist_engine.training.promotion import PromotionDecision, Scores, decide_promotion
from mnist_engine.training.train import (
    ExtraSamples,
    TrainingCancelled,
    TrainingConfig,
    TrainingResult,
    split_for_training,
    train,
)

logger = logging.getLogger(__name__)


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
    tolerance: float = DEFAULT_PROMOTION_TOLERANCE,
    checkpoint_path: Path | None = None,
) -> TrainingOutcome:
    """Train on MNIST (plus pipeline crops and extra samples), save a version, promote it by the rule."""
    mnist = load_mnist(data_dir)
    registry = ModelRegistry(model_dir)
    resolved = config.resolved()
    photo_crops = None
    if resolved.photo_crops:
        try:
            photo_crops = photo_crops_for(data_dir, mnist, resolved, cancel_event)
        except CropsCancelled as error:
            raise TrainingCancelled(str(error)) from error
    result = train(
        mnist,
        resolved,
        extra=extra,
        photo_crops=photo_crops,
        on_event=on_event,
        cancel_event=cancel_event,
        checkpoint_path=checkpoint_path,
    )
    if result.cancelled:
        # Someone stopped it on purpose: a half-trained model is not worth a version.
        return TrainingOutcome(version=None, decision=None, result=result)
    version = save_version(registry, result)
    decision = None
    if promote:
        x_test, y_test = (
            mnist.x_test[: result.data["mnist_test_images"]],
            mnist.y_test[: result.data["mnist_test_images"]],
        )
        decision = promote_if_better(registry, version, result, x_test, y_test, tolerance)
    return TrainingOutcome(version=version, decision=decision, result=result)


def photo_crops_for(
    data_dir: Path, mnist: Mnist, config: TrainingConfig, cancel_event: threading.Event | None = None
) -> PipelineCrops:
    """The pipeline crops of this run's fitting and validation digits (made once per data folder)."""
    x_fit, y_fit, x_val, y_val = split_for_training(mnist, config)
    return load_pipeline_crops(
        data_dir, x_fit, y_fit, x_val, y_val, count=config.photo_crops, cancel_event=cancel_event
    )


def save_version(registry: ModelRegistry, result: TrainingResult) -> str:
    """Store a trained model as a new version (not yet serving): Keras, LiteRT, metadata, pictures."""
    architecture = result.config.architecture
    with registry.new_version(architecture) as (version, folder):
        result.model.save(folder / MODEL_FILE)
        export_tflite(result.model, folder / TFLITE_FILE)
        plot_training_curves(
            result.history,
            folder / "curves.png",
            title=f"{architecture}: test accuracy {result.evaluation.accuracy:.2%}",
        )
        plot_confusion_matrix(
            result.evaluation.confusion, folder / "confusion.png", title="MNIST test confusion matrix"
        )
        metadata = build_metadata(version, result)
        (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return version


def promote_if_better(
    registry: ModelRegistry,
    version: str,
    result: TrainingResult,
    x_test: np.ndarray,
    y_test: np.ndarray,
    tolerance: float = DEFAULT_PROMOTION_TOLERANCE,
) -> PromotionDecision:
    """Compare the candidate with the serving model on the same data; switch `current` if it wins.

    Reading `current`, evaluating it and switching happen under the registry's lock, so two runs
    finishing at once cannot both compare against the same old model.
    """
    users = result.extra_evaluation
    candidate = Scores(
        mnist_accuracy=result.evaluation.accuracy,
        users_accuracy=None if users is None else users.accuracy,
        users_loss=None if users is None else users.loss,
    )
    with registry.promotion_lock():
        serving = current_scores(registry, result.extra_holdout, x_test, y_test)
        decision = decide_promotion(candidate, serving, tolerance)
        if decision.promote:
            registry.set_current(version)
    return decision


def current_scores(
    registry: ModelRegistry, holdout: ExtraSamples | None, x_test: np.ndarray, y_test: np.ndarray
) -> Scores | None:
    """The serving model's scores on the given data; None when nothing serves or it cannot be loaded."""
    try:
        version = registry.current_version()
        if version is None:
            return None
        model = keras.models.load_model(registry.path(version) / MODEL_FILE, compile=False)
    except (RegistryError, OSError, ValueError) as error:
        # A broken serving model is no reason to keep it: the candidate is compared with nothing.
        logger.warning("The serving model cannot be evaluated (%s); promoting on the candidate alone", error)
        return None
    mnist_accuracy = evaluate_model(model, x_test, y_test).accuracy
    if holdout is None or not len(holdout.labels):
        return Scores(mnist_accuracy=mnist_accuracy)
    users = evaluate_model(model, holdout.images, holdout.labels)
    return Scores(mnist_accuracy=mnist_accuracy, users_accuracy=users.accuracy, users_loss=users.loss)


def build_metadata(version: str, result: TrainingResult) -> dict[str, Any]:
    """Collect what a version records about itself."""
    import tensorflow

    evaluation = result.evaluation
    metrics: dict[str, Any] = {
        "test_accuracy": evaluation.accuracy,
        "test_loss": evaluation.loss,
        "best_val_accuracy": result.best_val_accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "confusion": evaluation.confusion,
    }
    if result.extra_evaluation is not None:
        metrics["extra_holdout_accuracy"] = result.extra_evaluation.accuracy
    return {
        "version": version,
        "architecture": result.config.architecture,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": asdict(result.config),
        "temperature": result.temperature,
        "parameter_count": int(result.model.count_params()),
        "metrics": metrics,
        "history": result.history,
        "epochs_done": result.epochs_done,
        "stopped_early": result.stopped_early,
        "cancelled": result.cancelled,
        "training_seconds": round(result.seconds, 2),
        "data": result.data,
        "libraries": {
            "python": platform.python_version(),
            "tensorflow": tensorflow.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
    }


def load_extra_samples(path: Path) -> ExtraSamples:
    """Read extra samples from an npz with `images` (N, 28, 28) uint8, `labels` (N,) and optional `ids`."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            ids = archive["ids"] if "ids" in archive.files else None
            return ExtraSamples(images=archive["images"], labels=archive["labels"], ids=ids)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"{path} is not an npz of `images` (N, 28, 28) uint8 and `labels`: {error}"
        ) from error
