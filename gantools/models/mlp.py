"""Small fully connected models for 2-D toy data (``ring``, ``grid``).

The generator maps z ∈ R^latent_dim to a point in R^2 with a linear last layer (the
toy data are not bounded to [-1, 1]); the discriminator (or critic) maps a point to
one logit. Three hidden layers of 128 units train in about a minute on a CPU.
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import MinibatchDiscrimination, SpectralNorm


def _check_hidden(hidden):
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(
            f"hidden must be a non-empty sequence of positive integers, got {hidden!r}."
        )


def mlp_generator(latent_dim: int = 8, hidden=(128, 128, 128), output_dim: int = 2,
                  name: str = "generator") -> keras.Model:
    """MLP generator: z (batch, latent_dim) → points (batch, output_dim), ReLU hidden layers."""
    _check_hidden(hidden)
    z = keras.Input((latent_dim,), name="z")
    h = z
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"dense{i + 1}")(h)
    return keras.Model(z, layers.Dense(output_dim, name="points")(h), name=name)


def mlp_discriminator(input_dim: int = 2, hidden=(128, 128, 128), spectral: bool = False,
                      minibatch=None, name: str = "discriminator") -> keras.Model:
    """MLP discriminator/critic: points (batch, input_dim) → logits (batch, 1).

    LeakyReLU(0.2) hidden layers; ``spectral=True`` wraps every dense layer in
    :class:`SpectralNorm`. ``minibatch="discrimination"`` (or a Keras layer of your own
    mapping (batch, A) to (batch, A + B)) adds :class:`MinibatchDiscrimination` features
    after the last hidden layer.
    """
    _check_hidden(hidden)
    own_layer = isinstance(minibatch, keras.layers.Layer)
    if not own_layer and minibatch not in (None, "discrimination"):
        raise ValueError(f"unknown minibatch feature {minibatch!r}; choose None, "
                         "'discrimination' or a Keras layer.")
    x = keras.Input((input_dim,), name="points")
    h = x

    def dense(units, tag):
        d = layers.Dense(units, name=tag)
        return SpectralNorm(d, name=f"{tag}_sn") if spectral else d

    for i, units in enumerate(hidden):
        h = layers.LeakyReLU(0.2, name=f"lrelu{i + 1}")(dense(units, f"dense{i + 1}")(h))
    if minibatch == "discrimination":
        h = MinibatchDiscrimination(name="minibatch_discrimination")(h)
    elif own_layer:
        h = minibatch(h)
    return keras.Model(x, dense(1, "logit")(h), name=name)
