"""CycleGAN's losses (Zhu et al., 2017; notebook 09), for two generators ``G: A → B`` and
``F: B → A`` and two discriminators ``D_A``, ``D_B`` with least-squares outputs.

    L_cyc = mean |F(G(a)) − a| + mean |G(F(b)) − b|      (L1, both directions)
    L_id  = mean |F(a) − a| + mean |G(b) − b|            (each G leaves its own domain alone)
    L_G   = mean (D_B(G(a)) − 1)² + mean (D_A(F(b)) − 1)² + λ_cyc L_cyc + λ_id L_id
    L_D   = ½ [mean (D(x) − 1)² + mean D(fake)²]         (per discriminator)

Each mean is over every pixel (or patch score) of its batch. This module imports nothing of
gantools, so that the course's checks can compile a private copy of it.

>>> import numpy as np
>>> a, b = np.zeros((2, 4, 4, 1), "float32"), np.ones((3, 4, 4, 1), "float32")
>>> float(cycle_consistency_loss(a, a + 0.5, b, b - 0.25))  # 0.5 + 0.25
0.75
"""

from __future__ import annotations

import tensorflow as tf


def _mae(x, y):
    return tf.reduce_mean(tf.abs(tf.convert_to_tensor(x, tf.float32)
                                 - tf.convert_to_tensor(y, tf.float32)))


def cycle_consistency_loss(real_a, cycled_a, real_b, cycled_b):
    """mean |F(G(a)) − a| + mean |G(F(b)) − b|: each image back where it started."""
    return _mae(cycled_a, real_a) + _mae(cycled_b, real_b)


def identity_loss(real_a, same_a, real_b, same_b):
    """mean |F(a) − a| + mean |G(b) − b|: a generator given an image of its target domain
    should leave it as it is (``same_a = F(a)``, ``same_b = G(b)``)."""
    return _mae(same_a, real_a) + _mae(same_b, real_b)


def least_squares_generator_loss(fake_scores):
    """mean (D(G(x)) − 1)²: the generator wants its images scored as real (1)."""
    return tf.reduce_mean(tf.square(tf.convert_to_tensor(fake_scores, tf.float32) - 1.0))


def least_squares_discriminator_loss(real_scores, fake_scores):
    """½ [mean (D(x) − 1)² + mean D(fake)²]: the paper halves D's loss to slow D down."""
    real = tf.convert_to_tensor(real_scores, tf.float32)
    fake = tf.convert_to_tensor(fake_scores, tf.float32)
    return 0.5 * (tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake)))
