"""Reading any folder of images (e.g. the LEGO bricks set) with Pillow.

Images are found recursively by extension, decoded, converted to RGB (``channels=3``)
or greyscale (``channels=1``), centre-cropped to a square and resized with a box
(area) filter when shrinking or bicubic when enlarging. With ``with_labels`` each
image's label is the name of its top-level sub-folder, classes numbered in sorted
order.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_TEST_FRACTION = 0.1
_SPLIT_SEED = 20_240_401


def list_images(path) -> tuple[Path, list[Path]]:
    root = Path(path).expanduser()
    if not root.exists():
        raise ValueError(f"image folder {str(root)!r} does not exist; pass a folder of images.")
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is a file, not a folder; pass the folder that holds it.")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    if not files:
        raise ValueError(
            f"no images found in {str(root)!r} (looked recursively for files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}); check the path."
        )
    return root, files


def _decode(path: Path, image_size: int, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        im = im.convert("RGB" if channels == 3 else "L")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        resample = Image.Resampling.BOX if side > image_size else Image.Resampling.BICUBIC
        im = im.resize((image_size, image_size), resample=resample)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def read_folder(path, image_size: int, channels: int, on_corrupt: str):
    """Decode every image: ``(uint8 (n, s, s, channels), labels or None, class names)``."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}.")
    if on_corrupt not in ("raise", "skip"):
        raise ValueError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}.")
    from PIL import UnidentifiedImageError

    root, files = list_images(path)
    images, kept, bad = [], [], []
    for f in files:
        try:
            images.append(_decode(f, image_size, channels))
            kept.append(f)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            bad.append((f, e))
    if bad:
        listing = "\n".join(f"  {p}: {type(e).__name__}: {e}" for p, e in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        message = f"{len(bad)} of {len(files)} image files could not be read:\n{listing}{more}"
        if on_corrupt == "raise" or not kept:
            raise ValueError(
                message + "\nDelete or replace these files, or pass on_corrupt='skip' to leave "
                "them out."
            )
        warnings.warn(message + "\nThey were left out (on_corrupt='skip').", stacklevel=3)
    parts = [f.relative_to(root).parts for f in kept]
    labels, classes = None, ()
    if all(len(p) > 1 for p in parts):
        classes = tuple(sorted({p[0] for p in parts}))
        labels = np.array([classes.index(p[0]) for p in parts], dtype=np.int32)
    return np.stack(images), labels, classes


def split_index(n: int, split: str) -> np.ndarray:
    """Fixed split of a folder: 10 % test chosen with a fixed seed; ``all`` is everything."""
    if split == "all":
        return np.arange(n)
    if n < 2:
        raise ValueError(
            f"an image folder with {n} image cannot be split into train and test; "
            "use split='all'."
        )
    order = np.random.default_rng(_SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(_TEST_FRACTION * n)))
    return np.sort(order[:n_test] if split == "test" else order[n_test:])
