"""The command line, exact resume after Ctrl-C, and MirroredStrategy on two CPU devices.

These run in subprocesses: op determinism and logical devices are process-wide settings.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
TINY = ["--dataset", "digits", "--image-size", "8", "--width", "4", "--latent-dim", "8",
        "--batch-size", "16", "--every", "5", "--no-progress", "--deterministic"]


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "gantools", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_help_documents_the_options():
    out = cli("train", "--help")
    assert out.returncode == 0
    for option in ("--dataset", "--loss", "--steps", "--out", "--resume", "--n-critic",
                   "--penalty", "--ema", "--seed", "--width", "--depth", "--steps-per-call",
                   "--reuse-fakes"):
        assert option in out.stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--steps", "ten"], "invalid int value"),
    (["train", "--penalty", "l1"], "invalid choice"),
    (["train", "--dataset", "imagenet", "--out", "unused"], "unknown dataset 'imagenet'"),
    (["train", "--loss", "wgan", "--out", "unused"], "unknown loss 'wgan'"),
    (["train", "--steps", "0"], "--steps must be at least 1"),
    (["train", "--penalty", "gp"], "without batch norm"),
    (["fly"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_train_writes_pictures_history_and_refuses_to_overwrite(tmp_path):
    out = cli("train", "--dataset", "ring", "--steps", "30", "--every", "10", "--width", "8",
              "--out", str(tmp_path), "--no-progress", "--reuse-fakes")
    assert out.returncode == 0, out.stderr
    for name in ("samples.png", "curves.png", "history.json", "generator.keras"):
        assert (tmp_path / name).stat().st_size > 0, name
        assert name in out.stdout
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["d_loss"]) == 30
    again = cli("train", "--dataset", "ring", "--steps", "30", "--out", str(tmp_path))
    assert again.returncode == 2 and "--resume" in again.stderr


def _weights(folder):
    model = keras.models.load_model(folder / "generator.keras")
    return [w.numpy() for w in model.weights]


def default_sigint():
    """Ctrl-C's default action in the child, even when this test runs in a background job
    (a shell starts those with SIGINT ignored, and the child would inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    steps = "60"
    full = cli("train", *TINY, "--steps", steps, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr

    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "gantools", "train", *TINY, "--steps", steps,
                             "--out", str(run)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "checkpoint").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err, (proc.returncode, err[-2000:])
    partial = json.loads((run / "checkpoints" / "history.json").read_text())
    assert 0 < len(partial["d_loss"]) < 60

    resumed = cli("train", *TINY, "--steps", steps, "--out", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step" in resumed.stdout
    for a, b in zip(_weights(tmp_path / "full"), _weights(run), strict=True):
        np.testing.assert_array_equal(a, b)
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())
    h_run = json.loads((run / "history.json").read_text())
    assert h_full["d_loss"] == h_run["d_loss"] and h_full["g_loss"] == h_run["g_loss"]


MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import gantools.data as gd, gantools.models as gm
    from gantools.training import GANTrainer
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for reuse_fakes in (False, True):
        with strategy.scope():
            g = gm.dcgan_generator(8, 1, latent_dim=8, width=4, num_classes=10)
            d = gm.dcgan_discriminator(8, 1, width=4, num_classes=10, normalization="spectral")
        trainer = GANTrainer(g, d, strategy=strategy, penalty="gp", loss="wasserstein",
                             steps_per_call=2, seed=0, reuse_fakes=reuse_fakes)
        ds = gd.load("digits", batch_size=32, image_size=8, with_labels=True)
        history = trainer.fit(ds, 5, progress=False, every=5)
        assert trainer.replicas == 2, trainer.replicas
        assert trainer.step == 5 and len(history) == 5
        for key in history.keys():
            assert np.all(np.isfinite(history[key])), key
        for model in (g, d, trainer.ema):
            for v in model.weights:
                parts = [p.numpy() for p in v.value.values]
                assert len(parts) == 2 and np.array_equal(parts[0], parts[1]), v.path
        assert trainer.sample().shape == (64, 8, 8, 1)
    print("MIRRORED OK", history["d_loss"][-1])
""")


def test_mirrored_strategy_on_two_logical_cpus():
    out = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MIRRORED OK" in out.stdout
