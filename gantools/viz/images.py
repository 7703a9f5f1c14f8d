"""Pictures of generated images: grids, latent interpolations, nearest neighbours."""

from __future__ import annotations

import numpy as np


def as_unit(images) -> np.ndarray:
    """Images as float (n, h, w, c) in [0, 1].

    Input in [-1, 1] (any value below 0) is mapped with (x + 1) / 2; input already in
    [0, 1] is kept. A single image (h, w, c) or greyscale stack (n, h, w) is accepted.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3 and x.shape[-1] not in (1, 3):
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected images of shape (n, height, width, 1 or 3), got {np.shape(images)}."
        )
    if x.min(initial=0.0) < 0.0:
        x = (x + 1.0) / 2.0
    return np.clip(x, 0.0, 1.0)


def tile(images, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images into one (H, W, 3) array in [0, 1], ``ncols`` per row, padded in grey."""
    x = as_unit(images)
    n, h, w, c = x.shape
    if c == 1:
        x = np.repeat(x, 3, axis=-1)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 0.5, np.float32)
    for i in range(n):
        r, col = divmod(i, ncols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h,
            pad + col * (w + pad): pad + col * (w + pad) + w] = x[i]
    return out


def save_grid(images, path, ncols: int | None = None, scale: int = 2) -> None:
    """Save a tiled grid as a PNG, enlarged ``scale`` times with nearest-neighbour pixels."""
    from PIL import Image

    grid = np.round(tile(images, ncols) * 255).astype(np.uint8)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    img.save(path)


def image_grid(images, ncols: int | None = None, labels=None, class_names=None, title=None,
               figsize=None):
    """A matplotlib figure of images (in [-1, 1] or [0, 1], 1 or 3 channels).

    With ``labels`` each image gets its label (or ``class_names[label]``) as a title.
    """
    import matplotlib.pyplot as plt

    x = as_unit(images)
    n = len(x)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    if labels is None:
        # one tiled picture on one axes: drawing a figure of 64 small axes took over a
        # second on 2 cores, this takes a tenth of that (the live dashboard draws often)
        grid = tile(x, ncols)
        # about 50 image pixels per inch (a 32x32 image gets 0.64 in), at most 14 in wide
        inches = min(1 / 50, 14 / grid.shape[1])
        figsize = figsize or (grid.shape[1] * inches + 0.2,
                              grid.shape[0] * inches + (0.5 if title else 0.2))
        fig, ax = plt.subplots(figsize=figsize)
        ax.imshow(grid, vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        return fig
    figsize = figsize or (1.2 * ncols, 1.2 * nrows + (0.3 if title else 0))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = x[i, ..., 0] if x.shape[-1] == 1 else x[i]
        ax.imshow(img, cmap="gray" if x.shape[-1] == 1 else None, vmin=0, vmax=1,
                  interpolation="nearest")
        if labels is not None:
            lab = int(np.asarray(labels)[i])
            ax.set_title(class_names[lab] if class_names is not None else str(lab), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def interpolate_latents(z_start, z_end, steps: int = 9, spherical: bool = True) -> np.ndarray:
    """Points between two latent vectors: (steps, latent_dim).

    ``spherical`` uses slerp, which keeps the norm typical of a Gaussian z (a straight
    line passes through low-norm points that G rarely saw during training).
    """
    a = np.asarray(z_start, np.float64).reshape(-1)
    b = np.asarray(z_end, np.float64).reshape(-1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if not spherical or norms == 0:
        return ((1 - t) * a + t * b).astype(np.float32)
    cos = np.dot(a, b) / norms
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(
        np.float32)


def interpolation_strip(generator, z_start, z_end, steps: int = 9, labels=None,
                        spherical: bool = True) -> np.ndarray:
    """Generate the images along a latent interpolation (inference mode)."""
    import tensorflow as tf

    z = tf.constant(interpolate_latents(z_start, z_end, steps, spherical))
    if labels is not None:
        lab = tf.constant(np.broadcast_to(np.asarray(labels, np.int32), (steps,)))
        return generator([z, lab], training=False).numpy()
    return generator(z, training=False).numpy()


def nearest_neighbours(queries, references, k: int = 1, chunk: int = 2048):
    """Indices and Euclidean distances of the ``k`` nearest ``references`` of each query.

    Candidates come from the vectorized ‖a - b‖² = ‖a‖² + ‖b‖² - 2 a·b, in chunks of
    queries; the distances of the k chosen are then recomputed directly, so an exact copy
    of a training image has distance 0 (the expansion alone loses that to rounding).
    Returns ``(indices (n, k), distances (n, k))``, nearest first. Use it to check whether a
    generator memorized its training set.
    """
    q = np.asarray(queries, np.float32).reshape(len(queries), -1)
    r = np.asarray(references, np.float32).reshape(len(references), -1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values each but references have "
                         f"{r.shape[1]}; compare images of the same shape.")
    if not 1 <= k <= len(r):
        raise ValueError(f"k must be between 1 and the {len(r)} references, got {k}.")
    r_sq = np.sum(r.astype(np.float64) ** 2, axis=1)
    idx = np.empty((len(q), k), np.int64)
    dist = np.empty((len(q), k), np.float64)
    for s in range(0, len(q), chunk):
        block = q[s:s + chunk]
        d2 = np.sum(block.astype(np.float64) ** 2, 1)[:, None] + r_sq[None] - 2.0 * (
            block @ r.T)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        exact = np.linalg.norm(block[:, None, :].astype(np.float64) - r[part], axis=-1)
        order = exact.argsort(axis=1)
        idx[s:s + chunk] = np.take_along_axis(part, order, 1)
        dist[s:s + chunk] = np.take_along_axis(exact, order, 1)
    return idx, dist


def plot_nearest_neighbours(generated, train, n: int = 8, k: int = 3):
    """Each generated image (left column) beside its ``k`` nearest training images.

    The distance under each neighbour is :func:`nearest_neighbours`'s, on the images as
    given (for the course's data: pixels in [-1, 1]), so it matches the numbers that
    function prints; the images are only rescaled for display.
    """
    import matplotlib.pyplot as plt

    idx, dist = nearest_neighbours(np.asarray(generated)[:n], train, k=k)
    generated = as_unit(generated)[:n]
    train = as_unit(train)
    fig, axes = plt.subplots(len(generated), k + 1, figsize=(1.3 * (k + 1), 1.3 * len(generated)),
                             squeeze=False)
    for i in range(len(generated)):
        row = [generated[i]] + [train[j] for j in idx[i]]
        for j, (ax, img) in enumerate(zip(axes[i], row, strict=True)):
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                      cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j > 0:
                ax.set_xlabel(f"{dist[i, j - 1]:.1f}", fontsize=7)
        axes[i, 0].set_ylabel("generated", fontsize=7)
    axes[0, 0].set_title("sample", fontsize=8)
    for j in range(1, k + 1):
        axes[0, j].set_title(f"nearest #{j}", fontsize=8)
    fig.suptitle("Euclidean pixel distance under each neighbour", fontsize=8)
    fig.tight_layout()
    return fig
