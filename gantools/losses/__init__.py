"""Reference GAN losses, penalties and constraints (formulas in each docstring).

Convention: D outputs logits, real = 1, fake = 0, every loss is minimized.

>>> import numpy as np
>>> round(float(non_saturating_generator_loss(np.zeros(4, "float32"))), 4)  # log 2
0.6931
"""

from .adversarial import (
    bce_with_logits,
    discriminator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from .features import default_feature_layers, feature_extractor, feature_matching_loss
from .penalties import (
    WeightClip,
    check_per_example,
    clip_model_weights,
    gradient_penalty,
    interpolate,
    r1_penalty,
)
from .registry import LossPair, get_loss, loss_names, register_loss, resolve_loss

__all__ = [
    "LossPair", "WeightClip", "bce_with_logits", "check_per_example", "clip_model_weights",
    "default_feature_layers", "discriminator_loss", "feature_extractor",
    "feature_matching_loss", "get_loss", "gradient_penalty", "hinge_discriminator_loss",
    "hinge_generator_loss", "interpolate", "least_squares_discriminator_loss",
    "least_squares_generator_loss", "loss_names", "minimax_generator_loss",
    "non_saturating_generator_loss", "r1_penalty", "register_loss", "resolve_loss",
    "wasserstein_critic_loss", "wasserstein_generator_loss",
]
