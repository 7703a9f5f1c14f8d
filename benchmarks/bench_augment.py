"""What augmentation costs: one batch through each gantools.augment pipeline at p = 1 (every
image augmented: the worst case), compiled, against the discriminator update it is added
to, and the whole GANTrainer step with and without an adaptive augmenter.

Run: .venv/bin/python benchmarks/bench_augment.py [--size 32] [--batch 64]
Prints a table (median of 5 rounds of 20 calls, measured side by side in one process).
"""

from __future__ import annotations

import argparse
import platform
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.augment as ga  # noqa: E402
import gantools.models as gm  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402


def median_seconds(fn, calls=20, rounds=5):
    fn()  # trace and warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn()
        np.asarray(out)  # wait for the last call
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args(argv)
    size, batch = args.size, args.batch
    x = tf.random.uniform((batch, size, size, 1), -1, 1, seed=0)

    keras.utils.set_random_seed(0)
    d = gm.dcgan_discriminator(size, 1, width=args.width)
    opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    opt.build(d.trainable_variables)

    def d_update(augment):
        @tf.function(autograph=False)
        def step(real, fake):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.softplus(-d(augment(real), training=True))) + \
                    tf.reduce_mean(tf.nn.softplus(d(augment(fake), training=True)))
            grads = tape.gradient(loss, d.trainable_variables)
            opt.apply_gradients(zip(grads, d.trainable_variables, strict=True))
            return loss
        return lambda: step(x, -x)

    rows = [("D update, no augmentation", median_seconds(d_update(lambda t: t)))]
    base = rows[0][1]
    for pipeline in ga.PIPELINES:
        aug = ga.Augmenter(p=1.0, ops=pipeline, seed=1)
        alone = tf.function(aug.__call__, autograph=False)
        rows.append((f"augment '{pipeline}', one batch", median_seconds(lambda a=alone: a(x))))
        rows.append((f"D update + '{pipeline}' on real and fake",
                     median_seconds(d_update(aug))))

    data = tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).uniform(
        -1, 1, (batch * 8, size, size, 1)).astype(np.float32)).batch(batch).repeat()

    def trainer_step(augment):
        keras.utils.set_random_seed(0)
        g = gm.dcgan_generator(size, 1, latent_dim=64, width=args.width)
        dd = gm.dcgan_discriminator(size, 1, width=args.width)
        trainer = GANTrainer(g, dd, augment=augment, seed=0, diagnose=False)
        trainer.fit(data, 3, every=3, progress=False)  # trace
        start = time.perf_counter()
        trainer.fit(data, 30, every=30, progress=False)
        return (time.perf_counter() - start) / 30

    plain = trainer_step(None)
    ada = trainer_step(ga.AdaptiveAugmenter(p=1.0, seed=1))
    rows += [("GANTrainer step, no augmentation", plain),
             ("GANTrainer step, AdaptiveAugmenter at p = 1 ('bgc')", ada)]

    print(f"# {platform.processor() or platform.machine()}, TensorFlow {tf.__version__}, "
          f"{size}x{size}x1, batch {batch}, D width {args.width}, {time.strftime('%Y-%m-%d')}")
    print(f"{'what':<50} {'ms':>8} {'x D update':>11}")
    for name, seconds in rows:
        ratio = seconds / (plain if name.startswith("GANTrainer") else base)
        print(f"{name:<50} {1000 * seconds:>8.2f} {ratio:>11.2f}"
              + ("  (x plain step)" if name.startswith("GANTrainer step, A") else ""))


if __name__ == "__main__":
    main()
