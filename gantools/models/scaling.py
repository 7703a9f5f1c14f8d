"""The pieces that scaled GANs up (notebook 10), as functions and Keras layers.

PGGAN (Karras et al., 2018):

* :func:`minibatch_stddev`: one feature that tells D how varied the batch is,
  ``s = mean over features of sqrt(Var_batch[x] + 1e-8)``, appended to every example;
* :func:`pixel_norm`: each pixel's feature vector scaled to unit root mean square,
  ``x / sqrt(mean_c x_c² + 1e-8)``;
* equalised learning rate (:class:`EqualizedDense`, :class:`EqualizedConv2D`): weights
  stored as N(0, 1) and multiplied at run time by He's constant ``gain / sqrt(fan_in)``,
  so that Adam, whose steps have about the same size for every weight, changes every
  layer by the same fraction of its scale;
* :func:`fade_in`: ``α · new + (1 − α) · upsample(old)`` while a new resolution is added.

BigGAN (Brock et al., 2019): :func:`truncated_normal`, z with every entry beyond ±ψ
drawn again.

StyleGAN (Karras et al., 2019, 2020): :class:`ModulatedConv2D`, a convolution whose input
channels are scaled by a style computed from w and whose outputs are then demodulated
back to unit scale, and the mapping network z → w (built in
:mod:`gantools.training.progressive`).

The functions work on any rank ≥ 2 (batch first, features last), eagerly and inside a
``tf.function``.

>>> import numpy as np
>>> x = np.array([[3.0, 4.0]], "float32")
>>> np.round(pixel_norm(x).numpy(), 4)  # RMS of (3, 4) is sqrt(12.5)
array([[0.8485, 1.1314]], dtype=float32)
>>> minibatch_stddev(np.array([[0.0], [2.0]], "float32")).numpy()[:, -1]
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

EPSILON = 1e-8  # PGGAN's ε in the pixel norm and the minibatch standard deviation
LEAK = 0.2      # the slope of every leaky ReLU of PGGAN and StyleGAN
SQRT2 = math.sqrt(2.0)  # He's gain before a (leaky) ReLU


def leaky_relu(x):
    """max(x, 0.2·x): tf.nn.leaky_relu's values and gradient, written so that TensorFlow's
    graph optimiser does not try (and fail, with an error message) to fuse it with the bias
    addition inside the R1 penalty's second derivative."""
    return tf.maximum(x, LEAK * x)


def minibatch_stddev(x, epsilon: float = EPSILON):
    """``x`` (N, …, C) with one more channel: the batch's standard deviation of each
    feature (over the N examples), averaged over all features and positions, the same
    number for every example and position."""
    x = tf.convert_to_tensor(x, tf.float32)
    deviation = x - tf.reduce_mean(x, axis=0, keepdims=True)
    std = tf.sqrt(tf.reduce_mean(tf.square(deviation), axis=0) + epsilon)
    s = tf.reduce_mean(std)
    return tf.concat([x, tf.ones_like(x[..., :1]) * s], axis=-1)


def pixel_norm(x, epsilon: float = EPSILON):
    """Each feature vector (the last axis) divided by its root mean square."""
    x = tf.convert_to_tensor(x, tf.float32)
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + epsilon)


def fade_in(alpha, new, old):
    """``α · new + (1 − α) · upsample(old)``: the new resolution's image ``new`` blended in
    as α goes 0 → 1 over the old resolution's image ``old`` (half the size), enlarged by
    nearest-neighbour upsampling."""
    return alpha * new + (1.0 - alpha) * upsample(old)


def upsample(x):
    """Nearest-neighbour ×2 (each pixel becomes a 2×2 block). Broadcast and reshaped rather
    than ``tf.repeat``, whose gradient runs int32 arithmetic that oneDNN reports on CPUs
    without AVX-512."""
    x = tf.convert_to_tensor(x, tf.float32)
    height, width, channels = x.shape[1:]
    if None in (height, width, channels):
        return tf.image.resize(x, 2 * tf.shape(x)[1:3], method="nearest")
    blocks = x[:, :, None, :, None, :] * tf.ones((1, 1, 2, 1, 2, 1))
    return tf.reshape(blocks, [-1, 2 * height, 2 * width, channels])


def downsample(x):
    """2×2 average pooling (the inverse of :func:`upsample` on blocky images)."""
    return tf.nn.avg_pool2d(x, 2, 2, "VALID")


def truncated_normal(n: int, dim: int, psi: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` × ``dim`` standard normal values, each one with |z| > ψ drawn again until it
    lies within ±ψ (BigGAN's truncation trick); ``psi=None`` or ∞ draws plain N(0, 1)."""
    z = rng.standard_normal((n, dim))
    if psi is None or math.isinf(psi):
        return z.astype(np.float32)
    if psi <= 0:
        raise ValueError(f"psi must be positive (or None for no truncation), got {psi}.")
    outside = np.abs(z) > psi
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > psi
    return z.astype(np.float32)


def he_constant(fan_in: int, gain: float = SQRT2) -> float:
    """He's standard deviation ``gain / sqrt(fan_in)``: the scale that keeps a layer's
    output variance equal to its input's (gain √2 makes up for what a ReLU drops)."""
    return float(gain / math.sqrt(fan_in))


class _Equalized(keras.layers.Layer):
    """Shared by the dense and convolutional layers: the kernel is stored as
    N(0, 1/lr_multiplier²) and scaled at run time by ``he_constant · lr_multiplier``
    (StyleGAN's learning-rate multiplier slows a layer down by that factor). With
    ``equalized=False`` the same layer stores He-initialised weights N(0, he_constant²)
    and uses them as they are: the usual parametrisation, for comparison."""

    def __init__(self, gain=SQRT2, lr_multiplier=1.0, equalized=True,
                 bias_init=0.0, activation=None, **kwargs):
        super().__init__(**kwargs)
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be positive, got {lr_multiplier}.")
        if not equalized and lr_multiplier != 1.0:
            raise ValueError("lr_multiplier needs equalized=True: it is a run-time scale.")
        self.gain, self.lr_multiplier, self.equalized = float(gain), float(lr_multiplier), \
            bool(equalized)
        self.bias_init, self.activation = float(bias_init), activation

    def _make(self, kernel_shape, fan_in, units):
        c = he_constant(fan_in, self.gain)
        stddev = 1.0 / self.lr_multiplier if self.equalized else c
        self.kernel = self.add_weight(
            shape=kernel_shape, name="kernel",
            initializer=keras.initializers.RandomNormal(0.0, stddev))
        self.bias = self.add_weight(
            shape=(units,), name="bias",
            initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier))
        self.scale = c * self.lr_multiplier if self.equalized else 1.0

    def effective_kernel(self):
        """The weights the layer computes with: stored kernel × run-time scale."""
        return self.kernel * self.scale

    def _finish(self, y):
        y = y + self.bias * self.lr_multiplier
        if self.activation == "lrelu":
            y = leaky_relu(y)
        return y

    def get_config(self):
        return {**super().get_config(), "gain": self.gain, "lr_multiplier": self.lr_multiplier,
                "equalized": self.equalized, "bias_init": self.bias_init,
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="gantools")
class EqualizedDense(_Equalized):
    """A dense layer with an equalised learning rate: ``x @ (W · c) + b`` with W ~ N(0, 1)
    stored and c = gain / sqrt(fan_in) applied at run time. ``activation="lrelu"`` adds
    a leaky ReLU (slope 0.2)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self._make((fan_in, self.units), fan_in, self.units)

    def call(self, x):
        return self._finish(tf.matmul(x, self.effective_kernel()))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="gantools")
class EqualizedConv2D(_Equalized):
    """A 'same'-padded, stride-1 convolution with an equalised learning rate; fan_in is
    kernel height × width × input channels."""

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)

    def build(self, input_shape):
        k, channels = self.kernel_size, int(input_shape[-1])
        self._make((k, k, channels, self.filters), k * k * channels, self.filters)

    def call(self, x):
        return self._finish(tf.nn.conv2d(x, self.effective_kernel(), 1, "SAME"))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="gantools")
class ModulatedConv2D(keras.layers.Layer):
    """StyleGAN2's modulated convolution, called as ``layer([x, w])``.

    A style s = A(w) (an equalised dense layer, biases starting at 1) scales each input
    channel of the kernel, w'_ijk = s_i · w_ijk; with ``demodulate`` each output channel j
    is then divided by sqrt(Σ_ik w'_ijk² + 1e-8), which brings the outputs back to unit
    variance for unit-variance inputs (what AdaIN's normalisation did in StyleGAN 1). The
    kernel is never built per example: scaling the input channels by s before the
    convolution, and the outputs by the demodulation factors after it, is the same
    computation (StyleGAN2's non-fused form).
    """

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True,
                 activation="lrelu", equalized: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.demodulate, self.activation, self.equalized = bool(demodulate), activation, \
            bool(equalized)

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        channels = int(x_shape[-1])
        self.affine = EqualizedDense(channels, gain=1.0, bias_init=1.0,
                                     equalized=self.equalized, name="affine")
        self.affine.build(w_shape)
        self.conv = EqualizedConv2D(self.filters, self.kernel_size, gain=1.0,
                                    equalized=self.equalized, name="conv")
        self.conv.build(x_shape)

    def styles(self, w):
        """s = A(w): one scale per input channel, (N, C_in)."""
        return self.affine(w)

    def call(self, inputs):
        x, w = inputs
        s = self.styles(w)
        kernel = self.conv.effective_kernel()
        y = tf.nn.conv2d(x * s[:, None, None, :], kernel, 1, "SAME")
        if self.demodulate:
            # Σ_ik (s_i w_ijk)² = Σ_i s_i² (Σ_k w_ijk²): (N, C_in) @ (C_in, C_out)
            energy = tf.matmul(tf.square(s), tf.reduce_sum(tf.square(kernel), axis=[0, 1]))
            y = y * tf.math.rsqrt(energy + EPSILON)[:, None, None, :]
        y = y + self.conv.bias * self.conv.lr_multiplier
        if self.activation == "lrelu":
            y = leaky_relu(y)
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "demodulate": self.demodulate,
                "activation": self.activation, "equalized": self.equalized}
