"""CycleGAN on two unpaired digit domains (Zhu et al., 2017; notebook 09): the domains, the
networks, and a loop that runs a notebook's own generator step and image pool.

Domain A is the 8×8 UCI scans of ``digits`` (thick, blurry), resized to 20×20 and framed
by 4 background pixels to 28×28, as MNIST frames its digits; domain B is ``mnist5k``'s
28×28 MNIST digits (thin, sharp). Without the frame the two domains differ most in the
digits' *size*, which a convolutional generator does not learn to change, and each
domain's classifier reads the other domain's digits poorly for that reason alone.

The generators map 28×28 → 14×14 → 7×7, through residual blocks, back to 28×28 (instance
normalisation, ReLU, tanh); the discriminators score 7×7 patches (least-squares outputs).
:func:`train` calls the notebook's generator step (compiled by the notebook's ``compiled``)
with one batch of each domain, shows the discriminators fakes through the notebook's image
pool, and updates them with the least-squares loss.

>>> import numpy as np
>>> a, labels = framed_digits("test")
>>> a.shape, float(a[:, :4].max())  # the frame is background
((359, 28, 28, 1), -1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

FRAME = 4  # background pixels around domain A's 20×20 digits, as MNIST's 20×20 in 28×28


def framed_digits(split: str = "train"):
    """Domain A: ``digits`` at 20×20 with a frame of 4 background pixels, (n, 28, 28, 1) in
    [-1, 1], and their labels."""
    from .. import data as gd

    x, y = gd.arrays("digits", split, image_size=28 - 2 * FRAME)
    x = np.pad(x, ((0, 0), (FRAME, FRAME), (FRAME, FRAME), (0, 0)), constant_values=-1.0)
    return x.astype(np.float32), y


def resnet_generator(width: int = 16, residual_blocks: int = 2, image_size: int = 28,
                     name: str = "generator"):
    """28×28 → 14×14 → 7×7 (width, 2·width channels), ``residual_blocks`` residual blocks at
    7×7, then back up to 28×28 with tanh; instance norm and ReLU after each convolution."""
    import keras
    from keras import layers

    def norm():
        return layers.GroupNormalization(groups=-1)  # one group per channel: instance norm

    x = keras.Input((image_size, image_size, 1), name="images")
    h = layers.ReLU()(norm()(layers.Conv2D(width, 4, strides=2, padding="same")(x)))
    h = layers.ReLU()(norm()(layers.Conv2D(2 * width, 3, strides=2, padding="same")(h)))
    for _ in range(residual_blocks):
        r = layers.ReLU()(norm()(layers.Conv2D(2 * width, 3, padding="same")(h)))
        h = layers.Add()([h, norm()(layers.Conv2D(2 * width, 3, padding="same")(r))])
    h = layers.ReLU()(norm()(layers.Conv2DTranspose(width, 3, strides=2, padding="same")(h)))
    y = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")(h)
    return keras.Model(x, y, name=name)


def patch_discriminator(width: int = 16, image_size: int = 28, name: str = "discriminator"):
    """PatchGAN: two stride-2 convolutions (LeakyReLU 0.2, instance norm on the second), then
    one score per 7×7 patch: a least-squares discriminator judges each patch."""
    import keras
    from keras import layers

    x = keras.Input((image_size, image_size, 1), name="images")
    h = layers.LeakyReLU(0.2)(layers.Conv2D(width, 4, strides=2, padding="same")(x))
    h = layers.Conv2D(2 * width, 4, strides=2, padding="same")(h)
    h = layers.LeakyReLU(0.2)(layers.GroupNormalization(groups=-1)(h))
    return keras.Model(x, layers.Conv2D(1, 3, padding="same")(h), name=name)


def translate(model, images, batch_size: int = 256) -> np.ndarray:
    """``model`` applied to ``images`` in inference mode, batch by batch, as NumPy."""
    return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)])


def centre_crop(images, size: int = 32) -> np.ndarray:
    """Domain A's digit without its frame, resized to ``size`` (the ``digits`` classifier
    reads 32×32 images)."""
    import tensorflow as tf

    inner = np.asarray(images)[:, FRAME:-FRAME, FRAME:-FRAME]
    return tf.image.resize(inner, (size, size)).numpy()


def class_kept(translated, labels, domain: str) -> float:
    """The fraction of translated images that the bundled classifier of the target domain
    reads as their source image's label: ``domain="B"`` reads MNIST-like images with the
    ``mnist5k`` classifier, ``domain="A"`` framed scans with the ``digits`` classifier (on
    the centre crop)."""
    from .. import metrics as gm

    if domain == "B":
        return gm.real_label_accuracy(translated, labels, "mnist5k")["accuracy"]
    if domain == "A":
        return gm.real_label_accuracy(centre_crop(translated), labels, "digits")["accuracy"]
    raise ValueError(f"domain must be 'A' (the framed digits scans) or 'B' (MNIST), got "
                     f"{domain!r}.")


@dataclass
class Run:
    """What :func:`train` measured: per report, the step and the mean of each loss since the
    previous report; the seconds the training took."""

    name: str
    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def train(name: str, generators, discriminators, g_step: Callable, pool_query: Callable,
          domain_a, domain_b, steps: int, *, batch_size: int = 32, pool_size: int = 50,
          learning_rate: float = 2e-4, beta_1: float = 0.5, every: int = 100, seed: int = 0,
          compile_steps: Callable | None = None, callback: Callable | None = None,
          progress: bool = True) -> Run:
    """Train ``generators = (G, F)`` with ``g_step(real_a, real_b)`` (which returns its three
    losses, adversarial, cycle, identity, and updates both generators), and
    ``discriminators = (D_A, D_B)`` here: each step D_A sees real A and a batch of fakes
    ``F(b)`` drawn through ``pool_query(pool, fakes, pool_size, rng)`` from its own pool,
    D_B likewise, with the least-squares loss ½[mean (D(x) − 1)² + mean D(fake)²]
    (Adam, ``learning_rate``, ``beta_1``). Batches come from shuffled epochs of each domain.
    ``callback(run, step)`` every ``every`` steps and at the end; ``progress`` shows a
    progress bar (:func:`gantools.training.bars.progress_bar`)."""
    import keras
    import tensorflow as tf

    g_ab, g_ba = generators
    d_a, d_b = discriminators
    d_vars = d_a.trainable_variables + d_b.trainable_variables
    d_opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1)
    d_opt.build(d_vars)

    def d_step(real_a, real_b, pooled_a, pooled_b):
        with tf.GradientTape() as tape:
            loss = 0.0
            for d, real, fake in ((d_a, real_a, pooled_a), (d_b, real_b, pooled_b)):
                loss += 0.5 * (tf.reduce_mean(tf.square(d(real, training=True) - 1.0))
                               + tf.reduce_mean(tf.square(d(fake, training=True))))
        d_opt.apply_gradients(zip(tape.gradient(loss, d_vars), d_vars, strict=True))
        return loss

    def fakes(real_a, real_b):
        return g_ab(real_a, training=True), g_ba(real_b, training=True)

    wrap = compile_steps or (lambda fn: fn)
    g_call, d_call, fake_call = wrap(g_step), wrap(d_step), wrap(fakes)
    rng = np.random.default_rng(seed)
    pools = {"A": [], "B": []}

    def batches(x):
        while True:
            order = rng.permutation(len(x))
            for start in range(0, len(x) - batch_size + 1, batch_size):
                yield x[order[start:start + batch_size]]

    from_a, from_b = batches(np.asarray(domain_a)), batches(np.asarray(domain_b))
    run, window = Run(name), {}
    from .bars import progress_bar

    bar = progress_bar(steps, progress)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        real_a, real_b = tf.constant(next(from_a)), tf.constant(next(from_b))
        losses = g_call(real_a, real_b)
        if not isinstance(losses, list | tuple) or len(losses) != 3:
            raise ValueError("the generator step must return its three losses, "
                             "(adversarial, cycle, identity).")
        fake_b, fake_a = fake_call(real_a, real_b)
        pooled_a = pool_query(pools["A"], np.asarray(fake_a), pool_size, rng)
        pooled_b = pool_query(pools["B"], np.asarray(fake_b), pool_size, rng)
        d_loss = d_call(real_a, real_b, tf.constant(np.asarray(pooled_a, np.float32)),
                        tf.constant(np.asarray(pooled_b, np.float32)))
        values = dict(zip(("adversarial", "cycle", "identity"), losses, strict=True))
        values["discriminators"] = d_loss
        for key, value in values.items():
            window.setdefault(key, []).append(float(value))
        bar.update(1)
        bar.set_postfix({key: f"{value[-1]:.3f}" for key, value in window.items()},
                        refresh=False)
        if step % every == 0 or step == steps:
            run.seconds = time.perf_counter() - start
            run.steps.append(step)
            for key, value in window.items():
                run.losses.setdefault(key, []).append(float(np.mean(value)))
            window = {}
            if callback is not None:
                callback(run, step)
            start = time.perf_counter() - run.seconds
    bar.close()
    return run


class LiveTranslations:
    """A :func:`train` callback: the fixed images of each domain and their translations
    (rows a, G(a), b, F(b)), redrawn in place in a notebook; one line per call elsewhere."""

    def __init__(self, g_ab, g_ba, fixed_a, fixed_b, notebook: bool | None = None):
        from ..runtime import in_notebook

        self.g_ab, self.g_ba = g_ab, g_ba
        self.fixed_a, self.fixed_b = np.asarray(fixed_a), np.asarray(fixed_b)
        self.notebook = in_notebook() if notebook is None else notebook
        self._handle = None
        if self.notebook:
            from IPython import display as ipd

            self._handle = ipd.display(ipd.HTML("<b>waiting for the first translations</b>"),
                                       display_id=True)

    def figure(self, run, step):
        import matplotlib.pyplot as plt

        from ..viz.images import as_unit, tile

        rows = [("a", self.fixed_a), ("G(a)", translate(self.g_ab, self.fixed_a)),
                ("b", self.fixed_b), ("F(b)", translate(self.g_ba, self.fixed_b))]
        fig, axes = plt.subplots(1, 2, figsize=(11, 2.6),
                                 gridspec_kw={"width_ratios": [2.2, 1]})
        grid = np.concatenate([tile(as_unit(images), len(images)) for _, images in rows])
        axes[0].imshow(grid, vmin=0, vmax=1, interpolation="nearest")
        axes[0].set_yticks([(i + 0.5) * grid.shape[0] / len(rows) for i in range(len(rows))],
                           [label for label, _ in rows])
        axes[0].set_xticks([])
        axes[0].set_title(f"{run.name}, step {step}", fontsize=10)
        for key, values in run.losses.items():
            axes[1].plot(run.steps, values, label=key)
        axes[1].set(xlabel="step", yscale="log", title="losses (mean since the last point)")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        return fig

    def __call__(self, run, step) -> None:
        if not self.notebook:
            print(f"[{run.name}] step {step}: " + ", ".join(
                f"{key} {values[-1]:.3f}" for key, values in run.losses.items()))
            return
        from IPython import display as ipd

        from ..viz.live import _png

        self._handle.update(ipd.Image(data=_png(self.figure(run, step)), format="png"))
