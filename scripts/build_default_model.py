"""Build the model shipped in mnist_engine/default_model/: the first-run default, as a first start trains it.

    python scripts/build_default_model.py            # about 6 minutes on 2 cores (plus the photo crops, once)

It runs `train_and_store` with the first-run default's configuration (`small-cnn`, its 10
epochs, seed 42, MNIST and the default 30,000 pipeline crops, a temperature fitted on held-out
crops) into a scratch registry, then copies the version into the package: the Keras model
without its optimizer's state (the serving and fine-tuning need only the weights), the LiteRT
file, the metadata and the pictures. TensorFlow's CPU kernels are not bit-for-bit deterministic,
so a rebuild gives a model of the same accuracy, not the same bytes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mnist_engine.registry import METADATA_FILE, MODEL_FILE, TFLITE_FILE
from mnist_engine.settings import get_settings
from mnist_engine.shipped_model import SHIPPED_MODEL_DIR

SHIPPED_FILES = (MODEL_FILE, TFLITE_FILE, METADATA_FILE, "curves.png", "confusion.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Train, then replace the shipped model's files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--from-version", type=Path, help="ship this already trained version folder instead of training"
    )
    arguments = parser.parse_args(argv)

    import keras

    from mnist_engine.training.store import train_and_store
    from mnist_engine.training.train import TrainingConfig

    with tempfile.TemporaryDirectory() as scratch:
        version_dir = arguments.from_version
        if version_dir is None:
            outcome = train_and_store(get_settings().data_dir, Path(scratch), TrainingConfig(), promote=False)
            version_dir = Path(scratch) / str(outcome.version)
        SHIPPED_MODEL_DIR.mkdir(exist_ok=True)
        for name in SHIPPED_FILES:
            if name != MODEL_FILE:
                shutil.copy2(version_dir / name, SHIPPED_MODEL_DIR / name)
        # Loaded without compiling, the model is saved without the optimizer's state: a third the size.
        keras.models.load_model(version_dir / MODEL_FILE, compile=False).save(SHIPPED_MODEL_DIR / MODEL_FILE)
    print(f"Shipped {version_dir.name} in {SHIPPED_MODEL_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
