"""gantools.data: downloadable datasets and image folders, tested on files made here.

Nothing here touches the network: each test writes small files in the formats Keras,
TensorFlow Datasets or a user's folder would hold, and checks the preprocessing.
"""

import gzip
import pickle
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import gantools.data as gd
from gantools.data import birds, remote


def _everything(ds):
    return np.concatenate(list(ds.as_numpy_iterator()))


# --- MNIST, Fashion-MNIST, CIFAR-10 from a local cache -----------------------------------

def test_mnist_from_cache_is_padded_scaled_and_labelled(keras_home, rng):
    x_train = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    y_train = np.arange(6, dtype=np.uint8)
    x_test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=x_train, y_train=y_train,
             x_test=x_test, y_test=np.arange(3, dtype=np.uint8))
    x, y = gd.arrays("mnist", "train", image_size=32)
    assert x.shape == (6, 32, 32, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 2:30, 2:30, 0], x_train / 127.5 - 1.0, atol=1e-6)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(x[:, border] == -1.0)
    np.testing.assert_array_equal(y, np.arange(6))
    native, _ = gd.arrays("mnist", "test", image_size=28)
    np.testing.assert_allclose(native[..., 0], x_test / 127.5 - 1.0, atol=1e-6)
    half, _ = gd.arrays("mnist", "test", image_size=14)  # area filter = 2×2 block means
    blocks = (x_test / 127.5 - 1.0).reshape(3, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(half[..., 0], blocks, atol=1e-4)
    batch, labels = next(iter(gd.load("mnist", batch_size=6, with_labels=True, shuffle=False,
                                      image_size=32)))
    np.testing.assert_allclose(batch.numpy(), x, atol=1e-6)
    assert gd.arrays("mnist", "train")[0].shape == (6, 28, 28, 1)  # native size by default


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files(keras_home, rng):
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir()
    images = {"train": rng.integers(0, 256, (5, 28, 28)), "t10k": rng.integers(0, 256, (2, 28, 28))}
    labels = {"train": np.array([9, 0, 1, 2, 3]), "t10k": np.array([4, 5])}
    for part in ("train", "t10k"):
        _write_idx(folder / f"{part}-images-idx3-ubyte.gz", images[part], 2051)
        _write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels[part], 2049)
    x, y = gd.arrays("fashion_mnist", "test", image_size=28)
    np.testing.assert_allclose(x[..., 0], images["t10k"] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(y, [4, 5])
    assert gd.info("fashion_mnist").class_names[y[0]] == "coat"


def _idx_folder(folder, rng, gz=True, sizes=(("train", 5), ("t10k", 3))):
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for part, n in sizes:
        images, labels = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        made[part] = images, labels
        for kind, array, magic in (("images-idx3", images, 2051), ("labels-idx1", labels, 2049)):
            path = folder / f"{part}-{kind}-ubyte{'.gz' if gz else ''}"
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big")
                                                         for d in array.shape)
            data = header + array.astype(np.uint8).tobytes()
            path.write_bytes(gzip.compress(data) if gz else data)
    return made


@pytest.mark.parametrize("name, variable", [("mnist", "GANTOOLS_MNIST_DIR"),
                                            ("fashion_mnist", "GANTOOLS_FASHION_MNIST_DIR")])
@pytest.mark.parametrize("gz", [True, False])
def test_offline_full_sets_read_a_folder_of_idx_files(keras_home, rng, monkeypatch, tmp_path,
                                                      name, variable, gz):
    """Offline, with nothing in Keras's cache, the original IDX files (gzipped or not) in the
    folder a variable names are read: header, shape, pixels and labels as written."""
    made = _idx_folder(tmp_path / "idx", rng, gz)
    monkeypatch.setenv(variable, str(tmp_path / "idx"))
    for split, part in (("train", "train"), ("test", "t10k")):
        x, y = gd.arrays(name, split)
        assert x.shape == (len(made[part][0]), 28, 28, 1) and x.dtype == np.float32
        np.testing.assert_allclose(x[..., 0], made[part][0] / 127.5 - 1.0, atol=1e-6)
        np.testing.assert_array_equal(y, made[part][1])


def test_idx_files_that_are_not_idx_or_are_cut_short_are_named(keras_home, rng, monkeypatch,
                                                                tmp_path):
    folder = tmp_path / "idx"
    _idx_folder(folder, rng)
    monkeypatch.setenv("GANTOOLS_MNIST_DIR", str(folder))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"PK\x03\x04 a zip"))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz is not an IDX file"):
        gd.arrays("mnist", "test")
    good = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(gzip.decompress(good)[:-100]))
    with pytest.raises(ValueError, match="truncated or damaged"):
        gd.arrays("mnist", "train")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(gd.DataUnavailableError, match="has no train-images-idx3-ubyte.gz"):
        gd.arrays("mnist", "train")
    monkeypatch.setenv("GANTOOLS_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(gd.DataUnavailableError, match="GANTOOLS_MNIST_DIR .* not a folder"):
        gd.arrays("mnist", "train")


DEBIAN_FASHION = remote.IDX_FOLDERS["fashion_mnist"][1]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                    reason=f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_FASHION} "
                    "is missing); `make idx-data` installs it, as .ci/run does")
def test_fashion_mnist_offline_from_debians_package(tmp_path, monkeypatch):
    """The real Fashion-MNIST, read offline from where Debian's package puts it."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("GANTOOLS_OFFLINE", "1")
    monkeypatch.delenv("GANTOOLS_FASHION_MNIST_DIR", raising=False)
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = remote.read_fashion_mnist(split)
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels), [n // 10] * 10)
    x, y = gd.arrays("fashion_mnist", "test", limit=64)
    assert x.shape == (64, 28, 28, 1) and -1.0 <= x.min() < x.max() <= 1.0


def test_cifar10_batches_are_transposed_to_channels_last(keras_home, rng):
    folder = keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    planes = {}
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        chw = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
        planes[name] = chw
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": chw.reshape(2, 3072), b"labels": [i % 10, (i + 1) % 10]}, f)
    x, y = gd.arrays("cifar10", "train")
    assert x.shape == (10, 32, 32, 3)
    expected = np.concatenate([planes[f"data_batch_{k}"] for k in range(1, 6)])
    np.testing.assert_allclose(x, expected.transpose(0, 2, 3, 1) / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(y[:4], [0, 1, 1, 2])
    xt, yt = gd.arrays("cifar10", "test")
    np.testing.assert_allclose(xt[1, 3, 4], planes["test_batch"][1, :, 3, 4] / 127.5 - 1.0,
                               atol=1e-6)


def test_cifar_reader_refuses_arbitrary_pickles(keras_home, tmp_path):
    path = tmp_path / "evil"
    with open(path, "wb") as f:
        pickle.dump({b"data": time.time}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        remote.read_cifar_batch(path)


# --- offline behaviour --------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, missing",
    [("mnist", "mnist.npz"), ("fashion_mnist", "train-labels-idx1-ubyte.gz"),
     ("cifar10", "cifar-10-batches-py-target")],
)
def test_offline_download_fails_fast_naming_file_cache_and_alternative(keras_home, name, missing,
                                                                       monkeypatch):
    # "fast" = without waiting on the network: no connection probe, no download attempt
    # (a wall-clock limit would depend on the machine's load instead)
    attempts = []
    monkeypatch.setattr(remote, "_reachable", lambda url, timeout=3.0: attempts.append(url))
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: attempts.append(a))
    with pytest.raises(gd.DataUnavailableError) as info:
        gd.load(name)
    message = str(info.value)
    assert missing in message and str(keras_home) in message
    assert "GANTOOLS_OFFLINE" in message
    assert "gantools.data.load('mnist5k')" in message or "gantools.data.load('shapes')" in message
    if name != "cifar10":  # the full MNIST sets can also be read from their IDX files
        assert "IDX files" in message and remote.IDX_FOLDERS[name][0] in message
    assert "https://" in message
    assert attempts == []


def test_unreachable_network_is_reported_without_downloading(keras_home, monkeypatch):
    monkeypatch.delenv("GANTOOLS_OFFLINE")
    monkeypatch.setattr(remote, "_reachable", lambda url, timeout=3.0: False)
    with pytest.raises(gd.DataUnavailableError, match="network is unreachable"):
        gd.arrays("mnist")
    assert not (keras_home / "datasets" / "mnist.npz").exists()


def test_reachability_probe_is_bounded(monkeypatch):
    assert remote._reachable("http://127.0.0.1:9/", timeout=1.0) is False  # refused
    # bounded = the connection attempt gets the timeout, and timing out means unreachable
    # (checked without a wall clock, which would measure the machine's load)
    calls = []

    def silent_host(address, timeout=None):
        calls.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(remote.socket, "create_connection", silent_host)
    assert remote._reachable("https://example.org/data.npz", timeout=1.0) is False
    assert calls == [(("example.org", 443), 1.0)]


# --- Caltech Birds ------------------------------------------------------------------------

def test_birds_square_crop_around_the_box():
    h, w = 100, 200
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    # box rows 20..60, cols 50..90 -> side 40 * 1.25 = 50 around centre (40, 70)
    bbox = np.array([0.2, 0.25, 0.6, 0.45], np.float32)
    out = birds.square_crop(image, bbox, image_size=50).numpy()
    np.testing.assert_allclose(out, image[15:65, 45:95] / 255.0, atol=1e-6)
    small = birds.square_crop(image, bbox, image_size=25).numpy()
    blocks = (image[15:65, 45:95] / 255.0).reshape(25, 2, 25, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(small, blocks, atol=1e-5)


def test_birds_crop_shrinks_at_the_image_border():
    image = np.random.default_rng(1).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    # box rows 0..20: the crop may extend only 10 px around centre row 10 -> rows 0..20
    bbox = np.array([0.0, 0.25, 0.2, 0.45], np.float32)
    out = birds.square_crop(image, bbox, image_size=16).numpy()
    expected = tf.image.resize(image[0:20, 45:95].astype(np.float32), (16, 16), method="area")
    np.testing.assert_allclose(out, expected.numpy() / 255.0, atol=1e-5)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_birds_without_tfds_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(gd.DataUnavailableError, match=r"gantools\[birds\]"):
        gd.load("caltech_birds")


# --- image folders ------------------------------------------------------------------------

def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "bricks"
    colours = {"red": (200, 10, 30), "blue": (20, 40, 220)}
    for cls, colour in colours.items():
        for i in range(5):
            _save(root / cls / f"{i}.png", np.full((12, 16, 3), colour, np.uint8))
    return root


def test_image_folder_reads_resizes_and_labels(folder):
    ds = gd.image_folder(folder, batch_size=10, image_size=8, with_labels=True, shuffle=False)
    x, y = next(iter(ds))
    assert x.shape == (10, 8, 8, 3)
    np.testing.assert_array_equal(y.numpy(), [0] * 5 + [1] * 5)  # blue < red
    np.testing.assert_allclose(x.numpy()[0, 0, 0], np.array([20, 40, 220]) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(x.numpy()[-1, 3, 3], np.array([200, 10, 30]) / 127.5 - 1, atol=1e-6)


def test_image_folder_centre_crops_and_converts_to_grey(tmp_path):
    pixels = np.zeros((4, 8, 3), np.uint8)
    pixels[:, 2:6] = 255  # white centre square, black side bands
    _save(tmp_path / "one.png", pixels)
    x = _everything(gd.image_folder(tmp_path, batch_size=1, image_size=4, channels=1))
    assert x.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(x, 1.0, atol=1e-6)


def test_image_folder_split_is_fixed_and_disjoint(tmp_path):
    for i in range(20):
        _save(tmp_path / f"{i:02d}.png", np.full((4, 4, 3), i * 10, np.uint8))
    vals = lambda split: sorted(  # noqa: E731
        _everything(gd.image_folder(tmp_path, split, batch_size=1, image_size=4))[:, 0, 0, 0]
        .round(5).tolist())
    train, test, everything = vals("train"), vals("test"), vals("all")
    assert len(train) == 18 and len(test) == 2 and len(everything) == 20
    assert sorted(train + test) == everything
    assert test == vals("test")


def test_corrupt_image_is_reported_by_path(folder):
    bad = folder / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really an image")
    with pytest.raises(ValueError, match=r"1 of 11 image files could not be read") as info:
        gd.image_folder(folder)
    assert str(bad) in str(info.value) and "on_corrupt='skip'" in str(info.value)
    assert "Traceback" not in str(info.value)
    with pytest.warns(UserWarning, match="broken.png"):
        ds = gd.image_folder(folder, batch_size=10, image_size=8, on_corrupt="skip")
    assert next(iter(ds)).shape[0] == 10


@pytest.mark.parametrize("make, match", [
    (lambda p: p, r"no images found"),
    (lambda p: (p / "notes.txt").write_text("hello") and p, r"no images found.*\.png"),
    (lambda p: p / "missing", r"does not exist"),
    (lambda p: (p / "a.png").write_bytes(b"x") and p / "a.png", r"is a file, not a folder"),
])
def test_bad_folders_raise(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        gd.image_folder(make(tmp_path))


def test_folder_without_classes_has_no_labels(tmp_path):
    _save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="has no labels"):
        gd.image_folder(tmp_path, batch_size=1, with_labels=True)
    with pytest.raises(ValueError, match="channels must be 1"):
        gd.image_folder(tmp_path, channels=4)
    with pytest.raises(ValueError, match="unknown split"):
        gd.image_folder(tmp_path, split="validation")
