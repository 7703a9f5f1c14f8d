"""Feature extractors: images in [-1, 1] → feature vectors, behind one interface.

* :func:`inception_v3` — Keras's InceptionV3 with ImageNet weights, global-average-pooled
  (2048 features). Images are resized to ``image_size`` (≥ 75 px, the network's minimum;
  299 px is the standard) and tiled to 3 channels. Inception's own preprocessing maps
  [0, 255] to [-1, 1], the range our images already have, so they go in as they are.
  Values are comparable within this course only: Keras's weights are not the
  2015-12-05 Inception graph behind published FID/KID numbers.
* :func:`classifier_features` — the small classifier shipped for a bundled dataset
  (``digits``, ``shapes``): its 128 average-pooled features, scaled to a mean square of
  1 on the train split, and class predictions for the coverage metrics. The default
  feature space offline.
* :func:`model_features` — any Keras model, at any named layer.

Every extractor is called on a batch or a whole array of images, or on a
``tf.data.Dataset`` of them, and streams through it ``batch_size`` images at a time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
                 + INCEPTION_FILE)
INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"


def check_images(images, name: str = "images") -> np.ndarray:
    """Validate a stack of images in [-1, 1]: (n, h, w, 1 or 3)."""
    x = np.asarray(images)
    if x.ndim == 3 and x.shape[-1] > 4:  # (n, h, w) greyscale
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape (n, height, width, 1 or 3), got {x.shape}."
        )
    if len(x) == 0:
        raise ValueError(f"{name} is empty.")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.01 or hi > 1.01:
        hint = (" They look like [0, 255] pixels: use x / 127.5 - 1." if hi > 2 else
                " Map them into [-1, 1] first (gantools.data.from_unit maps [0, 1] there).")
        raise ValueError(f"{name} must be in [-1, 1] like the course's data, got values in "
                         f"[{lo:.3g}, {hi:.3g}].{hint}")
    return x.astype(np.float32, copy=False)


class FeatureExtractor:
    """Maps images in [-1, 1] to float32 feature vectors (n, dim).

    Args:
        model: a Keras model from images (size × size × channels) to (batch, dim).
        name: shown in messages and tables.
        batch_size: images per forward pass.
    """

    def __init__(self, model, name: str, batch_size: int = 256):
        self.model = model
        self.name = name
        self.batch_size = int(batch_size)
        shape = model.inputs[0].shape
        self.input_size, self.channels = int(shape[1]), int(shape[-1])
        self.dim = int(model.outputs[0].shape[-1])
        self._forward = tf.function(self._run, reduce_retracing=True)

    def _run(self, x):
        return self.model(self._prepare(x), training=False)

    def _prepare(self, x):
        if x.shape[-1] == 1 and self.channels == 3:
            x = tf.repeat(x, 3, axis=-1)
        if x.shape[1] != self.input_size or x.shape[2] != self.input_size:
            x = tf.image.resize(x, (self.input_size, self.input_size), method="bilinear",
                                antialias=True)
        return x

    def _check_channels(self, c):
        if c == 3 and self.channels == 1:
            raise ValueError(f"{self.name} takes greyscale images but got RGB ones.")

    def __call__(self, images, batch_size: int | None = None) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        if isinstance(images, tf.data.Dataset):
            parts = [self(b[0] if isinstance(b, tuple) else b, batch_size)
                     for b in images.as_numpy_iterator()]
            return np.concatenate(parts)
        x = check_images(images)
        self._check_channels(x.shape[-1])
        parts = [self._forward(tf.constant(x[s:s + batch_size])).numpy()
                 for s in range(0, len(x), batch_size)]
        return np.concatenate(parts).reshape(len(x), -1).astype(np.float32)

    def __repr__(self):
        return f"<FeatureExtractor {self.name}: {self.input_size}px → {self.dim} features>"


def model_features(model, layer: str | None = None, name: str | None = None,
                   batch_size: int = 256) -> FeatureExtractor:
    """Features from any Keras model: its output, or the output of the layer ``layer``."""
    import keras

    if layer is not None:
        names = [lay.name for lay in model.layers]
        if layer not in names:
            raise ValueError(f"{model.name} has no layer {layer!r}; choose one of {names}.")
        out = model.get_layer(layer).output
        if len(out.shape) > 2:
            out = keras.layers.Flatten()(out)
        model = keras.Model(model.inputs, out)
    return FeatureExtractor(model, name or f"{model.name}:{layer or 'output'}", batch_size)


def inception_weights_path():
    """The cached ImageNet weights, downloaded if possible; fails fast offline."""
    from ..data.remote import RemoteFile, fetch

    (path,) = fetch(
        "InceptionV3 ImageNet weights",
        [RemoteFile(INCEPTION_FILE, INCEPTION_URL, subdir="models", file_hash=INCEPTION_MD5)],
        instead="use the bundled classifier features instead: "
        "gantools.metrics.classifier_features('digits') or ('shapes')",
    )
    return path


def inception_v3(image_size: int = 75, weights: str | None = "imagenet",
                 batch_size: int = 64) -> FeatureExtractor:
    """InceptionV3 pool features (2048) at ``image_size`` pixels (≥ 75; 299 is standard).

    ``weights="imagenet"`` loads the cached weights (offline without them it raises
    ``DataUnavailableError`` with the file name, cache folder and download address);
    ``weights=None`` gives random weights, for testing the plumbing.
    """
    import keras

    if image_size < 75:
        raise ValueError(f"InceptionV3 needs images of at least 75 pixels, got {image_size}.")
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}.")
    path = inception_weights_path() if weights == "imagenet" else None
    net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                         input_shape=(image_size, image_size, 3))
    if path is not None:
        net.load_weights(str(path))
    return FeatureExtractor(net, f"InceptionV3-{image_size}px"
                            + ("" if weights else " (random weights)"), batch_size)


class ClassifierFeatures(FeatureExtractor):
    """Scaled pooled features of a bundled classifier, which can also classify images."""

    def __init__(self, classifier, dataset: str, scale: float, batch_size: int = 256):
        import keras

        self.classifier = classifier
        self.dataset = dataset
        self.scale = float(scale)
        pooled = classifier.get_layer("pool").output
        self._both = keras.Model(classifier.inputs, [pooled, classifier.outputs[0]])
        super().__init__(keras.Model(classifier.inputs, pooled * self.scale),
                         f"{dataset} classifier", batch_size)
        self.num_classes = int(classifier.outputs[0].shape[-1])
        self._logits = tf.function(self._run_logits, reduce_retracing=True)

    def _run_logits(self, x):
        return self._both(self._prepare(x), training=False)[1]

    def logits(self, images, batch_size: int | None = None) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        x = check_images(images)
        self._check_channels(x.shape[-1])
        return np.concatenate([self._logits(tf.constant(x[s:s + batch_size])).numpy()
                               for s in range(0, len(x), batch_size)])

    def classify(self, images, batch_size: int | None = None) -> np.ndarray:
        """Predicted class of each image: int array (n,)."""
        return self.logits(images, batch_size).argmax(axis=1)


def classifier_features(dataset: str = "mnist5k", batch_size: int = 256) -> ClassifierFeatures:
    """The shipped classifier of a bundled dataset as a feature extractor (128 features)."""
    from .classifiers import load, recorded_accuracy

    return ClassifierFeatures(load(dataset), dataset, recorded_accuracy()[dataset]["feature_scale"],
                              batch_size)
