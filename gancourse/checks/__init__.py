"""The checks that test cells call. This package runs in the student's kernel.

A test cell gets the checks of its notebook with::

    from gancourse.checks import load
    load("01_basic_gan").check_discriminator_loss(discriminator_loss)

:func:`load` compiles ``harness.py`` (with ``evidence.py``, which it imports, and
``tripwire.py``, which it compiles itself) and the notebook's checks module
``notebooks/nb<assignment>.py`` afresh from their source files on every call (never from
``__pycache__``), into a private package that ``sys.modules`` holds only while they load.
Patches a notebook makes to an imported copy of gantools (a rebound reference, a replaced
helper) therefore cannot change what the checks expect. ``docs/writing-checks.md`` says
how a check is written.
"""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKS = HERE / "notebooks"
FRESH = ("evidence", "harness")  # the modules a checks module may import, in load order
_counter = itertools.count()


def checks_file(assignment: str) -> Path:
    """The checks module of an assignment: ``notebooks/nb<assignment>.py``."""
    return CHECKS / f"nb{assignment}.py"


def assignments_with_checks() -> list[str]:
    return sorted(p.stem[2:] for p in CHECKS.glob("nb*.py"))


def _module(name: str, path: Path | None, package: bool = False) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__package__ = name if package else name.rpartition(".")[0]
    if package:
        module.__path__ = [str(path)]
    elif path is not None:
        module.__file__ = str(path)
    return module


def _exec(module: types.ModuleType, path: Path) -> None:
    exec(compile(path.read_bytes(), str(path), "exec"), vars(module))  # noqa: S102


def load(assignment: str) -> types.ModuleType:
    """A fresh copy of the checks of ``assignment`` (e.g. ``"01_basic_gan"``).

    Relative imports inside the checks module (``from ..harness import ...``) resolve to
    the fresh harness loaded alongside it. Every ``check_*`` function is declared with the
    harness's :func:`~gancourse.checks.harness.check` decorator, which arms the tripwire
    from its first line to its last.
    """
    path = checks_file(assignment)
    if not path.is_file():
        known = ", ".join(assignments_with_checks()) or "none"
        raise LookupError(f"no checks for assignment {assignment!r} (expected {path}); "
                          f"assignments with checks: {known}")
    root = f"_gantools_grading_{next(_counter)}"
    modules = {
        root: _module(root, HERE, package=True),
        f"{root}.notebooks": _module(f"{root}.notebooks", CHECKS, package=True),
    }
    for name in FRESH:
        modules[f"{root}.{name}"] = _module(f"{root}.{name}", HERE / f"{name}.py")
        setattr(modules[root], name, modules[f"{root}.{name}"])
    modules[root].notebooks = modules[f"{root}.notebooks"]
    checks = _module(f"{root}.notebooks.{path.stem}", path)
    modules[checks.__name__] = checks
    sys.modules.update(modules)
    try:
        for name in FRESH:
            _exec(modules[f"{root}.{name}"], HERE / f"{name}.py")
        _exec(checks, path)
    finally:
        for name in modules:
            sys.modules.pop(name, None)
    return checks
