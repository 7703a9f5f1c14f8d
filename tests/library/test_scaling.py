"""gantools.models.scaling and gantools.training.progressive against NumPy oracles: the
minibatch standard deviation, the pixel norm, the equalised layers (values, initial
statistics, the run-time scale in the gradient), the modulated convolution against a
per-example kernel built explicitly, the fade-in, the truncated sampler's law, and the
progressive networks' shapes and schedule.

Tolerances: float32 convolutions and matrix products of a few hundred terms of order 1
carry about 1e-6 relative error; 1e-5 leaves room for summation order on any x86-64 CPU."""

import math

import numpy as np
import pytest
import tensorflow as tf

from gantools.models import scaling
from gantools.training import progressive as pg


def np_conv_same(x, kernel):
    """Stride-1 'same' cross-correlation, (N, H, W, C) with (k, k, C, F), in float64."""
    k = kernel.shape[0]
    pad = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nhwc,cf->nhwf", xp[:, i:i + h, j:j + w], kernel[i, j])
    return out


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2), (6, 2, 2, 1)])
def test_minibatch_stddev_matches_numpy(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    got = scaling.minibatch_stddev(x).numpy()
    s = np.sqrt(x.astype(np.float64).var(axis=0) + 1e-8).mean()
    assert got.shape == shape[:-1] + (shape[-1] + 1,)
    np.testing.assert_allclose(got[..., :-1], x)
    np.testing.assert_allclose(got[..., -1], np.full(shape[:-1], s), rtol=1e-5)


def test_minibatch_stddev_gradient_is_finite_on_a_collapsed_batch():
    x = tf.constant(np.ones((4, 6), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(scaling.minibatch_stddev(x)[:, -1])
    assert np.all(np.isfinite(tape.gradient(total, x).numpy()))
    assert scaling.minibatch_stddev(x).numpy()[0, -1] == pytest.approx(1e-4, rel=1e-3)


def test_pixel_norm_gives_unit_root_mean_square(rng):
    x = rng.standard_normal((3, 4, 4, 16)).astype(np.float32) * 7.0
    y = scaling.pixel_norm(x).numpy().astype(np.float64)
    want = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.mean(y ** 2, axis=-1)), 1.0, rtol=1e-5)
    assert np.all(np.isfinite(scaling.pixel_norm(np.zeros((1, 3), np.float32)).numpy()))


def test_equalized_dense_stores_unit_normal_weights_and_scales_at_run_time(rng):
    layer = scaling.EqualizedDense(64, gain=1.5)
    x = rng.standard_normal((5, 100)).astype(np.float32)
    y = layer(x).numpy()
    kernel = layer.kernel.numpy().astype(np.float64)
    assert abs(kernel.std() - 1.0) < 0.05 and abs(kernel.mean()) < 0.05
    np.testing.assert_allclose(y, x @ (kernel * 1.5 / 10.0), rtol=1e-5, atol=1e-5)
    # the gradient with respect to the *stored* kernel carries the constant: c · xᵀ g
    g = rng.standard_normal((5, 64)).astype(np.float32)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x) * g)
    grad = tape.gradient(total, layer.kernel).numpy()
    np.testing.assert_allclose(grad, 0.15 * x.T.astype(np.float64) @ g, rtol=1e-5, atol=1e-5)


def test_he_parametrisation_stores_the_effective_weights(rng):
    layer = scaling.EqualizedDense(64, equalized=False)
    x = rng.standard_normal((3, 400)).astype(np.float32)
    y = layer(x).numpy()
    kernel = layer.kernel.numpy().astype(np.float64)
    assert abs(kernel.std() - math.sqrt(2 / 400)) < 0.05 * math.sqrt(2 / 400)
    np.testing.assert_allclose(y, x @ kernel, rtol=1e-5, atol=1e-5)


def test_lr_multiplier_scales_init_and_run_time_inversely(rng):
    layer = scaling.EqualizedDense(32, lr_multiplier=0.01, bias_init=1.0)
    x = rng.standard_normal((4, 50)).astype(np.float32)
    y = layer(x).numpy()
    kernel = layer.kernel.numpy().astype(np.float64)
    assert abs(kernel.std() - 100.0) < 5.0  # stored N(0, 1/0.01²)
    effective = kernel * math.sqrt(2 / 50) * 0.01
    np.testing.assert_allclose(y, x @ effective + 1.0, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="lr_multiplier"):
        scaling.EqualizedDense(3, lr_multiplier=0.0)


def test_equalized_conv_matches_numpy(rng):
    layer = scaling.EqualizedConv2D(5, 3, activation="lrelu")
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    y = layer(x).numpy()
    kernel = layer.kernel.numpy().astype(np.float64) * math.sqrt(2) / math.sqrt(36)
    want = np_conv_same(x.astype(np.float64), kernel)
    want = np.where(want > 0, want, 0.2 * want)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_a_per_example_kernel(demodulate, rng):
    layer = scaling.ModulatedConv2D(6, 3, demodulate=demodulate, activation=None)
    x = rng.standard_normal((3, 5, 5, 4)).astype(np.float32)
    w = rng.standard_normal((3, 8)).astype(np.float32)
    y = layer([x, w]).numpy()
    s = layer.styles(w).numpy().astype(np.float64)  # (N, C_in)
    kernel = layer.conv.effective_kernel().numpy().astype(np.float64)
    for n in range(3):
        k = kernel * s[n][None, None, :, None]  # w'_ijk = s_i w_ijk
        if demodulate:
            k = k / np.sqrt(np.sum(k ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        want = np_conv_same(x[n:n + 1].astype(np.float64), k)[0]
        np.testing.assert_allclose(y[n], want, rtol=1e-4, atol=1e-5)


def test_demodulation_keeps_unit_scale_whatever_the_style(rng):
    """For unit-variance inputs, demodulated outputs have about unit variance, for a style
    scaled by 0.1 or by 10 alike."""
    layer = scaling.ModulatedConv2D(32, 3, activation=None)
    x = rng.standard_normal((64, 8, 8, 16)).astype(np.float32)
    w = rng.standard_normal((64, 16)).astype(np.float32)
    layer([x, w])
    for factor in (0.1, 10.0):
        layer.affine.bias.assign(np.full(16, factor, np.float32) / layer.affine.lr_multiplier)
        layer.affine.kernel.assign(np.zeros_like(layer.affine.kernel.numpy()))
        std = float(np.std(layer([x, w]).numpy()))
        assert 0.8 < std < 1.2  # interior pixels ~1, borders (zero padding) a little less


def test_fade_in_blends_over_the_nearest_neighbour_upsampled_image(rng):
    new = rng.uniform(-1, 1, (2, 4, 4, 1)).astype(np.float32)
    old = rng.uniform(-1, 1, (2, 2, 2, 1)).astype(np.float32)
    up = np.kron(old[..., 0], np.ones((2, 2)))[..., None]
    np.testing.assert_allclose(scaling.fade_in(0.25, new, old).numpy(),
                               0.25 * new + 0.75 * up, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scaling.downsample(scaling.upsample(old)).numpy(), old,
                               rtol=1e-6)


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_truncated_normal_follows_the_conditioned_law(psi):
    z = scaling.truncated_normal(4000, 8, psi, np.random.default_rng(0)).astype(np.float64)
    assert z.shape == (4000, 8) and np.all(np.abs(z) <= psi)
    phi = math.exp(-psi * psi / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    variance = 1 - 2 * psi * phi / mass  # the variance of N(0, 1) restricted to [−ψ, ψ]
    # 32,000 draws: the sample variance's standard error is below 0.01 · variance
    assert z.var() == pytest.approx(variance, rel=0.04)
    assert np.array_equal(z, scaling.truncated_normal(4000, 8, psi, np.random.default_rng(0)))


def test_truncated_normal_without_psi_is_plain_normal():
    z = scaling.truncated_normal(2000, 4, None, np.random.default_rng(1))
    np.testing.assert_array_equal(z, np.random.default_rng(1).standard_normal((2000, 4))
                                  .astype(np.float32))
    with pytest.raises(ValueError, match="psi"):
        scaling.truncated_normal(2, 2, -1.0, np.random.default_rng(0))


def test_progressive_networks_grow_and_mix():
    g = pg.StyleGenerator(latent_dim=8, w_dim=8, widths=(8, 4, 4))
    d = pg.ProgressiveDiscriminator(widths=(4, 4, 8))
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    for stage, res in enumerate(pg.RESOLUTIONS):
        image = g.generate(z, stage=stage)
        assert tuple(image.shape) == (3, res, res, 1)
        assert tuple(d.score(image, stage=stage).shape) == (3, 1)
    # α = 0: the new resolution shows exactly the old image, upsampled
    old = g.generate(z, stage=1).numpy()
    faded = g.generate(z, stage=2, alpha=0.0, fading=True).numpy()
    np.testing.assert_allclose(faded, scaling.upsample(old).numpy(), rtol=1e-5, atol=1e-5)
    # mixing from resolution 3 (none) changes nothing; from resolution 1 it changes the image
    other = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    same = g.generate(z, stage=2, mixing=(other, 3)).numpy()
    np.testing.assert_allclose(same, g.generate(z, stage=2).numpy(), rtol=1e-6)
    assert not np.allclose(g.generate(z, stage=2, mixing=(other, 1)).numpy(), same)


def test_schedule_and_a_short_run():
    assert pg.phases((3, 2, 4), 5) == [(0, False, 3), (1, True, 5), (1, False, 2),
                                      (2, True, 5), (2, False, 4)]
    kw = dict(latent_dim=8, w_dim=8, widths=(8, 4, 4))
    g = pg.StyleGenerator(**kw)
    ema = pg.ema_copy(g, **kw)
    d = pg.ProgressiveDiscriminator(widths=(4, 4, 8))
    images = np.random.default_rng(0).uniform(-1, 1, (20, 28, 28, 1)).astype(np.float32)
    z = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    run = pg.train("t", g, d, images, pg.phases((2, 1, 2), 2), ema=ema, batch_size=4, every=3,
                   r1=1.0, z_fixed=z, progress=False)
    assert run.steps == [3, 6, 9] and run.resolution == [14, 28, 28]  # 2 + 2 + 1 + 2 + 2 steps
    assert sorted(run.snapshots) == [7, 14, 28]
    assert run.snapshots[28].shape == (4, 28, 28, 1)
    assert all(np.isfinite(v) for v in run.losses["D"] + run.losses["G"])
    # the EMA copy moved away from its start, towards the trained generator
    assert not np.allclose(ema.get_weights()[0], pg.StyleGenerator(**kw).get_weights()[0])
    np.testing.assert_allclose(run.snapshots[28], pg.sample(ema, z, 2), rtol=1e-5, atol=1e-6)
