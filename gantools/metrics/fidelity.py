"""Does a conditional generator draw the class it is asked for?

* :func:`label_accuracy` asks a conditional generator for every class in turn and lets the
  bundled classifier of the dataset say which class each image shows (the "GAN-test" of
  Shmelkov et al., 2018): the overall and per-class accuracy and the confusion matrix.
  :func:`real_label_accuracy` is the same measurement on real images, the ceiling.
* :func:`legibility` asks how many images the classifier reads as one digit without doubt:
  the fraction it gives one class a probability of at least 0.9. It needs no generator,
  so it is measured on real test images too (the ceiling to quote beside every figure).
* :func:`train_on_generated` is the reverse test ("train on generated, test on real", the
  classification accuracy score of Ravuri & Vinyals, 2019): a small classifier trained only
  on generated images, tested on the real test split. Trained on real images instead
  (:func:`train_and_test`), it gives the accuracy to compare with.

>>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], num_classes=3).tolist()
[[1, 1, 0], [0, 1, 0], [0, 1, 0]]
"""

from __future__ import annotations

import numpy as np


def _labels(x, name):
    x = np.asarray(x).reshape(-1)
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be integer class labels, got dtype {x.dtype}.")
    return x.astype(np.int64)


def confusion_matrix(requested, predicted, num_classes: int) -> np.ndarray:
    """Counts ``C[r, p]``: images requested (or labelled) ``r`` and classified ``p``."""
    requested, predicted = _labels(requested, "requested"), _labels(predicted, "predicted")
    if requested.shape != predicted.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(requested)} labels.")
    for name, x in (("requested", requested), ("predicted", predicted)):
        if x.size and (x.min() < 0 or x.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in [0, {num_classes}), got "
                             f"[{x.min()}, {x.max()}].")
    return np.bincount(requested * num_classes + predicted,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """The diagonal over the row sums: accuracy for each requested class (NaN if none)."""
    confusion = np.asarray(confusion, np.float64)
    rows = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(confusion) / rows, np.nan)


def _summary(requested, predicted, num_classes):
    confusion = confusion_matrix(requested, predicted, num_classes)
    return {"accuracy": float(np.trace(confusion) / confusion.sum()),
            "per_class": per_class_accuracy(confusion), "confusion": confusion}


def _classifier(dataset):
    from .evaluate import _named_extractor

    return _named_extractor(dataset)


def label_accuracy(generator, dataset: str = "mnist5k", per_class: int = 100, seed: int = 0,
                   num_classes: int | None = None, batch_size: int = 256) -> dict:
    """Ask ``generator`` for ``per_class`` images of each class; classify them.

    Returns ``accuracy`` (fraction classified as requested), ``per_class`` accuracies, the
    ``confusion`` matrix (requested × predicted), and the ``images`` and ``labels``.
    """
    from .evaluate import generate

    if len(getattr(generator, "inputs", None) or []) < 2:
        raise ValueError("label_accuracy needs a conditional generator, one that takes "
                         "[z, labels].")
    classifier = _classifier(dataset)
    if num_classes is None:
        from ..models import num_classes_of

        num_classes = num_classes_of(generator)
    if num_classes != classifier.num_classes:
        raise ValueError(f"the generator has {num_classes} classes, the {dataset} classifier "
                         f"{classifier.num_classes}.")
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}.")
    labels = np.tile(np.arange(num_classes), per_class)
    images = generate(generator, len(labels), seed=seed, labels=labels, batch_size=batch_size)
    result = _summary(labels, classifier.classify(images), num_classes)
    result.update(images=images, labels=labels)
    return result


LEGIBLE = 0.9


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64, shifted by each row's maximum so it cannot overflow."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def legibility(images, dataset: str = "mnist5k", threshold: float = LEGIBLE,
               batch_size: int = 256) -> float:
    """The fraction of ``images`` that the bundled classifier of ``dataset`` assigns to one
    class with probability ≥ ``threshold`` (0.9 by default).

    A legible digit is one the classifier reads without doubt; a blob between two digits,
    a smudge or noise spreads its probability and does not count. Real test digits of
    ``mnist5k`` score about 0.98 (``gantools/metrics/weights/classifiers.json`` records the
    value): quote it beside the generator's. A classifier trained on digits alone would call
    uniform noise a digit with probability above 0.9, so the shipped one was also trained
    to give junk (noise, blobs, jigsawed and blended digits) no class
    (:func:`gantools.metrics.classifiers.junk`); only such a classifier is accepted.
    """
    from .classifiers import DOUBTING
    from .extractors import check_images

    if dataset not in DOUBTING:
        raise ValueError(f"legibility needs a classifier trained to doubt images that are not "
                         f"one class; the shipped {', '.join(DOUBTING)} classifier is, the "
                         f"{dataset!r} one is not (it calls uniform noise a class with "
                         "probability above 0.9). Use dataset='mnist5k'.")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or \
            not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability strictly between 0 and 1, got "
                         f"{threshold!r}.")
    x = check_images(images)
    probs = softmax(_classifier(dataset).logits(x, batch_size))
    return float(np.mean(probs.max(axis=1) >= threshold))


def real_label_accuracy(images, labels, dataset: str = "mnist5k") -> dict:
    """The same measurement on real ``images`` with their true ``labels``: the ceiling."""
    classifier = _classifier(dataset)
    return _summary(labels, classifier.classify(images), classifier.num_classes)


def small_classifier(image_size: int, channels: int, num_classes: int, seed: int = 0):
    """Conv(32, /2)·Conv(64, /2)·Conv(64, /2)·pool·Dense: a classifier that trains in seconds.

    Three stride-2 3×3 convolutions see 15 pixels, half a 28×28 digit, before the pooling
    averages them: on ``mnist5k``'s 4,000 training digits it reached 92.7 % on the 1,000
    test digits after 10 epochs (94.4 % after 20), where Conv(16)·Conv(32, /2)·Conv(32, /2),
    which sees 11 pixels, reached 60.4 % (82.9 % after 30)."""
    import keras
    from keras import layers

    init = keras.initializers.GlorotUniform

    x = keras.Input((image_size, image_size, channels))
    h = x
    for i, (filters, stride) in enumerate([(32, 2), (64, 2), (64, 2)]):
        h = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu",
                          kernel_initializer=init(seed + i))(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, layers.Dense(num_classes, kernel_initializer=init(seed + 9))(h))


def train_and_test(train_images, train_labels, test_images, test_labels, num_classes: int,
                   epochs: int = 30, batch_size: int = 64, seed: int = 0) -> float:
    """Train :func:`small_classifier` on one set, return its accuracy on the other."""
    import keras

    train_images, test_images = np.asarray(train_images), np.asarray(test_images)
    train_labels, test_labels = _labels(train_labels, "train_labels"), \
        _labels(test_labels, "test_labels")
    if len(train_images) != len(train_labels) or len(test_images) != len(test_labels):
        raise ValueError("each set needs one label per image: got "
                         f"{len(train_images)}/{len(train_labels)} and "
                         f"{len(test_images)}/{len(test_labels)}.")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"train images {train_images.shape[1:]} and test images "
                         f"{test_images.shape[1:]} must have the same shape.")
    keras.utils.set_random_seed(seed)
    model = small_classifier(train_images.shape[1], train_images.shape[3], num_classes, seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_images, train_labels, epochs=epochs, batch_size=batch_size, verbose=0)
    predicted = model.predict(test_images, batch_size=256, verbose=0).argmax(axis=1)
    return float(np.mean(predicted == test_labels))


def train_on_generated(generator, test_images, test_labels, num_samples: int,
                       num_classes: int | None = None, epochs: int = 30, seed: int = 0) -> float:
    """Accuracy on real ``test_images`` of a classifier trained on ``num_samples``
    generated images, the classes requested in turn (their labels are the requested ones)."""
    from .evaluate import generate

    if num_classes is None:
        from ..models import num_classes_of

        num_classes = num_classes_of(generator)
    labels = np.arange(num_samples) % num_classes
    images = generate(generator, num_samples, seed=seed + 1, labels=labels)
    return train_and_test(images, labels, test_images, test_labels, num_classes, epochs=epochs,
                          seed=seed)
