"""Checks of notebook 08 (the semi-supervised GAN). Test cells call them through
``gancourse.checks.load("08_semi_supervised_gan")``, which compiles this file afresh from disk.

The two losses are compared with NumPy oracles in float64 (the log-sum-exp shifted by the
largest logit, softplus as ``logaddexp(0, x)``) on cases that include logits far beyond
float32's ``exp`` range, then traced and differentiated as the training step runs them.
The two steps are checked like notebook 01's: the models and the optimizer are wrapped, so
the check sees every call (with its ``training`` flag) and the update; the gradient the
update should have applied is recomputed with private copies of the reference losses
(``gantools.losses.semisupervised``) at the weights before the update. While a student's
code runs, every gantools function is booby-trapped (see :mod:`gancourse.checks.harness`).
Messages of hidden checks never show expected values. Only ``check_*``, ``expected`` and
``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

_REFERENCE = "gantools.losses.semisupervised"

# --- NumPy oracles ---------------------------------------------------------------------------


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _lse(logits):
    """log Σ_k exp ℓ_k along the last axis, shifted by the largest logit (never overflows)."""
    a = _np(logits)
    top = a.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=-1, keepdims=True)))[..., 0]


def _softplus(x):
    return np.logaddexp(0.0, _np(x))


def _supervised(logits, labels):
    a = _np(logits)
    labels = np.asarray(labels).reshape(-1).astype(int)
    return float(np.mean(_lse(a) - a[np.arange(len(a)), labels]))


def _unsupervised(real_logits, fake_logits):
    return float(np.mean(_softplus(-_lse(real_logits))) + np.mean(_softplus(_lse(fake_logits))))


# --- exercise 1: the supervised loss ----------------------------------------------------------

def _sup_cases(seed, hidden):
    """(description, [logits float32 (n, K), labels int32 (n,)])."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3, 3.0), (6, 10, 3.0), (5, 10, 40.0)] if not hidden else \
        [(7, 4, 2.0), (3, 10, 5.0), (9, 6, 60.0)]
    cases = []
    for n, k, scale in shapes:
        logits = (rng.standard_normal((n, k)) * scale).astype(np.float32)
        if scale > 10:  # beyond float32's exp (e^88.7 overflows): a naive LSE is infinite
            logits[1] = np.abs(logits[1]) + 100.0
        labels = rng.integers(0, k, n).astype(np.int32)
        labels[0] = int(np.argmin(logits[0]))  # one label the logits find unlikely
        what = f"{n} examples, {k} classes" + (
            f", confident logits (scale {scale:g}, some above 100)" if scale > 10 else "")
        cases.append((what, [logits, labels]))
    return cases


def _onehot(labels, k):
    return np.eye(k)[np.asarray(labels).reshape(-1).astype(int)]


def _sup_mistakes():
    def softmax(a):
        a = _np(a)
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def sigmoid_per_class(logits, labels):
        a, t = _np(logits), _onehot(labels, np.shape(logits)[-1])
        return float(np.mean(t * _softplus(-a) + (1 - t) * _softplus(a)))

    def keras_probabilities(logits, labels):  # from_logits=False on logits
        import keras

        return float(np.mean(keras.losses.sparse_categorical_crossentropy(
            np.asarray(labels), np.asarray(logits, np.float32))))

    def keras_after_softmax(logits, labels):  # probabilities clipped at 1e-7 by Keras
        import keras

        return float(np.mean(keras.losses.sparse_categorical_crossentropy(
            np.asarray(labels), softmax(logits).astype(np.float32))))

    def max_logit(logits, labels):
        a = _np(logits)
        return float(np.mean(a.max(-1) - a[np.arange(len(a)), np.asarray(labels).astype(int)]))

    def with_fake_class(logits, labels):
        a = _np(logits)
        return _supervised(np.concatenate([a, np.zeros((len(a), 1))], axis=1), labels)

    return [
        ("the logits went through a softmax twice: pass the raw logits to a loss that takes "
         "logits (tf.nn.sparse_softmax_cross_entropy_with_logits, or from_logits=True), or "
         "take the softmax once and the log of the label's probability.",
         lambda a, y: _supervised(softmax(a), y)),
        ("the loss treated the logits as probabilities: keras.losses.sparse_categorical_"
         "crossentropy needs from_logits=True for raw logits.", keras_probabilities),
        ("the probabilities went to a cross-entropy that clips them at 1e-7 (Keras's, without "
         "from_logits): confident logits give a loss that is far too small. Hand the raw "
         "logits to a loss that takes logits (from_logits=True).", keras_after_softmax),
        ("the largest logit stands in for the log-sum-exp: LSE(ℓ) = log Σ_k exp ℓ_k "
         "(tf.reduce_logsumexp) counts every class.", max_logit),
        ("this is a sigmoid (binary) cross-entropy per class; the K classes exclude each "
         "other: use the softmax cross-entropy.", sigmoid_per_class),
        ("a fake class with logit 0 took part in the softmax. The labelled examples are real, "
         "so the supervised loss is -log p(y | x, real): a softmax over the K logits alone.",
         with_fake_class),
        ("the loss is summed over the batch; take the mean (tf.reduce_mean).",
         lambda a, y: len(np.asarray(a)) * _supervised(a, y)),
        ("the sign is wrong: the loss is -log p(y | x), which is ≥ 0.",
         lambda a, y: -_supervised(a, y)),
    ]


_LOG_SPACE = (" Hint: compute in log space. For the supervised loss, hand the raw logits to "
              "tf.nn.sparse_softmax_cross_entropy_with_logits (or a Keras loss with "
              "from_logits=True): a softmax of confident logits rounds the small "
              "probabilities to 0, and log 0 is infinite.")

_LOSS_OPS = ("use TensorFlow operations on the logits (tf.reduce_logsumexp, tf.nn.softplus, "
             "tf.reduce_mean), not NumPy or float(): the training step is compiled and "
             "differentiated through this loss.")


@_h.check()
def check_supervised_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """supervised_loss(logits, labels) = mean_i [LSE(ℓ(x_i)) − ℓ_{y_i}(x_i)], finite for any
    logits, traced and differentiated as the training step runs it."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    cases = _sup_cases(seed, hidden)
    logits, labels = cases[0][1]
    _h.value_check(
        "check_supervised_loss", "supervised_loss", fn, _supervised, cases, _sup_mistakes(),
        hidden, seed, nonfinite_hint=_LOG_SPACE,
        then=lambda: _h.compiled_loss("supervised_loss", fn, [logits, labels], _LOSS_OPS,
                                      wrt=[0], hidden=hidden))


# --- exercise 2: the unsupervised loss --------------------------------------------------------

def _unsup_cases(seed, hidden):
    """(description, [real logits (n_r, K), fake logits (n_f, K)]), float32."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 4, 3, 2.0, 0.0, 0.0), (6, 3, 10, 3.0, 1.0, -1.0), (5, 5, 10, 3.0, 95.0, 95.0),
              (3, 4, 10, 3.0, -95.0, -95.0)] if not hidden else \
        [(5, 8, 4, 2.5, 0.5, 0.0), (7, 7, 10, 2.0, -1.0, 2.0), (4, 6, 6, 4.0, 120.0, 110.0),
         (6, 2, 10, 3.0, -110.0, -120.0)]
    cases = []
    for n_r, n_f, k, scale, shift_r, shift_f in shapes:
        real = (rng.standard_normal((n_r, k)) * scale + shift_r).astype(np.float32)
        fake = (rng.standard_normal((n_f, k)) * scale + shift_f).astype(np.float32)
        what = f"{n_r} real and {n_f} generated examples, {k} classes"
        if max(abs(shift_r), abs(shift_f)) > 50:
            what += f", logits around {shift_r:+g} and {shift_f:+g}"
        cases.append((what, [real, fake]))
    return cases


def _unsup_mistakes():
    def unsup(real_score, fake_score):
        return lambda r, f: float(np.mean(_softplus(-real_score(_np(r))))
                                  + np.mean(_softplus(fake_score(_np(f)))))

    with np.errstate(over="ignore"):
        return [
            ("the largest logit stands in for the log-sum-exp: LSE(ℓ) = log Σ_k exp ℓ_k "
             "(tf.reduce_logsumexp) counts every class.",
             unsup(lambda a: a.max(-1), lambda a: a.max(-1))),
            ("the log-sum-exp ran over the whole batch; it runs over the K classes of each "
             "example: tf.reduce_logsumexp(logits, axis=1), one value per example.",
             lambda r, f: float(_softplus(-_lse(_np(r).reshape(-1)))
                                + _softplus(_lse(_np(f).reshape(-1))))),
            ("the mean of the logits stands in for the log-sum-exp: LSE(ℓ) = log Σ_k exp ℓ_k "
             "(tf.reduce_logsumexp).", unsup(lambda a: a.mean(-1), lambda a: a.mean(-1))),
            ("Z = Σ_k exp ℓ_k was used as the logit; the logit of 'real' is its log, "
             "LSE(ℓ) = log Z (tf.reduce_logsumexp).",
             unsup(lambda a: np.exp(a).sum(-1), lambda a: np.exp(a).sum(-1))),
            ("real and generated are swapped: real examples should get a large LSE(ℓ), "
             "so the real term is softplus(-LSE(ℓ(x))) and the generated one "
             "softplus(LSE(ℓ(G(z)))).", lambda r, f: _unsupervised(f, r)),
            ("the generated examples are treated as real too: their term is "
             "-log(1 - D(G(z))) = softplus(+LSE(ℓ(G(z)))).",
             lambda r, f: float(np.mean(_softplus(-_lse(r))) + np.mean(_softplus(-_lse(f))))),
            ("only the real examples' term is there; add the generated examples' "
             "mean softplus(LSE(ℓ(G(z)))).", lambda r, f: float(np.mean(_softplus(-_lse(r))))),
            ("only the generated examples' term is there; add the real examples' "
             "mean softplus(-LSE(ℓ(x))).", lambda r, f: float(np.mean(_softplus(_lse(f))))),
            ("one mean was taken over the real and generated examples together; take the mean "
             "of each batch separately (they can differ in size), then add the two.",
             lambda r, f: float(np.mean(np.concatenate([_softplus(-_lse(r)),
                                                        _softplus(_lse(f))])))),
            ("the loss is summed over the examples; take the mean of each batch.",
             lambda r, f: float(np.sum(_softplus(-_lse(r))) + np.sum(_softplus(_lse(f))))),
        ]


_UNSUP_FINITE = (" Hint: compute in log space: tf.reduce_logsumexp for LSE(ℓ) (exp of a "
                 "logit above 88 overflows float32) and tf.nn.softplus(x) for log(1 + eˣ) "
                 "(log D and log(1 − D) are infinite once D rounds to 1 or 0): "
                 "-log D(x) = softplus(-LSE(ℓ(x))), -log(1 − D(x)) = softplus(LSE(ℓ(x))).")


@_h.check()
def check_unsupervised_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """unsupervised_loss(real_logits, fake_logits) = mean softplus(−LSE(ℓ(x))) +
    mean softplus(LSE(ℓ(G(z)))), each mean over its own batch, finite for any logits,
    traced and differentiated as the training step runs it."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    cases = _unsup_cases(seed, hidden)
    real, fake = cases[1][1]
    _h.value_check(
        "check_unsupervised_loss", "unsupervised_loss", fn, _unsupervised, cases,
        _unsup_mistakes(), hidden, seed, nonfinite_hint=_UNSUP_FINITE,
        shape_hint=_h.UNEQUAL_BATCHES,
        then=lambda: _h.compiled_loss("unsupervised_loss", fn, [real, fake], _LOSS_OPS,
                                      hidden=hidden))


# --- exercises 3 and 4: the two steps ---------------------------------------------------------

def _classifier(sizes, seed, name):
    """x → tanh layers → [logits, features]: a small K-logit D with seeded weights (the last
    hidden layer is the features)."""
    import keras

    x = keras.Input((sizes[0],), name=f"{name}_x")
    h = x
    for i, units in enumerate(sizes[1:-1]):
        h = keras.layers.Dense(units, activation="tanh", name=f"{name}_dense{i}",
                               kernel_initializer=keras.initializers.GlorotUniform(
                                   seed=seed + i))(h)
    logits = keras.layers.Dense(sizes[-1], name=f"{name}_logits",
                                kernel_initializer=keras.initializers.GlorotUniform(
                                    seed=seed + 50))(h)
    return keras.Model(x, [logits, h], name=name)


def _copy(build, sizes, seed, name, values):
    model = build(sizes, seed, name)
    for v, value in zip(model.trainable_variables, values, strict=True):
        v.assign(value)
    return model


def _rows(x) -> int:
    return int(tf.shape(x)[0]) if tf.is_tensor(x) else int(np.shape(x)[0])


class _Recorder(_h.Recorder):
    """Records each call's input, output and ``training`` flag."""

    def __init__(self, model, role):
        super().__init__(model)
        self._role = role
        self._flags = []

    def __call__(self, x, *args, **kwargs):
        if isinstance(x, list | tuple):
            raise _h.GradingError(f"the {self._role} was called with a list of inputs; it "
                                  "takes one batch: concatenate batches with tf.concat, or "
                                  "call it once per batch.")
        training = kwargs.get("training", args[0] if args else None)
        out = self._model(x, *args, **kwargs)
        self._flags.append(training)
        outputs = [tf.identity(o) for o in out] if isinstance(out, list | tuple) \
            else tf.identity(out)
        self._calls.append((tf.identity(x), outputs))
        return out


def _training_flags(recorder, step):
    __tracebackhide__ = True
    if any(flag is not True for flag in recorder._flags):
        raise _h.GradingError(
            f"the {recorder._role} was called without training=True in the {step}. Hint: call "
            f"both networks with training=True in both steps: the discriminator's Gaussian "
            "noise (its regulariser) and the generator's batch norm act only in training mode.")


def _setup(seed, hidden):
    latent_dim, data_dim, k = (2, 3, 4) if not hidden else (3, 4, 3)
    n_l, n_u = (5, 8) if not hidden else (4, 7)
    g_sizes, d_sizes = [latent_dim, 6, data_dim], [data_dim, 6, k]
    rng = np.random.default_rng(seed + 3)
    x_l = rng.standard_normal((n_l, data_dim)).astype(np.float32)
    y_l = rng.integers(0, k, n_l).astype(np.int32)
    x_u = rng.standard_normal((n_u, data_dim)).astype(np.float32)
    return latent_dim, g_sizes, d_sizes, x_l, y_l, x_u


def _networks(g_sizes, d_sizes, seed):
    """The check's seeded G and D, their starting weights, and a recorder of each."""
    g0 = _h.mlp(g_sizes, seed + 1, "generator")
    d0 = _classifier(d_sizes, seed + 2, "discriminator")
    g_start = [v.numpy().copy() for v in g0.trainable_variables]
    d_start = [v.numpy().copy() for v in d0.trainable_variables]
    return g0, d0, g_start, d_start, _Recorder(g0, "generator"), _Recorder(d0, "discriminator")


def _updates_only(opt, name, model, role, other, other_start, other_role):
    """The rules of a one-network step: one update, of all of ``model``'s variables, and
    ``other``'s weights as they were."""
    __tracebackhide__ = True
    if len(opt._updates) != 1:
        raise _h.GradingError(f"{name} should apply exactly one update per step, it applied "
                              f"{len(opt._updates)}.")
    if {id(v) for _, v in opt._updates[0]} != {id(v) for v in model.trainable_variables}:
        raise _h.GradingError(f"{name} must update all of the {role}'s trainable variables "
                              f"(pass {role}.trainable_variables).")
    if any(not np.array_equal(v.numpy(), s) for v, s in zip(other.trainable_variables,
                                                            other_start, strict=True)):
        raise _h.GradingError(f"the {other_role}'s weights changed in the {role} step: only "
                              f"the {role} is updated here.")


def _fakes_rows(g, n_u, n_l, step):
    """Every call of G drew as many z as the unlabelled batch has examples."""
    __tracebackhide__ = True
    for z, _ in g._calls:
        rows = _rows(z)
        if rows != n_u:
            which = (" the labelled batch's size" if rows == n_l else
                     " a fixed size (BATCH_SIZE?)")
            raise _h.GradingError(
                f"the generator drew {rows} samples, the unlabelled batch has {n_u}: z was "
                f"drawn with{which}. Hint: tf.random.normal((tf.shape(x_unlabelled)[0], "
                f"latent_dim)): as many generated as unlabelled examples ({step}).")


def _compiled(step, what, args, specs, hidden):
    __tracebackhide__ = True
    _h.compiled_step(step, what, specs, args, hidden)


def _adam(model):
    import keras

    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.5)
    optimizer.build(model.trainable_variables)  # its variables exist before the trace
    return optimizer


def _spec(array):
    return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))


@_h.check()
def check_discriminator_step(step, hidden: bool = False, seed: int = 0, nonce=None):
    """One D update: L_D = supervised_loss_fn(D(x_l), y_l) + unsupervised_loss_fn(D(x_u),
    D(G(z))), z with as many rows as x_u, both networks in training mode, the gradient
    applied to D's variables only; returns (supervised, unsupervised) of the update."""
    __tracebackhide__ = True
    losses = _h.reference(_REFERENCE)
    seed = _h.hidden_seed(seed, hidden, nonce)
    latent_dim, g_sizes, d_sizes, x_l, y_l, x_u = _setup(seed, hidden)
    g0, d0, g_start, d_start, g, d = _networks(g_sizes, d_sizes, seed)
    d_opt = _h.OneNetworkOptimizer("d_optimizer", "discriminator", d0.trainable_variables,
                                   g0.trainable_variables, "generator")
    with _h.lent(losses.supervised_loss, losses.unsupervised_loss) as (sup_fn, unsup_fn), \
            _h.student_code("discriminator_step"):
        result = step(tf.constant(x_l), tf.constant(y_l), tf.constant(x_u), g, d, d_opt, sup_fn,
                      unsup_fn, latent_dim)
        returned = ([float(x) for x in result]
                    if isinstance(result, tuple | list) and len(result) == 2 else None)

    _updates_only(d_opt, "d_optimizer", d0, "discriminator", g0, g_start, "generator")
    if not g._calls:
        raise _h.GradingError("the generator was never called: the unsupervised loss needs a "
                              "batch of generated examples, G(z).")
    _fakes_rows(g, len(x_u), len(x_l), "discriminator_step")
    _training_flags(d, "discriminator step")
    _training_flags(g, "discriminator step")

    d_ref = _copy(_classifier, d_sizes, seed + 2, "d_ref", d_start)
    y = tf.constant(y_l)

    def gradient(labelled, unlabelled, fakes, sup=1.0, unsup=1.0, swap=False):
        with tf.GradientTape() as tape:
            s = losses.supervised_loss(d_ref(tf.constant(labelled))[0], y)
            real_logits, fake_logits = d_ref(tf.constant(unlabelled))[0], d_ref(fakes)[0]
            u = losses.unsupervised_loss(*((fake_logits, real_logits) if swap else
                                           (real_logits, fake_logits)))
            total = sup * s + unsup * u
        return (float(s), float(u)), tape.gradient(total, d_ref.trainable_variables)

    update = d_opt._updates[0]
    fakes = [out for _, out in g._calls]
    for fake in fakes:
        values, expected = gradient(x_l, x_u, fake)
        if _h.first_mismatch(expected, d0.trainable_variables, update) is None:
            break
    else:
        fake = fakes[-1]
        mistakes = [
            ("the unsupervised loss's real examples are the labelled batch; use the "
             "unlabelled one, unsupervised_loss_fn(D(x_unlabelled), D(G(z))): the labelled "
             "batch is too small to teach D what real digits look like.",
             dict(unlabelled=x_l)),
            ("the supervised term is missing: L_D = supervised_loss_fn(D(x_labelled), "
             "y_labelled) + unsupervised_loss_fn(...).", dict(sup=0.0)),
            ("the unsupervised term is missing: L_D = supervised_loss_fn(...) + "
             "unsupervised_loss_fn(D(x_unlabelled), D(G(z))).", dict(unsup=0.0)),
            ("the arguments of unsupervised_loss_fn are swapped: the real examples' logits "
             "come first.", dict(swap=True)),
            ("the two losses are averaged; L_D is their sum.", dict(sup=0.5, unsup=0.5)),
        ]
        found = ""
        for text, options in mistakes:
            kwargs = dict(labelled=x_l, unlabelled=x_u, fakes=fake)
            kwargs.update(options)
            if _h.first_mismatch(gradient(**kwargs)[1], d0.trainable_variables,
                                 update) is None:
                found = f" Hint: {text}"
                break
        raise _h.GradingError(
            "the discriminator update does not follow the gradient of supervised_loss_fn("
            "D(x_labelled), y_labelled) + unsupervised_loss_fn(D(x_unlabelled), D(G(z))) at "
            "D's weights before the update."
            + (found or " Compute both losses inside one GradientTape and take the gradient "
               "of their sum w.r.t. discriminator.trainable_variables; D returns [logits, "
               "features]: the losses take the logits."))
    if returned is None:
        raise _h.GradingError("discriminator_step should return (supervised, unsupervised): "
                              "the two losses of the update.")
    if not np.allclose(returned, values, rtol=1e-4, atol=1e-5):
        raise _h.GradingError("discriminator_step returns losses that differ from the ones it "
                              "trained on; return (supervised, unsupervised) of this update.")
    with _h.lent(losses.supervised_loss, losses.unsupervised_loss) as (sup_fn, unsup_fn):
        d1 = _classifier(d_sizes, seed + 2, "discriminator")
        _compiled(step, "discriminator_step",
                  (_h.mlp(g_sizes, seed + 1, "generator"), d1, _adam(d1), sup_fn, unsup_fn,
                   latent_dim), [_spec(x_l), _spec(y_l), _spec(x_u)], hidden)
    _h.passed("discriminator_step updates D with the supervised plus the unsupervised loss"
              + (" (hidden sizes)." if hidden else "."))


@_h.check()
def check_generator_step(step, hidden: bool = False, seed: int = 0, nonce=None):
    """One G update by feature matching: L_G = mean_j (mean_i f_j(x_u) − mean_i f_j(G(z)))²
    with f D's features, z with as many rows as x_u, both networks in training mode, the
    gradient applied to G's variables only; returns L_G."""
    __tracebackhide__ = True
    losses = _h.reference(_REFERENCE)
    seed = _h.hidden_seed(seed, hidden, nonce)
    latent_dim, g_sizes, d_sizes, _, _, x_u = _setup(seed, hidden)
    g0, d0, g_start, d_start, g, d = _networks(g_sizes, d_sizes, seed)
    g_opt = _h.OneNetworkOptimizer("g_optimizer", "generator", g0.trainable_variables,
                                   d0.trainable_variables, "discriminator")
    with _h.student_code("generator_step"):
        result = step(tf.constant(x_u), g, d, g_opt, latent_dim)
        returned = None
        if tf.is_tensor(result) or isinstance(result, float | np.floating | np.ndarray):
            value = np.asarray(result, np.float64)
            returned = float(value.reshape(())) if value.size == 1 else None

    _updates_only(g_opt, "g_optimizer", g0, "generator", d0, d_start, "discriminator")
    _fakes_rows(g, len(x_u), -1, "generator_step")
    _training_flags(d, "generator step")
    _training_flags(g, "generator step")

    g_ref = _copy(_h.mlp, g_sizes, seed + 1, "g_ref", g_start)
    d_ref = _copy(_classifier, d_sizes, seed + 2, "d_ref", d_start)
    real_logits, real_features = (t.numpy() for t in d_ref(tf.constant(x_u)))

    def gradient(z, kind="fm"):
        with tf.GradientTape() as tape:
            fake_logits, fake_features = d_ref(g_ref(z))
            if kind == "fm":
                loss = losses.feature_matching_loss(real_features, fake_features)
            elif kind == "sum":
                loss = tf.reduce_sum(tf.square(tf.reduce_mean(real_features, 0)
                                               - tf.reduce_mean(fake_features, 0)))
            elif kind == "per example":
                loss = tf.reduce_mean(tf.square(real_features - fake_features))
            elif kind == "logits":
                loss = losses.feature_matching_loss(real_logits, fake_logits)
            else:  # the non-saturating loss through LSE(ℓ)
                loss = tf.reduce_mean(tf.nn.softplus(-tf.reduce_logsumexp(fake_logits, -1)))
        return float(loss), tape.gradient(loss, g_ref.trainable_variables)

    update = g_opt._updates[0]
    for z, _ in g._calls:
        value, expected = gradient(z)
        if _h.first_mismatch(expected, g0.trainable_variables, update) is None:
            break
    else:
        z = g._calls[-1][0] if g._calls else None
        mistakes = [
            ("sum", "the squared differences are summed over the features; take their mean "
                    "(tf.reduce_mean), as the exercise's formula does."),
            ("per example", "each generated example was matched with one real example; "
                            "feature matching compares the batch *means* of the features: "
                            "tf.reduce_mean(f, axis=0) of each batch first, then the "
                            "squared difference."),
            ("logits", "the logits' means were matched; match D's features (its second "
                       "output, the last hidden layer): discriminator(x, training=True)[1]."),
            ("non-saturating", "this is the non-saturating loss through LSE(ℓ); this step "
                               "trains G by feature matching on D's features."),
        ]
        found = ""
        if z is not None:
            found = next((f" Hint: {text}" for kind, text in mistakes
                          if _h.first_mismatch(gradient(z, kind)[1], g0.trainable_variables,
                                               update) is None), "")
        raise _h.GradingError(
            "the generator update does not follow the gradient of mean_j (mean_i f_j(x) − "
            "mean_i f_j(G(z)))² at G's weights before the update, with f = D's features."
            + (found or " Generate inside the GradientTape, take the features of both "
               "batches (discriminator(..., training=True)[1]) and differentiate w.r.t. "
               "generator.trainable_variables."))
    if returned is None or not np.isclose(returned, value, rtol=1e-4, atol=1e-5):
        raise _h.GradingError("generator_step should return its loss, the feature-matching "
                              "loss of this update (one number).")
    g1 = _h.mlp(g_sizes, seed + 1, "generator")
    _compiled(step, "generator_step", (g1, _classifier(d_sizes, seed + 2, "discriminator"),
                                       _adam(g1), latent_dim), [_spec(x_u)], hidden)
    _h.passed("generator_step updates G by feature matching on D's features"
              + (" (hidden sizes)." if hidden else "."))


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_supervised_loss", "check_unsupervised_loss")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_supervised_loss":
        return [_supervised(*args) for _, args in _sup_cases(seed, hidden)]
    return [_unsupervised(*args) for _, args in _unsup_cases(seed, hidden)]
