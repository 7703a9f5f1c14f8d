"""Training throughput: gantools' GradientTape loop against a keras-io style fit() baseline.

Run: .venv/bin/python benchmarks/bench_training.py [--quick]

Both train the same DCGAN (gantools.models, batch norm, width 64, batch 64) on the same
in-memory data, side by side in one process. The baseline is written the way the
keras-io DCGAN example does it: a ``keras.Model`` subclass whose ``train_step`` runs
one D update on the concatenated real+fake batch and one G update, driven by
``fit()``. The table gives images per second (real images consumed by D), the ratio
to the baseline, and model-FLOP utilization: analytic model FLOPs per step / step
time / the machine's float32 matmul ceiling, measured here with a large tf.matmul.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.models as gm  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

WIDTH, BATCH, LATENT = 64, 64, 128


# --- FLOPs ---------------------------------------------------------------------------------

def forward_flops(model: keras.Model) -> int:
    """Multiply-adds × 2 of the Dense, Conv2D and Conv2DTranspose layers, per example."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # SpectralNorm wrapper
        if isinstance(inner, keras.layers.Conv2DTranspose):
            h, w, c_in = layer.input.shape[1:]
            kh, kw = inner.kernel_size
            total += 2 * h * w * kh * kw * c_in * inner.filters
        elif isinstance(inner, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            kh, kw = inner.kernel_size
            total += 2 * h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(inner, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * inner.units
    return int(total)


def step_flops(g: keras.Model, d: keras.Model, batch: int) -> int:
    """FLOPs of one step (one D update, one G update), counting backward as 2× forward.

    D update: G forward (no gradient) + D forward and backward on real and on fake.
    G update: G forward and backward + D forward and input-gradient (≈ 2× forward).
    """
    fg, fd = forward_flops(g), forward_flops(d)
    return batch * (fg + 2 * 3 * fd + 3 * fg + 2 * fd)


def matmul_ceiling(n: int = 2048, repeats: int = 20) -> float:
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))

    @tf.function
    def mm(a, b):
        c = a
        for _ in range(repeats):
            c = tf.matmul(c, b) * 1e-3
        return c

    mm(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        mm(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return repeats * 2 * n**3 / best


# --- the keras-io style baseline -------------------------------------------------------------

class KerasIOGAN(keras.Model):
    """The DCGAN of the keras-io example: custom train_step, driven by fit()."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        z = tf.random.normal(shape=(batch_size, self.latent_dim))
        generated = self.generator(z, training=True)
        combined = tf.concat([generated, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined, training=True)
            d_loss = self.loss_fn(labels, predictions)
        d_vars = self.discriminator.trainable_weights
        grads = tape.gradient(d_loss, d_vars)
        self.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))
        z = tf.random.normal(shape=(batch_size, self.latent_dim))
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def data(size: int, n: int) -> tf.data.Dataset:
    x = np.random.default_rng(0).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(x).cache().shuffle(n, seed=0).batch(
        BATCH, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)


def models(size):
    keras.utils.set_random_seed(0)
    return (gm.dcgan_generator(size, 3, LATENT, width=WIDTH),
            gm.dcgan_discriminator(size, 3, width=WIDTH))


def time_baseline(size: int, steps: int) -> float:
    g, d = models(size)
    gan = KerasIOGAN(d, g, LATENT)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.losses.BinaryCrossentropy(from_logits=True))
    ds = data(size, 1024)
    gan.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    gan.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def time_gantools(size: int, steps: int, steps_per_call: int, ema: bool = True) -> float:
    g, d = models(size)
    trainer = GANTrainer(g, d, steps_per_call=steps_per_call, ema_decay=0.999 if ema else None,
                         diagnose=False)
    ds = data(size, 1024)
    trainer.fit(ds, steps_per_call * 2, progress=False, every=10**9)  # trace and warm up
    start = time.perf_counter()
    trainer.fit(ds, steps, progress=False, every=10**9)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    args = parser.parse_args()
    steps = {32: 40 if args.quick else 120, 64: 8 if args.quick else 24}
    ceiling = matmul_ceiling()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
          f"Keras {keras.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"# float32 matmul ceiling: {ceiling / 1e9:.1f} GFLOP/s (2048×2048 tf.matmul)")
    print(f"# DCGAN width {WIDTH}, batch {BATCH}, 3 channels; one step = one D and one G update")
    header = f"{'size':>5} {'loop':<34} {'s/step':>8} {'img/s':>8} {'× fit':>6} {'MFU':>6}"
    print(header)
    print("-" * len(header))
    for size in (32, 64):
        g, d = models(size)
        flops = step_flops(g, d, BATCH)
        base = time_baseline(size, steps[size])
        rows = [("keras-io fit() baseline", base)]
        rows.append(("gantools, 1 step/call, EMA", time_gantools(size, steps[size], 1)))
        rows.append(("gantools, 10 steps/call, EMA", time_gantools(size, steps[size], 10)))
        rows.append(("gantools, 10 steps/call, no EMA",
                     time_gantools(size, steps[size], 10, ema=False)))
        for name, t in rows:
            print(f"{size:>5} {name:<34} {t:>8.4f} {BATCH / t:>8.0f} {base / t:>6.2f} "
                  f"{flops / t / ceiling:>6.1%}")
        print(f"{'':>5} model GFLOP per step: {flops / 1e9:.2f}")


if __name__ == "__main__":
    main()
