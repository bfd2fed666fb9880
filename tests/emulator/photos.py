"""Images the way Telegram handles them: photo sizes as re-encoded JPEGs, plus sticker and GIF samples."""

import io
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .errors import BotApiError

# Telegram's photo sizes, by their long side: thumbnails "s", "m", "x" and the largest "y".
PHOTO_SIDES = (90, 320, 800, 1280)
JPEG_QUALITY = 87

# Limits for photos a bot sends (https://core.telegram.org/bots/api#sendphoto).
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES_SUM = 10_000
MAX_PHOTO_ASPECT_RATIO = 20


class ImageProcessingError(ValueError):
    """The bytes are not an image Pillow can read."""


@dataclass(frozen=True)
class JpegRendition:
    """One size of a photo: a freshly encoded JPEG with no metadata."""

    width: int
    height: int
    data: bytes = field(repr=False)


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes, raising ImageProcessingError for anything that is not an image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as error:
        raise ImageProcessingError(f"not a readable image: {error}") from error
    return image


def upright_rgb(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation and flatten transparency onto white, as Telegram's clients show it."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


@lru_cache(maxsize=64)
def photo_renditions(data: bytes) -> tuple[JpegRendition, ...]:
    """The sizes Telegram makes of a photo: smallest first, none larger than the original or 1280 px.

    Cached by content, so a benchmark that sends the same photo many times measures the bot,
    not the emulator's JPEG encoding.
    """
    original = upright_rgb(open_image(data))
    long_side = max(original.size)
    sides = [side for side in PHOTO_SIDES if side < long_side] + [min(long_side, PHOTO_SIDES[-1])]
    renditions = []
    source = original
    # Largest first, each size resized from the previous one: far faster than from a 12 MP original.
    for side in sorted(set(sides), reverse=True):
        source = _resized(original.size, source, side)
        renditions.append(JpegRendition(width=source.width, height=source.height, data=encode_jpeg(source)))
    return tuple(renditions[::-1])


def _resized(original_size: tuple[int, int], source: Image.Image, long_side: int) -> Image.Image:
    """`source` scaled so that the original's long side becomes `long_side`."""
    scale = long_side / max(original_size)
    size = (max(1, round(original_size[0] * scale)), max(1, round(original_size[1] * scale)))
    if size == source.size:
        return source
    return source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_jpeg(image: Image.Image) -> bytes:
    """JPEG bytes without EXIF or other metadata (Pillow writes none unless asked)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def check_sendable_photo(data: bytes) -> Image.Image:
    """Refuse a photo Telegram would refuse from a bot, with Telegram's error names."""
    if len(data) > MAX_PHOTO_BYTES:
        raise BotApiError.bad_request("PHOTO_SAVE_FILE_INVALID")
    try:
        image = open_image(data)
    except ImageProcessingError as error:
        raise BotApiError.bad_request("IMAGE_PROCESS_FAILED") from error
    width, height = image.size
    too_long = max(width, height) > MAX_PHOTO_ASPECT_RATIO * min(width, height)
    if width + height > MAX_PHOTO_SIDES_SUM or too_long:
        raise BotApiError.bad_request("PHOTO_INVALID_DIMENSIONS")
    return image


def sticker_webp(side: int = 512) -> bytes:
    """A plain WEBP sticker image, the format of Telegram's static stickers."""
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse(
        (side // 8, side // 8, side * 7 // 8, side * 7 // 8), fill=(250, 200, 0, 255)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP")
    return buffer.getvalue()


def animation_gif(width: int = 240, height: int = 160, frames: int = 4) -> bytes:
    """A small animated GIF: a square moving across the frame."""
    images = []
    for index in range(frames):
        frame = Image.new("RGB", (width, height), "white")
        left = index * (width - height // 2) // max(1, frames - 1)
        ImageDraw.Draw(frame).rectangle(
            (left, height // 4, left + height // 2, height * 3 // 4), fill="black"
        )
        images.append(frame)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()
