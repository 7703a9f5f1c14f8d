"""Curves of a training run and scatter plots of 2-D toy data."""

from __future__ import annotations

import numpy as np


def smooth(values, window: int) -> np.ndarray:
    """Trailing moving average (shorter at the start), ignoring NaN."""
    v = np.asarray(values, np.float64)
    if window <= 1 or len(v) == 0:
        return v
    ok = np.isfinite(v)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    count = n[idx] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (c[idx] - c[lo]) / count, np.nan)


def plot_history(history, smoothing: int | None = None, title: str | None = None):
    """Loss curves, D's accuracy on real and fake images, and gradient norms.

    Faint lines are per step, solid lines a moving average. Diagnostics raised during
    training appear as dotted vertical lines. The loss values alone say little about
    sample quality: look at the samples too.
    """
    import matplotlib.pyplot as plt

    steps = history["step"]
    smoothing = smoothing or max(1, len(steps) // 50)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = [
        (axes[0], [("d_loss", "D loss"), ("g_loss", "G loss")], "loss"),
        (axes[1], [("d_acc_real", "D accuracy, real"), ("d_acc_fake", "D accuracy, fake")],
         "accuracy"),
        (axes[2], [("d_grad_norm", "‖∇D‖"), ("g_grad_norm", "‖∇G‖")], "gradient norm"),
    ]
    for ax, series, ylabel in panels:
        for i, (key, label) in enumerate(series):
            colour = f"C{i}"
            ax.plot(steps, history[key], color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(steps, smooth(history[key], smoothing), color=colour, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        for event in getattr(history, "events", []):
            ax.axvline(event["step"], color="grey", linestyle=":", linewidth=1)
    axes[1].set_ylim(-0.05, 1.05)
    if np.any(np.asarray(history["penalty"]) != 0):
        twin = axes[0].twinx()
        twin.plot(steps, smooth(history["penalty"], smoothing), color="C2", label="penalty")
        twin.set_ylabel("penalty", color="C2")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def scatter_2d(points, real=None, centres=None, sigma: float | None = None, ax=None,
               title: str | None = None, limit: float | None = None):
    """Generated 2-D points (orange) over real ones (blue), with the mode centres.

    With ``sigma`` each centre gets a circle of radius 3σ: the "high quality" zone of
    the VEEGAN/PacGAN metrics.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    if real is not None:
        r = np.asarray(real)
        ax.scatter(r[:, 0], r[:, 1], s=2, alpha=0.3, color="C0", label="real")
    p = np.asarray(points)
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, color="C1", label="generated")
    if centres is not None:
        c = np.asarray(centres)
        ax.scatter(c[:, 0], c[:, 1], marker="x", color="k", s=20, label="mode centres")
        if sigma:
            for x, y in c:
                ax.add_patch(plt.Circle((x, y), 3 * sigma, fill=False, color="k", lw=0.5))
    if limit is None and centres is not None:
        limit = float(np.abs(np.asarray(centres)).max()) * 1.4
    if limit:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    return ax.figure


def plot_kid_bars(results, floor=None, title: str | None = None, ax=None):
    """KID ± 2 standard errors per configuration, as horizontal bars.

    ``results``: ``{label: {"kid": value, "kid_std": s.e.}, ...}`` (what
    :func:`gantools.metrics.evaluate` returns), or a list of such dicts per label (several
    seeds: each seed is a dot, the bar their mean). ``floor``: the real-vs-real result of
    :func:`gantools.metrics.real_floor`, drawn as a band: no generator can be told apart
    from the data once its bar reaches the band.
    """
    import matplotlib.pyplot as plt

    labels = list(results)
    if not labels:
        raise ValueError("results is empty: pass {label: evaluate(...) result}.")
    runs = {k: v if isinstance(v, list | tuple) else [v] for k, v in results.items()}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(labels) + 1.0))
    y = np.arange(len(labels))[::-1]
    for yi, label in zip(y, labels, strict=True):
        kids = np.array([r["kid"] for r in runs[label]], np.float64)
        errs = np.array([r["kid_std"] for r in runs[label]], np.float64)
        ax.barh(yi, kids.mean(), color="C0", alpha=0.6)
        offsets = np.linspace(-0.15, 0.15, len(kids)) if len(kids) > 1 else [0.0]
        ax.errorbar(kids, yi + np.asarray(offsets), xerr=2 * errs, fmt="o", color="k",
                    ms=3, capsize=2, lw=0.8)
    if floor is not None:
        lo, hi = floor["kid"] - 2 * floor["kid_std"], floor["kid"] + 2 * floor["kid_std"]
        ax.axvspan(lo, hi, color="C2", alpha=0.25, label="real vs real (floor) ± 2 s.e.")
        ax.legend(fontsize=7, loc="best")
    ax.axvline(0.0, color="grey", lw=0.5)
    ax.set_yticks(y, labels)
    ax.set_xlabel("KID (lower is better); dots: runs, whiskers: ± 2 s.e.")
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_critic_surface(critic, limit: float, points=None, real=None, ax=None,
                        resolution: int = 120, title: str | None = None):
    """The critic's (or discriminator's) value f(x) over the square [-limit, limit]², as
    filled contours, with generated ``points`` (orange) and ``real`` points (blue) on top.

    A WGAN critic's f is the potential whose gradient moves the generated points: they
    flow uphill, towards high values. ``critic`` is any callable on a (n, 2) float32
    array (a Keras model is called in inference mode).
    """
    import matplotlib.pyplot as plt

    if not limit > 0:
        raise ValueError(f"limit must be positive, got {limit!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ticks = np.linspace(-limit, limit, resolution, dtype=np.float32)
    xx, yy = np.meshgrid(ticks, ticks)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    try:
        values = critic(grid, training=False)
    except TypeError:  # a plain function without a training argument
        values = critic(grid)
    values = np.asarray(values, np.float64).reshape(resolution, resolution)
    filled = ax.contourf(xx, yy, values, levels=20, cmap="viridis")
    ax.figure.colorbar(filled, ax=ax, fraction=0.046, pad=0.04)
    if real is not None:
        r = np.asarray(real)
        ax.scatter(r[:, 0], r[:, 1], s=1, alpha=0.3, color="C0")
    if points is not None:
        p = np.asarray(points)
        ax.scatter(p[:, 0], p[:, 1], s=1, alpha=0.4, color="C1")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def plot_confusion(confusion, class_names=None, title: str | None = None, ax=None):
    """A confusion matrix (rows: requested or true class, columns: predicted), each row as
    fractions of its total, with the diagonal's percentages written in the cells."""
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, np.float64)
    k = counts.shape[0]
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(rows > 0, counts / rows, 0.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.42 * k + 1.6, 0.42 * k + 1.0))
    image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("requested class")
    for i in range(k):
        for j in range(k):
            if fractions[i, j] >= 0.05:
                ax.text(j, i, f"{100 * fractions[i, j]:.0f}", ha="center", va="center",
                        fontsize=6, color="white" if fractions[i, j] > 0.5 else "black")
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure
