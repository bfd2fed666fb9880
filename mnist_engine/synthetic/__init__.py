"""Synthetic photos of MNIST digits: a benchmark when rendered from the test digits, training
material when rendered from the training digits and cut out by the photo pipeline itself."""
