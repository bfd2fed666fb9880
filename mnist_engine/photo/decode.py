"""Safe decoding of image bytes from users: any common format in, an upright RGB or L image out.

Telegram sends photos as JPEGs without EXIF, but images sent as files keep their format,
size and EXIF orientation, so everything Pillow reads safely is accepted, and every way
decoding can fail ends in one `ImageError` whose message can be shown to the user.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's JPEG reader also opens MPO, the JPEGs of phones that embed a second, preview frame.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000
FORMAT_NAMES = {"MPO": "JPEG", "WEBP": "WebP"}

# EXIF orientations 5 to 8 turn the image by a quarter, swapping width and height.
_QUARTER_TURNS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
# Pillow raises these for damaged data; none of them should reach the user as a traceback.
_DECODING_ERRORS = (OSError, SyntaxError, ValueError, IndexError, struct.error, EOFError)


class ImageError(ValueError):
    """The bytes are not an image the engine can read.

    The message explains it in English (the command line prints it); `kind` and `details` say the
    same as data, for a service that words it for its people itself.
    """

    def __init__(self, message: str, kind: str, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details

    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str], dict[str, Any]]:
        # Raised in reading processes: it must cross back to the service by pickle, keyword details too.
        return (type(self), (str(self), self.kind), self.__dict__)


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, target_long_side: int | None = 1600
) -> Image.Image:
    """Return the image in `data` upright (EXIF applied), as RGB or L, transparency on white.

    Images whose long side exceeds `target_long_side` are reduced to it (JPEGs while decoding,
    which is several times faster); `None` keeps the full size.
    """
    image, _ = decode_image_and_size(data, max_pixels=max_pixels, target_long_side=target_long_side)
    return image


def decode_image_and_size(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    target_long_side: int | None = 1600,
    target_pixels: int | None = None,
    exact: bool = True,
    grayscale: bool = False,
) -> tuple[Image.Image, tuple[int, int]]:
    """Like `decode_image`, also returning the (width, height) of the upright full-size original.

    `target_pixels` also limits the reduced image's area (a long strip of digits keeps its
    height). With `exact=False` a JPEG is left at the size it decodes to (up to twice the
    target) for callers that resize it anyway; `grayscale=True` returns L, which JPEGs decode faster.
    """
    if not data:
        raise ImageError("This file is empty, so there is no image to read.", "empty")
    if target_long_side is not None and target_long_side < 1:
        raise ValueError(f"target_long_side must be positive or None, got {target_long_side}")
    if target_pixels is not None and target_pixels < 1:
        raise ValueError(f"target_pixels must be positive or None, got {target_pixels}")
    try:
        return _decode(data, max_pixels, target_long_side, target_pixels, exact, grayscale)
    except MemoryError as error:  # a decoder's own allocation failed: the image is too large, not damaged
        raise ImageError("This image is too large for me to read safely.", "too_large") from error


def _decode(
    data: bytes,
    max_pixels: int,
    target_long_side: int | None,
    target_pixels: int | None,
    exact: bool,
    grayscale: bool,
) -> tuple[Image.Image, tuple[int, int]]:
    image = _open(data, max_pixels)
    width, height = image.size
    if target_pixels is not None and width * height > target_pixels:
        within_area = math.ceil(max(width, height) * math.sqrt(target_pixels / (width * height)))
        target_long_side = min(target_long_side or within_area, within_area)
    orientation = _orientation(image)
    original_size = (height, width) if orientation in _QUARTER_TURNS else (width, height)
    image_format = FORMAT_NAMES.get(image.format or "", image.format or "image")

    if image.format in ("JPEG", "MPO"):
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: ask for the smallest that stays >= target,
        # and for gray it skips the colour planes altogether.
        mode = "L" if grayscale and image.mode in ("L", "RGB") else image.mode
        ratio = 1.0 if target_long_side is None else min(1.0, target_long_side / max(width, height))
        image.draft(mode, (math.ceil(width * ratio), math.ceil(height * ratio)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            image = _to_rgb_or_l(image)
            image = ImageOps.exif_transpose(image) if orientation > 1 else image
    except Image.DecompressionBombError as error:
        raise ImageError("This image is too large for me to read safely.", "too_large") from error
    except _DECODING_ERRORS as error:
        reason = "truncated" if "truncated" in str(error).lower() else "damaged"
        raise ImageError(
            f"This file is not an image I can read ({reason} {image_format}).", reason, format=image_format
        ) from error

    if grayscale and image.mode != "L":
        image = image.convert("L")
    if exact and target_long_side is not None and max(image.size) > target_long_side:
        image = _shrink(image, target_long_side)
    return image, original_size


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (read the header only) and refuse what is not an accepted format or is too large."""
    try:
        with warnings.catch_warnings():
            # The pixel limit is checked below with the caller's max_pixels, not Pillow's global one.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as error:
        message = (
            "This file is not an image I can read. Send a photo, or a JPEG, PNG, WebP, GIF, BMP or TIFF file."
        )
        raise ImageError(message, "not_an_image") from error
    except Image.DecompressionBombError as error:
        raise ImageError("This image is too large for me to read safely.", "too_large") from error
    except _DECODING_ERRORS as error:
        raise ImageError(
            "This file is not an image I can read (damaged header).", "damaged", format="header"
        ) from error
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("This image is empty (it has no pixels).", "empty")
    if width * height > max_pixels:
        megapixels = width * height / 1e6
        raise ImageError(
            f"This image is too large ({megapixels:.0f} megapixels); send one of at most "
            f"{max_pixels / 1e6:.0f} megapixels, such as an ordinary photo.",
            "too_many_pixels",
            megapixels=megapixels,
            limit=max_pixels / 1e6,
        )
    return image


def _orientation(image: Image.Image) -> int:
    """Return the EXIF orientation (1 to 8), 1 where it is absent or nonsense."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODING_ERRORS:
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _to_rgb_or_l(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB or L, compositing transparency onto white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _stretch_to_l(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return _composite(image.convert("RGBA"))
    if image.mode == "P":
        return image.convert("RGB")
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("L" if image.mode == "1" else "RGB")


def _composite(rgba: Image.Image) -> Image.Image:
    """Flatten RGBA onto white; ink drawn in white on a transparent canvas goes onto black instead."""
    on_white = Image.new("RGBA", rgba.size, "white")
    on_white.alpha_composite(rgba)
    flattened = on_white.convert("RGB")
    alpha = np.asarray(rgba.getchannel("A"))
    if np.ptp(np.asarray(flattened.convert("L"))) < 16 and np.ptp(alpha) >= 64:
        # Everything visible is white: the drawing lives in the alpha channel alone.
        on_black = Image.new("RGBA", rgba.size, "black")
        on_black.alpha_composite(rgba)
        flattened = on_black.convert("RGB")
    return flattened


def _stretch_to_l(image: Image.Image) -> Image.Image:
    """Map 16-bit or float pixels onto 0..255 by their own range (Pillow would clip them)."""
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = (np.nan_to_num(values, nan=low) - low) / max(high - low, 1e-12) * 255
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")


def _shrink(image: Image.Image, long_side: int) -> Image.Image:
    """Return `image` resized so that its long side is `long_side`, averaging pixels (no aliasing)."""
    width, height = image.size
    ratio = long_side / max(width, height)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    return image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
