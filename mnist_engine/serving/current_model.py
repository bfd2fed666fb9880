"""The registry's serving model, followed through the `current` pointer."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from mnist_engine.registry import CURRENT_POINTER, ModelRegistry
from mnist_engine.serving.classifier import Classifier, NoModelError

logger = logging.getLogger(__name__)


class CurrentModel:
    """The registry's serving model, loaded once and reloaded when `current` changes.

    Raises NoModelError while nothing serves, and RegistryError when `current` is broken.

    Reading the one-line pointer costs microseconds, so every call checks it; a new model is
    loaded and warmed before it replaces the old one, so requests never see a half-loaded model.
    """

    def __init__(self, model_dir: Path) -> None:
        self.registry = ModelRegistry(model_dir)
        self._lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._pointer_state: tuple[int, int] | None = None

    def get(self) -> Classifier:
        """Return the serving classifier, loading or reloading it if `current` changed."""
        state = self._read_pointer_state()
        classifier = self._classifier
        if classifier is not None and state == self._pointer_state:
            return classifier
        with self._lock:
            if self._classifier is None or state != self._pointer_state:
                self._classifier = self._load()
                self._pointer_state = state
            return self._classifier

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Classify with the serving model."""
        return self.get().predict_proba(images)

    @property
    def version(self) -> str | None:
        """The loaded version's name (None before the first load)."""
        return None if self._classifier is None else self._classifier.version

    def _read_pointer_state(self) -> tuple[int, int] | None:
        try:
            stat = (self.registry.root / CURRENT_POINTER).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def _load(self) -> Classifier:
        # A broken pointer raises RegistryError: it is no "no model yet", and must not read as one.
        version = self.registry.current_version()
        if version is None:
            raise NoModelError(
                f"No model is serving yet in {self.registry.root}. "
                "Train one with `python -m mnist_engine train` (or `make train`)."
            )
        if self._classifier is not None and self._classifier.version == version:
            return self._classifier
        logger.info("Loading model %s", version)
        return Classifier.load(self.registry.path(version))
