"""The photo pipeline: a picture's bytes in, the digits it holds out. No TensorFlow here.

decode.py → ink.py (with ruled_lines.py) → segmentation.py → mnist_style.py → reading.py

- decode: any common image format, upright by its EXIF, size-checked before decoding;
- ink: the ink's polarity, the paper's lighting flattened, the ink thresholded;
- ruled_lines: the thin straight lines of ruled paper removed;
- segmentation: the ink cut into digits, in reading order;
- mnist_style: each digit rendered as MNIST renders its digits (20×20 box, centred by mass in 28×28);
- reading: all of the above, then a classifier, into a `Recognition`.
"""

from mnist_engine.photo.decode import ImageError
from mnist_engine.photo.reading import (
    MAX_DIGITS,
    DigitCrop,
    ProbabilityModel,
    ReadDigit,
    Recognition,
    TooManyDigitsError,
    classify_crops,
    digits_to_text,
    find_digit_crops,
    recognize,
)

__all__ = [
    "MAX_DIGITS",
    "DigitCrop",
    "ImageError",
    "ProbabilityModel",
    "ReadDigit",
    "Recognition",
    "TooManyDigitsError",
    "classify_crops",
    "digits_to_text",
    "find_digit_crops",
    "recognize",
]
