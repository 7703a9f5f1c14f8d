"""2-D Gaussian mixtures used to watch GAN training dynamics and mode collapse.

``ring``: 8 Gaussians with means on a circle of radius 2 and σ = 0.02 (VEEGAN).
``grid``: 25 Gaussians with means on {-4, -2, 0, 2, 4}² and σ = 0.05 (VEEGAN,
PacGAN; WGAN-GP uses a similar grid). The label of a point is the index of the
mixture component it was drawn from.

A sample counts as *high quality* when it lies within 3σ of a mode centre (the
definition of the VEEGAN and PacGAN papers); the metrics module uses
:func:`mixture` for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_SIZE = 50_000
TEST_SIZE = 5_000
_SPLIT_SEEDS = {"train": 20_240_201, "test": 20_240_202}


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians in the plane."""

    name: str
    centres: np.ndarray  # (K, 2) float32
    sigma: float

    @property
    def num_modes(self) -> int:
        return len(self.centres)


def _ring() -> Mixture:
    angles = 2.0 * np.pi * np.arange(8) / 8
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return Mixture("ring", centres.astype(np.float32), 0.02)


def _grid() -> Mixture:
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    centres = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)
    return Mixture("grid", centres.astype(np.float32), 0.05)


MIXTURES = {"ring": _ring(), "grid": _grid()}


def mixture(name: str) -> Mixture:
    """The mode centres and σ of a toy set (``"ring"`` or ``"grid"``)."""
    if name not in MIXTURES:
        raise ValueError(f"unknown 2-D toy set {name!r}; choose one of {sorted(MIXTURES)}.")
    return MIXTURES[name]


def sample(name: str, n: int, seed: int = 0, sigma: float | None = None):
    """Draw ``n`` points: returns ``(points (n, 2) float32, component labels (n,) int32)``."""
    mix = mixture(name)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive number of points, got {n!r}.")
    sigma = mix.sigma if sigma is None else float(sigma)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, mix.num_modes, size=n).astype(np.int32)
    points = mix.centres[labels] + sigma * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels


def split(name: str, which: str):
    size = TRAIN_SIZE if which == "train" else TEST_SIZE
    return sample(name, size, seed=_SPLIT_SEEDS[which])
