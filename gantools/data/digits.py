"""``digits``: the 1,797 real handwritten digits that ship inside scikit-learn.

The originals are 8×8 with 17 grey levels (0–16), from the UCI "Optical Recognition
of Handwritten Digits" set. They are scaled to [0, 1], resized with bicubic
interpolation to 32×32 by default (a power of two, so a DCGAN can up-sample
4 → 8 → 16 → 32), clipped, and mapped to [-1, 1] (white digit on black).

The train/test split is fixed and stratified: 20 % of each class, chosen with a
fixed seed, is the test split (359 images); the other 1,438 are the train split.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import resize_images

DEFAULT_SIZE = 32
CLASS_NAMES = tuple(str(d) for d in range(10))
_SPLIT_SEED = 20_240_301
_TEST_FRACTION = 0.2


@functools.lru_cache(maxsize=1)
def _originals():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int32)


def split_indices(labels: np.ndarray):
    """Stratified fixed split: returns ``(train_index, test_index)``, each sorted."""
    rng = np.random.default_rng(_SPLIT_SEED)
    test = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        n_test = int(round(_TEST_FRACTION * len(members)))
        test.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


@functools.lru_cache(maxsize=8)
def split(which: str, image_size: int = DEFAULT_SIZE):
    """``(images (n, s, s, 1) float32 in [-1, 1], labels int32)`` of one split."""
    images, labels = _originals()
    train, test = split_indices(labels)
    index = train if which == "train" else test
    x = resize_images(images[index, :, :, None], image_size)
    x = np.clip(x, 0.0, 1.0) * 2.0 - 1.0
    x.setflags(write=False)
    y = labels[index]
    y.setflags(write=False)
    return x, y
