"""The input pipeline shared by every dataset, and the pixel-range helpers.

Every image dataset in the course is served as float32 in [-1, 1], the range of a
generator whose last layer is ``tanh``. Arrays arrive here either as ``uint8`` in
[0, 255] or as float32 already in [-1, 1]; :func:`make_dataset` converts, caches,
shuffles, batches and prefetches them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def to_unit(images):
    """Map images from [-1, 1] to [0, 1] for display: ``(x + 1) / 2``, clipped.

    Works on NumPy arrays and TensorFlow tensors and returns the same kind.

    >>> to_unit(np.array([-1.0, 0.0, 1.0]))
    array([0. , 0.5, 1. ])
    """
    if isinstance(images, tf.Tensor | tf.Variable):
        return tf.clip_by_value((images + 1.0) / 2.0, 0.0, 1.0)
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


def from_unit(images):
    """Map images from [0, 1] to [-1, 1]: ``2 x - 1``.

    >>> from_unit(np.array([0.0, 0.5, 1.0]))
    array([-1.,  0.,  1.])
    """
    if isinstance(images, tf.Tensor | tf.Variable):
        return images * 2.0 - 1.0
    return np.asarray(images) * 2.0 - 1.0


def to_uint8(images):
    """Map images from [-1, 1] to ``uint8`` in [0, 255] (rounded), e.g. to save a PNG."""
    return np.round(to_unit(np.asarray(images)) * 255.0).astype(np.uint8)


def uint8_to_signed(images):
    """``uint8`` [0, 255] → float32 [-1, 1]: ``x / 127.5 - 1``. Float input passes through."""
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.cast(images, tf.float32)


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """The indices of the fixed, seeded subset of ``limit`` items out of ``n``.

    The subset is the first ``limit`` entries of a seeded permutation, sorted, so the
    subset for a smaller ``limit`` is contained in the one for a larger ``limit``
    with the same seed.
    """
    if limit is None:
        return np.arange(n)
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    if limit <= 0:
        raise ValueError(f"limit must be a positive integer or None, got {limit}.")
    if limit > n:
        raise ValueError(
            f"limit={limit} is larger than the {n} examples in this split; "
            f"use limit <= {n} or limit=None for all of them."
        )
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    return int(batch_size)


def make_dataset(
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    batch_size: int,
    limit: int | None,
    with_labels: bool,
    seed: int,
    shuffle: bool,
    drop_remainder: bool,
    what: str,
) -> tf.data.Dataset:
    """Build the shuffled, batched, cached, prefetched ``tf.data`` pipeline.

    ``x`` holds images (``uint8`` or float32 in [-1, 1]) or 2-D points (float32);
    ``y`` the integer labels or ``None``. ``what`` names the data in error messages.
    """
    batch_size = check_batch_size(batch_size)
    if with_labels and y is None:
        raise ValueError(
            f"{what} has no labels; call it with with_labels=False "
            "(for an image folder, put each class in its own sub-folder)."
        )
    index = subset_indices(len(x), limit, seed)
    x = x[index]
    if drop_remainder and len(x) < batch_size:
        raise ValueError(
            f"{what} has only {len(x)} examples, fewer than batch_size={batch_size}, so "
            "drop_remainder=True would give no batch at all; lower batch_size, raise "
            "limit, or pass drop_remainder=False."
        )
    if with_labels:
        ds = tf.data.Dataset.from_tensor_slices((x, y[index].astype(np.int32)))
        ds = ds.map(lambda im, lab: (uint8_to_signed(im), lab))
    else:
        ds = tf.data.Dataset.from_tensor_slices(x).map(uint8_to_signed)
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a stack of images (N, H, W, C) to (N, size, size, C) as float32.

    Down-sampling uses area averaging (the right filter for shrinking, as in the
    data-efficient GAN example); up-sampling uses bicubic interpolation. Values keep
    the input's range (clip afterwards if the range matters).
    """
    h = images.shape[1]
    if h == size and images.shape[2] == size:
        return images.astype(np.float32)
    method = "area" if size < h else "bicubic"
    out = [
        tf.image.resize(images[i : i + 4096].astype(np.float32), (size, size), method=method)
        for i in range(0, len(images), 4096)
    ]
    return np.concatenate([o.numpy() for o in out], axis=0)


def check_image_size(image_size, default: int) -> int:
    if image_size is None:
        return default
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an integer number of pixels, got {image_size!r}.")
    if not 4 <= image_size <= 512:
        raise ValueError(f"image_size must be between 4 and 512 pixels, got {image_size}.")
    return int(image_size)
