"""Live pictures during training: a dashboard that updates in place in JupyterLab.

:class:`LiveDashboard` is a training callback. In a notebook it shows the current sample
grid (from the fixed latent batch, so pictures over time are comparable) and the
training curves, replaced in place every time it is called. It updates ordinary display
outputs rather than widgets, so a notebook executed without a browser (the course's
solutions, nbgrader's feedback) keeps the pictures as training ended. Its outputs are
shown when it is created, before ``fit`` starts the progress bar, so that the pictures sit
above the bar (``tests/course/test_browser.py`` looks at the page).
Outside a notebook it saves the same two figures as PNG files in the folder it is given
(``samples.png`` and ``curves.png``, overwritten) and prints where they are; given no
folder, it writes nothing and prints one line per call.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..runtime import in_notebook
from .images import image_grid
from .plots import plot_history, scatter_2d


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def sample_figure(trainer, centres=None, sigma=None, real=None):
    """The trainer's current samples: an image grid, or a scatter plot for 2-D points."""
    samples = trainer.sample()
    if samples.ndim == 2:
        return scatter_2d(samples, real=real, centres=centres, sigma=sigma,
                          title=f"step {trainer.step}")
    return image_grid(samples, title=f"step {trainer.step}")


class LiveDashboard:
    """Training callback showing samples and curves, updated in place.

    Args:
        out_dir: outside a notebook, the folder to write ``samples.png`` and ``curves.png``
            to; default None: nothing is written (a line per call says the step).
        centres, sigma, real: for 2-D data, the mode centres, σ and real points to plot.
        notebook: force the widget (True) or the file fallback (False); default: detect.
    """

    def __init__(self, out_dir=None, centres=None, sigma=None, real=None, notebook=None):
        self.notebook = in_notebook() if notebook is None else notebook
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.centres, self.sigma = centres, sigma
        self.real = None if real is None else np.asarray(real)
        self._handles = None
        self.updates = 0
        if self.notebook:  # now, above the progress bar that fit is about to start
            self._show_placeholders()

    def _show_placeholders(self):
        from IPython import display as ipd

        placeholders = [ipd.HTML("<b>waiting for the first pictures</b>"), ipd.HTML(""),
                        ipd.HTML("")]
        self._handles = [ipd.display(o, display_id=True) for o in placeholders]

    def _show(self, step, samples, curves):
        """Replace the status line and both pictures shown by the constructor."""
        from IPython import display as ipd

        if self._handles is None:  # ``notebook`` switched on after construction
            self._show_placeholders()
        outputs = [ipd.HTML(f"<b>step {step}</b>"), ipd.Image(data=samples, format="png"),
                   ipd.Image(data=curves, format="png") if curves else ipd.HTML("")]
        for handle, output in zip(self._handles, outputs, strict=True):
            handle.update(output)

    def __call__(self, trainer) -> None:
        if not self.notebook and self.out_dir is None:
            self.updates += 1
            print(f"[step {trainer.step}] no pictures shown outside a notebook; "
                  "LiveDashboard(out_dir=...) saves them")
            return
        samples = _png(sample_figure(trainer, self.centres, self.sigma, self.real))
        curves = _png(plot_history(trainer.history)) if len(trainer.history) > 1 else None
        self.updates += 1
        if self.notebook:
            self._show(trainer.step, samples, curves)
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "samples.png").write_bytes(samples)
        if curves is not None:
            (self.out_dir / "curves.png").write_bytes(curves)
        print(f"[step {trainer.step}] pictures updated in {self.out_dir}/")
