"""Batch norm: Keras 3's layer against TensorFlow's fused kernel, alone and in the training step.

Run: .venv/bin/python benchmarks/bench_batchnorm.py [--quick]

Keras 3's ``BatchNormalization`` has no fused kernel: on the TensorFlow backend it computes
the batch moments with reductions (with ``synchronized=True``, as gantools builds it, as
the sums Σx and Σx² that a ``tf.distribute`` strategy can add across replicas) and
normalizes with element-wise arithmetic, and autodiff differentiates all of that. TF 1's
layers called ``FusedBatchNormV3`` instead, one kernel forward and one backward (oneDNN's
when it is on, as in the course). The question: does a fused layer make the course's
training step faster?

``FusedBatchNorm`` below is that layer, written for this measurement: a Keras 3 layer with
Keras's weights (gamma, beta, moving_mean, moving_variance), Keras's momentum semantics
(m ← momentum·m + (1 − momentum)·μ_B, with the biased batch variance, where the kernel
returns the unbiased one) and the moving-statistics update through ``assign``, so that
``stateless_call`` sees it. Before timing, the script checks it against Keras's layer:
outputs, all gradients and the moving statistics after one step.

A table for the layer alone and one per model, each measured side by side in one
process. The variants take turns call by call (A B, then B A, ...), in rounds, so a slow
spell of the shared machine lands on all of them alike; ms is the median call or step,
"× Keras" the ratio of medians to the first row, and "per round" the range of the ratios
of each round's medians:

1. the layer alone: forward and backward (gradients with respect to the input, γ and β)
   in a ``tf.function``, training mode, on a (64, 16, 16, 64) float32 NHWC tensor;
2. the compiled ``GANTrainer`` step (one D and one G update, EMA on, one step per call)
   of the course's DCGANs: gantools' ``dcgan_generator``/``dcgan_discriminator`` with
   ``normalization="batch"``, batch 64, latent 64: 16×16×1 width 32 (notebooks 02 to 07)
   and 32×32×1 width 32 (notebook 01), on the bundled digits; and 32×32×3 width 64 (the
   model of bench_training.py) on random images. The fused variant is the same model
   cloned with every BatchNormalization replaced by ``FusedBatchNorm``, same weights.

Result (2026-11-25, the 2-core Intel Xeon, oneDNN on, beside other jobs;
docs/measurements.md): the fused layer computes the same values and gradients to float32
precision (largest relative difference 1.7e-6) and is 2.06× faster alone (5.5 against
11.3 ms; rounds 1.58–2.16×), but the training step gains 1.05× at the size of notebooks
02 to 07 (rounds 0.99–1.06×), 1.14× at notebook 01's (rounds 1.06–1.24×; 1.08× in an
earlier run that took turns in blocks of steps) and 1.00× for bench_training.py's model
(rounds 0.98–1.16×). Batch norm's inputs in these models are at most (64, 8, 8, 32),
(64, 16, 16, 32) and (64, 16, 16, 64), and convolutions take most of a step (81 % of op
time for bench_training.py's model, by profile_step.py). That is not the clear,
consistent 10 % that would pay for a second batch-norm layer in gantools (with its own
answer to MirroredStrategy's synchronized statistics, which a fused kernel computes per
replica), so gantools keeps Keras's layer and this script is the evidence.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import gantools.data as gd  # noqa: E402
import gantools.models as gm  # noqa: E402
from gantools.runtime import cpu_model, describe_onednn  # noqa: E402
from gantools.training import GANTrainer  # noqa: E402

BATCH, LATENT = 64, 64
LAYER_SHAPE = (64, 16, 16, 64)
STEP_MODELS = [  # name, image size, channels, width, data, steps per block
    ("16×16×1, width 32 (notebooks 02–07)", 16, 1, 32, "digits", 40),
    ("32×32×1, width 32 (notebook 01)", 32, 1, 32, "digits", 20),
    ("32×32×3, width 64 (bench_training.py)", 32, 3, 64, "random", 8),
]


class FusedBatchNorm(keras.layers.Layer):
    """Batch norm over the channels of an NHWC tensor with TensorFlow's fused kernel.

    Training (and trainable): y = γ·(x − μ_B)/√(σ²_B + ε) + β with the batch's mean μ_B and
    biased variance σ²_B over (N, H, W), then m ← p·m + (1 − p)·μ_B and
    v ← p·v + (1 − p)·σ²_B with p = ``momentum`` (Keras's convention; TensorFlow's
    ``exponential_avg_factor`` is 1 − p). Otherwise the moving m and v replace μ_B, σ²_B.
    Input (N, H, W, C), or (N, C), which is normalized as (N, 1, 1, C).
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def build(self, input_shape):
        c = (int(input_shape[-1]),)
        self.gamma = self.add_weight(shape=c, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=c, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=c, initializer="zeros", trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=c, initializer="ones", trainable=False,
                                               name="moving_variance")

    def call(self, inputs, training=None, mask=None):  # mask: passed along by clone_model
        if mask is not None:
            raise ValueError("FusedBatchNorm does not take a mask; use Keras's layer.")
        x = tf.convert_to_tensor(inputs)
        x4 = x if x.shape.rank == 4 else tf.reshape(x, [-1, 1, 1, x.shape[-1]])
        training = bool(training) and self.trainable
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x4, scale=tf.convert_to_tensor(self.gamma), offset=tf.convert_to_tensor(self.beta),
            mean=tf.zeros([0]) if training else tf.convert_to_tensor(self.moving_mean),
            variance=tf.zeros([0]) if training else tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=training)
        if training:
            # the kernel returns the unbiased variance, n/(n − 1)·σ²_B; Keras averages σ²_B
            n = tf.cast(tf.size(x4) // tf.shape(x4)[-1], variance.dtype)
            biased = variance * (n - 1.0) / n
            p = self.momentum
            self.moving_mean.assign(p * self.moving_mean + (1.0 - p) * mean)
            self.moving_variance.assign(p * self.moving_variance + (1.0 - p) * biased)
        return y if x.shape.rank == 4 else tf.reshape(y, tf.shape(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def fused_copy(model: keras.Model) -> keras.Model:
    """``model`` with every BatchNormalization replaced by ``FusedBatchNorm``, same weights."""
    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return FusedBatchNorm(layer.momentum, layer.epsilon, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


# --- the layer alone ---------------------------------------------------------------------------

def forward_backward(layer):
    """A compiled call: y = layer(x), gradients of ⟨y, dy⟩ with respect to x, γ, β."""
    @tf.function
    def run(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * dy)
        return (y, *tape.gradient(loss, [x, layer.gamma, layer.beta]))

    return run


def layer_variants():
    # the course's configuration (gantools.models.dcgan), the unsynchronized one, fused
    return {
        "Keras BatchNormalization, synchronized (gantools)":
            keras.layers.BatchNormalization(momentum=0.9, synchronized=True),
        "Keras BatchNormalization": keras.layers.BatchNormalization(momentum=0.9),
        "FusedBatchNorm (FusedBatchNormV3)": FusedBatchNorm(momentum=0.9),
    }


def check_equal(x, dy):
    """Largest relative differences between Keras's layer and the fused one, one step."""
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, synchronized=True)
    fused = FusedBatchNorm(momentum=0.9)
    for layer in (keras_bn, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, x.shape[-1]))
        layer.beta.assign(np.linspace(-0.2, 0.2, x.shape[-1]))
    a, b = forward_backward(keras_bn)(x, dy), forward_backward(fused)(x, dy)
    names = ["y", "dx", "dγ", "dβ"]
    out = {n: float(np.max(np.abs(u - v)) / np.max(np.abs(u))) for n, u, v in zip(
        names, a, b, strict=True)}
    out["moving mean"] = float(np.max(np.abs(keras_bn.moving_mean - fused.moving_mean)))
    out["moving var"] = float(np.max(np.abs(keras_bn.moving_variance - fused.moving_variance)))
    return out


def timed(fn):
    """A function that calls ``fn`` once and returns the seconds it took."""
    def run():
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def interleaved(calls: dict, rounds: int, block: int) -> dict[str, list[list[float]]]:
    """Times of ``block`` calls of each variant per round, one call of each in turn.

    The order alternates (A B, B A, ...) so neither variant always runs first; a slow
    spell of the machine then lands on both alike, and each round gives a ratio.
    """
    times = {name: [[] for _ in range(rounds)] for name in calls}
    names = list(calls)
    for r in range(rounds):
        for i in range(block):
            for name in names if i % 2 == 0 else names[::-1]:
                times[name][r].append(calls[name]())
    return times


def time_layers(rounds: int, block: int) -> dict[str, list[list[float]]]:
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(0.5, 2.0, LAYER_SHAPE).astype(np.float32))
    dy = tf.constant(rng.normal(size=LAYER_SHAPE).astype(np.float32))
    calls = {}
    for name, layer in layer_variants().items():
        run = forward_backward(layer)
        calls[name] = timed(lambda run=run: run(x, dy)[1].numpy())
        for _ in range(5):  # trace and warm up
            calls[name]()
    return interleaved(calls, rounds, block)


# --- the training step ---------------------------------------------------------------------------

def step_data(size: int, channels: int, source: str) -> tf.data.Dataset:
    if source == "digits":
        return gd.load("digits", batch_size=BATCH, seed=0, image_size=size)
    x = np.random.default_rng(0).uniform(-1, 1, (1024, size, size, channels)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(x).cache().shuffle(1024, seed=0).batch(
        BATCH, drop_remainder=True)


def step_call(size: int, channels: int, width: int, source: str, fused: bool):
    """A function that runs one compiled GANTrainer step and returns its seconds."""
    keras.utils.set_random_seed(0)
    g = gm.dcgan_generator(size, channels, LATENT, width=width)
    d = gm.dcgan_discriminator(size, channels, width=width)
    if fused:
        g, d = fused_copy(g), fused_copy(d)
    trainer = GANTrainer(g, d, ema_decay=0.999, diagnose=False, seed=0)
    ds = step_data(size, channels, source)
    trainer.fit(ds, 3, progress=False, every=10**9)  # trace and warm up
    iterator = trainer._iterator_for(ds)
    call = trainer._train_function(1)
    return timed(lambda: call(iterator).numpy())


def time_steps(size, channels, width, source, rounds, block):
    calls = {"Keras BatchNormalization (gantools)": step_call(size, channels, width, source,
                                                              False),
             "FusedBatchNorm": step_call(size, channels, width, source, True)}
    return interleaved(calls, rounds, block)


# --- the tables -----------------------------------------------------------------------------

def table(title: str, times: dict[str, list[list[float]]], header: str) -> None:
    """Median ms, ratio of medians to the first variant, and the range of per-round ratios."""
    print(f"\n# {title}")
    print(f"{header:<52} {'ms':>8} {'× Keras':>8} {'per round':>13}")
    print("-" * 84)
    names = list(times)
    base_all = np.median(np.concatenate(times[names[0]]))
    base_rounds = np.array([np.median(r) for r in times[names[0]]])
    for name in names:
        t = np.median(np.concatenate(times[name]))
        per_round = base_rounds / np.array([np.median(r) for r in times[name]])
        print(f"{name:<52} {t * 1e3:>8.2f} {base_all / t:>8.2f} "
              f"{per_round.min():>6.2f}–{per_round.max():<6.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    args = parser.parse_args()
    layer_rounds, layer_block = (3, 20) if args.quick else (7, 40)
    step_rounds = 3 if args.quick else 6

    print(f"# {platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
          f"Keras {keras.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"# {cpu_model()}; {describe_onednn()}")
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0.5, 2.0, LAYER_SHAPE).astype(np.float32))
    dy = tf.constant(rng.normal(size=LAYER_SHAPE).astype(np.float32))
    diffs = check_equal(x, dy)
    print("# FusedBatchNorm against Keras's layer, one training step on "
          f"{LAYER_SHAPE}: largest relative difference " + ", ".join(
              f"{k} {v:.1e}" for k, v in diffs.items() if not k.startswith("moving"))
          + "; moving statistics: largest absolute difference "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items() if k.startswith("moving")))
    print("# variants take turns call by call (A B, B A, ...); ms: median; × Keras: ratio of "
          "medians to the first row; per round: range of the rounds' ratios")

    table(f"the layer alone: forward + backward on {LAYER_SHAPE} float32, training mode, "
          f"tf.function; {layer_rounds} rounds of {layer_block} calls",
          time_layers(layer_rounds, layer_block), "layer")
    for name, size, channels, width, source, block in STEP_MODELS:
        block = max(3, block // 2) if args.quick else block
        table(f"GANTrainer step, DCGAN {name}, batch {BATCH}, EMA, 1 step/call; "
              f"{step_rounds} rounds of {block} steps",
              time_steps(size, channels, width, source, step_rounds, block), "batch norm")


if __name__ == "__main__":
    main()
