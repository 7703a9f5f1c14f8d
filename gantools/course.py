"""Helpers the course notebooks share: training budgets and the notebook's setup.

Every notebook has a **full mode** (the default: convincing results in minutes on a
2-core CPU) and a **short mode** (a few steps, so the whole notebook runs in seconds).
Short mode is on while nbgrader executes a notebook (it sets ``NBGRADER_EXECUTION``
during autograde and validate) or when ``GANCOURSE_SHORT=1`` (the test suite sets it).
Notebooks ask for their budgets through :func:`budget` instead of writing their own
``if``:

>>> budget(1500, short=10) in (1500, 10)
True
"""

from __future__ import annotations

import os

from . import runtime


def short_mode() -> bool:
    """True while nbgrader executes the notebook or when GANCOURSE_SHORT is set."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return True
    return os.environ.get("GANCOURSE_SHORT", "").strip().lower() in {"1", "true", "yes"}


def budget(full, short):
    """``full`` normally, ``short`` in short mode (steps, sample counts, epochs...)."""
    return short if short_mode() else full


def describe_mode() -> str:
    return ("SHORT mode (a few steps, for grading and tests; results will look unfinished)"
            if short_mode() else "FULL mode")


def quiet_tensorflow_import() -> None:
    """Import TensorFlow and Keras with their C++ start-up log lines silenced.

    Those lines (oneDNN notices, "could not find cuda drivers") are written to file
    descriptor 2 before any logging setting takes effect, so file descriptor 2 points
    at /dev/null while the import runs. Python exceptions still propagate. Grappler's
    remapper, whose failures would print an error line under every compiled training
    step, is switched off (:func:`gantools.runtime.quiet_grappler` says why that costs
    nothing).
    """
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow as tf

        tf.constant(0.0)  # device initialization logs here too
        runtime.quiet_grappler()  # and compiled training steps later
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def compiled(fn, **options):
    """``tf.function(fn, **options)`` in full mode, ``fn`` itself in short mode.

    Tracing a training step into a graph costs seconds (2 to 5 s for this course's steps on
    2 cores): more than the handful of steps short mode runs, so short mode runs them
    eagerly. Both compute the same thing; only the speed differs.
    """
    if short_mode():
        return fn
    import tensorflow as tf

    return tf.function(fn, **options)
