"""Reusable layers for GAN models.

* :class:`SpectralNorm` — the spectral normalization of Miyato et al. (2018),
  W_SN = W / σ(W), with σ estimated by power iteration. Unlike
  ``keras.layers.SpectralNormalization`` (which overwrites the kernel in place, so no
  gradient flows through σ), the gradient here flows through σ(W), with the power
  iteration vectors u, v held constant, exactly as in the paper and PyTorch.
* :class:`MinibatchStdDev` — the minibatch standard deviation feature of PGGAN.
* :class:`MinibatchDiscrimination` — the minibatch discrimination of Salimans et al.
* :class:`OneHot`, :class:`LabelPlanes` — label plumbing for conditional models.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _l2_normalize(x, eps=1e-12):
    return x / tf.sqrt(tf.reduce_sum(tf.square(x)) + eps)


@keras.saving.register_keras_serializable(package="gantools")
class SpectralNorm(keras.layers.Wrapper):
    """Divide the kernel of a ``Dense``, ``Conv2D`` or ``Conv2DTranspose`` by σ(W).

    The kernel is viewed as a matrix W with one column per output unit (per input
    channel for ``Conv2DTranspose``, whose kernel is (kh, kw, out, in)). One power
    iteration per training call refines the stored vector u:

        v ← W u / ‖W u‖,   u ← Wᵀ v / ‖Wᵀ v‖,   σ(W) ≈ vᵀ W u

    and the layer computes its usual operation with W_SN = W / σ(W). u and v are
    constants for the gradient (stop_gradient); σ(W) is differentiated, so
    ∂σ/∂W = v uᵀ enters the kernel's gradient. At inference (``training=False``) u
    is used but not updated.

    Args:
        layer: the layer to wrap (unbuilt or built).
        power_iterations: power iterations per training call (1 is the paper's choice).
    """

    def __init__(self, layer, power_iterations: int = 1, **kwargs):
        super().__init__(layer, **kwargs)
        if not isinstance(layer, keras.layers.Dense | keras.layers.Conv2D
                          | keras.layers.Conv2DTranspose):
            raise ValueError(
                "SpectralNorm wraps Dense, Conv2D or Conv2DTranspose layers, got "
                f"{type(layer).__name__}."
            )
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}.")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        kernel = self.layer.kernel
        self._cols = int(kernel.shape[-1])
        self.u = self.add_weight(
            shape=(self._cols,), initializer=keras.initializers.RandomNormal(),
            trainable=False, name="u",
            # every replica computes the same u from the same (mirrored) kernel
            aggregation="only_first_replica",
        )
        self.built = True

    def matrix(self):
        """The kernel as a matrix (rows, columns)."""
        return tf.reshape(self.layer.kernel, (-1, self._cols))

    def sigma(self, training=False):
        """σ(W) from the stored u (and, in training, after updating u)."""
        w = self.matrix()
        u = tf.convert_to_tensor(self.u)
        for _ in range(self.power_iterations if training else 0):
            v = _l2_normalize(tf.linalg.matvec(w, u))
            u = _l2_normalize(tf.linalg.matvec(w, v, transpose_a=True))
        u = tf.stop_gradient(u)
        v = tf.stop_gradient(_l2_normalize(tf.linalg.matvec(w, u)))
        if training:
            self.u.assign(u)
        return tf.tensordot(v, tf.linalg.matvec(w, u), axes=1)

    def normalized_kernel(self, training=False):
        return self.layer.kernel / self.sigma(training)

    def call(self, inputs, training=False):
        inner = self.layer
        w = self.normalized_kernel(training=bool(training) if training is not None else False)
        if isinstance(inner, keras.layers.Conv2DTranspose):
            out = ops.conv_transpose(
                inputs, w, strides=list(inner.strides), padding=inner.padding,
                output_padding=inner.output_padding, dilation_rate=inner.dilation_rate,
                data_format=inner.data_format,
            )
        elif isinstance(inner, keras.layers.Conv2D):
            out = inner.convolution_op(inputs, w)
        else:
            out = ops.matmul(inputs, w)
        if inner.use_bias:
            out = out + inner.bias
        return inner.activation(out) if inner.activation is not None else out

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="gantools")
class MinibatchStdDev(keras.layers.Layer):
    """Append the minibatch standard deviation as one extra feature map (PGGAN).

    The batch of N feature maps (N, H, W, C) is split into N/G groups of G examples,
    example i belonging to group i mod (N/G). For each group:

        s = mean over (h, w, c) of sqrt(Var_group[x] + 1e-8)

    and s is appended to each member as a constant (H, W) channel. A generator that
    collapses to near-identical samples gives a small s, which D can detect. If N is
    not a multiple of G, the whole batch forms one group.
    """

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        if group_size < 2:
            raise ValueError(f"group_size must be >= 2, got {group_size}.")
        self.group_size = int(group_size)

    def call(self, x):
        shape = tf.shape(x)
        n = shape[0]
        g = tf.minimum(self.group_size, n)
        g = tf.where(tf.equal(n % g, 0), g, n)
        y = tf.reshape(x, tf.concat([[g, -1], shape[1:]], axis=0))  # (G, M, H, W, C)
        y = y - tf.reduce_mean(y, axis=0, keepdims=True)
        std = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # (M, H, W, C)
        s = tf.reduce_mean(std, axis=[1, 2, 3])  # (M,)
        s = tf.tile(s, [g])  # example i gets s[i mod M]
        plane = tf.ones_like(x[..., :1]) * tf.reshape(s, [-1, 1, 1, 1])
        return tf.concat([x, plane], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


@keras.saving.register_keras_serializable(package="gantools")
class MinibatchDiscrimination(keras.layers.Layer):
    """Minibatch discrimination (Salimans et al., 2016) on feature vectors f ∈ R^A.

    With a learned tensor T ∈ R^{A×B×C}: M_i = f(x_i) T ∈ R^{B×C},

        c_b(x_i, x_j) = exp(-‖M_{i,b} - M_{j,b}‖₁),   o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j)

    and the output is the concatenation [f(x_i), o(x_i)] ∈ R^{A+B}. (The sum leaves out
    j = i, whose term is always exp(0) = 1.)
    """

    def __init__(self, num_kernels: int = 32, kernel_dim: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.num_kernels = int(num_kernels)
        self.kernel_dim = int(kernel_dim)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "MinibatchDiscrimination expects flat feature vectors (batch, features), "
                f"got shape {input_shape}; put a Flatten layer before it."
            )
        self.T = self.add_weight(
            shape=(int(input_shape[-1]), self.num_kernels * self.kernel_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02), name="T",
        )

    def call(self, f):
        m = tf.reshape(tf.matmul(f, self.T), [-1, self.num_kernels, self.kernel_dim])
        dist = tf.reduce_sum(tf.abs(m[:, None] - m[None, :]), axis=-1)  # (N, N, B)
        o = tf.reduce_sum(tf.exp(-dist), axis=1) - 1.0
        return tf.concat([f, o], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] + self.num_kernels)

    def get_config(self):
        return {**super().get_config(), "num_kernels": self.num_kernels,
                "kernel_dim": self.kernel_dim}


@keras.saving.register_keras_serializable(package="gantools")
class OneHot(keras.layers.Layer):
    """Integer labels (batch,) → one-hot float32 (batch, num_classes)."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, labels):
        return tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), self.num_classes)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="gantools")
class LabelPlanes(keras.layers.Layer):
    """Label vectors (batch, K) → constant image planes (batch, size, size, K)."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, vectors):
        return tf.tile(vectors[:, None, None, :], [1, self.size, self.size, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}
