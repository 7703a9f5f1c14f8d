"""Notebook 03's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, and the values reported to the grader match its own oracle."""

import re

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
    return load_checks("03_wgan")


# --- honest answers, several spellings each ---------------------------------------------------

def critic_loss_a(real, fake):
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def critic_loss_b(real, fake):  # flattened, NumPy-style mean
    return tf.reduce_mean(tf.reshape(fake, [-1])) - tf.reduce_mean(tf.reshape(real, [-1]))


def generator_loss_a(fake):
    return -tf.reduce_mean(fake)


def generator_loss_b(fake):
    return tf.reduce_mean(-tf.squeeze(fake))


class ClipA(keras.constraints.Constraint):
    def __init__(self, clip_value=0.01):
        self.clip_value = clip_value

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)


class ClipB(ClipA):
    def __call__(self, w):  # min/max written out
        return tf.minimum(tf.maximum(w, -self.clip_value), self.clip_value)


class ClipKerasOps(ClipA):
    def __call__(self, w):
        return keras.ops.clip(w, -self.clip_value, self.clip_value)


def critic_functional(input_dim, hidden=(128, 128, 128), clip_value=None, clip_output=True):
    clip = ClipA(clip_value) if clip_value is not None else None
    x = keras.Input((input_dim,))
    h = x
    for units in hidden:
        h = keras.layers.Dense(units, kernel_constraint=clip, bias_constraint=clip)(h)
        h = keras.layers.LeakyReLU(0.2)(h)
    out = clip if clip_output else None
    return keras.Model(x, keras.layers.Dense(1, kernel_constraint=out, bias_constraint=out,
                                             name="score")(h))


def critic_sequential(input_dim, hidden=(128, 128, 128), clip_value=None):
    options = {} if clip_value is None else {
        "kernel_constraint": ClipB(clip_value), "bias_constraint": ClipB(clip_value)}
    layers = [keras.Input((input_dim,))]
    for units in hidden:
        layers.append(keras.layers.Dense(units, **options))
        layers.append(keras.layers.LeakyReLU(negative_slope=0.2))
    layers.append(keras.layers.Dense(1, **options))
    return keras.Sequential(layers)


def _epsilon(real):
    shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    return tf.random.uniform(shape)


def gp_a(critic, real, fake):
    eps = _epsilon(real)
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        scores = critic(x_hat, training=True)
    g = inner.gradient(scores, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def gp_b(critic, real, fake):
    """Flattened gradients, x̂ written as fake + ε (real - fake), epsilon 1e-10."""
    batch = tf.shape(real)[0]
    eps = tf.reshape(tf.random.uniform([batch]), [-1] + [1] * (len(real.shape) - 1))
    x_hat = fake + eps * (real - fake)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = critic(x_hat)
    g = tf.reshape(tape.gradient(out, x_hat), [batch, -1])
    return tf.reduce_mean((tf.sqrt(tf.reduce_sum(g * g, axis=1) + 1e-10) - 1.0) ** 2)


def step_a(real_batches, generator, critic, g_optimizer, c_optimizer, critic_loss_fn,
           generator_loss_fn, penalty_fn, latent_dim, n_critic=5, gp_weight=10.0):
    for _ in range(n_critic):
        real = next(real_batches)
        fake = generator(tf.random.normal((tf.shape(real)[0], latent_dim)), training=True)
        with tf.GradientTape() as tape:
            c_loss = critic_loss_fn(critic(real, training=True), critic(fake, training=True))
            penalty = penalty_fn(critic, real, fake)
            total = c_loss + gp_weight * penalty
        c_optimizer.apply_gradients(zip(tape.gradient(total, critic.trainable_variables),
                                        critic.trainable_variables, strict=False))
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal((tf.shape(real)[0], latent_dim)), training=True)
        g_loss = generator_loss_fn(critic(fake, training=True))
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_variables),
                                    generator.trainable_variables, strict=False))
    return c_loss, penalty, g_loss


@tf.function
def step_b(real_batches, generator, critic, g_optimizer, c_optimizer, critic_loss_fn,
           generator_loss_fn, penalty_fn, latent_dim, n_critic=5, gp_weight=10.0):
    """Compiled by its author, optimizer.apply, fakes generated inside the tape."""
    for _ in range(n_critic):
        real = next(real_batches)
        z = tf.random.normal((tf.shape(real)[0], latent_dim))
        with tf.GradientTape() as tape:
            fake = generator(z)
            c_loss = critic_loss_fn(critic(real), critic(fake))
            penalty = penalty_fn(critic, real, fake)
            loss = c_loss + gp_weight * penalty
        grads = tape.gradient(loss, critic.trainable_variables)
        c_optimizer.apply(grads, critic.trainable_variables)
    z = tf.random.normal((tf.shape(real)[0], latent_dim))
    with tf.GradientTape() as tape:
        g_loss = generator_loss_fn(critic(generator(z)))
    g_optimizer.apply(tape.gradient(g_loss, generator.trainable_variables),
                      generator.trainable_variables)
    return c_loss, penalty, g_loss


HONEST = [
    ("check_critic_loss", critic_loss_a),
    ("check_critic_loss", critic_loss_b),
    ("check_generator_loss", generator_loss_a),
    ("check_generator_loss", generator_loss_b),
    ("check_weight_clip", ClipA),
    ("check_weight_clip", ClipB),
    ("check_weight_clip", ClipKerasOps),
    ("check_critic_builder", critic_functional),
    ("check_critic_builder", critic_sequential),
    ("check_gradient_penalty", gp_a),
    ("check_gradient_penalty", gp_b),
    ("check_gradient_penalty_gradient", gp_a),
    ("check_gradient_penalty_gradient", gp_b),
    ("check_critic_train_step", step_a),
    ("check_critic_train_step", step_b),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check", ["check_critic_loss", "check_generator_loss",
                                   "check_weight_clip", "check_gradient_penalty",
                                   "check_gradient_penalty_gradient"])
def test_reported_values_agree_with_the_graders_own_oracle(check, monkeypatch):
    reports_what_the_grader_recomputes(load, check, dict(HONEST)[check], monkeypatch)


def test_the_closed_forms_agree_with_gantools_penalty():
    """The linear critic's closed form (‖w‖ - 1)² and its gradient 2(‖w‖ - 1)w/‖w‖, which
    the checks hold students to, are what gantools' own gradient_penalty gives."""
    from gantools.losses import gradient_penalty

    checks = load()
    rng = np.random.default_rng(3)
    for norm in (0.3, 1.0, 2.7):
        w = checks._direction(rng, 6, norm)
        critic = checks._linear_critic((3, 2), w)
        real, fake = checks._pairs(rng, 10, (3, 2))
        with tf.GradientTape() as tape:
            value = gradient_penalty(critic, real, fake, seed=1)
        kernel = tape.gradient(value, critic.trainable_variables)[0].numpy().ravel()
        # float32 norm of 6 terms and its second derivative: ~1e-6 relative
        np.testing.assert_allclose(float(value), checks._closed_form(w), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(kernel, 2 * (norm - 1) * w / norm, rtol=1e-4, atol=1e-6)


# --- the usual mistakes get their hint ---------------------------------------------------------

def gp_with(eps_fn=None, norm_fn=None, reduce_fn=None):
    """gp_a with one piece replaced by a mistake."""
    def gp(critic, real, fake):
        eps = eps_fn(real) if eps_fn else _epsilon(real)
        x_hat = eps * real + (1.0 - eps) * fake
        with tf.GradientTape() as inner:
            inner.watch(x_hat)
            scores = critic(x_hat)
        g = inner.gradient(scores, x_hat)
        norm = norm_fn(g) if norm_fn else tf.sqrt(
            tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g))) + 1e-12)
        return reduce_fn(norm) if reduce_fn else tf.reduce_mean(tf.square(norm - 1.0))
    return gp


def gp_unwatched(critic, real, fake):
    eps = _epsilon(real)
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as inner:
        scores = critic(x_hat)
    g = inner.gradient(scores, x_hat)
    return tf.reduce_mean(tf.square(tf.norm(tf.reshape(g, [tf.shape(g)[0], -1]), axis=1) - 1))


def gp_numpy(critic, real, fake):
    return float(gp_a(critic, real, fake).numpy())


def gp_stopped(critic, real, fake):
    eps = _epsilon(real)
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        scores = critic(x_hat)
    g = tf.stop_gradient(inner.gradient(scores, x_hat))
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def step_without(weight=None, swap=False, stale=False, same_fakes=False):
    def step(real_batches, generator, critic, g_optimizer, c_optimizer, critic_loss_fn,
             generator_loss_fn, penalty_fn, latent_dim, n_critic=5, gp_weight=10.0):
        lam = gp_weight if weight is None else weight
        z0 = tf.random.normal((16, latent_dim))
        if stale:
            with tf.GradientTape() as g_tape:
                g_loss = generator_loss_fn(critic(generator(z0)))
            g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        for _ in range(n_critic):
            real = next(real_batches)
            z = z0 if same_fakes else tf.random.normal((tf.shape(real)[0], latent_dim))
            fake = generator(z)
            with tf.GradientTape() as tape:
                scores = (critic(fake), critic(real)) if swap else (critic(real), critic(fake))
                c_loss = critic_loss_fn(*scores)
                penalty = penalty_fn(critic, real, fake)
                total = c_loss + lam * penalty
            c_optimizer.apply_gradients(zip(tape.gradient(total, critic.trainable_variables),
                                            critic.trainable_variables, strict=False))
        if not stale:
            with tf.GradientTape() as g_tape:
                g_loss = generator_loss_fn(critic(generator(tf.random.normal(
                    (tf.shape(real)[0], latent_dim)))))
            g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables, strict=False))
        return c_loss, penalty, g_loss
    return step


def step_one_batch(real_batches, generator, critic, g_optimizer, c_optimizer, critic_loss_fn,
                   generator_loss_fn, penalty_fn, latent_dim, n_critic=5, gp_weight=10.0):
    real = next(real_batches)
    return step_a(iter([real] * n_critic), generator, critic, g_optimizer, c_optimizer,
                  critic_loss_fn, generator_loss_fn, penalty_fn, latent_dim, n_critic, gp_weight)


def step_total_loss(*args):
    c_loss, penalty, g_loss = step_a(*args)
    return c_loss + args[-1] * penalty, penalty, g_loss


def builder_unclipped_output(input_dim, hidden=(128,), clip_value=None):
    return critic_functional(input_dim, hidden, clip_value, clip_output=False)


def builder_relu(input_dim, hidden=(128,), clip_value=None):
    model = critic_sequential(input_dim, hidden, clip_value)
    return keras.Sequential([keras.Input((input_dim,))] + [
        keras.layers.ReLU() if isinstance(layer, keras.layers.LeakyReLU) else layer
        for layer in model.layers])


def step_fixed_noise_batch(real_batches, generator, critic, g_optimizer, c_optimizer,
                           critic_loss_fn, generator_loss_fn, penalty_fn, latent_dim,
                           n_critic=5, gp_weight=10.0):
    for _ in range(n_critic):
        real = next(real_batches)
        fake = generator(tf.random.normal((tf.shape(real)[0], latent_dim)))
        with tf.GradientTape() as tape:
            c_loss = critic_loss_fn(critic(real), critic(fake))
            penalty = penalty_fn(critic, real, fake)
            total = c_loss + gp_weight * penalty
        c_optimizer.apply_gradients(zip(tape.gradient(total, critic.trainable_variables),
                                        critic.trainable_variables, strict=True))
    with tf.GradientTape() as tape:
        g_loss = generator_loss_fn(critic(generator(tf.random.normal((7, latent_dim)))))
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_variables),
                                    generator.trainable_variables, strict=True))
    return c_loss, penalty, g_loss


class ClipUpper(ClipA):
    def __call__(self, w):
        return tf.minimum(w, self.clip_value)


def eps_vector(real):
    return tf.random.uniform((tf.shape(real)[0], 1))


def builder_sigmoid(input_dim, hidden=(128,), clip_value=None):
    model = critic_functional(input_dim, hidden, clip_value)
    return keras.Model(model.inputs, keras.layers.Activation("sigmoid")(model.outputs[0]))


class ClipPositive(ClipA):
    def __call__(self, w):
        return tf.clip_by_value(w, 0.0, self.clip_value)


class ClipFixed(ClipA):
    def __call__(self, w):
        return tf.clip_by_value(w, -0.01, 0.01)


class ClipNorm(ClipA):
    def __call__(self, w):
        return tf.clip_by_norm(w, self.clip_value)


def per_pixel(real):
    return tf.random.uniform(tf.shape(real))


def normal_eps(real):
    return tf.random.normal(tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1],
                                                                    tf.int32)], 0))


def one_eps(real):
    return tf.random.uniform([])


MISTAKES = [
    ("check_critic_loss",  # one mean over paired differences: breaks on unequal batches
     lambda r, f: tf.reduce_mean(tf.reshape(f, [-1]) - tf.reshape(r, [-1])), "different sizes"),
    ("check_critic_loss", lambda r, f: tf.reduce_mean(r) - tf.reduce_mean(f), "sign is flipped"),
    ("check_critic_loss", lambda r, f: tf.reduce_mean(tf.sigmoid(f)) - tf.reduce_mean(
        tf.sigmoid(r)), "sigmoid"),
    ("check_critic_loss", lambda r, f: tf.reduce_mean(tf.nn.softplus(-r)) + tf.reduce_mean(
        tf.nn.softplus(f)), "cross-entropy loss of notebook 01"),
    ("check_generator_loss", lambda f: tf.reduce_mean(f), "sign is flipped"),
    ("check_generator_loss", lambda f: tf.reduce_mean(tf.nn.softplus(-f)), "non-saturating"),
    ("check_weight_clip", ClipPositive, "lower bound is -c"),
    ("check_weight_clip", ClipFixed, "fixed at 0.01"),
    ("check_weight_clip", ClipNorm, "clips the norm"),
    ("check_critic_builder", builder_unclipped_output,
     r"the 4th Dense layer 'score' \(of 4\) has neither kernel_constraint nor bias_constraint"),
    ("check_critic_builder", builder_sigmoid, "sigmoid"),
    ("check_critic_builder", builder_relu, "LeakyReLU"),
    ("check_weight_clip", ClipUpper, "only the upper bound"),
    ("check_gradient_penalty", gp_with(eps_fn=eps_vector), r"\(batch, 1, 1, 1\)"),
    ("check_gradient_penalty", gp_with(norm_fn=lambda g: tf.norm(g) + 0.0 * g[:, 0, 0, 0]
                                       if len(g.shape) == 4 else tf.norm(g, axis=1)),
     "whole batch"),
    ("check_critic_train_step", step_fixed_noise_batch, "tf.shape"),
    ("check_gradient_penalty", gp_with(eps_fn=per_pixel), "ONE ε per example"),
    ("check_gradient_penalty", gp_with(eps_fn=normal_eps), "uniform distribution"),
    ("check_gradient_penalty", gp_with(eps_fn=one_eps), "same ε"),
    ("check_gradient_penalty", gp_with(norm_fn=lambda g: tf.norm(g, axis=1)),
     "over axis 1 only"),
    ("check_gradient_penalty", gp_with(reduce_fn=lambda n: tf.square(tf.reduce_mean(n) - 1)),
     "averaged the norms"),
    ("check_gradient_penalty", gp_with(reduce_fn=lambda n: tf.reduce_mean(
        tf.square(tf.nn.relu(n - 1)))), "one-sided"),
    ("check_gradient_penalty", gp_with(reduce_fn=lambda n: tf.reduce_mean(n * n)), "R1"),
    ("check_gradient_penalty", gp_unwatched, "watch"),
    ("check_gradient_penalty_gradient",
     gp_with(norm_fn=lambda g: tf.norm(tf.reshape(g, [tf.shape(g)[0], -1]), axis=1)),
     "inside the square root"),
    ("check_gradient_penalty_gradient", gp_numpy, "not a TensorFlow tensor"),
    ("check_gradient_penalty_gradient", gp_stopped, "no tf.stop_gradient"),
    ("check_critic_train_step", step_without(weight=0.0), "penalty is missing"),
    ("check_critic_train_step", step_without(weight=1.0), "not weighted"),
    ("check_critic_train_step", step_without(swap=True), "swapped"),
    ("check_critic_train_step", step_without(same_fakes=True), "same fake batch"),
    ("check_critic_train_step", step_without(stale=True), "before the critic updates"),
    ("check_critic_train_step", step_one_batch, r"took 1 real batch"),
    ("check_critic_train_step", step_total_loss, "without the penalty"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    checks = load()
    hides_its_expected_values(checks, "check_critic_loss",
                              lambda r, f: tf.reduce_mean(r) - tf.reduce_mean(f))
    hides_its_expected_values(checks, "check_gradient_penalty",
                              gp_with(reduce_fn=lambda n: tf.reduce_mean(n * n)))


def test_gantools_own_functions_trip_the_tripwire():
    """A submission may not hand in gantools' implementations."""
    from gantools.losses import WeightClip, gradient_penalty, wasserstein_critic_loss

    checks = load()
    for check, answer in (("check_critic_loss", wasserstein_critic_loss),
                          ("check_weight_clip", WeightClip),
                          ("check_gradient_penalty", gradient_penalty)):
        with pytest.raises(AssertionError, match="calls the gantools reference"):
            getattr(checks, check)(answer)


# --- the critic builder: behaviour, not names; fresh models; hidden sizes from the nonce -------

def named(cls, name):
    """A subclass of ``cls`` called ``name``: a class name tells nothing."""
    return type(name, (cls,), {})


def critic_with(act=lambda: keras.layers.LeakyReLU(0.2), dense=keras.layers.Dense):
    """critic_functional with another hidden activation (None: none) or Dense class."""
    def build(input_dim, hidden=(128, 128, 128), clip_value=None):
        clip = ClipA(clip_value) if clip_value is not None else None
        x = keras.Input((input_dim,))
        h = x
        for units in hidden:
            h = dense(units, kernel_constraint=clip, bias_constraint=clip)(h)
            h = act()(h) if act else h
        return keras.Model(x, dense(1, kernel_constraint=clip, bias_constraint=clip)(h))
    return build


class LeakyCritic(keras.Model):
    """Subclassed: the LeakyReLU is tf.nn.leaky_relu in call(), no layer of its own."""

    def __init__(self, hidden, clip):
        super().__init__()
        options = dict(kernel_constraint=clip, bias_constraint=clip)
        self.hidden = [keras.layers.Dense(units, **options) for units in hidden]
        self.score = keras.layers.Dense(1, **options)

    def call(self, x):
        for layer in self.hidden:
            x = tf.nn.leaky_relu(layer(x), alpha=0.2)
        return self.score(x)


def critic_subclassed(input_dim, hidden=(128, 128, 128), clip_value=None):
    model = LeakyCritic(hidden, ClipB(clip_value) if clip_value is not None else None)
    model(tf.zeros((1, input_dim)))
    return model


def critic_fused(input_dim, hidden=(128, 128, 128), clip_value=None):
    """LeakyReLU as each Dense layer's activation, a renamed Dense class."""
    clip = ClipA(clip_value) if clip_value is not None else None
    layer = named(keras.layers.Dense, "Linear")
    x = keras.Input((input_dim,))
    h = x
    for units in hidden:
        h = layer(units, activation="leaky_relu", kernel_constraint=clip, bias_constraint=clip)(h)
    return keras.Model(x, layer(1, kernel_constraint=clip, bias_constraint=clip)(h))


def critic_layer_activation(input_dim, hidden=(128, 128, 128), clip_value=None):
    """A LeakyReLU layer given as each hidden Dense layer's activation."""
    clip = ClipA(clip_value) if clip_value is not None else None
    x = keras.Input((input_dim,))
    h = x
    for units in hidden:
        h = keras.layers.Dense(units, activation=keras.layers.LeakyReLU(0.2),
                               kernel_constraint=clip, bias_constraint=clip)(h)
    return keras.Model(x, keras.layers.Dense(1, kernel_constraint=clip,
                                             bias_constraint=clip)(h))


def critic_added(input_dim, hidden=(128, 128, 128), clip_value=None, clip=ClipA,
                 first="input"):
    """keras.Sequential() filled with .add(...): the input given as a keras.Input (``first``
    "input") or as the first Dense layer's input_shape ("input_shape")."""
    options = {} if clip_value is None else {
        "kernel_constraint": clip(clip_value), "bias_constraint": clip(clip_value)}
    model = keras.Sequential(name="critic")
    if first == "input":
        model.add(keras.Input((input_dim,)))
    for i, units in enumerate(hidden):
        shape = {"input_shape": (input_dim,)} if first == "input_shape" and i == 0 else {}
        model.add(keras.layers.Dense(units, **options, **shape))
        model.add(keras.layers.LeakyReLU(0.2))
    model.add(keras.layers.Dense(1, **options))
    return model


def critic_added_input_shape(input_dim, hidden=(128, 128, 128), clip_value=None):
    import warnings

    with warnings.catch_warnings():  # Keras 3 asks for keras.Input, and builds it all the same
        warnings.simplefilter("ignore")
        return critic_added(input_dim, hidden, clip_value, first="input_shape")


def critic_clipped_by(clip):
    """critic_added with another honest spelling of the constraint."""
    def build(input_dim, hidden=(128, 128, 128), clip_value=None):
        return critic_added(input_dim, hidden, clip_value, clip=clip)
    build.__name__ = f"critic_clipped_by_{clip.__name__}"
    return build


HONEST_CRITICS = [critic_functional, critic_sequential, critic_subclassed, critic_fused,
                  critic_with(lambda: keras.layers.Lambda(lambda t: tf.nn.leaky_relu(t, 0.2))),
                  critic_layer_activation, critic_added, critic_added_input_shape,
                  critic_clipped_by(ClipKerasOps)]


@pytest.mark.parametrize("answer", HONEST_CRITICS, ids=range(len(HONEST_CRITICS)))
def test_honest_critics_pass_hidden_checks_for_many_nonces(answer, capsys):
    checks = load()
    checks.check_critic_builder(answer)
    for nonce in range(5):
        checks.check_critic_builder(answer, hidden=True, nonce=nonce)
    assert capsys.readouterr().out.count("✓") == 6


@pytest.mark.parametrize("act", [
    lambda: keras.layers.Lambda(tf.nn.relu), lambda: keras.layers.Activation("relu"),
    lambda: keras.layers.LeakyReLU(negative_slope=0.0),
    lambda: named(keras.layers.ReLU, "LeakyReLU")()], ids=["lambda", "activation",
                                                           "slope-0", "renamed"])
def test_a_relu_in_the_critic_is_found_however_it_is_written(act):
    names_its_hint(load(), "check_critic_builder", critic_with(act), "uses ReLU")


def test_the_critic_needs_a_leaky_relu_after_each_hidden_layer():
    for act in (None, lambda: keras.layers.Activation("tanh")):
        names_its_hint(load(), "check_critic_builder", critic_with(act),
                       "not followed by a LeakyReLU")


class SkipsSquareLayers(keras.Model):
    """Holds a Dense layer per size, in order, but never runs those that keep the width."""

    def __init__(self, input_dim, hidden, clip_value):
        super().__init__()
        clip = ClipA(clip_value) if clip_value is not None else None
        self.widths = list(zip((input_dim, *hidden), (*hidden, 1), strict=True))
        self.stack = [keras.layers.Dense(units, kernel_constraint=clip, bias_constraint=clip)
                      for _, units in self.widths]

    def call(self, x):
        for layer, (width, units) in zip(self.stack, self.widths, strict=True):
            if width != units:
                x = layer(x)
                x = tf.nn.leaky_relu(x, 0.2) if units != 1 else x
        return x


def test_the_critics_layers_are_judged_by_the_forward_pass_not_by_its_variables():
    """A layer that is built but never run has the right kernel shape and computes
    nothing: the old rule read the model's list of kernels and passed it."""
    def build(input_dim, hidden=(128,), clip_value=None):
        model = SkipsSquareLayers(input_dim, hidden, clip_value)
        for layer, (width, _) in zip(model.stack, model.widths, strict=True):
            layer.build((None, width))
        model(tf.zeros((1, input_dim)))
        return model

    names_its_hint(load(), "check_critic_builder", build, "should stack Dense layers")


def test_a_critic_built_before_the_check_is_refused():
    import functools

    made = critic_functional(2, (16, 8), None)
    cached = functools.lru_cache(critic_functional)
    cached(2, (16, 8), None)
    for builder in (lambda *args: made, cached):
        names_its_hint(load(), "check_critic_builder", builder, "existed before it was called")


def test_hidden_critic_sizes_come_from_the_nonce():
    checks = load()
    configs = {tuple(checks._builder_configs(n, True)) for n in range(20)}
    assert len(configs) > 5
    assert checks._builder_configs(7, True) == checks._builder_configs(7, True)
    for (_, _, none), (_, _, clip) in configs:
        assert none is None and 0 < clip < 1


# --- constraints run where the trainer runs them: inside a compiled step ------------------------

class ClipNumpy(ClipA):
    def __call__(self, w):  # right when called eagerly; no NumPy inside a graph
        return np.clip(w, -self.clip_value, self.clip_value)


class ClipNumpyValue(ClipA):
    def __call__(self, w):  # .numpy() exists only eagerly
        return np.clip(w.numpy(), -self.clip_value, self.clip_value)


COMPILED_HINT = (r"fails when the optimizer applies it inside a compiled training step "
                 r"\(tf.function\).*Hint: use TensorFlow operations in WeightClip.__call__ "
                 r"\(tf.clip_by_value\(w, -c, c\) or keras.ops.clip\).*NumPy functions and "
                 r"\.numpy\(\) cannot run")


@pytest.mark.parametrize("clip", [ClipNumpy, ClipNumpyValue], ids=lambda c: c.__name__)
def test_a_numpy_weight_clip_fails_at_check_time_as_it_would_in_the_compiled_trainer(clip):
    """np.clip(w, ...) and np.clip(w.numpy(), ...) give the right values eagerly, and the
    checks used to call them only so; the notebook's compiled step then failed with "numpy()
    is only available when eager execution is enabled"."""
    checks = load()
    names_its_hint(checks, "check_weight_clip", clip, COMPILED_HINT)
    names_its_hint(checks, "check_critic_builder", critic_clipped_by(clip), COMPILED_HINT)
    for check, answer in (("check_weight_clip", clip),
                          ("check_critic_builder", critic_clipped_by(clip))):
        with pytest.raises(AssertionError, match=COMPILED_HINT):
            getattr(checks, check)(answer, hidden=True, nonce=5)


def test_the_compiled_constraint_is_what_the_notebooks_compiled_step_runs():
    """What the checks trace is what the trainer runs: a step compiled like the notebook's
    (tf.function, AutoGraph on, the models and optimizer passed in) fails the same way with
    a NumPy constraint, and clips with a TensorFlow one."""
    @tf.function
    def step(critic, optimizer, x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(critic(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, critic.trainable_variables),
                                      critic.trainable_variables, strict=True))

    x = tf.constant(np.random.default_rng(0).standard_normal((8, 2)) * 100, tf.float32)
    for clip, fails in ((ClipNumpy, True), (ClipNumpyValue, True), (ClipA, False),
                        (ClipB, False), (ClipKerasOps, False)):
        critic = critic_clipped_by(clip)(2, (4,), 0.05)
        optimizer = keras.optimizers.SGD(10.0)
        if fails:
            with pytest.raises(Exception, match="only available when eager execution"):
                step(critic, optimizer, x)
        else:
            step(critic, optimizer, x)
            assert max(np.abs(v.numpy()).max() for v in critic.trainable_variables) <= 0.05


def test_a_constraint_that_fails_eagerly_too_is_not_blamed_on_compiling():
    class Broken(ClipA):
        def __call__(self, w):
            return tf.clip_by_value(w, -self.clip_vaule, self.clip_value)  # a typo

    with pytest.raises(AssertionError) as caught:
        load().check_critic_builder(critic_clipped_by(Broken))
    assert "raised AttributeError" in str(caught.value)
    assert "compiled" not in str(caught.value)


# --- an unclipped Dense layer is named by its place, however the critic was built ---------------

def critic_missing(build, missing, layer=1):
    """A critic built the ``build`` way ("functional", "sequential", "subclassed") whose
    Dense layer number ``layer`` (from 0), named "middle", lacks the ``missing``
    constraint(s)."""
    def builder(input_dim, hidden=(128, 128, 128), clip_value=None):
        def options(i):
            if clip_value is None:
                return {}
            kept = {"kernel_constraint": ClipA(clip_value), "bias_constraint": ClipA(clip_value)}
            if i == layer:
                kept = {k: v for k, v in kept.items() if missing not in ("both", k[:-11])}
            return {**kept, "name": "middle"} if i == layer else kept

        units = [*hidden, 1]
        if build == "subclassed":
            model = SubclassedCritic([keras.layers.Dense(u, **options(i))
                                      for i, u in enumerate(units)])
            model(tf.zeros((1, input_dim)))
            return model
        if build == "sequential":
            model = keras.Sequential(name="critic")
            model.add(keras.Input((input_dim,)))
            for i, u in enumerate(units):
                model.add(keras.layers.Dense(u, **options(i)))
                if i < len(hidden):
                    model.add(keras.layers.LeakyReLU(0.2))
            return model
        x = keras.Input((input_dim,))
        h = x
        for i, u in enumerate(units):
            h = keras.layers.Dense(u, **options(i))(h)
            h = keras.layers.LeakyReLU(0.2)(h) if i < len(hidden) else h
        return keras.Model(x, h, name="critic")
    return builder


class SubclassedCritic(keras.Model):
    def __init__(self, layers):
        super().__init__(name="critic")
        self.stack = layers

    def call(self, x):
        for layer in self.stack[:-1]:
            x = tf.nn.leaky_relu(layer(x), 0.2)
        return self.stack[-1](x)


@pytest.mark.parametrize("build", ["functional", "sequential", "subclassed"])
@pytest.mark.parametrize("missing, said", [
    ("both", "has neither kernel_constraint nor bias_constraint: .* its kernel and bias left"),
    ("kernel", "has no kernel_constraint: .* its kernel left"),
    ("bias", "has no bias_constraint: .* its bias left")])
def test_an_unclipped_dense_layer_is_named_by_its_place_not_by_the_model(build, missing, said):
    """The message used to name the first part of the variable's path: the model ('critic',
    'sequential_1') when a Sequential or a subclassed model built the layer."""
    with pytest.raises(AssertionError) as caught:
        load().check_critic_builder(critic_missing(build, missing))
    message = str(caught.value)
    # the visible clipped case is build_critic(3, (8, 8, 4), clip_value=0.05): 4 Dense layers
    assert re.search(r"^the 2nd Dense layer 'middle' \(of 4\) " + said + r" \[-0\.05, 0\.05\]",
                     message), message
    assert "'critic'" not in message and "sequential" not in message
    assert "kernel_constraint=WeightClip(clip_value) and bias_constraint=WeightClip" in message


def test_a_sequential_critic_without_any_input_shape_gets_the_input_hint():
    """Filled with .add(...) and given no input shape at all, it has no weights when
    build_critic returns it, and ignores input_dim: every builder check of the course asks
    for keras.Input(shape=(input_dim,)) then (tests/course/test_grading.py)."""
    names_its_hint(load(), "check_critic_builder",
                   lambda *args: critic_added(*args, first=None),
                   r"has none yet.*keras.Input\(shape=\(input_dim,\)\)")


# --- a forgotten inner.watch(x_hat): the same hint from every check that runs the penalty -------

def gp_unwatched_then(finish):
    """A penalty that forgets inner.watch(x_hat), then does ``finish(g)`` with g = None."""
    def gp(critic, real, fake):
        eps = _epsilon(real)
        x_hat = eps * real + (1.0 - eps) * fake
        with tf.GradientTape() as inner:
            scores = critic(x_hat)
        return finish(inner.gradient(scores, x_hat))
    return gp


UNWATCHED = {  # what fails first on g = None, and how
    "ValueError": lambda g: tf.reduce_mean(tf.square(tf.norm(g, axis=-1) - 1.0)),
    "TypeError": lambda g: tf.reduce_mean((tf.sqrt(tf.reduce_sum(g * g, axis=1)) - 1) ** 2),
    "AttributeError": lambda g: tf.reduce_mean(tf.square(tf.norm(
        tf.reshape(g, [g.shape[0], -1]), axis=1) - 1.0)),
}

WATCH_HINT = (r"the inner tape gave no gradient \(None\).*x̂ is a tensor, not a variable.*"
              r"call inner_tape.watch\(x_hat\)")


@pytest.mark.parametrize("check", ["check_gradient_penalty", "check_gradient_penalty_gradient"])
@pytest.mark.parametrize("error", list(UNWATCHED))
def test_an_unwatched_x_hat_gets_the_watch_hint_from_every_penalty_check(check, error):
    """check_gradient_penalty_gradient used to say only "'NoneType' object has no attribute
    'shape'"; the hint now comes from seeing the tape return None, whatever fails next."""
    with pytest.raises(AssertionError) as caught:
        getattr(load(), check)(gp_unwatched_then(UNWATCHED[error]))
    assert re.search(f"gradient_penalty raised {error}: .*Hint: " + WATCH_HINT,
                     str(caught.value)), str(caught.value)
    with pytest.raises(AssertionError, match=WATCH_HINT):
        getattr(load(), check)(gp_unwatched_then(UNWATCHED[error]), hidden=True, nonce=3)


def test_an_unwatched_x_hat_replaced_by_zeros_gets_the_watch_hint_too():
    """No error at all: the None gradient made a zero, and the values are wrong."""
    def gp(critic, real, fake):
        eps = _epsilon(real)
        x_hat = eps * real + (1.0 - eps) * fake
        with tf.GradientTape() as inner:
            scores = critic(x_hat)
        g = inner.gradient(scores, x_hat)
        g = tf.zeros_like(x_hat) if g is None else g
        norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g))) + 1e-12)
        return tf.reduce_mean(tf.square(norm - 1.0))

    for check in ("check_gradient_penalty", "check_gradient_penalty_gradient"):
        names_its_hint(load(), check, gp, WATCH_HINT)


def test_other_errors_of_the_penalty_get_no_watch_hint():
    """Only a None gradient tells of a missing watch, not an error that mentions None."""
    def gp(critic, real, fake):
        raise ValueError("None of the shapes fit")

    for check in ("check_gradient_penalty", "check_gradient_penalty_gradient"):
        with pytest.raises(AssertionError) as caught:
            getattr(load(), check)(gp)
        assert "None of the shapes fit" in str(caught.value)
        assert "watch" not in str(caught.value)


def test_the_penalty_checks_leave_the_gradient_tape_as_they_found_it():
    gradient = tf.GradientTape.gradient
    load().check_gradient_penalty(gp_a)
    with pytest.raises(AssertionError):
        load().check_gradient_penalty_gradient(gp_unwatched)
    assert tf.GradientTape.gradient is gradient


# --- the locked cell that measures gradients through a deep critic ------------------------------

def notebook_function(grade_id, name):
    """The function ``name`` defined in the source notebook's cell ``grade_id``, compiled
    alone (the rest of that cell trains critics)."""
    import ast
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "course" / "source" / "03_wgan" / \
        "03_wgan.ipynb"
    cell, = [c for c in json.loads(path.read_text())["cells"]
             if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    tree = ast.parse("".join(cell["source"]))
    node, = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    import gantools.data as gd

    space = {"keras": keras, "tf": tf, "np": np, "gd": gd, "TOY_BATCH": 64,
             "critic_loss": critic_loss_a}
    exec(compile(ast.Module([node], []), str(path), "exec"), space)  # noqa: S102
    return space[name]


@pytest.mark.parametrize("build", [critic_added, critic_added_input_shape, critic_functional])
def test_the_deep_critic_measurement_works_however_the_critic_was_built(build):
    """Cell 'gradient_norms' once built a taps model from ``layer.output``, which a critic
    built with Sequential().add() cannot give (its layers carry several inbound nodes). It
    now calls the layers in turn; the norms must equal those through the functional critic's
    own taps model (the oracle), for the same weights."""
    measure = notebook_function("gradient_norms", "layer_gradient_norms")
    keras.utils.set_random_seed(0)
    reference = critic_functional(2, (16, 16, 16), clip_value=None)
    critic = build(2, (16, 16, 16), clip_value=None)
    critic(tf.zeros((1, 2)))
    critic.set_weights(reference.get_weights())

    dense = [layer for layer in reference.layers if isinstance(layer, keras.layers.Dense)]
    taps = keras.Model(reference.inputs, [layer.output for layer in dense])
    import gantools.data as gd

    tf.random.set_seed(7)  # then the same calls as the cell's function, in its order
    real = next(iter(gd.load("ring", batch_size=64, seed=1)))
    fake = real + tf.random.normal(tf.shape(real))
    with tf.GradientTape() as tape:
        h_real, h_fake = taps(real), taps(fake)
        loss = critic_loss_a(h_real[-1], h_fake[-1])
    expected = [float(tf.norm(g)) for g in tape.gradient(loss, h_real[:-1])]

    tf.random.set_seed(7)
    got = measure(critic)
    assert len(got) == 3
    np.testing.assert_allclose(got, expected, rtol=1e-5)  # float32 sums of 64×16 terms


def critic_loss_axis0(real, fake):  # the right value, shape (1,) on (batch, 1) scores
    return tf.reduce_mean(fake, axis=0) - tf.reduce_mean(real, axis=0)


def generator_loss_axis0(fake):
    return -tf.reduce_mean(fake, axis=0)


@pytest.mark.parametrize("check, answer", [("check_critic_loss", critic_loss_axis0),
                                           ("check_generator_loss", generator_loss_axis0)])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_loss_of_shape_1_is_refused_before_it_crashes_the_training_cells(check, answer, hidden):
    """A mean over axis 0 has the reference's value, so value checks alone passed it; the
    notebook's training then failed on float(loss) and on adding it to scalars."""
    with pytest.raises(Exception, match=r"not a scalar \(shape \(\)\).*tf.reduce_mean"):
        getattr(load(), check)(answer, hidden=hidden)
