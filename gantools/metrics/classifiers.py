"""Small classifiers for the bundled image datasets: a feature space that works offline.

One network per dataset (``digits``, ``shapes``), trained on its train split and shipped
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

DATASETS = ("digits", "shapes")
IMAGE_SIZE = 32
EPOCHS = {"digits": 60, "shapes": 8}
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ACCURACY_FILE = "classifiers.json"


def build(num_classes: int, channels: int, name: str = "classifier"):
    """Conv(32)·Conv(32, /2)·Conv(64)·Conv(64, /2)·Conv(128)·pool → Dense(128) → classes."""
    import keras
    from keras import layers

    x = keras.Input((IMAGE_SIZE, IMAGE_SIZE, channels), name="images")
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
    model = build(info.num_classes, info.channels, name=f"{dataset}_classifier")
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


def train(dataset: str, seed: int = 0, verbose: int = 0) -> float:
    """Train one classifier, save its weights, return its test accuracy."""
    import keras

    import gantools.data as gd

    keras.utils.set_random_seed(seed)
    info = gd.info(dataset)
    model = build(info.num_classes, info.channels, name=f"{dataset}_classifier")
    train_ds = gd.load(dataset, "train", batch_size=64, with_labels=True, seed=seed,
                       image_size=IMAGE_SIZE, drop_remainder=False)
    if dataset == "digits":  # 1,438 images: shifted copies make the features robust
        train_ds = train_ds.unbatch().map(lambda x, y: (_shift(x), y)).batch(64)
    test_ds = gd.load(dataset, "test", batch_size=256, with_labels=True, shuffle=False,
                      image_size=IMAGE_SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_ds, epochs=EPOCHS[dataset], verbose=verbose)
    _, accuracy = model.evaluate(test_ds, verbose=0)
    WEIGHTS_DIR.mkdir(exist_ok=True)
    clean = build(info.num_classes, info.channels, name=model.name)  # no optimizer state
    clean.set_weights(model.get_weights())
    clean.save_weights(WEIGHTS_DIR / f"{dataset}_classifier.weights.h5")
    return float(accuracy), feature_scale(clean, dataset)


def feature_scale(model, dataset: str) -> float:
    """1 / √(mean squared pooled feature) over the train split."""
    import keras

    import gantools.data as gd

    pool = keras.Model(model.inputs, model.get_layer("pool").output)
    x, _ = gd.arrays(dataset, "train", image_size=IMAGE_SIZE)
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
        accuracy, scale = train(dataset, seed=args.seed)
        seconds = time.perf_counter() - start
        record[dataset] = {"test_accuracy": round(accuracy, 4), "feature_scale": scale,
                           "epochs": EPOCHS[dataset], "seed": args.seed,
                           "train_seconds": round(seconds, 1)}
        print(f"{dataset}: test accuracy {accuracy:.4f} after {EPOCHS[dataset]} epochs "
              f"({seconds:.0f} s)")
    path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
