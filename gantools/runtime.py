"""The environment every part of the course runs TensorFlow in: oneDNN on.

TensorFlow's x86 builds contain the oneDNN kernels for convolutions and matrix products,
but switch them on by default only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX. On the
others (AMD Zen 2 and 3, Intel consumer chips since Alder Lake) convolutions take the
slower default kernels: the course's 32×32 DCGAN step runs about 1.9× slower with oneDNN
off (``benchmarks/bench_training.py`` measures both, side by side). The switch is the
environment variable ``TF_ENABLE_ONEDNN_OPTS``, which TensorFlow reads once, when it is
imported.

:data:`COURSE_ENVIRONMENT` is what the course sets, and :func:`configure` sets it without
overriding a value the user chose (``TF_ENABLE_ONEDNN_OPTS=0`` turns oneDNN off, for
instance to compare). It runs

* when ``gantools`` is imported, if TensorFlow is not imported yet (the notebooks, the
  command line, the pipeline, the benchmarks and the tests all import gantools first);
* in the course's Jupyter kernel, ``gan-course`` (:mod:`gancourse.kernel`), before any cell,
  so a notebook that imports TensorFlow first gets it too; JupyterLab, nbgrader, the
  pipeline and the sandboxed grading kernel all use that kernel;
* in the Makefile, which exports the same values.

>>> env = {"TF_ENABLE_ONEDNN_OPTS": "0"}
>>> sorted(configure(env))  # what it added; the user's 0 stays
['TF_CPP_MIN_LOG_LEVEL']
>>> env["TF_ENABLE_ONEDNN_OPTS"], env["TF_CPP_MIN_LOG_LEVEL"]
('0', '2')
"""

from __future__ import annotations

import os
import sys

#: Set unless the user set them: oneDNN kernels on, and TensorFlow's C++ INFO and WARNING
#: lines off (errors still show).
COURSE_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}

#: The CPU features for which TensorFlow turns oneDNN on by itself.
ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def configure(environ=None) -> dict[str, str]:
    """Put :data:`COURSE_ENVIRONMENT` into ``environ`` (default ``os.environ``) where a
    variable is not set yet; returns the variables it set."""
    environ = os.environ if environ is None else environ
    added = {k: v for k, v in COURSE_ENVIRONMENT.items() if k not in environ}
    environ.update(added)
    return added


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is absent)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as Linux reports it ("unknown CPU" where it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def onednn_state() -> dict:
    """Whether this process's TensorFlow uses oneDNN, and why.

    Returns ``enabled`` (TensorFlow's own answer; imports TensorFlow), ``variable`` (the
    value of ``TF_ENABLE_ONEDNN_OPTS`` or None), ``default_on`` (whether this CPU would
    have it on without the variable) and ``flags`` (the CPU's relevant flags, or
    ``["unknown"]`` where the flags cannot be read).
    """
    from tensorflow.python.util import _pywrap_util_port

    flags = cpu_flags()
    relevant = sorted(f for f in flags if f in ONEDNN_DEFAULT_FLAGS or f.startswith("avx"))
    return {
        "enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "variable": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "default_on": bool(flags & set(ONEDNN_DEFAULT_FLAGS)) if flags else None,
        "flags": relevant if flags else ["unknown"],
    }


def describe_onednn() -> str:
    """One line on the oneDNN state, for benchmark headers and bug reports."""
    s = onednn_state()
    by = ("the CPU's default" if s["variable"] is None
          else f"TF_ENABLE_ONEDNN_OPTS={s['variable']}")
    default = {True: "on", False: "off", None: "unknown"}[s["default_on"]]
    return (f"oneDNN {'on' if s['enabled'] else 'off'} ({by}; this CPU's default: {default}); "
            f"CPU flags: {' '.join(s['flags']) or 'no AVX'}")


def quiet_grappler() -> None:
    """Switch off grappler's remapper, whose failures print an E-level line to stderr.

    On the course's discriminators (a LeakyReLU after a bias), the remapper's fusion of the
    activation's gradient fails in every compiled training step and it writes
    ``remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '...LeakyReluGrad'``
    to file descriptor 2, where a notebook shows it as an error under the training cell.
    A failed remapper pass is discarded, so those graphs run without it anyway; where it
    succeeds it gained nothing measurable here (a compiled 16×16 DCGAN step 59.7 against
    60.7 ms, sampling 512 images 41.7 against 40.1 ms, the digit classifier on 1,000
    images 211.7 against 212.9 ms, on and off side by side on 2 cores). Imports
    TensorFlow.
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"remapping": False})


def tensorflow_imported() -> bool:
    return "tensorflow" in sys.modules


#: Set to 1, :class:`gantools.training.GANTrainer` runs its training steps eagerly instead of
#: tracing them with ``tf.function`` (the course's short mode sets it: tracing a step costs
#: 2 to 5 s on 2 cores, more than a handful of steps). Both compute the same.
EAGER_STEPS = "GANTOOLS_EAGER_STEPS"


def eager_steps() -> bool:
    """Whether :data:`EAGER_STEPS` asks for eager training steps."""
    return os.environ.get(EAGER_STEPS, "").strip().lower() in {"1", "true", "yes"}


def quiet_tensorflow_import() -> None:
    """Import TensorFlow and Keras with their C++ start-up log lines silenced.

    Those lines (oneDNN notices, "could not find cuda drivers") are written to file
    descriptor 2 before any logging setting takes effect, so file descriptor 2 points
    at /dev/null while the import runs. Python exceptions still propagate. Grappler's
    remapper, whose failures would print an error line under every compiled training
    step, is switched off (:func:`quiet_grappler` says why that costs
    nothing).
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow as tf

        tf.constant(0.0)  # device initialization logs here too
        quiet_grappler()  # and compiled training steps later
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def in_notebook() -> bool:
    """True in a Jupyter kernel (IPython with a kernel attached: JupyterLab, Notebook,
    VS Code, nbgrader's executions), False in a terminal IPython, a script or pytest."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
