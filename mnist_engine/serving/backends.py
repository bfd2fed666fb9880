"""The two ways to run a model on 28×28 digits: a LiteRT interpreter, or the Keras model itself.

`model.predict` costs tens of milliseconds per call because it builds a data pipeline each
time; serving instead uses a LiteRT interpreter on the exported `model.tflite` (well under a
millisecond per digit on a CPU) and falls back to a `tf.function` with a fixed input signature
when no flatbuffer is there. TensorFlow is imported only by that fallback.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np


class Backend(Protocol):
    """Something that maps float32 (N, 28, 28, 1) inputs to (N, 10) probabilities."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class LiteRTBackend:
    """A LiteRT interpreter sized for one image; a lock makes it safe to share between threads."""

    name = "litert"

    def __init__(self, flatbuffer_path: Path, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(flatbuffer_path), num_threads=num_threads)
        input_index = self._interpreter.get_input_details()[0]["index"]
        self._interpreter.resize_tensor_input(input_index, [1, 28, 28, 1])
        self._interpreter.allocate_tensors()
        self._input_index = input_index
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # One invoke per image: resizing the interpreter per batch size costs more than it saves
        # for the handful of digits in a photo.
        outputs = np.empty((len(batch), 10), dtype=np.float32)
        with self._lock:
            for index, image in enumerate(batch):
                self._interpreter.set_tensor(self._input_index, image[np.newaxis])
                self._interpreter.invoke()
                outputs[index] = self._interpreter.get_tensor(self._output_index)[0]
        return outputs


class TensorFlowBackend:
    """The Keras model behind a `tf.function` traced once for (None, 28, 28, 1) float32."""

    name = "tf.function"

    def __init__(self, keras_path: Path) -> None:
        import keras
        import tensorflow as tf

        model = keras.models.load_model(keras_path, compile=False)
        self._function = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._function(batch).numpy())
