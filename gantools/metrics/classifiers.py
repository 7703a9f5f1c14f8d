"""Small classifiers for the bundled image datasets: a feature space that works offline.

One network per dataset (``mnist5k``, ``digits``, ``shapes``), trained on its train split and
shipped
inside the package (``gantools/metrics/weights/``). The 128 average-pooled activations
of its last convolution (the same kind of features as InceptionV3's pool layer) are the
default feature space for KID and FID on the bundled data, and its predictions drive
the class-coverage metrics.

KID's kernel (xᵀy/d + 1)³ is not scale-invariant, and it was designed for features of
modest size. The features are therefore multiplied by a fixed ``feature_scale``, chosen
when the weights are trained so that the mean squared feature over the train split is
1. (Unscaled, or taken from the sparse dense layer, the kernel's heavy tails make the
real-vs-real KID swing by ±0.5 and more; scaled pooled features give a floor within
±0.01 of zero and separate blurred images by about ten standard errors.)

Rebuild the weights (about two minutes on 2 cores) and their recorded test accuracy::

    python -m gantools.metrics.classifiers
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

DATASETS = ("mnist5k", "digits", "shapes")
IMAGE_SIZES = {"mnist5k": 28, "digits": 32, "shapes": 32}
IMAGE_SIZE = 32  # the size of the 32×32 sets' networks
EPOCHS = {"mnist5k": 60, "digits": 60, "shapes": 8}
SHIFTED = ("mnist5k", "digits")  # small sets: shifted copies make the features robust
# Trained to doubt what is not a digit (outlier exposure), so that legibility() means
# something: a classifier trained on digits alone calls uniform noise a digit with
# probability above 0.9.
DOUBTING = ("mnist5k",)
JUNK_FRACTION = 0.25
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ACCURACY_FILE = "classifiers.json"


def build(num_classes: int, channels: int, name: str = "classifier",
          image_size: int = IMAGE_SIZE):
    """Conv(32)·Conv(32, /2)·Conv(64)·Conv(64, /2)·Conv(128)·pool → Dense(128) → classes."""
    import keras
    from keras import layers

    x = keras.Input((image_size, image_size, channels), name="images")
    h = x
    for i, (filters, stride) in enumerate([(32, 1), (32, 2), (64, 1), (64, 2), (128, 1)]):
        h = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu",
                          name=f"conv{i + 1}")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    features = layers.Dense(128, activation="relu", name="features")(h)
    h = layers.Dropout(0.3, name="dropout")(features)
    logits = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(x, logits, name=name)


def _weights_file(dataset: str):
    return resources.files("gantools.metrics") / "weights" / f"{dataset}_classifier.weights.h5"


def recorded_accuracy() -> dict:
    """What was measured when the shipped weights were trained: test accuracy, scale..."""
    path = resources.files("gantools.metrics") / "weights" / ACCURACY_FILE
    return json.loads(path.read_text())


def load(dataset: str):
    """The trained classifier of a bundled dataset (a Keras model returning logits)."""
    import gantools.data as gd

    if dataset not in DATASETS:
        raise ValueError(f"there is a bundled classifier for {', '.join(DATASETS)}, not "
                         f"{dataset!r}; for other data use inception_v3() or model_features().")
    info = gd.info(dataset)
    model = build(info.num_classes, info.channels, name=f"{dataset}_classifier",
                  image_size=IMAGE_SIZES[dataset])
    path = _weights_file(dataset)
    if not path.is_file():
        raise FileNotFoundError(f"the weights {path} are missing; rebuild them with "
                                "python -m gantools.metrics.classifiers")
    with resources.as_file(path) as local:
        model.load_weights(local)
    return model


def _shift(image, pad: int = 3):
    """A random translation of up to ``pad`` pixels (pad with background, crop back)."""
    import tensorflow as tf

    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], constant_values=-1.0)
    return tf.image.random_crop(padded, tf.shape(image))


def junk(images, onehot, patch: int = 7):
    """A batch of images that are not one digit, with the targets a classifier should give.

    Each example becomes, at random, one of four kinds (outlier exposure, Hendrycks et al.
    2019): uniform noise, smooth noise blobs, the pieces of a digit shuffled as a
    ``patch``-pixel jigsaw (each with the uniform target: no class), or an average of two
    digits with weights λ and 1 − λ, λ ~ U(0.3, 0.7) (target: the same mixture of their
    labels, as in mixup). Generated samples that fail look like these; a classifier that
    learns to doubt them gives :func:`gantools.metrics.legibility` its meaning.
    """
    import tensorflow as tf

    n, s = tf.shape(images)[0], images.shape[1]
    k = onehot.shape[-1]
    uniform_target = tf.fill(tf.shape(onehot), 1.0 / k)
    noise = tf.random.uniform(tf.shape(images), -1.0, 1.0)
    blobs = tf.nn.avg_pool2d(tf.random.normal(tf.shape(images)), 5, 1, "SAME")
    blobs = tf.tanh(3.0 * tf.nn.avg_pool2d(blobs, 5, 1, "SAME") * 5.0)
    grid = s // patch
    tiles = tf.reshape(images, [n, grid, patch, grid, patch, 1])
    tiles = tf.reshape(tf.transpose(tiles, [1, 3, 0, 2, 4, 5]), [grid * grid, n, patch, patch, 1])
    tiles = tf.random.shuffle(tiles)
    jigsaw = tf.transpose(tf.reshape(tiles, [grid, grid, n, patch, patch, 1]), [2, 0, 3, 1, 4, 5])
    jigsaw = tf.reshape(jigsaw, tf.shape(images))
    lam = tf.random.uniform([n, 1, 1, 1], 0.3, 0.7)
    partner = tf.roll(images, 1, axis=0)
    mixed = lam * images + (1.0 - lam) * partner
    lam_t = tf.reshape(lam, [n, 1])
    mixed_target = lam_t * onehot + (1.0 - lam_t) * tf.roll(onehot, 1, axis=0)
    kind = tf.random.uniform([n], 0, 4, dtype=tf.int32)
    pick = [tf.reshape(tf.cast(kind == i, tf.float32), [n, 1, 1, 1]) for i in range(4)]
    out = pick[0] * noise + pick[1] * blobs + pick[2] * jigsaw + pick[3] * mixed
    is_mix = tf.reshape(pick[3], [n, 1])
    target = is_mix * mixed_target + (1.0 - is_mix) * uniform_target
    return out, target


def train(dataset: str, seed: int = 0, verbose: int = 0) -> float:
    """Train one classifier, save its weights, return its test accuracy."""
    import keras
    import tensorflow as tf

    import gantools.data as gd

    keras.utils.set_random_seed(seed)
    info = gd.info(dataset)
    size = IMAGE_SIZES[dataset]
    model = build(info.num_classes, info.channels, name=f"{dataset}_classifier",
                  image_size=size)
    train_ds = gd.load(dataset, "train", batch_size=64, with_labels=True, seed=seed,
                       image_size=size, drop_remainder=False)
    if dataset in SHIFTED:
        train_ds = train_ds.unbatch().map(lambda x, y: (_shift(x), y)).batch(64)
    k = info.num_classes
    train_ds = train_ds.map(lambda x, y: (x, tf.one_hot(y, k)))
    if dataset in DOUBTING:
        train_ds = train_ds.map(lambda x, y: _with_junk(x, y, JUNK_FRACTION))
    test_ds = gd.load(dataset, "test", batch_size=256, with_labels=True, shuffle=False,
                      image_size=size).map(lambda x, y: (x, tf.one_hot(y, k)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["categorical_accuracy"])
    model.fit(train_ds, epochs=EPOCHS[dataset], verbose=verbose)
    _, accuracy = model.evaluate(test_ds, verbose=0)
    WEIGHTS_DIR.mkdir(exist_ok=True)
    clean = build(info.num_classes, info.channels, name=model.name,  # no optimizer state
                  image_size=size)
    clean.set_weights(model.get_weights())
    clean.save_weights(WEIGHTS_DIR / f"{dataset}_classifier.weights.h5")
    return float(accuracy), feature_scale(clean, dataset), test_legibility(clean, dataset)


def test_legibility(model, dataset: str) -> float | None:
    """Legibility of the real test split (see :func:`gantools.metrics.legibility`), for the
    classifiers trained to doubt junk; ``None`` for the others."""
    import gantools.data as gd

    from .fidelity import LEGIBLE, softmax

    if dataset not in DOUBTING:
        return None
    x, _ = gd.arrays(dataset, "test", image_size=IMAGE_SIZES[dataset])
    probs = softmax(model.predict(x, batch_size=256, verbose=0))
    return float(np.mean(probs.max(axis=1) >= LEGIBLE))


def _with_junk(images, onehot, fraction):
    """Replace the first ``fraction`` of a batch by :func:`junk` made from it."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    m = tf.cast(tf.round(fraction * tf.cast(n, tf.float32)), tf.int32)
    bad, bad_target = junk(images, onehot)
    return (tf.concat([bad[:m], images[m:]], 0), tf.concat([bad_target[:m], onehot[m:]], 0))


def feature_scale(model, dataset: str) -> float:
    """1 / √(mean squared pooled feature) over the train split."""
    import keras

    import gantools.data as gd

    pool = keras.Model(model.inputs, model.get_layer("pool").output)
    x, _ = gd.arrays(dataset, "train", image_size=IMAGE_SIZES[dataset])
    f = pool.predict(x, batch_size=256, verbose=0).astype(np.float64)
    return float(1.0 / np.sqrt(np.mean(f**2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Rebuild the bundled classifiers' weights.")
    parser.add_argument("datasets", nargs="*", choices=[*DATASETS, []],
                        help="which classifiers to rebuild (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = WEIGHTS_DIR / ACCURACY_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    for dataset in args.datasets or DATASETS:
        start = time.perf_counter()
        accuracy, scale, legible = train(dataset, seed=args.seed)
        seconds = time.perf_counter() - start
        record[dataset] = {"test_accuracy": round(accuracy, 4), "feature_scale": scale,
                           "epochs": EPOCHS[dataset], "seed": args.seed,
                           "train_seconds": round(seconds, 1)}
        if legible is not None:
            record[dataset].update(test_legibility=round(legible, 4),
                                   junk_fraction=JUNK_FRACTION)
        print(f"{dataset}: test accuracy {accuracy:.4f} after {EPOCHS[dataset]} epochs "
              f"({seconds:.0f} s)")
    path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
