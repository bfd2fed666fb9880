"""Versioned models on disk and a `current` pointer that switches atomically.

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

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

CURRENT_POINTER = "current"
MODEL_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
METADATA_FILE = "metadata.json"
PROMOTION_LOCK = ".promotion.lock"
_VERSION_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}(-[0-9]+)?-[a-z0-9-]+$")


class RegistryError(RuntimeError):
    """The model directory is missing something or holds something it should not."""


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
            metadata: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return metadata
        except (OSError, json.JSONDecodeError) as error:
            raise RegistryError(f"cannot read {path}: {error}") from error

    def current_metadata(self) -> dict[str, Any] | None:
        """Return the serving version's metadata, or None."""
        version = self.current_version()
        return None if version is None else self.metadata(version)

    @contextlib.contextmanager
    def new_version(self, architecture: str) -> Iterator[tuple[str, Path]]:
        """Yield a fresh version's name and a staging folder to write it into; publish it on exit.

        The folder is hidden until the block ends and is then renamed into place, so a crash
        never leaves a half-written version that looks complete; an error discards it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        version = self._new_version_name(architecture)
        staging = self.root / f".staging-{version}"
        staging.mkdir()
        try:
            yield version, staging
            if not (staging / METADATA_FILE).exists():
                raise RegistryError(f"version {version} was written without its {METADATA_FILE}")
            staging.rename(self.root / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @contextlib.contextmanager
    def promotion_lock(self) -> Iterator[None]:
        """Hold the registry's lock, so that reading `current`, comparing and switching is one step.

        A file lock: it holds across the processes (and machines sharing the folder) that promote.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / PROMOTION_LOCK):
            yield

    def set_current(self, version: str) -> None:
        """Point `current` at a version: write a temporary file, then os.replace (atomic)."""
        if not (self.path(version) / METADATA_FILE).exists():
            raise RegistryError(f"cannot serve {version!r}: no such complete version in {self.root}")
        temporary = self.root / f".{CURRENT_POINTER}.tmp"
        temporary.write_text(version + "\n", encoding="utf-8")
        os.replace(temporary, self.root / CURRENT_POINTER)

    def _new_version_name(self, architecture: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^a-z0-9-]+", "-", architecture.lower()).strip("-") or "model"
        name, counter = f"{stamp}-{slug}", 1
        while (self.root / name).exists() or (self.root / f".staging-{name}").exists():
            counter += 1
            name = f"{stamp}-{counter}-{slug}"
        return name
