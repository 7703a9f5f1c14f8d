"""Ways to keep the discriminator (critic) in check: penalties and weight clipping.

* :func:`gradient_penalty` — WGAN-GP (Gulrajani et al., 2017):
  GP = E_x̂ (‖∇_x̂ f(x̂)‖₂ - 1)²,  x̂ = ε x + (1 - ε) x̃,  ε ~ U[0, 1] per example.
* :func:`r1_penalty` — R1 (Mescheder et al., 2018): E_x ‖∇_x f(x)‖₂² on real data.
* :class:`WeightClip` — WGAN's weight clipping as a Keras constraint.

The penalties compute an input gradient with an inner ``GradientTape``; call them
inside the discriminator step's outer tape so the penalty's own gradient with respect
to D's weights is taken too (a nested tape, "double backprop").
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Inside the square root of the gradient norm, so a zero gradient gives a finite value
# and a finite derivative instead of NaN (d/dg sqrt(g²) is 0/0 at g = 0).
NORM_EPSILON = 1e-12


def _call(critic, x, labels, training):
    return critic([x, labels], training=training) if labels is not None else critic(
        x, training=training)


def _per_example_sq_norm(g):
    return tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g)))


def interpolate(real, fake, seed=None, rng=None):
    """x̂ = ε x + (1 - ε) x̃ with one ε ~ U[0, 1] per example (shape [B, 1, ..., 1]).

    ε comes from ``rng`` (a ``tf.random.Generator``, whose state a checkpoint can save)
    when given, else from ``tf.random.uniform`` with the op ``seed``.
    """
    real = tf.convert_to_tensor(real)
    fake = tf.cast(tf.convert_to_tensor(fake), real.dtype)
    if real.shape.rank is not None and fake.shape.rank is not None and (
        real.shape.as_list()[1:] != fake.shape.as_list()[1:]
    ):
        raise ValueError(
            f"real and fake batches differ in shape: {real.shape} vs {fake.shape}; the "
            "generator must produce images of the data's shape."
        )
    shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    if rng is not None:
        eps = rng.uniform(shape, 0.0, 1.0, dtype=real.dtype)
    else:
        eps = tf.random.uniform(shape, 0.0, 1.0, dtype=real.dtype, seed=seed)
    return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic, real, fake, labels=None, training=True, seed=None, rng=None):
    """WGAN-GP penalty: mean over the batch of (‖∇_x̂ f(x̂)‖₂ - 1)².

    The norm runs over all non-batch axes; ‖g‖₂ = sqrt(Σ g² + 1e-12). ``critic`` is a
    Keras model or any callable ``critic(x, training=...)``; with ``labels`` (a
    conditional critic) it is called as ``critic([x, labels], training=...)``. Multiply
    by λ (10 in the paper) and add to the critic loss. ``seed``/``rng``: see
    :func:`interpolate`.
    """
    x_hat = interpolate(real, fake, seed=seed, rng=rng)
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        scores = _call(critic, x_hat, labels, training)
    grads = inner.gradient(scores, x_hat)
    norm = tf.sqrt(_per_example_sq_norm(grads) + NORM_EPSILON)
    return tf.reduce_mean(tf.square(norm - 1.0))


def r1_penalty(critic, real, labels=None, training=True):
    """R1 penalty on real data: mean over the batch of ‖∇_x f(x)‖₂².

    The regularizer of Mescheder et al. is (γ / 2) times this value.
    """
    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as inner:
        inner.watch(real)
        scores = _call(critic, real, labels, training)
    grads = inner.gradient(scores, real)
    return tf.reduce_mean(_per_example_sq_norm(grads))


@keras.saving.register_keras_serializable(package="gantools")
class WeightClip(keras.constraints.Constraint):
    """Clip every weight to [-c, c] after each optimizer update (WGAN, c = 0.01).

    Use it on **every** layer with weights of the critic::

        clip = WeightClip(0.01)
        layers.Conv2D(64, 4, kernel_constraint=clip, bias_constraint=clip)
    """

    def __init__(self, clip_value: float = 0.01):
        if not clip_value > 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}.")
        self.clip_value = float(clip_value)

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def clip_model_weights(model: keras.Model, clip_value: float = 0.01) -> None:
    """Clip every trainable weight of ``model`` to [-c, c] in place (the WGAN rule).

    For models built without constraints; equivalent to a :class:`WeightClip` on every
    layer. BatchNorm's scale and offset are clipped too.
    """
    for w in model.trainable_variables:
        w.assign(tf.clip_by_value(w, -clip_value, clip_value))


def check_per_example(critic: keras.Model) -> None:
    """Raise ``ValueError`` if ``critic`` has batch normalization.

    A gradient penalty constrains ∇ₓ f(x) for each example x on its own. With batch norm
    in training mode, f(x_i) depends on every example of the batch through the batch's
    mean and variance, so the per-example gradient is not that of a function of x_i, and
    the penalty constrains the wrong thing (Gulrajani et al., 2017, §4 use layer norm).
    """
    try:
        layers = list(critic._flatten_layers(include_self=False, recursive=True))
    except AttributeError:  # not a Keras model: nothing to inspect
        return
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(
                f"the critic {critic.name!r} has batch normalization (layer {layer.name!r}), "
                "which makes each example's score depend on the rest of the batch; a gradient "
                "penalty, taken per example, then penalizes the wrong gradient. Build the "
                "critic with layer normalization or none (gantools: dcgan_discriminator(..., "
                "normalization='layer'))."
            )
