"""Speed of KID, FID and the feature extractors on this machine.

Run: .venv/bin/python benchmarks/bench_metrics.py

KID and FID on 10,000 × 10,000 feature vectors of dimension 2048 (non-negative, like
InceptionV3's pooled features), best of 3; then images per second of each extractor
(InceptionV3 with random weights: the arithmetic is the same as with ImageNet weights).
"""

from __future__ import annotations

import os
import platform
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.data as gd  # noqa: E402
import gantools.metrics as gm  # noqa: E402


def best_of(fn, repeats=3):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main():
    print(f"# {platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
          f"NumPy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((10_000, 2048))).astype(np.float32)
    y = (np.abs(rng.standard_normal((10_000, 2048))) * 1.05).astype(np.float32)
    print(f"{'metric':<40} {'seconds':>8}  value")
    t, k = best_of(lambda: gm.kid(x, y))
    print(f"{'KID, 10k × 10k × 2048 (10 blocks)':<40} {t:>8.2f}  {k}")
    t, f = best_of(lambda: gm.fid(x, y))
    print(f"{'FID, 10k × 10k × 2048 (float64)':<40} {t:>8.2f}  {f:.4f}")
    print()
    digits, _ = gd.arrays("digits", "test")
    shapes, _ = gd.arrays("shapes", "test", limit=1000)
    cases = [
        ("digits classifier (32 px)", gm.classifier_features("digits"), digits, 359),
        ("shapes classifier (32 px)", gm.classifier_features("shapes"), shapes, 1000),
        ("InceptionV3 at 75 px", gm.inception_v3(75, weights=None), shapes, 512),
        ("InceptionV3 at 299 px", gm.inception_v3(299, weights=None, batch_size=32),
         shapes, 64),
    ]
    print(f"{'extractor':<40} {'images/s':>8}")
    for name, extractor, images, n in cases:
        extractor(images[: min(n, 64)])  # trace and warm up
        t, _ = best_of(lambda e=extractor, i=images, n=n: e(i[:n]), repeats=2)
        print(f"{name:<40} {n / t:>8.0f}")


if __name__ == "__main__":
    main()
