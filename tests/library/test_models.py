"""gantools.models: builders, layers and spectral normalization against oracles."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import gantools.models as gm
from gantools.models import MinibatchDiscrimination, MinibatchStdDev, SpectralNorm


def _z(n, d, seed=0):
    return tf.constant(np.random.default_rng(seed).standard_normal((n, d)), tf.float32)


def _conv_layers(model, kind=keras.layers.Conv2D):
    found = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, SpectralNorm) else layer
        if type(inner) is kind:
            found.append(inner)
    return found


# --- DCGAN builders -----------------------------------------------------------------------

@pytest.mark.parametrize("size", [8, 14, 16, 28, 32, 56, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_for_every_size(size, channels):
    g = gm.dcgan_generator(size, channels, latent_dim=16, width=8)
    d = gm.dcgan_discriminator(size, channels, width=8)
    x = g(_z(3, 16), training=True)
    assert tuple(x.shape) == (3, size, size, channels)
    assert float(tf.reduce_max(tf.abs(x))) <= 1.0
    assert tuple(d(x).shape) == (3, 1)
    gm.check_compatible(g, d)


def test_the_28_pixel_dcgan_grows_7_14_28_with_width_as_its_parameter():
    """MNIST's size: G projects z to 7×7×(2·width) and doubles twice; D halves twice."""
    for width in (16, 32):
        g = gm.dcgan_generator(28, 1, latent_dim=64, width=width)
        d = gm.dcgan_discriminator(28, 1, width=width)
        assert tuple(g.get_layer("to_7x7").output.shape) == (None, 7, 7, 2 * width)
        ups = _conv_layers(g, keras.layers.Conv2DTranspose)
        assert [tuple(u.output.shape[1:]) for u in ups] == [(14, 14, width), (28, 28, 1)]
        downs = _conv_layers(d)
        assert [tuple(c.output.shape[1:]) for c in downs] == [(14, 14, width),
                                                              (7, 7, 2 * width)]
        assert g.get_layer("project").kernel.shape == (64, 7 * 7 * 2 * width)
        assert d.get_layer("logit").kernel.shape == (7 * 7 * 2 * width, 1)


def test_generator_channel_plan_and_depth():
    g = gm.dcgan_generator(32, 3, latent_dim=8, width=16, depth=2)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in g.layers}
    assert shapes["to_4x4"] == (4, 4, 64)
    assert shapes["up1"] == (8, 8, 32) and shapes["up2"] == (16, 16, 16)
    assert shapes["images"] == (32, 32, 3)
    # one extra 3x3 convolution at 4x4, 8x8 and 16x16
    assert len(_conv_layers(g)) == 3
    capped = gm.dcgan_generator(64, 1, latent_dim=8, width=64, max_width=128)
    assert {layer.name: layer.output.shape[-1] for layer in capped.layers}["to_4x4"] == 128


def test_discriminator_channel_plan_and_logit_output():
    d = gm.dcgan_discriminator(32, 1, width=16, depth=3)
    downs = [layer for layer in _conv_layers(d) if layer.strides == (2, 2)]
    assert [c.filters for c in downs] == [16, 32, 64]
    assert len(_conv_layers(d)) == 3 + 3 * 2
    logit = d.get_layer("logit")
    assert logit.activation is keras.activations.linear and logit.units == 1


def test_normalization_choices():
    def kinds(model):
        return {type(layer).__name__ for layer in model.layers}

    g = gm.dcgan_generator(16, 1, 8, width=8, normalization="batch")
    d = gm.dcgan_discriminator(16, 1, width=8, normalization="batch")
    assert "BatchNormalization" in kinds(g)
    # DCGAN: no normalization after D's first convolution
    assert not d.layers[d.layers.index(d.get_layer("down1")) + 1].name.endswith("norm")
    assert "down2_norm" in {layer.name for layer in d.layers}
    assert "LayerNormalization" in kinds(gm.dcgan_discriminator(16, 1, normalization="layer"))
    none = gm.dcgan_discriminator(16, 1, normalization="none")
    assert not kinds(none) & {"BatchNormalization", "LayerNormalization", "SpectralNorm"}
    sn = gm.dcgan_discriminator(16, 1, width=8, normalization="spectral")
    assert "SpectralNorm" in kinds(sn) and "BatchNormalization" not in kinds(sn)
    assert [x.layer.name for x in sn.layers if isinstance(x, SpectralNorm)] == [
        "down1", "down2", "logit"]


def test_upsample_variant_uses_nearest_upsampling():
    g = gm.dcgan_generator(16, 1, 8, width=8, upsampling="upsample")
    assert sum(isinstance(layer, keras.layers.UpSampling2D) for layer in g.layers) == 2
    assert not _conv_layers(g, keras.layers.Conv2DTranspose)
    assert tuple(g(_z(2, 8)).shape) == (2, 16, 16, 1)


def test_dropout_and_minibatch_options():
    d = gm.dcgan_discriminator(16, 1, width=8, dropout=0.4, minibatch="stddev")
    assert d.get_layer("dropout").rate == 0.4
    assert d.get_layer("minibatch_stddev").output.shape[-1] == 17
    d2 = gm.dcgan_discriminator(16, 1, width=8, minibatch="discrimination")
    assert tuple(d2(tf.zeros((4, 16, 16, 1))).shape) == (4, 1)
    own = MinibatchDiscrimination(num_kernels=5, name="mine")
    d3 = gm.dcgan_discriminator(16, 1, width=8, minibatch=own)
    assert d3.get_layer("mine") is own and own.output.shape[-1] == 16 * 4 * 4 + 5
    with pytest.raises(ValueError, match="or a Keras layer"):
        gm.dcgan_discriminator(16, 1, width=8, minibatch="pairs")


def test_generator_and_discriminator_variables_are_disjoint():
    g = gm.dcgan_generator(16, 1, 8, width=8)
    d = gm.dcgan_discriminator(16, 1, width=8)
    g_ids = {id(v) for v in g.trainable_variables}
    d_ids = {id(v) for v in d.trainable_variables}
    assert g_ids and d_ids and not g_ids & d_ids
    assert sum(int(np.prod(v.shape)) for v in g.weights) == g.count_params()


def test_weights_start_from_dcgan_normal_init():
    d = gm.dcgan_discriminator(64, 3, width=64)
    w = d.get_layer("down2").kernel.numpy()
    assert abs(w.mean()) < 2e-3 and 0.018 < w.std() < 0.022


@pytest.mark.parametrize("embedding", ["onehot", "embedding"])
def test_conditional_models_use_the_label(embedding):
    g = gm.dcgan_generator(16, 1, 8, width=8, num_classes=10, label_embedding=embedding,
                           normalization="none")
    d = gm.dcgan_discriminator(16, 1, width=8, num_classes=10, normalization="none")
    z = tf.repeat(_z(1, 8), 3, axis=0)
    labels = tf.constant([0, 3, 3])
    x = g([z, labels])
    assert tuple(x.shape) == (3, 16, 16, 1)
    assert not np.allclose(x[0], x[1]) and np.allclose(x[1], x[2])
    same_x = tf.repeat(x[:1], 3, axis=0)
    s = d([same_x, labels]).numpy()
    assert not np.isclose(s[0, 0], s[1, 0]) and np.isclose(s[1, 0], s[2, 0])
    gm.check_compatible(g, d)


def test_label_planes_are_one_hot_channels():
    d = gm.dcgan_discriminator(8, 1, width=4, num_classes=4)
    probe = keras.Model(d.inputs, d.get_layer("image_and_label").output)
    out = probe([tf.zeros((2, 8, 8, 1)), tf.constant([2, 0])]).numpy()
    assert out.shape == (2, 8, 8, 5)
    np.testing.assert_array_equal(out[0, :, :, 1:], np.broadcast_to([0, 0, 1, 0], (8, 8, 4)))
    np.testing.assert_array_equal(out[1, 3, 5, 1:], [1, 0, 0, 0])


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gm.dcgan_generator(48), r"4 or 7 times a power of two"),
        (lambda: gm.dcgan_discriminator(24), r"8, 14, 16, 28, 32, 56, 64"),
        (lambda: gm.dcgan_generator(4), r"power of two"),
        (lambda: gm.dcgan_discriminator(128), r"power of two"),
        (lambda: gm.dcgan_generator(32, 0), r"channels must be a positive integer"),
        (lambda: gm.dcgan_generator(32, normalization="instance"), r"unknown normalization"),
        (lambda: gm.dcgan_generator(32, upsampling="pixelshuffle"), r"unknown upsampling"),
        (lambda: gm.dcgan_generator(32, width=0), r"width must be a positive integer"),
        (lambda: gm.dcgan_generator(32, depth=0), r"depth must be a positive integer"),
        (lambda: gm.dcgan_generator(32, latent_dim=0), r"latent_dim must be"),
        (lambda: gm.dcgan_generator(32, num_classes=1), r"num_classes must be an integer >= 2"),
        (lambda: gm.dcgan_generator(32, num_classes=3, label_embedding="x"), r"label_embedding"),
        (lambda: gm.dcgan_discriminator(32, dropout=1.0), r"dropout must be in \[0, 1\)"),
        (lambda: gm.dcgan_discriminator(32, minibatch="std"), r"unknown minibatch feature"),
        (lambda: gm.mlp_generator(hidden=()), r"hidden must be a non-empty"),
    ],
)
def test_impossible_configurations_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_check_compatible_names_the_mismatch():
    g = gm.dcgan_generator(32, 3, 8, width=8)
    mismatch = r"\(32, 32, 3\) but the discriminator expects \(32, 32, 1\)"
    with pytest.raises(ValueError, match=mismatch):
        gm.check_compatible(g, gm.dcgan_discriminator(32, 1, width=8))
    with pytest.raises(ValueError, match="same num_classes"):
        gm.check_compatible(g, gm.dcgan_discriminator(32, 3, width=8, num_classes=10))


def test_mlp_models():
    g = gm.mlp_generator(latent_dim=4, hidden=(16, 16))
    d = gm.mlp_discriminator(hidden=(16,), spectral=True)
    p = g(_z(5, 4))
    assert tuple(p.shape) == (5, 2) and tuple(d(p).shape) == (5, 1)
    assert g.layers[-1].activation is keras.activations.linear
    assert any(isinstance(layer, SpectralNorm) for layer in d.layers)


# --- minibatch layers against NumPy ------------------------------------------------------

def _np_minibatch_std(x, group):
    n = x.shape[0]
    g = min(group, n)
    g = g if n % g == 0 else n
    m = n // g
    out = np.empty(n)
    for j in range(m):
        members = x[j::m]  # examples j, j + m, j + 2m, ...
        s = np.sqrt(members.var(axis=0) + 1e-8).mean()
        out[j::m] = s
    return np.concatenate([x, np.broadcast_to(out[:, None, None, None], x.shape[:3] + (1,))], -1)


@pytest.mark.parametrize("n", [8, 6, 3])
def test_minibatch_stddev_matches_numpy(n, rng):
    x = rng.standard_normal((n, 4, 4, 3)).astype(np.float32)
    got = MinibatchStdDev(group_size=4)(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, _np_minibatch_std(x, 4), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_is_small_for_collapsed_batches(rng):
    same = np.repeat(rng.standard_normal((1, 4, 4, 2)), 8, axis=0).astype(np.float32)
    out = MinibatchStdDev()(tf.constant(same)).numpy()
    assert np.all(out[..., -1] < 1e-3)


def test_minibatch_discrimination_matches_numpy(rng):
    f = rng.standard_normal((5, 6)).astype(np.float32)
    layer = MinibatchDiscrimination(num_kernels=3, kernel_dim=4)
    out = layer(tf.constant(f)).numpy()
    m = (f @ layer.T.numpy()).reshape(5, 3, 4)
    o = np.zeros((5, 3))
    for i in range(5):
        for j in range(5):
            if i != j:
                o[i] += np.exp(-np.abs(m[i] - m[j]).sum(-1))
    np.testing.assert_allclose(out, np.concatenate([f, o], 1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Flatten"):
        MinibatchDiscrimination()(tf.zeros((2, 3, 3, 1)))


# --- spectral normalization ---------------------------------------------------------------

def _power_iterate(layer, x, steps=200):
    for _ in range(steps):
        layer(x, training=True)


def test_spectral_norm_sigma_converges_to_the_top_singular_value(rng):
    layer = SpectralNorm(keras.layers.Dense(7))
    x = tf.constant(rng.standard_normal((2, 5)), tf.float32)
    _power_iterate(layer, x)
    w = layer.layer.kernel.numpy()
    s = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(float(layer.sigma()), s[0], rtol=1e-4)
    w_sn = layer.normalized_kernel().numpy()
    np.testing.assert_allclose(np.linalg.svd(w_sn, compute_uv=False)[0], 1.0, rtol=1e-4)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w_sn + layer.layer.bias.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_spectral_norm_on_convolutions_uses_the_reshaped_kernel(rng):
    x = tf.constant(rng.standard_normal((2, 8, 8, 3)), tf.float32)
    for conv, plain in [(keras.layers.Conv2D(4, 3, padding="same"),
                         keras.layers.Conv2D(4, 3, padding="same")),
                        (keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same"),
                         keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same"))]:
        layer = SpectralNorm(conv)
        _power_iterate(layer, x, steps=100)
        k = conv.kernel.numpy()
        sigma = np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]
        np.testing.assert_allclose(float(layer.sigma()), sigma, rtol=1e-4)
        plain.build(x.shape)
        plain.kernel.assign(k / sigma)
        plain.bias.assign(conv.bias.numpy())
        np.testing.assert_allclose(layer(x).numpy(), plain(x).numpy(), rtol=1e-4, atol=1e-5)


def test_spectral_norm_gradient_flows_through_sigma(rng):
    """∂L/∂W = G/σ − ⟨G, W⟩/σ² · v uᵀ with G = ∂L/∂W_SN and (v, u) the top singular pair."""
    layer = SpectralNorm(keras.layers.Dense(4, use_bias=False))
    x = tf.constant(rng.standard_normal((3, 6)), tf.float32)
    _power_iterate(layer, x)
    probe = tf.constant(rng.standard_normal((3, 4)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=False) * probe)
    grad = tape.gradient(loss, layer.layer.kernel).numpy()
    w = layer.layer.kernel.numpy().astype(np.float64)
    left, s, right_t = np.linalg.svd(w)
    sigma, v, u = s[0], left[:, 0], right_t[0]
    g_sn = x.numpy().T.astype(np.float64) @ probe.numpy()
    expected = g_sn / sigma - (g_sn * w).sum() / sigma**2 * np.outer(v, u)
    np.testing.assert_allclose(grad, expected, rtol=1e-3, atol=1e-5)
    # Keras's in-place version would give g_sn / sigma alone: the σ term must matter.
    assert np.abs(expected - g_sn / sigma).max() > 1e-2


def test_spectral_norm_updates_u_only_in_training(rng):
    layer = SpectralNorm(keras.layers.Dense(3))
    x = tf.constant(rng.standard_normal((2, 4)), tf.float32)
    layer(x, training=False)
    u0 = layer.u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    layer(x, training=True)
    assert not np.allclose(layer.u.numpy(), u0)
    assert not any(v is layer.u for v in layer.trainable_variables)
    with pytest.raises(ValueError, match="wraps Dense, Conv2D or Conv2DTranspose"):
        SpectralNorm(keras.layers.BatchNormalization())


def test_spectral_model_serializes(tmp_path):
    d = gm.dcgan_discriminator(8, 1, width=4, normalization="spectral", minibatch="stddev")
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 8, 8, 1)), tf.float32)
    path = tmp_path / "d.keras"
    d.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again(x).numpy(), d(x).numpy(), rtol=1e-5, atol=1e-6)


def test_spectral_norm_never_changes_the_stored_kernel_and_its_gradient_is_orthogonal(rng):
    """W/σ(W) with σ = vᵀKu (u, v constant) is invariant to the kernel's scale, so
    ⟨∂L/∂K, K⟩ = 0 (Euler's identity); Keras's in-place layer has neither property."""
    layer = SpectralNorm(keras.layers.Conv2D(6, 3, padding="same"))
    x = tf.constant(rng.standard_normal((2, 5, 5, 4)), tf.float32)
    layer(x, training=True)
    before = layer.layer.kernel.numpy().copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * tf.constant(
            rng.standard_normal((2, 5, 5, 6)), tf.float32))
    grad = tape.gradient(loss, layer.layer.kernel).numpy()
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), before)
    # float32: the inner product cancels to ~1e-7 of |g||K|
    assert abs(np.sum(grad * before)) < 1e-5 * np.linalg.norm(grad) * np.linalg.norm(before)


def test_spectral_norm_training_and_inference_agree_on_one_state(rng):
    layer = SpectralNorm(keras.layers.Dense(5))
    x = tf.constant(rng.standard_normal((3, 4)), tf.float32)
    layer(x)
    inference = layer(x, training=False).numpy()
    np.testing.assert_allclose(layer(x, training=True).numpy(), inference, rtol=1e-6)


def test_spectral_norm_runs_a_given_normalize_function(rng):
    """``normalize=`` replaces the computation, in training and inference, inside
    tf.function too; the u it returns is stored only in training."""
    calls = []

    def halve(kernel, u):
        calls.append(1)
        return kernel / 2.0, u + 1.0

    layer = SpectralNorm(keras.layers.Dense(3, use_bias=False), normalize=halve)
    x = tf.constant(rng.standard_normal((2, 4)), tf.float32)
    out = layer(x, training=False)
    u0 = layer.u.numpy().copy()
    np.testing.assert_allclose(out.numpy(), x.numpy() @ layer.layer.kernel.numpy() / 2,
                               rtol=1e-6)
    np.testing.assert_array_equal(layer.u.numpy(), u0)
    tf.function(lambda x: layer(x, training=True))(x)
    np.testing.assert_allclose(layer.u.numpy(), u0 + 1.0, rtol=1e-6)
    assert calls
    with pytest.raises(ValueError, match="normalize must be a function"):
        SpectralNorm(keras.layers.Dense(3), normalize="paper")
