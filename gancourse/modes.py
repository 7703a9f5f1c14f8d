"""Helpers the course notebooks share: training budgets and the notebook's setup.

Every notebook has a **full mode** (the default: convincing results in minutes on a
2-core CPU) and a **short mode** (a few steps, so the whole notebook runs in seconds).
Short mode is on while nbgrader executes a notebook (it sets ``NBGRADER_EXECUTION``
during autograde and validate) or when ``GANCOURSE_SHORT=1`` (the test suite sets it).
Notebooks ask for their budgets through :func:`budget` instead of writing their own
``if``. In short mode, importing this module also tells the library to run
:class:`gantools.training.GANTrainer`'s steps eagerly (``GANTOOLS_EAGER_STEPS=1``, unless
already set), as :func:`compiled` does for a notebook's own steps: tracing costs more than
the few steps short mode runs.

>>> budget(1500, short=10) in (1500, 10)
True
"""

from __future__ import annotations

import os

from gantools.runtime import EAGER_STEPS, quiet_tensorflow_import

__all__ = ["budget", "compiled", "describe_mode", "quiet_tensorflow_import", "short_mode"]


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


if short_mode():  # the library's own setting; a value already set is kept
    os.environ.setdefault(EAGER_STEPS, "1")
