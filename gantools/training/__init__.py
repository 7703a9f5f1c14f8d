"""The GAN training loop, EMA, history and diagnostics.

>>> import gantools.data as gd, gantools.models as gm
>>> g = gm.mlp_generator(latent_dim=4, hidden=(16,))
>>> d = gm.mlp_discriminator(hidden=(16,))
>>> trainer = GANTrainer(g, d, loss="non-saturating", seed=0)
>>> history = trainer.fit(gd.load("ring", batch_size=32), steps=3, progress=False)
>>> len(history["d_loss"]), trainer.step
(3, 3)
"""

from .diagnostics import Diagnostician, diversity
from .ema import clone_generator, ema_update
from .engine import GANTrainer, TrainingDiverged, num_classes_of, resolve_loss
from .history import METRICS, History

__all__ = [
    "METRICS", "Diagnostician", "GANTrainer", "History", "TrainingDiverged", "clone_generator",
    "diversity", "ema_update", "num_classes_of", "resolve_loss",
]
