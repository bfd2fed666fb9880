"""The model shipped with the code, so that a fresh install reads digits at once.

Without it a first start could read nothing until its first training run ended (minutes on a
CPU). `python scripts/build_default_model.py` trains the first-run default exactly as a first
start would (`small-cnn` on MNIST and the pipeline crops, 10 epochs, seed 42, calibrated) and
stores it in `mnist_engine/default_model/` with its metadata and pictures. On a first start the
service copies it into the empty registry as the first version and serves it; from then on the
scheduled retraining fine-tunes it, and the promotion rule judges every candidate against it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mnist_engine.registry import METADATA_FILE, ModelRegistry

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def install_shipped_model(registry: ModelRegistry, shipped: Path = SHIPPED_MODEL_DIR) -> str | None:
    """Copy the shipped model into a registry that serves nothing yet and serve it.

    Returns the new version's name; None when a model already serves or none is shipped.
    """
    metadata_path = shipped / METADATA_FILE
    if not metadata_path.exists():
        return None
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    # Under the promotion lock: two instances starting together install it once.
    with registry.promotion_lock():
        if registry.current_version() is not None:
            return None
        with registry.new_version(str(metadata["architecture"])) as (version, folder):
            for source in shipped.iterdir():
                if source.is_file() and source.name != METADATA_FILE:
                    shutil.copy2(source, folder / source.name)
            installed = {**metadata, "version": version, "shipped_as": metadata["version"]}
            (folder / METADATA_FILE).write_text(json.dumps(installed, indent=2), encoding="utf-8")
        registry.set_current(version)
    return version
