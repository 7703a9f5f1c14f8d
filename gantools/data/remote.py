"""Datasets that are downloaded once: MNIST, Fashion-MNIST, CIFAR-10, Caltech Birds.

The files are fetched with Keras's own ``keras.utils.get_file`` (same addresses,
checksums and cache layout as ``keras.datasets``, so a cache filled by Keras is
reused) and parsed here. Caltech Birds comes from TensorFlow Datasets (the optional
``birds`` extra).

MNIST and Fashion-MNIST are also read from a folder of the four original IDX files when
Keras's cache has no copy: the folder named by ``GANTOOLS_MNIST_DIR`` /
``GANTOOLS_FASHION_MNIST_DIR``, else ``/usr/share/datasets/mnist`` /
``/usr/share/datasets/fashion-mnist`` (where Debian's ``dataset-fashion-mnist`` package
puts Fashion-MNIST's).

Offline, a missing file fails fast with :class:`DataUnavailableError`, which names
the missing file, the cache folder to put it in, and the bundled dataset to use
instead. Set ``GANTOOLS_OFFLINE=1`` to skip the network check altogether. Nothing
ever falls back silently to another dataset.
"""

from __future__ import annotations

import gzip
import os
import pickle
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DataUnavailableError(RuntimeError):
    """A downloadable dataset is not cached and cannot be fetched right now."""


def keras_cache_dir() -> Path:
    """Keras's cache folder: ``$KERAS_HOME`` or ``~/.keras`` (read at call time)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def offline_requested() -> bool:
    return os.environ.get("GANTOOLS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as ``keras.utils.get_file`` stores it."""

    fname: str
    origin: str
    subdir: str = "datasets"
    file_hash: str | None = None
    extract: bool = False

    def local_path(self) -> Path:
        # get_file extracts an archive named without a dot into <subdir>/<fname>/.
        return keras_cache_dir() / self.subdir / self.fname


def unavailable(what: str, missing: list[Path], origins: list[str], reason: str,
                instead: str):
    lines = [
        f"The {what} is not available: {reason}.",
        "Missing: " + ", ".join(str(p) for p in missing) + ".",
        "On a machine with internet access, download "
        + ", ".join(origins)
        + f" and put the result at the path(s) above (the cache folder is {keras_cache_dir()};"
        " set KERAS_HOME to use another one).",
        f"To work offline now, {instead}.",
    ]
    return DataUnavailableError("\n".join(lines))


def _bundled(name: str) -> str:
    return f"use a bundled dataset instead: gantools.data.load({name!r})"


def fetch(what: str, files: list[RemoteFile], instead: str) -> list[Path]:
    """Return the local paths of ``files``, downloading the missing ones if possible.

    ``what`` names the thing in messages ("mnist dataset"); ``instead`` says what to do
    offline ("use a bundled dataset instead: ...").
    """
    missing = [f for f in files if not f.local_path().exists()]
    if missing:
        paths = [f.local_path() for f in missing]
        origins = [f.origin for f in missing]
        if offline_requested():
            raise unavailable(what, paths, origins, "GANTOOLS_OFFLINE is set", instead)
        if not _reachable(missing[0].origin):
            raise unavailable(
                what, paths, origins, "it is not in the cache and the network is unreachable",
                instead,
            )
        import keras

        for f in missing:
            try:
                keras.utils.get_file(
                    f.fname, origin=f.origin, cache_subdir=f.subdir, file_hash=f.file_hash,
                    extract=f.extract, cache_dir=str(keras_cache_dir()),
                )
            except Exception as e:  # noqa: BLE001 - any download failure means the same thing
                raise unavailable(
                    what, [f.local_path()], [f.origin], f"the download failed ({e})", instead
                ) from e
    return [f.local_path() for f in files]


# --- MNIST and Fashion-MNIST -----------------------------------------------------------

MNIST_FILES = [
    RemoteFile(
        "mnist.npz", _KERAS_BASE + "mnist.npz",
        file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    )
]
_FASHION_NAMES = [
    "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
]
FASHION_FILES = [
    RemoteFile(n, _KERAS_BASE + n, subdir=os.path.join("datasets", "fashion-mnist"))
    for n in _FASHION_NAMES
]
FASHION_CLASSES = (
    "T-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)


IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Folders of the original IDX files, looked in when Keras's cache has no copy: the
# variable's folder first, then where Debian's dataset packages install them
# (``apt install dataset-fashion-mnist``).
IDX_FOLDERS = {
    "mnist": ("GANTOOLS_MNIST_DIR", Path("/usr/share/datasets/mnist")),
    "fashion_mnist": ("GANTOOLS_FASHION_MNIST_DIR", Path("/usr/share/datasets/fashion-mnist")),
}
_IDX_TYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (LeCun's format, gzipped or not) as a NumPy array.

    The header is two zero bytes, a type byte (0x08: unsigned bytes), the number of
    dimensions, then each dimension as a big-endian 32-bit integer.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (its first bytes are "
                         f"{data[:4]!r}); use the original MNIST/Fashion-MNIST files.")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - start != expected:
        raise ValueError(f"{path} announces shape {dims} ({expected} values) but holds "
                         f"{len(data) - start}; the file is truncated or damaged, download it "
                         "again.")
    return np.frombuffer(data, _IDX_TYPES[data[2]], offset=start).reshape(dims)


def idx_folder(name: str) -> Path | None:
    """The folder of ``name``'s IDX files (``mnist`` or ``fashion_mnist``) if one exists."""
    variable, default = IDX_FOLDERS[name]
    chosen = os.environ.get(variable)
    if chosen:
        folder = Path(chosen)
        if not folder.is_dir():
            raise DataUnavailableError(f"{variable} is set to {chosen!r}, which is not a "
                                       f"folder; point it at the folder of the four IDX files "
                                       f"of {name}, or unset it.")
        return folder
    return default if default.is_dir() else None


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / candidate).is_file():
            return folder / candidate
    raise DataUnavailableError(f"the IDX folder {folder} has no {stem}.gz (or {stem}); it "
                               "needs the four original files: "
                               + ", ".join(f"{a}.gz, {b}.gz" for a, b in IDX_NAMES.values())
                               + ".")


def read_idx_split(folder: Path, split: str):
    """``(uint8 (n, 28, 28, 1), int32 labels)`` of a split from a folder of IDX files."""
    images_stem, labels_stem = IDX_NAMES["train" if split == "train" else "test"]
    images = read_idx(_find_idx(folder, images_stem))
    labels = read_idx(_find_idx(folder, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"the IDX files in {folder} hold images of shape {images.shape} and "
                         f"labels of shape {labels.shape}; expected (n, 28, 28) and (n,).")
    return images[..., None], labels.astype(np.int32)


def _idx_hint(name: str) -> str:
    variable, default = IDX_FOLDERS[name]
    return (f"put the four original IDX files in {default} or in a folder named by "
            f"{variable}, or {_bundled('mnist5k')}")


def read_mnist(split: str):
    """``(uint8 (n, 28, 28, 1), labels)``: Keras's ``mnist.npz``, else a folder of IDX files."""
    cached = MNIST_FILES[0].local_path()
    folder = None if cached.exists() else idx_folder("mnist")
    if folder is not None:
        return read_idx_split(folder, split)
    (path,) = fetch("mnist dataset", MNIST_FILES, instead=_idx_hint("mnist"))
    key = "train" if split == "train" else "test"
    with np.load(path, allow_pickle=False) as f:
        return f[f"x_{key}"][..., None], f[f"y_{key}"].astype(np.int32)


def read_fashion_mnist(split: str):
    """``(uint8 (n, 28, 28, 1), labels)``: Keras's cached IDX files, else an IDX folder."""
    cached = all(f.local_path().exists() for f in FASHION_FILES)
    folder = None if cached else idx_folder("fashion_mnist")
    if folder is None:
        folder = fetch("fashion_mnist dataset", FASHION_FILES,
                       instead=_idx_hint("fashion_mnist"))[0].parent
    return read_idx_split(folder, split)


def pad_or_resize(images: np.ndarray, size: int, native: int):
    """28 → 32 pads two pixels of background on each side (lossless); else resize."""
    from .core import resize_images

    if size == native:
        return images
    if size > native and (size - native) % 2 == 0 and images.dtype == np.uint8:
        p = (size - native) // 2
        return np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
    x = resize_images(images, size)
    return np.clip(x / 127.5 - 1.0, -1.0, 1.0).astype(np.float32)


# --- CIFAR-10 ---------------------------------------------------------------------------

CIFAR10_FILES = [
    RemoteFile(
        "cifar-10-batches-py-target",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        file_hash="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        extract=True,
    )
]
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and NumPy arrays, as in a CIFAR batch file."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_cifar_batch(path: Path):
    with open(path, "rb") as f:
        d = _ArrayUnpickler(f, encoding="bytes").load()
    data = np.asarray(d[b"data"], dtype=np.uint8)
    labels = np.asarray(d[b"labels"], dtype=np.int32)
    return data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(split: str):
    (root,) = fetch("cifar10 dataset", CIFAR10_FILES, instead=_bundled("shapes"))
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [read_cifar_batch(folder / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
