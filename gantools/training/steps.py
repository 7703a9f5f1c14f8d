"""The maths of one training step: explicit GradientTape updates of D and G.

:class:`StepMath` is the part of :class:`~gantools.training.GANTrainer` that computes a
step; the trainer (``trainer.py``) holds the models and options, compiles the steps and
runs the loop.

One training *step* is ``n_critic`` discriminator updates followed by one generator
update. Each discriminator update draws a fresh real batch and fresh noise z:

    x̃ = G(z)                      (outside the tape, and stateless: see below)
    L_D = loss.d(D(aug(x)), D(aug(x̃))) + λ·penalty       (real and fake in separate passes)
    θ_D ← Adam(θ_D, ∇_{θ_D} L_D)                          (only D's variables)

and the generator update draws new noise:

    L_G = loss.g(D(aug(G(z))))
    θ_G ← Adam(θ_G, ∇_{θ_G} L_G)                          (only G's variables)

followed by the EMA update of the averaged generator. With ``feature_matching`` G's loss
is instead the distance between D's mean hidden activations on the real batch and on
the fakes (Salimans et al., 2016), L_G = Σ_l ‖E f_l(x) − E f_l(G(z))‖², while D keeps
its own loss. With ``reuse_fakes=True`` the G
update instead scores the fakes of the last D update again (with the updated D), as the
PyTorch DCGAN example does: G's forward pass is recorded once, on G's tape, and serves
both updates, which saves one G forward pass per step (about 1/12 of a DCGAN step's
FLOPs). On the bundled digits both variants reach the same KID within its standard
error; fresh noise is the default because it is the algorithm written above.

The model that a step only
evaluates (G in the D step, D in the G step) runs through Keras's ``stateless_call``:
it is in training mode, but none of its variables change, not even batch-norm moving
averages or spectral-norm vectors. So the D step changes D's variables alone and the G
step G's alone. All randomness (z, the
gradient-penalty ε, label noise) comes from one ``tf.random.Generator`` that is saved
in checkpoints, so a resumed run continues exactly where it stopped.

Under a ``tf.distribute`` strategy (build the models inside ``strategy.scope()``) each
replica computes its share of the batch and the gradients are summed across replicas;
losses are divided by the number of replicas so that this sum is the mean over the
global batch.
"""

from __future__ import annotations

import tensorflow as tf

from ..losses import gradient_penalty, r1_penalty
from .ema import ema_update, warmup_decay
from .history import METRICS


class StepMath:
    """The updates of one training step. Mixed into :class:`GANTrainer`, which sets the
    attributes used here (models, optimizers, loss, penalty, augmentation, strategy)."""

    def _split(self, batch):
        if isinstance(batch, tuple | list):
            images, labels = batch[0], batch[1]
        else:
            images, labels = batch, None
        return images, (labels if self.conditional else None)

    def _inputs(self, x, labels):
        return [x, labels] if self.conditional else x

    def _call_g(self, model, z, labels, training):
        return model(self._inputs(z, labels), training=training)

    def _call_d(self, x, labels, training=True):
        return self.discriminator(self._inputs(x, labels), training=training)

    @staticmethod
    def _frozen(model, inputs):
        """``model(inputs, training=True)`` without changing any of its variables."""
        out, _ = model.stateless_call(model.trainable_variables, model.non_trainable_variables,
                                      inputs, training=True)
        return out

    def _critic_of(self, labels):
        """D as a function of images alone, for a penalty callable (labels held fixed)."""
        if labels is None:
            return self.discriminator

        def critic(x, training=True):
            return self.discriminator([x, labels], training=training)
        return critic

    def _aug(self, x):
        return self.augment(x) if self.augment is not None else x

    def _accuracy(self, real_out, fake_out):
        real_out, fake_out = tf.reshape(real_out, [-1]), tf.reshape(fake_out, [-1])
        if self.loss.threshold is None:
            t = 0.5 * (tf.reduce_mean(real_out) + tf.reduce_mean(fake_out))
        else:
            t = tf.cast(self.loss.threshold, real_out.dtype)
        return (tf.reduce_mean(tf.cast(real_out > t, tf.float32)),
                tf.reduce_mean(tf.cast(fake_out < t, tf.float32)))

    def _d_update(self, batch, fake=None):
        real, labels = self._split(batch)
        if fake is None:
            z = self.rng.normal([tf.shape(real)[0], self.latent_dim])
            fake = self._frozen(self.generator, self._inputs(z, labels))
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_in, fake_in = self._aug(real), self._aug(fake)
            real_out = self._call_d(real_in, labels)
            fake_out = self._call_d(fake_in, labels)
            loss = tf.cast(self.loss.d(real_out, fake_out), tf.float32)
            if self.penalty == "gp":
                pen = gradient_penalty(self.discriminator, real_in, fake_in, labels=labels,
                                       rng=self.rng)
            elif self.penalty == "r1":
                pen = r1_penalty(self.discriminator, real_in, labels=labels)
            elif self.penalty is not None:
                pen = tf.cast(self.penalty(self._critic_of(labels), real_in, fake_in), tf.float32)
            else:
                pen = tf.constant(0.0)
            total = (loss + self.penalty_weight * pen) / self.replicas
        grads = tape.gradient(total, d_vars)
        self.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))
        if self.augment is not None and hasattr(self.augment, "observe"):
            self.augment.observe(real_out)
        acc_real, acc_fake = self._accuracy(real_out, fake_out)
        return loss, acc_real, acc_fake, pen, tf.linalg.global_norm(grads) * self.replicas

    def _g_loss(self, real, fake, labels):
        """G's loss and its share of the cross-replica sum (call it inside G's tape)."""
        if self.feature_matching is not None:
            real_f = self._frozen(self.features, self._inputs(self._aug(real), labels))[:-1]
            fake_f = self._frozen(self.features, self._inputs(self._aug(fake), labels))[:-1]
            loss = self.feature_matching([tf.stop_gradient(f) for f in real_f], fake_f)
        else:
            fake_out = self._frozen(self.discriminator, self._inputs(self._aug(fake), labels))
            loss = self.loss.g(fake_out)
        loss = tf.cast(loss, tf.float32)
        return loss, loss / self.replicas

    def _apply_g(self, tape, loss, scaled):
        g_vars = self.generator.trainable_variables
        grads = tape.gradient(scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(grads, g_vars, strict=True))
        return loss, tf.linalg.global_norm(grads) * self.replicas

    def _g_update(self, batch):
        real, labels = self._split(batch)
        z = self.rng.normal([tf.shape(real)[0], self.latent_dim])
        with tf.GradientTape() as tape:
            fake = self._call_g(self.generator, z, labels, training=True)
            loss, scaled = self._g_loss(real, fake, labels)
        return self._apply_g(tape, loss, scaled)

    def _d_then_g_update(self, batch):
        """The last D update and the G update, sharing one fake batch (``reuse_fakes``).

        G's forward pass is recorded once, on G's tape; the D update in between runs
        with that tape paused and sees the fakes as constants; the G update then scores
        the same fakes with the updated D and back-propagates through the recorded pass.
        """
        real, labels = self._split(batch)
        z = self.rng.normal([tf.shape(real)[0], self.latent_dim])
        with tf.GradientTape() as tape:
            fake = self._call_g(self.generator, z, labels, training=True)
            with tape.stop_recording():
                d_out = self._d_update(batch, fake=tf.stop_gradient(fake))
            loss, scaled = self._g_loss(real, fake, labels)
        return d_out, self._apply_g(tape, loss, scaled)

    def _augment_p(self):
        """The augmentation probability after this step (0 without an adaptive augmenter)."""
        p = getattr(self.augment, "p", None)
        return tf.convert_to_tensor(p) if isinstance(p, tf.Variable) else tf.constant(0.0)

    def _one_step(self, iterator):
        for i in range(self.n_critic):
            batch = next(iterator)
            if self.reuse_fakes and i == self.n_critic - 1:
                d_out, g_out = self.strategy.run(self._d_then_g_update, args=(batch,))
            else:
                d_out = self.strategy.run(self._d_update, args=(batch,))
        if not self.reuse_fakes:
            g_out = self.strategy.run(self._g_update, args=(batch,))
        if self.ema is not None:
            ema_update(self.ema, self.generator, warmup_decay(self.ema_decay, self.step_var))
        self.step_var.assign_add(1)
        self.batches_seen.assign_add(self.n_critic)

        def mean(x):
            return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, x, axis=None)

        d_loss, acc_real, acc_fake, pen, d_norm = (mean(x) for x in d_out)
        g_loss, g_norm = (mean(x) for x in g_out)
        values = {"d_loss": d_loss, "g_loss": g_loss, "d_acc_real": acc_real,
                  "d_acc_fake": acc_fake, "penalty": pen, "d_grad_norm": d_norm,
                  "g_grad_norm": g_norm, "augment_p": self._augment_p()}
        return tf.stack([tf.cast(values[m], tf.float32) for m in METRICS])
