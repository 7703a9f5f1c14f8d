"""Checks of notebook 02 (the tricks that make GANs train). Test cells call them through
``gancourse.checks.load("02_gan_tricks")``, which compiles this file afresh from disk.

Expected values come from private copies of gantools modules (``gantools.losses.adversarial``,
``gantools.losses.features``, ``gantools.models.layers``) or from NumPy written here; while a
student's code runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only ``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

_STABLE = (" Use the numerically stable logits form (tf.nn.sigmoid_cross_entropy_with_logits "
           "or softplus) rather than log(sigmoid(...)).")


def _softplus(x):
    return tf.nn.softplus(tf.cast(x, tf.float32))


def _bce(t, logits):
    """BCE(t, ℓ) = t·softplus(-ℓ) + (1 - t)·softplus(ℓ), elementwise."""
    logits = tf.cast(logits, tf.float32)
    return t * _softplus(-logits) + (1.0 - t) * _softplus(logits)


# --- exercise 1: one-sided label smoothing ------------------------------------------------------

def _smoothing_cases(seed, hidden):
    alphas = [0.1, 0.2, 0.0] if not hidden else [0.15, 0.3, 0.05]
    shapes = [(16,), (8, 1), (5,)] if not hidden else [(33,), (1, 1), (64,)]
    cases = []
    for i, (shape, alpha) in enumerate(zip(shapes, alphas, strict=True)):
        real = _h.random_logits(seed + i, shape, shift=1.0)
        fake = _h.random_logits(seed + 50 + i, shape, shift=-1.0)
        cases.append((f"random logits of shape {shape}, alpha = {alpha}", (real, fake, alpha)))
    real = np.array([30.0, -60.0, 5.0] if not hidden else [45.0, -35.0, 80.0], np.float32)
    fake = np.array([-30.0, 70.0, -2.0] if not hidden else [-50.0, 90.0, 1.0], np.float32)
    cases.append(("very large logits (numerical stability), alpha = 0.1", (real, fake, 0.1)))
    return cases


def _smoothing_mistakes():
    mean = tf.reduce_mean
    return [
        ("both labels are smoothed (real 1 - α/2, fake α/2): that is what "
         "keras.losses.BinaryCrossentropy(label_smoothing=α) does. Smooth only the real "
         "label, to 1 - α, and keep the fake label at 0.",
         lambda r, f, a: mean(_bce(1 - a / 2, r)) + mean(_bce(a / 2, f))),
        ("both labels are smoothed (real 1 - α, fake α). One-sided smoothing keeps the fake "
         "label at 0: a fake target above 0 rewards D for letting fakes look a little real.",
         lambda r, f, a: mean(_bce(1 - a, r)) + mean(_bce(a, f))),
        ("only the fake label is smoothed (to α); smooth the real label to 1 - α instead.",
         lambda r, f, a: mean(_bce(1.0, r)) + mean(_bce(a, f))),
        ("the real target is α; it should be 1 - α.",
         lambda r, f, a: mean(_bce(a, r)) + mean(_bce(0.0, f))),
        ("alpha is ignored: the real target must be 1 - α.",
         lambda r, f, a: mean(_bce(1.0, r)) + mean(_bce(0.0, f))),
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda r, f, a: tf.reduce_sum(_bce(1 - a, r)) + tf.reduce_sum(_bce(0.0, f))),
        ("the two halves are averaged; the course adds them (E_real + E_fake).",
         lambda r, f, a: 0.5 * (mean(_bce(1 - a, r)) + mean(_bce(0.0, f)))),
        ("the real term is scaled by 1 - α instead of using 1 - α as its target.",
         lambda r, f, a: (1 - a) * mean(_softplus(-r)) + mean(_softplus(f))),
    ]


def _smoothed_reference():
    losses = _h.reference("gantools.losses.adversarial")

    def smoothed(real, fake, alpha):
        return losses.discriminator_loss(real, fake, label_smoothing=float(alpha))
    return smoothed


# --- exercise 2: feature matching ---------------------------------------------------------------

_FEATURE_SHAPES = {False: [(4, 4, 3), (10,)], True: [(2, 2, 5), (7,), (1,)]}


def _feature_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    cases = []
    sizes = [(16, 16), (12, 20)] if not hidden else [(9, 9), (31, 6)]
    for n_real, n_fake in sizes:
        real = [rng.standard_normal((n_real, *s)).astype(np.float32) + 0.5
                for s in _FEATURE_SHAPES[hidden]]
        fake = [rng.standard_normal((n_fake, *s)).astype(np.float32)
                for s in _FEATURE_SHAPES[hidden]]
        shapes = ", ".join(str(x.shape[1:]) for x in real)
        cases.append((f"{len(real)} layers of shapes {shapes} (per example), {n_real} real and "
                      f"{n_fake} generated examples", (real, fake)))
    one = rng.standard_normal((8, 6)).astype(np.float32)
    cases.append(("one layer whose real and generated features are equal", ([one], [one])))
    return cases


def _means(features):
    return [tf.reduce_mean(tf.reshape(f, [tf.shape(f)[0], -1]), axis=0) for f in features]


def _feature_mistakes():
    def per_example_mse(rs, fs):
        return tf.add_n([tf.reduce_mean(tf.square(tf.reshape(r, [tf.shape(r)[0], -1])
                                                  - tf.reshape(f, [tf.shape(f)[0], -1])))
                         for r, f in zip(rs, fs, strict=True)])

    def per_example_sq(rs, fs):
        return tf.add_n([tf.reduce_mean(tf.reduce_sum(tf.square(
            tf.reshape(r, [tf.shape(r)[0], -1]) - tf.reshape(f, [tf.shape(f)[0], -1])), 1))
            for r, f in zip(rs, fs, strict=True)])

    def mean_over_features(rs, fs):
        return tf.add_n([tf.reduce_mean(tf.square(a - b))
                         for a, b in zip(_means(rs), _means(fs), strict=True)])

    def not_squared(rs, fs):
        return tf.add_n([tf.norm(a - b) for a, b in zip(_means(rs), _means(fs), strict=True)])

    def mean_over_layers(rs, fs):
        return tf.add_n([tf.reduce_sum(tf.square(a - b)) for a, b in
                         zip(_means(rs), _means(fs), strict=True)]) / len(rs)

    def first_layer(rs, fs):
        return tf.reduce_sum(tf.square(_means(rs)[0] - _means(fs)[0]))

    def last_layer(rs, fs):
        return tf.reduce_sum(tf.square(_means(rs)[-1] - _means(fs)[-1]))

    return [
        ("this compares examples pairwise (a per-example MSE). Feature matching compares "
         "batch means: average each layer's features over the batch first, then take the "
         "squared distance between the two means.", per_example_mse),
        ("this is a per-example squared distance. Average each layer's features over the "
         "batch first (the real and generated batches need not even be the same size), then "
         "take the squared distance between the two means.", per_example_sq),
        ("you averaged the squared differences over the features; the definition sums them "
         "(‖·‖² is a sum of squares).", mean_over_features),
        ("the distance is not squared: use ‖m_real - m_fake‖², the sum of squares.",
         not_squared),
        ("the layers' terms are averaged; the definition sums them over the layers.",
         mean_over_layers),
        ("only the first layer counts: sum the term over every layer in the lists.",
         first_layer),
        ("only the last layer counts: sum the term over every layer in the lists.",
         last_layer),
    ]


def _feature_reference():
    features = _h.reference("gantools.losses.features")

    def fm(real, fake):
        return features.feature_matching_loss(list(real), list(fake), reduction="sum")
    return fm


def _reference_for(check):
    return {"check_smoothed_discriminator_loss": _smoothed_reference,
            "check_feature_matching_loss": _feature_reference}[check]()


def _cases(check, seed, hidden):
    return {"check_smoothed_discriminator_loss": _smoothing_cases,
            "check_feature_matching_loss": _feature_cases}[check](seed, hidden)


# --- exercise 3: minibatch discrimination -------------------------------------------------------

def _mbd_configs(seed, hidden):
    """(A features, B kernels, C kernel_dim, batch sizes) per layer the check builds: fixed
    visibly; for the hidden check drawn from the hidden seed (the layer must work for any
    A, B, C and batch size), one with a batch of 1 (where o(f) is 0)."""
    if not hidden:
        return [(6, 4, 3, (5, 1, 16)), (10, 2, 5, (8,))]
    rng = np.random.default_rng((seed, 7))

    def sizes():
        return tuple(int(v) for v in rng.integers((2, 1, 1), (13, 7, 7)))

    return [(*sizes(), (int(rng.integers(2, 6)), int(rng.integers(9, 17)))),
            (*sizes(), (int(rng.integers(2, 9)), 1))]


def _mbd_numpy(f, t):
    """The definition in float64: o_b(x_i) = Σ_{j≠i} exp(-‖M_{i,b} - M_{j,b}‖₁)."""
    m = np.einsum("na,abc->nbc", f.astype(np.float64), t.astype(np.float64))
    dist = np.abs(m[:, None] - m[None, :]).sum(-1)  # (N, N, B)
    o = np.exp(-dist).sum(1) - 1.0
    return np.concatenate([f.astype(np.float64), o], axis=1)


def _mbd_inputs(seed, hidden):
    """(description, num_kernels, kernel_dim, T (A, B, C), features (n, A)) per case."""
    rng = np.random.default_rng(seed)
    cases = []
    for a, b, c, sizes in _mbd_configs(seed, hidden):
        t = (rng.standard_normal((a, b, c)) * 0.3).astype(np.float32)
        for n in sizes:
            f = (rng.standard_normal((n, a)) * 0.5).astype(np.float32)
            cases.append((f"A = {a} features, B = {b} kernels of dimension C = {c}, "
                          f"a batch of {n}", b, c, t, f))
    return cases


def _mbd_values(outputs):
    return [float(v) for out in outputs for v in np.asarray(out, np.float64).reshape(-1)]


def _mbd_run(cls, b, c, t, f, what, hidden=False):
    """Build the student's layer on features like ``f``, give it T, return its output.

    One guarded block per case: the tripwire is armed once (arming scans every live
    function), and the layer never runs outside it.
    """
    __tracebackhide__ = True
    a = t.shape[0]
    with _h.student_code(what):
        layer = cls(num_kernels=b, kernel_dim=c)
        layer.build((None, f.shape[1]))
        weights = list(layer.trainable_weights)
        sizes = [tuple(int(d) for d in w.shape) for w in weights]
        if len(weights) != 1 or sizes[0] not in ((a, b, c), (a, b * c)):
            if hidden:  # the hidden sizes come from the nonce: the message does not name them
                raise _h.GradingError(
                    f"{what} should have exactly one trainable weight, T, of shape (A, "
                    "num_kernels, kernel_dim) or (A, num_kernels * kernel_dim) for A input "
                    "features; on a hidden case it has another. Create it in build() with "
                    "self.add_weight, from input_shape[-1] and the layer's arguments.")
            raise _h.GradingError(
                f"{what} should have exactly one trainable weight, T, of shape (A, B, C) = "
                f"{(a, b, c)} or (A, B*C) = {(a, b * c)} for A = {a} input features; it has "
                f"{sizes or 'none'}. Create it in build() with self.add_weight.")
        weights[0].assign(t.reshape(sizes[0]))
        return np.asarray(layer(tf.constant(f)), np.float64)


# --- exercise 4: EMA ----------------------------------------------------------------------------

def _ema_models(seed, hidden):
    """Two small models with batch norm, weights filled from a seeded NumPy generator."""
    import keras

    width = 3 if not hidden else 5

    def build(name):
        x = keras.Input((4,))
        h = keras.layers.Dense(width, name=f"{name}_dense")(x)
        h = keras.layers.BatchNormalization(name=f"{name}_norm")(h)
        h = keras.layers.ReLU()(h)
        return keras.Model(x, keras.layers.Dense(2, name=f"{name}_out")(h), name=name)

    rng = np.random.default_rng(seed)
    ema, model = build("ema"), build("generator")
    for m in (ema, model):
        for v in m.weights:
            value = rng.standard_normal(v.shape)
            if "variance" in v.path:
                value = np.abs(value) + 0.5
            v.assign(value.astype(np.float32))
    return ema, model


def _ema_expected(seed, hidden, decay):
    ema, model = _ema_models(seed, hidden)
    out = []
    for e, m in zip(ema.weights, model.weights, strict=True):
        e, value = np.asarray(e, np.float64), np.asarray(m, np.float64)
        out.append(decay * e + (1 - decay) * value if m.trainable else value)
    return out


def _ema_decays(hidden):
    return (0.9, 0.5) if not hidden else (0.75, 0.999)


# --- what the grader verifies in its own process ------------------------------------------------

VERIFIED = ("check_smoothed_discriminator_loss", "check_feature_matching_loss",
            "check_minibatch_discrimination", "check_ema_update")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_minibatch_discrimination":
        return _mbd_values(_mbd_numpy(f, t) for _, _, _, t, f in _mbd_inputs(seed, hidden))
    if check == "check_ema_update":
        return [float(v) for decay in _ema_decays(hidden)
                for w in _ema_expected(seed, hidden, decay) for v in w.reshape(-1)]
    reference_fn = _reference_for(check)
    return [float(reference_fn(*_h.as_tensors(args)))
            for _, args in _cases(check, seed, hidden)]


# --- what to use instead, when an answer cannot run inside the trainer ------------------------

_LOSS_OPS = ("use TensorFlow operations on the logits (tf.nn.softplus, "
             "tf.nn.sigmoid_cross_entropy_with_logits, tf.reduce_mean), not NumPy, float() or "
             "Python if/for on their values: the trainer compiles this loss into its step and "
             "differentiates it.")
_FEATURE_OPS = ("use TensorFlow operations on the features (tf.reshape, tf.reduce_mean, "
                "tf.reduce_sum, tf.square), not NumPy, float() or Python if/for on their "
                "values: the trainer compiles this loss into its step and differentiates it "
                "with respect to the generated features.")


# --- the checks ---------------------------------------------------------------------------------

@_h.check()
def check_smoothed_discriminator_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """L_D = E BCE(1 - α, ℓ_real) + E BCE(0, ℓ_fake): only the real label is smoothed."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    check = "check_smoothed_discriminator_loss"
    cases = _cases(check, seed, hidden)
    _h.value_check(check, "discriminator_loss_smoothed", fn, _reference_for(check), cases,
                   _smoothing_mistakes(), hidden, seed, nonfinite_hint=_STABLE,
                   then=lambda: _h.compiled_loss("discriminator_loss_smoothed", fn,
                                                 cases[0][1], _LOSS_OPS, hidden=hidden))


@_h.check()
def check_feature_matching_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """L_FM = Σ_l ‖mean_batch f_l(x) - mean_batch f_l(G(z))‖², summed over the layers."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 300, hidden, nonce)
    check = "check_feature_matching_loss"
    cases = _cases(check, seed, hidden)
    try:
        _h.value_check(check, "feature_matching_loss", fn, _reference_for(check), cases,
                       _feature_mistakes(), hidden, seed,
                       then=lambda: _h.compiled_loss(  # G's gradient: the fake side
                           "feature_matching_loss", fn, cases[0][1], _FEATURE_OPS, wrt=[1],
                           hidden=hidden))
    except _h.GradingError as error:
        if "should return one number" not in str(error):
            raise
        raise _h.GradingError(f"{error} Hint: treat everything after the batch axis as the "
                              "feature vector (tf.reshape(f, [tf.shape(f)[0], -1])), take "
                              "each batch's mean, then sum the squared differences over all "
                              "features and over the layers.") from None


@_h.check()
def check_minibatch_discrimination(cls, hidden: bool = False, seed: int = 0, nonce=None):
    """The layer's output [f, o(f)] against the definition, with T set by the check."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 600, hidden, nonce)
    what = "MinibatchDiscrimination"
    outputs = []
    for case, b, c, t, f in _mbd_inputs(seed, hidden):
        try:
            got = _mbd_run(cls, b, c, t, f, what, hidden)
        except _h.GradingError as error:
            # TensorFlow's messages name shapes, and the hidden ones come from the nonce
            if not (hidden and str(error).startswith(f"{what} raised ")):
                raise
            raise _h.GradingError(f"{str(error).split(':')[0]} on a hidden case; make it work "
                                  "for any number of features, kernels and batch size."
                                  ) from None
        want = _mbd_numpy(f, t)
        n, a = f.shape
        if got.shape != want.shape:
            reason = (f"{what} maps features of shape {f.shape} to {got.shape}; expected "
                      f"{want.shape}: the input features with the {b} minibatch features "
                      "concatenated after them.")
            if hidden:
                # the hidden sizes come from the nonce: the message does not name them
                reason = f"{what} gives an output of the wrong shape on a hidden case."
            raise _h.GradingError(reason)
        # float32 matmuls, sums of |·| and exp: about 1e-6 relative; 1e-4 is far tighter
        # than any wrong formula
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            raise _h.GradingError(_mbd_message(got, want, f, t, case, hidden))
        outputs.append(got)
    _mbd_symbolic(cls, what, b, c, f.shape[1], hidden)  # the last case's sizes
    _h.report_values("check_minibatch_discrimination", hidden, seed, _mbd_values(outputs))
    _h.passed(f"{what} computes [f, o(f)] as defined"
              + (" on the hidden cases." if hidden else "."))


def _mbd_symbolic(cls, what, b, c, a, hidden):
    """Keras calls the layer on symbolic features of unknown batch size while it builds the
    discriminator, and the trainer differentiates through it: trace it that way, on ``a``
    features with ``b`` kernels of dimension ``c``."""
    __tracebackhide__ = True
    with _h.student_code(what):
        layer = cls(num_kernels=b, kernel_dim=c)
        layer.build((None, a))
    weights = list(layer.trainable_weights)

    def run(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            out = layer(f)
        gradients = tape.gradient(out, [f, *weights])
        if any(g is None for g in gradients):
            raise TypeError("no gradient flows from its output back to the features and T")
        return out

    traced = tf.function(run, input_signature=[tf.TensorSpec([None, a], tf.float32)],
                         autograph=False)
    out = _h.must_trace(
        traced, what, "on features whose batch size is not known yet, as when Keras builds "
        "the discriminator and the trainer differentiates it",
        "use TensorFlow operations on whole tensors (tf.matmul or tf.einsum, broadcasting "
        "M[:, None] - M[None, :], tf.reduce_sum, tf.exp), with no NumPy, .numpy() or Python "
        "loop over the batch: the batch size is unknown (None) when Keras builds the model.",
        hidden=hidden)
    if not isinstance(out, tf.Tensor) or out.shape.rank != 2 or out.shape[-1] != a + b:
        if hidden:  # the hidden sizes come from the nonce: the message does not name them
            raise _h.GradingError(f"{what} gives an output of the wrong shape on a hidden "
                                  "case whose batch size is unknown (None).")
        raise _h.GradingError(
            f"{what} on features of shape (None, {a}) with {b} kernels should give a tensor "
            f"of shape (None, {a + b}), got {getattr(out, 'shape', type(out).__name__)}.")


def _mbd_message(got, want, f, t, case, hidden):
    a = f.shape[1]
    head = ("MinibatchDiscrimination disagrees with the definition on a hidden case."
            if hidden else f"MinibatchDiscrimination on {case}: the output differs from the "
            "definition.")
    if not np.allclose(got[:, :a], want[:, :a], rtol=1e-4, atol=1e-5):
        if np.allclose(got[:, -a:], want[:, :a], rtol=1e-4, atol=1e-5):
            return head + " Hint: concatenate in the order [f, o(f)]: the input features first."
        return head + " Hint: the first A outputs should be the input features unchanged."
    o_got, o_want = got[:, a:], want[:, a:]
    m = np.einsum("na,abc->nbc", f.astype(np.float64), t.astype(np.float64))
    diff = m[:, None] - m[None, :]
    candidates = [
        (o_want + 1.0, "the sum includes j = i, whose term is always exp(0) = 1. The exercise "
                       "defines o(x_i) as the sum over the *other* examples, j ≠ i: subtract "
                       "1 (or mask the diagonal)."),
        (o_want - 1.0, "each feature is 1 too small: only the j = i term (always 1) should be "
                       "left out of the sum, once."),
        (np.exp(-np.sqrt((diff ** 2).sum(-1))).sum(1) - 1.0,
         "the distance is Euclidean; the definition uses the L1 norm Σ_c |M_i,b,c - M_j,b,c|."),
        ((np.exp(-np.abs(diff).sum(-1)).sum(1) - 1.0) / max(len(f) - 1, 1),
         "you averaged over the other examples; the definition sums."),
        (np.exp(-np.abs(diff).sum(-1)).mean(1),
         "you averaged over the batch; the definition sums over j ≠ i."),
    ]
    for value, text in candidates:
        if value.shape == o_got.shape and np.allclose(o_got, value, rtol=1e-4, atol=1e-5):
            return head + " Hint: " + text
    return head + (" Check M = f T (shape (N, B, C)), the L1 distances between rows of M "
                   "for each kernel b, and c_b = exp(-distance).")


@_h.check()
def check_ema_update(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """θ_ema ← β θ_ema + (1 - β) θ for trainable weights; other weights copied."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 900, hidden, nonce)
    values = []
    for decay in _ema_decays(hidden):
        ema, model = _ema_models(seed, hidden)
        before_model = [np.asarray(v, np.float64) for v in model.weights]
        before_ema = [np.asarray(v, np.float64) for v in ema.weights]
        with _h.student_code("ema_update"):
            fn(ema, model, decay)
        after_model = [np.asarray(v, np.float64) for v in model.weights]
        if not all(np.array_equal(a, b) for a, b in zip(before_model, after_model,
                                                          strict=True)):
            raise _h.GradingError("ema_update changed the generator's own weights; only the "
                                  "EMA copy (the first argument) should change.")
        want = _ema_expected(seed, hidden, decay)
        got = [np.asarray(v, np.float64) for v in ema.weights]
        for v, g, w, e0, m0 in zip(ema.weights, got, want, before_ema, before_model,
                                   strict=True):
            # float32 weights: one multiply-add each, about 1e-7 relative
            if np.allclose(g, w, rtol=1e-5, atol=1e-6):
                continue
            raise _h.GradingError(_ema_message(v, g, e0, m0, decay, hidden))
        values += [float(x) for g in got for x in g.reshape(-1)]
    _h.report_values("check_ema_update", hidden, seed, values)
    _h.passed("ema_update averages the trainable weights and copies the statistics"
              + (" (hidden case)." if hidden else "."))


def _ema_message(variable, got, e0, m0, decay, hidden):
    kind = "trainable" if variable.trainable else "non-trainable (a batch-norm statistic)"
    head = f"ema_update: the {kind} weight {variable.path} is wrong"
    head += " on a hidden case." if hidden else f" for decay β = {decay}."

    def close(x):
        return np.allclose(got, x, rtol=1e-5, atol=1e-6)
    if variable.trainable:
        if close((1 - decay) * e0 + decay * m0):
            return head + (" Hint: β and 1 - β are swapped: the EMA keeps β of its own "
                           "value, θ_ema ← β θ_ema + (1 - β) θ.")
        if close(e0):
            return head + " Hint: it did not change; every trainable weight moves towards θ."
        if close(m0):
            return head + " Hint: it was copied; trainable weights are averaged, not copied."
        return head + " Expected β θ_ema + (1 - β) θ."
    if close(decay * e0 + (1 - decay) * m0):
        return head + (" Hint: batch-norm moving statistics are copied from the generator, "
                       "not averaged: they are already running averages, measured with the "
                       "generator's current weights.")
    if close(e0):
        return head + (" Hint: it was left unchanged; copy the generator's non-trainable "
                       "weights (batch-norm statistics) into the EMA model.")
    return head + " Expected a copy of the generator's value."


# --- exercise 5: the DCGAN generator ------------------------------------------------------------

def _dcgan_latent_dims(seed, hidden):
    """The latent sizes the check builds the generator for: 64 visibly, and for the hidden
    check one drawn from the hidden seed in [1, 128] (any latent size is valid: the
    projection's input), other than 64."""
    if not hidden:
        return (64,)
    latent_dim = int(np.random.default_rng((seed, 5)).integers(1, 128))
    return (latent_dim + (latent_dim >= 64),)


@_h.check()
def check_dcgan_generator(build, hidden: bool = False, seed: int = 0, nonce=None):
    """build_dcgan_generator(latent_dim) follows the DCGAN rules for 32×32×1 images.

    Every rule is judged on what the layers compute in one forward pass
    (:func:`gancourse.checks.harness.layer_trace`), never on their class names.
    """
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 1200, hidden, nonce)
    with _h.hidden_wording(hidden, "build_dcgan_generator"):
        for latent_dim in _dcgan_latent_dims(seed, hidden):
            _check_dcgan(build, latent_dim, np.random.default_rng(seed + latent_dim))
    _h.passed("build_dcgan_generator follows the DCGAN rules"
              + (" for the hidden latent sizes." if hidden else "."))


def _dcgan_roles(g, z):
    """What each computing layer of ``g`` did in one training-mode pass on ``z``: its
    record, whether it has kernels of its own, the activations it (or code right after it)
    applied, the factor by which it scaled the map, whether it normalizes like batch norm.
    Student code: run it inside student_code."""
    records = _h.layer_trace(g, tf.constant(z), training=True)
    roles = []
    for i, ((layer, x, y), kinds) in enumerate(zip(_h.leaf_records(records),
                                                   _h.activations_applied(records),
                                                   strict=True)):
        weighted = bool(_h.own_kernels(layer))
        same_shape = _h.shape_of(x) is not None and _h.shape_of(x) == _h.shape_of(y)
        roles.append(dict(
            layer=layer, input=x, output=y, weighted=weighted, activations=kinds,
            factor=_h.spatial_factor(x, y),
            norm=same_shape and len(x.shape) >= 2 and _h.normalizes_batch(layer, x, seed=i)))
    return roles


def _dims(tensor):
    return _h.shape_of(tensor) or ()


def _check_dcgan(build, latent_dim, rng):
    __tracebackhide__ = True
    import keras

    what = f"build_dcgan_generator({latent_dim})"
    shapes = (1, 5)
    z = (rng.standard_normal((64, latent_dim)) * 3).astype(np.float32)
    with _h.student_code("build_dcgan_generator"):
        with _h.made_here("build_dcgan_generator") as judge:
            g = build(latent_dim)
            # told before the judge's forward pass, which would build a Sequential
            if not (isinstance(g, keras.Model) and bool(g.trainable_variables)):
                raise _h.GradingError(_h.weightless_hint(g, "build_dcgan_generator",
                                                         "latent_dim"))
            g = judge(g, tf.zeros((2, latent_dim)))
        outs = [np.asarray(g(tf.constant(rng.standard_normal((n, latent_dim)).astype(
            np.float32)), training=False), np.float64) for n in shapes]
        trained = np.asarray(g(tf.constant(z), training=True), np.float64)
        # noise 10,000 times larger drives the last layer far beyond ±1: only an output
        # activation bounded by 1 (the tanh) keeps the pixels in the images' range
        large = np.asarray(g(tf.constant(z * 1e4), training=False), np.float64)
    for n, out in zip(shapes, outs, strict=True):
        if out.shape != (n, 32, 32, 1):
            raise _h.GradingError(f"{what} maps noise of shape ({n}, {latent_dim}) to "
                                  f"{out.shape}; expected ({n}, 32, 32, 1).")
    with _h.student_code("the DCGAN generator"):
        roles = _dcgan_roles(g, z)
    weighted = [r for r in roles if r["weighted"]]
    # rule: strided transposed convolutions double the map, 4×4 → 8×8 → 16×16 → 32×32:
    # layers with kernels of their own whose output is twice as high and twice as wide
    ups = [r for r in weighted if r["factor"] == (2.0, 2.0)]
    if len(ups) != 3:
        raise _h.GradingError(
            f"{what} has {len(ups)} layers with weights that double the height and width of "
            "the map (Conv2DTranspose with strides=2 and padding='same'); the DCGAN generator "
            "doubles the resolution with one each: 4×4 → 8×8 → 16×16 → 32×32 takes 3.")
    sizes = [_dims(r["input"])[1] for r in ups]
    if sizes != [4, 8, 16]:
        raise _h.GradingError(
            f"{what} doubles maps of sizes {sizes}; the DCGAN generator starts from a 4×4 map "
            "and doubles it three times: 4×4 → 8×8 → 16×16 → 32×32.")
    # rule: project and reshape: the first layer with weights takes z and gives a vector,
    # and the first map is 4×4
    first_map = next(r for r in roles if len(_dims(r["output"])) == 4)
    if (len(_dims(weighted[0]["input"])) != 2 or len(_dims(weighted[0]["output"])) != 2
            or _dims(first_map["output"])[1:3] != (4, 4)):
        raise _h.GradingError(f"{what}: start by projecting z with a Dense layer to "
                              "4·4·channels numbers and reshaping them to a 4×4 map.")
    # rule: batch norm after every hidden layer, none at the output; judged by what a layer
    # does in training mode (normalizes each channel with the batch's statistics)
    norms = sum(r["norm"] for r in roles)
    if norms != 3:
        raise _h.GradingError(
            f"{what} has {norms} batch-normalization layers (layers that, in training mode, "
            "normalize each channel with the batch's mean and variance, as "
            "keras.layers.BatchNormalization does); the DCGAN generator normalizes the output "
            "of each hidden layer (the projection and the first two transposed convolutions: "
            "3) and not the output layer.")
    # rule: ReLU inside, tanh at the output; activations told by what they computed
    kinds = [kind for r in roles for kind in r["activations"]]
    if "leaky" in kinds:
        raise _h.GradingError(f"{what} uses LeakyReLU; the DCGAN generator uses ReLU (LeakyReLU "
                              "belongs to the discriminator).")
    relus = kinds.count("relu")
    if relus < 3:
        raise _h.GradingError(f"{what} has {relus} ReLU activations; each of the 3 hidden "
                              "layers is followed (after its batch norm) by a ReLU.")
    out = trained
    if out.min() < -1.0 - 1e-6 or out.max() > 1.0 + 1e-6:
        raise _h.GradingError(f"{what} makes pixels outside [-1, 1]: end with a tanh, the "
                              "range of the course's images.")
    if out.min() >= 0.0:
        raise _h.GradingError(f"{what} makes no negative pixels: it ends in a sigmoid (or a "
                              "ReLU). The images are in [-1, 1]: end with tanh.")
    if np.allclose(out, out[:1], atol=1e-6):
        raise _h.GradingError(f"{what} gives the same image for every z: does it use z?")
    if not np.all(np.isfinite(large)) or large.min() < -1.0 - 1e-6 or large.max() > 1.0 + 1e-6:
        raise _h.GradingError(
            f"{what} makes pixels outside [-1, 1] once its last layer's outputs are large "
            "(for noise 10,000 times larger than usual, as a trained generator's can be): end "
            "with a tanh after the last Conv2DTranspose, the range of the course's images.")
    last = max(i for i, r in enumerate(roles) if r["weighted"])
    if any(r["norm"] for r in roles[last + 1:]):
        raise _h.GradingError(f"{what} normalizes its output layer; batch norm at G's output "
                              "makes the samples oscillate (Radford et al.): leave the last "
                              "transposed convolution unnormalized, before the tanh.")
    # rule: weights from N(0, 0.02): every kernel of every layer with weights that ran
    for r in weighted:
        for kernel in _h.own_kernels(r["layer"]):
            _normal_002(np.asarray(kernel, np.float64).reshape(-1), r["layer"], what)


def _normal_002(w, layer, what):
    """Whether the weights ``w`` of a kernel look drawn from N(0, 0.02)."""
    __tracebackhide__ = True
    n = w.size
    if n < 200:
        return
    std = w.std()
    # the sample standard deviation of n normal draws is off by about 1/√(2n) relative:
    # 6 of those (at least 15 %) never fail a N(0, 0.02) kernel, and Glorot's scales
    # (0.026 to 0.06 for these layers) fall outside. Excess kurtosis (0 for a normal, -1.2
    # for a uniform) is estimated within √(24/n): judged only where that is under 0.11
    tolerance = max(0.15, 6.0 / np.sqrt(2.0 * n))
    kurtosis = np.mean((w - w.mean()) ** 4) / std ** 4 - 3.0 if std > 0 else 0.0
    if abs(std / 0.02 - 1.0) > tolerance or (n >= 2000 and kurtosis < -0.6):
        raise _h.GradingError(
            f"{what}: the weights of layer {layer.name!r} do not look drawn from "
            f"N(0, 0.02) (their standard deviation is {std:.3f}). Give every Dense and "
            "Conv2DTranspose layer kernel_initializer=keras.initializers.RandomNormal("
            "stddev=0.02).")
