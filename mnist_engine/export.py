"""Export a Keras model for the LiteRT serving path."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf


def export_tflite(model: keras.Model, path: Path) -> None:
    """Convert a Keras model to a LiteRT flatbuffer (float32, no quantisation: outputs match Keras)."""
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    Path(path).write_bytes(flatbuffer)
