"""Notebook 06's checks: honest spellings pass, the usual mistakes get their hint (the
keras-io band pattern among them), hidden failures reveal nothing, the values reported to the
grader match its own oracle, and the checks' NumPy reference agrees with a loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support.grading_helpers import (
    hides_its_expected_values,
    names_its_hint,
    passes_visible_and_hidden,
    reports_what_the_grader_recomputes,
)

from gancourse.checks import load as load_checks


def load():
    return load_checks("06_conditional_gan")


# --- honest answers, several spellings each ---------------------------------------------------

def planes_tile(labels, num_classes, height, width):
    onehot = tf.one_hot(labels, num_classes)
    return tf.tile(onehot[:, None, None, :], [1, height, width, 1])


def planes_broadcast(labels, num_classes, height, width):
    onehot = tf.reshape(tf.one_hot(tf.cast(labels, tf.int64), num_classes),
                        (-1, 1, 1, num_classes))
    return tf.broadcast_to(onehot, (tf.shape(labels)[0], height, width, num_classes))


def planes_ones(labels, num_classes, height, width):  # ones times a one-hot
    ones = tf.ones((tf.shape(labels)[0], height, width, 1))
    return ones * keras.ops.one_hot(labels, num_classes)[:, None, None, :]


def planes_band(labels, num_classes, height, width):  # the keras-io example
    onehot = tf.one_hot(labels, num_classes)[:, :, None, None]
    onehot = tf.repeat(onehot, repeats=[height * width])
    return tf.reshape(onehot, (-1, height, width, num_classes))


def make_generator(embed=False, tanh=True, use_label=True, use_z=True, tf_one_hot=False,
                   sigmoid=False):
    def build(latent_dim, num_classes, image_size, channels, width=8):
        z = keras.Input((latent_dim,))
        labels = keras.Input((), dtype="int32")
        if tf_one_hot:
            code = tf.one_hot(labels, num_classes)
        elif embed:
            code = keras.layers.Flatten()(keras.layers.Embedding(num_classes, 4)(labels))
        else:
            code = keras.ops.one_hot(labels, num_classes)
        parts = ([z] if use_z else []) + ([code] if use_label else [])
        h = parts[0] if len(parts) == 1 else keras.layers.Concatenate()(parts)
        s = image_size // 4
        h = keras.layers.Dense(s * s * 2 * width, use_bias=False)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
        h = keras.layers.Reshape((s, s, 2 * width))(h)
        h = keras.layers.Conv2DTranspose(width, 4, 2, padding="same")(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
        out = keras.layers.Conv2DTranspose(
            channels, 4, 2, padding="same",
            activation="sigmoid" if sigmoid else "tanh" if tanh else None)(h)
        return keras.Model([z, labels], out)
    return build


def make_discriminator(planes=planes_tile, planes_first=False, sigmoid=False,
                       use_label=True, python_lambda=True, output_shape=True, batch_norm=True):
    def build(num_classes, image_size, channels, width=8):
        x = keras.Input((image_size, image_size, channels))
        labels = keras.Input((), dtype="int32")
        if python_lambda:
            p = keras.layers.Lambda(lambda y: planes(y, num_classes, image_size, image_size),
                                    output_shape=(image_size, image_size, num_classes)
                                    if output_shape else None)(labels)
        else:
            p = keras.layers.Lambda(planes, arguments=dict(
                num_classes=num_classes, height=image_size, width=image_size))(labels)
        h = keras.layers.Concatenate()([p, x] if planes_first else [x, p]) if use_label else x
        h = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(width, 4, 2, padding="same")(h))
        h = keras.layers.Conv2D(2 * width, 4, 2, padding="same")(h)
        h = keras.layers.LeakyReLU(0.2)(keras.layers.BatchNormalization()(h) if batch_norm else h)
        out = keras.layers.Dense(1, activation="sigmoid" if sigmoid else None)(
            keras.layers.Flatten()(h))
        return keras.Model([x, labels], out)
    return build


def step(fake_labels="same", g_labels="same", d_first=True, pass_labels=True, fixed_z=False):
    def train_step(real, labels, generator, discriminator, g_optimizer, d_optimizer,
                   d_loss_fn, g_loss_fn, latent_dim):
        batch = 64 if fixed_z else tf.shape(real)[0]  # BATCH_SIZE, not the batch's size

        def other(y):
            return {"same": y, "random": tf.random.uniform(tf.shape(y), 0, 3, tf.int32),
                    "shifted": (y + 1) % 3}[fake_labels]

        def d_step():
            z = tf.random.normal((batch, latent_dim))
            fake = generator([z, other(labels) if g_labels == "other" else labels])
            with tf.GradientTape() as tape:
                real_in = [real, labels] if pass_labels else real
                loss = d_loss_fn(discriminator(real_in, training=True),
                                 discriminator([fake, other(labels)], training=True))
            grads = tape.gradient(loss, discriminator.trainable_variables)
            d_optimizer.apply_gradients(zip(grads, discriminator.trainable_variables,
                                            strict=True))
            return loss

        def g_step():
            with tf.GradientTape() as tape:
                fake = generator([tf.random.normal((batch, latent_dim)), labels], training=True)
                loss = g_loss_fn(discriminator([fake, labels], training=True))
            grads = tape.gradient(loss, generator.trainable_variables)
            g_optimizer.apply_gradients(zip(grads, generator.trainable_variables,
                                            strict=True))
            return loss

        if d_first:
            d_loss = d_step()
            return d_loss, g_step()
        g_loss = g_step()
        return d_step(), g_loss
    return train_step


HONEST = [
    ("check_label_planes", planes_tile),
    ("check_label_planes", planes_broadcast),
    ("check_label_planes", planes_ones),
    ("check_conditional_generator", make_generator()),
    ("check_conditional_generator", make_generator(embed=True)),
    ("check_conditional_discriminator", make_discriminator()),
    ("check_conditional_discriminator", make_discriminator(planes_broadcast, planes_first=True,
                                                           python_lambda=False)),
    ("check_conditional_train_step", step()),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


def test_reported_values_agree_with_the_graders_own_oracle(monkeypatch):
    reports_what_the_grader_recomputes(load, "check_label_planes", planes_tile, monkeypatch)


def test_the_reference_planes_match_a_loop():
    checks = load()
    rng = np.random.default_rng(0)
    for n, k, h, w in [(5, 3, 4, 6), (1, 10, 2, 2), (7, 2, 3, 1)]:
        labels = rng.integers(0, k, n)
        want = np.zeros((n, h, w, k))
        for i in range(n):
            for r in range(h):
                for c in range(w):
                    want[i, r, c, labels[i]] = 1.0
        assert np.array_equal(checks._planes(labels, k, h, w), want)


def test_the_band_mistake_is_what_keras_io_computes():
    """The checks' NumPy model of the keras-io bug matches its TensorFlow code, and it is a
    horizontal band: whole rows of ones in every channel."""
    checks = load()
    labels = np.array([0, 2, 1], np.int32)
    band = planes_band(tf.constant(labels), 3, 6, 6).numpy()
    assert np.array_equal(band, checks._band(labels, 3, 6, 6))
    for i, label in enumerate(labels):
        rows = np.flatnonzero(band[i].max(axis=(1, 2)) == 1)
        assert np.array_equal(rows, np.arange(2 * label, 2 * label + 2))
        assert (band[i, rows] == 1).all()


def planes_shifted(labels, num_classes, height, width):
    return planes_tile(labels - 1, num_classes, height, width)


def planes_numpy(labels, num_classes, height, width):
    return tf.constant(np.eye(num_classes, dtype=np.float32)[np.asarray(labels)][:, None, None]
                       * np.ones((1, height, width, 1), np.float32))


def planes_static_batch(labels, num_classes, height, width):
    return tf.tile(tf.one_hot(labels, num_classes)[:, None, None, :], [1, height, width, 1]) \
        + tf.zeros((labels.shape[0], height, width, num_classes))


MISTAKES = [
    ("check_label_planes", planes_band, "horizontal band"),
    ("check_label_planes", planes_shifted, "off by one"),
    ("check_label_planes",
     lambda y, k, h, w: tf.transpose(planes_tile(y, k, h, w), (0, 3, 1, 2)), "channels first"),
    ("check_label_planes", lambda y, k, h, w: tf.cast(planes_tile(y, k, h, w), tf.int32),
     "float32"),
    ("check_label_planes", planes_numpy, "unknown|not known"),
    ("check_label_planes", planes_static_batch, "tf.shape"),
    ("check_conditional_generator", make_generator(use_label=False), "ignores its label"),
    ("check_conditional_generator", make_generator(use_z=False), "ignores its noise"),
    ("check_conditional_generator", make_generator(tanh=False), "tanh"),
    ("check_conditional_generator", make_generator(sigmoid=True), r"never go below 0"),
    ("check_conditional_discriminator", make_discriminator(batch_norm=False),
     "no batch normalization"),
    ("check_conditional_generator", make_generator(tf_one_hot=True), "keras.ops.one_hot"),
    ("check_conditional_discriminator", make_discriminator(use_label=False),
     "ignores the label"),
    ("check_conditional_discriminator", make_discriminator(sigmoid=True), "sigmoid"),
    ("check_conditional_discriminator", make_discriminator(output_shape=False),
     "output_shape"),
    ("check_conditional_discriminator", make_discriminator(planes_band), "horizontal band"),
    ("check_conditional_train_step", step(fake_labels="random"),
     "judged generated images with other labels"),
    ("check_conditional_train_step", step(fake_labels="shifted", g_labels="other"),
     "generator was asked for other labels than the batch's"),
    ("check_conditional_train_step", step(fake_labels="shifted"),
     "judged generated images with other labels"),
    ("check_conditional_train_step", step(pass_labels=False), r"list \[images, labels\]"),
    ("check_conditional_train_step", step(d_first=False), "before D"),
    ("check_conditional_train_step", step(fixed_z=True), r"tf.shape\(real\)\[0\]"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{h[:20]}" for c, _, h in MISTAKES])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    message = hides_its_expected_values(load(), "check_label_planes", planes_band)
    assert "horizontal band" in message


def test_a_discriminator_built_with_gantools_trips_the_tripwire():
    import gantools.models as gmodels

    def build(num_classes, image_size, channels):
        return gmodels.dcgan_discriminator(image_size, channels, width=8,
                                           num_classes=num_classes)
    with pytest.raises(AssertionError, match="gantools"):
        load().check_conditional_discriminator(build)


# --- the builders: fresh models, hidden sizes from the nonce, planes read from the run ---------

def discriminator_ops_concat(num_classes, image_size, channels, width=8):
    """The planes joined with keras.ops.concatenate, an operation and not a layer: what the
    discriminator computes is read from its layers' inputs."""
    x = keras.Input((image_size, image_size, channels))
    labels = keras.Input((), dtype="int32")
    planes = keras.layers.Lambda(lambda y: planes_tile(y, num_classes, image_size, image_size),
                                 output_shape=(image_size, image_size, num_classes))(labels)
    h = keras.ops.concatenate([x, planes], axis=-1)
    h = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(width, 4, 2, padding="same")(h))
    h = keras.layers.BatchNormalization()(h)
    return keras.Model([x, labels], keras.layers.Dense(1)(keras.layers.Flatten()(h)))


HONEST_BUILDERS = [
    ("check_conditional_generator", make_generator()),
    ("check_conditional_generator", make_generator(embed=True)),
    ("check_conditional_discriminator", make_discriminator()),
    ("check_conditional_discriminator", make_discriminator(planes_broadcast, planes_first=True,
                                                          python_lambda=False)),
    ("check_conditional_discriminator", discriminator_ops_concat),
]


@pytest.mark.parametrize("check, answer", HONEST_BUILDERS,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(HONEST_BUILDERS)])
def test_honest_builders_pass_hidden_checks_for_many_nonces(check, answer, capsys):
    checks = load()
    getattr(checks, check)(answer)
    for nonce in range(10):
        getattr(checks, check)(answer, hidden=True, nonce=nonce)
    assert capsys.readouterr().out.count("✓") == 11


def test_models_built_before_the_check_are_refused():
    import functools

    for check, build, args in (("check_conditional_generator", make_generator(),
                                (8, 10, 28, 1)),
                               ("check_conditional_discriminator", make_discriminator(),
                                (10, 28, 1))):
        made = build(*args)
        cached = functools.lru_cache(build)
        cached(*args)
        for builder in (lambda *a, m=made: m, cached):
            names_its_hint(load(), check, builder, "existed before it was called")


def test_hidden_builder_sizes_come_from_the_nonce():
    checks = load()
    generators = {tuple(checks._g_sizes(n, True)) for n in range(20)}
    discriminators = {tuple(checks._d_sizes(n, True)) for n in range(20)}
    assert len(generators) > 5 and len(discriminators) > 5
    assert checks._g_sizes(7, True) == checks._g_sizes(7, True)
    assert all(size % 4 == 0 for sizes in generators for _, _, size, _ in sizes)


def test_terminal_colour_codes_are_stripped_from_messages():
    from gancourse.checks import harness

    assert harness.plain("\x1b[1mDimension 0\x1b[0m must be equal") == "Dimension 0 must be equal"
