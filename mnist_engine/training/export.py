"""Export a Keras model for the LiteRT serving path."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf


def export_tflite(model: keras.Model, path: Path) -> None:
    """Convert a Keras model to a LiteRT flatbuffer (float32, no quantisation: outputs match Keras)."""
    # Through a SavedModel exported quietly: `from_keras_model` does the same but prints the
    # export's summary to stdout, which would corrupt the CLI's JSON event stream.
    with tempfile.TemporaryDirectory() as saved_model_dir:
        model.export(saved_model_dir, format="tf_saved_model", verbose=False)
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
    Path(path).write_bytes(flatbuffer)
