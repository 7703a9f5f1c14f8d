"""DCGAN generator and discriminator builders, unconditional and conditional.

The generator maps z ∈ R^latent_dim to an image in [-1, 1] (``tanh``); the
discriminator maps an image to **one logit** (no sigmoid: the losses take logits).
Following Radford et al. (2016): all weights start from N(0, 0.02); G uses ReLU and
D LeakyReLU(0.2); resolution doubles (G) or halves (D) at each stage with stride-2
convolutions; D's first convolution is not normalized.

Sizes. An image of side S = 4·2^k (8, 16, 32, 64) grows from a 4×4 map, one of side
S = 7·2^k (14, 28, 56) from a 7×7 map: MNIST's 28×28 is 7 → 14 → 28, as in the DCGAN
examples of TensorFlow and Keras. ``width`` is the channel count at the highest-resolution
hidden stage; it doubles at each halving of the resolution, capped at ``max_width``.
``depth`` is the number of convolutions per resolution (the first one changes the
resolution, the others are 3×3, stride 1). Example: S = 32, width = 64 gives
G: z → 4×4×256 → 8×8×128 → 16×16×64 → 32×32×C and D: 32×32×C → 16×16×64 → 8×8×128
→ 4×4×256 → logit; S = 28, width = 32 gives G: z → 7×7×64 → 14×14×32 → 28×28×C and
D: 28×28×C → 14×14×32 → 7×7×64 → logit.

``normalization``: ``"batch"`` (BatchNorm, momentum 0.9, synchronized: under a
``tf.distribute`` strategy its statistics are those of the global batch, as on one
device, and every replica keeps the same moving averages), ``"layer"`` (LayerNorm over
each example's whole feature map, the WGAN-GP critic's choice), ``"none"``, or
``"spectral"`` (every convolution and dense layer wrapped in :class:`SpectralNorm`,
no other normalization).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .layers import LabelPlanes, MinibatchDiscrimination, MinibatchStdDev, OneHot, SpectralNorm

NORMALIZATIONS = ("batch", "layer", "none", "spectral")
UPSAMPLINGS = ("transpose", "upsample")
MINIBATCH_FEATURES = (None, "stddev", "discrimination")


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


SIZES = (8, 14, 16, 28, 32, 56, 64)


def check_image_shape(image_size, channels):
    """Validate (image_size, channels); returns ``(base, stages)``: the side of the first
    feature map (4 or 7) and the number of 2× stages from it to ``image_size``."""
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ValueError(f"image_size must be an integer, got {image_size!r}.")
    if image_size not in SIZES:
        raise ValueError(
            f"image_size must be 4 or 7 times a power of two between 8 and 64 "
            f"({', '.join(map(str, SIZES))}), got {image_size}; resize the data with "
            "gantools.data.load(..., image_size=...)."
        )
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive integer (1 or 3), got {channels!r}.")
    base = 7 if image_size % 7 == 0 else 4
    return base, int(math.log2(image_size // base))


def _check_common(width, depth, normalization, max_width):
    for name, value in (("width", width), ("depth", depth), ("max_width", max_width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}."
        )


def _maybe_sn(layer, normalization):
    return SpectralNorm(layer) if normalization == "spectral" else layer


def _norm(normalization, name):
    if normalization == "batch":
        return layers.BatchNormalization(momentum=0.9, synchronized=True, name=name)
    if normalization == "layer":
        return layers.LayerNormalization(axis=[1, 2, 3], name=name)
    return None


def _label_vector(labels, num_classes, label_embedding, embed_dim):
    if label_embedding == "onehot":
        return OneHot(num_classes, name="label_onehot")(labels)
    if label_embedding == "embedding":
        v = layers.Embedding(num_classes, embed_dim, name="label_embedding")(labels)
        return layers.Reshape((embed_dim,))(v)
    raise ValueError(
        f"unknown label_embedding {label_embedding!r}; choose 'onehot' or 'embedding'."
    )


def _check_classes(num_classes):
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}.")


def dcgan_generator(image_size: int = 32, channels: int = 1, latent_dim: int = 128,
                    width: int = 64, depth: int = 1, upsampling: str = "transpose",
                    normalization: str = "batch", max_width: int = 512,
                    num_classes: int | None = None, label_embedding: str = "onehot",
                    embed_dim: int = 16, name: str = "generator") -> keras.Model:
    """DCGAN generator: z (batch, latent_dim) → images (batch, S, S, channels) in [-1, 1].

    With ``num_classes``, the model takes ``[z, labels]`` (labels: int (batch,)) and
    concatenates the label, one-hot or as a learned ``embed_dim`` embedding, to z.
    ``upsampling``: ``"transpose"`` (4×4 transposed convolution, stride 2) or
    ``"upsample"`` (nearest-neighbour 2× up-sampling then a 3×3 convolution, which
    avoids checkerboard artefacts).
    """
    base, stages = check_image_shape(image_size, channels)
    _check_common(width, depth, normalization, max_width)
    _check_classes(num_classes)
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"unknown upsampling {upsampling!r}; choose one of {UPSAMPLINGS}.")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")

    def ch(stage):  # channels after `stage` up-samplings (stage 0 is the base × base map)
        return min(width * 2 ** (stages - 1 - stage), max_width)

    use_bias = normalization not in ("batch", "layer")
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    h = z
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        h = layers.Concatenate(name="z_and_label")(
            [z, _label_vector(labels, num_classes, label_embedding, embed_dim)]
        )

    def block(h, conv, tag, reshape=None):
        h = _maybe_sn(conv, normalization)(h)
        h = reshape(h) if reshape is not None else h
        norm = _norm(normalization, f"{tag}_norm")
        h = norm(h) if norm is not None else h
        return layers.ReLU(name=f"{tag}_relu")(h)

    h = block(h, layers.Dense(base * base * ch(0), use_bias=use_bias,
                              kernel_initializer=_init(), name="project"), "project",
              reshape=layers.Reshape((base, base, ch(0)), name=f"to_{base}x{base}"))
    for stage in range(stages + 1):
        last = stage == stages
        if stage > 0:
            filters = channels if last else ch(stage)
            if upsampling == "transpose":
                conv = layers.Conv2DTranspose(filters, 4, strides=2, padding="same",
                                              use_bias=use_bias or last,
                                              kernel_initializer=_init(), name=f"up{stage}")
            else:
                h = layers.UpSampling2D(2, interpolation="nearest", name=f"upsample{stage}")(h)
                conv = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias or last,
                                     kernel_initializer=_init(), name=f"up{stage}")
            if last:
                h = _maybe_sn(conv, normalization)(h)
                break
            h = block(h, conv, f"up{stage}")
        for extra in range(depth - 1):
            h = block(h, layers.Conv2D(ch(stage), 3, padding="same", use_bias=use_bias,
                                       kernel_initializer=_init(),
                                       name=f"conv{stage}_{extra + 1}"), f"conv{stage}_{extra + 1}")
    images = layers.Activation("tanh", name="images")(h)
    return keras.Model(inputs if len(inputs) > 1 else z, images, name=name)


def dcgan_discriminator(image_size: int = 32, channels: int = 1, width: int = 64,
                        depth: int = 1, normalization: str = "batch", dropout: float = 0.0,
                        max_width: int = 512, minibatch: str | None = None,
                        num_classes: int | None = None,
                        name: str = "discriminator") -> keras.Model:
    """DCGAN discriminator: images (batch, S, S, channels) → logits (batch, 1).

    With ``num_classes``, the model takes ``[images, labels]`` and appends the one-hot
    label as ``num_classes`` constant image planes to the input. ``dropout`` is applied
    before the final dense layer. ``minibatch`` adds a batch-level feature before the
    output: ``"stddev"`` (:class:`MinibatchStdDev`) or ``"discrimination"``
    (:class:`MinibatchDiscrimination`), or a Keras layer of your own that maps the
    flattened features (batch, A) to (batch, A + B), applied where "discrimination" is.
    Use ``normalization="layer"``, ``"none"`` or ``"spectral"`` for a WGAN-GP critic:
    batch norm makes each example's output depend on the rest of the batch, which breaks
    the per-example gradient penalty.
    """
    _, stages = check_image_shape(image_size, channels)
    _check_common(width, depth, normalization, max_width)
    _check_classes(num_classes)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    own_layer = isinstance(minibatch, keras.layers.Layer)
    if not own_layer and minibatch not in MINIBATCH_FEATURES:
        raise ValueError(f"unknown minibatch feature {minibatch!r}; choose one of "
                         f"{MINIBATCH_FEATURES}, or a Keras layer.")

    images = keras.Input((image_size, image_size, channels), name="images")
    inputs = [images]
    h = images
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        planes = LabelPlanes(image_size, name="label_planes")(OneHot(num_classes)(labels))
        h = layers.Concatenate(name="image_and_label")([images, planes])

    def block(h, conv, tag, normalize):
        h = _maybe_sn(conv, normalization)(h)
        norm = _norm(normalization, f"{tag}_norm") if normalize else None
        h = norm(h) if norm is not None else h
        return layers.LeakyReLU(0.2, name=f"{tag}_lrelu")(h)

    use_bias = normalization not in ("batch", "layer")
    for stage in range(stages):
        filters = min(width * 2**stage, max_width)
        h = block(h, layers.Conv2D(filters, 4, strides=2, padding="same",
                                   use_bias=use_bias or stage == 0, kernel_initializer=_init(),
                                   name=f"down{stage + 1}"), f"down{stage + 1}", stage > 0)
        for extra in range(depth - 1):
            tag = f"conv{stage + 1}_{extra + 1}"
            h = block(h, layers.Conv2D(filters, 3, padding="same", use_bias=use_bias,
                                       kernel_initializer=_init(), name=tag), tag, True)
    if minibatch == "stddev":
        h = MinibatchStdDev(name="minibatch_stddev")(h)
    h = layers.Flatten(name="flatten")(h)
    if minibatch == "discrimination":
        h = MinibatchDiscrimination(name="minibatch_discrimination")(h)
    elif own_layer:
        h = minibatch(h)
    if dropout > 0:
        h = layers.Dropout(dropout, name="dropout")(h)
    logits = _maybe_sn(layers.Dense(1, kernel_initializer=_init(), name="logit"),
                       normalization)(h)
    return keras.Model(inputs if len(inputs) > 1 else images, logits, name=name)


def check_compatible(generator: keras.Model, discriminator: keras.Model) -> None:
    """Raise ``ValueError`` if G's images do not fit D's image input (size or channels)."""
    g_out = tuple(generator.outputs[0].shape[1:])
    d_in = tuple(discriminator.inputs[0].shape[1:])
    if g_out != d_in:
        raise ValueError(
            f"the generator makes images of shape {g_out} but the discriminator expects "
            f"{d_in}; build both with the same image_size and channels."
        )
    g_cond, d_cond = len(generator.inputs) > 1, len(discriminator.inputs) > 1
    if g_cond != d_cond:
        raise ValueError(
            "one model is conditional and the other is not; pass the same num_classes to both."
        )
