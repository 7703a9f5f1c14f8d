import os

import gantools  # noqa: F401 - before TensorFlow: the course's environment (oneDNN on)

os.environ.setdefault("MPLBACKEND", "Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("gantools")
    group.addoption("--dashboard-png", metavar="PATH", default=None,
                    help="tests/course/test_browser.py: save its screenshot of the live dashboard "
                         "there (the README shows docs/dashboard.png)")
    group.addoption("--browser-full-mode", action="store_true",
                    help="tests/course/test_browser.py: run the notebook in full mode (minutes), "
                         "for a screenshot of a real training run")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache folder, with the network check forced offline and no folder of
    IDX files (neither a variable's nor a system one such as Debian's Fashion-MNIST)."""
    from gantools.data import remote

    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("GANTOOLS_OFFLINE", "1")
    for name, (variable, _) in remote.IDX_FOLDERS.items():
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.setitem(remote.IDX_FOLDERS, name, (variable, tmp_path / "no-such" / name))
    return home
