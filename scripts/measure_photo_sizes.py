"""Which of Telegram's photo sizes should the bot download? Accuracy and time per size.

Telegram hands a bot each photo as JPEGs of about 90, 320, 800 and 1280 px on the long side.
This script re-encodes the development photos the same way and reads each size with the serving
model, printing accuracy and per-photo reading time (decode, preprocessing, classification).

    python scripts/measure_photo_sizes.py --photos ../shared/photos/dev
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageOps

from mnist_engine.photo import recognize
from mnist_engine.photo.decode import ImageError
from mnist_engine.serving import CurrentModel
from mnist_engine.settings import get_settings

SIZES = (320, 800, 1280)


def telegram_size(original: bytes, long_side: int) -> bytes:
    """Re-encode an image as Telegram does: EXIF applied and dropped, at most `long_side`, JPEG."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image)
    image = image.convert("RGB")
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=87)
    return buffer.getvalue()


def main() -> None:
    """Print accuracy and time per photo size."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=Path("../shared/photos/dev"))
    arguments = parser.parse_args()
    labels_file = arguments.photos / "labels.tsv"
    if not labels_file.exists():
        raise SystemExit(f"{labels_file} not found: pass --photos with a folder holding labels.tsv")
    with labels_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    model = CurrentModel(get_settings().model_dir)
    print(f"Model {model.get().version}; {len(rows)} images (photos, drawings, scans, numbers)")
    print(
        "| size (long side) | single digits | phone photos | numbers (exact) | photo kB p50 "
        "| read time p50 (photos) | read time p99 (photos) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    originals = [(arguments.photos / row["file"]).read_bytes() for row in rows]
    is_photo = [row["kind"] == "photo" for row in rows]
    for size in SIZES:
        right, timings, byte_counts = [], [], []
        for row, original, photo in zip(rows, originals, is_photo, strict=True):
            data = telegram_size(original, size)
            started = time.perf_counter()
            try:
                text = recognize(data, model).text
            except ImageError:
                text = ""
            if photo:
                timings.append((time.perf_counter() - started) * 1000)
                byte_counts.append(len(data))
            right.append(text == row["label"])
        photo_right = [ok for ok, photo in zip(right, is_photo, strict=True) if photo]
        single_right = [ok for ok, row in zip(right, rows, strict=True) if row["kind"] != "multi"]
        multi_right = [ok for ok, row in zip(right, rows, strict=True) if row["kind"] == "multi"]
        print(
            f"| {size} px | {np.mean(single_right):.1%} ({len(single_right)}) "
            f"| {np.mean(photo_right):.1%} ({len(photo_right)}) "
            f"| {np.mean(multi_right):.0%} ({len(multi_right)}) "
            f"| {np.median(byte_counts) / 1000:.0f} | {np.percentile(timings, 50):.1f} ms "
            f"| {np.percentile(timings, 99):.1f} ms |"
        )


if __name__ == "__main__":
    main()
