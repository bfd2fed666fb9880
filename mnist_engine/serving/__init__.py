"""Serving: the stored model that reads users' digits, fast and without TensorFlow.

- model_input: uint8 digits to the models' float input;
- backends: a LiteRT interpreter (TensorFlow-free), or the Keras model as a fallback;
- classifier: one loaded version, `predict_proba` on batches of digits;
- current_model: the registry's serving version, reloaded when the `current` pointer moves.
"""

from mnist_engine.serving.classifier import Classifier, NoModelError
from mnist_engine.serving.current_model import CurrentModel

__all__ = ["Classifier", "CurrentModel", "NoModelError"]
