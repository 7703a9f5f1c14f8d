"""gantools: the helper library of the GAN course.

Modules: :mod:`gantools.data` (datasets), :mod:`gantools.models` (DCGAN, conditional
and 2-D models, minibatch layers, spectral normalization), :mod:`gantools.losses`
(adversarial losses, penalties, weight clipping, a registry of loss pairs).
"""

__version__ = "0.1.0"
