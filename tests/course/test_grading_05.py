"""Notebook 05's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, the values reported to the grader match its own oracle, and the
checks' NumPy references agree with SVDs and finite differences."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support.grading_helpers import (
    hides_its_expected_values,
    names_its_hint,
    passes_visible_and_hidden,
    reports_what_the_grader_recomputes,
)

from gancourse.checks import load as load_checks
from gantools.models import SpectralNorm


def load():
    return load_checks("05_spectral_norm")


# --- honest answers, several spellings each ---------------------------------------------------

def power_a(W, u, iterations):
    for _ in range(iterations):
        v = tf.linalg.matvec(W, u, transpose_a=True)
        v = v / tf.norm(v)
        u = tf.linalg.matvec(W, v)
        u = u / tf.norm(u)
    return tf.tensordot(u, tf.linalg.matvec(W, v), 1), u, v


def power_b(W, u, iterations):  # column vectors, l2_normalize, sigma = |W v|
    u = tf.reshape(u, (-1, 1))
    for _ in range(iterations):
        v = tf.math.l2_normalize(tf.matmul(W, u, transpose_a=True))
        wv = tf.matmul(W, v)
        u = tf.math.l2_normalize(wv)
    return tf.norm(wv), tf.reshape(u, [-1]), tf.reshape(v, [-1])


def power_numpy(W, u, iterations):  # NumPy is allowed for this one
    W, u = np.asarray(W), np.asarray(u)
    for _ in range(iterations):
        v = W.T @ u
        v /= np.linalg.norm(v)
        u = W @ v
        u /= np.linalg.norm(u)
    return u @ W @ v, u, v


def normalize_a(kernel, u):
    w = tf.transpose(tf.reshape(kernel, (-1, kernel.shape[-1])))
    _, u, v = power_a(w, u, 1)
    u, v = tf.stop_gradient(u), tf.stop_gradient(v)
    return kernel / tf.tensordot(u, tf.linalg.matvec(w, v), 1), u


def normalize_b(kernel, u):  # the Keras orientation, σ = vᵀ K u
    k = tf.reshape(kernel, (-1, tf.shape(kernel)[-1]))
    v = tf.math.l2_normalize(tf.linalg.matvec(k, u))
    u = tf.math.l2_normalize(tf.linalg.matvec(k, v, transpose_a=True))
    v, u = tf.stop_gradient(v), tf.stop_gradient(u)
    sigma = tf.reduce_sum(v * tf.linalg.matvec(k, u))
    return kernel / sigma, u


def sn_critic(normalize=normalize_a):
    def build(image_size, channels, width=8):
        def sn(layer):
            return SpectralNorm(layer, normalize=normalize)
        model = keras.Sequential([keras.Input((image_size, image_size, channels))])
        size, filters = image_size, width
        while size > 4:
            model.add(sn(keras.layers.Conv2D(filters, 4, strides=2, padding="same")))
            model.add(keras.layers.LeakyReLU(0.2))
            size, filters = size // 2, filters * 2
        model.add(keras.layers.Flatten())
        model.add(sn(keras.layers.Dense(1)))
        return model
    return build


def sn_critic_functional(image_size, channels, width=8):  # gantools' own normalization
    x = keras.Input((image_size, image_size, channels))
    h = x
    for i in range(int(np.log2(image_size)) - 2):
        h = SpectralNorm(keras.layers.Conv2D(width * 2**i, 3, strides=2, padding="same",
                                             activation="relu"))(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(x, SpectralNorm(keras.layers.Dense(1))(h))


def power_u_first(W, u, iterations):  # u updated first, v computed from the new u
    for _ in range(iterations):
        u = unit(mv(W, unit(mv(W, u, True))))
        v = unit(mv(W, u, True))
    return tf.tensordot(u, mv(W, v), 1), u, v


def power_dividing_by(norm):
    def fn(W, u, iterations):
        for _ in range(iterations):
            v = mv(W, u, True)
            v = v / norm(v)
            u = mv(W, v)
            u = u / norm(u)
        return tf.tensordot(u, mv(W, v), 1), u, v
    return fn


def unit(x):
    return x / tf.norm(x)


def mv(W, x, t=False):
    return tf.linalg.matvec(W, x, transpose_a=t)


HONEST = [
    ("check_power_iteration", power_a),
    ("check_power_iteration", power_b),
    ("check_spectral_normalize", normalize_a),
    ("check_spectral_normalize", normalize_b),
    ("check_sn_critic", sn_critic()),
    ("check_sn_critic", sn_critic(normalize_b)),
    ("check_sn_critic", sn_critic_functional),
    # activations whose slope is at most 1 are fine, as the text says
    ("check_sn_critic", lambda size, channels: elu_critic(size, channels)),
    ("check_sn_critic", lambda size, channels: tanh_critic(size, channels)),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check", ["check_power_iteration", "check_spectral_normalize"])
def test_reported_values_agree_with_the_graders_own_oracle(check, monkeypatch):
    reports_what_the_grader_recomputes(load, check, dict(HONEST)[check], monkeypatch)


# --- the checks' references against independent oracles ---------------------------------------

def test_power_iteration_reference_converges_to_the_svd():
    checks = load()
    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, 5))
    sigma, u, v = checks._power_iteration(w, rng.normal(size=7), 500)
    left, s, right = np.linalg.svd(w)
    assert sigma == pytest.approx(s[0], rel=1e-10)
    assert abs(u @ left[:, 0]) == pytest.approx(1, abs=1e-10)
    assert abs(v @ right[0]) == pytest.approx(1, abs=1e-10)


def test_the_test_matrices_have_the_singular_values_asked_for():
    checks = load()
    values = np.array([1e3, 400.0, 1.0, 1e-3])
    w = checks._matrix(np.random.default_rng(1), 6, 4, values)
    # float64 QR and SVD: errors ~1e-16 of the largest value (1e3), so ~1e-10 relative for
    # the smallest (1e-3) on any LAPACK; 1e-6 leaves room and still tells every value apart
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), values, rtol=1e-6)


def test_the_gradient_closed_form_matches_finite_differences():
    """G/σ − ⟨G, K⟩/σ² · v uᵀ against central differences of Σ probe ⊙ K/σ(K) with u, v
    frozen at the kernel's own values (float64, step 1e-6: error ~1e-9)."""
    checks = load()
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(2, 2, 3, 4))
    u0 = rng.normal(size=4)
    probe = rng.normal(size=kernel.shape)
    _, u, _, v = checks._normalize(kernel, u0)

    def loss(k):  # σ = uᵀ W v with u, v held at the values computed from `kernel`
        sigma = u @ checks._paper_matrix(k) @ v
        return np.sum(probe * k / sigma)

    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        e = np.zeros_like(kernel)
        e[index] = 1e-6
        numeric[index] = (loss(kernel + e) - loss(kernel - e)) / 2e-6
    np.testing.assert_allclose(checks._gradient(kernel, u0, probe), numeric, atol=1e-7)
    # and the gradient is orthogonal to the kernel (W/σ(W) is scale-invariant)
    assert abs(np.sum(numeric * kernel)) < 1e-7


def test_gantools_spectral_normalize_matches_the_checks_reference():
    """The library's layer computes the paper's Algorithm 1 (float32 against float64)."""
    from gantools.models import spectral_normalize

    checks = load()
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(3, 3, 2, 5)).astype(np.float32)
    u = rng.normal(size=5).astype(np.float32)
    w, new_u, sigma = spectral_normalize(tf.constant(kernel), tf.constant(u))
    want_w, want_u, want_sigma, _ = checks._normalize(kernel, u)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_u.numpy(), want_u, rtol=1e-5, atol=1e-6)
    assert float(sigma) == pytest.approx(want_sigma, rel=1e-5)


# --- the usual mistakes get their hint ---------------------------------------------------------

def power_with(update, sigma_of=None):
    def fn(W, u, iterations):
        u0 = u
        for _ in range(iterations):
            u0 = u
            u, v = update(W, u)
        sigma = sigma_of(W, u, v, u0) if sigma_of else tf.tensordot(u, tf.linalg.matvec(W, v), 1)
        return sigma, u, v
    return fn


def power_swapped(W, u, iterations):
    for _ in range(iterations):
        v = unit(mv(W, u))
        u = unit(mv(W, v, True))
    return tf.tensordot(v, mv(W, u), 1), u, v


MISTAKES = [
    ("check_power_iteration", power_swapped, "transposes are swapped"),
    ("check_power_iteration", power_with(lambda W, u: (unit(mv(W, mv(W, u, True))),
                                                       mv(W, u, True))), "v is not normalized"),
    ("check_power_iteration", power_with(lambda W, u: (mv(W, unit(mv(W, u, True))),
                                                       unit(mv(W, u, True)))), "u is not normal"),
    ("check_power_iteration", power_with(lambda W, u: (mv(W, mv(W, u, True)), mv(W, u, True))),
     "neither u nor v"),
    ("check_power_iteration",
     power_with(lambda W, u: (unit(mv(W, unit(mv(W, u, True)))), unit(mv(W, u, True))),
                sigma_of=lambda W, u, v, u0: tf.norm(mv(W, u, True))), "‖Wᵀu‖"),
    ("check_power_iteration",
     power_with(lambda W, u: (unit(mv(W, unit(mv(W, u, True)))), unit(mv(W, u, True))),
                sigma_of=lambda W, u, v, u0: tf.tensordot(u0, mv(W, v), 1)), "started from"),
    ("check_power_iteration", lambda W, u, k: power_a(W, u, 1), "only one iteration"),
    ("check_power_iteration", lambda W, u, k: (lambda s, a, b: (s, b, a))(*power_a(W, u, k)),
     "wrong order"),
    ("check_power_iteration", lambda W, u, k: power_a(W, u, k)[:2], "three things"),
    ("check_spectral_normalize",
     lambda kernel, u: (kernel / tf.norm(kernel), normalize_a(kernel, u)[1]), "Frobenius"),
    ("check_spectral_normalize",
     lambda kernel, u: (lambda w: (kernel / power_a(w, u, 1)[0], power_a(w, u, 1)[1]))(
         tf.reshape(kernel, (kernel.shape[-1], -1))), r"\(out, -1\)"),
    ("check_spectral_normalize",
     lambda kernel, u: (kernel / tf.linalg.svd(tf.reshape(kernel, (-1, kernel.shape[-1])),
                                               compute_uv=False)[0], normalize_a(kernel, u)[1]),
     "exact σ_max"),
    ("check_spectral_normalize", lambda kernel, u: (normalize_a(kernel, u)[0], u), "passed in"),
    ("check_spectral_normalize", lambda kernel, u: normalize_a(kernel, u)[0], "two things"),
]


def normalize_sigma_stopped(kernel, u):
    w, u = normalize_a(kernel, u)
    sigma = tf.stop_gradient(tf.norm(kernel) / tf.norm(w))
    return kernel / sigma, u


def normalize_numpy_sigma(kernel, u):
    w, u = normalize_a(kernel, u)
    return kernel / float(tf.norm(kernel) / tf.norm(w)), u


def normalize_uv_not_stopped(kernel, u):
    w = tf.transpose(tf.reshape(kernel, (-1, kernel.shape[-1])))
    sigma, u, _ = power_a(w, u, 1)
    return kernel / sigma, u


def normalize_untransposed(kernel, u):  # K (in × out) used as W: u would need `in` entries
    k = tf.reshape(kernel, (-1, kernel.shape[-1]))
    sigma, u, _ = power_a(k, u, 1)
    return kernel / sigma, u


def normalize_numpy(kernel, u):  # right values, but no gradient at all
    k = np.asarray(kernel)
    sigma, u, _ = power_numpy(k.reshape(-1, k.shape[-1]).T, np.asarray(u), 1)
    return k / sigma, u


MISTAKES += [
    ("check_spectral_normalize", normalize_sigma_stopped, "no path through σ"),
    ("check_spectral_normalize", normalize_numpy_sigma, "no path through σ"),
    ("check_spectral_normalize", normalize_uv_not_stopped, "also flows through u and v"),
    ("check_spectral_normalize", normalize_untransposed, "transpose"),
    ("check_spectral_normalize", normalize_numpy, "no gradient flows"),
]


def critic_with(wrap=None, batch_norm=False, bare_dense=False, sigmoid=False,
                activation=lambda: keras.layers.LeakyReLU(0.2), conv_activation=None):
    def build(image_size, channels):
        wrapper = wrap or (lambda layer: SpectralNorm(layer, normalize=normalize_a))
        model = keras.Sequential([keras.Input((image_size, image_size, channels))])
        size = image_size
        while size > 4:
            model.add(wrapper(keras.layers.Conv2D(8, 4, strides=2, padding="same",
                                                  activation=conv_activation)))
            if batch_norm:
                model.add(keras.layers.BatchNormalization())
            if activation is not None:
                model.add(activation())
            size //= 2
        model.add(keras.layers.Flatten())
        dense = keras.layers.Dense(1, activation="sigmoid" if sigmoid else None)
        model.add(dense if bare_dense else wrapper(dense))
        return model
    return build


elu_critic = critic_with(activation=lambda: keras.layers.Activation("elu"))
tanh_critic = critic_with(activation=None, conv_activation="tanh")


class FrobeniusNorm(keras.layers.Wrapper):
    """A wrapper that divides by the Frobenius norm instead of σ."""

    def call(self, x):
        kernel = self.layer.kernel / tf.norm(self.layer.kernel)
        if isinstance(self.layer, keras.layers.Dense):
            return tf.matmul(x, kernel) + self.layer.bias
        return self.layer.convolution_op(x, kernel) + self.layer.bias


def sigma_stopped(kernel, u):
    return normalize_sigma_stopped(kernel, u)


def power_sigma_from_svd(W, u, iterations):  # the updates right, σ exact instead of estimated
    for _ in range(iterations):
        v = unit(mv(W, u, True))
        u = unit(mv(W, v))
    return tf.linalg.svd(W, compute_uv=False)[0], u, v


def normalize_scaled(kernel, u):  # a value error: the message names one entry of W_SN
    out, u = normalize_a(kernel, u)
    return out * 1.01, u


MISTAKES += [
    ("check_power_iteration", power_sigma_from_svd, "exact largest singular value"),
    # an entry's index in plain integers, as a student writes it (not NumPy's np.int64(2))
    ("check_spectral_normalize", normalize_scaled,
     r"normalized kernel\[\d+, \d+(, \d+, \d+)?\] expected"),
]

MISTAKES += [
    # NumPy gives the right values eagerly; spectral_normalize calls it in a compiled step
    ("check_power_iteration", power_numpy, "fails inside a tf.function"),
    ("check_power_iteration", power_u_first, "u was updated first"),
    ("check_power_iteration", power_dividing_by(lambda x: tf.reduce_sum(x ** 2)),
     "squared norm"),
    ("check_power_iteration", power_dividing_by(lambda x: tf.reduce_sum(tf.abs(x))), "L1 norm"),
    # any other wrong divisor leaves vectors of the wrong length, and says so
    ("check_power_iteration", power_dividing_by(lambda x: tf.reduce_max(tf.abs(x))),
     r"has length [\d.]+, not 1"),
]

MISTAKES += [
    ("check_sn_critic", critic_with(keras.layers.SpectralNormalization), "overwrites the kernel"),
    ("check_sn_critic", critic_with(activation=lambda: keras.layers.Activation("selu")),
     r"stretches differences by up to 1\.7"),
    ("check_sn_critic", critic_with(activation=None, conv_activation="gelu"),
     r"stretches differences by up to 1\.1"),
    ("check_sn_critic", critic_with(activation=lambda: keras.layers.LeakyReLU(1.5)),
     r"up to 1\.50"),
    ("check_sn_critic", critic_with(batch_norm=True), "batch normalization"),
    ("check_sn_critic", critic_with(bare_dense=True), "is not spectral-normalized"),
    ("check_sn_critic", critic_with(sigmoid=True), "no activation"),
    ("check_sn_critic", critic_with(FrobeniusNorm), "kernel / σ_max"),
    ("check_sn_critic", critic_with(lambda layer: SpectralNorm(layer, normalize=sigma_stopped)),
     "not orthogonal"),
    ("check_sn_critic", lambda size, channels: keras.Sequential(
        [keras.Input((size, size, channels)), keras.layers.Flatten(), keras.layers.Dense(2)]),
     r"expected one score per image"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    checks = load()
    for check, answer in (("check_power_iteration", power_swapped),
                          ("check_spectral_normalize", normalize_sigma_stopped)):
        hides_its_expected_values(checks, check, answer)


def test_a_numpy_power_iteration_inside_spectral_normalize_fails_when_compiled():
    """Eager NumPy gives the right values; the trainer's compiled step cannot run it."""
    def normalize(kernel, u):
        w = tf.transpose(tf.reshape(kernel, (-1, kernel.shape[-1])))
        _, u, v = power_numpy(w.numpy(), np.asarray(u), 1)
        u, v = tf.constant(u, tf.float32), tf.constant(v, tf.float32)
        return kernel / tf.tensordot(u, tf.linalg.matvec(w, v), 1), u

    with pytest.raises(AssertionError, match="inside a tf.function"):
        load().check_spectral_normalize(normalize)


def test_gantools_own_spectral_normalize_trips_the_tripwire():
    from gantools.models import spectral_normalize

    with pytest.raises(AssertionError, match="calls the gantools reference"):
        load().check_spectral_normalize(lambda kernel, u: spectral_normalize(kernel, u)[:2])


@pytest.mark.parametrize("ratio", [0.5, 0.7])
def test_power_iteration_converges_at_the_rates_the_notebook_states(ratio):
    """Notebook 05 says: after k iterations the angle between u and the top left singular
    vector shrinks like (σ₂/σ₁)^{2k} and the error of σ like (σ₂/σ₁)^{4k}. Measured here in
    float64 (round-off ~1e-16, far below the errors compared) with an honest power
    iteration against the matrix's own singular vectors, once the smaller singular values
    (at most σ₂/2) have died out."""
    rng = np.random.default_rng(0)
    rows, cols = 48, 24
    left, _ = np.linalg.qr(rng.normal(size=(rows, rows)))
    right, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
    values = np.r_[2.0, 2.0 * ratio, np.linspace(ratio, 0.1, cols - 2)]
    w = tf.constant((left[:, :cols] * values) @ right.T)
    u = tf.constant(rng.normal(size=rows))
    angles, errors = [], []
    for _ in range(10):
        sigma, u, _ = power_a(w, u, 1)
        cosine = abs(float(tf.tensordot(u, left[:, 0], 1)))
        angles.append(np.sqrt(max(0.0, 1.0 - cosine ** 2)))
        errors.append(abs(float(sigma) - 2.0) / 2.0)
    angles, errors = np.array(angles), np.array(errors)
    # per-iteration factors from iteration 4 on: the third singular value contributes
    # (1/2)^{2k} relative to the second, under 1 % of the factor by then
    angle_factor = np.exp(np.mean(np.diff(np.log(angles[4:]))))
    error_factor = np.exp(np.mean(np.diff(np.log(errors[4:]))))
    np.testing.assert_allclose(angle_factor, ratio ** 2, rtol=0.02)
    np.testing.assert_allclose(error_factor, ratio ** 4, rtol=0.04)
    assert errors[-1] > 1e-13  # 1,000 times float64's round-off: the slopes are the math's


@pytest.mark.parametrize("fn, slope", [
    (tf.nn.relu, 1.0), (lambda x: tf.nn.leaky_relu(x, 0.2), 1.0), (tf.tanh, 1.0),
    (tf.sigmoid, 0.25), (lambda x: 2.0 * x, 2.0),
    # SELU: λα eᵗ on the negative side, largest next to 0, λα = 1.0507 · 1.6733 = 1.7581;
    # the probe's secant over [−h, 0] gives λα (1 − e^{−h}) / h, h = 1/128
    (tf.nn.selu, 1.0507009873554805 * 1.6732632423543772 * 128 * (1 - np.exp(-1 / 128))),
])
def test_largest_slope_matches_the_closed_form(fn, slope):
    from gancourse.checks import harness

    # the grid is exact in float32; products of values up to 6 keep ~1e-4 of a slope
    assert harness.largest_slope(fn) == pytest.approx(slope, abs=2e-3)
