"""The semi-supervised GAN of notebook 08 (Salimans et al., 2016, section 5): the models,
the labelled subset, and a loop that runs the notebook's own training steps.

The discriminator is a classifier with ``K`` logits and no "fake" output: the fake class's
logit is fixed at 0, so that ``D(x) = Z / (Z + 1)`` with ``Z = Σ_k exp(ℓ_k)``, and the
log-sum-exp of the ``K`` logits is the logit of "real". It returns ``[logits, features]``:
the features (its last hidden layer) are what feature matching compares.

The loop calls the steps it is given, compiled with ``tf.function`` in full mode (see
``gancourse.modes.compiled``; eagerly in short mode, where tracing would cost more than the
few steps), feeds them a labelled and an unlabelled batch per step, and measures the
classifier's test accuracy every ``eval_every`` steps, live in a notebook.

>>> import numpy as np
>>> labels = np.repeat(np.arange(3), 5)
>>> index = labelled_subset(labels, per_class=2, seed=0)
>>> np.bincount(labels[index]).tolist()
[2, 2, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def labelled_subset(labels, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` examples of each class, drawn with ``seed``, sorted.

    The rest of the data is used without its labels. Raises ValueError when a class has
    fewer examples than asked for.
    """
    labels = np.asarray(labels).reshape(-1)
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive whole number, got {per_class!r}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) < per_class:
            raise ValueError(f"class {k} has {len(members)} examples, fewer than the "
                             f"{per_class} labelled ones asked for; lower per_class.")
        chosen.append(rng.choice(members, int(per_class), replace=False))
    return np.sort(np.concatenate(chosen))


def classifier_discriminator(num_classes: int, input_shape=(28, 28, 1),
                             hidden=(500, 250, 250), input_noise: float = 0.3,
                             hidden_noise: float = 0.5, name: str = "discriminator"):
    """Salimans et al.'s MNIST discriminator, narrower: x → [K logits, features].

    Gaussian noise (σ ``input_noise``) on the flattened image, then ReLU layers of widths
    ``hidden``, each followed by Gaussian noise (σ ``hidden_noise``); the features are the
    last ReLU layer's output (before its noise), the logits a linear layer on top. The
    noise acts only with ``training=True``: it is the network's regulariser, which a
    classifier of 100 labelled digits needs. The paper's widths are (1000, 500, 250, 250,
    250).
    """
    import keras

    if not hidden:
        raise ValueError("hidden must name at least one layer width: the features are the "
                         "last hidden layer.")
    x = keras.Input(input_shape, name="images")
    h = keras.layers.GaussianNoise(input_noise)(keras.layers.Flatten()(x))
    features = None
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
        features = h
        h = keras.layers.GaussianNoise(hidden_noise)(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(x, [logits, features], name=name)


def feature_matching_generator(latent_dim: int, output_shape=(28, 28, 1), hidden=(500, 500),
                               name: str = "generator"):
    """Salimans et al.'s MNIST generator: z → Dense (no bias) → batch norm → softplus, per
    width of ``hidden``, then a tanh layer reshaped to ``output_shape``."""
    import keras

    z = keras.Input((latent_dim,), name="z")
    h = z
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, use_bias=False, name=f"dense_{i}")(h)
        h = keras.layers.Activation("softplus")(keras.layers.BatchNormalization()(h))
    h = keras.layers.Dense(int(np.prod(output_shape)), activation="tanh", name="pixels")(h)
    return keras.Model(z, keras.layers.Reshape(output_shape)(h), name=name)


def class_accuracy(discriminator, images, labels, batch_size: int = 500) -> float:
    """The fraction of ``images`` whose largest logit (of the K) is their label, with the
    discriminator in inference mode (no noise)."""
    logits = predict_logits(discriminator, images, batch_size)
    return float(np.mean(logits.argmax(axis=1) == np.asarray(labels).reshape(-1)))


def predict_logits(discriminator, images, batch_size: int = 500) -> np.ndarray:
    """The K logits of ``images`` (inference mode), as a NumPy array (n, K)."""
    out = []
    for start in range(0, len(images), batch_size):
        logits = discriminator(images[start:start + batch_size], training=False)
        if isinstance(logits, list | tuple):
            logits = logits[0]
        out.append(np.asarray(logits))
    return np.concatenate(out)


@dataclass
class Run:
    """What :func:`train` measured: per evaluation, the step, the test accuracy and the mean
    of each loss since the previous evaluation; the seconds the training took."""

    name: str
    steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    restored_step: int | None = None  # keep_best: the step whose weights D ends with

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1] if self.accuracy else float("nan")


def _as_dict(result, names) -> dict[str, float]:
    values = result if isinstance(result, list | tuple) else [result]
    if len(values) != len(names):
        raise ValueError(f"a step returned {len(values)} values; the loop expects "
                         f"{len(names)} ({', '.join(names)}).")
    return {name: float(v) for name, v in zip(names, values, strict=True)}


def train(name: str, discriminator, d_step: Callable, labelled, unlabelled, test, steps: int,
          *, g_step: Callable | None = None, d_names=("supervised", "unsupervised"),
          g_names=("feature matching",), batch_size: int = 100, eval_every: int = 100,
          seed: int = 0, compile_steps: Callable | None = None,
          callback: Callable | None = None, keep_best: bool = False,
          progress: bool = True) -> Run:
    """Train with the given steps: ``d_step(x_labelled, y_labelled, x_unlabelled)`` every step
    (its losses named ``d_names``), then ``g_step(x_unlabelled)`` if given (``g_names``).

    Each step draws ``batch_size`` labelled examples (with replacement: there may be fewer
    than a batch) and ``batch_size`` unlabelled ones, with a generator seeded by ``seed``.
    ``labelled`` and ``test`` are ``(images, labels)``, ``unlabelled`` images. Every
    ``eval_every`` steps (and at the end) the classifier's accuracy on ``test`` is measured
    and ``callback(run, step)`` is called. ``compile_steps`` wraps each step before the
    loop (the notebook passes ``gancourse.modes.compiled``). ``keep_best`` gives the
    discriminator, at the end, the weights of its best evaluation (the first of equals):
    early stopping *on the test set*, the most favourable reading of a baseline, which an
    honest experiment could not make (``run.restored_step`` says which). ``progress`` shows
    a progress bar (:func:`gantools.training.bars.progress_bar`).
    """
    import tensorflow as tf

    x_l, y_l = (np.asarray(a) for a in labelled)
    x_u = np.asarray(unlabelled)
    x_t, y_t = (np.asarray(a) for a in test)
    if len(x_l) != len(y_l) or len(x_l) == 0:
        raise ValueError(f"labelled must be (images, labels) of one non-zero length, got "
                         f"{len(x_l)} images and {len(y_l)} labels.")
    wrap = compile_steps or (lambda fn: fn)
    d_call = wrap(d_step)
    g_call = wrap(g_step) if g_step is not None else None
    rng = np.random.default_rng(seed)
    run = Run(name)
    window: dict[str, list[float]] = {}
    best = None
    from .bars import progress_bar

    bar = progress_bar(steps, progress)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        i_l = rng.integers(0, len(x_l), batch_size)
        i_u = rng.integers(0, len(x_u), batch_size)
        batch_u = tf.constant(x_u[i_u])
        results = _as_dict(d_call(tf.constant(x_l[i_l]), tf.constant(y_l[i_l]), batch_u),
                           d_names)
        if g_call is not None:
            results.update(_as_dict(g_call(batch_u), g_names))
        for key, value in results.items():
            window.setdefault(key, []).append(value)
        bar.update(1)
        bar.set_postfix({key: f"{value:.3f}" for key, value in results.items()}, refresh=False)
        if step % eval_every == 0 or step == steps:
            run.seconds = time.perf_counter() - start
            run.steps.append(step)
            run.accuracy.append(class_accuracy(discriminator, x_t, y_t))
            for key, values in window.items():
                run.losses.setdefault(key, []).append(float(np.mean(values)))
            window = {}
            if keep_best and (best is None or run.accuracy[-1] > max(run.accuracy[:-1])):
                best = (step, discriminator.get_weights())
            if callback is not None:
                callback(run, step)
            start = time.perf_counter() - run.seconds  # evaluation time is not training time
    bar.close()
    if best is not None:
        run.restored_step = best[0]
        discriminator.set_weights(best[1])
    return run


class LiveAccuracy:
    """A :func:`train` callback: the test accuracy so far (beside the curves of ``others``,
    finished runs to compare with; a run that kept its best weights also as a dashed line at
    that accuracy) and, given a generator, its samples from one fixed latent batch; redrawn
    in place in a notebook, one line per call elsewhere. ``colours`` maps run names to
    colours (default: this run C0, the others grey)."""

    def __init__(self, generator=None, latent_dim: int | None = None, others=(),
                 samples: int = 50, seed: int = 0, notebook: bool | None = None,
                 colours: dict | None = None):
        from ..runtime import in_notebook

        self.generator, self.others = generator, list(others)
        self.colours = dict(colours or {})
        self.notebook = in_notebook() if notebook is None else notebook
        self.z = None
        if generator is not None:
            if latent_dim is None:
                raise ValueError("LiveAccuracy needs latent_dim to draw the generator's samples.")
            self.z = np.random.default_rng(seed).standard_normal(
                (samples, latent_dim)).astype(np.float32)
        self._handle = None
        if self.notebook:
            from IPython import display as ipd

            self._handle = ipd.display(ipd.HTML("<b>waiting for the first evaluation</b>"),
                                       display_id=True)

    def figure(self, run):
        import matplotlib.pyplot as plt

        from ..viz.images import as_unit, tile

        columns = 2 if self.generator is not None else 1
        fig, axes = plt.subplots(1, columns, figsize=(5.2 * columns, 3.6), squeeze=False)
        ax = axes[0, 0]
        for other in self.others:
            colour = self.colours.get(other.name, "0.6")
            ax.plot(other.steps, other.accuracy, color=colour, label=other.name)
            if other.restored_step is not None:
                ax.axhline(max(other.accuracy), color=colour, linestyle="--", linewidth=1,
                           label=f"{other.name}, at its best")
        ax.plot(run.steps, run.accuracy, color=self.colours.get(run.name, "C0"),
                label=run.name)
        ax.set(xlabel="step", ylabel="test accuracy", ylim=(0, 1),
               title=f"{run.name}: {run.final_accuracy:.1%} at step {run.steps[-1]}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        if self.generator is not None:
            images = np.asarray(self.generator(self.z, training=False))
            axes[0, 1].imshow(tile(as_unit(images), 10), vmin=0, vmax=1,
                              interpolation="nearest")
            axes[0, 1].set_title("G's samples from one fixed z")
            axes[0, 1].axis("off")
        fig.tight_layout()
        return fig

    def __call__(self, run, step) -> None:
        if not self.notebook:
            print(f"[{run.name}] step {step}: test accuracy {run.final_accuracy:.1%}")
            return
        from IPython import display as ipd

        from ..viz.live import _png

        self._handle.update(ipd.Image(data=_png(self.figure(run)), format="png"))
