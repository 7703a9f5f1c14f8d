"""Compatibility alias: the checks moved to :mod:`gancourse.checks`.

Notebooks released before the move call ``from gantools.grading import load`` in their
test cells; this thin re-export keeps them gradable until the instructor re-releases.
New notebooks import ``gancourse.checks``. Importing :mod:`gantools` does not import this.
"""

from gancourse.checks import assignments_with_checks, checks_file, load

__all__ = ["assignments_with_checks", "checks_file", "load"]
