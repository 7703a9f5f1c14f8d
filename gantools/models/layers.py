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


def spectral_normalize(kernel, u, iterations: int = 1):
    """W / σ(W) as in Algorithm 1 of Miyato et al. (2018); returns (W_SN, new u, σ).

    ``kernel`` is viewed as the matrix K = reshape(kernel, (-1, out)), one column per
    output unit; the paper's W (out × in) is Kᵀ, and u (``out`` entries) lives in the
    output space. Each iteration

        v ← Wᵀ u / ‖Wᵀ u‖ = K u / ‖K u‖,   u ← W v / ‖W v‖ = Kᵀ v / ‖Kᵀ v‖,

    then σ = uᵀ W v = vᵀ K u with u and v held constant (``stop_gradient``): σ is
    differentiated as the linear function vᵀ K u, so ∂σ/∂K = v uᵀ enters the gradient,
    and W_SN = kernel / σ is invariant to the scale of the kernel.
    """
    k = tf.reshape(kernel, (-1, tf.shape(kernel)[-1]))
    u = tf.convert_to_tensor(u, k.dtype)
    for _ in range(iterations):
        v = _l2_normalize(tf.linalg.matvec(k, u))
        u = _l2_normalize(tf.linalg.matvec(k, v, transpose_a=True))
    u, v = tf.stop_gradient(u), tf.stop_gradient(v)
    sigma = tf.tensordot(v, tf.linalg.matvec(k, u), axes=1)
    return kernel / sigma, u, sigma


@keras.saving.register_keras_serializable(package="gantools")
class SpectralNorm(keras.layers.Wrapper):
    """Divide the kernel of a ``Dense``, ``Conv2D`` or ``Conv2DTranspose`` by σ(W).

    The layer computes its usual operation with W_SN = W / σ(W), where σ comes from
    :func:`spectral_normalize`: power iterations from the stored vector u, then
    σ = vᵀ K u with u, v held constant and σ differentiated, exactly as in the paper and
    PyTorch. Unlike ``keras.layers.SpectralNormalization``, which overwrites the kernel in
    place so that no gradient flows through σ, the stored kernel never changes here; only
    the optimizer changes it. The kernel is viewed as a matrix with one column per output
    unit (per input channel for ``Conv2DTranspose``, whose kernel is (kh, kw, out, in)).

    In training the refined u is stored for the next call; at inference
    (``training=False``) the same iterations run but u is not updated, so both modes
    compute the same output from the same state.

    Args:
        layer: the layer to wrap (unbuilt or built).
        power_iterations: power iterations per call (1 is the paper's choice).
        normalize: your own ``normalize(kernel, u) -> (kernel / σ, new u)`` to use instead
            of :func:`spectral_normalize` (notebook 05 plugs its exercise in here; it runs
            one iteration, whatever ``power_iterations`` says). It is not saved with the
            model: a reloaded model uses :func:`spectral_normalize`.
    """

    def __init__(self, layer, power_iterations: int = 1, normalize=None, **kwargs):
        super().__init__(layer, **kwargs)
        if not isinstance(layer, keras.layers.Dense | keras.layers.Conv2D
                          | keras.layers.Conv2DTranspose):
            raise ValueError(
                "SpectralNorm wraps Dense, Conv2D or Conv2DTranspose layers, got "
                f"{type(layer).__name__}."
            )
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}.")
        if normalize is not None and not callable(normalize):
            raise ValueError("normalize must be a function normalize(kernel, u) -> "
                             f"(normalized kernel, new u), got {normalize!r}.")
        self.power_iterations = int(power_iterations)
        self.normalize = normalize

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

    def _normalized(self, training):
        kernel = tf.convert_to_tensor(self.layer.kernel)
        u = tf.convert_to_tensor(self.u)
        if self.normalize is not None:
            w, u = self.normalize(kernel, u)
            sigma = None
        else:
            w, u, sigma = spectral_normalize(kernel, u, self.power_iterations)
        if training:
            self.u.assign(tf.reshape(u, (self._cols,)))
        return w, sigma

    def sigma(self, training=False):
        """σ(W) estimated from the stored u (which is updated when ``training``)."""
        _, u, sigma = spectral_normalize(self.layer.kernel, self.u, self.power_iterations)
        if training:
            self.u.assign(u)
        return sigma

    def normalized_kernel(self, training=False):
        return self._normalized(training)[0]

    def call(self, inputs, training=False):
        inner = self.layer
        w, _ = self._normalized(bool(training) if training is not None else False)
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


def num_classes_of(generator: keras.Model) -> int:
    """The number of classes a conditional generator was built for.

    Read from its one-hot layer or operation (gantools' ``OneHot``, ``keras.ops.one_hot``,
    ``CategoryEncoding``) or its ``Embedding``.
    """
    for op in getattr(generator, "operations", None) or generator.layers:
        if hasattr(op, "num_classes"):
            return int(op.num_classes)
        if isinstance(op, keras.layers.Embedding):
            return int(op.input_dim)
        if isinstance(op, keras.layers.CategoryEncoding):
            return int(op.num_tokens)
    raise ValueError(
        f"cannot tell how many classes {generator.name} was built for; pass "
        "num_classes=K (GANTrainer, gantools.metrics.evaluate), or build it with "
        "gantools.models.dcgan_generator(..., num_classes=K)."
    )
