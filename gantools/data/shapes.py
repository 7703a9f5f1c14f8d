"""``shapes``: a procedural, labelled colour dataset rendered in NumPy.

Each image shows one shape of a known class on a dark background, with a random
colour, size, position and rotation. The shapes are drawn from signed distance
functions d(p) (negative inside, in pixels) with a one-pixel anti-aliased edge:

    alpha(p) = clip(0.5 - d(p), 0, 1)
    image(p) = (1 - alpha(p)) * background + alpha(p) * colour

Rendering is vectorized over a whole chunk of images of one class at a time, so a
single core produces well over 10,000 images of 32×32 per second
(``benchmarks/bench_data.py`` measures it).
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle", "plus", "ring")
TRAIN_SIZE = 20_000
TEST_SIZE = 2_000
# Fixed seeds of the two splits: the data are the same on every machine and in every
# call; `load(..., seed=...)` only changes the order and the `limit` subset.
_SPLIT_SEEDS = {"train": 20_240_101, "test": 20_240_102}
_CHUNK = 2048


def _sdf_circle(u, v, r):
    return np.sqrt(u * u + v * v) - r


def _sdf_square(u, v, r):
    return np.maximum(np.abs(u), np.abs(v)) - 0.8 * r


_TRI_NORMALS = [(np.cos(a), np.sin(a)) for a in np.deg2rad([90.0, 210.0, 330.0])]


def _sdf_triangle(u, v, r):
    # Equilateral triangle with circumradius r: the inradius is r / 2.
    d = None
    for nx, ny in _TRI_NORMALS:
        e = np.float32(nx) * u + np.float32(ny) * v
        d = e if d is None else np.maximum(d, e)
    return d - 0.5 * r


def _sdf_plus(u, v, r):
    au, av = np.abs(u), np.abs(v)
    arm = 0.3 * r
    return np.minimum(np.maximum(au - r, av - arm), np.maximum(au - arm, av - r))


def _sdf_ring(u, v, r):
    return np.abs(np.sqrt(u * u + v * v) - 0.7 * r) - 0.3 * r


_SDFS = (_sdf_circle, _sdf_square, _sdf_triangle, _sdf_plus, _sdf_ring)


def _hsv_to_rgb(h, s, v):
    """Vectorized HSV → RGB for arrays of shape (n,); returns (n, 3)."""
    k = (np.array([5.0, 3.0, 1.0], dtype=np.float32)[None, :] + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def generate(n: int, image_size: int = 32, seed: int = 0):
    """Render ``n`` labelled shape images.

    Returns ``(images, labels)``: images of shape (n, image_size, image_size, 3),
    float32 in [-1, 1]; labels int32 in ``range(len(CLASS_NAMES))``. The same
    ``(n, image_size, seed)`` always gives the same arrays.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive number of images, got {n!r}.")
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an integer, got {image_size!r}.")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}.")
    rng = np.random.default_rng(seed)
    s = float(image_size)
    f32 = np.float32
    labels = rng.integers(0, len(CLASS_NAMES), size=n).astype(np.int32)
    radius = rng.uniform(0.2 * s, 0.42 * s, size=n).astype(f32)
    cx = (rng.uniform(-1.0, 1.0, size=n) * (0.5 * s - radius) * 0.8 + 0.5 * s).astype(f32)
    cy = (rng.uniform(-1.0, 1.0, size=n) * (0.5 * s - radius) * 0.8 + 0.5 * s).astype(f32)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    cos, sin = np.cos(angle).astype(f32), np.sin(angle).astype(f32)
    fg = _hsv_to_rgb(
        rng.uniform(0, 1, n).astype(f32), rng.uniform(0.55, 1, n).astype(f32),
        rng.uniform(0.75, 1, n).astype(f32),
    )
    bg = _hsv_to_rgb(
        rng.uniform(0, 1, n).astype(f32), rng.uniform(0.0, 0.5, n).astype(f32),
        rng.uniform(0.0, 0.3, n).astype(f32),
    )
    images = render(labels, radius, cx, cy, cos, sin, fg, bg, image_size)
    return images, labels


def render(labels, radius, cx, cy, cos, sin, fg, bg, image_size):
    """Draw shapes from explicit parameters (all arrays of length n, float32).

    ``radius``: size in pixels (circumradius of the triangle, half-extent of the plus,
    outer radius of the ring; the square's half-side is 0.8·radius). ``cx, cy``: centre
    in pixel coordinates, pixel (row i, column j) having its centre at (j + ½, i + ½).
    ``cos, sin``: of the rotation angle. ``fg, bg``: (n, 3) colours in [0, 1].
    Returns (n, S, S, 3) float32 in [-1, 1].
    """
    f32 = np.float32
    n = len(labels)
    grid = np.arange(image_size, dtype=f32) + f32(0.5)
    out = np.empty((n, image_size, image_size, 3), dtype=f32)
    for k, sdf in enumerate(_SDFS):
        for idx in np.array_split(np.flatnonzero(labels == k), max(1, -(-n // _CHUNK))):
            if idx.size == 0:
                continue
            dx = grid[None, None, :] - cx[idx, None, None]  # (m, 1, S): x along columns
            dy = grid[None, :, None] - cy[idx, None, None]  # (m, S, 1): y along rows
            c, sn = cos[idx, None, None], sin[idx, None, None]
            u = c * dx + sn * dy
            v = c * dy - sn * dx
            alpha = np.clip(f32(0.5) - sdf(u, v, radius[idx, None, None]), 0.0, 1.0)
            alpha = alpha[..., None]
            b = bg[idx, None, None, :]
            out[idx] = b + alpha * (fg[idx, None, None, :] - b)
    out *= 2.0
    out -= 1.0
    return out


def split(name: str, image_size: int = 32):
    """The fixed ``train`` (20,000 images) or ``test`` (2,000 images) split."""
    size = TRAIN_SIZE if name == "train" else TEST_SIZE
    return generate(size, image_size=image_size, seed=_SPLIT_SEEDS[name])
