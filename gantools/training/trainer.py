"""The GAN trainer: models, options, compiled steps, checkpoints and the training loop.

:class:`GANTrainer` takes a generator and a discriminator and trains them with the updates
of :class:`~gantools.training.steps.StepMath` (where the maths of a step is written out),
compiled with ``tf.function``, under a ``tf.distribute`` strategy when given one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .. import runtime
from ..losses import check_per_example, resolve_loss
from ..losses.features import feature_extractor
from ..losses.features import feature_matching_loss as _feature_matching_loss
from ..models import check_compatible, num_classes_of
from .diagnostics import Diagnostician, diversity
from .ema import check_decay, clone_generator
from .history import METRICS, History
from .interrupt import deferred_interrupt
from .steps import StepMath

PENALTIES = (None, "gp", "r1")


class _NotebookLine:
    """Where tqdm writes in a notebook: each redraw replaces one text output, so the
    notebook shows (and keeps when saved) the bar's latest line only."""

    encoding = "utf-8"  # tqdm draws its bar with block characters, not #

    def __init__(self):
        from IPython.display import display

        self.line = "training: compiling the step"
        self.handle = display({"text/plain": self.line}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        parts = [part.rstrip() for part in text.replace("\n", "\r").split("\r")]
        parts = [part for part in parts if part]
        if parts and parts[-1] != self.line:
            self.line = parts[-1]
            self.handle.update({"text/plain": self.line}, raw=True)

    def flush(self) -> None:
        pass


class TrainingDiverged(FloatingPointError):
    """A loss or gradient norm became NaN or infinite."""


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_options(discriminator, conditional, *, penalty, augment, reuse_fakes,
                   feature_matching, feature_layers, num_classes):
    """Raise ``ValueError`` naming the first option that cannot work, and what to pass
    instead; returns G's feature-matching loss (None when G uses the adversarial loss)."""
    if penalty not in PENALTIES and not callable(penalty):
        raise ValueError(f"unknown penalty {penalty!r}; choose None, 'gp', 'r1' or a "
                         "callable penalty(critic, real, fake) -> scalar.")
    if penalty is not None:
        check_per_example(discriminator)
    if augment is not None and not callable(augment):
        raise ValueError(f"augment must be callable (images -> images), got {augment!r}.")
    if not isinstance(reuse_fakes, bool):
        raise ValueError(f"reuse_fakes must be True or False, got {reuse_fakes!r}.")
    if feature_matching is True:
        feature_matching = _feature_matching_loss
    if feature_matching not in (None, False) and not callable(feature_matching):
        raise ValueError("feature_matching must be None, True or a callable "
                         f"(real_features, fake_features) -> loss, got {feature_matching!r}.")
    if feature_layers is not None and not feature_matching:
        raise ValueError("feature_layers only applies with feature_matching; pass "
                         "feature_matching=True as well.")
    if num_classes is not None and not conditional:
        raise ValueError("num_classes is for a conditional GAN, whose generator takes "
                         "[z, labels]; this generator takes z alone.")
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, int) or num_classes < 2):
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    return feature_matching or None


class GANTrainer(StepMath):
    """Trains a generator and a discriminator with explicit GradientTape steps.

    Args:
        generator, discriminator: Keras models (conditional ones take ``[x, labels]``).
        loss: a name from :func:`gantools.losses.loss_names`, a ``LossPair``, or a pair
            of callables ``(d_loss(real_out, fake_out), g_loss(fake_out))``.
        d_optimizer, g_optimizer: default Adam(learning_rate, beta_1): DCGAN's 2e-4, 0.5.
        n_critic: discriminator updates per generator update (5 for WGAN).
        penalty: ``None``, ``"gp"`` (WGAN-GP), ``"r1"``, or a callable
            ``penalty(critic, real, fake) -> scalar`` (e.g. your own gradient penalty),
            weighted by ``penalty_weight`` (λ). A penalty on input gradients needs a critic
            without batch norm: the constructor raises ``ValueError`` otherwise.
        label_smoothing: one-sided smoothing of the real label (cross-entropy losses).
        augment: a callable applied to every discriminator input, real and fake, inside
            the tapes (so G's gradient flows through it). If it has a method
            ``observe(real_outputs)``, that is called with D's outputs on real images
            in every D update (the hook an adaptive augmentation controller needs). An
            augmenter that is a ``tf.Module`` (``gantools.augment``) is saved in checkpoints,
            and its ``p`` variable is recorded in the history as ``augment_p``.
        ema_decay: decay β of the averaged generator, or ``None`` for no EMA copy.
        seed: seeds z, ε and label noise, and the fixed preview batch.
        steps_per_call: training steps run inside one compiled call (fewer Python
            round trips; see ``benchmarks/bench_training.py``).
        reuse_fakes: the G update reuses the last D update's fake batch and G forward
            pass instead of drawing new noise (one G forward pass fewer per step).
        strategy: a ``tf.distribute.Strategy``; the models must be built in its scope.
        preview_size: size of the fixed latent batch used for sample grids.
        diagnose: check for training pathologies every ``every`` steps of :meth:`fit`.
        feature_matching: ``None`` (G uses ``loss``), ``True`` (G minimizes
            :func:`gantools.losses.feature_matching_loss`) or a callable
            ``(real_features, fake_features) -> loss`` taking two lists of D's activations.
        feature_layers: names of D's layers to match; default: every activation layer.
        num_classes: the number of classes of a conditional GAN; read from the generator's
            one-hot or embedding layer when not given (needed when it is not a gantools
            layer or a Keras ``Embedding``, e.g. ``keras.ops.one_hot``).
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 loss="non-saturating", *, d_optimizer=None, g_optimizer=None,
                 learning_rate: float = 2e-4, beta_1: float = 0.5, n_critic: int = 1,
                 penalty: str | None = None, penalty_weight: float = 10.0,
                 label_smoothing: float = 0.0, augment=None, ema_decay: float | None = 0.999,
                 seed: int = 0, steps_per_call: int = 1, reuse_fakes: bool = False,
                 strategy=None, preview_size: int = 64, diagnose: bool = True,
                 feature_matching=None, feature_layers=None, num_classes: int | None = None):
        check_compatible(generator, discriminator)
        self.conditional = len(generator.inputs) > 1
        self.feature_matching = _check_options(
            discriminator, self.conditional, penalty=penalty, augment=augment,
            reuse_fakes=reuse_fakes, feature_matching=feature_matching,
            feature_layers=feature_layers, num_classes=num_classes)
        self.generator, self.discriminator = generator, discriminator
        self.loss = resolve_loss(loss, label_smoothing)
        self.n_critic = _positive_int("n_critic", n_critic)
        self.steps_per_call = _positive_int("steps_per_call", steps_per_call)
        self.reuse_fakes = reuse_fakes
        self.penalty, self.penalty_weight = penalty, float(penalty_weight)
        self.augment = augment
        # shares D's layers (and variables): always in step with D
        self.features = None if self.feature_matching is None else feature_extractor(
            discriminator, feature_layers)
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.ema_decay = None if ema_decay is None else check_decay(ema_decay)
        self.seed = int(seed)
        with self.strategy.scope():
            self.d_optimizer = d_optimizer or keras.optimizers.Adam(learning_rate, beta_1=beta_1)
            self.g_optimizer = g_optimizer or keras.optimizers.Adam(learning_rate, beta_1=beta_1)
            if self.d_optimizer is self.g_optimizer:
                raise ValueError("D and G need separate optimizer objects (each keeps its own "
                                 "moment estimates).")
            self.d_optimizer.build(discriminator.trainable_variables)
            self.g_optimizer.build(generator.trainable_variables)
            self.ema = clone_generator(generator) if self.ema_decay is not None else None
            self.rng = tf.random.Generator.from_seed(self.seed)
            self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.batches_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches")
        preview_rng = np.random.default_rng(self.seed)
        self.fixed_z = preview_rng.standard_normal((preview_size, self.latent_dim)).astype(
            np.float32)
        self.num_classes = (num_classes or num_classes_of(generator)) if self.conditional \
            else None
        # conditional previews: the classes in turn, so a grid row shows every class
        self.fixed_labels = None if not self.conditional else (
            np.arange(preview_size, dtype=np.int32) % self.num_classes)
        self.history = History()
        self.diagnostician = Diagnostician(accuracy_detectors=self.loss.threshold is not None) \
            if diagnose else None
        self._real_diversity = None
        self._dataset = self._iterator = None
        self._functions = {}
        self.checkpoint = tf.train.Checkpoint(
            generator=list(generator.variables), discriminator=list(discriminator.variables),
            ema=list(self.ema.variables) if self.ema is not None else [],
            d_optimizer=list(self.d_optimizer.variables),
            g_optimizer=list(self.g_optimizer.variables),
            rng=self.rng, step=self.step_var, batches_seen=self.batches_seen,
            # an augmenter's p, controller state and random generator (exact resume)
            **({"augment": augment} if isinstance(augment, tf.Module) else {}),
        )

    @property
    def step(self) -> int:
        """Generator updates done so far."""
        return int(self.step_var.numpy())

    # --- the compiled steps ---------------------------------------------------------------

    def _train_function(self, k: int):
        if k not in self._functions:
            def run(iterator):
                if k == 1:
                    return self._one_step(iterator)[None]

                def body(i, rows):
                    return i + 1, rows.write(i, self._one_step(iterator))

                _, rows = tf.while_loop(lambda i, rows: i < k, body,
                                        (tf.constant(0), tf.TensorArray(tf.float32, size=k)))
                return rows.stack()

            # autograph is off: the step has no tensor-dependent Python control flow, and
            # converting the step's functions to graph code cost more than half of the
            # tracing time (3.5 of 6 s for the 32x32 DCGAN on 2 cores). Loss functions and
            # augmentations passed in are traced as written, so they use tf.where/tf.cond
            # rather than a Python `if` on a tensor.
            # GANTOOLS_EAGER_STEPS=1 (the course's short mode: a few steps, for which tracing
            # would cost more than the steps) runs them eagerly
            self._functions[k] = (run if runtime.eager_steps()
                                  else tf.function(run, autograph=False))
        return self._functions[k]

    def _run(self, k, iterator):
        try:
            return self._train_function(k)(iterator).numpy()
        except tf.errors.OperatorNotAllowedInGraphError as error:
            raise TypeError(
                f"{error}\n\nThe training step is traced into a graph without autograph, so a "
                "loss function or augmentation passed to GANTrainer cannot branch with a Python "
                "`if` (or loop with `for`/`while`) on a tensor's value. Write the branch with "
                "tf.where or tf.cond instead."
            ) from error

    # --- data -----------------------------------------------------------------------------

    def _check_dataset(self, dataset):
        spec = dataset.element_spec
        labelled = isinstance(spec, tuple)
        image_spec = spec[0] if labelled else spec
        if self.conditional and not labelled:
            raise ValueError(
                "this is a conditional GAN, so the dataset must yield (images, labels): load it "
                "with with_labels=True."
            )
        expected = tuple(self.discriminator.inputs[0].shape[1:])
        got = tuple(image_spec.shape[1:])
        if got != expected:
            raise ValueError(
                f"the dataset yields examples of shape {got} but the discriminator expects "
                f"{expected}; load the data with image_size={expected[0]} or build the models "
                f"for {got}."
            )

    def _iterator_for(self, dataset):
        if dataset is self._dataset and self._iterator is not None:
            return self._iterator
        self._check_dataset(dataset)
        ds = dataset.repeat()
        seen = int(self.batches_seen.numpy())
        if seen:
            ds = ds.skip(seen)  # the same batches an uninterrupted run would see next
        if self.replicas > 1:
            ds = self.strategy.experimental_distribute_dataset(ds)
        self._dataset, self._iterator = dataset, iter(ds)
        if self._real_diversity is None:
            first = next(iter(dataset))
            images = first[0] if isinstance(first, tuple) else first
            self._real_diversity = diversity(np.asarray(images)[: len(self.fixed_z)])
        return self._iterator

    # --- sampling ------------------------------------------------------------------------

    def sample(self, z=None, labels=None, ema: bool = True) -> np.ndarray:
        """Generate from the fixed preview batch (or ``z``), in inference mode.

        Uses the EMA generator when there is one and ``ema`` is true.
        """
        model = self.ema if (ema and self.ema is not None) else self.generator
        z = self.fixed_z if z is None else np.asarray(z, np.float32)
        if self.conditional:
            labels = self.fixed_labels[: len(z)] if labels is None else labels
            return model([tf.constant(z), tf.constant(labels, tf.int32)], training=False).numpy()
        return model(tf.constant(z), training=False).numpy()

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, directory) -> str:
        """Save a checkpoint (models, EMA, optimizers, step, random state) and the history."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=2)
        path = manager.save(checkpoint_number=self.step)
        missing = self.step - len(self.history)
        if missing > 0:  # steps trained outside fit (no metrics recorded): NaN rows
            self.history.append(np.full((missing, len(METRICS)), np.nan))
        self.history.save(directory / "history.json")
        return path

    def restore(self, directory) -> bool:
        """Restore the latest checkpoint in ``directory``; ``False`` if there is none."""
        directory = Path(directory)
        latest = tf.train.latest_checkpoint(str(directory))
        if latest is None:
            return False
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise ValueError(
                f"the checkpoint {latest} does not fit these models/options ({e}); resume with "
                "the same architecture and settings, or start in a new folder."
            ) from e
        if (directory / "history.json").exists():
            self.history = History.load(directory / "history.json")
            self.history.truncate(self.step)
        self._dataset = self._iterator = None
        return True

    # --- the loop ------------------------------------------------------------------------

    def _check_finite(self, rows, first_step, checkpoint_dir):
        bad = ~np.isfinite(rows)
        if not bad.any():
            return
        i, j = np.argwhere(bad)[0]
        row = ", ".join(f"{m}={rows[i, k]:.4g}" for k, m in enumerate(METRICS))
        last = tf.train.latest_checkpoint(str(checkpoint_dir)) if checkpoint_dir else None
        where = (f" The last good checkpoint, {last}, is untouched: resume from it with a "
                 "lower learning rate." if last else "")
        raise TrainingDiverged(
            f"training diverged at step {first_step + i}: {METRICS[j]} became {rows[i, j]} "
            f"({row}). Likely causes: a learning rate too high for this model (try half); "
            "a loss computed from probabilities instead of logits (log of 0); a gradient "
            "penalty without the small epsilon inside the square root; labels outside "
            "[0, 1]; a critic without weight clipping or penalty under the Wasserstein "
            f"loss.{where}"
        )

    def _checks(self, say):
        """Diversity of the fixed preview batch, then the pathology detectors."""
        if self._real_diversity:
            ratio = diversity(self.sample(ema=False)) / self._real_diversity
            self.history.add_check("diversity_ratio", self.step, ratio)
        if self.diagnostician is not None:
            for event in self.diagnostician.check(self.history, self.step):
                say(f"[step {event['step']}] {event['message']}")

    def fit(self, dataset: tf.data.Dataset, steps: int, *, callbacks=(), every: int = 100,
            checkpoint_dir=None, checkpoint_every: int | None = None, progress: bool = True):
        """Train for ``steps`` more steps; returns the :class:`History`.

        Every ``every`` steps (and at the end) it measures sample diversity, runs the
        diagnostics and calls each callback as ``callback(trainer)``. With
        ``checkpoint_dir`` it saves every ``checkpoint_every`` steps (default: ``every``),
        at the end, and when interrupted (Ctrl-C), so nothing is lost.
        """
        from tqdm import tqdm

        steps = _positive_int("steps", steps)
        every = _positive_int("every", every)
        checkpoint_every = _positive_int("checkpoint_every", checkpoint_every or every)
        iterator = self._iterator_for(dataset)
        target = self.step + steps
        # a log file (not a terminal, not a notebook) gets a line every 15 s. In a notebook
        # the bar is one text output replaced in place (a display handle, as the dashboard's
        # pictures): a saved notebook keeps one line per bar, its final state, whichever
        # client ran it, and no display output in between can split it
        notebook = progress and runtime.in_notebook()
        interactive = sys.stderr.isatty() or notebook
        bar = tqdm(total=steps, disable=not progress, desc="training", unit="step",
                   dynamic_ncols=not notebook,
                   mininterval=0.2 if interactive else 15.0,
                   file=_NotebookLine() if notebook else sys.stderr)
        say = bar.write if progress and not notebook else print
        first = True
        with deferred_interrupt() as interrupted:
            try:
                while self.step < target:
                    k = self.steps_per_call if target - self.step >= self.steps_per_call else 1
                    before = self.step
                    rows = self._run(k, iterator)
                    self._check_finite(rows, before + 1, checkpoint_dir)
                    self.history.append(rows)
                    if first:  # the first call traced the step: its time is not a rate
                        bar.unpause()
                        first = False
                    bar.update(k)
                    last = rows[-1]
                    bar.set_postfix(d_loss=f"{last[0]:.3f}", g_loss=f"{last[1]:.3f}",
                                    acc_real=f"{last[2]:.2f}", acc_fake=f"{last[3]:.2f}",
                                    refresh=False)
                    crossed = self.step // every > before // every
                    if crossed or self.step == target:
                        self._checks(say)
                        for callback in callbacks:
                            callback(self)
                    if checkpoint_dir and (
                            self.step // checkpoint_every > before // checkpoint_every
                            or self.step == target):
                        self.save(checkpoint_dir)
                    interrupted()  # a Ctrl-C since the last step stops here
            except KeyboardInterrupt:
                if checkpoint_dir:
                    path = self.save(checkpoint_dir)
                    say(f"Interrupted at step {self.step}; saved {path}. Resume by restoring "
                        f"{checkpoint_dir} and calling fit again.")
                raise
            finally:
                bar.close()
        return self.history
