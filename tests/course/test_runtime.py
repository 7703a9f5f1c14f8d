"""The course's environment (gantools.runtime) and its Jupyter kernel (gancourse.kernel):
oneDNN is on wherever the course runs TensorFlow, unless the user chose otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel

from gancourse import kernel
from gantools import runtime

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import os, json; from tensorflow.python.util import _pywrap_util_port as p; "
         "print(json.dumps([os.environ.get('TF_ENABLE_ONEDNN_OPTS'), bool(p.IsMklEnabled())]))")


def without_onednn_variable(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    return {**env, **extra}


def python(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_configure_sets_only_what_is_missing():
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert runtime.configure(env) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert env == {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_ENABLE_ONEDNN_OPTS": "1"}
    assert runtime.configure(env) == {}


@pytest.mark.parametrize("user, expected", [(None, ["1", True]), ("0", ["0", False])])
def test_importing_gantools_first_turns_onednn_on_unless_the_user_chose(user, expected):
    env = without_onednn_variable(**({} if user is None else {"TF_ENABLE_ONEDNN_OPTS": user}))
    assert python(f"import gantools; {PROBE}", env) == expected


def test_gantools_imported_after_tensorflow_changes_nothing():
    """TensorFlow has read the variable already: setting it then would only mislead."""
    env = without_onednn_variable()
    code = ("import tensorflow, os, json, gantools; "
            "print(json.dumps(os.environ.get('TF_ENABLE_ONEDNN_OPTS')))")
    assert python(code, env) is None


def test_onednn_state_reports_what_tensorflow_does():
    env = without_onednn_variable(TF_ENABLE_ONEDNN_OPTS="0")
    code = ("import gantools, json; from gantools.runtime import onednn_state, describe_onednn;"
            "s = onednn_state(); print(json.dumps([s['enabled'], s['variable'], "
            "describe_onednn()]))")
    enabled, variable, line = python(code, env)
    assert (enabled, variable) == (False, "0")
    assert line.startswith("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0; this CPU's default: ")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_vnni\n\nflags\t\t: other\n")
    assert runtime.cpu_flags(str(info)) == {"fpu", "avx2", "avx512_vnni"}
    assert runtime.cpu_flags(str(tmp_path / "absent")) == set()


def run_in_kernel(code, env):
    km, kc = start_new_kernel(kernel_name=kernel.KERNEL_NAME, env=env)
    try:
        texts = []
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: texts.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        return json.loads("".join(texts).strip().splitlines()[-1])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("user, expected", [(None, ["1", True]), ("0", ["0", False])])
def test_the_course_kernel_turns_onednn_on_before_the_first_cell(user, expected):
    """The first cell imports TensorFlow before anything of gantools."""
    kernel.ensure_installed()
    env = without_onednn_variable(**({} if user is None else {"TF_ENABLE_ONEDNN_OPTS": user}))
    assert run_in_kernel(PROBE, env) == expected


def test_the_kernel_spec_starts_this_python_and_leaves_the_environment_to_it(tmp_path):
    folder = Path(kernel.install(prefix=str(tmp_path)))
    spec = json.loads((folder / "kernel.json").read_text())
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / kernel.KERNEL_NAME
    assert spec["argv"] == [sys.executable, "-m", "gancourse.kernel", "-f", "{connection_file}"]
    assert "env" not in spec  # Jupyter would let it override the user's own value
    assert (folder / "logo-64x64.png").is_file()


def test_every_course_notebook_names_the_course_kernel():
    notebooks = sorted(ROOT.glob("course/source/*/*.ipynb")) + sorted(
        ROOT.glob("solutions/*.ipynb"))
    assert notebooks
    for path in notebooks:
        spec = nbformat.read(path, as_version=4).metadata.kernelspec
        assert spec == kernel.metadata(), path


def test_nbgrader_runs_the_course_kernel():
    config = (ROOT / "course" / "nbgrader_config.py").read_text()
    for traitlet in ("c.Execute.kernel_name", "c.SandboxedExecute.kernel_name"):
        assert f'{traitlet} = "{kernel.KERNEL_NAME}"' in config


COMPILED_LEAKY_STEP = """
import sys
import gantools
from gancourse.modes import quiet_tensorflow_import
quiet_tensorflow_import()
import keras
import tensorflow as tf
if sys.argv[1] == "remapper on":
    tf.config.optimizer.set_experimental_options({"remapping": True})
D = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same"),
                      keras.layers.LeakyReLU(0.2), keras.layers.Flatten(), keras.layers.Dense(1)])
opt = keras.optimizers.Adam()

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(D(x, training=True))
    grads = tape.gradient(loss, D.trainable_variables)
    opt.apply_gradients(zip(grads, D.trainable_variables))
    return loss

print(float(step(tf.ones((2, 8, 8, 1)))))
"""


@pytest.mark.parametrize("mode", ["remapper on", "course"])
def test_a_compiled_leaky_relu_step_prints_no_grappler_error_in_the_course(mode):
    """A conv + LeakyReLU discriminator's compiled step makes grappler's remapper fail with
    an E-level line on stderr (the control), which a notebook would show under its
    training cell; the course's set-up turns the remapper off and the line with it."""
    proc = subprocess.run([sys.executable, "-c", COMPILED_LEAKY_STEP, mode],
                          capture_output=True, text=True, timeout=120, check=True)
    assert ("remapper failed" in proc.stderr) == (mode == "remapper on"), proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_in_notebook_is_true_only_where_a_kernel_is_attached(monkeypatch):
    """The trainer's progress bar and the live dashboard both ask runtime.in_notebook."""
    import IPython

    from gantools.training import trainer
    from gantools.viz import live

    assert not runtime.in_notebook()  # pytest: no ipykernel shell
    assert trainer.runtime.in_notebook is runtime.in_notebook
    assert live.in_notebook is runtime.in_notebook

    class Shell:
        kernel = None

    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel", object()))
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert not runtime.in_notebook()  # terminal IPython: a shell without a kernel
    Shell.kernel = object()
    assert runtime.in_notebook()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not runtime.in_notebook()


def test_a_kernel_of_the_course_reports_that_it_is_a_notebook():
    kernel.ensure_installed()
    code = "import json; from gantools import runtime; print(json.dumps(runtime.in_notebook()))"
    assert run_in_kernel(code, dict(os.environ)) is True
