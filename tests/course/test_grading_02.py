"""Notebook 02's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, and the values reported to the grader match its own oracle."""

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
    return load_checks("02_gan_tricks")


def bce(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


# --- honest answers, several spellings each ---------------------------------------------------

def smoothed_a(real, fake, alpha):
    return (tf.reduce_mean(bce(tf.fill(tf.shape(real), 1.0 - alpha), real))
            + tf.reduce_mean(bce(tf.zeros_like(fake), fake)))


def smoothed_b(real, fake, alpha):  # the softplus form, written out
    t = 1.0 - alpha
    return (tf.reduce_mean(t * tf.nn.softplus(-real) + (1 - t) * tf.nn.softplus(real))
            + tf.reduce_mean(tf.nn.softplus(fake)))


def smoothed_c(real, fake, alpha):  # keras, one loss object per side
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    real = tf.reshape(real, [-1, 1])
    fake = tf.reshape(fake, [-1, 1])
    return loss(tf.ones_like(real) * (1 - alpha), real) + loss(tf.zeros_like(fake), fake)


def fm_a(real_features, fake_features):
    total = 0.0
    for r, f in zip(real_features, fake_features, strict=True):
        r = tf.reshape(r, [tf.shape(r)[0], -1])
        f = tf.reshape(f, [tf.shape(f)[0], -1])
        total += tf.reduce_sum(tf.square(tf.reduce_mean(r, 0) - tf.reduce_mean(f, 0)))
    return total


def fm_b(real_features, fake_features):  # means over every non-feature axis, NumPy inside
    terms = []
    for r, f in zip(real_features, fake_features, strict=True):
        diff = tf.reduce_mean(r, axis=0) - tf.reduce_mean(f, axis=0)
        terms.append(tf.reduce_sum(diff ** 2))
    return tf.add_n(terms) + float(np.zeros(()))


class MBD(keras.layers.Layer):
    def __init__(self, num_kernels=16, kernel_dim=4, **kwargs):
        super().__init__(**kwargs)
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim

    def build(self, input_shape):
        self.T = self.add_weight(shape=(input_shape[-1], self.num_kernels, self.kernel_dim),
                                 initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, f):
        m = tf.einsum("na,abc->nbc", f, self.T)
        dist = tf.reduce_sum(tf.abs(m[:, None] - m[None, :]), axis=-1)
        return tf.concat([f, tf.reduce_sum(tf.exp(-dist), axis=1) - 1.0], axis=-1)


class MBDFlat(MBD):
    """T stored as (A, B*C); the diagonal masked instead of subtracting 1."""

    def build(self, input_shape):
        self.T = self.add_weight(shape=(input_shape[-1], self.num_kernels * self.kernel_dim),
                                 initializer="random_normal")

    def call(self, f):
        m = tf.reshape(f @ self.T, [-1, self.num_kernels, self.kernel_dim])
        c = tf.exp(-tf.reduce_sum(tf.abs(m[:, None] - m[None, :]), axis=-1))
        mask = 1.0 - tf.eye(tf.shape(f)[0])[:, :, None]
        return tf.concat([f, tf.reduce_sum(c * mask, axis=1)], axis=-1)


def ema_a(ema, model, decay):
    for e, m in zip(ema.weights, model.weights, strict=True):
        e.assign(decay * e + (1 - decay) * m if m.trainable else m)


def ema_b(ema, model, decay):  # trainable and non-trainable lists separately
    for e, m in zip(ema.trainable_weights, model.trainable_weights, strict=True):
        e.assign(e + (1 - decay) * (m - e))
    for e, m in zip(ema.non_trainable_weights, model.non_trainable_weights, strict=True):
        e.assign(m)


def dcgan_functional(latent_dim):
    init = keras.initializers.RandomNormal(stddev=0.02)
    z = keras.Input((latent_dim,))
    h = keras.layers.Dense(4 * 4 * 128, use_bias=False, kernel_initializer=init)(z)
    h = keras.layers.Reshape((4, 4, 128))(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    for filters in (64, 32):
        h = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=init)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", kernel_initializer=init)(h)
    return keras.Model(z, keras.layers.Activation("tanh")(h))


def dcgan_sequential(latent_dim):
    init = keras.initializers.RandomNormal(stddev=0.02)
    return keras.Sequential([
        keras.Input((latent_dim,)),
        keras.layers.Dense(4 * 4 * 128, kernel_initializer=init, use_bias=False),
        keras.layers.Reshape((4, 4, 128)), keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        keras.layers.Conv2DTranspose(64, 5, 2, "same", kernel_initializer=init, use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
        keras.layers.Conv2DTranspose(32, 5, 2, "same", kernel_initializer=init, use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
        keras.layers.Conv2DTranspose(1, 5, 2, "same", kernel_initializer=init,
                                     activation="tanh"),
    ])


HONEST = [
    ("check_smoothed_discriminator_loss", smoothed_a),
    ("check_smoothed_discriminator_loss", smoothed_b),
    ("check_smoothed_discriminator_loss", smoothed_c),
    ("check_feature_matching_loss", fm_a),
    ("check_feature_matching_loss", fm_b),
    ("check_minibatch_discrimination", MBD),
    ("check_minibatch_discrimination", MBDFlat),
    ("check_ema_update", ema_a),
    ("check_ema_update", ema_b),
    ("check_dcgan_generator", dcgan_functional),
    ("check_dcgan_generator", dcgan_sequential),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check", ["check_smoothed_discriminator_loss",
                                   "check_feature_matching_loss",
                                   "check_minibatch_discrimination", "check_ema_update"])
def test_reported_values_agree_with_the_graders_own_oracle(check, monkeypatch):
    reports_what_the_grader_recomputes(load, check, dict(HONEST)[check], monkeypatch)


# --- the usual mistakes get their hint ------------------------------------------------------------

def keras_two_sided(real, fake, alpha):
    loss = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=float(alpha))
    return loss(tf.ones_like(real), real) + loss(tf.zeros_like(fake), fake)


class SelfTerm(MBD):
    def call(self, f):
        m = tf.einsum("na,abc->nbc", f, self.T)
        dist = tf.reduce_sum(tf.abs(m[:, None] - m[None, :]), axis=-1)
        return tf.concat([f, tf.reduce_sum(tf.exp(-dist), axis=1)], axis=-1)


class Euclidean(MBD):
    def call(self, f):
        m = tf.einsum("na,abc->nbc", f, self.T)
        dist = tf.norm(m[:, None] - m[None, :], axis=-1)
        return tf.concat([f, tf.reduce_sum(tf.exp(-dist), axis=1) - 1.0], axis=-1)


class Swapped(MBD):
    def call(self, f):
        out = super().call(f)
        return tf.concat([out[:, f.shape[-1]:], f], axis=-1)


def ema_swapped(ema, model, decay):
    for e, m in zip(ema.weights, model.weights, strict=True):
        e.assign((1 - decay) * e + decay * m if m.trainable else m)


def ema_averages_statistics(ema, model, decay):
    for e, m in zip(ema.weights, model.weights, strict=True):
        e.assign(decay * e + (1 - decay) * m)


def ema_skips_statistics(ema, model, decay):
    for e, m in zip(ema.trainable_weights, model.trainable_weights, strict=True):
        e.assign(decay * e + (1 - decay) * m)


def dcgan_glorot(latent_dim):
    model = dcgan_functional(latent_dim)
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            fan = layer.kernel.shape[-1] + layer.kernel.shape[-2]
            layer.kernel.assign(np.random.default_rng(0).uniform(
                -np.sqrt(6 / fan), np.sqrt(6 / fan), layer.kernel.shape))
    return model


def dcgan_sigmoid(latent_dim):
    model = dcgan_functional(latent_dim)
    return keras.Model(model.inputs, keras.layers.Activation("sigmoid")(
        model.layers[-2].output))


def dcgan_two_ups(latent_dim):
    init = keras.initializers.RandomNormal(stddev=0.02)
    z = keras.Input((latent_dim,))
    h = keras.layers.Dense(8 * 8 * 64, use_bias=False, kernel_initializer=init)(z)
    h = keras.layers.Reshape((8, 8, 64))(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same", kernel_initializer=init)(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", kernel_initializer=init)(h)
    return keras.Model(z, keras.layers.Activation("tanh")(h))


def smoothed_numpy(real, fake, alpha):  # the right value, in NumPy: no gradient, no graph
    r, f, t = np.asarray(real, np.float64), np.asarray(fake, np.float64), 1.0 - alpha
    return float(np.mean(t * np.logaddexp(0.0, -r) + (1 - t) * np.logaddexp(0.0, r))
                 + np.mean(np.logaddexp(0.0, f)))


def fm_numpy(real_features, fake_features):  # "return one number", read as a Python float
    total = 0.0
    for r, f in zip(real_features, fake_features, strict=True):
        r = np.reshape(r, (len(r), -1)).mean(axis=0)
        f = np.reshape(f, (len(f), -1)).mean(axis=0)
        total += np.sum((r - f) ** 2)
    return float(total)


def fm_fake_side_frozen(real_features, fake_features):  # G's gradient cut off
    return fm_a(real_features, [tf.stop_gradient(f) for f in fake_features])


def fm_unflattened(real_features, fake_features):  # sums over the last axis only
    return sum(tf.reduce_sum(tf.square(tf.reduce_mean(r, 0) - tf.reduce_mean(f, 0)), axis=-1)
               for r, f in zip(real_features, fake_features, strict=True))


class LoopMBD(MBD):
    """Right values on concrete batches; a Python loop over the batch."""

    def call(self, f):
        m = tf.einsum("na,abc->nbc", f, self.T)
        rows = []
        for i in range(f.shape[0]):
            dist = tf.reduce_sum(tf.abs(m[i][None] - m), axis=-1)
            rows.append(tf.reduce_sum(tf.exp(-dist), axis=0) - 1.0)
        return tf.concat([f, tf.stack(rows)], axis=-1)


class NumpyMBD(MBD):
    """Right values on concrete batches; NumPy inside call."""

    def call(self, f):
        m = np.einsum("na,abc->nbc", np.asarray(f), np.asarray(self.T))
        dist = np.abs(m[:, None] - m[None, :]).sum(axis=-1)
        o = (np.exp(-dist).sum(axis=1) - 1.0).astype(np.float32)
        return tf.concat([f, tf.constant(o)], axis=-1)


def dcgan_no_tanh(latent_dim):  # the last transposed convolution's output as it is
    model = dcgan_functional(latent_dim)
    return keras.Model(model.inputs, model.layers[-2].output)


TRAINER_MISTAKES = [
    ("check_smoothed_discriminator_loss", smoothed_numpy,
     r"compiled, differentiated step.*TensorFlow operations on the logits"),
    ("check_feature_matching_loss", fm_numpy,
     r"compiled, differentiated step.*TensorFlow operations on the features"),
    ("check_feature_matching_loss", fm_fake_side_frozen, "no gradient flows"),
    ("check_minibatch_discrimination", LoopMBD, r"batch size is not known yet.*no NumPy"),
    ("check_minibatch_discrimination", NumpyMBD, r"batch size is not known yet.*no NumPy"),
]


@pytest.mark.parametrize("check, answer, hint", TRAINER_MISTAKES,
                         ids=lambda x: getattr(x, "__name__", None))
def test_right_values_that_the_trainer_could_not_run_fail_at_check_time(check, answer, hint):
    """Each of these gives the reference's values on concrete inputs, so it passed before,
    and then crashed the training cells ("No gradients provided for any variable", or Keras
    unable to build the discriminator): the check now runs it as the trainer does."""
    checks = load()
    names_its_hint(checks, check, answer, hint)
    with pytest.raises(AssertionError, match="works on concrete values but fails") as caught:
        getattr(checks, check)(answer, hidden=True, nonce=99)
    message = str(caught.value)
    assert "expected" not in message and "hidden case" in message
    assert "Error:" not in message  # TensorFlow's own message would name the hidden shapes


def test_the_answers_refused_above_do_crash_the_trainer():
    """The oracle behind the tests above: gantools' trainer cannot train with them."""
    from gantools.models import mlp_discriminator, mlp_generator
    from gantools.training import GANTrainer

    data = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)).batch(16)
    crashes = {
        "NumPy smoothed loss": dict(loss=(lambda r, f: smoothed_numpy(r, f, 0.1),
                                          lambda f: tf.reduce_mean(tf.nn.softplus(-f)))),
        "NumPy feature matching": dict(feature_matching=fm_numpy),
    }
    for name, options in crashes.items():
        trainer = GANTrainer(mlp_generator(4), mlp_discriminator(), diagnose=False,
                             ema_decay=None, **options)
        with pytest.raises(Exception):  # noqa: B017, PT011 - any failure is the point
            trainer.fit(data, 2, progress=False)
        print(name, "crashes the trainer")
    for layer in (LoopMBD(3, 2), NumpyMBD(3, 2)):
        with pytest.raises(Exception):  # noqa: B017, PT011
            mlp_discriminator(minibatch=layer)


def test_a_generator_without_tanh_is_refused():
    """Its untrained pixels stay within ±0.7, so the range test on ordinary noise passed."""
    names_its_hint(load(), "check_dcgan_generator", dcgan_no_tanh,
                   r"outside \[-1, 1\] once its last layer's outputs are large")
    z = tf.random.normal((8, 100), seed=1)
    assert float(tf.reduce_max(tf.abs(dcgan_no_tanh(100)(z, training=False)))) < 1.0


def test_a_feature_matching_loss_that_does_not_flatten_gets_the_flatten_hint():
    names_its_hint(load(), "check_feature_matching_loss", fm_unflattened,
                   r"should return one number.*treat everything after the batch axis")


MISTAKES = [
    ("check_smoothed_discriminator_loss", keras_two_sided, "smooths? only the real label|what "
     "keras.losses.BinaryCrossentropy"),
    ("check_smoothed_discriminator_loss",
     lambda r, f, a: tf.reduce_mean(bce(tf.ones_like(r), r)) + tf.reduce_mean(
         bce(tf.zeros_like(f), f)), "alpha is ignored"),
    ("check_feature_matching_loss",
     lambda rs, fs: tf.add_n([tf.reduce_mean(tf.square(r - f))
                              for r, f in zip(rs, fs, strict=True)]),
     "per-example MSE"),
    ("check_feature_matching_loss",
     lambda rs, fs: tf.add_n([tf.reduce_mean(tf.square(tf.reduce_mean(r, 0)
                                                        - tf.reduce_mean(f, 0)))
                              for r, f in zip(rs, fs, strict=True)]),
     "averaged the squared differences"),
    ("check_feature_matching_loss",
     lambda rs, fs: tf.reduce_sum(tf.square(tf.reduce_mean(rs[0], 0)
                                            - tf.reduce_mean(fs[0], 0))), "only the first layer"),
    ("check_minibatch_discrimination", SelfTerm, "includes j = i"),
    ("check_minibatch_discrimination", Euclidean, "Euclidean"),
    ("check_minibatch_discrimination", Swapped, r"order \[f, o\(f\)\]"),
    ("check_ema_update", ema_swapped, "swapped"),
    ("check_ema_update", ema_averages_statistics, "copied from the generator, not averaged"),
    ("check_ema_update", ema_skips_statistics, "left unchanged"),
    ("check_dcgan_generator", dcgan_glorot, r"N\(0, 0.02\)"),
    ("check_dcgan_generator", dcgan_sigmoid, "no negative pixels"),
    ("check_dcgan_generator", dcgan_two_ups, "takes 3"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    checks = load()
    hides_its_expected_values(checks, "check_smoothed_discriminator_loss", keras_two_sided)
    assert "includes j = i" in hides_its_expected_values(
        checks, "check_minibatch_discrimination", SelfTerm)


def test_ema_check_refuses_an_update_of_the_generator_itself():
    def backwards(ema, model, decay):
        for e, m in zip(ema.weights, model.weights, strict=True):
            m.assign(decay * m + (1 - decay) * e)

    with pytest.raises(AssertionError, match="changed the generator's own weights"):
        load().check_ema_update(backwards)


def test_minibatch_layer_with_extra_weights_is_told_what_to_create():
    class Biased(MBD):
        def build(self, input_shape):
            super().build(input_shape)
            self.b = self.add_weight(shape=(self.num_kernels,), initializer="zeros")

    with pytest.raises(AssertionError, match="exactly one trainable weight, T"):
        load().check_minibatch_discrimination(Biased)


def test_the_gantools_layer_matches_the_checks_oracle():
    """The library's layer (used by the trainer and the benchmark) follows the definition
    the check holds students to. (Through the check itself it would trip the tripwire: a
    submission may not hand in gantools' own layer.)"""
    from gantools.models import MinibatchDiscrimination

    checks = load()
    for _, b, c, t, f in checks._mbd_inputs(5, hidden=False):
        layer = MinibatchDiscrimination(num_kernels=b, kernel_dim=c)
        layer.build((None, f.shape[1]))
        layer.T.assign(t.reshape(layer.T.shape))
        np.testing.assert_allclose(layer(tf.constant(f)).numpy(), checks._mbd_numpy(f, t),
                                   rtol=1e-4, atol=1e-5)  # float32 sums of exp
    with pytest.raises(AssertionError, match="calls the gantools reference"):
        checks.check_minibatch_discrimination(MinibatchDiscrimination)


# --- the DCGAN rules judged on what the layers compute, not on their names --------------------

INIT = keras.initializers.RandomNormal(stddev=0.02)


def named(cls, name):
    """A subclass of ``cls`` called ``name``: a class name tells nothing."""
    return type(name, (cls,), {})


class Passthrough(keras.layers.Layer):
    def call(self, x):
        return x


def dcgan_with(act=keras.layers.ReLU, norm=keras.layers.BatchNormalization,
               up=keras.layers.Conv2DTranspose, init=INIT, norms=(0, 1, 2)):
    """The solution's DCGAN with its parts swapped: the hidden activation, the normalization
    layer, the transposed convolution class, the initializer, and where batch norm goes
    (0: after the projection, 1 and 2: after the hidden convolutions, 3: at the output)."""
    def build(latent_dim):
        z = keras.Input((latent_dim,))
        h = keras.layers.Dense(4 * 4 * 128, use_bias=False, kernel_initializer=init)(z)
        h = keras.layers.Reshape((4, 4, 128))(h)
        h = act()(norm()(h) if 0 in norms else h)
        for i, filters in enumerate((64, 32), start=1):
            h = up(filters, 4, strides=2, padding="same", use_bias=False,
                   kernel_initializer=init)(h)
            h = act()(norm()(h) if i in norms else h)
        h = up(1, 4, strides=2, padding="same", kernel_initializer=init)(h)
        h = norm()(h) if 3 in norms else h
        return keras.Model(z, keras.layers.Activation("tanh")(h))
    return build


class SubclassedDCGAN(keras.Model):
    """Layers in lists, the reshape and the activations written in call()."""

    def __init__(self):
        super().__init__()
        self.project = keras.layers.Dense(4 * 4 * 128, use_bias=False, kernel_initializer=INIT)
        self.norms = [keras.layers.BatchNormalization() for _ in range(3)]
        self.ups = [keras.layers.Conv2DTranspose(f, 5, 2, "same", use_bias=f != 1,
                                                 kernel_initializer=INIT) for f in (64, 32, 1)]

    def call(self, z, training=False):
        h = tf.nn.relu(self.norms[0](tf.reshape(self.project(z), (-1, 4, 4, 128)),
                                     training=training))
        for up, norm in zip(self.ups, self.norms[1:], strict=False):
            h = tf.nn.relu(norm(up(h), training=training))
        return tf.tanh(self.ups[-1](h))


def dcgan_subclassed(latent_dim):
    model = SubclassedDCGAN()
    model(tf.zeros((1, latent_dim)))
    return model


def dcgan_fused(latent_dim, relu=lambda: "relu"):
    """ReLU as the layers' activation, before the batch norm: the old name rules passed it."""
    z = keras.Input((latent_dim,))
    h = keras.layers.Dense(4 * 4 * 128, activation=relu(), kernel_initializer=INIT)(z)
    h = keras.layers.Reshape((4, 4, 128))(keras.layers.BatchNormalization()(h))
    for filters in (64, 32):
        h = keras.layers.Conv2DTranspose(filters, 5, 2, "same", activation=relu(),
                                         kernel_initializer=INIT)(h)
        h = keras.layers.BatchNormalization()(h)
    return keras.Model(z, keras.layers.Conv2DTranspose(1, 5, 2, "same", activation="tanh",
                                                       kernel_initializer=INIT)(h))


def dcgan_layer_activation(latent_dim):
    """A ReLU layer given as the layers' activation: a layer inside a layer."""
    return dcgan_fused(latent_dim, relu=keras.layers.ReLU)


def dcgan_upsampling(latent_dim):
    """Up-sampling layers and stride-1 convolutions: not what the exercise asks."""
    z = keras.Input((latent_dim,))
    h = keras.layers.Reshape((4, 4, 128))(keras.layers.Dense(4 * 4 * 128,
                                                             kernel_initializer=INIT)(z))
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    for filters in (64, 32):
        h = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=INIT)(
            keras.layers.UpSampling2D()(h))
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=INIT)(
        keras.layers.UpSampling2D()(h))
    return keras.Model(z, keras.layers.Activation("tanh")(h))


HONEST_DCGAN = [
    dcgan_functional, dcgan_sequential, dcgan_subclassed, dcgan_fused, dcgan_layer_activation,
    dcgan_with(act=lambda: keras.layers.Lambda(tf.nn.relu),
               norm=named(keras.layers.BatchNormalization, "Norm"),
               up=named(keras.layers.Conv2DTranspose, "Up")),
    dcgan_with(act=lambda: keras.layers.Activation("relu")),
    dcgan_with(act=lambda: keras.layers.LeakyReLU(negative_slope=0.0)),  # a ReLU all the same
]


@pytest.mark.parametrize("answer", HONEST_DCGAN, ids=range(len(HONEST_DCGAN)))
def test_honest_dcgan_spellings_pass(answer, capsys):
    passes_visible_and_hidden(load(), "check_dcgan_generator", answer, capsys)


@pytest.mark.parametrize("check, answer", [
    ("check_dcgan_generator", dcgan_functional), ("check_dcgan_generator", dcgan_fused),
    ("check_minibatch_discrimination", MBD), ("check_minibatch_discrimination", MBDFlat)],
    ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_hidden_checks_for_many_nonces(check, answer, capsys):
    for nonce in range(10):
        getattr(load(), check)(answer, hidden=True, nonce=nonce)
    assert capsys.readouterr().out.count("✓") == 10


@pytest.mark.parametrize("answer, hint", [
    (dcgan_with(act=lambda: keras.layers.Lambda(tf.nn.leaky_relu)), "uses LeakyReLU"),
    (dcgan_with(act=lambda: named(keras.layers.LeakyReLU, "ReLU")(0.2)), "uses LeakyReLU"),
    (dcgan_with(act=lambda: keras.layers.LeakyReLU(0.2)), "uses LeakyReLU"),
    (dcgan_with(act=lambda: keras.layers.Activation("tanh")), "has 0 ReLU"),
    (dcgan_with(norm=named(Passthrough, "BatchNormalization")), "has 0 batch-normalization"),
    (dcgan_with(norm=keras.layers.LayerNormalization), "has 0 batch-normalization"),
    (dcgan_with(norms=(0, 1)), "has 2 batch-normalization"),
    (dcgan_with(norms=(1, 2, 3)), "normalizes its output layer"),
    (dcgan_with(up=named(keras.layers.Conv2DTranspose, "Conv2DTransposed"),
                init="glorot_uniform"), r"N\(0, 0.02\)"),
    (dcgan_with(init=keras.initializers.RandomUniform(-0.0346, 0.0346)), r"N\(0, 0.02\)"),
    (dcgan_upsampling, "takes 3"),
], ids=["lambda-leaky", "renamed-leaky", "leaky", "tanh", "passthrough-named-bn", "layer-norm",
        "two-norms", "norm-at-output", "renamed-up-glorot", "uniform-0.02", "upsampling"])
def test_dcgan_rules_are_judged_on_behaviour(answer, hint):
    names_its_hint(load(), "check_dcgan_generator", answer, hint)


def test_a_dcgan_built_before_the_check_is_refused():
    import functools

    made = dcgan_functional(64)
    cached = functools.lru_cache(dcgan_functional)
    cached(64)
    for builder in (lambda latent_dim: made, cached):
        names_its_hint(load(), "check_dcgan_generator", builder, "existed before it was called")


def test_hidden_sizes_come_from_the_nonce():
    checks = load()
    latents = {checks._dcgan_latent_dims(n, True) for n in range(20)}
    layers = {tuple(checks._mbd_configs(n, True)) for n in range(20)}
    assert len(latents) > 5 and len(layers) > 5 and (64,) not in latents
    assert checks._mbd_configs(7, True) == checks._mbd_configs(7, True)


def test_hidden_minibatch_failures_do_not_name_the_hidden_sizes():
    class VisibleSizesOnly(MBD):
        def call(self, f):
            if f.shape[-1] not in (6, 10):  # the visible cases' numbers of features
                return tf.reshape(f, [3, 7, 11])  # TensorFlow's message names shapes
            return super().call(f)

    checks = load()
    nonce = next(n for n in range(100)
                 if not {a for a, _, _, _ in checks._mbd_configs(n, True)} & {6, 10})
    checks.check_minibatch_discrimination(VisibleSizesOnly)
    with pytest.raises(AssertionError) as caught:
        checks.check_minibatch_discrimination(VisibleSizesOnly, hidden=True, nonce=nonce)
    message = str(caught.value)
    assert "raised" in message and "hidden case" in message
    assert not any(ch.isdigit() for ch in message)
