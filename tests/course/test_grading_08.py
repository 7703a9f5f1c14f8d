"""Notebook 08's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, the values reported to the grader match its own oracle, and the
checks' NumPy oracles agree with closed forms and with the library's losses."""

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
    return load_checks("08_semi_supervised_gan")


# --- honest answers, several spellings each ---------------------------------------------------

def sup_sparse(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                                         logits=logits))


def sup_keras(logits, labels):
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)


def sup_gather(logits, labels):
    picked = tf.gather(logits, tf.cast(labels, tf.int32), batch_dims=1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=-1) - picked)


def sup_onehot(logits, labels):
    onehot = tf.one_hot(labels, tf.shape(logits)[-1])
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))


def unsup_softplus(real_logits, fake_logits):
    real = tf.reduce_logsumexp(real_logits, axis=1)
    fake = tf.reduce_logsumexp(fake_logits, axis=1)
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def unsup_bce(real_logits, fake_logits):
    real = tf.reduce_logsumexp(real_logits, axis=-1)
    fake = tf.reduce_logsumexp(fake_logits, axis=-1)
    return (tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real), real))
            + tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake),
                                                                     fake)))


def unsup_k_plus_one(real_logits, fake_logits):
    """Odena's form: an explicit fake logit of 0, log-softmax over K + 1."""
    def log_p_fake(logits):
        full = tf.concat([logits, tf.zeros_like(logits[:, :1])], axis=1)
        return tf.nn.log_softmax(full)[:, -1]
    real = tf.reduce_logsumexp(real_logits, axis=1)
    return (-tf.reduce_mean(tf.math.log_sigmoid(real))
            - tf.reduce_mean(log_p_fake(fake_logits)))


def d_step(mode="honest", z_rows="unlabelled", training=True, returns=True, as_float=False):
    def step(x_labelled, y_labelled, x_unlabelled, generator, discriminator, d_optimizer,
             supervised_loss_fn, unsupervised_loss_fn, latent_dim):
        rows = {"unlabelled": tf.shape(x_unlabelled)[0], "labelled": tf.shape(x_labelled)[0],
                "fixed": 100}[z_rows]
        z = tf.random.normal((rows, latent_dim))
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            if mode == "concatenated":
                sizes = [tf.shape(x)[0] for x in (x_labelled, x_unlabelled, fake)]
                logits, _ = discriminator(tf.concat([x_labelled, x_unlabelled, fake], 0),
                                          training=training)
                labelled_logits, real_logits, fake_logits = tf.split(logits, sizes)
            else:
                labelled_logits = discriminator(x_labelled, training=training)[0]
                unlabelled = x_labelled if mode == "labelled as real" else x_unlabelled
                real_logits = discriminator(unlabelled, training=training)[0]
                fake_logits = discriminator(fake, training=training)[0]
            supervised = supervised_loss_fn(labelled_logits, y_labelled)
            if mode == "swapped":
                unsupervised = unsupervised_loss_fn(fake_logits, real_logits)
            else:
                unsupervised = unsupervised_loss_fn(real_logits, fake_logits)
            loss = {"no supervised": unsupervised, "no unsupervised": supervised,
                    "averaged": (supervised + unsupervised) / 2}.get(
                        mode, supervised + unsupervised)
        variables = discriminator.trainable_variables
        if mode == "both networks":
            variables = variables + generator.trainable_variables
        grads = tape.gradient(loss, variables)
        if mode == "apply":
            d_optimizer.apply(grads, variables)
        else:
            d_optimizer.apply_gradients(zip(grads, variables, strict=True))
        if as_float:  # works eagerly, not inside tf.function (AutoGraph converts float())
            return supervised.numpy(), unsupervised.numpy()
        return (supervised, unsupervised) if returns else None
    return step


def g_step(mode="honest", training=True, z_rows="unlabelled", numpy=False):
    def step(x_unlabelled, generator, discriminator, g_optimizer, latent_dim):
        rows = tf.shape(x_unlabelled)[0] if z_rows == "unlabelled" else 64
        z = tf.random.normal((rows, latent_dim))
        with tf.GradientTape() as tape:
            real_logits, real = discriminator(x_unlabelled, training=training)
            fake_logits, fake = discriminator(generator(z, training=True), training=training)
            if mode == "logits":
                real, fake = real_logits, fake_logits
            if mode == "per example":
                loss = tf.reduce_mean(tf.square(real - fake))
            elif mode == "non-saturating":
                loss = tf.reduce_mean(tf.nn.softplus(-tf.reduce_logsumexp(fake_logits, 1)))
            else:
                gap = tf.reduce_mean(real, axis=0) - tf.reduce_mean(fake, axis=0)
                loss = tf.reduce_sum(tf.square(gap)) if mode == "sum" else \
                    tf.reduce_mean(tf.square(gap))
        variables = generator.trainable_variables
        if mode == "both networks":
            variables = variables + discriminator.trainable_variables
        g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss.numpy() if numpy else loss
    return step


HONEST = [
    ("check_supervised_loss", sup_sparse),
    ("check_supervised_loss", sup_keras),
    ("check_supervised_loss", sup_gather),
    ("check_supervised_loss", sup_onehot),
    ("check_unsupervised_loss", unsup_softplus),
    ("check_unsupervised_loss", unsup_bce),
    ("check_unsupervised_loss", unsup_k_plus_one),
    ("check_discriminator_step", d_step()),
    ("check_discriminator_step", d_step("concatenated")),
    ("check_discriminator_step", d_step("apply")),
    ("check_discriminator_step", tf.function(d_step())),
    ("check_generator_step", g_step()),
    ("check_generator_step", tf.function(g_step())),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check, answer", [("check_supervised_loss", sup_sparse),
                                           ("check_unsupervised_loss", unsup_softplus)])
def test_reported_values_agree_with_the_graders_own_oracle(check, answer, monkeypatch):
    reports_what_the_grader_recomputes(load, check, answer, monkeypatch)


# --- the oracles --------------------------------------------------------------------------------

def test_the_oracles_match_closed_forms_and_loops():
    checks = load()
    # all-zero logits: LSE = log K, D = K / (K + 1)
    k = 4
    zeros = np.zeros((3, k))
    assert checks._supervised(zeros, [0, 1, 3]) == pytest.approx(np.log(k), abs=1e-12)
    assert checks._unsupervised(zeros, zeros[:2]) == pytest.approx(
        -np.log(k / (k + 1)) - np.log(1 / (k + 1)), abs=1e-12)
    # a loop over examples and classes, in float64
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(0, 3, (5, 6)), rng.integers(0, 6, 5)
    loop = np.mean([np.log(sum(np.exp(v) for v in row)) - row[y]
                    for row, y in zip(logits, labels, strict=True)])
    assert checks._supervised(logits, labels) == pytest.approx(loop, rel=1e-12)
    real, fake = rng.normal(0, 3, (4, 6)), rng.normal(0, 3, (7, 6))
    z_real, z_fake = np.exp(real).sum(1), np.exp(fake).sum(1)
    loop = -np.mean(np.log(z_real / (z_real + 1))) - np.mean(np.log(1 / (z_fake + 1)))
    assert checks._unsupervised(real, fake) == pytest.approx(loop, rel=1e-10)


def test_the_oracles_stay_finite_where_exp_overflows():
    checks = load()
    big = np.full((2, 3), 800.0)  # exp(800) overflows float64 too
    assert checks._supervised(big, [0, 2]) == pytest.approx(np.log(3), abs=1e-12)
    assert checks._unsupervised(big, -big) == pytest.approx(0.0, abs=1e-12)
    # LSE = ∓800 + log 3: softplus(800 - log 3) + softplus(800 + log 3) = 1600 (+ e^-797)
    assert checks._unsupervised(-big, big) == pytest.approx(1600.0, rel=1e-12)


def test_the_library_losses_agree_with_the_oracles():
    from gantools.losses import semisupervised as ref

    checks = load()
    for seed in range(3):
        for _, (logits, labels) in checks._sup_cases(seed, seed == 2):
            assert float(ref.supervised_loss(logits, labels)) == pytest.approx(
                checks._supervised(logits, labels), rel=1e-5, abs=1e-5)
        for _, (real, fake) in checks._unsup_cases(seed, seed == 1):
            assert float(ref.unsupervised_loss(real, fake)) == pytest.approx(
                checks._unsupervised(real, fake), rel=1e-5, abs=1e-5)


def test_the_cases_reach_beyond_float32_exp():
    """Visible and hidden cases include logits whose exp overflows float32 (above 88.7) and
    whose D rounds to 0, so that a naive formula fails visibly."""
    checks = load()
    for hidden in (False, True):
        sup = max(np.abs(a).max() for _, (a, _) in checks._sup_cases(0, hidden))
        unsup = [np.abs(np.concatenate([r, f])).max() for _, (r, f)
                 in checks._unsup_cases(0, hidden)]
        assert sup > 100 and max(unsup) > 88.8


# --- the usual mistakes ---------------------------------------------------------------------------

def sup_double_softmax(logits, labels):
    return sup_sparse(tf.nn.softmax(logits), labels)


def sup_probabilities(logits, labels):
    import keras

    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits))


def sup_with_fake_class(logits, labels):
    return sup_sparse(tf.concat([logits, tf.zeros_like(logits[:, :1])], axis=1), labels)


def sup_naive(logits, labels):
    p = tf.nn.softmax(logits)
    return -tf.reduce_mean(tf.math.log(tf.gather(p, labels, batch_dims=1)))


def sup_numpy(logits, labels):
    a = np.asarray(logits, np.float64)
    top = a.max(1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(a - top).sum(1))
    return float(np.mean(lse - a[np.arange(len(a)), np.asarray(labels)]))


def unsup_max(real_logits, fake_logits):
    return (tf.reduce_mean(tf.nn.softplus(-tf.reduce_max(real_logits, 1)))
            + tf.reduce_mean(tf.nn.softplus(tf.reduce_max(fake_logits, 1))))


def unsup_naive(real_logits, fake_logits):
    d_real = tf.sigmoid(tf.math.log(tf.reduce_sum(tf.exp(real_logits), 1)))
    d_fake = tf.sigmoid(tf.math.log(tf.reduce_sum(tf.exp(fake_logits), 1)))
    return -tf.reduce_mean(tf.math.log(d_real)) - tf.reduce_mean(tf.math.log(1 - d_fake))


def unsup_one_mean(real_logits, fake_logits):
    terms = tf.concat([tf.nn.softplus(-tf.reduce_logsumexp(real_logits, 1)),
                       tf.nn.softplus(tf.reduce_logsumexp(fake_logits, 1))], 0)
    return tf.reduce_mean(terms)


def unsup_numpy(real_logits, fake_logits):
    return float(unsup_softplus(real_logits, fake_logits).numpy())


MISTAKES = [
    ("check_supervised_loss", sup_double_softmax, "softmax twice"),
    ("check_supervised_loss", sup_probabilities, "from_logits=True"),
    ("check_supervised_loss", sup_with_fake_class, "K logits alone"),
    ("check_supervised_loss", lambda a, y: 5.0 * sup_sparse(a, y) if a.shape[0] == 5
     else a.shape[0] * sup_sparse(a, y), "summed over the batch"),
    ("check_supervised_loss", lambda a, y: -sup_sparse(a, y), "sign is wrong"),
    ("check_supervised_loss", sup_naive, "log space"),
    ("check_supervised_loss", lambda a, y: tf.reduce_mean(
        tf.math.log(tf.reduce_sum(tf.exp(a), 1)) - tf.gather(a, y, batch_dims=1)), "log space"),
    ("check_supervised_loss", lambda a, y: tf.reduce_mean(
        tf.reduce_max(a, 1) - tf.gather(a, y, batch_dims=1)), "largest logit"),
    ("check_supervised_loss", lambda a, y: sup_probabilities(tf.nn.softmax(a), y),
     "clips them"),
    ("check_supervised_loss", sup_numpy, "TensorFlow operations"),
    ("check_unsupervised_loss", unsup_max, "largest logit"),
    ("check_unsupervised_loss", lambda r, f: unsup_softplus(f, r), "swapped"),
    ("check_unsupervised_loss", lambda r, f: tf.reduce_mean(
        tf.nn.softplus(-tf.reduce_logsumexp(r, 1)))
     + tf.reduce_mean(tf.nn.softplus(-tf.reduce_logsumexp(f, 1))), "treated as real"),
    ("check_unsupervised_loss", unsup_one_mean, "separately"),
    ("check_unsupervised_loss", unsup_naive, "log space"),
    ("check_unsupervised_loss", lambda r, f: tf.nn.softplus(-tf.reduce_logsumexp(r))
     + tf.nn.softplus(tf.reduce_logsumexp(f)), "whole batch"),
    ("check_unsupervised_loss", unsup_numpy, "TensorFlow operations"),
    ("check_discriminator_step", d_step("labelled as real"), "use the unlabelled one"),
    ("check_discriminator_step", d_step("no supervised"), "supervised term is missing"),
    ("check_discriminator_step", d_step("no unsupervised"), "unsupervised term is missing"),
    ("check_discriminator_step", d_step("swapped"), "swapped"),
    ("check_discriminator_step", d_step("averaged"), "sum"),
    ("check_discriminator_step", d_step(z_rows="fixed"), "fixed size"),
    ("check_discriminator_step", d_step(z_rows="labelled"), "labelled batch's size"),
    ("check_discriminator_step", d_step(training=False), "training=True"),
    ("check_discriminator_step", d_step("both networks"),
     "variables of the generator.*updates the discriminator only"),
    ("check_discriminator_step", d_step(returns=False), r"return \(supervised, unsupervised\)"),
    ("check_generator_step", g_step("sum"), "summed over the features"),
    ("check_generator_step", g_step("per example"), "batch \\*means\\*"),
    ("check_generator_step", g_step("logits"), "logits' means"),
    ("check_generator_step", g_step("non-saturating"), "non-saturating"),
    ("check_generator_step", g_step(training=False), "training=True"),
    ("check_generator_step", g_step(z_rows="fixed"), "fixed size"),
    ("check_generator_step", g_step("both networks"),
     "variables of the discriminator.*updates the generator only"),
    ("check_discriminator_step", d_step(as_float=True), "compiled training step"),
    ("check_generator_step", g_step(numpy=True), "compiled training step"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{h[:20]}" for c, _, h in MISTAKES])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    message = hides_its_expected_values(load(), "check_unsupervised_loss", unsup_max)
    assert "largest logit" in message
    message = hides_its_expected_values(load(), "check_supervised_loss", sup_double_softmax)
    assert "softmax twice" in message


def test_a_step_that_calls_gantools_trips_the_tripwire():
    from gantools.losses import semisupervised as ref

    def step(x_labelled, y_labelled, x_unlabelled, generator, discriminator, d_optimizer,
             supervised_loss_fn, unsupervised_loss_fn, latent_dim):
        return d_step()(x_labelled, y_labelled, x_unlabelled, generator, discriminator,
                        d_optimizer, ref.supervised_loss, ref.unsupervised_loss, latent_dim)
    with pytest.raises(AssertionError, match="gantools"):
        load().check_discriminator_step(step)


def test_a_lent_loss_kept_for_later_is_dead():
    kept = []

    def step(x_labelled, y_labelled, x_unlabelled, generator, discriminator, d_optimizer,
             supervised_loss_fn, unsupervised_loss_fn, latent_dim):
        kept.append(unsupervised_loss_fn)
        return d_step()(x_labelled, y_labelled, x_unlabelled, generator, discriminator,
                        d_optimizer, supervised_loss_fn, unsupervised_loss_fn, latent_dim)
    load().check_discriminator_step(step)
    with pytest.raises(AssertionError, match="only while that check runs|gantools"):
        load().check_unsupervised_loss(lambda r, f: kept[0](r, f))
