"""Verdicts the kernel cannot forge: what a check reports to nbgrader's process.

The checks that compare values (``VERIFIED`` in a checks module) send, while autograding,
what the student's code returned on their inputs; the hidden inputs are seeded by a nonce
the grader puts into the test cell, which student code, running before it, cannot know.
:class:`gancourse.autograde.plugins.VerifyValues` then recomputes the reference values
in nbgrader's process and compares with the same :func:`agree`. A kernel whose NumPy or
TensorFlow was patched to make its own comparisons pass thus earns nothing: to forge the
record it would need the right values for inputs it never saw.

This module is light (NumPy only): nbgrader's process imports it at every command.
"""

from __future__ import annotations

import os

import numpy as np

EVIDENCE = "application/vnd.gantools.evidence+json"


def agree(got: float, want: float) -> bool:
    """A student's value against the reference: rtol 1e-4, atol 1e-5, finite.

    The values are float32 losses of at most a few hundred terms (about 1e-6 relative
    error, whichever order the sums run in); a wrong formula differs by far more.
    """
    return bool(np.isfinite(got) and np.isclose(got, want, rtol=1e-4, atol=1e-5))


def report_values(check: str, hidden: bool, seed: int, values) -> None:
    """While autograding, send what the student's code returned to nbgrader's process."""
    if os.environ.get("NBGRADER_EXECUTION") != "autograde":
        return
    from IPython.display import display

    record = {"check": check, "hidden": bool(hidden), "seed": int(seed),
              "values": [float(v) for v in values]}
    display({EVIDENCE: record, "text/plain": ""}, raw=True)
