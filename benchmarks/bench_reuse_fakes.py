"""Training quality with fresh noise against ``reuse_fakes``, side by side.

Run: .venv/bin/python benchmarks/bench_reuse_fakes.py

For each seed, the same DCGAN (width 32, latent 64) trains on the bundled digits for
1,500 steps with fresh noise for the G update and with the D update's fakes reused.
The table gives the wall time of training and the KID of the EMA generator (1,000
samples, bundled digits classifier features, against the test split), with its
standard error, the classes covered and the KL of the class histogram to uniform.
"""

from __future__ import annotations

import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import keras  # noqa: E402

import gantools.data as gd  # noqa: E402
import gantools.metrics as gmetrics  # noqa: E402
import gantools.models as gm  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

STEPS, SEEDS = 1500, (0, 1)


def run(seed: int, reuse_fakes: bool, test_digits) -> tuple[float, dict]:
    keras.utils.set_random_seed(seed)
    g = gm.dcgan_generator(32, 1, latent_dim=64, width=32)
    d = gm.dcgan_discriminator(32, 1, width=32)
    trainer = GANTrainer(g, d, seed=seed, reuse_fakes=reuse_fakes, diagnose=False)
    start = time.perf_counter()
    trainer.fit(gd.load("digits", batch_size=64, seed=seed), STEPS, progress=False,
                every=STEPS)
    seconds = time.perf_counter() - start
    return seconds, gmetrics.evaluate(trainer.ema, test_digits, "digits", num_samples=1000)


def main():
    test_digits, _ = gd.arrays("digits", "test")
    print(f"# digits, DCGAN width 32, {STEPS} steps, {time.strftime('%Y-%m-%d')}")
    header = f"{'seed':>4} {'G update':<12} {'seconds':>8} {'KID':>16} {'classes':>8} {'KL':>6}"
    print(header)
    print("-" * len(header))
    for seed in SEEDS:
        for reuse in (False, True):
            seconds, r = run(seed, reuse, test_digits)
            kid = f"{r['kid']:.4f} ± {r['kid_std']:.4f}"
            print(f"{seed:>4} {'reuse_fakes' if reuse else 'fresh noise':<12} {seconds:>8.0f} "
                  f"{kid:>16} {r['classes_covered']:>5}/10 {r['class_kl']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
