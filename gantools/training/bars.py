"""The progress bar of a training loop: tqdm, drawn in a notebook as one text output
replaced in place (as :class:`~gantools.training.GANTrainer` draws its own), so a saved
notebook keeps the bar's final line only; on a terminal, tqdm's own; in a log file, a line
every 15 s."""

from __future__ import annotations

import sys

from .. import runtime


def progress_bar(total: int, progress: bool = True, desc: str = "training"):
    """A tqdm bar of ``total`` steps (disabled when ``progress`` is false)."""
    from tqdm import tqdm

    from .trainer import _NotebookLine

    notebook = progress and runtime.in_notebook()
    interactive = sys.stderr.isatty() or notebook
    return tqdm(total=total, disable=not progress, desc=desc, unit="step",
                dynamic_ncols=not notebook, mininterval=0.2 if interactive else 15.0,
                file=_NotebookLine() if notebook else sys.stderr)
