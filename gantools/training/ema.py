"""An exponential moving average (EMA) copy of the generator.

After every generator update, each trainable weight θ' of the copy moves towards the
generator's θ:

    θ' ← β_t θ' + (1 - β_t) θ,     β_t = min(β, (1 + t) / (10 + t))

where β = ``decay`` (e.g. 0.999) and t counts the updates so far. The warm-up term
(as in TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) lets the average
follow the generator closely early on; without it a short run's average would still
be mostly the random initial weights (0.999³⁰⁰ ≈ 0.74 after 300 steps).

Samples from the averaged weights are smoother and usually better than those of the
last step (Yazıcı et al., 2019; used by PGGAN, StyleGAN, BigGAN and the keras-io ADA
example). **BatchNorm moving statistics (and other non-trainable state such as the
spectral-norm vector u) are copied, not averaged**: they are already running
averages, measured on the generator's current weights, so copying keeps them matched
to the layer they normalize, as StyleGAN2 does with its buffers.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def check_decay(decay: float) -> float:
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), e.g. 0.999, got {decay}.")
    return float(decay)


def clone_generator(generator: keras.Model) -> keras.Model:
    """A copy of ``generator`` with the same architecture and weights.

    ``Lambda`` layers are shared rather than rebuilt: they hold no weights, and Keras
    refuses to rebuild one made from a Python lambda (its safe mode).
    """
    def clone(layer):
        if isinstance(layer, keras.layers.Lambda):
            return layer
        return layer.__class__.from_config(layer.get_config())

    ema = keras.models.clone_model(generator, clone_function=clone)
    ema.set_weights(generator.get_weights())
    ema.trainable = False
    return ema


def warmup_decay(decay, updates):
    """β_t = min(β, (1 + t) / (10 + t)) for t = ``updates`` done before this one."""
    t = tf.cast(updates, tf.float32)
    return tf.minimum(tf.cast(decay, tf.float32), (1.0 + t) / (10.0 + t))


def ema_update(ema: keras.Model, generator: keras.Model, decay) -> None:
    """θ' ← decay·θ' + (1 - decay)·θ for trainable weights; copy the other weights."""
    for averaged, current in zip(ema.weights, generator.weights, strict=True):
        if current.trainable:
            averaged.assign(decay * averaged + (1.0 - decay) * tf.cast(current, averaged.dtype))
        else:
            averaged.assign(current)
