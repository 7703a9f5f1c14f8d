"""Checks of notebook 04 (least-squares GAN). Test cells call them through
``gancourse.checks.load("04_lsgan")``, which compiles this file afresh from disk.

Expected values come from a private copy of ``gantools.losses.adversarial`` and from
closed forms: for a linear discriminator f(x) = w·x + w₀ every input gradient is a
multiple of w, so the pull of each loss on a sample is a number times w that NumPy
computes here. While a student's code runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only ``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h


def _losses():
    return _h.reference("gantools.losses.adversarial")


def _f(x):
    return tf.reshape(tf.cast(x, tf.float32), [-1])


def _mean(x):
    return tf.reduce_mean(tf.cast(x, tf.float32))


# --- exercise 1: the least-squares losses ------------------------------------------------------

# (a, b) of the discriminator's cases: the paper's two schemes, then targets no scheme uses
_D_TARGETS = [(0.0, 1.0), (-1.0, 1.0), (0.5, 2.5), (-1.0, 1.0)]
_D_TARGETS_HIDDEN = [(-1.0, 1.0), (0.0, 1.0), (-2.0, 0.5), (0.25, 3.0)]
_C_VALUES = [1.0, 0.0, 0.5, -0.75]
_C_VALUES_HIDDEN = [0.0, 1.0, 2.0, -0.5]


def _score_pairs(seed, hidden):
    """(description, real scores, fake scores): raw D outputs, some far from any target."""
    sizes = [((8,), (8,)), ((32, 1), (32, 1)), ((16,), (9,)), ((6, 1), (11, 1))] if not hidden \
        else [((5,), (5,)), ((64, 1), (64, 1)), ((7, 1), (20, 1)), ((13,), (4,))]
    cases = []
    for i, (real_shape, fake_shape) in enumerate(sizes):
        real = _h.random_logits(seed + i, real_shape, scale=1.5, shift=0.8)
        fake = _h.random_logits(seed + 40 + i, fake_shape, scale=1.5, shift=-0.6)
        if i == 3:  # scores far beyond where a sigmoid saturates
            real, fake = real * 20, fake * 20
        what = (f"scores of shape {real_shape}" if real_shape == fake_shape else
                f"{real_shape[0]} real and {fake_shape[0]} generated scores (each batch "
                "averaged separately)")
        if i == 3:
            what += ", large ones (D's output is not a probability)"
        cases.append((what, real, fake))
    return cases


def _loss_cases(check, seed, hidden):
    pairs = _score_pairs(seed, hidden)
    if check == "check_discriminator_loss":
        targets = _D_TARGETS_HIDDEN if hidden else _D_TARGETS
        return [(f"{what}, a = {a:g}, b = {b:g}", (real, fake, a, b))
                for (what, real, fake), (a, b) in zip(pairs, targets, strict=True)]
    values = _C_VALUES_HIDDEN if hidden else _C_VALUES
    return [(f"{what.split(' real and ')[-1].replace('generated ', '')}, c = {c:g}", (fake, c))
            for (what, _, fake), c in zip(pairs, values, strict=True)]


def _loss_reference(check):
    losses = _losses()
    return {"check_discriminator_loss": losses.least_squares_discriminator_loss,
            "check_generator_loss": losses.least_squares_generator_loss}[check]


def _discriminator_mistakes():
    mean, sq = _mean, tf.square

    def ls(r, f, a, b):
        return 0.5 * mean(sq(_f(r) - b)) + 0.5 * mean(sq(_f(f) - a))

    def sig(x):
        return tf.sigmoid(_f(x))

    return [
        ("a and b are swapped. b is the target for real scores and a the target for "
         "generated ones: ½ E (D(x) - b)² + ½ E (D(G(z)) - a)².",
         lambda r, f, a, b: ls(r, f, b, a)),
        ("the ½ factors are missing (this notebook writes both terms with ½, as the paper "
         "does).", lambda r, f, a, b: 2 * ls(r, f, a, b)),
        ("only one of the two terms has its ½.",
         lambda r, f, a, b: mean(sq(_f(r) - b)) + 0.5 * mean(sq(_f(f) - a))),
        ("only one of the two terms has its ½.",
         lambda r, f, a, b: 0.5 * mean(sq(_f(r) - b)) + mean(sq(_f(f) - a))),
        ("a sigmoid is applied to the scores. The least-squares discriminator ends in a "
         "linear layer: use its raw outputs.",
         lambda r, f, a, b: ls(sig(r), sig(f), a, b)),
        ("a sigmoid is applied to the scores, and the ½ factors are missing.",
         lambda r, f, a, b: 2 * ls(sig(r), sig(f), a, b)),
        ("one mean over the real and generated scores together. Average each batch on its "
         "own: the batches need not have the same size.",
         lambda r, f, a, b: 0.5 * mean(tf.concat([sq(_f(r) - b), sq(_f(f) - a)], 0))),
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda r, f, a, b: 0.5 * tf.reduce_sum(sq(_f(r) - b)) + 0.5 * tf.reduce_sum(
             sq(_f(f) - a))),
        ("the targets are fixed at 0 and 1: use the a and b passed in.",
         lambda r, f, a, b: ls(r, f, 0.0, 1.0)),
        ("this is the cross-entropy loss of notebook 01. Least squares means "
         "½ E (D(x) - b)² + ½ E (D(G(z)) - a)².",
         lambda r, f, a, b: mean(tf.nn.softplus(-_f(r))) + mean(tf.nn.softplus(_f(f)))),
    ]


def _generator_mistakes():
    mean, sq = _mean, tf.square
    return [
        ("the ½ factor is missing (this notebook writes ½ E (D(G(z)) - c)²).",
         lambda f, c: mean(sq(_f(f) - c))),
        ("the sign is flipped: G minimizes ½ E (D(G(z)) - c)², a non-negative number.",
         lambda f, c: -0.5 * mean(sq(_f(f) - c))),
        ("a sigmoid is applied to the scores: use D's raw outputs.",
         lambda f, c: 0.5 * mean(sq(tf.sigmoid(_f(f)) - c))),
        ("a sigmoid is applied to the scores, and the ½ factor is missing.",
         lambda f, c: mean(sq(tf.sigmoid(_f(f)) - c))),
        ("the target is fixed at 1: use the c passed in.",
         lambda f, c: 0.5 * mean(sq(_f(f) - 1.0))),
        ("the target is fixed at 0: use the c passed in.",
         lambda f, c: 0.5 * mean(sq(_f(f)))),
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda f, c: 0.5 * tf.reduce_sum(sq(_f(f) - c))),
        ("the square is missing: ½ E (D(G(z)) - c)², not ½ E (D(G(z)) - c).",
         lambda f, c: 0.5 * mean(_f(f) - c)),
        ("this is notebook 01's non-saturating loss. Least squares means ½ E (D(G(z)) - c)².",
         lambda f, c: mean(tf.nn.softplus(-_f(f)))),
    ]


@_h.check()
def check_discriminator_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """D loss = ½ E (D(x) - b)² + ½ E (D(G(z)) - a)², means over each batch, raw scores."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    check = "check_discriminator_loss"
    cases = _loss_cases(check, seed, hidden)
    _h.value_check(check, "ls_discriminator_loss", fn, _loss_reference(check), cases,
                   _discriminator_mistakes(), hidden, seed,
                   agrees="agrees with the reference for every (a, b)",
                   shape_hint=_h.UNEQUAL_BATCHES,
                   then=_h.differentiable("ls_discriminator_loss", fn, cases[0][1]))


@_h.check()
def check_generator_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """G loss = ½ E (D(G(z)) - c)² on raw scores."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 100, hidden, nonce)
    check = "check_generator_loss"
    cases = _loss_cases(check, seed, hidden)
    _h.value_check(check, "ls_generator_loss", fn, _loss_reference(check), cases,
                   _generator_mistakes(), hidden, seed,
                   agrees="agrees with the reference for every c",
                   then=_h.differentiable("ls_generator_loss", fn, cases[0][1]))


# --- exercise 2: the pull of a loss on each sample -----------------------------------------------

def _linear_d(w, w0):
    """A Keras discriminator f(x) = w·x + w₀ (a fresh model: the student gets no handle on
    the check's objects)."""
    import keras

    d = keras.Sequential([keras.Input((len(w),)), keras.layers.Dense(1)], name="linear_D")
    d.layers[-1].set_weights([np.asarray(w, np.float32).reshape(-1, 1),
                              np.array([w0], np.float32)])
    return d


def _pull_cases(seed, hidden):
    """(description, loss name, w, w₀, samples)."""
    rng = np.random.default_rng(seed)
    cases = []
    specs = [("least squares, c = 1", 2, 16), ("non-saturating", 2, 16),
             ("least squares, c = 0", 3, 5)] if not hidden else \
        [("least squares, c = 0", 2, 9), ("non-saturating", 4, 12),
         ("least squares, c = 1", 2, 40)]
    for loss, dim, n in specs:
        w = rng.normal(0, 1, dim).astype(np.float32)
        w0 = float(rng.normal(0, 0.5))
        x = rng.normal(0, 2.5, (n, dim)).astype(np.float32)
        cases.append((f"{n} samples in {dim}-D, a linear D and the {loss} loss", loss, w, w0, x))
    return cases


def _target(name):
    """c of a case's least-squares loss ("least squares, c = 1"), None for non-saturating."""
    return None if name == "non-saturating" else float(name.rsplit("= ", 1)[1])


def _loss_fn(name):
    losses = _losses()
    if _target(name) is None:
        return losses.non_saturating_generator_loss
    return lambda scores: losses.least_squares_generator_loss(scores, _target(name))


def _pull_closed_form(name, w, w0, x):
    """-N ∇ₓ L_G for f(x) = w·x + w₀: per sample a multiple of w (float64)."""
    s = x.astype(np.float64) @ w.astype(np.float64) + w0
    if _target(name) is None:  # L = mean softplus(-s): -dL/ds·N = σ(-s)
        factor = 1.0 / (1.0 + np.exp(s))
    else:  # L = ½ mean (s - c)²: -dL/ds·N = -(s - c)
        factor = -(s - _target(name))
    return factor[:, None] * w.astype(np.float64)[None, :]


def _pull_hint(got, want, n):
    if np.allclose(got, -want, rtol=1e-3, atol=1e-5):
        return (" Hint: the sign is flipped. The pull is the direction in which G's loss "
                "*decreases*, the negative gradient: -N ∇ L_G.")
    if np.allclose(got, want / n, rtol=1e-3, atol=1e-7):
        return (" Hint: the values are N times too small. L_G is a mean over the batch, so its "
                "gradient for one sample carries a factor 1/N: multiply by the batch size.")
    if np.allclose(got, -want / n, rtol=1e-3, atol=1e-7):
        return (" Hint: the sign is flipped and the values are N times too small: return "
                "-N ∇ L_G (N, the batch size).")
    if np.allclose(got, want / n**2, rtol=1e-3, atol=1e-9):
        return (" Hint: the values are N² times too small: multiply the gradient by N, the "
                "batch size, instead of dividing by it.")
    return ""


def _as_array(got, shape, what):
    if got is None:
        raise _h.GradingError(
            f"{what} returned None. tape.gradient gives None for a tensor the tape did not "
            "watch: call tape.watch(fakes) on a tf.Tensor (or differentiate with respect to "
            "a tf.Variable).")
    got = np.asarray(got, dtype=np.float64)
    if got.shape != shape:
        raise _h.GradingError(f"{what} should return one gradient per sample, of shape "
                              f"{shape} like the samples, but returned shape {got.shape}.")
    return got


def _pull_of(fn, loss_fn, d, x, what):
    __tracebackhide__ = True
    try:
        with _h.lent(loss_fn) as (lent_loss,), _h.student_code(what):
            got = fn(lent_loss, d, tf.constant(x))
            if isinstance(got, tf.Tensor | tf.Variable):
                got = got.numpy()
    except _h.GradingError as error:
        if "None" not in str(error):
            raise
        raise _h.GradingError(
            f"{error} Hint: tape.gradient gave None. `fakes` is a constant tensor, which a "
            "tape records only when told: call tape.watch(fakes) inside the `with` block, "
            "before calling the discriminator.") from None
    return _as_array(got, x.shape, what)


def _mlp_reference(loss_fn, d, x):
    """An independent reference for a non-linear D: the gradient of each sample's own loss,
    one sample at a time (no batch mean to undo)."""
    rows = []
    for i in range(len(x)):
        xi = tf.constant(x[i:i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            loss = loss_fn(d(xi, training=False))
        rows.append(-tape.gradient(loss, xi).numpy()[0])
    return np.array(rows, np.float64)


@_h.check()
def check_pull(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """pull(generator_loss, discriminator, fakes) = -N ∇_fakes generator_loss(D(fakes))."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 200, hidden, nonce)
    what = "pull"
    values = []
    for case, name, w, w0, x in _pull_cases(seed, hidden):
        want = _pull_closed_form(name, w, w0, x)
        got = _pull_of(fn, _loss_fn(name), _linear_d(w, w0), x, what)
        # float32 rounds the score s = w·x + w₀ by ~1e-7 of Σ|wᵢxᵢ| + |w₀| (a few 1e-7 for
        # these inputs), and the pull -(s - c)·w or σ(-s)·w by that times |w|: honest answers
        # stayed within 10 % of this tolerance on 3·10⁵ hidden cases (tests/test_check_repeats.py
        # requires a quarter); the grader compares the reported values (evidence.agree) at the
        # same rtol and atol
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            found = _pull_hint(got, want, len(x))
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the closed form on a hidden case "
                                      f"({name} loss).{found}")
            i = int(np.argmax(np.abs(got - want).max(axis=1)))
            raise _h.GradingError(
                f"{what} on {case}: for sample {i} expected {np.round(want[i], 5)}, got "
                f"{np.round(got[i], 5)}.{found}")
        values += [float(v) for v in got.reshape(-1)]
    # a non-linear D: gradients are no longer multiples of one vector
    rng = np.random.default_rng(seed + 7)
    # with a layer that adds noise in training: the pull is measured as when evaluating
    import keras

    d = keras.Sequential([keras.Input((2,)), keras.layers.GaussianNoise(1.0),
                          _h.mlp((2, 16, 1), seed % 2**20, "mlp_D")], name="noisy_mlp_D")
    x = rng.normal(0, 1.5, (10 if not hidden else 17, 2)).astype(np.float32)
    for name in ("least squares, c = 1", "non-saturating"):
        want = _mlp_reference(_loss_fn(name), d, x)
        got = _pull_of(fn, _loss_fn(name), d, x, what)
        # one float32 network run on a batch and on single samples: the products are summed
        # in other orders, ~1e-6 of the gradient's terms apart; honest answers stayed within
        # 1 % of this tolerance on 200 hidden cases
        if not np.allclose(got, want, rtol=1e-3, atol=1e-5):
            raise _h.GradingError(
                f"{what} disagrees with the reference for a small MLP discriminator "
                f"({name} loss)" + ("." if hidden else f": expected {np.round(want[0], 5)} "
                                    f"for sample 0, got {np.round(got[0], 5)}.")
                + (_pull_hint(got, want, len(x)) or
                   " Hint: is the discriminator called with training=True? This one adds "
                   "noise in training; call it with training=False."))
    _h.report_values("check_pull", hidden, seed, values)
    _h.passed(f"{what} returns -N ∇ L_G for every sample" + (" on the hidden cases." if hidden
                                                             else "."))


VERIFIED = ("check_discriminator_loss", "check_generator_loss", "check_pull")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_pull":
        return [float(v) for _, name, w, w0, x in _pull_cases(seed, hidden)
                for v in _pull_closed_form(name, w, w0, x).reshape(-1)]
    reference_fn = _loss_reference(check)
    return [float(reference_fn(*_h.as_tensors(args)))
            for _, args in _loss_cases(check, seed, hidden)]
