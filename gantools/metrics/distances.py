"""KID and FID between two sets of feature vectors.

**KID** (Bińkowski et al., 2018) is the squared maximum mean discrepancy with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³, estimated without bias:

    MMD²ᵤ = 1/(m(m-1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(n(n-1)) Σ_{i≠j} k(yᵢ, yⱼ) - 2/(mn) Σ_{i,j} k(xᵢ, yⱼ)

We use the **block estimator** of TF-GAN: both sets are shuffled (seeded) and cut into
B nearly equal blocks of at most ``block_size`` vectors; KID is the mean of the B
block estimates and its standard error is their standard deviation / √B. Why blocks
rather than StyleGAN2-ADA's 100 random subsets of 1,000: every vector is used exactly
once, so the cost grows linearly with the number of samples (10 blocks of 1,000 for
10,000 features, instead of 100 subsets), and the blocks are independent, so the
standard error is an honest one (overlapping random subsets are correlated). KID is
unbiased, so it **can be negative** when the two distributions are close: report it
with its standard error rather than clipping it.

**FID** (Heusel et al., 2017) is the Fréchet distance between Gaussians fitted to the
features, computed in float64:

    FID = ‖μ₁ - μ₂‖² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁Σ₂)^½

The trace of the matrix square root is computed without forming it: with the Cholesky
factor Σ₁ = LLᵀ, the eigenvalues of Σ₁Σ₂ are those of the symmetric positive semi-
definite matrix LᵀΣ₂L, so tr (Σ₁Σ₂)^½ = Σᵢ √λᵢ(LᵀΣ₂L), a symmetric eigenvalue problem
(stable, and several times faster than a general matrix square root). When Σ₁ is
singular (fewer samples than dimensions, or dead features) the symmetric square root of
Σ₁ from its eigen-decomposition takes the place of L.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK = 2048


def check_features(features, name: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of feature vectors (samples, dimensions), got shape "
            f"{x.shape}; extract features from images first (gantools.metrics.extract)."
        )
    if len(x) < min_rows:
        raise ValueError(f"{name} has {len(x)} feature vector(s); at least {min_rows} are needed.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return x


def _check_pair(x, y):
    x = check_features(x, "real_features")
    y = check_features(y, "fake_features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {x.shape[1]} (real) vs {y.shape[1]} (fake); extract "
            "both sets with the same feature extractor."
        )
    return x, y


def polynomial_kernel(x, y) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³ for all pairs: (len(x), len(y)) float64."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    return (np.asarray(x @ y.T, np.float64) / x.shape[1] + 1.0) ** 3


def _kernel_sum(x, y, chunk: int) -> float:
    """Σ_{i,j} k(xᵢ, yⱼ), accumulated in float64 over row chunks of x."""
    return float(sum(polynomial_kernel(x[s:s + chunk], y).sum() for s in range(0, len(x), chunk)))


def _kernel_diag_sum(x) -> float:
    sq = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
    return float(((sq / x.shape[1] + 1.0) ** 3).sum())


ESTIMATORS = ("unbiased", "u-statistic")


def mmd2_unbiased(x, y, chunk: int = _CHUNK, estimator: str = "unbiased") -> float:
    """MMD² with the cubic polynomial kernel, without bias.

    ``estimator="unbiased"`` (KID's, for independent sets; sizes may differ) averages the
    cross term over all m·n pairs. ``"u-statistic"`` pairs xᵢ with yᵢ (equal sizes) and
    leaves the m pairs i = j out of the cross term too; it is exactly 0 for two
    identical sets, while the unbiased estimate of a set against itself is negative.
    """
    x, y = _check_pair(x, y)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}.")
    x, y = x.astype(np.float32), y.astype(np.float32)
    m, n = len(x), len(y)
    k_xx = (_kernel_sum(x, x, chunk) - _kernel_diag_sum(x)) / (m * (m - 1))
    k_yy = (_kernel_sum(y, y, chunk) - _kernel_diag_sum(y)) / (n * (n - 1))
    if estimator == "unbiased":
        k_xy = _kernel_sum(x, y, chunk) / (m * n)
    else:
        if m != n:
            raise ValueError(f"the u-statistic needs equal numbers of vectors, got {m} and {n}.")
        paired = np.einsum("ij,ij->i", x.astype(np.float64), y.astype(np.float64))
        k_xy = (_kernel_sum(x, y, chunk) - float(((paired / x.shape[1] + 1.0) ** 3).sum())) / (
            m * (m - 1))
    return k_xx + k_yy - 2.0 * k_xy


@dataclass(frozen=True)
class KID:
    """A KID estimate: ``value`` ± ``std_error`` over ``num_blocks`` blocks."""

    value: float
    std_error: float
    num_blocks: int

    def __str__(self):
        return f"KID = {self.value:.5f} ± {self.std_error:.5f} ({self.num_blocks} blocks)"

    def __float__(self):
        return float(self.value)


def kid(real_features, fake_features, block_size: int = 1000, seed: int = 0,
        chunk: int = _CHUNK, estimator: str = "unbiased") -> KID:
    """KID with the block estimator (see the module docstring).

    The number of blocks is ⌈max(m, n) / block_size⌉, but at least 2 so that there is a
    spread to measure, and at most min(m, n) // 2 so that every block holds at least two
    vectors of each set. Only when a set has fewer than 4 vectors is there a single block,
    and then the standard error is NaN.
    """
    x, y = _check_pair(real_features, fake_features)
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}.")
    wanted = max(2, -(-max(len(x), len(y)) // block_size))
    blocks = max(1, min(wanted, min(len(x), len(y)) // 2))
    rng = np.random.default_rng(seed)
    xs = np.array_split(x[rng.permutation(len(x))], blocks)
    ys = np.array_split(y[rng.permutation(len(y))], blocks)
    estimates = np.array([mmd2_unbiased(a, b, chunk, estimator)
                          for a, b in zip(xs, ys, strict=True)])
    err = float(estimates.std(ddof=1) / np.sqrt(blocks)) if blocks > 1 else float("nan")
    return KID(float(estimates.mean()), err, blocks)


@dataclass(frozen=True)
class Gaussian:
    """Mean and covariance (float64) of a feature set, for FID."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def fit_gaussian(features) -> Gaussian:
    """μ and Σ (unbiased, float64) of a feature set; compute once for a fixed real set."""
    x = check_features(features, "features").astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    cov = x.T @ x / (len(x) - 1)
    return Gaussian(mean, cov, len(x))


def _psd_sqrt(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(cov1, cov2) -> float:
    """tr (Σ₁Σ₂)^½ via the eigenvalues of the symmetric matrix LᵀΣ₂L (Σ₁ = LLᵀ)."""
    import scipy.linalg as sl

    try:
        factor = sl.cholesky(cov1, lower=True, check_finite=False)
        # LᵀΣ₂L with two triangular products (half the work of general ones)
        m = sl.blas.dtrmm(1.0, factor, sl.blas.dtrmm(1.0, factor, cov2, side=1, lower=1),
                          side=0, lower=1, trans_a=1)
    except np.linalg.LinAlgError:
        factor = _psd_sqrt(cov1)  # singular Σ₁: its symmetric square root S, then SΣ₂S
        m = factor @ cov2 @ factor
    eigenvalues = sl.eigh((m + m.T) / 2.0, eigvals_only=True, driver="evd", check_finite=False)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def fid_from_gaussians(a: Gaussian, b: Gaussian) -> float:
    if a.mean.shape != b.mean.shape:
        raise ValueError(
            f"feature dimensions differ: {a.mean.shape[0]} vs {b.mean.shape[0]}; use the same "
            "feature extractor for both sets."
        )
    diff = a.mean - b.mean
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov)
                 - 2.0 * trace_sqrt_product(a.cov, b.cov))


def fid(real_features, fake_features) -> float:
    """FID between two feature sets (float64). Pass a :class:`Gaussian` to reuse one set's
    statistics."""
    a = real_features if isinstance(real_features, Gaussian) else None
    b = fake_features if isinstance(fake_features, Gaussian) else None
    if a is None or b is None:
        if a is None and b is None:
            _check_pair(real_features, fake_features)
        a = a or fit_gaussian(real_features)
        b = b or fit_gaussian(fake_features)
    return fid_from_gaussians(a, b)
