"""Versioned storage, the promotion rule, and the fast serving path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_engine.dataset import Mnist
from mnist_engine.evaluation import to_model_input
from mnist_engine.registry import ModelRegistry, RegistryError, decide_promotion
from mnist_engine.serving import Classifier, CurrentModel, NoModelError
from mnist_engine.training import TrainingConfig, TrainingResult, train


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


def test_promotion_rule() -> None:
    assert decide_promotion(0.95, None).promote
    assert decide_promotion(0.991, 0.990).promote
    within = decide_promotion(0.9895, 0.9900, tolerance=0.001)
    assert within.promote and "within tolerance" in within.reason
    worse = decide_promotion(0.980, 0.990, tolerance=0.001)
    assert not worse.promote and "below the current model" in worse.reason
    with pytest.raises(ValueError, match="tolerance"):
        decide_promotion(0.9, 0.9, tolerance=-0.1)


def test_saved_version_records_what_made_it(registry: ModelRegistry, trained: TrainingResult) -> None:
    version = registry.save(trained, architecture="dense")
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
    version = registry.save(trained, architecture="dense")
    images = mnist.x_test[:64]
    expected = trained.model(to_model_input(images), training=False).numpy()
    litert = Classifier.load(registry.path(version))
    keras_path = Classifier.load(registry.path(version) / "model.keras")
    assert litert.backend.name == "litert" and keras_path.backend.name == "tf.function"
    np.testing.assert_allclose(litert.predict_proba(images), expected, atol=1e-5)
    np.testing.assert_allclose(keras_path.predict_proba(images), expected, atol=1e-5)


def test_promotion_switches_current_only_when_not_worse(
    registry: ModelRegistry, trained: TrainingResult
) -> None:
    first = registry.save(trained, architecture="dense")
    assert registry.promote_if_better(first).promote
    assert registry.current_version() == first
    second = registry.save(trained, architecture="dense")
    metadata_path = registry.path(second) / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["metrics"]["test_accuracy"] -= 0.05
    metadata_path.write_text(json.dumps(metadata))
    decision = registry.promote_if_better(second)
    assert not decision.promote
    assert registry.current_version() == first
    assert not list(registry.root.glob(".current*"))  # no temporary pointer left behind


def test_current_model_reloads_when_the_pointer_changes(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    serving = CurrentModel(registry.root)
    with pytest.raises(NoModelError, match="python -m mnist_engine train"):
        serving.get()
    first = registry.save(trained, architecture="dense")
    registry.set_current(first)
    assert serving.get().version == first
    assert serving.get() is serving.get()  # loaded once, not per call
    second = registry.save(trained, architecture="dense")
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


def test_classifier_is_safe_to_share_between_threads(
    registry: ModelRegistry, trained: TrainingResult, mnist: Mnist
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    classifier = Classifier.load(registry.path(registry.save(trained, architecture="dense")))
    images = mnist.x_test[:200]
    expected = classifier.predict_proba(images)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda index: classifier.predict_proba(images[index : index + 1]), range(200))
        )
    np.testing.assert_allclose(np.concatenate(results), expected, atol=1e-6)
