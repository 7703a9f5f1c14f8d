"""Autograding support: the checks that test cells call, and nbgrader plug-ins.

A test cell gets the checks with::

    from gantools.grading import load
    load().check_discriminator_loss(discriminator_loss)

:func:`load` compiles ``gantools/grading/checks.py`` afresh from disk on every call, so
patches a notebook makes to an imported copy of gantools (a rebound reference, a
replaced helper) cannot change what the checks expect. The nbgrader plug-ins in
:mod:`gantools.grading.nbgrader_ext` flag answer cells that tamper with gantools at
autograde time and keep hidden tests out of the feedback.
"""

import importlib.util
from pathlib import Path

_CHECKS = Path(__file__).resolve().parent / "checks.py"


def load():
    """A fresh copy of :mod:`gantools.grading.checks`, compiled from disk."""
    spec = importlib.util.spec_from_file_location("_gantools_grading_checks", _CHECKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
