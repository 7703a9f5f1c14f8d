"""A style-based generator grown 7 → 14 → 28 with fade-in, its mirrored discriminator, and
the loop that trains them (notebook 10).

The generator carries the pieces of PGGAN and StyleGAN at a size a CPU trains in minutes:

* a **mapping network**: z through ``mapping_layers`` equalised dense layers (learning
  rate × 0.01, as StyleGAN) to w. StyleGAN pixel-normalises z first; here z goes in as it
  is, so that BigGAN's truncation of z (smaller entries, a smaller z) reaches w;
* a **synthesis network**: a 7×7 map made from the first resolution's w by an equalised
  dense layer and pixel-normalised (PGGAN starts from z this way; ``start="const"``:
  StyleGAN's learned constant, which drew fewer legible digits at notebook 10's budget, 35 %
  against 46 %), then per resolution (7, 14, 28) one or two modulated 3×3 convolutions
  (:class:`~gantools.models.scaling.ModulatedConv2D`), all driven by that resolution's w,
  and a 1×1 "to image" layer per resolution;
* **progressive growing**: training starts at 7×7; each new resolution is faded in,
  image = ``fade_in(α, to_image_new(h), upsample(to_image_old(h_old)))`` with α rising from
  0 to 1, then trained alone;
* **style mixing**: each resolution can take its own w (:meth:`StyleGenerator.synthesize`);
  during training a fraction ``mixing`` of the batches switch from one z's w to another's
  at a random resolution, as StyleGAN's mixing regulariser.

The discriminator mirrors it: a 1×1 "from image" layer per resolution, two equalised 3×3
convolutions and an average pool per resolution, the minibatch standard deviation at 7×7,
then two dense layers; a new resolution is faded in at its input. Every layer uses the
equalised learning rate (``equalized=False``: the same networks with He-initialised
weights and no run-time scale). The notebook passes its own ``pixel_norm``,
``minibatch_stddev`` and ``fade_in``; the defaults are those of
:mod:`gantools.models.scaling`.

Losses: the non-saturating logistic loss of StyleGAN (notebook 01's),
D: E softplus(−ℓ(x)) + E softplus(ℓ(G(z))), G: E softplus(−ℓ(G(z))); Adam with
β = (0, 0.99) as PGGAN and StyleGAN; optionally an EMA copy of G draws the samples (on
notebook 10's schedule at a learning rate of 2e-3, the EMA copy, at decay 0.999 or 0.99,
drew fewer legible digits than G itself, 25 to 30 % against 31 to 33 %).

>>> g = StyleGenerator(latent_dim=8, w_dim=8, widths=(8, 4, 4))
>>> import numpy as np
>>> [tuple(g(np.zeros((2, 8), "float32"), stage=s).shape) for s in range(3)]
[(2, 7, 7, 1), (2, 14, 14, 1), (2, 28, 28, 1)]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ..models import scaling

RESOLUTIONS = (7, 14, 28)


def _mix(ws, w_other, crossover):
    """Per-resolution styles: ``ws`` (N, R, w_dim) with rows ≥ ``crossover`` from w_other.
    (Float arithmetic throughout: oneDNN warns about int32 tensors on CPUs without AVX-512.)"""
    index = tf.constant(np.arange(len(RESOLUTIONS), dtype=np.float32))[None, :, None]
    keep = tf.cast(index < tf.cast(crossover, tf.float32), tf.float32)
    return keep * ws + (1.0 - keep) * w_other[:, None, :]


class StyleGenerator(keras.Model):
    """z → w (mapping) → image at resolution ``RESOLUTIONS[stage]`` (synthesis).

    ``generator.generate(z, stage, alpha, fading)``; ``alpha`` is the fade-in weight of the
    newest resolution, used when ``fading`` is true.
    """

    def __init__(self, latent_dim: int = 64, w_dim: int = 64, mapping_layers: int = 2,
                 widths=(64, 32, 16), mapping_lr: float = 0.01, equalized: bool = True,
                 normalize: Callable = scaling.pixel_norm, blend: Callable = scaling.fade_in,
                 start: str = "dense", **kwargs):
        super().__init__(**kwargs)
        if len(widths) != len(RESOLUTIONS):
            raise ValueError(f"widths needs one width per resolution {RESOLUTIONS}, got "
                             f"{widths!r}.")
        self.latent_dim, self.w_dim = int(latent_dim), int(w_dim)
        self.normalize, self.blend = normalize, blend
        self.mapping = [scaling.EqualizedDense(
            w_dim, activation="lrelu", equalized=equalized,
            lr_multiplier=mapping_lr if equalized else 1.0, name=f"mapping{i + 1}")
            for i in range(mapping_layers)]
        if start not in ("dense", "const"):
            raise ValueError(f"start must be 'dense' or 'const', got {start!r}.")
        self.start, self.width = start, int(widths[0])
        if start == "const":  # a learned 7×7 map, the same for every z
            self.start_map = self.add_weight(
                shape=(1, 7, 7, widths[0]), name="const",
                initializer=keras.initializers.RandomNormal(0.0, 1.0))
        else:  # a dense layer from w to the 7×7 map
            self.start_map = scaling.EqualizedDense(49 * widths[0], gain=1.0,
                                                    equalized=equalized, name="start")
        self.blocks = [[scaling.ModulatedConv2D(widths[r], equalized=equalized,
                                                name=f"conv{res}_{k}")
                        for k in range(1 if r == 0 else 2)]
                       for r, res in enumerate(RESOLUTIONS)]
        self.to_image = [scaling.ModulatedConv2D(1, 1, demodulate=False, activation=None,
                                                 equalized=equalized, name=f"to_image{res}")
                         for res in RESOLUTIONS]
        self.num_styles = len(RESOLUTIONS)
        z = np.zeros((1, latent_dim), np.float32)
        self.generate(z, stage=len(RESOLUTIONS) - 1, fading=True)  # builds every layer
        for stage in range(len(RESOLUTIONS) - 1):
            self.generate(z, stage=stage)

    def map(self, z):
        """w = mapping(z), (N, w_dim)."""
        h = tf.convert_to_tensor(z, tf.float32)
        for layer in self.mapping:
            h = layer(h)
        return h

    def styles(self, z):
        """One w per resolution, all the same: (N, R, w_dim)."""
        w = self.map(z)
        return tf.stack([w] * self.num_styles, axis=1)  # (tf.tile's gradient: int32 notes)

    def synthesize(self, ws, stage: int = 2, alpha=1.0, fading: bool = False):
        """The image at resolution ``RESOLUTIONS[stage]`` from per-resolution styles ``ws``."""
        if self.start == "const":
            h = tf.repeat(self.start_map, tf.shape(ws)[0], axis=0)
        else:
            h = self.normalize(scaling.leaky_relu(
                tf.reshape(self.start_map(ws[:, 0]), [-1, 7, 7, self.width])))
        previous = None
        for r in range(stage + 1):
            if r > 0:
                previous = h
                h = scaling.upsample(h)
            for conv in self.blocks[r]:
                h = conv([h, ws[:, r]])
        image = self.to_image[stage]([h, ws[:, stage]])
        if fading and stage > 0:
            old = self.to_image[stage - 1]([previous, ws[:, stage - 1]])
            image = self.blend(alpha, image, old)
        return image

    def generate(self, z, stage: int = 2, alpha=1.0, fading: bool = False, mixing=None):
        """Images from ``z``; ``mixing=(z2, crossover)`` takes the styles of resolutions
        ``crossover`` and above from ``z2``."""
        ws = self.styles(z)
        if mixing is not None:  # (other z, crossover resolution index)
            ws = _mix(ws, self.map(mixing[0]), mixing[1])
        return self.synthesize(ws, stage, alpha, fading)

    def call(self, z, stage: int = 2):
        return self.generate(z, stage)


class ProgressiveDiscriminator(keras.Model):
    """image at resolution ``RESOLUTIONS[stage]`` → one logit; ``stddev`` (a function adding
    one channel, or None) is applied at 7×7 before the last convolution."""

    def __init__(self, widths=(16, 32, 64), equalized: bool = True,
                 stddev: Callable | None = scaling.minibatch_stddev, **kwargs):
        super().__init__(**kwargs)
        w28, w14, w7 = widths

        def conv(width, name, k=3):
            return scaling.EqualizedConv2D(width, k, activation="lrelu", equalized=equalized,
                                           name=name)

        self.stddev = stddev
        self.from_image = [conv(width, f"from_image{res}", 1)
                           for width, res in zip((w7, w14, w28), RESOLUTIONS, strict=True)]
        self.blocks = [[conv(w7, "conv7")],
                       [conv(w14, "conv14_1"), conv(w7, "conv14_2")],
                       [conv(w28, "conv28_1"), conv(w14, "conv28_2")]]
        self.dense = scaling.EqualizedDense(w7, activation="lrelu", equalized=equalized,
                                            name="dense")
        self.logit = scaling.EqualizedDense(1, gain=1.0, equalized=equalized, name="logit")
        self.score(np.zeros((2, 28, 28, 1), np.float32), stage=2, fading=True)
        for stage in range(len(RESOLUTIONS) - 1):
            self.score(np.zeros((2, RESOLUTIONS[stage], RESOLUTIONS[stage], 1), np.float32),
                       stage=stage)

    def _block(self, r, h):
        for conv in self.blocks[r]:
            if r == 0 and self.stddev is not None:
                h = self.stddev(h)
            h = conv(h)
        return scaling.downsample(h) if r > 0 else h

    def score(self, x, stage: int = 2, alpha=1.0, fading: bool = False):
        """The logits of ``x`` (at ``RESOLUTIONS[stage]``), fading in that resolution's
        input layers with weight ``alpha`` when ``fading``."""
        h = self._block(stage, self.from_image[stage](x))
        if fading and stage > 0:
            old = self.from_image[stage - 1](scaling.downsample(x))
            h = alpha * h + (1.0 - alpha) * old  # the same blend, at the lower resolution
        for r in range(stage - 1, -1, -1):
            h = self._block(r, h)
        h = tf.reshape(h, [tf.shape(h)[0], -1])
        return self.logit(self.dense(h))

    def call(self, x, stage: int = 2):
        return self.score(x, stage)


def real_at(images, stage: int):
    """``images`` (28×28) average-pooled down to ``RESOLUTIONS[stage]``."""
    x = tf.convert_to_tensor(images, tf.float32)
    for _ in range(len(RESOLUTIONS) - 1 - stage):
        x = scaling.downsample(x)
    return x


def phases(steps_per_stage, fade_steps):
    """The schedule: (stage, fading, steps) for 7×7, then fade-in and training at 14×14 and
    at 28×28. ``steps_per_stage``: steps at full α per resolution; ``fade_steps``: steps
    over which α rises from 0 to 1 for each new resolution."""
    out = [(0, False, steps_per_stage[0])]
    for stage in (1, 2):
        out += [(stage, True, fade_steps), (stage, False, steps_per_stage[stage])]
    return [p for p in out if p[2] > 0]


@dataclass
class Run:
    """What :func:`train` recorded: per report, the step, the resolution, α and the mean
    losses since the last report; the EMA generator's samples of ``z_fixed`` at the end of
    each resolution; the seconds each phase took."""

    name: str
    steps: list[int] = field(default_factory=list)
    resolution: list[int] = field(default_factory=list)
    alpha: list[float] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=lambda: {"D": [], "G": []})
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    phase_seconds: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class _OnePhaseOneTrace(logging.Filter):
    """Each phase traces its own step once (five phases, five traces of one Python function);
    TensorFlow's note that the function "triggered tf.function retracing" is expected here."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _adam(learning_rate):
    return keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99, epsilon=1e-8)


def _used(model, loss_fn):
    """The trainable variables ``loss_fn()`` depends on (later resolutions' layers are
    unused before they are grown)."""
    with tf.GradientTape() as tape:
        loss = loss_fn()
    variables = model.trainable_variables
    return [v for v, g in zip(variables, tape.gradient(loss, variables), strict=True)
            if g is not None]


def ema_copy(generator: StyleGenerator, **kwargs) -> StyleGenerator:
    """A second generator of the same architecture with ``generator``'s weights."""
    ema = StyleGenerator(**kwargs)
    ema.set_weights(generator.get_weights())
    return ema


def sample(generator, z, stage: int = 2, batch_size: int = 500) -> np.ndarray:
    """``generator``'s images of ``z`` at ``RESOLUTIONS[stage]``, clipped to [−1, 1]."""
    out = [generator(tf.constant(z[i:i + batch_size]), stage=stage).numpy()
           for i in range(0, len(z), batch_size)]
    return np.clip(np.concatenate(out), -1.0, 1.0)


class _Phase:
    """The networks at one phase of growth: scoring and generating at ``stage``."""

    def __init__(self, generator, discriminator, stage, alpha, fading, mixing):
        self.g, self.d, self.stage, self.alpha, self.fading = (generator, discriminator, stage,
                                                               alpha, fading)
        self.mixing = mixing

    def score(self, x):
        return self.d.score(x, stage=self.stage, alpha=self.alpha, fading=self.fading)

    def generate(self, n):
        latent = self.g.latent_dim
        mixed = None
        if self.stage > 0 and self.mixing > 0:  # a second z from a random resolution on
            crossover = tf.floor(tf.random.uniform((), 1.0, self.stage + 1.0))
            use = tf.cast(tf.random.uniform(()) < self.mixing, tf.float32)
            mixed = (tf.random.normal((n, latent)),
                     use * crossover + (1.0 - use) * len(RESOLUTIONS))
        return self.g.generate(tf.random.normal((n, latent)), stage=self.stage,
                               alpha=self.alpha, fading=self.fading, mixing=mixed)

    def d_loss(self, real, r1):
        """E softplus(−ℓ(x)) + E softplus(ℓ(G(z))) + (γ/2) E ||∇_x ℓ(x)||² (R1)."""
        fake = self.generate(tf.shape(real)[0])
        with tf.GradientTape() as inner:
            inner.watch(real)
            real_logits = self.score(real)
            real_total = tf.reduce_sum(real_logits)
        loss = (tf.reduce_mean(tf.nn.softplus(-real_logits))
                + tf.reduce_mean(tf.nn.softplus(self.score(fake))))
        if r1 > 0:
            slope = inner.gradient(real_total, real)
            loss += 0.5 * r1 * tf.reduce_mean(tf.reduce_sum(tf.square(slope), axis=[1, 2, 3]))
        return loss

    def g_loss(self, n):
        """E softplus(−ℓ(G(z))): the non-saturating loss."""
        return tf.reduce_mean(tf.nn.softplus(-self.score(self.generate(n))))


def _phase_step(generator, discriminator, ema, stage, fading, alpha, updates, *, learning_rate,
                r1, mixing, ema_decay, blend):
    """The step of one phase: its own optimizers over the variables the phase uses."""
    from .ema import ema_update, warmup_decay

    z2, probe = tf.zeros((2, generator.latent_dim)), tf.zeros((2, RESOLUTIONS[stage],
                                                               RESOLUTIONS[stage], 1))
    g_vars = _used(generator, lambda: tf.reduce_sum(discriminator.score(
        generator.generate(z2, stage=stage, alpha=0.5, fading=fading, mixing=(z2, 1.0)),
        stage=stage, alpha=0.5, fading=fading)))
    d_vars = _used(discriminator, lambda: tf.reduce_sum(
        discriminator.score(probe, stage=stage, alpha=0.5, fading=fading)))
    g_opt, d_opt = _adam(learning_rate), _adam(learning_rate)
    g_opt.build(g_vars)
    d_opt.build(d_vars)

    phase = _Phase(generator, discriminator, stage, alpha, fading, mixing)

    def step(real):
        if fading:
            real = blend(alpha, real, scaling.downsample(real))
        with tf.GradientTape() as tape:
            d_loss = phase.d_loss(real, r1)
        d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        with tf.GradientTape() as tape:
            g_loss = phase.g_loss(tf.shape(real)[0])
        g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
        if ema is not None:
            ema_update(ema, generator, warmup_decay(ema_decay, updates))
            updates.assign_add(1)
        return d_loss, g_loss
    return step


def train(name: str, generator: StyleGenerator, discriminator: ProgressiveDiscriminator,
          images, schedule, *, ema: StyleGenerator | None = None, batch_size: int = 32,
          learning_rate: float = 2e-3, r1: float = 0.0, mixing: float = 0.9,
          ema_decay: float = 0.999, z_fixed=None, every: int = 50, seed: int = 0,
          compile_steps: Callable | None = None, callback: Callable | None = None,
          progress: bool = True) -> Run:
    """Train by ``schedule`` (a list of (stage, fading, steps), see :func:`phases`), one D
    update then one G update per step, on batches of ``images`` (28×28, [−1, 1]) pooled to
    the stage's resolution; while a resolution fades in, α rises linearly from 0 to 1 and
    the real images are blended with the generator's ``blend`` (the fade-in), α·x +
    (1 − α)·upsample(downsample(x)), so that D sees real and generated images of the same
    kind. ``r1``: the R1 penalty's γ. ``compile_steps`` wraps each phase's step (the
    notebook's ``compiled``); ``callback(run, generator)`` every ``every`` steps. ``ema``:
    a copy of the generator (:func:`ema_copy`) kept as the average of its weights (decay
    ``ema_decay``, with warm-up), which then draws the snapshots: the images of
    ``z_fixed`` at the end of each resolution."""
    from .bars import progress_bar

    images = np.asarray(images, np.float32)
    rng = np.random.default_rng(seed)
    wrap = compile_steps or (lambda fn: fn)
    run = Run(name)
    total = sum(steps for _, _, steps in schedule)
    updates = tf.Variable(0, dtype=tf.int64, trainable=False)
    alpha = tf.Variable(1.0, trainable=False)
    bar = progress_bar(total, progress)
    step, window = 0, {"D": [], "G": []}
    start = time.perf_counter()

    def batches():
        while True:
            order = rng.permutation(len(images))
            for i in range(0, len(images) - batch_size + 1, batch_size):
                yield images[order[i:i + batch_size]]

    source = batches()
    drawer = generator if ema is None else ema
    quiet = _OnePhaseOneTrace()
    logging.getLogger("tensorflow").addFilter(quiet)
    try:
        for stage, fading, steps in schedule:
            phase_start = time.perf_counter()
            call = wrap(_phase_step(generator, discriminator, ema, stage, fading, alpha, updates,
                                    learning_rate=learning_rate, r1=r1, mixing=mixing,
                                    ema_decay=ema_decay, blend=generator.blend))
            for i in range(steps):
                alpha.assign((i + 1) / steps if fading else 1.0)
                d_loss, g_loss = call(real_at(next(source), stage))
                window["D"].append(float(d_loss))
                window["G"].append(float(g_loss))
                if not np.isfinite(window["D"][-1]):
                    raise FloatingPointError(f"{name}: the discriminator's loss is not finite "
                                             f"at step {step + 1}.")
                step += 1
                bar.update(1)
                if step % every == 0 or step == total:
                    run.steps.append(step)
                    run.resolution.append(RESOLUTIONS[stage])
                    run.alpha.append(float(alpha.numpy()))
                    for key in window:
                        run.losses[key].append(float(np.mean(window[key])))
                        window[key] = []
                    if callback is not None:
                        callback(run, drawer)
            label = f"{RESOLUTIONS[stage]}×{RESOLUTIONS[stage]}" + (" fade-in" if fading else "")
            run.phase_seconds.append((label, time.perf_counter() - phase_start))
            if z_fixed is not None and not fading:
                run.snapshots[RESOLUTIONS[stage]] = sample(drawer, z_fixed, stage)
    finally:
        logging.getLogger("tensorflow").removeFilter(quiet)
    bar.close()
    run.seconds = time.perf_counter() - start
    return run
