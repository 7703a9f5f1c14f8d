"""gantools.metrics: KID and FID against independent oracles, extractors, coverage."""

import json

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

import gantools.data as gd
import gantools.metrics as gm
from gantools.metrics import distances

# --- KID -----------------------------------------------------------------------------------


def oracle_mmd2(x, y, estimator="unbiased"):
    """MMD² with k(a, b) = (a·b/d + 1)³, written with explicit loops over pairs."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    if estimator == "unbiased":
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    else:  # the U-statistic pairs x_i with y_i and leaves out i = j
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n) if i != j) / (m * (m - 1))
    return xx + yy - 2.0 * xy


# mmd2_unbiased works in float32 like the features it is given: the float64 inputs round to
# 2⁻²⁴ and each length-d dot product to ~d·2⁻²⁴ relative (the order depends on the BLAS
# kernel), so against the float64 oracle MMD² agrees to ~1e-7 in practice and within ~1e-5
# in the worst case for these sizes. A wrong normalization or a diagonal left in is off by
# more than 0.4.
F32 = dict(rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m, n", [(7, 5), (12, 12), (3, 9)])
def test_mmd2_matches_the_loop_oracle_for_unequal_sizes(rng, m, n):
    x = rng.standard_normal((m, 4))
    y = rng.standard_normal((n, 4)) * 1.3 + 0.2
    np.testing.assert_allclose(gm.mmd2_unbiased(x, y), oracle_mmd2(x, y), **F32)
    result = gm.kid(x, y, block_size=100)
    assert result.num_blocks == (1 if min(m, n) < 4 else 2)  # two blocks when possible
    if result.num_blocks == 1:
        assert np.isnan(result.std_error)
        np.testing.assert_allclose(result.value, oracle_mmd2(x, y), **F32)
    else:
        assert np.isfinite(result.std_error)


def test_u_statistic_of_identical_sets_is_zero_and_kid_can_be_negative(rng):
    x = rng.standard_normal((10, 3))
    y = rng.standard_normal((10, 3))
    np.testing.assert_allclose(gm.mmd2_unbiased(x, y, estimator="u-statistic"),
                               oracle_mmd2(x, y, "u-statistic"), **F32)
    # Exactly 0 in exact arithmetic. Numerically the x·x terms may come from syrk and the
    # x·y ones from gemm, which may round the float32 dot products differently: at most
    # ~1e-6 apart here (kernel values ~1.3, d = 3). Leaving the pairs i = j in gives 1.55.
    assert abs(gm.mmd2_unbiased(x, x, estimator="u-statistic")) < 1e-5
    # the default unbiased estimator on a set against itself is not 0, and is negative here
    value = gm.mmd2_unbiased(x, x)
    np.testing.assert_allclose(value, oracle_mmd2(x, x), **F32)
    assert value < 0
    with pytest.raises(ValueError, match="equal numbers"):
        gm.mmd2_unbiased(x, y[:5], estimator="u-statistic")


def test_kid_blocks_split_the_data_and_average_the_estimates(rng):
    x = rng.standard_normal((2500, 8)).astype(np.float32)
    y = (rng.standard_normal((2000, 8)) * 1.2).astype(np.float32)
    result = gm.kid(x, y, block_size=1000, seed=3)
    assert result.num_blocks == 3
    # the same estimate by hand: shuffle with the seed, split, average
    rs = np.random.default_rng(3)
    xs = np.array_split(x[rs.permutation(len(x))], 3)
    ys = np.array_split(y[rs.permutation(len(y))], 3)
    estimates = [gm.mmd2_unbiased(a, b) for a, b in zip(xs, ys, strict=True)]
    # the same arrays through the same code path as inside kid(). The kernel sums start
    # from float32 matmuls (about 1e-7 relative), and MMD² is a difference of such sums,
    # so rtol 1e-6 allows for a BLAS that rounds a different call differently; a wrong
    # split or seed moves the estimate by far more (percent)
    np.testing.assert_allclose(result.value, np.mean(estimates), rtol=1e-6)
    np.testing.assert_allclose(result.std_error, np.std(estimates, ddof=1) / np.sqrt(3),
                               rtol=1e-6)


def test_kid_does_not_depend_on_block_size_beyond_its_error(rng):
    x = rng.standard_normal((4000, 16)).astype(np.float32)
    y = (rng.standard_normal((3000, 16)) + 0.15).astype(np.float32)
    results = [gm.kid(x, y, block_size=b, seed=1) for b in (250, 500, 1000, 3000)]
    values = np.array([r.value for r in results])
    assert values.min() > 0
    spread = max(r.std_error for r in results if np.isfinite(r.std_error))
    assert values.max() - values.min() < 4 * spread


def test_kid_is_chunk_independent_deterministic_and_seeded(rng):
    x = rng.standard_normal((600, 10)).astype(np.float32)
    y = rng.standard_normal((500, 10)).astype(np.float32) + 0.1
    a = gm.kid(x, y, block_size=200, seed=0, chunk=7)
    b = gm.kid(x, y, block_size=200, seed=0, chunk=4096)
    # Different chunks are different float32 matmuls (gemm on 7 rows, syrk on a whole
    # block; the BLAS kernel also differs by CPU). Each length-10 dot product rounds to
    # ~10·2⁻²⁴ relative: KID (0.038) moves by ~1e-10 in practice (float64 kernels move it
    # 1.5e-10) and by at most 5e-6, while a chunk lost or counted twice moves it by > 1e-3.
    np.testing.assert_allclose(a.value, b.value, rtol=0, atol=1e-5)
    # the same call twice runs the same code path: bit-identical
    assert gm.kid(x, y, block_size=200, seed=0) == gm.kid(x, y, block_size=200, seed=0)
    assert gm.kid(x, y, block_size=200, seed=1).value != a.value
    assert "±" in str(a)


@pytest.mark.parametrize("fn", [gm.kid, gm.fid])
def test_distances_reject_bad_features(rng, fn):
    a = rng.standard_normal((10, 4))
    with pytest.raises(ValueError, match="feature dimensions differ: 4 .* 5"):
        fn(a, rng.standard_normal((10, 5)))
    with pytest.raises(ValueError, match="at least 2 are needed"):
        fn(a, a[:1])
    with pytest.raises(ValueError, match="2-D array"):
        fn(a, rng.standard_normal((3, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fn(a, np.full((3, 4), np.nan))


# --- FID -----------------------------------------------------------------------------------

def oracle_fid(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root.real))


def test_fid_matches_scipy_sqrtm(rng):
    x = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12))
    y = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12)) + 0.3
    np.testing.assert_allclose(gm.fid(x, y), oracle_fid(x, y), rtol=1e-8)


def test_fid_identities(rng):
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    assert abs(gm.fid(x, x)) < 1e-8 * np.trace(np.cov(x, rowvar=False))
    delta = rng.standard_normal(6)
    np.testing.assert_allclose(gm.fid(x, x + delta), delta @ delta, rtol=1e-8)
    y = rng.standard_normal((300, 6))
    c = rng.standard_normal(6) * 5
    np.testing.assert_allclose(gm.fid(x + c, y + c), gm.fid(x, y), rtol=1e-8)
    centred = y - y.mean(0)
    values = [gm.fid(y, s * centred + y.mean(0)) for s in (1.0, 1.5, 2.0, 3.0)]
    assert values[0] < 1e-8 and np.all(np.diff(values) > 0)


def svd_trace_sqrt(x, y):
    """tr (Σ₁Σ₂)^½ = Σ σᵢ(A₁A₂ᵀ) / √((n₁-1)(n₂-1)) with A the centred data: exact, even when
    Σ₁ is singular (where scipy's sqrtm loses accuracy)."""
    a1, a2 = x - x.mean(0), y - y.mean(0)
    s = np.linalg.svd(a1 @ a2.T, compute_uv=False)
    return s.sum() / np.sqrt((len(x) - 1) * (len(y) - 1))


@pytest.mark.parametrize("n1", [8, 30])
def test_trace_sqrt_product_matches_the_svd_identity(rng, n1):
    x = rng.standard_normal((n1, 20))  # n1 = 8: Σ₁ has rank 7 in 20 dimensions
    y = rng.standard_normal((50, 20))
    a, b = gm.fit_gaussian(x), gm.fit_gaussian(y)
    np.testing.assert_allclose(gm.trace_sqrt_product(a.cov, b.cov), svd_trace_sqrt(x, y),
                               rtol=1e-6)
    assert np.isfinite(gm.fid(x, y))
    # the same float64 computation, once from fitted moments and once fitting them: float64
    # eigen-decompositions of the same matrices agree to ~1e-13 relative on any LAPACK
    np.testing.assert_allclose(gm.fid(a, y), gm.fid(x, y), rtol=1e-9)


# --- feature extractors ---------------------------------------------------------------------

def test_check_images_explains_bad_ranges_and_shapes():
    with pytest.raises(ValueError, match=r"\[0, 255\].*127.5"):
        gm.check_images(np.full((2, 8, 8, 3), 200.0))
    with pytest.raises(ValueError, match=r"\(n, height, width, 1 or 3\)"):
        gm.check_images(np.zeros((2, 8, 8, 2)))
    with pytest.raises(ValueError, match="empty"):
        gm.check_images(np.zeros((0, 8, 8, 1)))


def test_inception_plumbing_with_random_weights():
    extractor = gm.inception_v3(image_size=75, weights=None, batch_size=4)
    assert extractor.dim == 2048 and extractor.input_size == 75
    digits, _ = gd.arrays("digits", "test", limit=6)  # 32×32 greyscale, resized and tiled
    features = extractor(digits)
    assert features.shape == (6, 2048) and features.dtype == np.float32
    np.testing.assert_allclose(extractor(digits, batch_size=5), features, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="at least 75 pixels"):
        gm.inception_v3(image_size=64, weights=None)


def test_inception_offline_names_file_cache_and_address(keras_home):
    with pytest.raises(gd.DataUnavailableError) as info:
        gm.inception_v3()
    message = str(info.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(keras_home / "models") in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/" in message
    assert "classifier_features" in message


def test_model_features_at_a_named_layer(rng):
    from gantools.models import dcgan_discriminator

    d = dcgan_discriminator(16, 1, width=4)
    extractor = gm.model_features(d, layer="down2_lrelu")
    assert extractor.dim == 4 * 4 * 8
    assert extractor(rng.uniform(-1, 1, (3, 16, 16, 1))).shape == (3, 128)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        gm.model_features(d, layer="nope")
    with pytest.raises(ValueError, match="greyscale images but got RGB"):
        extractor(np.zeros((2, 16, 16, 3)))


@pytest.fixture(scope="module")
def digits_features():
    return gm.classifier_features("digits")


def test_bundled_classifiers_reach_their_stated_accuracy(digits_features):
    from gantools.metrics.classifiers import recorded_accuracy

    record = recorded_accuracy()
    bars = {"mnist5k": 0.975, "digits": 0.97, "shapes": 0.98}
    for dataset, bar in bars.items():
        extractor = digits_features if dataset == "digits" else gm.classifier_features(dataset)
        x, y = gd.arrays(dataset, "test")
        accuracy = float(np.mean(extractor.classify(x) == y))
        assert accuracy >= bar, (dataset, accuracy)
        # One image whose logits are near a tie may be classified differently on another
        # CPU (1/359 = 2.8e-3 for digits, 1/1000 for mnist5k), and the record is rounded to
        # 4 decimals.
        one_image = 1 / len(y) + 5e-5
        np.testing.assert_allclose(accuracy, record[dataset]["test_accuracy"],
                                   atol=max(2e-3, one_image))
        assert extractor.dim == 128


def test_extractors_stream_datasets_with_any_batch_size(digits_features):
    x, _ = gd.arrays("digits", "test", limit=40)
    a = digits_features(x, batch_size=7)
    b = digits_features(x, batch_size=256)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    ds = gd.load("digits", "test", batch_size=16, shuffle=False)
    assert digits_features(ds).shape == (359, 128)


# --- coverage ------------------------------------------------------------------------------

def test_mode_coverage_on_constructed_samples(rng):
    mix = gd.mixture("grid")
    every = np.repeat(mix.centres, 40, axis=0) + 0.01 * rng.standard_normal((1000, 2))
    cov = gm.mode_coverage(every, mixture=mix)
    assert cov.modes_covered == 25 and cov.high_quality == 1.0
    assert abs(cov.kl_to_uniform) < 1e-12
    one = np.repeat(mix.centres[:1], 500, axis=0)
    cov = gm.mode_coverage(one, mixture=mix)
    assert cov.modes_covered == 1 and np.isclose(cov.kl_to_uniform, np.log(25))
    midway = mix.centres[:-1] + np.array([1.0, 0.0])  # 1 unit = 20σ from any centre
    cov = gm.mode_coverage(midway, mixture=mix)
    assert cov.modes_covered == 0 and cov.high_quality == 0.0
    half = np.concatenate([every[:500], midway[:20].repeat(25, axis=0)])
    assert np.isclose(gm.mode_coverage(half, mixture=mix).high_quality, 0.5)
    edge = mix.centres[:1] + np.array([[3 * mix.sigma * 0.99, 0.0], [3 * mix.sigma * 1.01, 0]])
    assert gm.mode_coverage(edge, mixture=mix).counts[0] == 1
    strict = gm.mode_coverage(every[:80], mixture=mix, min_count=41)
    assert strict.modes_covered == 0


def test_class_coverage_and_conditional_accuracy():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 0)
    cov = gm.class_coverage(labels, num_classes=3)
    assert cov.classes_covered == 2
    np.testing.assert_allclose(cov.kl_to_uniform, np.log(3) - np.log(2))
    np.testing.assert_allclose(cov.histogram, [0.5, 0.5, 0])
    assert gm.conditional_accuracy([1, 2, 3, 3], [1, 2, 3, 0]) == 0.75
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        gm.class_coverage([0, 5], num_classes=3)
    with pytest.raises(ValueError, match="4 predictions for 3"):
        gm.conditional_accuracy([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2 points"):
        gm.mode_coverage(np.zeros((1, 2)), mixture=gd.mixture("ring"))


# --- evaluation during and after training -----------------------------------------------------

def test_real_floor_is_small_and_a_random_generator_is_far(digits_features):
    floor = gm.real_floor("digits", features=digits_features, num_samples=400)
    assert abs(floor["kid"]) < 0.02 and floor["test_images"] == 359
    from gantools.models import dcgan_generator

    g = dcgan_generator(32, 1, latent_dim=8, width=8)
    test, _ = gd.arrays("digits", "test")
    result = gm.evaluate(g, test, digits_features, num_samples=300)
    assert result["kid"] > 10 * max(abs(floor["kid"]), floor["kid_std"])
    assert 1 <= result["classes_covered"] <= 10 and "conditional_accuracy" not in result


def test_metrics_callback_records_checks(digits_features):
    from gantools.models import dcgan_discriminator, dcgan_generator
    from gantools.training import GANTrainer

    g = dcgan_generator(32, 1, latent_dim=8, width=4, num_classes=10)
    d = dcgan_discriminator(32, 1, width=4, num_classes=10)
    trainer = GANTrainer(g, d, seed=0)
    test, _ = gd.arrays("digits", "test")
    callback = gm.MetricsCallback(test, digits_features, num_samples=200, verbose=False,
                                  with_fid=True)
    trainer.fit(gd.load("digits", batch_size=32, with_labels=True), 2, every=2,
                callbacks=[callback], progress=False)
    checks = trainer.history.checks
    for key in ("kid", "kid_std", "fid", "classes_covered", "conditional_accuracy"):
        assert [s for s, _ in checks[key]] == [2], key
    json.dumps(callback.results)
    assert tf.is_tensor(tf.constant(callback.results[0]["kid"]))


def test_kid_sums_kernels_in_float64(rng):
    """10⁶ kernel values of order 2, for an MMD² of -0.004: summed in float32 (even
    pairwise) the error is ~3·10⁻⁷; the float64 accumulation stays below 5·10⁻⁹.

    The features lie on a 1/64 grid with Σ|xᵢyᵢ| < 2¹², so every float32 dot product is
    exact whatever the BLAS kernel's order of summation or use of FMA: only the
    accumulation is being tested, not the CPU's float32 rounding."""
    x = np.round((rng.standard_normal((1000, 16)) + 0.5) * 64).astype(np.float32) / 64
    y = np.round((rng.standard_normal((1000, 16)) + 0.52) * 64).astype(np.float32) / 64
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    both = np.abs(np.concatenate([x64, y64]))
    assert (both @ both.T).max() < 2**12  # multiples of 2⁻¹² below 2¹²: 24 bits, exact

    def k(a, b):
        return (a @ b.T / 16 + 1) ** 3

    off = ~np.eye(1000, dtype=bool)
    reference = k(x64, x64)[off].mean() + k(y64, y64)[off].mean() - 2 * k(x64, y64).mean()
    assert abs(distances.mmd2_unbiased(x, y) - reference) < 5e-9


# --- legibility --------------------------------------------------------------------------

class _Logits:
    """Stands in for the bundled classifier: returns the logits it was given."""

    def __init__(self, logits):
        self._logits = np.asarray(logits, np.float64)

    def logits(self, images, batch_size=None):
        return self._logits[: len(images)]


def test_legibility_counts_images_given_one_class_with_probability_at_least_09(monkeypatch):
    from gantools.metrics import fidelity

    # probabilities by hand: e^a / (e^a + 2) with a = ln 18 gives 18/20 = 0.9 exactly;
    # the rows sit 1e-6 either side of it, away from float64 rounding (1e-16)
    above, below = np.log(18 * (1 + 1e-5)), np.log(18 * (1 - 1e-5))
    logits = [[above, 0.0, 0.0],    # p = 0.900001: legible
              [below, 0.0, 0.0],    # p = 0.899999: not
              [0.0, 0.0, 0.0],      # p = 1/3: not
              [0.0, 800.0, 0.0],    # p = 1 (no overflow): legible
              [5.0, 5.0, -1e3]]     # two classes at 1/2 each: not
    monkeypatch.setattr(fidelity, "_classifier", lambda dataset: _Logits(logits))
    images = np.zeros((5, 28, 28, 1), np.float32)
    assert gm.legibility(images) == 2 / 5
    assert gm.legibility(images, threshold=0.95) == 1 / 5  # only the certain one
    assert gm.legibility(images, threshold=0.3) == 1.0  # 1/3 and 1/2 are ≥ 0.3 too
    np.testing.assert_allclose(fidelity.softmax(logits)[0, 0], 0.9 * (1 + 1e-5) / (1 + 0.9e-5),
                               rtol=1e-12)


def test_legibility_of_real_digits_noise_and_the_wrong_classifier():
    from gantools.metrics.classifiers import recorded_accuracy

    x, _ = gd.arrays("mnist5k", "test")
    # within one image (1/1000) of what was recorded when the weights were trained
    np.testing.assert_allclose(gm.legibility(x), recorded_accuracy()["mnist5k"]["test_legibility"],
                               atol=1e-3 + 1e-5)
    noise = np.random.default_rng(0).uniform(-1, 1, (500, 28, 28, 1)).astype(np.float32)
    assert gm.legibility(noise) <= 0.01
    assert gm.legibility(-np.ones((50, 28, 28, 1), np.float32)) <= 0.02  # blank
    blend = 0.5 * (x[:500] + x[500:])  # two digits on top of each other
    assert gm.legibility(blend) < 0.3
    with pytest.raises(ValueError, match="trained to doubt.*dataset='mnist5k'"):
        gm.legibility(x, dataset="digits")
    for bad in (0.0, 1.0, 1.5, True):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            gm.legibility(x, threshold=bad)
