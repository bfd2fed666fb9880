"""Versioned storage, the promotion rule, and the fast serving path."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mnist_engine.registry import ModelRegistry, RegistryError
from mnist_engine.serving import Classifier, CurrentModel, NoModelError
from mnist_engine.serving.calibration import apply_temperature
from mnist_engine.serving.model_input import to_model_input
from mnist_engine.shipped_model import install_shipped_model
from mnist_engine.training.dataset import Mnist
from mnist_engine.training.promotion import Scores, decide_promotion
from mnist_engine.training.store import promote_if_better, save_version
from mnist_engine.training.train import TrainingConfig, TrainingResult, train


@pytest.fixture(scope="module")
def trained(mnist: Mnist) -> TrainingResult:
    """A small dense model trained for one epoch."""
    config = TrainingConfig(
        architecture="dense", epochs=1, train_limit=4000, validation_size=1000, test_limit=1000, batch_size=32
    )
    return train(mnist, config)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def test_promotion_rule_on_mnist_alone() -> None:
    assert decide_promotion(Scores(0.95), None).promote
    assert decide_promotion(Scores(0.991), Scores(0.990)).promote
    within = decide_promotion(Scores(0.9895), Scores(0.9900), tolerance=0.001)
    assert within.promote and "within tolerance" in within.reason
    worse = decide_promotion(Scores(0.980), Scores(0.990), tolerance=0.001)
    assert not worse.promote and "dropped too far" in worse.reason
    with pytest.raises(ValueError, match="tolerance"):
        decide_promotion(Scores(0.9), Scores(0.9), tolerance=-0.1)


def test_promotion_rule_with_the_users_slice() -> None:
    current = Scores(mnist_accuracy=0.990, users_accuracy=0.80)
    # Reads users better, loses a little MNIST within the tolerance: promoted.
    assert decide_promotion(Scores(0.9895, 0.90), current, tolerance=0.001).promote
    # Reads users better but loses too much MNIST: refused.
    assert not decide_promotion(Scores(0.980, 0.95), current, tolerance=0.001).promote
    # Better on MNIST but reads users worse: refused, however good MNIST is.
    worse_for_users = decide_promotion(Scores(0.995, 0.75), current, tolerance=0.001)
    assert not worse_for_users.promote and "users' digits" in worse_for_users.reason
    # As good for users and better MNIST: promoted; as good for users, MNIST no better: refused.
    assert decide_promotion(Scores(0.992, 0.80), current).promote
    assert not decide_promotion(Scores(0.990, 0.80), current).promote
    # As good for users (a small slice: a tie is common) but surer of their digits, MNIST within
    # the tolerance: promoted; as good and less sure, MNIST no better: refused.
    current_with_loss = Scores(mnist_accuracy=0.990, users_accuracy=0.80, users_loss=0.30)
    surer = decide_promotion(Scores(0.9895, 0.80, users_loss=0.20), current_with_loss, tolerance=0.001)
    assert surer.promote and "more surely" in surer.reason
    assert not decide_promotion(Scores(0.990, 0.80, users_loss=0.40), current_with_loss).promote
    # Surer, but it loses too much MNIST: refused.
    assert not decide_promotion(
        Scores(0.980, 0.80, users_loss=0.10), current_with_loss, tolerance=0.001
    ).promote


def test_saved_version_records_what_made_it(registry: ModelRegistry, trained: TrainingResult) -> None:
    version = save_version(registry, trained)
    directory = registry.path(version)
    assert {"model.keras", "model.tflite", "metadata.json"} <= {entry.name for entry in directory.iterdir()}
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["architecture"] == "dense"
    assert metadata["metrics"]["test_accuracy"] == pytest.approx(trained.evaluation.accuracy)
    assert len(metadata["metrics"]["confusion"]) == 10
    assert metadata["parameters"]["epochs"] == 1 and metadata["parameter_count"] == 104_938
    assert metadata["libraries"]["tensorflow"].startswith("2.")
    assert metadata["data"]["mnist_train_images"] == 3000
    assert registry.versions() == [version]
    assert registry.current_version() is None  # saving does not serve


def test_save_load_gives_identical_predictions(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    version = save_version(registry, trained)
    images = mnist.x_test[:64]
    # Served with the temperature fitted on the validation digits: calibrated, same argmax.
    raw = trained.model(to_model_input(images), training=False).numpy()
    expected = apply_temperature(raw, trained.temperature)
    litert = Classifier.load(registry.path(version))
    keras_path = Classifier.load(registry.path(version) / "model.keras")
    assert litert.backend.name == "litert" and keras_path.backend.name == "tf.function"
    assert litert.temperature == keras_path.temperature == trained.temperature != 1.0
    np.testing.assert_array_equal(litert.predict_proba(images).argmax(axis=1), raw.argmax(axis=1))
    np.testing.assert_allclose(litert.predict_proba(images), expected, atol=1e-5)
    np.testing.assert_allclose(keras_path.predict_proba(images), expected, atol=1e-5)


def test_promotion_compares_both_models_on_the_same_test_images(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    x_test, y_test = mnist.x_test[:1000], mnist.y_test[:1000]
    first = save_version(registry, trained)
    assert promote_if_better(registry, first, trained, x_test, y_test).promote
    assert registry.current_version() == first
    # The serving model's stored figure came from another test set (here: a far lower one);
    # the candidate, a little worse on these images, must be compared with the serving
    # model measured on the same images, not with the stored figure.
    metadata_path = registry.path(first) / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["metrics"]["test_accuracy"] = 0.10
    metadata_path.write_text(json.dumps(metadata))
    worse = replace(
        trained, evaluation=replace(trained.evaluation, accuracy=trained.evaluation.accuracy - 0.05)
    )
    second = save_version(registry, worse)
    decision = promote_if_better(registry, second, worse, x_test, y_test)
    assert not decision.promote
    assert decision.current is not None
    assert decision.current.mnist_accuracy == pytest.approx(trained.evaluation.accuracy)
    assert registry.current_version() == first
    assert not list(registry.root.glob(".current*"))  # no temporary pointer left behind


def test_a_second_promotion_waits_for_the_first(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    version = save_version(registry, trained)
    finished = threading.Event()

    def promote() -> None:
        promote_if_better(registry, version, trained, mnist.x_test[:200], mnist.y_test[:200])
        finished.set()

    with registry.promotion_lock():  # another promotion is between reading and switching
        worker = threading.Thread(target=promote)
        worker.start()
        time.sleep(0.5)
        assert not finished.is_set() and registry.current_version() is None
    worker.join(timeout=30)
    assert finished.is_set() and registry.current_version() == version


def test_current_model_reloads_when_the_pointer_changes(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    serving = CurrentModel(registry.root)
    with pytest.raises(NoModelError, match="python -m mnist_engine train"):
        serving.get()
    first = save_version(registry, trained)
    registry.set_current(first)
    assert serving.get().version == first
    assert serving.get() is serving.get()  # loaded once, not per call
    second = save_version(registry, trained)
    registry.set_current(second)
    assert serving.get().version == second
    assert serving.predict_proba(mnist.x_test[:3]).shape == (3, 10)


def test_registry_refuses_bad_names_and_dangling_pointers(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError):
        registry.path("../../etc")
    with pytest.raises(RegistryError, match="cannot serve"):
        registry.set_current("20260101-000000-dense")
    registry.root.mkdir(parents=True)
    (registry.root / "current").write_text("20260101-000000-dense\n")
    with pytest.raises(RegistryError, match="not a complete model version"):
        registry.current_version()
    # Serving says the pointer is broken; it does not pretend that no model was ever trained.
    with pytest.raises(RegistryError, match="not a complete model version"):
        CurrentModel(registry.root).get()


def test_classifier_is_safe_to_share_between_threads(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    classifier = Classifier.load(registry.path(save_version(registry, trained)))
    images = mnist.x_test[:200]
    expected = classifier.predict_proba(images)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda index: classifier.predict_proba(images[index : index + 1]), range(200))
        )
    np.testing.assert_allclose(np.concatenate(results), expected, atol=1e-6)


def test_the_shipped_model_serves_a_first_start_once(tmp_path: Path, mnist: Mnist) -> None:
    registry = ModelRegistry(tmp_path / "models")

    version = install_shipped_model(registry)

    assert version is not None and registry.current_version() == version
    metadata = registry.metadata(version)
    assert metadata["architecture"] == "small-cnn" and metadata["shipped_as"] != version
    assert metadata["metrics"]["test_accuracy"] >= 0.99 and metadata["temperature"] > 0
    classifier = Classifier.load(registry.path(version))
    assert classifier.backend.name == "litert"
    assert np.mean(classifier.predict_proba(mnist.x_test[:500]).argmax(axis=1) == mnist.y_test[:500]) > 0.98
    # Something serves now: a second start (or another instance) installs nothing.
    assert install_shipped_model(registry) is None
    assert registry.versions() == [version]
    # Nothing shipped (a checkout without it): nothing installed.
    assert install_shipped_model(ModelRegistry(tmp_path / "other"), shipped=tmp_path / "none") is None
