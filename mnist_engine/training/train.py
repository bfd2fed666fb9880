"""Train a named architecture on MNIST (plus optional extra samples) with Keras callbacks."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnist_engine.serving.model_input import to_model_input
from mnist_engine.settings import (
    DEFAULT_PHOTO_CROPS,
    DEFAULT_USER_SAMPLE_SHARE,
    DEFAULT_USER_SAMPLE_WEIGHT,
    DEFAULT_VALIDATION_SIZE,
)
from mnist_engine.synthetic.pipeline_crops import MIN_PHOTO_CROPS, PipelineCrops
from mnist_engine.training.architectures import (
    DEFAULT_ARCHITECTURE,
    NUM_CLASSES,
    build_optimizer,
    get_architecture,
)
from mnist_engine.training.augmentation import build_augmentation
from mnist_engine.training.calibration import fit_temperature
from mnist_engine.training.callbacks import CancelCallback, EventHandler, ProgressCallback
from mnist_engine.training.dataset import Mnist
from mnist_engine.training.evaluation import Evaluation, evaluate_model
from mnist_engine.training.events import TrainingEvent

MAX_EXTRA_REPEATS = 100  # one correction seen 100 times an epoch is plenty; more would memorise it


@dataclass(frozen=True)
class TrainingConfig:
    """What to train and how; every field is recorded with the model it produces."""

    architecture: str = DEFAULT_ARCHITECTURE
    epochs: int | None = None  # None: the architecture's default
    batch_size: int | None = None
    learning_rate: float | None = None
    augment: bool | None = None
    seed: int = 42
    train_limit: int | None = None  # use only the first N training images (quick runs, tests)
    test_limit: int | None = None
    validation_size: int = DEFAULT_VALIDATION_SIZE
    early_stopping_patience: int = 8  # epochs without a better validation accuracy
    reduce_lr_patience: int = 2
    reduce_lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    extra_sample_weight: float = DEFAULT_USER_SAMPLE_WEIGHT
    # Few extra samples are repeated until they carry this share of an epoch's weight.
    extra_min_share: float = DEFAULT_USER_SAMPLE_SHARE
    extra_holdout_fraction: float = 0.2  # share of extra samples kept aside to evaluate on
    photo_crops: int = DEFAULT_PHOTO_CROPS  # pipeline crops mixed into training; 0 for MNIST alone
    initial_model: str | None = None  # a .keras model to start from (fine-tuning) instead of new weights

    def resolved(self) -> ResolvedTrainingConfig:
        """Return a copy with the architecture's defaults filled in, validated."""
        architecture = get_architecture(self.architecture)
        config = ResolvedTrainingConfig(
            **{
                **asdict(self),
                "epochs": _default(self.epochs, architecture.default_epochs),
                "batch_size": _default(self.batch_size, architecture.batch_size),
                "learning_rate": _default(self.learning_rate, architecture.learning_rate),
                "augment": _default(self.augment, architecture.augment),
            }
        )
        if not 1 <= config.epochs <= 500:
            raise ValueError(f"epochs must be between 1 and 500, got {config.epochs}")
        if not 0 < config.learning_rate < 1:
            raise ValueError(f"learning_rate must be between 0 and 1, got {config.learning_rate}")
        if not 1 <= config.batch_size <= 4096:
            raise ValueError(f"batch_size must be between 1 and 4096, got {config.batch_size}")
        if config.train_limit is not None and config.train_limit <= config.validation_size:
            raise ValueError(
                f"train_limit ({config.train_limit}) must exceed validation_size ({config.validation_size})"
            )
        if not 0 <= config.extra_holdout_fraction < 1:
            raise ValueError("extra_holdout_fraction must be in [0, 1)")
        if not config.extra_sample_weight > 0:
            raise ValueError(f"extra_sample_weight must be above 0, got {config.extra_sample_weight}")
        if not 0 <= config.extra_min_share <= 0.5:
            raise ValueError(f"extra_min_share must be in [0, 0.5], got {config.extra_min_share}")
        if config.photo_crops and config.photo_crops < MIN_PHOTO_CROPS:
            raise ValueError(f"photo_crops must be 0 or at least {MIN_PHOTO_CROPS}, got {config.photo_crops}")
        return config


@dataclass(frozen=True)
class ResolvedTrainingConfig(TrainingConfig):
    """A TrainingConfig whose architecture defaults are filled in: nothing is left to choose."""

    epochs: int = 0
    batch_size: int = 0
    learning_rate: float = 0.0
    augment: bool = False


@dataclass(frozen=True)
class ExtraSamples:
    """Labelled 28×28 uint8 digits from outside MNIST (users' corrections), mixed into training.

    `ids` (the samples' database ids) make the held-out slice stable from run to run: a sample
    held out once is held out always, so the serving model never trained on the slice it is
    compared on.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28) or self.images.dtype != np.uint8:
            raise ValueError(
                f"extra images must be uint8 (N, 28, 28), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.images) != len(self.labels) or (
            self.ids is not None and len(self.ids) != len(self.labels)
        ):
            raise ValueError("extra images, labels and ids differ in length")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() > 9):
            raise ValueError("extra labels must be digits 0..9")

    def subset(self, selected: np.ndarray) -> ExtraSamples:
        """The samples a boolean mask or an index array selects."""
        return ExtraSamples(
            self.images[selected], self.labels[selected], None if self.ids is None else self.ids[selected]
        )


@dataclass
class TrainingResult:
    """What a run produced: the model (best weights), its history and its test evaluation."""

    model: keras.Model
    config: ResolvedTrainingConfig
    temperature: float  # divides the model's log-probabilities so its confidence is calibrated
    history: list[dict[str, float]]
    evaluation: Evaluation
    extra_evaluation: Evaluation | None
    extra_holdout: ExtraSamples | None
    epochs_done: int
    best_val_accuracy: float
    stopped_early: bool
    cancelled: bool
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)


class TrainingCancelled(RuntimeError):
    """The run was cancelled before its first epoch finished, so it has no model."""


def train(
    mnist: Mnist,
    config: TrainingConfig | None = None,
    *,
    extra: ExtraSamples | None = None,
    photo_crops: PipelineCrops | None = None,
    on_event: EventHandler | None = None,
    cancel_event: threading.Event | None = None,
    checkpoint_path: Path | None = None,
) -> TrainingResult:
    """Train, validate on the training set's tail, evaluate once on the test set.

    `photo_crops` (pipeline crops of the fitting and the validation digits) join the fitting and
    the validation data. Progress goes to `on_event`; setting `cancel_event` stops at the next
    batch and returns the best model so far (or raises TrainingCancelled if no epoch finished).
    With `checkpoint_path`, the best epoch so far is also kept in that file as the run goes on.
    """
    config = (config or TrainingConfig()).resolved()
    architecture = get_architecture(config.architecture)
    emit = on_event or (lambda event: None)
    cancel_event = cancel_event or threading.Event()
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow
    started = time.monotonic()

    x_fit, y_fit, x_val, y_val = split_for_training(mnist, config)
    mnist_fit_images = len(y_fit)
    if photo_crops is not None:
        x_fit, y_fit = np.concatenate([x_fit, photo_crops.x_fit]), np.concatenate([y_fit, photo_crops.y_fit])
        x_val, y_val = np.concatenate([x_val, photo_crops.x_val]), np.concatenate([y_val, photo_crops.y_val])
    weights = np.ones(len(x_fit), dtype=np.float32)
    extra_holdout: ExtraSamples | None = None
    extra_train_images = 0
    repeats = 1
    if extra is not None and len(extra.labels):
        extra_fit, extra_holdout = split_extra(extra, config.extra_holdout_fraction, config.seed)
        extra_train_images = len(extra_fit.labels)
        repeats = extra_repeats(extra_train_images, len(x_fit), config)
        x_fit = np.concatenate([x_fit, np.tile(extra_fit.images, (repeats, 1, 1))])
        y_fit = np.concatenate([y_fit, np.tile(extra_fit.labels.astype(y_fit.dtype), repeats)])
        weights = np.concatenate(
            [weights, np.full(extra_train_images * repeats, config.extra_sample_weight, np.float32)]
        )

    fit_dataset = make_dataset(x_fit, y_fit, weights, config, shuffle=True)
    validation_dataset = make_dataset(x_val, y_val, None, config, shuffle=False)
    steps_per_epoch = int(np.ceil(len(x_fit) / config.batch_size))

    model = load_initial_model(config.initial_model) if config.initial_model else architecture.build()
    model.compile(
        optimizer=build_optimizer(architecture.optimizer, config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )

    # Accuracy, not loss: a dense network's validation loss rises with over-confidence while its
    # accuracy still improves (measured: stopping on loss cost the dense network ~0.4 points).
    # It also restores the best epoch's weights when the run ends, cancelled or not.
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=config.early_stopping_patience,
        restore_best_weights=True,
    )
    cancel = CancelCallback(cancel_event)
    # Order matters: ReduceLROnPlateau writes the epoch's learning rate into the logs the progress
    # callback reports, and lowers it afterwards.
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            min_lr=config.min_learning_rate,
        ),
        early_stopping,
        ProgressCallback(emit, total_epochs=config.epochs, steps_per_epoch=steps_per_epoch),
        cancel,
    ]
    if checkpoint_path is not None:
        # The best epoch so far, on disk while the run goes on: what survives a process that is
        # killed mid-run (a long run on a worker), which EarlyStopping's in-memory copy does not.
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                checkpoint_path, monitor="val_accuracy", mode="max", save_best_only=True, verbose=0
            )
        )
    history = model.fit(
        fit_dataset,
        validation_data=validation_dataset,
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    epochs_done = len(history.history.get("val_loss", []))
    if cancel.cancelled and cancel.complete_epochs == 0:
        raise TrainingCancelled("Training was cancelled before the first epoch finished")

    history_rows = history_to_rows(history.history)
    stopped_early = early_stopping.stopped_epoch > 0
    if stopped_early:
        emit(
            TrainingEvent(
                kind="early_stopped",
                epoch=epochs_done,
                total_epochs=config.epochs,
                message=f"Early stopping after epoch {epochs_done}: validation accuracy stopped improving",
            )
        )
    if cancel.cancelled:
        emit(
            TrainingEvent(
                kind="cancelled",
                epoch=epochs_done,
                total_epochs=config.epochs,
                message="Training cancelled; keeping the best epoch so far",
            )
        )

    # Calibrated on photo-like digits where there are some: that is where the bot's confidence is read.
    x_calibrate, y_calibrate = (
        (photo_crops.x_val, photo_crops.y_val) if photo_crops is not None else (x_val, y_val)
    )
    temperature = fit_temperature(model, x_calibrate, y_calibrate)
    x_test, y_test = mnist.x_test, mnist.y_test
    if config.test_limit:
        x_test, y_test = x_test[: config.test_limit], y_test[: config.test_limit]
    evaluation = evaluate_model(model, x_test, y_test)
    extra_evaluation = (
        evaluate_model(model, extra_holdout.images, extra_holdout.labels)
        if extra_holdout is not None and len(extra_holdout.labels)
        else None
    )
    seconds = time.monotonic() - started
    best_val_accuracy = max(row.get("val_accuracy", 0.0) for row in history_rows)
    emit(
        TrainingEvent(
            kind="end",
            epoch=epochs_done,
            total_epochs=config.epochs,
            progress=1.0,
            elapsed_seconds=seconds,
            metrics={
                "test_accuracy": evaluation.accuracy,
                "test_loss": evaluation.loss,
                "best_val_accuracy": best_val_accuracy,
            },
            message=f"Test accuracy {evaluation.accuracy:.2%}",
        )
    )
    return TrainingResult(
        model=model,
        config=config,
        temperature=temperature,
        history=history_rows,
        evaluation=evaluation,
        extra_evaluation=extra_evaluation,
        extra_holdout=extra_holdout,
        epochs_done=epochs_done,
        best_val_accuracy=best_val_accuracy,
        stopped_early=stopped_early,
        cancelled=cancel.cancelled,
        seconds=seconds,
        data={
            "mnist_train_images": mnist_fit_images,
            "mnist_validation_images": config.validation_size,
            "mnist_test_images": len(x_test),
            "photo_crop_train_images": 0 if photo_crops is None else len(photo_crops.y_fit),
            "photo_crop_validation_images": 0 if photo_crops is None else len(photo_crops.y_val),
            "extra_train_images": extra_train_images,
            "extra_repeats": repeats,
            "extra_holdout_images": 0 if extra_holdout is None else len(extra_holdout.labels),
        },
    )


def load_initial_model(path: str) -> keras.Model:
    """Load the model a fine-tuning run starts from; ValueError when it is not a digit classifier."""
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot start from {path}: {error}") from error
    if tuple(model.input_shape[1:]) != (28, 28, 1) or tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise ValueError(f"{path} does not map 28x28 digits to {NUM_CLASSES} classes")
    return model


def split_for_training(
    mnist: Mnist, config: TrainingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_fit, y_fit, x_val, y_val): the (limited) training set, its tail kept to validate on."""
    x_train, y_train = mnist.x_train, mnist.y_train
    if config.train_limit:
        x_train, y_train = x_train[: config.train_limit], y_train[: config.train_limit]
    cut = len(x_train) - config.validation_size
    return x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:]


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def split_extra(extra: ExtraSamples, holdout_fraction: float, seed: int) -> tuple[ExtraSamples, ExtraSamples]:
    """Split extra samples into a training part and a held-out part to evaluate on.

    With ids, a sample's side depends on its id alone (a multiplicative hash), so the held-out
    slice stays held out as more samples arrive; without, a seeded shuffle decides.
    """
    if extra.ids is not None:
        spread = (extra.ids.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
        held_out = spread.astype(np.float64) / 2**32 < holdout_fraction
    else:
        order = np.random.default_rng(seed).permutation(len(extra.labels))
        held_out = np.zeros(len(order), dtype=bool)
        held_out[order[: round(len(order) * holdout_fraction)]] = True
    return extra.subset(~held_out), extra.subset(held_out)


def extra_repeats(extra_images: int, other_images: int, config: ResolvedTrainingConfig) -> int:
    """How often each extra sample appears in an epoch, so the extra samples carry at least
    `config.extra_min_share` of the epoch's weight (at most MAX_EXTRA_REPEATS times).

    Repeats, not a larger weight: each repeat is augmented differently, and no single batch is
    dominated by one heavily weighted digit.
    """
    if not extra_images or not config.extra_min_share:
        return 1
    share = config.extra_min_share
    needed = share * other_images / ((1 - share) * config.extra_sample_weight * extra_images)
    return max(1, min(MAX_EXTRA_REPEATS, math.ceil(needed)))


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None,
    config: ResolvedTrainingConfig,
    *,
    shuffle: bool,
) -> tf.data.Dataset:
    """Build a batched tf.data pipeline; training batches are shuffled and augmented."""
    one_hot = keras.utils.to_categorical(labels, NUM_CLASSES).astype(np.float32)
    tensors: tuple[np.ndarray, ...] = (to_model_input(images), one_hot)
    if weights is not None:
        tensors += (weights,)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    if shuffle and config.augment:
        augmentation = build_augmentation(seed=config.seed)
        dataset = dataset.map(
            lambda x, *rest: (augmentation(x, training=True), *rest),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def history_to_rows(history: dict[str, list[float]]) -> list[dict[str, float]]:
    """Turn Keras' column-wise history into one dict per epoch (1-based `epoch`)."""
    epochs = len(next(iter(history.values()), []))
    return [
        {"epoch": index + 1, **{name: float(values[index]) for name, values in history.items()}}
        for index in range(epochs)
    ]
