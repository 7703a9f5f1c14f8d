"""The GAN training loop, EMA, history and diagnostics, a file per idea: ``trainer.py``
(:class:`GANTrainer`: options, compiled steps, checkpoints, the loop), ``steps.py`` (the
maths of one step), ``interrupt.py`` (Ctrl-C held until a safe point), ``ema.py``,
``history.py``, ``diagnostics.py``. (``resolve_loss`` lives with the losses registry and
``num_classes_of`` with the models; both are re-exported here.)

>>> import gantools.data as gd, gantools.models as gm
>>> g = gm.mlp_generator(latent_dim=4, hidden=(16,))
>>> d = gm.mlp_discriminator(hidden=(16,))
>>> trainer = GANTrainer(g, d, loss="non-saturating", seed=0)
>>> history = trainer.fit(gd.load("ring", batch_size=32), steps=3, progress=False)
>>> len(history["d_loss"]), trainer.step
(3, 3)
"""

from ..losses import resolve_loss
from ..models import num_classes_of
from .diagnostics import Diagnostician, diversity
from .ema import clone_generator, ema_update
from .history import METRICS, History
from .trainer import GANTrainer, TrainingDiverged

__all__ = [
    "METRICS", "Diagnostician", "GANTrainer", "History", "TrainingDiverged", "clone_generator",
    "diversity", "ema_update", "num_classes_of", "resolve_loss",
]
