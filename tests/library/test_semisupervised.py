"""gantools' semi-supervised GAN (notebook 08): the losses against NumPy oracles and their
closed-form gradients, the labelled subset, the two networks, and the loop that runs a
notebook's steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gantools.losses import semisupervised as losses
from gantools.training import semisupervised as semi

# float32 log-sum-exps and means of at most a few dozen terms: about 1e-6 relative error
RTOL, ATOL = 1e-5, 1e-6


def lse(a):
    return np.array([np.log(np.sum(np.exp(np.asarray(row, np.float64)))) for row in a])


def test_supervised_loss_is_the_cross_entropy_of_a_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6).astype(np.int32)
    want = np.mean([-np.log(np.exp(row[y]) / np.sum(np.exp(row)))
                    for row, y in zip(logits.astype(np.float64), labels, strict=True)])
    assert float(losses.supervised_loss(logits, labels)) == pytest.approx(want, RTOL, ATOL)


def test_unsupervised_loss_is_minus_log_d_with_d_from_z():
    rng = np.random.default_rng(1)
    real = rng.normal(0, 2, (4, 3)).astype(np.float32)
    fake = rng.normal(0, 2, (7, 3)).astype(np.float32)  # batches of different sizes
    z_real, z_fake = np.exp(lse(real)), np.exp(lse(fake))
    want = -np.mean(np.log(z_real / (z_real + 1))) - np.mean(np.log(1 / (z_fake + 1)))
    assert float(losses.unsupervised_loss(real, fake)) == pytest.approx(want, RTOL, ATOL)


def test_unsupervised_gradient_matches_its_closed_form():
    """∂/∂ℓ_ik of mean softplus(−LSE) is −(1 − D_i) softmax_k / n; of mean softplus(LSE),
    D_i softmax_k / n, with D_i = σ(LSE(ℓ_i))."""
    rng = np.random.default_rng(2)
    real = tf.constant(rng.normal(0, 2, (5, 4)).astype(np.float32))
    fake = tf.constant(rng.normal(0, 2, (3, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch([real, fake])
        loss = losses.unsupervised_loss(real, fake)
    got_real, got_fake = tape.gradient(loss, [real, fake])

    def parts(a):
        a = a.numpy().astype(np.float64)
        d = 1 / (1 + np.exp(-lse(a)))
        soft = np.exp(a) / np.exp(a).sum(1, keepdims=True)
        return d[:, None], soft
    d, soft = parts(real)
    np.testing.assert_allclose(got_real, -(1 - d) * soft / 5, rtol=1e-4, atol=1e-7)
    d, soft = parts(fake)
    np.testing.assert_allclose(got_fake, d * soft / 3, rtol=1e-4, atol=1e-7)


def test_losses_stay_finite_beyond_float32_exp():
    big = np.full((2, 3), 200.0, np.float32)  # exp(200) overflows float32
    assert float(losses.supervised_loss(big, np.array([0, 1], np.int32))) == \
        pytest.approx(np.log(3), rel=1e-6)
    assert float(losses.unsupervised_loss(big, -big)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.unsupervised_loss(-big, big)) == pytest.approx(400.0, rel=1e-6)


def test_feature_matching_loss_is_the_mean_squared_gap_of_the_batch_means():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(6, 4)), rng.normal(1, 1, (9, 4))
    gaps = [np.mean(real[:, j]) - np.mean(fake[:, j]) for j in range(4)]
    want = np.mean(np.square(gaps))
    got = float(losses.feature_matching_loss(real.astype(np.float32), fake.astype(np.float32)))
    assert got == pytest.approx(want, RTOL, ATOL)


def test_labelled_subset_takes_as_many_of_each_class_every_time():
    labels = np.repeat(np.arange(4), [5, 7, 3, 9])
    index = semi.labelled_subset(labels, per_class=3, seed=1)
    assert np.bincount(labels[index]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(index, np.sort(index)) and len(set(index.tolist())) == 12
    assert np.array_equal(index, semi.labelled_subset(labels, 3, seed=1))
    others = {tuple(semi.labelled_subset(labels, 3, seed=s)) for s in range(5)}
    assert len(others) > 1


@pytest.mark.parametrize("per_class, message", [(4, "class 2 has 3 examples"),
                                                (0, "positive whole number"),
                                                (1.5, "positive whole number")])
def test_labelled_subset_refuses_what_it_cannot_draw(per_class, message):
    labels = np.repeat(np.arange(4), [5, 7, 3, 9])
    with pytest.raises(ValueError, match=message):
        semi.labelled_subset(labels, per_class)


def test_the_discriminator_returns_logits_and_features_and_is_noisy_only_in_training():
    keras.utils.set_random_seed(0)
    d = semi.classifier_discriminator(10, (28, 28, 1), hidden=(32, 16))
    x = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28, 1)).astype(np.float32)
    logits, features = d(x, training=False)
    assert logits.shape == (5, 10) and features.shape == (5, 16)
    assert float(tf.reduce_min(features)) >= 0.0  # a ReLU layer, before its noise
    again, _ = d(x, training=False)
    np.testing.assert_array_equal(logits, again)
    noisy, _ = d(x, training=True)
    assert not np.allclose(noisy, logits)
    with pytest.raises(ValueError, match="at least one"):
        semi.classifier_discriminator(10, hidden=())


def test_the_generator_draws_images_in_range():
    keras.utils.set_random_seed(0)
    g = semi.feature_matching_generator(8, (28, 28, 1), hidden=(16, 16))
    x = g(np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32), training=False)
    assert x.shape == (4, 28, 28, 1)
    assert float(tf.reduce_max(tf.abs(x))) <= 1.0


def test_class_accuracy_is_the_argmax_agreement():
    keras.utils.set_random_seed(0)
    d = semi.classifier_discriminator(3, (4, 4, 1), hidden=(8,))
    x = np.random.default_rng(0).normal(size=(11, 4, 4, 1)).astype(np.float32)
    predicted = d(x, training=False)[0].numpy().argmax(1)
    labels = predicted.copy()
    labels[:4] = (labels[:4] + 1) % 3  # 4 of 11 wrong
    assert semi.class_accuracy(d, x, labels, batch_size=3) == pytest.approx(7 / 11)


def test_train_runs_the_given_steps_on_batches_of_both_kinds():
    keras.utils.set_random_seed(0)
    d = semi.classifier_discriminator(2, (3, 3, 1), hidden=(4,))
    seen = []

    def d_step(x_l, y_l, x_u):
        seen.append(("d", x_l.shape[0], y_l.shape[0], x_u.shape[0]))
        return 1.0, 2.0

    def g_step(x_u):
        seen.append(("g", x_u.shape[0]))
        return tf.constant(3.0)

    rng = np.random.default_rng(0)
    labelled = (rng.normal(size=(3, 3, 3, 1)).astype(np.float32), np.array([0, 1, 0]))
    unlabelled = rng.normal(size=(20, 3, 3, 1)).astype(np.float32)
    test = (rng.normal(size=(6, 3, 3, 1)).astype(np.float32), np.array([0, 1] * 3))
    calls = []
    run = semi.train("t", d, d_step, labelled, unlabelled, test, 7, g_step=g_step,
                     batch_size=5, eval_every=3, callback=lambda r, s: calls.append(s))
    assert seen[:2] == [("d", 5, 5, 5), ("g", 5)] and len(seen) == 14
    assert run.steps == [3, 6, 7] == calls
    assert run.losses == {"supervised": [1.0] * 3, "unsupervised": [2.0] * 3,
                          "feature matching": [3.0] * 3}
    assert run.final_accuracy == run.accuracy[-1] and 0 <= run.final_accuracy <= 1
    with pytest.raises(ValueError, match="returned 2 values"):
        semi.train("t", d, d_step, labelled, unlabelled, test, 1, d_names=("supervised",))


def test_live_accuracy_draws_the_curves_and_the_samples(capsys):
    keras.utils.set_random_seed(0)
    g = semi.feature_matching_generator(4, (6, 6, 1), hidden=(8,))
    run = semi.Run("gan", steps=[10, 20], accuracy=[0.5, 0.6])
    base = semi.Run("base", [10, 20], [0.45, 0.4], restored_step=10)
    live = semi.LiveAccuracy(g, 4, others=[base], samples=20, notebook=False,
                             colours={"base": "k"})
    fig = live.figure(run)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3  # base, its best, gan
    best = fig.axes[0].lines[1]
    assert list(best.get_ydata()) == [0.45, 0.45] and best.get_color() == "k"
    live(run, 20)
    assert "test accuracy 60.0%" in capsys.readouterr().out
    with pytest.raises(ValueError, match="latent_dim"):
        semi.LiveAccuracy(g, notebook=False)


def test_keep_best_ends_with_the_weights_of_the_best_evaluation():
    keras.utils.set_random_seed(0)
    d = semi.classifier_discriminator(2, (2, 2, 1), hidden=(4,))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2, 2, 1)).astype(np.float32)
    y = rng.integers(0, 2, 8)
    snapshots = []

    def step(x_l, y_l, x_u):  # a random walk of the weights, then a look at them
        for v in d.trainable_variables:
            v.assign_add(tf.random.normal(v.shape))
        return 0.0, 0.0

    def remember(run, s):
        snapshots.append([w.copy() for w in d.get_weights()])

    run = semi.train("t", d, step, (x, y), x, (x, y), 12, eval_every=1, callback=remember,
                     keep_best=True)
    best = int(np.argmax(run.accuracy))  # the first of equals
    assert run.restored_step == run.steps[best]
    for got, want in zip(d.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(got, want)
    assert semi.class_accuracy(d, x, y) == max(run.accuracy)
