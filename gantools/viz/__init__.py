"""Pictures for the course: image grids, curves, interpolations, neighbours, live views.

>>> import numpy as np
>>> tile(np.zeros((4, 8, 8, 1)), ncols=2).shape  # 2×2 grid with 1-pixel grey padding
(19, 19, 3)
"""

from .images import (
    as_unit,
    image_grid,
    interpolate_latents,
    interpolation_strip,
    nearest_neighbours,
    plot_nearest_neighbours,
    save_grid,
    tile,
)
from .live import LiveDashboard, in_notebook, sample_figure
from .plots import (
    plot_confusion,
    plot_critic_surface,
    plot_history,
    plot_kid_bars,
    scatter_2d,
    smooth,
)

__all__ = [
    "LiveDashboard", "as_unit", "image_grid", "in_notebook", "interpolate_latents",
    "interpolation_strip", "nearest_neighbours", "plot_confusion", "plot_critic_surface",
    "plot_history", "plot_kid_bars", "plot_nearest_neighbours", "sample_figure", "save_grid",
    "scatter_2d", "smooth", "tile",
]
