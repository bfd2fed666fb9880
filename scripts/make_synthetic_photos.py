"""Write the synthetic photo set to a folder: MNIST test digits rendered as phone photos.

    python scripts/make_synthetic_photos.py --count 500 --seed 0 --out out/synthetic

The training digits are never used, so the set measures how a model copes with photos of
writing it has never seen. The same seed gives the same photos (mnist_engine.synthetic.photos).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mnist_engine.settings import get_settings
from mnist_engine.synthetic.photos import make_photo_set
from mnist_engine.training.dataset import load_mnist


def main(argv: Sequence[str] | None = None) -> int:
    """Write the photos and a labels.tsv (file, label) into the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multi-fraction", type=float, default=0.15, help="share of photos of 2-6 digits")
    parser.add_argument("--out", type=Path, default=Path("out") / "synthetic")
    parser.add_argument("--data-dir", type=Path, default=get_settings().data_dir)
    arguments = parser.parse_args(argv)

    mnist = load_mnist(arguments.data_dir)
    arguments.out.mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel"]
    photos = make_photo_set(
        mnist.x_test, mnist.y_test, arguments.count, arguments.seed, arguments.multi_fraction
    )
    for number, photo in enumerate(photos):
        name = f"synthetic-{number:05d}.jpg"
        (arguments.out / name).write_bytes(photo.data)
        rows.append(f"{name}\t{photo.label}")
    (arguments.out / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {arguments.count} photos and labels.tsv to {arguments.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
