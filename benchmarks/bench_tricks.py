"""Notebook 02's ablation over several seeds: does each trick help at the notebook's budget?

Run: .venv/bin/python benchmarks/bench_tricks.py [--seeds 0 1 2] [--steps 500]

The same DCGAN as notebook 02 (notebook 01's architecture, non-saturating loss, Adam
2e-4 / 0.5, 16×16 digits, width 32, batch 64) is trained once per configuration and seed:

* baseline (samples from G) and + EMA (the same run, samples from its EMA copy);
* + one-sided label smoothing (α = 0.1);
* + feature matching (G's loss, all of D's activation layers);
* + minibatch discrimination (16 kernels of dimension 4, gantools' layer);
* all together (the three, sampled from the EMA copy).

gantools' own implementations stand in for the students' (they are checked to agree).
KID (± s.e.) uses 1,000 samples against the 359 test digits with the bundled
classifier's features, as the notebook does. The table gives, per configuration, the
mean KID over seeds, the spread between seeds (standard deviation), each seed's value,
the classes covered, and the training time per run. The configurations take turns
within each seed, so a slow spell of a shared machine hits them alike.
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

CONFIGS = {
    "baseline": {},
    "+ one-sided smoothing": {"label_smoothing": 0.1},
    "+ feature matching": {"feature_matching": True},
    "+ minibatch discrimination": {"minibatch": True},
    "all together": {"label_smoothing": 0.1, "feature_matching": True, "minibatch": True},
}


def train(options, seed, steps, digits):
    options = dict(options)
    keras.utils.set_random_seed(seed)
    layer = gm.MinibatchDiscrimination(16, 4) if options.pop("minibatch", False) else None
    g = gm.dcgan_generator(SIZE, 1, latent_dim=LATENT, width=WIDTH)
    d = gm.dcgan_discriminator(SIZE, 1, width=WIDTH, minibatch=layer)
    trainer = GANTrainer(g, d, seed=seed, diagnose=False, **options)
    started = time.perf_counter()
    trainer.fit(digits, steps, every=steps, progress=False)
    return trainer, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)

    digits = gd.load("digits", batch_size=BATCH, seed=0, image_size=SIZE)
    test_digits, _ = gd.arrays("digits", "test", image_size=SIZE)
    floor = gmetrics.real_floor("digits", image_size=SIZE)
    rows: dict[str, list] = {name: [] for name in ["baseline", "+ EMA", *list(CONFIGS)[1:]]}
    for seed in args.seeds:
        for name, options in CONFIGS.items():
            trainer, seconds = train(options, seed, args.steps, digits)
            model = trainer.ema if name == "all together" else trainer.generator
            rows[name].append((gmetrics.evaluate(model, test_digits, "digits",
                                                 num_samples=args.samples), seconds))
            if name == "baseline":
                rows["+ EMA"].append((gmetrics.evaluate(trainer.ema, test_digits, "digits",
                                                        num_samples=args.samples), 0.0))
            print(f"seed {seed} {name:28s} KID {rows[name][-1][0]['kid']:.3f} "
                  f"({seconds:.0f} s)", flush=True)

    print(f"\nnotebook 02 ablation: {SIZE}x{SIZE} digits, {args.steps} steps, seeds "
          f"{args.seeds}, {args.samples} samples; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"real vs real floor: KID {floor['kid']:.3f} ± {floor['kid_std']:.3f}\n")
    print(f"| {'configuration':28s} | mean KID | spread | per seed | classes | s/run |")
    print(f"|{'-' * 30}|---------:|-------:|----------|--------:|------:|")
    for name, runs in rows.items():
        kids = np.array([r["kid"] for r, _ in runs])
        per_seed = " ".join(f"{k:.3f}" for k in kids)
        classes = " ".join(str(r["classes_covered"]) for r, _ in runs)
        seconds = np.mean([s for _, s in runs])
        spread = kids.std(ddof=1) if len(kids) > 1 else float("nan")
        print(f"| {name:28s} | {kids.mean():8.3f} | {spread:6.3f} | {per_seed} | {classes} "
              f"| {seconds:5.0f} |")


if __name__ == "__main__":
    main()
