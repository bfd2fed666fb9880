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

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from mnist_engine.imaging import ImageError  # noqa: E402
from mnist_engine.recognize import recognize  # noqa: E402
from mnist_engine.serving import CurrentModel  # noqa: E402
from mnist_engine.settings import get_settings  # noqa: E402

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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=Path("../shared/photos/dev"))
    arguments = parser.parse_args()
    labels_file = arguments.photos / "labels.tsv"
    if not labels_file.exists():
        raise SystemExit(f"{labels_file} not found: pass --photos with a folder holding labels.tsv")
    with labels_file.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["kind"] != "multi"]
    model = CurrentModel(get_settings().model_dir)
    print(f"Model {model.get().version}; {len(rows)} single-digit images (photos, drawings, scans)")
    print("| size (long side) | accuracy | bytes p50 | read time p50 | read time p99 |")
    print("|---|---:|---:|---:|---:|")
    originals = [(arguments.photos / row["file"]).read_bytes() for row in rows]
    for size in SIZES:
        correct, timings, byte_counts = 0, [], []
        for row, original in zip(rows, originals, strict=True):
            data = telegram_size(original, size)
            byte_counts.append(len(data))
            started = time.perf_counter()
            try:
                text = recognize(data, model).text
            except ImageError:
                text = ""
            timings.append((time.perf_counter() - started) * 1000)
            correct += text == row["label"]
        print(f"| {size} px | {correct / len(rows):.1%} | {np.median(byte_counts) / 1000:.0f} kB "
              f"| {np.percentile(timings, 50):.1f} ms | {np.percentile(timings, 99):.1f} ms |")


if __name__ == "__main__":
    main()
