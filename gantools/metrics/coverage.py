"""Does the generator cover every mode (toy data) or every class (labelled images)?

2-D mixtures (the VEEGAN / PacGAN protocol): a generated point is **high quality** when
it lies within 3σ of some mode centre; a mode is **covered** when at least ``min_count``
high-quality points fall within 3σ of it. The mode histogram assigns every point to its
nearest centre; its KL divergence to the uniform distribution over modes is 0 when the
modes are hit equally often and log K when a single mode gets everything.

Labelled image sets: the bundled classifier labels each generated image; a class is
covered when at least ``min_count`` images land in it; the histogram's KL to uniform
measures imbalance. For a conditional generator, :func:`conditional_accuracy` is the
fraction of images the classifier assigns to the class that was requested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def kl_to_uniform(counts) -> float:
    """KL(p ‖ uniform) in nats for the histogram ``counts`` (0 log 0 = 0)."""
    counts = np.asarray(counts, np.float64)
    if counts.sum() <= 0:
        raise ValueError("the histogram is empty: no samples were counted.")
    p = counts / counts.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] * len(p))))


@dataclass(frozen=True)
class ModeCoverage:
    modes_covered: int
    num_modes: int
    high_quality: float  # fraction of points within 3σ of a mode centre
    kl_to_uniform: float  # of the nearest-mode histogram
    counts: np.ndarray  # high-quality points per mode

    def __str__(self):
        return (f"{self.modes_covered}/{self.num_modes} modes covered, "
                f"{100 * self.high_quality:.1f}% high-quality samples, "
                f"KL to uniform {self.kl_to_uniform:.3f}")


def mode_coverage(points, centres=None, sigma: float | None = None, *, mixture=None,
                  min_count: int = 1, num_sigmas: float = 3.0) -> ModeCoverage:
    """Mode coverage of 2-D samples; give ``mixture`` (e.g. ``gd.mixture("grid")``) or
    ``centres`` and ``sigma``."""
    if mixture is not None:
        centres, sigma = mixture.centres, mixture.sigma
    if centres is None or sigma is None:
        raise ValueError("give the mixture, or both centres and sigma.")
    p = np.asarray(points, np.float64)
    c = np.asarray(centres, np.float64)
    if p.ndim != 2 or p.shape[1] != c.shape[1]:
        raise ValueError(f"points must have shape (n, {c.shape[1]}), got {p.shape}.")
    if len(p) < 2:
        raise ValueError(f"need at least 2 points, got {len(p)}.")
    d = np.sqrt(((p[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    nearest = d.argmin(axis=1)
    near = d[np.arange(len(p)), nearest] <= num_sigmas * sigma
    hq_counts = np.bincount(nearest[near], minlength=len(c))
    return ModeCoverage(
        modes_covered=int(np.sum(hq_counts >= min_count)), num_modes=len(c),
        high_quality=float(near.mean()),
        kl_to_uniform=kl_to_uniform(np.bincount(nearest, minlength=len(c))),
        counts=hq_counts,
    )


@dataclass(frozen=True)
class ClassCoverage:
    classes_covered: int
    num_classes: int
    kl_to_uniform: float
    histogram: np.ndarray  # fraction of samples per class

    def __str__(self):
        return (f"{self.classes_covered}/{self.num_classes} classes covered, "
                f"KL to uniform {self.kl_to_uniform:.3f}")


def class_coverage(predicted_labels, num_classes: int, min_count: int = 1) -> ClassCoverage:
    """Coverage of predicted class labels (e.g. ``classifier.classify(samples)``)."""
    labels = np.asarray(predicted_labels).reshape(-1)
    if len(labels) < 2:
        raise ValueError(f"need at least 2 labels, got {len(labels)}.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, "
                         f"{labels.max()}].")
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
    return ClassCoverage(int(np.sum(counts >= min_count)), int(num_classes),
                         kl_to_uniform(counts), counts / counts.sum())


def conditional_accuracy(predicted_labels, requested_labels) -> float:
    """Fraction of generated images classified as the class they were asked for."""
    p = np.asarray(predicted_labels).reshape(-1)
    r = np.asarray(requested_labels).reshape(-1)
    if p.shape != r.shape:
        raise ValueError(f"{len(p)} predictions for {len(r)} requested labels.")
    return float(np.mean(p == r))
