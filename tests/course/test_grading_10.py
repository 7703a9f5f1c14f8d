"""Notebook 10's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, the values reported to the grader match its own oracle, the
truncated sampler's check passes a correct sampler for many nonces, and a layer that calls
gantools trips the wire."""

import math

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


def load():
    return load_checks("10_scaling_up")


# --- honest answers, several spellings each ---------------------------------------------------

def stddev_reference(x):
    mean = tf.reduce_mean(x, axis=0, keepdims=True)
    std = tf.sqrt(tf.reduce_mean(tf.square(x - mean), axis=0) + 1e-8)
    return tf.concat([x, tf.ones_like(x[..., :1]) * tf.reduce_mean(std)], axis=-1)


def stddev_moments(x):
    _, variance = tf.nn.moments(x, axes=[0])
    s = tf.reduce_mean(tf.sqrt(variance + 1e-8))
    shape = tf.concat([tf.shape(x)[:-1], [1]], axis=0)
    return tf.concat([x, tf.fill(shape, s)], axis=-1)


def stddev_broadcast(x):
    s = tf.reduce_mean(tf.sqrt(tf.math.reduce_variance(x, axis=0) + 1e-8))
    return tf.concat([x, tf.zeros_like(x[..., :1]) + s], axis=-1)


def pixel_reference(x, epsilon=1e-8):
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + epsilon)


def pixel_divide(x, epsilon=1e-8):
    return x / tf.sqrt(tf.reduce_mean(x ** 2, axis=-1, keepdims=True) + epsilon)


class DenseReference(keras.layers.Layer):
    NAMES = ("kernel", "bias")  # the attributes the weights are kept in

    def __init__(self, units, gain=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.gain = units, math.sqrt(2.0) if gain is None else gain

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        kernel, bias = self.NAMES
        setattr(self, kernel, self.add_weight(
            shape=(fan_in, self.units), initializer=keras.initializers.RandomNormal(0.0, 1.0)))
        setattr(self, bias, self.add_weight(shape=(self.units,), initializer="zeros"))
        self.scale = self.gain / math.sqrt(fan_in)

    def call(self, x):
        kernel, bias = (getattr(self, name) for name in self.NAMES)
        return tf.matmul(x, kernel * self.scale) + bias


class DenseScaledInput(DenseReference):
    """Another honest spelling: scale the product instead of the kernel; a tf constant."""

    def build(self, input_shape):
        super().build(input_shape)
        self.scale = tf.constant(self.gain / np.sqrt(float(input_shape[-1])), tf.float32)

    def call(self, x):
        return (x @ self.kernel) * self.scale + self.bias


def dense_with(scale="right", init="normal", bias_init="zeros", copy=False, scale_bias=False):
    """The reference layer with one thing changed."""

    class Layer(DenseReference):
        def build(self, input_shape):
            fan_in = int(input_shape[-1])
            he = self.gain / math.sqrt(fan_in)
            initializer = {"normal": keras.initializers.RandomNormal(0.0, 1.0),
                           "he": keras.initializers.RandomNormal(0.0, he),
                           "keras": "random_normal"}[init]
            self.kernel = self.add_weight(shape=(fan_in, self.units), initializer=initializer)
            self.bias = self.add_weight(shape=(self.units,), initializer=bias_init)
            self.scale = {"right": he, "none": 1.0, "fan_out": self.gain / math.sqrt(self.units),
                          "no sqrt": self.gain / fan_in, "no gain": math.sqrt(2.0 / fan_in)}[scale]
            if copy:
                self.frozen = self.kernel * self.scale

        def call(self, x):
            kernel = self.frozen if copy else self.kernel * self.scale
            bias = self.bias * self.scale if scale_bias else self.bias
            return tf.matmul(x, kernel) + bias
    return Layer


def fade_reference(alpha, new, old):
    return alpha * new + (1.0 - alpha) * tf.repeat(tf.repeat(old, 2, axis=1), 2, axis=2)


def fade_keras(alpha, new, old):
    return alpha * new + (1 - alpha) * keras.layers.UpSampling2D(2)(old)


def fade_resize(alpha, new, old):
    up = tf.image.resize(old, tf.shape(new)[1:3], method="nearest")
    return alpha * new + (1.0 - alpha) * up


def truncated_reference(n, dim, psi, rng):
    z = rng.standard_normal((n, dim))
    outside = np.abs(z) > psi
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > psi
    return z.astype(np.float32)


def truncated_per_entry(n, dim, psi, rng):
    """Another honest spelling: a loop over entries, rng.normal, float64."""
    out = np.empty((n, dim))
    for i in range(n):
        for j in range(dim):
            value = rng.normal(0.0, 1.0)
            while abs(value) > psi:
                value = rng.normal(0.0, 1.0)
            out[i, j] = value
    return out


HONEST = [
    ("check_minibatch_stddev", stddev_reference),
    ("check_minibatch_stddev", stddev_moments),
    ("check_minibatch_stddev", stddev_broadcast),
    ("check_pixel_norm", pixel_reference),
    ("check_pixel_norm", pixel_divide),
    ("check_equalized_dense", DenseReference),
    ("check_equalized_dense", DenseScaledInput),
    ("check_fade_in", fade_reference),
    ("check_fade_in", fade_keras),
    ("check_fade_in", fade_resize),
    ("check_truncated_z", truncated_reference),
    ("check_truncated_z", truncated_per_entry),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check, answer", [
    ("check_minibatch_stddev", stddev_reference), ("check_pixel_norm", pixel_reference),
    ("check_equalized_dense", DenseReference), ("check_fade_in", fade_reference)])
def test_reported_values_agree_with_the_graders_own_oracle(check, answer, monkeypatch):
    reports_what_the_grader_recomputes(load, check, answer, monkeypatch)


def test_the_truncation_check_passes_a_correct_sampler_for_many_nonces(capsys):
    checks = load()
    for nonce in range(15):
        checks.check_truncated_z(truncated_reference, hidden=True, nonce=nonce)
    assert capsys.readouterr().out.count("✓") == 15


def test_the_oracles_against_closed_forms():
    """The oracles: a two-example batch's standard deviation is half the gap; a pixel norm
    of (3, 4) is (3, 4)/sqrt(12.5); the truncated normal's CDF is 0 and 1 at ∓ψ and ½ at 0."""
    checks = load()
    x = np.array([[0.0, 1.0], [2.0, 5.0]])
    assert checks._stddev(x)[0, -1] == pytest.approx((1.0 + 2.0) / 2, rel=1e-6)
    np.testing.assert_allclose(checks._pixel_norm(np.array([[3.0, 4.0]])),
                               [[3 / math.sqrt(12.5), 4 / math.sqrt(12.5)]], rtol=1e-7)
    np.testing.assert_allclose(checks._truncated_cdf(np.array([-1.5, 0.0, 1.5]), 1.5),
                               [0.0, 0.5, 1.0], atol=1e-12)


# --- the usual mistakes ---------------------------------------------------------------------------

def _append(x, s):
    return tf.concat([x, tf.ones_like(x[..., :1]) * s], axis=-1)


class DenseOtherNames(DenseReference):
    """Right values, but the weights kept as self.w and self.b: the notebook reads .kernel."""

    NAMES = ("w", "b")


def truncated_with(kind):
    def sample(n, dim, psi, rng):
        if kind == "clip":
            return np.clip(rng.standard_normal((n, dim)), -psi, psi)
        if kind == "once":
            z = rng.standard_normal((n, dim))
            outside = np.abs(z) > psi
            z[outside] = rng.standard_normal(int(outside.sum()))
            return z
        if kind == "uniform":
            bound = min(psi, 3.0)
            return rng.uniform(-bound, bound, (n, dim))
        if kind == "scaled":
            z = rng.standard_normal((n, dim))
            return z * (psi / np.abs(z).max()) if np.isfinite(psi) else z
        if kind == "global":
            return truncated_reference(n, dim, psi, np.random.default_rng())
        if kind == "shape":
            return truncated_reference(dim, n, psi, rng)
        if kind == "tf":
            return tf.random.truncated_normal((n, dim)).numpy()
        raise ValueError(kind)
    return sample


MISTAKES = [
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.reduce_mean(tf.sqrt(tf.math.reduce_variance(x, axis=-1) + 1e-8))),
     "over the batch"),
    ("check_minibatch_stddev", lambda x: _append(x, tf.sqrt(tf.math.reduce_variance(x) + 1e-8)),
     "pooled together"),
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.sqrt(tf.reduce_mean(tf.math.reduce_variance(x, axis=0)) + 1e-8)),
     "averaged before the square root"),
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.reduce_mean(tf.math.reduce_variance(x, axis=0) + 1e-8)),
     "this is the variance"),
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.reduce_mean(tf.sqrt(
         tf.reduce_sum(tf.square(x - tf.reduce_mean(x, 0)), 0)
         / (tf.cast(tf.shape(x)[0], tf.float32) - 1) + 1e-8))), "N − 1"),
    ("check_minibatch_stddev",
     lambda x: tf.concat([stddev_reference(x)[..., -1:], x], axis=-1), "must come last"),
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.reduce_mean(tf.math.reduce_std(x, axis=0))), "ε is missing"),
    ("check_minibatch_stddev",
     lambda x: tf.concat([x, tf.ones_like(x) * tf.math.reduce_std(x, axis=0)], axis=-1),
     "a whole map"),
    ("check_minibatch_stddev",
     lambda x: tf.constant(stddev_reference(x).numpy()), "compiled"),
    ("check_pixel_norm", lambda x, epsilon=1e-8: tf.math.l2_normalize(x, axis=-1), "L2 norm"),
    ("check_pixel_norm",
     lambda x, epsilon=1e-8: x / tf.sqrt(tf.reduce_mean(x ** 2, axis=0, keepdims=True) + epsilon),
     "over the batch"),
    ("check_pixel_norm",
     lambda x, epsilon=1e-8: x / (tf.reduce_mean(x ** 2, axis=-1, keepdims=True) + epsilon),
     "square root is missing"),
    ("check_pixel_norm",
     lambda x, epsilon=1e-8: (x - tf.reduce_mean(x, -1, keepdims=True)) / tf.sqrt(
         tf.math.reduce_variance(x, -1, keepdims=True) + epsilon), "centred"),
    ("check_pixel_norm",
     lambda x, epsilon=1e-8: x / tf.sqrt(tf.reduce_mean(x ** 2, axis=-1, keepdims=True)),
     "not finite"),
    ("check_equalized_dense", dense_with(scale="none"), "multiply it by c"),
    ("check_equalized_dense", dense_with(scale="fan_out"), "number of outputs"),
    ("check_equalized_dense", dense_with(scale="no sqrt"), "square root is missing"),
    ("check_equalized_dense", dense_with(scale="no gain"), "gain is ignored"),
    ("check_equalized_dense", dense_with(init="he"), "He's initialisation"),
    ("check_equalized_dense", dense_with(init="keras"), "RandomNormal"),
    ("check_equalized_dense", dense_with(bias_init="ones"), "bias should start at 0"),
    ("check_equalized_dense", dense_with(copy=True), "did not follow the new values"),
    ("check_equalized_dense", dense_with(scale_bias=True), "bias was scaled"),
    ("check_fade_in", lambda a, n, o: fade_reference(1.0 - a, n, o), "swapped"),
    ("check_fade_in",
     lambda a, n, o: a * n + tf.repeat(tf.repeat(o, 2, axis=1), 2, axis=2), "missing its"),
    ("check_fade_in",
     lambda a, n, o: a * n + (1 - a) * tf.image.resize(o, tf.shape(n)[1:3]), "bilinear"),
    ("check_fade_in", lambda a, n, o: a * n + (1 - a) * o, "enlarge the old images"),
    ("check_truncated_z", truncated_with("clip"), "exactly at ±ψ"),
    ("check_truncated_z", truncated_with("once"), "repeat until none"),
    ("check_truncated_z", truncated_with("uniform"), "not distributed as"),
    ("check_truncated_z", truncated_with("scaled"), "not distributed as"),
    ("check_truncated_z", truncated_with("global"), "rng it is given"),
    ("check_truncated_z", truncated_with("shape"), "expected"),
    ("check_truncated_z", truncated_with("tf"), "cuts at ±2"),
    ("check_pixel_norm",
     lambda x, epsilon=1e-8: x / (tf.sqrt(tf.reduce_mean(x ** 2, axis=-1, keepdims=True))
                                  + epsilon), "outside the square root"),
    ("check_pixel_norm", lambda x, epsilon=1e-8: pixel_reference(x), "epsilon argument is ignored"),
    ("check_equalized_dense", DenseOtherNames, "self.kernel"),
    ("check_fade_in", lambda a, n, o: a * n + (1 - a) * tf.tile(o, [1, 2, 2, 1]), "tf.tile"),
    ("check_minibatch_stddev",
     lambda x: _append(x, tf.reduce_mean(tf.math.reduce_std(x, axis=0) + 1e-8)),
     "outside the square root"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{h[:20]}" for c, _, h in MISTAKES])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_whole_row_resampling_is_stopped_with_its_hint(monkeypatch):
    """Redrawing a row until all of it fits almost never ends at ψ = 0.5; the check stops it
    (after 10 s in a kernel, 1 s here) and says why."""
    checks = load()
    monkeypatch.setattr(checks, "_SAMPLER_SECONDS", 1.0)

    def whole_rows(n, dim, psi, rng):
        z = rng.standard_normal((n, dim))
        bad = np.any(np.abs(z) > psi, axis=1)
        while bad.any():
            z[bad] = rng.standard_normal((int(bad.sum()), dim))
            bad = np.any(np.abs(z) > psi, axis=1)
        return z
    with pytest.raises(AssertionError, match="not whole rows"):
        checks.check_truncated_z(whole_rows)


def test_hidden_failures_reveal_no_expected_values():
    message = hides_its_expected_values(
        load(), "check_pixel_norm", lambda x, epsilon=1e-8: tf.math.l2_normalize(x, axis=-1))
    assert "L2 norm" in message


def test_a_layer_that_calls_gantools_trips_the_tripwire():
    from gantools.models import scaling

    class Borrowed(DenseReference):
        def call(self, x):
            return scaling.pixel_norm(super().call(x)) * 0 + super().call(x)

    with pytest.raises(AssertionError, match="gantools"):
        load().check_equalized_dense(Borrowed)
    with pytest.raises(AssertionError, match="gantools"):
        load().check_pixel_norm(lambda x, epsilon=1e-8: scaling.pixel_norm(x, epsilon))
