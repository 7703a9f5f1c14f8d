"""Model builders and layers for the course.

>>> g = dcgan_generator(image_size=16, channels=1, latent_dim=32, width=16)
>>> d = dcgan_discriminator(image_size=16, channels=1, width=16)
>>> import numpy as np
>>> images = g(np.zeros((2, 32), "float32"))
>>> tuple(images.shape), tuple(d(images).shape)
((2, 16, 16, 1), (2, 1))
"""

from .dcgan import check_compatible, dcgan_discriminator, dcgan_generator
from .layers import (
    LabelPlanes,
    MinibatchDiscrimination,
    MinibatchStdDev,
    OneHot,
    SpectralNorm,
    num_classes_of,
    spectral_normalize,
)
from .mlp import mlp_discriminator, mlp_generator

__all__ = [
    "LabelPlanes", "MinibatchDiscrimination", "MinibatchStdDev", "OneHot", "SpectralNorm",
    "check_compatible", "dcgan_discriminator", "dcgan_generator", "mlp_discriminator",
    "mlp_generator", "num_classes_of", "spectral_normalize",
]
