"""Versioned models on disk, a `current` pointer that switches atomically, and the promotion rule.

Layout of the model directory (MNIST_MODEL_DIR):

    models/
      current                      # one line: the serving version's name
      20261122-041502-small-cnn/
        model.keras                # the Keras model
        model.tflite               # the same model for the LiteRT serving path
        metadata.json              # metrics, architecture, parameters, data, timings, library versions
        curves.png, confusion.png  # pictures small enough to send in a chat
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CURRENT_POINTER = "current"
MODEL_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
METADATA_FILE = "metadata.json"
DEFAULT_TOLERANCE = 0.001  # a candidate may be this much below the current model's test accuracy
_VERSION_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}(-[0-9]+)?-[a-z0-9-]+$")


class RegistryError(RuntimeError):
    """The model directory is missing something or holds something it should not."""


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate model should serve, and why, in words fit for an admin."""

    promote: bool
    reason: str
    candidate_accuracy: float
    current_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as a JSON-ready dict."""
        return asdict(self)


def decide_promotion(
    candidate_accuracy: float, current_accuracy: float | None, tolerance: float = DEFAULT_TOLERANCE
) -> PromotionDecision:
    """Promote if there is no current model or the candidate is not worse than current − tolerance."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if current_accuracy is None:
        return PromotionDecision(True, "no model is serving yet", candidate_accuracy, None)
    floor = current_accuracy - tolerance
    comparison = f"{candidate_accuracy:.2%} vs current {current_accuracy:.2%}, tolerance {tolerance:.2%}"
    if candidate_accuracy >= floor:
        verdict = "better than" if candidate_accuracy > current_accuracy else "within tolerance of"
        return PromotionDecision(
            True,
            f"test accuracy {verdict} the current model ({comparison})",
            candidate_accuracy,
            current_accuracy,
        )
    return PromotionDecision(
        False, f"test accuracy below the current model ({comparison})", candidate_accuracy, current_accuracy
    )


class ModelRegistry:
    """The versioned models under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        """Return the directory of a version, refusing names that could escape the registry."""
        if not _VERSION_PATTERN.match(version):
            raise RegistryError(f"{version!r} is not a model version name")
        return self.root / version

    def versions(self) -> list[str]:
        """Return the complete versions, oldest first (names sort by creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if _VERSION_PATTERN.match(entry.name) and (entry / METADATA_FILE).exists()
        )

    def current_version(self) -> str | None:
        """Return the serving version's name, or None if nothing is serving yet."""
        pointer = self.root / CURRENT_POINTER
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not version:
            return None
        if not (self.path(version) / METADATA_FILE).exists():
            raise RegistryError(f"{pointer} names {version!r}, which is not a complete model version")
        return version

    def metadata(self, version: str) -> dict[str, Any]:
        """Return a version's metadata."""
        path = self.path(version) / METADATA_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RegistryError(f"cannot read {path}: {error}") from error

    def current_metadata(self) -> dict[str, Any] | None:
        """Return the serving version's metadata, or None."""
        version = self.current_version()
        return None if version is None else self.metadata(version)

    def save(self, result: Any, *, architecture: str, extra_files: dict[str, Path] | None = None) -> str:
        """Store a TrainingResult as a new version (not yet serving) and return its name.

        Everything is written into a hidden staging directory first and renamed into place, so a
        crash never leaves a half-written version that looks complete.
        """
        from mnist_engine.export import export_tflite  # TensorFlow only when saving

        self.root.mkdir(parents=True, exist_ok=True)
        version = self._new_version_name(architecture)
        staging = self.root / f".staging-{version}"
        staging.mkdir()
        try:
            result.model.save(staging / MODEL_FILE)
            export_tflite(result.model, staging / TFLITE_FILE)
            for name, source in (extra_files or {}).items():
                shutil.copyfile(source, staging / name)
            metadata = build_metadata(version, result, architecture)
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
            staging.rename(self.root / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def set_current(self, version: str) -> None:
        """Point `current` at a version: write a temporary file, then os.replace (atomic)."""
        if not (self.path(version) / METADATA_FILE).exists():
            raise RegistryError(f"cannot serve {version!r}: no such complete version in {self.root}")
        temporary = self.root / f".{CURRENT_POINTER}.tmp"
        temporary.write_text(version + "\n", encoding="utf-8")
        os.replace(temporary, self.root / CURRENT_POINTER)

    def promote_if_better(self, version: str, tolerance: float = DEFAULT_TOLERANCE) -> PromotionDecision:
        """Apply the promotion rule to a stored version; switch `current` if it passes."""
        candidate = self.metadata(version)["metrics"]["test_accuracy"]
        current = self.current_metadata()
        decision = decide_promotion(
            candidate, None if current is None else current["metrics"]["test_accuracy"], tolerance
        )
        if decision.promote:
            self.set_current(version)
        return decision

    def _new_version_name(self, architecture: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^a-z0-9-]+", "-", architecture.lower()).strip("-") or "model"
        name, counter = f"{stamp}-{slug}", 1
        while (self.root / name).exists() or (self.root / f".staging-{name}").exists():
            counter += 1
            name = f"{stamp}-{counter}-{slug}"
        return name


def build_metadata(version: str, result: Any, architecture: str) -> dict[str, Any]:
    """Collect what a version records about itself."""
    import keras
    import numpy
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
        "architecture": architecture,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": asdict(result.config),
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
            "numpy": numpy.__version__,
        },
    }
