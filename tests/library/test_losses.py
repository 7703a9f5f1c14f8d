"""gantools.losses against NumPy re-implementations and closed forms."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import gantools.losses as gl


def np_softplus(x):
    return np.logaddexp(0.0, x)


def np_bce(t, logit):
    # -t log σ(l) - (1 - t) log(1 - σ(l)), with log σ(l) = -softplus(-l)
    return t * np_softplus(-logit) + (1 - t) * np_softplus(logit)


@pytest.fixture(params=[(16,), (16, 1)], ids=["flat", "column"])
def logits(request, rng):
    real = (rng.standard_normal(request.param) * 3).astype(np.float32)
    fake = (rng.standard_normal(request.param) * 3 - 1).astype(np.float32)
    return real, fake


def f(x):
    return float(x)


# --- cross-entropy family -----------------------------------------------------------------

def test_discriminator_loss_matches_numpy(logits):
    real, fake = logits
    expected = np_bce(1.0, real).mean() + np_bce(0.0, fake).mean()
    np.testing.assert_allclose(f(gl.discriminator_loss(real, fake)), expected, rtol=1e-5)


def test_bce_is_stable_for_extreme_logits():
    real = np.array([100.0, -100.0, 30.0], np.float32)
    fake = np.array([-100.0, 100.0, 0.0], np.float32)
    value = f(gl.discriminator_loss(real, fake))
    expected = np_bce(1.0, real.astype(np.float64)).mean() + np_bce(0.0, fake.astype(
        np.float64)).mean()
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_label_smoothing_is_one_sided(logits):
    real, fake = logits
    alpha = 0.1
    expected = np_bce(1 - alpha, real).mean() + np_bce(0.0, fake).mean()
    np.testing.assert_allclose(f(gl.discriminator_loss(real, fake, label_smoothing=alpha)),
                               expected, rtol=1e-5)
    # the fake term is untouched: smoothing changes only the real half
    zero_real = np.zeros_like(real)
    a = f(gl.discriminator_loss(zero_real, fake, label_smoothing=alpha))
    b = f(gl.discriminator_loss(zero_real, fake))
    np.testing.assert_allclose(a, b, rtol=1e-6)  # BCE(t, 0) = log 2 for every t


def test_label_noise_keeps_targets_in_the_unit_interval(logits):
    real, fake = logits
    alpha, eta = 0.1, 0.2
    # BCE is linear in t, so the loss lies between its values at the band's ends.
    lo_t, hi_t = 1 - alpha - eta, 1 - alpha
    real_bounds = sorted([np_bce(lo_t, real).mean(), np_bce(hi_t, real).mean()])
    fake_bounds = sorted([np_bce(0.0, fake).mean(), np_bce(eta, fake).mean()])
    for seed in range(5):
        value = f(gl.discriminator_loss(real, fake, label_smoothing=alpha, label_noise=eta,
                                        seed=seed))
        assert real_bounds[0] + fake_bounds[0] - 1e-5 <= value
        assert value <= real_bounds[1] + fake_bounds[1] + 1e-5
    # the textbook failure: confident, correct D and noisy labels never give a negative loss
    confident = gl.discriminator_loss(np.full(64, 30.0), np.full(64, -30.0), label_noise=0.3)
    assert f(confident) >= 0.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(label_smoothing=1.0), "label_smoothing must be in"),
    (dict(label_smoothing=-0.1), "label_smoothing must be in"),
    (dict(label_noise=-0.1), "label_noise must be in"),
    (dict(label_smoothing=0.3, label_noise=0.8), r"labels stay in \[0, 1\]"),
])
def test_bad_label_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gl.discriminator_loss(np.zeros(4), np.zeros(4), **kwargs)


def test_generator_losses_match_numpy(logits):
    _, fake = logits
    np.testing.assert_allclose(f(gl.minimax_generator_loss(fake)),
                               np.log(1 - 1 / (1 + np.exp(-fake.astype(np.float64)))).mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(f(gl.non_saturating_generator_loss(fake)),
                               -np.log(1 / (1 + np.exp(-fake.astype(np.float64)))).mean(),
                               rtol=1e-5)


def test_minimax_saturates_where_non_saturating_does_not():
    """d/dl of log(1 - σ(l)) is -σ(l) → 0 for l ≪ 0; of -log σ(l) it is -σ(-l) → -1."""
    fake = tf.Variable(np.full(4, -8.0, np.float32))
    with tf.GradientTape(persistent=True) as tape:
        mm = gl.minimax_generator_loss(fake)
        ns = gl.non_saturating_generator_loss(fake)
    g_mm = tape.gradient(mm, fake).numpy()
    g_ns = tape.gradient(ns, fake).numpy()
    sig = 1 / (1 + np.exp(8.0))
    np.testing.assert_allclose(g_mm, -sig / 4, rtol=1e-4)
    np.testing.assert_allclose(g_ns, -(1 - sig) / 4, rtol=1e-4)
    assert abs(g_ns[0]) > 1000 * abs(g_mm[0])


# --- Wasserstein, least squares, hinge -----------------------------------------------------

def test_wasserstein_losses(logits):
    real, fake = logits
    np.testing.assert_allclose(f(gl.wasserstein_critic_loss(real, fake)),
                               fake.mean() - real.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f(gl.wasserstein_generator_loss(fake)), -fake.mean(), rtol=1e-5)


@pytest.mark.parametrize("a, b, c", [(0.0, 1.0, 1.0), (-1.0, 1.0, 0.0)])
def test_least_squares_losses(logits, a, b, c):
    real, fake = logits
    d = 0.5 * ((real - b) ** 2).mean() + 0.5 * ((fake - a) ** 2).mean()
    g = 0.5 * ((fake - c) ** 2).mean()
    np.testing.assert_allclose(f(gl.least_squares_discriminator_loss(real, fake, a=a, b=b)), d,
                               rtol=1e-5)
    np.testing.assert_allclose(f(gl.least_squares_generator_loss(fake, c=c)), g, rtol=1e-5)


def test_hinge_losses(logits):
    real, fake = logits
    d = np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean()
    np.testing.assert_allclose(f(gl.hinge_discriminator_loss(real, fake)), d, rtol=1e-5)
    np.testing.assert_allclose(f(gl.hinge_generator_loss(fake)), -fake.mean(), rtol=1e-5)


def test_losses_reject_multi_column_outputs():
    with pytest.raises(ValueError, match=r"one output per example.*Dense\(1\)"):
        gl.non_saturating_generator_loss(np.zeros((4, 2), np.float32))


# --- registry ------------------------------------------------------------------------------

def test_registry_pairs(logits):
    real, fake = logits
    assert gl.loss_names()[:2] == ["minimax", "non-saturating"]
    pair = gl.get_loss("least-squares-chi2")
    np.testing.assert_allclose(f(pair.d(real, fake)),
                               f(gl.least_squares_discriminator_loss(real, fake, a=-1.0, b=1.0)))
    np.testing.assert_allclose(f(pair.g(fake)), f(gl.least_squares_generator_loss(fake, c=0.0)))
    assert gl.get_loss("hinge").g is gl.hinge_generator_loss and not gl.get_loss("hinge").logits
    assert gl.get_loss(pair) is pair
    with pytest.raises(ValueError, match="unknown loss 'wgan'.*wasserstein"):
        gl.get_loss("wgan")
    with pytest.raises(ValueError, match="exists"):
        gl.register_loss(gl.LossPair("hinge", pair.d, pair.g, False, ""))


# --- gradient penalty and R1 ---------------------------------------------------------------

def _linear_critic(w):
    """f(x) = w · flatten(x) + 0.3, as a Keras model."""
    shape = w.shape
    x = keras.Input(shape)
    dense = keras.layers.Dense(1)
    out = dense(keras.layers.Flatten()(x))
    model = keras.Model(x, out)
    dense.kernel.assign(w.reshape(-1, 1))
    dense.bias.assign([0.3])
    return model, dense


def test_gradient_penalty_of_a_linear_critic_is_closed_form(rng):
    w = rng.standard_normal((4, 4, 2)).astype(np.float32) * 0.2
    critic, _ = _linear_critic(w)
    real = rng.standard_normal((8, 4, 4, 2)).astype(np.float32)
    fake = rng.standard_normal((8, 4, 4, 2)).astype(np.float32)
    expected = (np.linalg.norm(w) - 1.0) ** 2
    np.testing.assert_allclose(f(gl.gradient_penalty(critic, real, fake)), expected, rtol=1e-4)
    unit, _ = _linear_critic(w / np.linalg.norm(w))
    assert f(gl.gradient_penalty(unit, real, fake)) < 1e-6


def test_gradient_penalty_nested_tape_gives_its_weight_gradient(rng):
    """∂/∂w (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖: needs the inner tape inside the outer one."""
    w = rng.standard_normal((3, 3, 1)).astype(np.float32)
    critic, dense = _linear_critic(w)
    real = rng.standard_normal((4, 3, 3, 1)).astype(np.float32)
    fake = rng.standard_normal((4, 3, 3, 1)).astype(np.float32)
    with tf.GradientTape() as outer:
        gp = gl.gradient_penalty(critic, real, fake)
    grad = outer.gradient(gp, dense.kernel).numpy().reshape(-1)
    norm = np.linalg.norm(w)
    np.testing.assert_allclose(grad, 2 * (norm - 1) * w.reshape(-1) / norm, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_is_finite_when_the_input_gradient_is_zero(rng):
    critic, dense = _linear_critic(np.zeros((2, 2, 1), np.float32))
    real = rng.standard_normal((4, 2, 2, 1)).astype(np.float32)
    with tf.GradientTape() as outer:
        gp = gl.gradient_penalty(critic, real, real)
    grad = outer.gradient(gp, dense.kernel)
    np.testing.assert_allclose(f(gp), 1.0, rtol=1e-5)
    assert np.all(np.isfinite(grad.numpy()))


def test_gradient_penalty_of_a_quadratic_critic(rng):
    """f(x) = ½‖x‖² has ∇f = x; with real = fake the interpolate is that point."""
    x = rng.standard_normal((6, 5)).astype(np.float32)

    def critic(v, training=True):
        return 0.5 * tf.reduce_sum(tf.square(v), axis=1, keepdims=True)

    expected = ((np.linalg.norm(x, axis=1) - 1) ** 2).mean()
    np.testing.assert_allclose(f(gl.gradient_penalty(critic, x, x)), expected, rtol=1e-5)
    np.testing.assert_allclose(f(gl.r1_penalty(critic, x)), (x**2).sum(1).mean(), rtol=1e-5)


def test_interpolation_weights_are_uniform_per_example():
    ones = np.ones((20000, 2, 2, 1), np.float32)
    eps = gl.interpolate(ones, np.zeros_like(ones), seed=3).numpy()
    per_example = eps.reshape(20000, -1)
    np.testing.assert_array_equal(per_example, per_example[:, :1].repeat(4, axis=1))
    e = per_example[:, 0]
    assert e.min() >= 0.0 and e.max() <= 1.0
    np.testing.assert_allclose(e.mean(), 0.5, atol=0.01)
    np.testing.assert_allclose(e.var(), 1 / 12, atol=0.003)
    with pytest.raises(ValueError, match="differ in shape"):
        gl.interpolate(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 3)))


def test_r1_penalty_of_a_linear_critic(rng):
    w = rng.standard_normal((3, 3, 1)).astype(np.float32)
    critic, _ = _linear_critic(w)
    real = rng.standard_normal((5, 3, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(f(gl.r1_penalty(critic, real)), (w**2).sum(), rtol=1e-5)


def test_penalties_call_conditional_critics_with_labels(rng):
    seen = []

    def critic(inputs, training=True):
        x, labels = inputs
        seen.append(labels)
        return tf.reduce_sum(x, axis=[1, 2, 3])[:, None] * tf.cast(labels + 1, tf.float32)[:, None]

    real = rng.standard_normal((3, 2, 2, 1)).astype(np.float32)
    labels = tf.constant([0, 1, 2])
    gp = gl.gradient_penalty(critic, real, real, labels=labels)
    # ∇ = (label + 1) · ones(4): norm 2 (label + 1)
    np.testing.assert_allclose(f(gp), np.mean([(2 * k - 1) ** 2 for k in (1, 2, 3)]), rtol=1e-5)
    assert seen and seen[0] is labels


# --- weight clipping -----------------------------------------------------------------------

def test_weight_clip_constraint_bounds_weights_after_updates(rng):
    clip = gl.WeightClip(0.01)
    layer = keras.layers.Dense(3, kernel_constraint=clip, bias_constraint=clip)
    model = keras.Sequential([keras.Input((4,)), layer])
    opt = keras.optimizers.SGD(learning_rate=10.0)
    x = tf.constant(rng.standard_normal((8, 4)), tf.float32)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) ** 2) + tf.reduce_sum(model(x))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables, strict=True))
    for v in model.trainable_variables:
        assert np.abs(v.numpy()).max() <= 0.01 + 1e-7
    assert np.isclose(np.abs(layer.kernel.numpy()).max(), 0.01)
    np.testing.assert_allclose(clip(tf.constant([-1.0, 0.005, 2.0])).numpy(), [-0.01, 0.005, 0.01])
    assert gl.WeightClip.from_config(clip.get_config()).clip_value == 0.01
    with pytest.raises(ValueError, match="clip_value must be positive"):
        gl.WeightClip(0.0)


def test_clip_model_weights(rng):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.layers[0].kernel.assign(rng.standard_normal((3, 4)))
    gl.clip_model_weights(model, 0.05)
    assert np.abs(model.layers[0].kernel.numpy()).max() <= 0.05 + 1e-7


# --- feature matching ----------------------------------------------------------------------

def test_feature_matching_loss_matches_numpy(rng):
    real = [rng.standard_normal((8, 4, 4, 3)).astype(np.float32),
            rng.standard_normal((8, 10)).astype(np.float32)]
    fake = [rng.standard_normal((8, 4, 4, 3)).astype(np.float32) + 0.5,
            rng.standard_normal((8, 10)).astype(np.float32)]
    terms = [((r.reshape(8, -1).mean(0) - g.reshape(8, -1).mean(0)) ** 2) for r, g in
             zip(real, fake, strict=True)]
    np.testing.assert_allclose(f(gl.feature_matching_loss(real, fake)),
                               sum(t.sum() for t in terms), rtol=1e-5)
    np.testing.assert_allclose(f(gl.feature_matching_loss(real, fake, reduction="mean")),
                               sum(t.mean() for t in terms), rtol=1e-5)
    np.testing.assert_allclose(f(gl.feature_matching_loss(tf.constant(real[1]),
                                                          tf.constant(fake[1]))),
                               terms[1].sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="same non-zero number"):
        gl.feature_matching_loss(real, fake[:1])


def test_feature_extractor_returns_activations_and_logits(rng):
    from gantools.models import dcgan_discriminator

    d = dcgan_discriminator(16, 1, width=4, normalization="none")
    names = gl.default_feature_layers(d)
    assert names == ["down1_lrelu", "down2_lrelu"]
    extractor = gl.feature_extractor(d)
    x = tf.constant(rng.standard_normal((2, 16, 16, 1)), tf.float32)
    *features, logits = extractor(x)
    assert [tuple(t.shape) for t in features] == [(2, 8, 8, 4), (2, 4, 4, 8)]
    np.testing.assert_allclose(logits.numpy(), d(x).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no layer"):
        gl.feature_extractor(d, ["nope"])
