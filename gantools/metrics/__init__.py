"""Putting numbers on generated samples: KID, FID, feature extractors, coverage.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.standard_normal((500, 16)), rng.standard_normal((400, 16))
>>> result = kid(a, b)   # same distribution: KID ≈ 0 within its error, may be negative
>>> abs(result.value) < 3 * result.std_error
True
>>> abs(fid(a, a)) < 1e-9  # 0 up to float64 rounding, which may even come out as -0.0
True
"""

from .coverage import (
    ClassCoverage,
    ModeCoverage,
    class_coverage,
    conditional_accuracy,
    kl_to_uniform,
    mode_coverage,
)
from .distances import (
    KID,
    Gaussian,
    fid,
    fid_from_gaussians,
    fit_gaussian,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
    trace_sqrt_product,
)
from .evaluate import MetricsCallback, evaluate, generate, real_floor
from .extractors import (
    ClassifierFeatures,
    FeatureExtractor,
    check_images,
    classifier_features,
    inception_v3,
    model_features,
)
from .fidelity import (
    confusion_matrix,
    label_accuracy,
    legibility,
    per_class_accuracy,
    real_label_accuracy,
    small_classifier,
    train_and_test,
    train_on_generated,
)

__all__ = [
    "KID", "ClassCoverage", "ClassifierFeatures", "FeatureExtractor", "Gaussian",
    "MetricsCallback", "ModeCoverage", "check_images", "class_coverage", "classifier_features",
    "conditional_accuracy", "confusion_matrix", "evaluate", "fid", "fid_from_gaussians",
    "fit_gaussian", "generate",
    "inception_v3", "kid", "kl_to_uniform", "label_accuracy", "legibility", "mmd2_unbiased",
    "mode_coverage",
    "model_features", "per_class_accuracy", "polynomial_kernel", "real_floor",
    "real_label_accuracy", "small_classifier", "trace_sqrt_product", "train_and_test",
    "train_on_generated",
]
