"""Notebook 03's digits experiment over several seeds: does the Wasserstein estimate track
sample quality, and what does WGAN-GP cost against notebook 01's GAN?

Run: .venv/bin/python benchmarks/bench_wgan.py [--seeds 0 1 2] [--steps 500] [--every 50]

Per seed, the two setups of notebook 03 take turns (so a slow spell of a shared machine hits
both alike), on 16×16 digits with the DCGAN of width 32, batch 64:

* WGAN-GP: layer-norm critic, gantools' Wasserstein losses and gradient penalty (λ = 10,
  n_critic = 5), Adam(5e-4, 0.5, 0.9) for both players;
* non-saturating GAN: notebook 01's setup (batch-norm D, BCE, Adam(2e-4, 0.5)).

Every ``--every`` steps KID of the EMA generator is measured on 500 samples (as the
notebook does); at the end on 1,000. The table gives the final KID ± s.e., the Pearson and
rank (Spearman) correlations between KID and the loss each setup reports (−L_critic, the
Wasserstein estimate, for WGAN-GP; D's loss for the GAN), and the training seconds per
generator step, with their ratio measured side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

from gancourse.modes import quiet_tensorflow_import  # noqa: E402

quiet_tensorflow_import()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import gantools.data as gd  # noqa: E402
import gantools.metrics as gmetrics  # noqa: E402
import gantools.models as gm  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

SIZE, WIDTH, LATENT, BATCH = 16, 32, 64, 64


def correlations(kid, loss):
    """(Pearson, Spearman) correlation of two series; Spearman is Pearson on the ranks."""
    def ranks(x):
        return np.argsort(np.argsort(x))

    return (float(np.corrcoef(kid, loss)[0, 1]),
            float(np.corrcoef(ranks(kid), ranks(loss))[0, 1]))


def train(wasserstein, seed, steps, every, digits, test):
    keras.utils.set_random_seed(seed)
    g = gm.dcgan_generator(SIZE, 1, latent_dim=LATENT, width=WIDTH)
    if wasserstein:
        d = gm.dcgan_discriminator(SIZE, 1, width=WIDTH, normalization="layer")
        trainer = GANTrainer(g, d, loss="wasserstein", penalty="gp", n_critic=5, seed=seed,
                             d_optimizer=keras.optimizers.Adam(5e-4, 0.5, 0.9),
                             g_optimizer=keras.optimizers.Adam(5e-4, 0.5, 0.9), diagnose=False)
    else:
        d = gm.dcgan_discriminator(SIZE, 1, width=WIDTH)
        trainer = GANTrainer(g, d, loss="non-saturating", seed=seed, diagnose=False)
    track = gmetrics.MetricsCallback(test, "digits", num_samples=500, verbose=False)
    kid_seconds = []

    def timed(t):  # KID's own time is not training time
        started = time.perf_counter()
        track(t)
        kid_seconds.append(time.perf_counter() - started)

    trainer.fit(digits, 1, progress=False)  # the trace, kept out of the timing
    started = time.perf_counter()
    trainer.fit(digits, steps - 1, every=every, callbacks=[timed], progress=False)
    seconds = time.perf_counter() - started - sum(kid_seconds)
    d_loss = trainer.history["d_loss"]
    kid = np.array([r["kid"] for r in track.results])
    loss = np.array([np.mean(d_loss[max(0, r["step"] - every):r["step"]])
                     for r in track.results]) * (-1.0 if wasserstein else 1.0)
    final = gmetrics.evaluate(trainer.ema, test, "digits", num_samples=1000)
    return final, correlations(kid, loss), seconds / (steps - 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    digits = gd.load("digits", batch_size=BATCH, seed=0, image_size=SIZE)
    test, _ = gd.arrays("digits", "test", image_size=SIZE)
    floor = gmetrics.real_floor("digits", image_size=SIZE)
    rows = {"WGAN-GP": [], "non-saturating GAN": []}
    for seed in args.seeds:
        for name in rows:
            rows[name].append(train(name == "WGAN-GP", seed, args.steps, args.every, digits,
                                    test))
            final, (pearson, spearman), per_step = rows[name][-1]
            print(f"seed {seed} {name:18s} KID {final['kid']:.3f} ± {final['kid_std']:.3f} "
                  f"r {pearson:+.2f} rank r {spearman:+.2f} {per_step * 1000:.0f} ms/step",
                  flush=True)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.steps} steps, KID every {args.every} on 500 samples, final KID on 1,000 "
          f"(floor {floor['kid']:.3f} ± {floor['kid_std']:.3f})\n")
    print("| setup | KID per seed (± s.e.) | classes | loss vs KID: r | rank r | s/step |")
    print("|---|---|---|---|---|---:|")
    for name, results in rows.items():
        kids = " ".join(f"{r[0]['kid']:.3f}±{r[0]['kid_std']:.3f}" for r in results)
        classes = " ".join(str(r[0]["classes_covered"]) for r in results)
        pearson = " ".join(f"{r[1][0]:+.2f}" for r in results)
        spearman = " ".join(f"{r[1][1]:+.2f}" for r in results)
        per_step = np.mean([r[2] for r in results])
        print(f"| {name} | {kids} | {classes} | {pearson} | {spearman} | {per_step:.3f} |")
    ratio = np.mean([w[2] / g[2] for w, g in zip(rows["WGAN-GP"], rows["non-saturating GAN"],
                                                   strict=True)])
    print(f"\nWGAN-GP step / GAN step, measured side by side: {ratio:.1f}x")


if __name__ == "__main__":
    main()
