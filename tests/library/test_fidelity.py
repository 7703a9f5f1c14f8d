"""Label fidelity of conditional generators (gantools.metrics.fidelity), and the conditional
plumbing it relies on: the number of classes read from a model, an EMA copy of a generator
with a Lambda layer, GANTrainer's num_classes. Oracles: loops over the labels, and
"generators" that return real digits of a known class."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import gantools.data as gd
import gantools.metrics as gm
from gantools.models import num_classes_of
from gantools.training import GANTrainer
from gantools.training.ema import clone_generator


def test_confusion_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    requested, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    want = np.zeros((4, 4), int)
    for r, p in zip(requested, predicted, strict=True):
        want[r, p] += 1
    got = gm.confusion_matrix(requested, predicted, 4)
    assert np.array_equal(got, want)
    per_class = gm.per_class_accuracy(got)
    for k in range(4):
        assert per_class[k] == np.mean(predicted[requested == k] == k)


def test_per_class_accuracy_is_nan_for_a_class_never_requested():
    confusion = gm.confusion_matrix([0, 0, 2], [0, 1, 2], 3)
    assert np.isnan(gm.per_class_accuracy(confusion)[1])


@pytest.mark.parametrize("args, message", [
    (([0, 1], [0], 2), "1 predictions for 2 labels"),
    (([0, 3], [0, 1], 3), r"requested labels must lie in \[0, 3\)"),
    (([0.0, 1.0], [0, 1], 2), "integer class labels"),
])
def test_confusion_matrix_explains_bad_labels(args, message):
    with pytest.raises(ValueError, match=message):
        gm.confusion_matrix(*args)


def lookup_generator(images, labels, shift=0, num_classes=10):
    """A 'generator' [z, y] -> a real image of class (y + shift) % K, chosen by z[:, 0]."""
    m = min(int(np.sum(labels == k)) for k in range(num_classes))
    table = tf.constant(np.stack([images[labels == k][:m] for k in range(num_classes)]))

    class Lookup(keras.layers.Layer):
        def call(self, inputs):
            z, y = inputs
            k = (tf.cast(y, tf.int32) + shift) % num_classes
            index = tf.cast(tf.abs(z[:, 0]) * 1000, tf.int32) % m
            return tf.gather_nd(table, tf.stack([k, index], axis=1))

        def compute_output_shape(self, input_shape):
            return (input_shape[0][0], *images.shape[1:])

    z = keras.Input((4,))
    y = keras.Input((), dtype="int32")
    return keras.Model([z, y], Lookup()([z, y]))


@pytest.fixture(scope="module")
def test_split():
    return gd.arrays("digits", "test", image_size=16)


def test_label_accuracy_of_real_digits_by_class_is_the_classifiers_accuracy(test_split):
    x, y = test_split
    honest = gm.label_accuracy(lookup_generator(x, y), "digits", per_class=20, num_classes=10,
                               batch_size=50)
    real = gm.real_label_accuracy(x, y, "digits")
    assert honest["confusion"].sum() == 200 and (honest["confusion"].sum(axis=1) == 20).all()
    assert honest["accuracy"] >= 0.9 and real["accuracy"] >= 0.95
    assert np.array_equal(honest["labels"], np.tile(np.arange(10), 20))
    # a generator that always draws the next class: accuracy near 0, mass one step right
    wrong = gm.label_accuracy(lookup_generator(x, y, shift=1), "digits", per_class=20,
                              num_classes=10, batch_size=50)
    assert wrong["accuracy"] <= 0.1
    shifted = np.roll(wrong["confusion"], -1, axis=1)  # column (r + 1) moved onto the diagonal
    assert np.trace(shifted) >= 0.9 * 200


def test_label_accuracy_explains_its_inputs(test_split):
    x, y = test_split
    g = lookup_generator(x, y)
    with pytest.raises(ValueError, match="conditional generator"):
        gm.label_accuracy(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="the generator has 3 classes"):
        gm.label_accuracy(g, num_classes=3)
    with pytest.raises(ValueError, match="per_class must be a positive integer"):
        gm.label_accuracy(g, per_class=0, num_classes=10)


def test_train_and_test_learns_the_digits_and_not_shuffled_labels(test_split):
    x, y = gd.arrays("digits", "train", image_size=16)
    tx, ty = test_split
    first = gm.train_and_test(x, y, tx, ty, 10, epochs=8, seed=1)
    assert first >= 0.8  # 8 epochs of a small CNN on 1,438 digits: 0.95 (30 epochs: 0.97)
    # labels that carry no information: chance level
    shuffled = np.random.default_rng(0).permutation(y)
    assert gm.train_and_test(x, shuffled, tx, ty, 10, epochs=8, seed=1) <= 0.3
    with pytest.raises(ValueError, match="one label per image"):
        gm.train_and_test(x, y[:-1], tx, ty, 10)


def test_train_on_generated_with_real_images_of_the_requested_class(test_split):
    x, y = gd.arrays("digits", "train", image_size=16)
    tx, ty = test_split
    # 600 real digits, 12 epochs: 0.94 when drawn without repetition
    honest = gm.train_on_generated(lookup_generator(x, y), tx, ty, 600, num_classes=10,
                                   epochs=12)
    shifted = gm.train_on_generated(lookup_generator(x, y, shift=1), tx, ty, 600,
                                    num_classes=10, epochs=12)
    assert honest >= 0.8 and shifted <= 0.1


def one_hot_generator(kind, num_classes=5):
    z = keras.Input((3,))
    y = keras.Input((), dtype="int32")
    code = {"ops": lambda: keras.ops.one_hot(y, num_classes),
            "lambda": lambda: keras.layers.Lambda(lambda t: tf.one_hot(t, num_classes),
                                                  output_shape=(num_classes,))(y),
            "category": lambda: keras.layers.CategoryEncoding(num_classes, "one_hot")(y),
            "embedding": lambda: keras.layers.Flatten()(
                keras.layers.Embedding(num_classes, 2)(y))}[kind]()
    h = keras.layers.Concatenate()([z, code])
    return keras.Model([z, y], keras.layers.Dense(4)(h))


@pytest.mark.parametrize("kind", ["ops", "category", "embedding"])
def test_num_classes_is_read_from_one_hot_ops_and_layers(kind):
    assert num_classes_of(one_hot_generator(kind)) == 5


def test_num_classes_of_a_lambda_says_what_to_pass():
    with pytest.raises(ValueError, match="num_classes=K"):
        num_classes_of(one_hot_generator("lambda"))


def test_an_ema_copy_of_a_generator_with_a_python_lambda_computes_the_same():
    g = one_hot_generator("lambda")
    copy = clone_generator(g)
    z, y = tf.random.normal((6, 3)), tf.constant([0, 1, 2, 3, 4, 0])
    assert np.array_equal(copy([z, y]).numpy(), g([z, y]).numpy())
    assert not any(a is b for a, b in zip(copy.weights, g.weights, strict=True))


def test_gan_trainer_takes_num_classes_and_checks_it():
    g = one_hot_generator("lambda")
    x = keras.Input((4,))
    y = keras.Input((), dtype="int32")
    d = keras.Model([x, y], keras.layers.Dense(1)(keras.layers.Concatenate()(
        [x, keras.ops.one_hot(y, 5)])))
    with pytest.raises(ValueError, match="num_classes=K"):
        GANTrainer(g, d)
    trainer = GANTrainer(g, d, num_classes=5, preview_size=7)
    assert trainer.num_classes == 5 and trainer.fixed_labels.tolist() == [0, 1, 2, 3, 4, 0, 1]
    for bad in (1, 2.0, True):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            GANTrainer(g, d, num_classes=bad)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    critic = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="num_classes is for a conditional GAN"):
        GANTrainer(plain, critic, num_classes=5)
