"""Training: MNIST, the architectures, Keras callbacks, evaluation, pictures, storing and promoting.

- dataset: verified MNIST, offline;
- architectures: the named networks; augmentation: the training-time image changes;
- callbacks: progress events and cancellation; train: one run with Keras callbacks;
- evaluation: accuracy, loss, per-class, confusion; plots: a run's pictures; export: LiteRT;
- promotion: whether a new version should serve; store: train, save a version, promote it.

Importing this package loads no TensorFlow; its modules that need it import it themselves.
"""
