"""Training throughput: gantools' GradientTape loop against a keras-io style fit() baseline.

Run: .venv/bin/python benchmarks/bench_training.py [--quick] [--sizes 28 32 64]

Both train the same DCGAN (gantools.models, batch norm, batch 64) on the same in-memory
data, side by side in one process: at 28×28 notebook 01's model (greyscale, width 32, z
of 64), at 32×32 and 64×64 an RGB one of width 64 (z of 128). The baseline is written the way the
keras-io DCGAN example does it: a ``keras.Model`` subclass whose ``train_step`` runs
one D update on the concatenated real+fake batch and one G update, driven by
``fit()`` (on a CPU-only machine Keras compiles it without XLA, as it does ours).

The loops take turns: each round runs a block of steps of every loop, so a slow spell
of a shared machine hits them all alike. Every step is timed (the baseline from one
fit() batch end to the next; gantools per compiled call, divided by its steps), and
the table reports the median step, its images per second (real images consumed by D),
the ratio to the baseline (of medians, and of means), and model-FLOP utilization:
the loop's analytic model FLOPs per step / median step time / the machine's float32
matmul ceiling, measured here with a large tf.matmul.

TensorFlow's oneDNN kernels are on here, as everywhere in the course (gantools.runtime):
the header says whether this CPU would have them on by itself. A second table measures the
gantools step at 32×32 with oneDNN forced on and off. TensorFlow reads the switch once, at
import, so each setting runs in its own worker process; the workers take turns, a block
of steps each per round, and each measures its own matmul ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.models as gm  # noqa: E402
from gantools.runtime import cpu_model, describe_onednn  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

WIDTH, BATCH, LATENT = 64, 64, 128
# per image size: (channels, width, latent size); 28×28 is notebook 01's DCGAN on mnist5k
MODELS = {28: (1, 32, 64), 32: (3, WIDTH, LATENT), 64: (3, WIDTH, LATENT)}


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


def step_flops(g: keras.Model, d: keras.Model, batch: int, reuse_fakes: bool = False) -> int:
    """FLOPs of one step (one D update, one G update), counting backward as 2× forward.

    D update: G forward (no gradient) + D forward and backward on real and on fake.
    G update: G forward and backward + D forward and input-gradient (≈ 2× forward).
    With ``reuse_fakes`` the G update reuses the D update's G forward pass.
    """
    fg, fd = forward_flops(g), forward_flops(d)
    return batch * ((0 if reuse_fakes else fg) + 2 * 3 * fd + 3 * fg + 2 * fd)


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
    channels = MODELS[size][0]
    x = np.random.default_rng(0).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(x).cache().shuffle(n, seed=0).batch(
        BATCH, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)


def models(size):
    keras.utils.set_random_seed(0)
    channels, width, latent = MODELS[size]
    return (gm.dcgan_generator(size, channels, latent, width=width),
            gm.dcgan_discriminator(size, channels, width=width))


class StepTimes(keras.callbacks.Callback):
    """Wall time of every fit() step, from one batch end to the next (fit's own overhead
    between steps included)."""

    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def baseline_loop(size: int):
    """A function running ``n`` baseline steps in one fit() call, returning per-step times.

    The first two steps of each call (fit() building its iterator) are left out.
    """
    g, d = models(size)
    gan = KerasIOGAN(d, g, MODELS[size][2])
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.losses.BinaryCrossentropy(from_logits=True))
    ds = data(size, 1024)
    gan.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    timer = StepTimes()

    def run(n):
        gan.fit(ds, steps_per_epoch=n + 2, epochs=1, verbose=0, callbacks=[timer])
        return list(np.diff(timer.ends)[1:])

    return run


def gantools_loop(size: int, steps_per_call: int, ema: bool, reuse_fakes: bool):
    """A function running ``n`` gantools steps, returning per-step times.

    Each compiled call (``steps_per_call`` steps, the unit fit() runs between its Python
    bookkeeping) is timed and its time divided by its steps.
    """
    g, d = models(size)
    trainer = GANTrainer(g, d, steps_per_call=steps_per_call, ema_decay=0.999 if ema else None,
                         reuse_fakes=reuse_fakes, diagnose=False)
    ds = data(size, 1024)
    trainer.fit(ds, steps_per_call * 2, progress=False, every=10**9)  # trace and warm up
    iterator = trainer._iterator_for(ds)
    call = trainer._train_function(steps_per_call)

    def run(n):
        times = []
        for _ in range(max(1, n // steps_per_call)):
            start = time.perf_counter()
            call(iterator).numpy()
            times += [(time.perf_counter() - start) / steps_per_call] * steps_per_call
        return times

    return run


LOOPS = [  # name, steps per call, EMA, reuse_fakes
    ("gantools, 1 step/call", 1, False, False),
    ("gantools, 10 steps/call", 10, False, False),
    ("gantools, 1 step/call, EMA", 1, True, False),
    ("gantools, 10 steps/call, reuse_fakes", 10, False, True),
    ("gantools, 10 steps/call, reuse_fakes, EMA", 10, True, True),
]


def onednn_worker(size: int) -> None:
    """Worker process: reads a number of steps per line on stdin and answers each with the
    JSON list of step times (the first line of output is its matmul ceiling and state)."""
    run = gantools_loop(size, 1, False, False)
    print(json.dumps({"ceiling": matmul_ceiling(), "state": describe_onednn()}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run(int(line))), flush=True)


def onednn_table(size: int, block: int, rounds: int, ceiling: float) -> None:
    """The gantools step (1 step/call) with oneDNN forced on and off, taking turns."""
    workers, info = {}, {}
    for value in ("1", "0"):  # one at a time: each measures its ceiling on an idle machine
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": value}
        workers[value] = subprocess.Popen(
            [sys.executable, __file__, "--onednn-worker", str(size)], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        info[value] = json.loads(workers[value].stdout.readline())
    times = {value: [] for value in workers}
    for _ in range(rounds):
        for value, w in workers.items():
            w.stdin.write(f"{block}\n")
            w.stdin.flush()
            times[value] += json.loads(w.stdout.readline())
    for w in workers.values():
        w.stdin.close()
        w.wait()
    g, d = models(size)
    flops = step_flops(g, d, BATCH)
    print(f"\n# gantools, 1 step/call, {size}×{size}, with TF_ENABLE_ONEDNN_OPTS forced; "
          f"{rounds} rounds of {block} steps each")
    print("# MFU against this process's ceiling (oneDNN as the course runs it) and against "
          "the worker's own")
    header = (f"{'oneDNN':<7} {'s/step':>7} {'img/s':>6} {'× off':>6} {'MFU':>6} "
              f"{'own MFU':>7} {'own ceiling':>12}")
    print(header)
    print("-" * len(header))
    off = np.median(times["0"])
    for value, label in (("1", "on"), ("0", "off")):
        t, own = np.median(times[value]), info[value]["ceiling"]
        print(f"{label:<7} {t:>7.4f} {BATCH / t:>6.0f} {off / t:>6.2f} {flops / t / ceiling:>6.1%} "
              f"{flops / t / own:>7.1%} {own / 1e9:>7.1f} GF/s")
    for value in workers:
        print(f"# worker TF_ENABLE_ONEDNN_OPTS={value}: {info[value]['state'].split(';')[0]})")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    parser.add_argument("--onednn-only", action="store_true",
                        help="only the table of oneDNN forced on and off")
    parser.add_argument("--onednn-worker", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", choices=sorted(MODELS),
                        default=sorted(MODELS), help="image sizes to measure (all)")
    args = parser.parse_args()
    if args.onednn_worker:
        return onednn_worker(args.onednn_worker)
    # per size: steps per loop per round, rounds
    plan = {28: (50, 3 if args.quick else 6), 32: (30, 3 if args.quick else 6),
            64: (10, 2 if args.quick else 3)}
    ceiling = matmul_ceiling()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
          f"Keras {keras.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"# {cpu_model()}; {describe_onednn()}")
    print(f"# float32 matmul ceiling: {ceiling / 1e9:.1f} GFLOP/s (2048×2048 tf.matmul)")
    print(f"# DCGAN batch {BATCH}; 28×28: notebook 01's (1 channel, width 32, z of 64); 32 and "
          f"64: width {WIDTH}, 3 channels, z of {LATENT}; one step = one D and one G update")
    print("# the loops take turns, a block of steps each per round; s/step is the median step,")
    print("# × fit the ratio of medians (and of means); MFU uses the loop's own FLOPs per step")
    header = (f"{'size':>5} {'loop':<42} {'s/step':>7} {'img/s':>6} {'× fit':>6} "
              f"{'(mean)':>6} {'MFU':>6}")
    print(header)
    print("-" * len(header))
    chosen = {} if args.onednn_only else {k: v for k, v in plan.items() if k in args.sizes}
    for size, (block, rounds) in chosen.items():
        g, d = models(size)
        loops = {"keras-io fit() baseline": (baseline_loop(size), False)}
        for name, k, ema, reuse in LOOPS:
            loops[name] = (gantools_loop(size, k, ema, reuse), reuse)
        times = {name: [] for name in loops}
        for _ in range(rounds):
            for name, (run, _) in loops.items():
                times[name] += run(block)
        base = times["keras-io fit() baseline"]
        for name, (_, reuse) in loops.items():
            t, flops = np.median(times[name]), step_flops(g, d, BATCH, reuse)
            print(f"{size:>5} {name:<42} {t:>7.4f} {BATCH / t:>6.0f} "
                  f"{np.median(base) / t:>6.2f} {np.mean(base) / np.mean(times[name]):>6.2f} "
                  f"{flops / t / ceiling:>6.1%}")
        print(f"{'':>5} model GFLOP per step: {step_flops(g, d, BATCH) / 1e9:.2f} "
              f"({step_flops(g, d, BATCH, True) / 1e9:.2f} with reuse_fakes); "
              f"{rounds} rounds of {block} steps per loop")
    if args.onednn_only or 32 in args.sizes:
        onednn_table(32, *plan[32], ceiling)


if __name__ == "__main__":
    main()
