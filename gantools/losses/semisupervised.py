"""The semi-supervised GAN's losses (Salimans et al., 2016, section 5; notebook 08).

The discriminator has ``K`` logits ``ℓ_1 … ℓ_K`` for the real classes and none for "fake":
fixing the fake class's logit at 0 (a softmax over K + 1 classes is unchanged by adding a
constant to every logit, so one of them may be fixed) gives

    p(fake | x) = 1 / (Z(x) + 1),   D(x) = p(real | x) = Z(x) / (Z(x) + 1),
    Z(x) = Σ_k exp ℓ_k(x),

so ``D(x) = sigmoid(LSE(ℓ(x)))``: the log-sum-exp of the K logits is the logit of "real".
Every loss here is a mean over the batch, computed in log space (finite for logits of any
size). This module imports nothing of gantools, so that the course's checks can compile
a private copy of it (``gancourse.checks.harness.reference``).

>>> import numpy as np
>>> logits = np.zeros((2, 4), "float32")  # Z = 4: D(x) = 0.8
>>> round(float(unsupervised_loss(logits, logits)), 4)  # -log 0.8 - log 0.2
1.8326
"""

from __future__ import annotations

import tensorflow as tf


def supervised_loss(logits, labels):
    """L_sup = mean_i [LSE(ℓ(x_i)) - ℓ_{y_i}(x_i)]: cross-entropy over the K real classes.

    The labelled examples are real, so the fake class takes no part: this is
    ``-log p(y | x, real)``, a softmax over the K logits alone.
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def unsupervised_loss(real_logits, fake_logits):
    """L_unsup = -mean log D(x) - mean log(1 - D(G(z)))
    = mean softplus(-LSE(ℓ(x))) + mean softplus(LSE(ℓ(G(z)))).

    Notebook 01's discriminator loss with LSE(ℓ) as the logit; the real and generated
    batches may differ in size (each term is the mean over its own batch).
    """
    real = tf.reduce_logsumexp(tf.convert_to_tensor(real_logits, tf.float32), axis=-1)
    fake = tf.reduce_logsumexp(tf.convert_to_tensor(fake_logits, tf.float32), axis=-1)
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def feature_matching_loss(real_features, fake_features):
    """L_FM = mean_j (mean_i f_j(x_i) - mean_i f_j(G(z_i)))²: the squared distance between
    the batch means of D's features, averaged over the features (as Salimans et al.'s
    code; ``gantools.losses.feature_matching_loss`` sums them, the paper's ‖·‖²₂)."""
    real = tf.reduce_mean(tf.convert_to_tensor(real_features, tf.float32), axis=0)
    fake = tf.reduce_mean(tf.convert_to_tensor(fake_features, tf.float32), axis=0)
    return tf.reduce_mean(tf.square(real - fake))
