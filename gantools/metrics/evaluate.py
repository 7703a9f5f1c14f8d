"""Putting a number on a generator: during training and afterwards.

* :func:`generate` draws images from a generator for a fixed seed (in batches).
* :func:`evaluate` gives KID (± standard error), optionally FID, and class coverage of a
  generator against a held-out set.
* :func:`real_floor` is KID between the train and test splits of a dataset: the value a
  perfect generator would get, up to noise. Compare your generator against it.
* :class:`MetricsCallback` does :func:`evaluate` every ``every`` steps of
  ``GANTrainer.fit`` on the EMA generator and records the results in the history's
  checks (``kid``, ``kid_std``, ``fid``, ``classes_covered``, ``class_kl``,
  ``conditional_accuracy``).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .coverage import class_coverage, conditional_accuracy
from .distances import fid, kid
from .extractors import ClassifierFeatures, FeatureExtractor


def generate(generator, num_samples: int, seed: int = 0, labels=None,
             batch_size: int = 256) -> np.ndarray:
    """``num_samples`` images from ``generator`` with z ~ N(0, I) drawn with ``seed``.

    For a conditional generator pass ``labels`` (an int array of length
    ``num_samples``); by default the classes are requested in turn.
    """
    latent_dim = int(generator.inputs[0].shape[-1])
    conditional = len(generator.inputs) > 1
    z = np.random.default_rng(seed).standard_normal((num_samples, latent_dim)).astype(np.float32)
    if conditional and labels is None:
        from ..models import num_classes_of

        labels = np.arange(num_samples) % num_classes_of(generator)
    out = []
    for s in range(0, num_samples, batch_size):
        zb = tf.constant(z[s:s + batch_size])
        inputs = [zb, tf.constant(np.asarray(labels)[s:s + batch_size], tf.int32)] \
            if conditional else zb
        out.append(generator(inputs, training=False).numpy())
    return np.concatenate(out)


@functools.lru_cache(maxsize=8)
def _named_extractor(dataset: str):
    """One extractor per bundled dataset and process: building the classifier and tracing
    its tf.functions again at every call cost about a second and warned of retracing."""
    from .extractors import classifier_features

    return classifier_features(dataset)


def _extractor(features):
    if isinstance(features, FeatureExtractor):
        return features
    if isinstance(features, str):
        return _named_extractor(features)
    raise ValueError(f"features must be a FeatureExtractor or a bundled dataset name, got "
                     f"{features!r}.")


def evaluate(generator, real_images, features="mnist5k", num_samples: int = 2000,
             seed: int = 0, with_fid: bool = False, block_size: int = 1000,
             num_classes: int | None = None) -> dict:
    """KID (and FID) of ``generator`` against ``real_images``, plus class coverage.

    ``real_images``: images in [-1, 1], a dataset of them, or their features already
    extracted (a 2-D array). ``features``: a feature extractor, or the name of a bundled
    dataset whose classifier to use. Class coverage (and, for conditional generators, the
    accuracy of the requested class) is reported when the extractor is a classifier.
    A conditional generator is asked for the classes in turn; ``num_classes`` says how
    many there are when its layers do not tell (see ``num_classes_of``).
    """
    extractor = _extractor(features)
    real = extractor(real_images) if not isinstance(real_images, np.ndarray) or \
        real_images.ndim == 4 else np.asarray(real_images)
    labels = None
    if len(generator.inputs) > 1:
        from ..models import num_classes_of

        labels = np.arange(num_samples) % (num_classes or num_classes_of(generator))
    samples = generate(generator, num_samples, seed=seed, labels=labels)
    fake = extractor(samples)
    k = kid(real, fake, block_size=block_size, seed=seed)
    result = {"kid": k.value, "kid_std": k.std_error, "num_samples": num_samples}
    if with_fid:
        result["fid"] = fid(real, fake)
    if isinstance(extractor, ClassifierFeatures):
        predicted = extractor.classify(samples)
        cov = class_coverage(predicted, extractor.num_classes)
        result.update(classes_covered=cov.classes_covered, num_classes=cov.num_classes,
                      class_kl=cov.kl_to_uniform)
        if labels is not None:
            result["conditional_accuracy"] = conditional_accuracy(predicted, labels)
    return result


def real_floor(dataset: str, features=None, num_samples: int = 2000, seed: int = 0,
               block_size: int = 1000, image_size: int | None = None) -> dict:
    """KID between the train and test splits of ``dataset`` (the noise floor).

    Uses up to ``num_samples`` images of each split and the dataset's bundled classifier
    features unless ``features`` is given.
    """
    import gantools.data as gd

    extractor = _extractor(features or dataset)
    n_train = min(num_samples, len(gd.arrays(dataset, "train", image_size=image_size)[0]))
    n_test = min(num_samples, len(gd.arrays(dataset, "test", image_size=image_size)[0]))
    train, _ = gd.arrays(dataset, "train", limit=n_train, seed=seed, image_size=image_size)
    test, _ = gd.arrays(dataset, "test", limit=n_test, seed=seed, image_size=image_size)
    k = kid(extractor(train), extractor(test), block_size=block_size, seed=seed)
    return {"kid": k.value, "kid_std": k.std_error, "train_images": n_train,
            "test_images": n_test}


class MetricsCallback:
    """A ``GANTrainer.fit`` callback: KID (± s.e.), FID, coverage of the EMA generator.

    The real features are extracted once; the samples come from the same seed every
    time, so successive values are comparable.
    """

    def __init__(self, real_images, features="mnist5k", num_samples: int = 1000,
                 seed: int = 0, with_fid: bool = False, verbose: bool = True):
        self.extractor = _extractor(features)
        self.real = self.extractor(real_images)
        self.with_fid = with_fid
        self.num_samples, self.seed, self.verbose = num_samples, seed, verbose
        self.results: list[dict] = []

    def __call__(self, trainer) -> None:
        model = trainer.ema if trainer.ema is not None else trainer.generator
        result = evaluate(model, self.real, self.extractor, self.num_samples, self.seed,
                          with_fid=self.with_fid)
        result["step"] = trainer.step
        self.results.append(result)
        for key in ("kid", "kid_std", "fid", "classes_covered", "class_kl",
                    "conditional_accuracy"):
            if key in result:
                trainer.history.add_check(key, trainer.step, result[key])
        if self.verbose:
            extra = (f", {result['classes_covered']}/{result['num_classes']} classes"
                     if "classes_covered" in result else "")
            print(f"[step {trainer.step}] KID {result['kid']:.4f} ± {result['kid_std']:.4f}"
                  + extra)
