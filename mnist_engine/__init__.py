"""Train, evaluate, store and serve the handwritten-digit classifier.

The package knows nothing of the database or of Telegram: the bot wires them together.
Heavy modules (TensorFlow) are imported lazily by the modules that need them, so that
`import mnist_engine` stays cheap.
"""

__version__ = "0.1.0"
