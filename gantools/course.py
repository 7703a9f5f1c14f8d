"""Compatibility alias: the notebooks' full/short budgets moved to :mod:`gancourse.modes`.

Notebooks released before the move import ``from gantools.course import budget, ...`` in
their setup cells; this thin re-export keeps them running until the instructor
re-releases. Importing :mod:`gantools` does not import this.
"""

from gancourse.modes import budget, compiled, describe_mode, quiet_tensorflow_import, short_mode

__all__ = ["budget", "compiled", "describe_mode", "quiet_tensorflow_import", "short_mode"]
