"""Feature matching (Salimans et al., 2016).

Instead of fooling D's output, G matches the mean activations of D's hidden layers on
real and generated batches:

    L_FM = Σ_l ‖ E_x f_l(x) - E_z f_l(G(z)) ‖₂²

summed over a chosen set of layers l (the paper uses "an intermediate layer"; summing
over every activation of D often works better). D itself is trained as usual.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_ACTIVATION_LAYERS = (keras.layers.LeakyReLU, keras.layers.ReLU, keras.layers.Activation)


def default_feature_layers(discriminator: keras.Model) -> list[str]:
    """Names of D's activation layers (LeakyReLU, ReLU, Activation), input to output."""
    names = [layer.name for layer in discriminator.layers
             if isinstance(layer, _ACTIVATION_LAYERS)]
    if not names:
        raise ValueError(
            f"{discriminator.name} has no activation layers to match; pass layer_names "
            "explicitly (see [l.name for l in discriminator.layers])."
        )
    return names


def feature_extractor(discriminator: keras.Model, layer_names=None) -> keras.Model:
    """A model with D's inputs that returns ``[f_1(x), ..., f_L(x), logits]``.

    It shares D's weights, so it is always in step with D. ``layer_names`` defaults to
    :func:`default_feature_layers`.
    """
    layer_names = list(layer_names or default_feature_layers(discriminator))
    known = {layer.name for layer in discriminator.layers}
    unknown = [n for n in layer_names if n not in known]
    if unknown:
        raise ValueError(
            f"{discriminator.name} has no layer(s) named {unknown}; choose from {sorted(known)}."
        )
    outputs = [discriminator.get_layer(n).output for n in layer_names]
    inputs = discriminator.inputs if len(discriminator.inputs) > 1 else discriminator.inputs[0]
    return keras.Model(inputs, [*outputs, discriminator.outputs[0]],
                       name=f"{discriminator.name}_features")


def feature_matching_loss(real_features, fake_features, reduction: str = "sum"):
    """Σ_l ‖mean_batch f_l(x) - mean_batch f_l(G(z))‖² over paired lists of activations.

    ``reduction="sum"`` is the squared L2 norm of the paper; ``"mean"`` divides each
    layer's term by its number of features, so that large layers do not dominate.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}.")
    if isinstance(real_features, tf.Tensor) or isinstance(fake_features, tf.Tensor):
        real_features, fake_features = [real_features], [fake_features]
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError(
            f"need the same non-zero number of real and fake feature tensors, got "
            f"{len(real_features)} and {len(fake_features)}."
        )
    total = 0.0
    for r, f in zip(real_features, fake_features, strict=True):
        r = tf.reshape(r, [tf.shape(r)[0], -1])
        f = tf.reshape(tf.cast(f, r.dtype), [tf.shape(f)[0], -1])
        diff = tf.reduce_mean(r, axis=0) - tf.reduce_mean(f, axis=0)
        term = tf.reduce_sum(tf.square(diff))
        if reduction == "mean":
            term /= tf.cast(tf.size(diff), term.dtype)
        total += term
    return total
