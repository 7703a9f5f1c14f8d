"""Notebook 04's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, and the values reported to the grader match its own oracle."""

import functools

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
    return load_checks("04_lsgan")


def flat(x):
    return tf.reshape(tf.cast(x, tf.float32), [-1])


# --- honest answers, several spellings each ---------------------------------------------------

def d_loss_a(real, fake, a, b):
    return 0.5 * tf.reduce_mean(tf.square(flat(real) - b)) + 0.5 * tf.reduce_mean(
        tf.square(flat(fake) - a))


def d_loss_b(real, fake, a, b):  # (b - x)² and one ½ outside, NumPy-style means
    return 0.5 * (tf.reduce_mean((b - tf.squeeze(real)) ** 2)
                  + tf.reduce_mean((a - tf.squeeze(fake)) ** 2))


def d_loss_keras(real, fake, a, b):  # Keras's MSE on (batch, 1) targets
    mse = keras.losses.MeanSquaredError()
    real, fake = tf.reshape(real, [-1, 1]), tf.reshape(fake, [-1, 1])
    return 0.5 * mse(tf.fill(tf.shape(real), b), real) + 0.5 * mse(tf.fill(tf.shape(fake), a),
                                                                  fake)


def g_loss_a(fake, c):
    return 0.5 * tf.reduce_mean(tf.square(flat(fake) - c))


def g_loss_b(fake, c):
    return tf.reduce_mean((c - tf.reshape(fake, [-1])) ** 2) / 2


def pull_a(generator_loss, discriminator, fakes):
    fakes = tf.convert_to_tensor(fakes, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(fakes)
        loss = generator_loss(discriminator(fakes, training=False))
    return -tf.cast(tf.shape(fakes)[0], tf.float32) * tape.gradient(loss, fakes)


def pull_b(generator_loss, discriminator, fakes):  # a Variable, NumPy out
    x = tf.Variable(fakes)
    with tf.GradientTape() as tape:
        loss = generator_loss(discriminator(x))
    return -len(fakes) * tape.gradient(loss, x).numpy()


HONEST = [
    ("check_discriminator_loss", d_loss_a),
    ("check_discriminator_loss", d_loss_b),
    ("check_discriminator_loss", d_loss_keras),
    ("check_generator_loss", g_loss_a),
    ("check_generator_loss", g_loss_b),
    ("check_pull", pull_a),
    ("check_pull", pull_b),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check", ["check_discriminator_loss", "check_generator_loss",
                                   "check_pull"])
def test_reported_values_agree_with_the_graders_own_oracle(check, monkeypatch):
    reports_what_the_grader_recomputes(load, check, dict(HONEST)[check], monkeypatch)


def test_the_pull_closed_form_is_a_numpy_oracle_of_the_tape():
    """The checks' closed form -N ∇L_G = factor(s)·w, against a float64 finite difference of
    the mean loss written in NumPy (central differences, step 1e-4: error ~1e-8)."""
    checks = load()
    rng = np.random.default_rng(5)
    w, w0 = rng.normal(size=3), 0.3
    x = rng.normal(0, 2, (6, 3))

    def mean_loss(x, name):
        s = x @ w + w0
        if name == "non-saturating":
            return np.mean(np.logaddexp(0, -s))
        return 0.5 * np.mean((s - float(name.rsplit("= ", 1)[1])) ** 2)

    for name in ("non-saturating", "least squares, c = 1", "least squares, c = 0"):
        numeric = np.zeros_like(x)
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                e = np.zeros_like(x)
                e[i, j] = 1e-4
                numeric[i, j] = (mean_loss(x + e, name) - mean_loss(x - e, name)) / 2e-4
        np.testing.assert_allclose(checks._pull_closed_form(name, w, w0, x), -len(x) * numeric,
                                   rtol=1e-6, atol=1e-8)


def test_the_ls_losses_match_a_numpy_oracle():
    """gantools' least-squares losses (the checks' reference) against NumPy in float64."""
    from gantools.losses import least_squares_discriminator_loss, least_squares_generator_loss

    rng = np.random.default_rng(2)
    real, fake = rng.normal(1, 3, 7).astype(np.float32), rng.normal(-1, 3, 12).astype(np.float32)
    r, f = real.astype(np.float64), fake.astype(np.float64)
    for a, b, c in ((0, 1, 1), (-1, 1, 0), (0.5, 2.5, -0.75)):
        want_d = 0.5 * np.mean((r - b) ** 2) + 0.5 * np.mean((f - a) ** 2)
        want_g = 0.5 * np.mean((f - c) ** 2)
        # float32 means of a dozen terms: ~1e-6 relative
        np.testing.assert_allclose(float(least_squares_discriminator_loss(real, fake, a, b)),
                                   want_d, rtol=1e-5)
        np.testing.assert_allclose(float(least_squares_generator_loss(fake, c)), want_g,
                                   rtol=1e-5)


# --- the usual mistakes get their hint ---------------------------------------------------------

def pull_with(scale=1.0, n=True, training=False):
    def pull(generator_loss, discriminator, fakes):
        fakes = tf.convert_to_tensor(fakes)
        with tf.GradientTape() as tape:
            tape.watch(fakes)
            loss = generator_loss(discriminator(fakes, training=training))
        g = tape.gradient(loss, fakes)
        return scale * (tf.cast(tf.shape(fakes)[0], tf.float32) if n else 1.0) * g
    return pull


def pull_unwatched(generator_loss, discriminator, fakes):
    with tf.GradientTape() as tape:
        loss = generator_loss(discriminator(fakes))
    return tape.gradient(loss, fakes)


def pull_divided(generator_loss, discriminator, fakes):  # / N instead of × N
    g = pull_with(-1.0, n=False)(generator_loss, discriminator, fakes)
    return g / tf.cast(tf.shape(fakes)[0], tf.float32)


def d_loss_numpy(real, fake, a, b):  # right value, no gradient
    return 0.5 * np.mean((np.asarray(real) - b) ** 2) + 0.5 * np.mean((np.asarray(fake) - a) ** 2)


def d_loss_one_mean_of_sums(real, fake, a, b):  # breaks on unequal batch sizes
    return tf.reduce_mean(0.5 * (flat(real) - b) ** 2 + 0.5 * (flat(fake) - a) ** 2)


def g_loss_numpy(fake, c):
    return 0.5 * np.mean((np.asarray(fake) - c) ** 2)


def g_loss_python_if(fake, c):  # right value and gradient eagerly; a Python if on a tensor
    loss = g_loss_a(fake, c)
    if loss > 0:
        return loss
    return tf.zeros_like(loss)


def pull_summed(generator_loss, discriminator, fakes):  # one row for the whole batch
    return tf.reduce_sum(pull_with(-1.0)(generator_loss, discriminator, fakes), axis=0)


MISTAKES = [
    ("check_discriminator_loss", lambda r, f, a, b: d_loss_a(r, f, b, a), "swapped"),
    ("check_discriminator_loss", lambda r, f, a, b: 2 * d_loss_a(r, f, a, b),
     "factors are missing"),
    ("check_discriminator_loss",
     lambda r, f, a, b: tf.reduce_mean(tf.square(flat(r) - b)) + 0.5 * tf.reduce_mean(
         tf.square(flat(f) - a)), "only one of the two terms"),
    ("check_discriminator_loss",
     lambda r, f, a, b: d_loss_a(tf.sigmoid(flat(r)), tf.sigmoid(flat(f)), a, b), "sigmoid"),
    ("check_discriminator_loss",
     lambda r, f, a, b: 0.5 * tf.reduce_mean(tf.concat([tf.square(flat(r) - b),
                                                        tf.square(flat(f) - a)], 0)),
     "one mean over the real and generated"),
    ("check_discriminator_loss", lambda r, f, a, b: d_loss_a(r, f, 0.0, 1.0), "fixed at 0 and 1"),
    ("check_discriminator_loss",
     lambda r, f, a, b: 0.5 * tf.reduce_sum(tf.square(flat(r) - b)) + 0.5 * tf.reduce_sum(
         tf.square(flat(f) - a)), "summed"),
    ("check_discriminator_loss",
     lambda r, f, a, b: tf.reduce_mean(tf.nn.softplus(-flat(r))) + tf.reduce_mean(
         tf.nn.softplus(flat(f))), "cross-entropy"),
    ("check_generator_loss", lambda f, c: 2 * g_loss_a(f, c), "½ factor is missing"),
    ("check_generator_loss", lambda f, c: g_loss_a(tf.sigmoid(flat(f)), c), "sigmoid"),
    ("check_generator_loss", lambda f, c: g_loss_a(f, 1.0), "fixed at 1"),
    ("check_generator_loss", lambda f, c: 0.5 * tf.reduce_sum(tf.square(flat(f) - c)),
     "summed"),
    ("check_generator_loss", lambda f, c: tf.reduce_mean(tf.nn.softplus(-flat(f))),
     "non-saturating"),
    ("check_pull", pull_with(1.0), "sign is flipped"),
    ("check_pull", pull_with(-1.0, n=False), "N times too small"),
    ("check_pull", pull_with(1.0, n=False), "sign is flipped and the values are N times"),
    ("check_pull", pull_unwatched, "watch"),
    ("check_pull", pull_summed, "one gradient per sample"),
    ("check_pull", pull_divided, "N² times too small"),
    ("check_pull", pull_with(-1.0, training=True), "training=True"),
    ("check_discriminator_loss", d_loss_numpy, "no gradient flows"),
    ("check_discriminator_loss", d_loss_one_mean_of_sums, "different sizes"),
    ("check_generator_loss", g_loss_numpy, "no gradient flows"),
    # GANTrainer compiles its step without autograph: the if fails there, so it fails here
    ("check_generator_loss", g_loss_python_if, "compiled, differentiated step.*Python if/for"),
    ("check_generator_loss", lambda f, c: -g_loss_a(f, c), "sign is flipped"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_a_pull_without_the_discriminator_fails():
    """An answer that ignores D (a fixed direction) cannot match both D's of the check."""
    def pull(generator_loss, discriminator, fakes):
        return tf.ones_like(fakes)

    with pytest.raises(AssertionError, match="expected"):
        load().check_pull(pull)


def test_hidden_failures_reveal_no_expected_values():
    checks = load()
    for check, answer in (("check_discriminator_loss", lambda r, f, a, b: d_loss_a(r, f, b, a)),
                          ("check_generator_loss", lambda f, c: g_loss_a(f, 1.0)),
                          ("check_pull", pull_with(1.0))):
        hides_its_expected_values(checks, check, answer)


def test_the_lent_loss_dies_after_the_check():
    """The reference loss handed to pull() cannot be kept to answer another check."""
    kept = []

    def pull(generator_loss, discriminator, fakes):
        kept.append(generator_loss)
        return pull_a(generator_loss, discriminator, fakes)

    load().check_pull(pull)
    with pytest.raises(AssertionError, match="only while that check runs"):
        kept[0](tf.zeros(3))


def test_gantools_own_functions_trip_the_tripwire():
    """A submission may not hand in gantools' implementations."""
    from gantools.losses import least_squares_discriminator_loss, least_squares_generator_loss

    checks = load()
    for check, answer in (("check_discriminator_loss", least_squares_discriminator_loss),
                          ("check_generator_loss", least_squares_generator_loss)):
        with pytest.raises(AssertionError, match="calls the gantools reference"):
            getattr(checks, check)(answer)


def test_a_partial_of_gantools_trips_it_too():
    from gantools.losses import least_squares_generator_loss

    with pytest.raises(AssertionError, match="calls the gantools reference"):
        load().check_generator_loss(functools.partial(least_squares_generator_loss))
