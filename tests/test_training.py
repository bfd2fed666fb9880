"""Real TensorFlow training on small MNIST subsets: learning, callbacks, cancellation, extra samples."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mnist_engine.training.dataset import Mnist
from mnist_engine.training.evaluation import evaluate_model
from mnist_engine.training.events import TrainingEvent
from mnist_engine.training.train import ExtraSamples, TrainingCancelled, TrainingConfig, train

pytestmark = pytest.mark.slow

QUICK = dict(architecture="dense", train_limit=4000, validation_size=1000, test_limit=2000, batch_size=32)


def test_dense_network_learns_far_beyond_chance_and_reports_progress(mnist: Mnist, tmp_path: Path) -> None:
    events: list[TrainingEvent] = []
    result = train(
        mnist,
        TrainingConfig(**QUICK, epochs=2),
        on_event=events.append,
        checkpoint_path=tmp_path / "best.keras",
    )

    assert result.evaluation.accuracy > 0.85  # chance is 0.10
    assert result.epochs_done == 2
    assert (tmp_path / "best.keras").exists()  # ModelCheckpoint wrote the best epoch
    kinds = [event.kind for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    epoch_events = [event for event in events if event.kind == "epoch"]
    assert [event.epoch for event in epoch_events] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(epoch_events[0].metrics)
    assert epoch_events[-1].progress == pytest.approx(1.0)
    assert epoch_events[0].eta_seconds is not None and epoch_events[0].eta_seconds > 0
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.data["mnist_train_images"] == 3000


def test_plateau_reduces_learning_rate_and_early_stopping_ends_the_run(mnist: Mnist) -> None:
    # A learning rate this small cannot improve the validation loss, which forces a plateau.
    config = TrainingConfig(
        **QUICK,
        epochs=8,
        learning_rate=1e-9,
        min_learning_rate=1e-15,
        reduce_lr_patience=0,
        early_stopping_patience=2,
    )
    events: list[TrainingEvent] = []
    result = train(mnist, config, on_event=events.append)

    reductions = [event for event in events if event.kind == "lr_reduced"]
    assert reductions, "ReduceLROnPlateau never fired"
    assert reductions[0].metrics["learning_rate"] == pytest.approx(0.5e-9, rel=1e-3)
    rates = [row["learning_rate"] for row in result.history]
    assert rates[-1] < rates[0]
    assert result.stopped_early and result.epochs_done < 8
    assert any(event.kind == "early_stopped" for event in events)


def test_cancellation_stops_at_the_next_batch_and_keeps_the_best_epoch(mnist: Mnist) -> None:
    cancel = threading.Event()

    def cancel_after_first_epoch(event: TrainingEvent) -> None:
        if event.kind == "epoch":
            cancel.set()

    config = TrainingConfig(**QUICK, epochs=20)
    result = train(mnist, config, on_event=cancel_after_first_epoch, cancel_event=cancel)
    assert result.cancelled
    # Keras validates the interrupted epoch too, so at most one epoch beyond the first is recorded.
    assert result.epochs_done <= 2
    assert result.evaluation.accuracy > 0.7


def test_cancelling_before_any_epoch_raises(mnist: Mnist) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TrainingCancelled):
        train(mnist, TrainingConfig(**QUICK, epochs=3), cancel_event=cancel)


def test_same_seed_gives_the_same_model(mnist: Mnist) -> None:
    config = TrainingConfig(**QUICK, epochs=1)
    first = train(mnist, config)
    second = train(mnist, config)
    sample = mnist.x_test[:50].astype(np.float32)[..., None] / 255
    np.testing.assert_allclose(first.model(sample).numpy(), second.model(sample).numpy(), atol=1e-5)


def test_extra_samples_are_mixed_in_and_a_slice_held_out(mnist: Mnist) -> None:
    # Stand-in for users' corrections: inverted-contrast digits the MNIST set never shows.
    images = (255 - mnist.x_test[-500:]).astype(np.uint8)
    extra = ExtraSamples(images=images, labels=mnist.y_test[-500:])
    result = train(mnist, TrainingConfig(**QUICK, epochs=2, extra_holdout_fraction=0.2), extra=extra)
    assert result.data["extra_train_images"] == 400
    assert result.data["extra_holdout_images"] == 100
    assert result.extra_evaluation is not None and result.extra_evaluation.samples == 100
    without_extra = train(mnist, TrainingConfig(**QUICK, epochs=2))
    baseline = evaluate_model(without_extra.model, images, extra.labels)
    # 400 weighted examples teach the network a kind of digit MNIST alone never shows it.
    assert result.extra_evaluation.accuracy > baseline.accuracy + 0.15


def test_a_few_corrections_are_repeated_until_they_carry_their_share(mnist: Mnist) -> None:
    # Twenty-five users' digits (inverted: a kind MNIST never shows) among 3,000 MNIST ones: once
    # each they barely move the model; repeated (augmented anew each time) until they carry 20% of
    # the epoch's weight, the model learns to read them.
    users_images = (255 - mnist.x_test[-25:]).astype(np.uint8)
    few = ExtraSamples(images=users_images, labels=mnist.y_test[-25:])
    config = TrainingConfig(**QUICK, epochs=2, extra_holdout_fraction=0.2)
    once = train(mnist, replace(config, extra_min_share=0.0), extra=few)
    repeated = train(mnist, replace(config, extra_min_share=0.2), extra=few)

    assert once.data["extra_repeats"] == 1
    # 0.2 × 3,000 / (0.8 × weight 5 × 20 digits) = 7.5, rounded up
    assert repeated.data["extra_repeats"] == 8
    read_once = evaluate_model(once.model, few.images, few.labels).accuracy
    read_repeated = evaluate_model(repeated.model, few.images, few.labels).accuracy
    assert read_repeated > read_once + 0.15  # measured: 0.12 against 0.36


def test_bad_settings_are_refused_with_a_message(mnist: Mnist) -> None:
    with pytest.raises(ValueError, match="Unknown architecture 'resnet'"):
        TrainingConfig(architecture="resnet").resolved()
    with pytest.raises(ValueError, match="extra_sample_weight must be above 0"):
        TrainingConfig(extra_sample_weight=0).resolved()
    with pytest.raises(ValueError, match="extra_min_share must be in"):
        TrainingConfig(extra_min_share=0.9).resolved()
    with pytest.raises(ValueError, match="epochs must be"):
        TrainingConfig(epochs=0, architecture="dense", learning_rate=1e-3).resolved()
    with pytest.raises(ValueError, match="extra images must be uint8"):
        ExtraSamples(images=np.zeros((2, 28, 28), np.float32), labels=np.array([1, 2]))
