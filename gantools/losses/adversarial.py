"""Adversarial losses on discriminator outputs.

Conventions used throughout the course:

* D returns **logits** l (no sigmoid); D(x) = σ(l) is the probability that x is real.
* **real = 1, fake = 0.**
* Every loss is a scalar to **minimize**, averaged over the batch; a discriminator loss
  is the sum of its real-batch mean and its fake-batch mean.
* Inputs have shape (batch,) or (batch, 1).

With BCE(t, l) = -t log σ(l) - (1 - t) log(1 - σ(l)) = softplus(l) - t·l:

=====================  =================================================================
minimax D              E_x BCE(1, l_real) + E_z BCE(0, l_fake)
minimax G              E_z log(1 - σ(l_fake))  =  -E_z softplus(l_fake)
non-saturating G       -E_z log σ(l_fake)      =   E_z softplus(-l_fake)
Wasserstein D          E_z f(G(z)) - E_x f(x)
Wasserstein G          -E_z f(G(z))
least squares D        ½ E_x (f(x) - b)² + ½ E_z (f(G(z)) - a)²
least squares G        ½ E_z (f(G(z)) - c)²
hinge D                E_x relu(1 - f(x)) + E_z relu(1 + f(G(z)))
hinge G                -E_z f(G(z))
=====================  =================================================================
"""

from __future__ import annotations

import tensorflow as tf


def _flat(x, name):
    x = tf.convert_to_tensor(x)
    if x.dtype not in (tf.float16, tf.bfloat16, tf.float32, tf.float64):
        x = tf.cast(x, tf.float32)
    if x.shape.rank is not None and x.shape.rank > 1 and x.shape[-1] not in (1, None):
        raise ValueError(
            f"{name} should hold one output per example, shape (batch,) or (batch, 1); got "
            f"{x.shape}. Does the discriminator end in Dense(1)?"
        )
    return tf.reshape(x, [-1])


def bce_with_logits(targets, logits):
    """Element-wise BCE(t, l) = softplus(l) - t·l, stable for large |l|."""
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0,
                       label_noise: float = 0.0, seed=None, rng=None):
    """Binary cross-entropy loss of D:  E_x BCE(t_real, l_real) + E_z BCE(t_fake, l_fake).

    Without options t_real = 1, t_fake = 0. ``label_smoothing`` = α is **one-sided**
    (Salimans et al.): only the real target becomes 1 - α. ``label_noise`` = η draws
    each target uniformly from a band of width η *inside* [0, 1]:
    t_real ~ U[1 - α - η, 1 - α], t_fake ~ U[0, η]. Targets never leave [0, 1], so the
    loss stays non-negative (noise that pushes fake labels below 0 makes the loss
    negative and can wreck training). The noise comes from ``rng`` (a
    ``tf.random.Generator``) when given, else from ``tf.random.uniform`` with ``seed``.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
    if not 0.0 <= label_noise <= 1.0 - label_smoothing:
        raise ValueError(
            f"label_noise must be in [0, 1 - label_smoothing] = [0, {1.0 - label_smoothing}] so "
            f"that labels stay in [0, 1]; got {label_noise}."
        )
    t_real = tf.fill(tf.shape(real), tf.cast(1.0 - label_smoothing, real.dtype))
    t_fake = tf.zeros_like(fake)
    if label_noise > 0.0:
        if rng is not None:
            u_real = rng.uniform(tf.shape(real), dtype=real.dtype)
            u_fake = rng.uniform(tf.shape(fake), dtype=fake.dtype)
        else:
            u_real = tf.random.uniform(tf.shape(real), dtype=real.dtype, seed=seed)
            u_fake = tf.random.uniform(tf.shape(fake), dtype=fake.dtype,
                                       seed=None if seed is None else seed + 1)
        t_real -= label_noise * u_real
        t_fake += label_noise * u_fake
    return tf.reduce_mean(bce_with_logits(t_real, real)) + tf.reduce_mean(
        bce_with_logits(t_fake, fake)
    )


def minimax_generator_loss(fake_logits):
    """The original (saturating) generator loss, minimized: E_z log(1 - D(G(z))).

    Equals -E softplus(l_fake). Its gradient vanishes when D confidently rejects the
    fakes (l_fake ≪ 0), which is the situation early in training.
    """
    return -tf.reduce_mean(tf.nn.softplus(_flat(fake_logits, "fake_logits")))


def non_saturating_generator_loss(fake_logits):
    """The non-saturating ("flipped") generator loss: -E_z log D(G(z)) = E softplus(-l)."""
    return tf.reduce_mean(tf.nn.softplus(-_flat(fake_logits, "fake_logits")))


def wasserstein_critic_loss(real_scores, fake_scores):
    """WGAN critic loss: E_z f(G(z)) - E_x f(x) (minimizing it widens the gap)."""
    return tf.reduce_mean(_flat(fake_scores, "fake_scores")) - tf.reduce_mean(
        _flat(real_scores, "real_scores")
    )


def wasserstein_generator_loss(fake_scores):
    """WGAN generator loss: -E_z f(G(z))."""
    return -tf.reduce_mean(_flat(fake_scores, "fake_scores"))


def least_squares_discriminator_loss(real_scores, fake_scores, a: float = 0.0, b: float = 1.0):
    """LSGAN D loss: ½ E_x (f(x) - b)² + ½ E_z (f(G(z)) - a)²  (b: real target, a: fake).

    The common choices are (a, b, c) = (0, 1, 1) and (-1, 1, 0); the Pearson χ² choice of
    the paper needs b - c = 1 and b - a = 2, e.g. (-1, 1, 0).
    """
    real = _flat(real_scores, "real_scores")
    fake = _flat(fake_scores, "fake_scores")
    return 0.5 * tf.reduce_mean(tf.square(real - b)) + 0.5 * tf.reduce_mean(tf.square(fake - a))


def least_squares_generator_loss(fake_scores, c: float = 1.0):
    """LSGAN G loss: ½ E_z (f(G(z)) - c)²  (c: the value G wants D to believe)."""
    return 0.5 * tf.reduce_mean(tf.square(_flat(fake_scores, "fake_scores") - c))


def hinge_discriminator_loss(real_scores, fake_scores):
    """Hinge D loss: E_x relu(1 - f(x)) + E_z relu(1 + f(G(z)))."""
    return tf.reduce_mean(tf.nn.relu(1.0 - _flat(real_scores, "real_scores"))) + tf.reduce_mean(
        tf.nn.relu(1.0 + _flat(fake_scores, "fake_scores"))
    )


def hinge_generator_loss(fake_scores):
    """Hinge G loss: -E_z f(G(z))."""
    return -tf.reduce_mean(_flat(fake_scores, "fake_scores"))
