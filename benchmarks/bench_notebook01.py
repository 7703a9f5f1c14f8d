"""Notebook 01's experiments over seeds, and its digits model against the old 32×32 one.

Run: .venv/bin/python benchmarks/bench_notebook01.py [--seeds 0 1 2] [--parts toy digits old]
     [--figure out.png]   (about 20 minutes on 2 cores with the defaults)

Notebook 01 runs each experiment once, with seed 0; this script runs the same code (the
reference answers' losses and step, the notebook's hyperparameters, read from the source
notebook) with several seeds, so that the spread behind each number the notebook quotes
is measured. Seed 0 is the notebook's own run.

1. The 2-D warm-up on the ``ring``: modes covered and the fraction of high-quality
   samples, minimax and non-saturating G loss.
2. The DCGAN on ``mnist5k`` (28×28), non-saturating loss: legibility of 1,000 samples of
   the EMA generator (the real test digits' value beside it), classes covered, KID ± s.e.
   against the 1,000 test digits (5 blocks) and the real-vs-real floor, and the seconds
   the training took.
3. At the same wall-clock budget, the DCGAN on the 8×8 ``digits`` up-sampled to 32×32
   that the course used before: KID against its own test split and floor in its own
   classifier's features, classes covered. Its legibility is not defined (its classifier
   was not trained to doubt junk, see ``gantools.metrics.legibility``); the figure shows
   both models' samples from one seed side by side.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import platform
import time
from pathlib import Path

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.data as gd  # noqa: E402
import gantools.metrics as gmetrics  # noqa: E402
import gantools.models as gmodels  # noqa: E402
from gantools.runtime import cpu_model  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

SOURCE = Path(__file__).resolve().parents[1] / "course" / "source" / "01_basic_gan" / \
    "01_basic_gan.ipynb"
NAMES = ("LATENT_DIM_2D", "TOY_STEPS", "TOY_BATCH", "TOY_LEARNING_RATE", "LEARNING_RATE",
         "BETA_1", "LATENT_DIM", "DCGAN_WIDTH", "DIGIT_STEPS", "MINIMAX_STEPS", "BATCH_SIZE",
         "NUM_EVAL")


def notebook_settings() -> dict:
    """The hyperparameters cell and the reference answers of the source notebook."""
    nb = json.loads(SOURCE.read_text())
    space = {"budget": lambda full, short: full}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code":
            continue
        if meta.get("grade_id") == "hyperparameters" or meta.get("solution"):
            source = "".join(cell["source"]).replace("### BEGIN SOLUTION", "") \
                .replace("### END SOLUTION", "")
            name = f"<notebook 01: {meta.get('grade_id')}>"
            # registered, so that tf.function (autograph) can read the step's source
            linecache.cache[name] = (len(source), None, source.splitlines(True), name)
            exec(compile(source, name, "exec"),  # noqa: S102
                 {"keras": keras, "tf": tf, "np": np, **space}, space)
    missing = [n for n in NAMES if n not in space]
    if missing:
        raise SystemExit(f"{SOURCE} no longer defines {missing}; update this benchmark.")
    return space


def non_saturating_loss(fake_logits):
    return tf.reduce_mean(tf.nn.softplus(-fake_logits))


def toy_run(nb, g_loss_fn, seed):
    """The notebook's ``train_toy``: the reference step, compiled, on the ring."""
    keras.utils.set_random_seed(seed)
    g = nb["build_generator"](nb["LATENT_DIM_2D"], 2)
    d = nb["build_discriminator"](2)
    g_opt = keras.optimizers.Adam(nb["TOY_LEARNING_RATE"], beta_1=nb["BETA_1"])
    d_opt = keras.optimizers.Adam(nb["TOY_LEARNING_RATE"], beta_1=nb["BETA_1"])
    step = tf.function(nb["train_step"])
    data = iter(gd.load("ring", batch_size=nb["TOY_BATCH"], seed=seed).repeat())
    z_fixed = tf.random.normal((1000, nb["LATENT_DIM_2D"]), seed=seed)
    for _ in range(nb["TOY_STEPS"]):
        step(next(data), g, d, g_opt, d_opt, nb["discriminator_loss"], g_loss_fn,
             nb["LATENT_DIM_2D"])
    return gmetrics.mode_coverage(g(z_fixed, training=False).numpy(),
                                  mixture=gd.mixture("ring"))


def digits_run(nb, dataset, size, seed, steps=None, seconds=None):
    """The notebook's DCGAN on ``dataset``: a number of steps, or as many as fit in
    ``seconds`` (checked every 50 steps). Returns the trainer and the seconds it took.

    As in the notebook, the minimax run trains first on the same dataset object (the
    non-saturating run then reads its batches in the order the notebook's run does)."""

    def trainer_for(g_loss):
        keras.utils.set_random_seed(seed)
        g = gmodels.dcgan_generator(size, 1, latent_dim=nb["LATENT_DIM"],
                                    width=nb["DCGAN_WIDTH"])
        d = gmodels.dcgan_discriminator(size, 1, width=nb["DCGAN_WIDTH"])
        return GANTrainer(g, d, loss=(nb["discriminator_loss"], g_loss),
                          learning_rate=nb["LEARNING_RATE"], beta_1=nb["BETA_1"], seed=seed)

    keras.utils.set_random_seed(seed)  # the global seed the notebook's dataset is made under
    data = gd.load(dataset, batch_size=nb["BATCH_SIZE"], seed=seed, image_size=size)
    trainer_for(nb["generator_loss"]).fit(data, nb["MINIMAX_STEPS"], progress=False,
                                          every=nb["MINIMAX_STEPS"])
    trainer = trainer_for(non_saturating_loss)
    start = time.perf_counter()
    if steps is not None:
        trainer.fit(data, steps, every=max(steps, 1), progress=False)
    else:
        while time.perf_counter() - start < seconds:
            trainer.fit(data, 50, every=50, progress=False)
    return trainer, time.perf_counter() - start


def evaluate(trainer, dataset, size, n):
    test, _ = gd.arrays(dataset, "test", image_size=size)
    result = gmetrics.evaluate(trainer.ema, test, dataset, num_samples=n, block_size=n // 5)
    if dataset == "mnist5k":
        result["legibility"] = gmetrics.legibility(gmetrics.generate(trainer.ema, n))
    return result


def spread(values):
    values = np.asarray(values, float)
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.3f} ± {sd:.3f} (sd over {len(values)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", choices=["toy", "digits", "old"],
                        default=["toy", "digits", "old"],
                        help="the 2-D warm-up, the mnist5k DCGAN, the 32×32 digits model at "
                        "the same wall clock (needs digits)")
    parser.add_argument("--figure", type=Path, help="save seed 0's samples side by side here")
    args = parser.parse_args()
    nb = notebook_settings()
    print(f"# {cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}, "
          f"TF {tf.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"# notebook 01's settings: DIGIT_STEPS={nb['DIGIT_STEPS']}, "
          f"DCGAN_WIDTH={nb['DCGAN_WIDTH']}, LATENT_DIM={nb['LATENT_DIM']}, "
          f"LEARNING_RATE={nb['LEARNING_RATE']}, BATCH_SIZE={nb['BATCH_SIZE']}, "
          f"TOY_STEPS={nb['TOY_STEPS']}")
    if "toy" in args.parts:
        print("\n## 2-D warm-up on the ring (modes covered of 8, high-quality fraction)")
        for name, loss in (("minimax", nb["generator_loss"]), ("non-saturating",
                                                                non_saturating_loss)):
            found = [toy_run(nb, loss, s) for s in args.seeds]
            for s, cov in zip(args.seeds, found, strict=True):
                print(f"{name:<15} seed {s}: {cov}")
            print(f"{name:<15} modes {spread([c.modes_covered for c in found])}, "
                  f"high quality {spread([c.high_quality for c in found])}")
    if "digits" not in args.parts:
        return
    n = nb["NUM_EVAL"]
    real_test, _ = gd.arrays("mnist5k", "test")
    print(f"\n## DCGAN on mnist5k, {nb['DIGIT_STEPS']} steps; EMA generator, {n} samples")
    print(f"real test digits: legibility {gmetrics.legibility(real_test):.3f}; "
          f"KID floor (train vs test, blocks of {n // 5}) "
          f"{gmetrics.real_floor('mnist5k', block_size=n // 5)['kid']:.4f}")
    header = (f"{'run':<24} {'steps':>6} {'seconds':>8} {'legibility':>10} {'classes':>7}"
              "  KID ± s.e.")
    print(header)
    rows, pictures = {"mnist5k": [], "digits": []}, {}
    for s in args.seeds:
        trainer, seconds = digits_run(nb, "mnist5k", 28, s, steps=nb["DIGIT_STEPS"])
        r = evaluate(trainer, "mnist5k", 28, n)
        rows["mnist5k"].append({**r, "seconds": seconds, "steps": trainer.step})
        print(f"{'mnist5k 28×28, seed ' + str(s):<24} {trainer.step:>6} {seconds:>8.0f} "
              f"{r['legibility']:>10.3f} {r['classes_covered']:>7}  "
              f"{r['kid']:.4f} ± {r['kid_std']:.4f}", flush=True)
        if s == args.seeds[0]:
            pictures["mnist5k"] = trainer.sample()[:32]
        if "old" in args.parts:
            old, old_seconds = digits_run(nb, "digits", 32, s, seconds=seconds)
            r = evaluate(old, "digits", 32, min(n, 359 * 2))
            rows["digits"].append({**r, "seconds": old_seconds, "steps": old.step})
            print(f"{'digits 32×32, seed ' + str(s):<24} {old.step:>6} {old_seconds:>8.0f} "
                  f"{'n/a':>10} {r['classes_covered']:>7}  {r['kid']:.4f} ± {r['kid_std']:.4f}",
                  flush=True)
            if s == args.seeds[0]:
                pictures["digits"] = old.sample()[:32]
    print("\n## over seeds (mean ± sd)")
    m = rows["mnist5k"]
    print(f"mnist5k: legibility {spread([r['legibility'] for r in m])}, "
          f"KID {spread([r['kid'] for r in m])}, "
          f"classes {spread([r['classes_covered'] for r in m])}, "
          f"seconds {spread([r['seconds'] for r in m])}")
    if rows["digits"]:
        o = rows["digits"]
        print(f"digits 32×32 at the same seconds: steps {spread([r['steps'] for r in o])}, "
              f"KID {spread([r['kid'] for r in o])} (floor "
              f"{gmetrics.real_floor('digits', block_size=n // 5)['kid']:.4f}, its own "
              "features), "
              f"classes {spread([r['classes_covered'] for r in o])}")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        import gantools.viz as gv

        fig, axes = plt.subplots(1, len(pictures), figsize=(7 * len(pictures), 2.3))
        for ax, (name, images) in zip(np.atleast_1d(axes), pictures.items(), strict=True):
            ax.imshow(gv.tile(images, ncols=16), cmap="gray")
            ax.set_title(f"{name}, seed {args.seeds[0]}", fontsize=9)
            ax.axis("off")
        fig.savefig(args.figure, dpi=100, bbox_inches="tight")
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
