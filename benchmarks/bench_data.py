"""Generation speed of the bundled datasets on one core.

Run: .venv/bin/python benchmarks/bench_data.py
Prints a table: dataset, size, images, seconds, images per second (best of 3).
"""

from __future__ import annotations

import os
import platform
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

os.environ.setdefault("OMP_NUM_THREADS", "1")  # NumPy on one core

import numpy as np  # noqa: E402

from gantools.data import shapes, toy2d  # noqa: E402


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    rows = []
    for size, n in [(16, 20_000), (32, 20_000), (64, 5_000)]:
        shapes.generate(64, image_size=size)  # warm-up
        t = best_of(lambda n=n, size=size: shapes.generate(n, image_size=size, seed=1))
        rows.append((f"shapes {size}x{size}", n, t))
    t = best_of(lambda: toy2d.sample("grid", 1_000_000, seed=1))
    rows.append(("grid points", 1_000_000, t))
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{'dataset':<16} {'items':>9} {'seconds':>9} {'items/s':>12}")
    for name, n, t in rows:
        print(f"{name:<16} {n:>9,} {t:>9.3f} {n / t:>12,.0f}")


if __name__ == "__main__":
    main()
