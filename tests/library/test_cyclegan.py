"""gantools' CycleGAN pieces (notebook 09): the losses against NumPy, the framed domain,
the networks' shapes, the class-kept measure, and the loop that runs a notebook's step and
pool."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gantools.losses import cycle as losses
from gantools.training import cyclegan as cg


def test_cycle_and_identity_losses_are_sums_of_two_mean_absolute_errors():
    rng = np.random.default_rng(0)
    a, ca = rng.normal(size=(3, 4, 4, 1)), rng.normal(size=(3, 4, 4, 1))
    b, cb = rng.normal(size=(5, 4, 4, 1)), rng.normal(size=(5, 4, 4, 1))
    want = np.abs(ca - a).sum() / a.size + np.abs(cb - b).sum() / b.size
    f32 = [x.astype(np.float32) for x in (a, ca, b, cb)]
    assert float(losses.cycle_consistency_loss(*f32)) == pytest.approx(want, rel=1e-5)
    assert float(losses.identity_loss(*f32)) == pytest.approx(want, rel=1e-5)


def test_least_squares_losses_match_their_formulas():
    real, fake = np.array([1.0, 0.5], np.float32), np.array([0.0, 0.25, 1.0], np.float32)
    assert float(losses.least_squares_generator_loss(fake)) == pytest.approx(
        np.mean((fake - 1.0) ** 2))
    assert float(losses.least_squares_discriminator_loss(real, fake)) == pytest.approx(
        0.5 * (np.mean((real - 1) ** 2) + np.mean(fake ** 2)))


def test_domain_a_is_framed_like_mnist():
    a, labels = cg.framed_digits("test")
    assert a.shape == (359, 28, 28, 1) and labels.shape == (359,)
    frame = np.ones((28, 28), bool)
    frame[cg.FRAME:-cg.FRAME, cg.FRAME:-cg.FRAME] = False
    assert np.all(a[:, frame] == -1.0)  # background all round
    assert a[:, ~frame].max() > 0.5  # the digit inside


def test_the_networks_map_28_by_28_images_to_images_and_patch_scores():
    keras.utils.set_random_seed(0)
    g, d = cg.resnet_generator(8, 1), cg.patch_discriminator(8)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    y = g(x, training=False)
    assert y.shape == (3, 28, 28, 1) and float(tf.reduce_max(tf.abs(y))) <= 1.0
    assert d(x, training=False).shape == (3, 7, 7, 1)
    np.testing.assert_allclose(cg.translate(g, x, batch_size=2), y, rtol=1e-5, atol=1e-6)


def test_class_kept_reads_each_domain_with_its_own_classifier():
    a, labels_a = cg.framed_digits("test")
    assert cg.class_kept(a, labels_a, "A") > 0.95  # the digits classifier on its own scans
    shuffled = np.random.default_rng(0).permutation(labels_a)
    assert cg.class_kept(a, shuffled, "A") < 0.3
    assert cg.centre_crop(a[:2]).shape == (2, 32, 32, 1)
    with pytest.raises(ValueError, match="domain must be"):
        cg.class_kept(a, labels_a, "C")


def test_train_runs_the_step_and_shows_the_discriminators_pooled_fakes():
    keras.utils.set_random_seed(0)
    g_ab, g_ba = cg.resnet_generator(4, 1), cg.resnet_generator(4, 1)
    d_a, d_b = cg.patch_discriminator(4), cg.patch_discriminator(4)
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (10, 28, 28, 1)).astype(np.float32)
    b = rng.uniform(-1, 1, (12, 28, 28, 1)).astype(np.float32)
    calls, queries = [], []

    def g_step(real_a, real_b):
        calls.append((real_a.shape[0], real_b.shape[0]))
        return 1.0, 2.0, 3.0

    def pool_query(pool, images, size, rng):
        queries.append((len(pool), images.shape, size))
        pool.extend(images[: max(0, size - len(pool))])
        return images

    d_before = [w.copy() for w in d_a.get_weights()]
    run = cg.train("t", (g_ab, g_ba), (d_a, d_b), g_step, pool_query, a, b, 3, batch_size=4,
                   pool_size=6, every=2)
    assert calls == [(4, 4)] * 3 and len(queries) == 6
    assert queries[0] == (0, (4, 28, 28, 1), 6) and queries[2][0] == 4  # pool A filling
    assert run.steps == [2, 3] and run.losses["cycle"] == [2.0, 2.0]
    assert not all(np.array_equal(x, y) for x, y in zip(d_before, d_a.get_weights(),
                                                         strict=True))
    with pytest.raises(ValueError, match="three losses"):
        cg.train("t", (g_ab, g_ba), (d_a, d_b), lambda x, y: 1.0, pool_query, a, b, 1,
                 batch_size=4)


def test_live_translations_draws_the_four_rows_and_the_losses(capsys):
    keras.utils.set_random_seed(0)
    g = cg.resnet_generator(4, 1)
    x = np.zeros((3, 28, 28, 1), np.float32)
    live = cg.LiveTranslations(g, g, x, x, notebook=False)
    run = cg.Run("t", steps=[1, 2], losses={"cycle": [0.5, 0.4]})
    fig = live.figure(run, 2)
    assert len(fig.axes) == 2 and len(fig.axes[0].get_yticklabels()) == 4
    live(run, 2)
    assert "cycle 0.400" in capsys.readouterr().out
