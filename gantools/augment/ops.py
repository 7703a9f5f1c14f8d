"""Image augmentations whose gradients are exact.

Every operation here is, for fixed parameters, an affine map of the images,
``A x + b``, computed with gathers, elementwise weights and reductions only. Automatic
differentiation of such a program yields exactly the transpose ``Aᵀ`` (a gather's gradient
is the scatter-add of the same indices), which the tests check with the adjoint identity
⟨A x, v⟩ = ⟨x, Aᵀ v⟩. Keras's ``RandomTranslation``, ``RandomRotation`` and ``RandomZoom``
run ``ImageProjectiveTransformV3``, whose registered gradient is an approximate inverse warp
(TensorFlow issue 127241): up to 100 % relative error. When the generator's gradient flows
through the augmentation of its fakes, as in ADA and DiffAugment, that error goes straight
into G's update.

Images are batches ``(B, H, W, C)`` in [−1, 1]; every parameter is per image (shape (B,)).
Geometric operations sample outside the image by reflection (``fill="reflect"``, as in
StyleGAN2-ADA, so no border shows where the image was moved) or with a constant.

>>> import numpy as np
>>> x = tf.constant(np.arange(4, dtype="float32").reshape(1, 1, 4, 1))
>>> translate_integer(x, [1], [0], fill="constant").numpy().ravel().tolist()
[0.0, 0.0, 1.0, 2.0]
>>> translate_integer(x, [1], [0]).numpy().ravel().tolist()  # reflected: no border
[1.0, 0.0, 1.0, 2.0]
"""

from __future__ import annotations

import tensorflow as tf

FILLS = ("reflect", "constant")


def _check_fill(fill):
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose 'reflect' or 'constant'.")


def _images(x):
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(f"augmentations take a batch of images (B, H, W, C), got shape "
                         f"{x.shape}.")
    if not x.dtype.is_floating:
        raise ValueError(f"images must be floating point in [-1, 1], got {x.dtype.name}.")
    return x


def _per_image(value, dtype, name):
    value = tf.convert_to_tensor(value, dtype=dtype)
    if value.shape.rank != 1:
        raise ValueError(f"{name} must have one value per image, shape (B,), got {value.shape}.")
    return value


def _reflect(index, n):
    """Indices mirrored into [0, n): ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ... (edge not doubled)."""
    if n == 1:
        return tf.zeros_like(index)
    period = 2 * (n - 1)
    index = tf.math.floormod(index, period)
    return tf.where(index >= n, period - index, index)


def _sample(x, rows, cols, fill, value=0.0):
    """x[b, rows, cols, :] for integer index maps (B, H', W'); outside the image reflected or
    ``value``. Linear in x but for the constant ``value`` (its gradient is a scatter-add)."""
    h, w = x.shape[1], x.shape[2]
    batch = tf.broadcast_to(tf.range(tf.shape(x)[0])[:, None, None], tf.shape(rows))
    if fill == "reflect":
        return tf.gather_nd(x, tf.stack([batch, _reflect(rows, h), _reflect(cols, w)], -1))
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    gathered = tf.gather_nd(x, tf.stack([batch, tf.clip_by_value(rows, 0, h - 1),
                                         tf.clip_by_value(cols, 0, w - 1)], -1))
    mask = tf.cast(inside, x.dtype)[..., None]
    return gathered * mask + value * (1.0 - mask)


def _grid(x, n=None):
    """Row and column indices of every pixel, shape (B, H, W) each."""
    h, w = x.shape[1], x.shape[2]
    n = tf.shape(x)[0] if n is None else n
    rows = tf.broadcast_to(tf.range(h)[None, :, None], tf.stack([n, h, w]))
    cols = tf.broadcast_to(tf.range(w)[None, None, :], tf.stack([n, h, w]))
    return rows, cols


def flip_left_right(x, flip):
    """Mirror the images whose ``flip`` is true (bool (B,))."""
    x = _images(x)
    flip = _per_image(flip, tf.bool, "flip")
    return tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)


def rotate90(x, k):
    """Rotate image b by ``k[b]`` quarter turns counter-clockwise (square images)."""
    x = _images(x)
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"90° rotations need square images, got {x.shape[1]}×{x.shape[2]}.")
    k = tf.math.floormod(_per_image(k, tf.int32, "k"), 4)
    out = x
    for turns in (1, 2, 3):
        out = tf.where((k == turns)[:, None, None, None], tf.image.rot90(x, turns), out)
    return out


def translate_integer(x, dx, dy, fill: str = "reflect", value: float = 0.0):
    """Move image b by ``dx[b]`` pixels right and ``dy[b]`` down (integers), by gathers."""
    _check_fill(fill)
    x = _images(x)
    dx = _per_image(dx, tf.int32, "dx")[:, None, None]
    dy = _per_image(dy, tf.int32, "dy")[:, None, None]
    rows, cols = _grid(x)
    return _sample(x, rows - dy, cols - dx, fill, value)


def affine(x, angle=None, scale=None, tx=None, ty=None, fill: str = "reflect",
           value: float = 0.0):
    """Rotate by ``angle`` (radians, counter-clockwise on screen), scale by ``scale`` about
    the centre, then move by (``tx``, ``ty``) pixels (fractions allowed), with bilinear
    sampling.

    Each output pixel p takes the input at T⁻¹(p) = R(−angle)(p − t)/scale, interpolated from
    its four neighbours with weights that depend on the parameters only: the warp is linear
    in the images, and its gradient is the exact transpose.
    """
    _check_fill(fill)
    x = _images(x)
    n = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]

    def param(v, default, name):
        if v is None:
            return tf.fill([n], tf.constant(default, x.dtype))
        return _per_image(v, x.dtype, name)

    angle, scale = param(angle, 0.0, "angle"), param(scale, 1.0, "scale")
    tx, ty = param(tx, 0.0, "tx"), param(ty, 0.0, "ty")
    rows, cols = _grid(x)
    # pixel centres relative to the image centre (y pointing down), minus the translation
    u = tf.cast(cols, x.dtype) + 0.5 - w / 2.0 - tx[:, None, None]
    v = tf.cast(rows, x.dtype) + 0.5 - h / 2.0 - ty[:, None, None]
    cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]
    s = scale[:, None, None]
    # with y down, a counter-clockwise turn on screen maps (u, v) to (cos u + sin v,
    # −sin u + cos v); the source of an output pixel is the inverse turn, divided by s
    src_u = (cos * u - sin * v) / s
    src_v = (sin * u + cos * v) / s
    col = src_u + w / 2.0 - 0.5
    row = src_v + h / 2.0 - 0.5
    col0, row0 = tf.floor(col), tf.floor(row)
    wc, wr = (col - col0)[..., None], (row - row0)[..., None]
    c0, r0 = tf.cast(col0, tf.int32), tf.cast(row0, tf.int32)
    return ((1 - wr) * (1 - wc) * _sample(x, r0, c0, fill, value)
            + (1 - wr) * wc * _sample(x, r0, c0 + 1, fill, value)
            + wr * (1 - wc) * _sample(x, r0 + 1, c0, fill, value)
            + wr * wc * _sample(x, r0 + 1, c0 + 1, fill, value))


def brightness(x, delta):
    """Add ``delta[b]`` to every pixel of image b."""
    x = _images(x)
    return x + _per_image(delta, x.dtype, "delta")[:, None, None, None]


def contrast(x, factor):
    """Scale image b's deviations from its mean by ``factor[b]``."""
    x = _images(x)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return mean + (x - mean) * _per_image(factor, x.dtype, "factor")[:, None, None, None]


def saturation(x, factor):
    """Scale each pixel's deviation from its grey value by ``factor[b]`` (identity for one
    channel)."""
    x = _images(x)
    factor = _per_image(factor, x.dtype, "factor")
    if x.shape[-1] == 1:
        return x
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    return grey + (x - grey) * factor[:, None, None, None]


def cutout(x, centre_row, centre_col, size):
    """Set a ``size`` × ``size`` square of image b centred at (``centre_row[b]``,
    ``centre_col[b]``) to 0 (mid-grey in [−1, 1]), as DiffAugment does."""
    x = _images(x)
    rows, cols = _grid(x)
    r = _per_image(centre_row, tf.int32, "centre_row")[:, None, None]
    c = _per_image(centre_col, tf.int32, "centre_col")[:, None, None]
    half = size // 2
    inside = (rows >= r - half) & (rows < r - half + size) & \
        (cols >= c - half) & (cols < c - half + size)
    return x * tf.cast(~inside, x.dtype)[..., None]
