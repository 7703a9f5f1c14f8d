"""Checks of notebook 01 (the basic GAN). Test cells call them through
``gancourse.checks.load("01_basic_gan")``, which compiles this file afresh from disk.

Expected values come from a private copy of ``gantools.losses.adversarial``; while a
student's function runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only the ``check_*`` functions are public: the harness is reached as ``_h``, a private
name that the answer-cell policy keeps student code away from.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

_STABLE = (" Use the numerically stable logits form (tf.nn.sigmoid_cross_entropy_with_logits "
           "or softplus) rather than log(sigmoid(...)).")


def _losses():
    return _h.reference("gantools.losses.adversarial")


def _bce_cases(seed, hidden):
    shapes = [(8,), (32, 1), (5, 1)] if not hidden else [(1,), (257,), (64, 1)]
    cases = []
    for i, shape in enumerate(shapes):
        real = _h.random_logits(seed + i, shape, shift=1.0)
        fake = _h.random_logits(seed + 100 + i, shape, shift=-1.0)
        cases.append((f"random logits of shape {shape}", (real, fake)))
    # the exercise asks for the numerically stable form: visible and hidden checks both
    # hold logits whose sigmoid rounds to 0 or 1 in float32 (hidden ones other values)
    real = np.array([40.0, -40.0, 90.0] if hidden else [25.0, -120.0, 3.0], np.float32)
    fake = np.array([-40.0, 40.0, -90.0] if hidden else [-25.0, 30.0, 70.0], np.float32)
    cases.append(("very large logits (numerical stability)", (real, fake)))
    return cases


def _softplus(x):
    return tf.nn.softplus(tf.cast(x, tf.float32))


def _d_loss_mistakes():
    mean = tf.reduce_mean

    def probs_bce(real, fake):  # logits read as probabilities (missing from_logits)
        bce = tf.keras.losses.BinaryCrossentropy(from_logits=False)
        return bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)

    return [
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda r, f: tf.reduce_sum(_softplus(-r)) + tf.reduce_sum(_softplus(f))),
        ("the labels are swapped: real images get label 1 and fakes 0.",
         lambda r, f: mean(_softplus(r)) + mean(_softplus(-f))),
        ("the loss reads logits as probabilities: use from_logits=True or the logits form.",
         probs_bce),
        ("sigmoid is applied before a loss that expects logits (sigmoid twice).",
         lambda r, f: mean(_softplus(-tf.sigmoid(r))) + mean(_softplus(tf.sigmoid(f)))),
        ("only the real half: add the loss on the fake batch too.",
         lambda r, f: mean(_softplus(-r))),
        ("the two halves are averaged; the course adds them (E_real + E_fake).",
         lambda r, f: 0.5 * (mean(_softplus(-r)) + mean(_softplus(f)))),
    ]


def _cases(check, seed, hidden):
    """The inputs of a value check: (case description, args) pairs."""
    cases = _bce_cases(seed, hidden)
    if check == "check_discriminator_loss":
        return cases
    return [(c, (args[1],)) for c, args in cases]


def _reference_for(check):
    losses = _losses()
    return {"check_discriminator_loss": losses.discriminator_loss,
            "check_minimax_generator_loss": losses.minimax_generator_loss}[check]


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_discriminator_loss", "check_minimax_generator_loss")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    reference_fn = _reference_for(check)
    return [float(reference_fn(*_h.as_tensors(args)))
            for _, args in _cases(check, seed, hidden)]


@_h.check()
def check_discriminator_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """D loss = E BCE(1, l_real) + E BCE(0, l_fake), on logits."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    check = "check_discriminator_loss"
    _h.value_check(check, "discriminator_loss", fn, _reference_for(check),
                   _cases(check, seed, hidden), _d_loss_mistakes(), hidden, seed,
                   nonfinite_hint=_STABLE)


@_h.check()
def check_minimax_generator_loss(fn, hidden: bool = False, seed: int = 2000, nonce=None):
    """G loss (minimax, minimized) = E log(1 - σ(l_fake)) = -E softplus(l_fake)."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    cases = _cases("check_minimax_generator_loss", seed, hidden)
    mean = tf.reduce_mean
    mistakes = [
        ("this is the non-saturating loss -E log σ(l); the exercise asks for the original "
         "minimax loss E log(1 - σ(l)).", lambda f: mean(_softplus(-f))),
        ("the sign is flipped: G minimizes E log(1 - D(G(z))), which is -E softplus(l).",
         lambda f: mean(_softplus(f))),
        ("you summed over the batch; average instead.", lambda f: -tf.reduce_sum(_softplus(f))),
        ("sigmoid applied to logits before a logits formula (sigmoid twice).",
         lambda f: -mean(_softplus(tf.sigmoid(f)))),
    ]
    check = "check_minimax_generator_loss"
    _h.value_check(check, "generator_loss", fn, _reference_for(check), cases, mistakes, hidden,
                   seed, nonfinite_hint=_STABLE)


# --- models ------------------------------------------------------------------------------

def _build(builder, what, *args):
    """``builder(*args)``, which must build a new model (not return one built before)."""
    __tracebackhide__ = True
    with _h.student_code(what), _h.made_here(what) as judge:
        model = builder(*args)
        # told before the judge's forward pass, which would build a Sequential without Input
        if not _has_weights(model, what):
            raise _h.GradingError(_h.weightless_hint(model, what, _INPUT_NAME[what]))
        # both builders take the size of the model's input first
        return judge(model, tf.zeros((2, args[0])))


_INPUT_NAME = {"build_generator": "latent_dim", "build_discriminator": "data_dim"}


# Any sizes are valid: the hidden ones are drawn from the hidden seed (the grader's nonce),
# so that no model built in advance fits them; the first hidden case always has a data
# dimension other than the visible cases' 2.
_DIMS = (1, 3, 4, 5, 6, 7, 8)


def _generator_configs(seed, hidden):
    """(latent_dim, data_dim) pairs: latent sizes in [1, 4] and [5, 32], data in [1, 8]."""
    if not hidden:
        return [(4, 2), (8, 2)]
    rng = np.random.default_rng((seed, 1))
    return [(int(rng.integers(1, 5)), int(rng.choice(_DIMS))),
            (int(rng.integers(5, 33)), int(rng.integers(1, 9)))]


def _discriminator_dims(seed, hidden):
    """data_dim of each discriminator built: two different sizes in [1, 8] other than 2."""
    if not hidden:
        return (2,)
    return tuple(int(d) for d in np.random.default_rng((seed, 2)).choice(_DIMS, 2,
                                                                          replace=False))


def _has_weights(model, what):
    __tracebackhide__ = True
    with _h.student_code(what):  # a property of a student's class is student code too
        return bool(getattr(model, "trainable_variables", None))


def _run(model, x, what):
    __tracebackhide__ = True
    with _h.student_code(what):
        return np.asarray(model(tf.constant(x), training=False))


@_h.check()
def check_generator(build_generator, hidden: bool = False, seed: int = 0, nonce=None):
    """G = build_generator(latent_dim, data_dim) maps (n, latent_dim) noise to (n, data_dim)."""
    __tracebackhide__ = True
    with _h.hidden_wording(hidden, "build_generator"):
        seed = _h.hidden_seed(seed + 10, hidden, nonce)
        _check_generator(build_generator, _generator_configs(seed, hidden), seed)
    _h.passed("build_generator builds a generator of the right shapes"
              + (" for the hidden sizes." if hidden else "."))


def _check_generator(build_generator, configs, seed):
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    for latent_dim, data_dim in configs:
        g = _build(build_generator, "build_generator", latent_dim, data_dim)
        for n in (1, 7, 64):
            out = _run(g, rng.standard_normal((n, latent_dim)).astype(np.float32),
                       "the generator")
            if out.shape != (n, data_dim):
                raise _h.GradingError(f"build_generator({latent_dim}, {data_dim}) maps noise of "
                                      f"shape ({n}, {latent_dim}) to {out.shape}; expected "
                                      f"({n}, {data_dim}).")
        out = _run(g, rng.standard_normal((32, latent_dim)).astype(np.float32), "the generator")
        if np.allclose(out, out[:1], atol=1e-6):
            raise _h.GradingError("the generator gives the same output for every z: does it use "
                                  "its input?")
        far = _run(g, (rng.standard_normal((256, latent_dim)) * 1000).astype(np.float32),
                   "the generator")
        if np.abs(far).max() <= 1.0:
            raise _h.GradingError("the generator's outputs stay in [-1, 1] even for extreme "
                                  "noise: it ends in tanh or sigmoid. The 2-D data are not "
                                  "bounded (the ring has radius 2): end with Dense(data_dim) "
                                  "without activation.")


@_h.check()
def check_discriminator(build_discriminator, hidden: bool = False, seed: int = 0, nonce=None):
    """D = build_discriminator(data_dim) maps (n, data_dim) data to (n, 1) logits."""
    __tracebackhide__ = True
    with _h.hidden_wording(hidden, "build_discriminator"):
        seed = _h.hidden_seed(seed + 20, hidden, nonce)
        _check_discriminator(build_discriminator, _discriminator_dims(seed, hidden), seed)
    _h.passed("build_discriminator returns one logit per example"
              + (" for the hidden sizes." if hidden else "."))


def _check_discriminator(build_discriminator, dims, seed):
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    for data_dim in dims:
        d = _build(build_discriminator, "build_discriminator", data_dim)
        # activations told by what the layers computed, whatever they are called
        x = tf.constant(rng.standard_normal((16, data_dim)).astype(np.float32) * 3)
        with _h.student_code("the discriminator"):
            groups = _h.activations_between(_h.layer_trace(d, x))
            relu = _h.uses_relu(d, x) or any("relu" in kinds for kinds in groups)
        if relu:
            raise _h.GradingError("the discriminator uses ReLU. Hint: the exercise asks for "
                                  "LeakyReLU(0.2), which keeps a gradient for negative inputs, "
                                  "so that G always gets a signal through D.")
        for n in (1, 9, 64):
            out = _run(d, rng.standard_normal((n, data_dim)).astype(np.float32),
                       "the discriminator")
            if out.shape != (n, 1):
                raise _h.GradingError(f"build_discriminator({data_dim}) maps data of shape "
                                      f"({n}, {data_dim}) to {out.shape}; expected ({n}, 1): one "
                                      "logit per example.")
        far = _run(d, (rng.standard_normal((256, data_dim)) * 1000).astype(np.float32),
                   "the discriminator")
        if far.min() >= 0.0 and far.max() <= 1.0:
            raise _h.GradingError("the discriminator's outputs stay in [0, 1] even for extreme "
                                  "inputs: it ends in a sigmoid. Return logits (a Dense(1) "
                                  "layer without activation); the losses apply the sigmoid.")
        if not all("leaky" in kinds for kinds in groups[:-1]):
            raise _h.GradingError("a hidden layer of the discriminator is not followed by a "
                                  "LeakyReLU. Hint: the exercise asks for LeakyReLU(0.2) after "
                                  "each hidden Dense layer; without an activation D is a "
                                  "linear function of its input.")


# --- the training step ----------------------------------------------------------------------

@_h.check()
def check_train_step(train_step, hidden: bool = False, seed: int = 0, nonce=None):
    """One alternating step: a D update on real and fake, then a G update on fresh fakes.

    The models and optimizers are wrapped so the check sees every batch and every update.
    It then recomputes, with the reference losses, the gradients each update should have
    applied (D's at D's starting weights; G's through the updated D) and compares: the
    right variables, the right loss, the right direction.
    """
    __tracebackhide__ = True
    losses = _losses()
    seed = _h.hidden_seed(seed, hidden, nonce)
    latent_dim, data_dim, batch = (3, 2, 16) if not hidden else (5, 3, 9)
    g0 = _h.mlp([latent_dim, 8, data_dim], seed + 1, "generator")
    d0 = _h.mlp([data_dim, 8, 1], seed + 2, "discriminator")
    g_start = [v.numpy().copy() for v in g0.trainable_variables]
    d_start = [v.numpy().copy() for v in d0.trainable_variables]
    g, d = _h.Recorder(g0), _h.Recorder(d0)
    order = []
    d_opt = _h.RecordingOptimizer(0.1, "d_optimizer", "discriminator", d0.trainable_variables,
                                  g0.trainable_variables, "g_optimizer", order)
    g_opt = _h.RecordingOptimizer(0.1, "g_optimizer", "generator", g0.trainable_variables,
                                  d0.trainable_variables, "d_optimizer", order)
    real = np.random.default_rng(seed + 3).standard_normal((batch, data_dim)).astype(np.float32)
    with _h.lent(losses.discriminator_loss, losses.minimax_generator_loss) as (d_fn, g_fn), \
            _h.student_code("train_step"):
        result = train_step(tf.constant(real), g, d, g_opt, d_opt, d_fn, g_fn, latent_dim)
        returned = ([float(x) for x in result]
                    if isinstance(result, tuple | list) and len(result) == 2 else None)

    _h.one_update_each(d_opt, g_opt, d0, g0, order)

    # D's update: gradients at D's starting weights, on the real batch and the fake batch
    d_inputs = [x.numpy() for x, _ in d._calls]
    other_sizes = sorted({x.shape[0] for x in d_inputs
                          if x.shape[1:] == real.shape[1:] and x.shape[0] != batch})
    if other_sizes:
        raise _h.GradingError(
            f"the discriminator saw a generated batch of {other_sizes[0]} examples and a real "
            f"batch of {batch}. Hint: draw z with tf.shape(real)[0] rows; a fixed batch size "
            "(such as BATCH_SIZE) is not the size of the batch train_step was given.")
    fakes = [x for x in d_inputs if x.shape == real.shape and not np.allclose(x, real)]
    if not any(np.allclose(x, real) for x in d_inputs if x.shape == real.shape) or not fakes:
        raise _h.GradingError("the discriminator must see the real batch and a batch of "
                              "generated data in the D step.")
    d_ref = _h.copy_mlp([data_dim, 8, 1], seed + 2, "d_ref", d_start)

    def d_gradient(first, second):
        with tf.GradientTape() as tape:
            loss = losses.discriminator_loss(d_ref(first), d_ref(second))
        return loss, tape.gradient(loss, d_ref.trainable_variables)

    d_loss, expected = d_gradient(real, fakes[0])
    wrong = _h.first_mismatch(expected, d0.trainable_variables, d_opt._updates[0])
    if wrong is not None:
        swapped = _h.first_mismatch(d_gradient(fakes[0], real)[1], d0.trainable_variables,
                                    d_opt._updates[0]) is None
        raise _h.GradingError(
            "the discriminator update does not follow the gradient of "
            "d_loss_fn(D(real), D(fake)) at D's weights before the update"
            + ("" if hidden else f" (variable {wrong.path})")
            + (". Hint: the arguments are swapped: d_loss_fn takes D's logits on the real "
               "batch first, then on the generated batch." if swapped else
               ". Compute the D loss inside a GradientTape on D's outputs for the real "
               "batch and the generated batch, and take its gradient w.r.t. "
               "discriminator.trainable_variables."))

    # G's update: fresh z through G (starting weights) and the updated D
    z = g._calls[-1][0].numpy()
    g_ref = _h.copy_mlp([latent_dim, 8, data_dim], seed + 1, "g_ref", g_start)
    def g_gradient(discriminator):
        with tf.GradientTape() as tape:
            loss = losses.minimax_generator_loss(discriminator(g_ref(z)))
        return loss, tape.gradient(loss, g_ref.trainable_variables)

    g_loss = _h.g_update_follows(
        g_gradient, d0, d_ref, g0, g_opt, "g_loss_fn(D(G(z)))",
        "Do the D step first, then generate inside a GradientTape and differentiate w.r.t. "
        "generator.trainable_variables.")
    _h.returns_its_losses(returned, d_loss, g_loss, "train_step")
    _h.passed("train_step updates D, then G, each along its own loss's gradient"
              + (" (hidden sizes)." if hidden else "."))
