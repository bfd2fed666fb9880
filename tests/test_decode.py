"""Safe decoding: every accepted format, EXIF rotation, transparency, limits and damaged files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_engine.photo.decode import ImageError, decode_image, decode_image_and_size


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def marked_image(width: int = 60, height: int = 40) -> Image.Image:
    """A grey image with a black square in its top-left corner, to see where the corner went."""
    pixels = np.full((height, width, 3), 200, dtype=np.uint8)
    pixels[:10, :10] = 0
    return Image.fromarray(pixels)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_accepted_format_decodes_to_rgb_or_gray_of_the_same_size(image_format: str) -> None:
    image = decode_image(encode(marked_image(), image_format))

    assert image.mode in ("RGB", "L")
    assert image.size == (60, 40)
    assert np.asarray(image.convert("L"))[:8, :8].mean() < 60  # the mark is still top-left


def test_an_animated_gif_gives_its_first_frame() -> None:
    black, white = Image.new("L", (20, 20), 0), Image.new("L", (20, 20), 255)
    data = encode(black, "GIF", save_all=True, append_images=[white])

    assert np.asarray(decode_image(data).convert("L")).max() < 20


def test_exif_orientation_is_applied_and_the_original_size_is_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the viewer turns it 90 degrees clockwise
    data = encode(marked_image(60, 40), "JPEG", exif=exif.tobytes())

    image, original_size = decode_image_and_size(data)

    assert image.size == (40, 60) and original_size == (40, 60)
    gray = np.asarray(image.convert("L"))
    assert gray[:8, -8:].mean() < 60  # the top-left corner went to the top-right
    assert gray[:8, :8].mean() > 150


def test_transparency_is_composited_onto_white() -> None:
    rgba = np.zeros((30, 30, 4), dtype=np.uint8)  # transparent black everywhere...
    rgba[10:20, 10:20, 3] = 255  # ...but an opaque black square
    image = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))

    gray = np.asarray(image.convert("L"))
    assert gray[0, 0] == 255 and gray[15, 15] == 0


def test_white_ink_on_a_transparent_canvas_stays_visible() -> None:
    rgba = np.full((30, 30, 4), 255, dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[10:20, 10:20, 3] = 255  # white drawing whose only trace is the alpha channel
    image = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))

    gray = np.asarray(image.convert("L"))
    assert gray[15, 15] > 200 and gray[0, 0] < 50


def test_sixteen_bit_scans_are_stretched_not_clipped() -> None:
    pixels = np.full((20, 20), 1000, dtype=np.uint16)
    pixels[5:15, 5:15] = 60000
    image = decode_image(encode(Image.fromarray(pixels), "PNG"))

    gray = np.asarray(image)
    assert image.mode == "L" and gray[0, 0] == 0 and gray[10, 10] == 255


def test_a_large_jpeg_is_reduced_while_decoding() -> None:
    data = encode(Image.new("RGB", (3000, 2000), "white"), "JPEG")

    exact, size = decode_image_and_size(data, target_long_side=640)
    drafted, _ = decode_image_and_size(data, target_long_side=640, exact=False, grayscale=True)

    assert size == (3000, 2000)
    assert max(exact.size) == 640
    assert 640 <= max(drafted.size) < 1280 and drafted.mode == "L"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header claiming the given size, followed by a few bytes of pixel data only."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    # The file holds almost no pixels: only refusing from the header can say "too large".
    with pytest.raises(ImageError, match="too large"):
        decode_image(png_claiming(50_000, 50_000))


def test_the_pixel_limit_is_the_callers() -> None:
    data = encode(Image.new("L", (100, 100)), "PNG")
    with pytest.raises(ImageError, match="too large"):
        decode_image(data, max_pixels=5_000)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_truncated_files_raise_one_clear_error(image_format: str) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), image_format)

    with pytest.raises(ImageError, match=rf"not an image I can read \(truncated {image_format}\)"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data", [b"", b"hello, world", b"\x89PNG\r\n\x1a\n" + b"0" * 64, b"%PDF-1.7\n" + b"x" * 100]
)
def test_bytes_that_are_not_an_image_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError) as raised:
        decode_image(data)
    assert "image" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_running_out_of_memory_while_decoding_is_too_large_not_damaged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def out_of_memory(self: Image.Image) -> None:
        raise MemoryError

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, "PNG")
    monkeypatch.setattr(Image.Image, "load", out_of_memory)
    with pytest.raises(ImageError, match="too large") as error:
        decode_image(buffer.getvalue())
    assert error.value.kind == "too_large"


def test_image_errors_cross_process_boundaries_whole() -> None:
    import pickle

    from mnist_engine.photo import TooManyDigitsError

    error = TooManyDigitsError("I found 30 shapes", "too_many_digits", found=30, limit=24)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.kind, copy.details) == (
        TooManyDigitsError,
        "I found 30 shapes",
        "too_many_digits",
        {"found": 30, "limit": 24},
    )
