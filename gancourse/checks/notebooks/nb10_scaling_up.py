"""Checks of notebook 10 (the pieces that scaled GANs up). Test cells call them through
``gancourse.checks.load("10_scaling_up")``, which compiles this file afresh from disk.

The minibatch standard deviation, the pixel norm and the fade-in are compared with NumPy
oracles written here (float64), then traced and differentiated as the notebook's compiled
training step runs them; the minibatch standard deviation's gradient must stay finite on a
batch of identical examples (a collapsed generator's). The equalised dense layer is built
by the check: its stored kernel must look like N(0, 1), its bias start at 0, and its output
follow x @ (W · gain / sqrt(fan_in)) + b for whatever values the variables hold (the scale
is applied at run time). The truncated sampler is checked by its properties: every entry
within ±ψ, the entries distributed as a normal conditioned on [−ψ, ψ] (Kolmogorov–Smirnov
against the closed-form CDF), drawn with the generator it is given. Messages of hidden
checks never show expected values. Only ``check_*``, ``expected`` and ``VERIFIED`` are
public; the harness is ``_h``.
"""

import contextlib as _contextlib
import math as _math
import signal as _signal
import threading as _threading

import numpy as np
import tensorflow as tf

from .. import harness as _h

_EPS = 1e-8


def _f64(x):
    return np.asarray(x, np.float64)


def _same(got, want):
    """float32 elementwise work on values of order 1: about 1e-6 relative error."""
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-5, atol=1e-6))


def _compare(what, fn, cases, oracle, mistakes, hidden, shape_rule):
    """Each case's output against the oracle; the values of all cases, flattened.

    ``shape_rule(got_shape, args)`` names a wrong shape (or returns ''); ``mistakes``:
    (hint, function of the same arguments) for the usual wrong answers."""
    __tracebackhide__ = True
    values = []
    for case, args in cases:
        with _shape_hint(shape_rule, args), _h.student_code(what):
            out = fn(*[tf.constant(a) if isinstance(a, np.ndarray) else a for a in args])
            if not isinstance(out, tf.Tensor | tf.Variable):
                raise _h.GradingError(
                    f"{what} returned a {type(out).__name__}; return a TensorFlow tensor (use "
                    "TensorFlow operations on the inputs: the training step is compiled and "
                    "differentiated through it).")
            got = _f64(out)
        want = oracle(*args)
        if got.shape != want.shape:
            raise _h.GradingError(f"{what} returned shape {got.shape} for {case}; expected "
                                  f"{want.shape}.{shape_rule(got.shape, args)}")
        if not np.all(np.isfinite(got)):
            raise _h.GradingError(f"{what} returned values that are not finite for {case}."
                                  " Hint: the small ε inside the square root keeps it finite "
                                  "where a variance or a feature vector is 0.")
        if not _same(got, want):
            found = next((f" Hint: {text}" for text, mistake in mistakes
                          if _close_mistake(got, mistake, args)), "")
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the reference on a hidden case."
                                      f"{found}")
            raise _h.GradingError(f"{what} on {case}: the values differ from the expected ones "
                                  f"(largest difference {np.abs(got - want).max():.3g}).{found}")
        values += got.reshape(-1).tolist()
    return values


@_contextlib.contextmanager
def _shape_hint(shape_rule, args):
    """A student's function that fails on incompatible shapes gets the exercise's shape hint."""
    __tracebackhide__ = True
    try:
        yield
    except _h.GradingError as error:
        if "Incompatible shapes" not in str(error) and "must be broadcastable" not in str(error):
            raise
        raise _h.GradingError(f"{error}{shape_rule(None, args)}") from None


def _same_scaled(got, want):
    """Matrix products of float32 terms of order 1: errors grow with the products' size, so
    the tolerance is relative to the largest value (1e-5 of it)."""
    atol = 1e-5 * max(1.0, float(np.abs(want).max()))
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-5, atol=atol))


def _close_mistake(got, mistake, args, scaled=False):
    try:
        wrong = _f64(mistake(*[_f64(a) if isinstance(a, np.ndarray) else a for a in args]))
    except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs is no match
        return False
    if scaled:
        return _same_scaled(got, wrong)
    return wrong.shape == got.shape and bool(np.allclose(got, wrong, rtol=1e-5, atol=1e-6))


_OPS = ("use TensorFlow operations on the input tensor (tf.reduce_mean, tf.sqrt, tf.concat, "
        "tf.ones_like), not NumPy or float(), and no Python if on tensor values: the training "
        "step is compiled and differentiated through this function.")


def _traced(what, fn, args, wrt, hidden, hint=_OPS):
    """Traced into a graph without AutoGraph, with a gradient to the inputs ``wrt``."""
    __tracebackhide__ = True
    _h.compiled_loss(what, fn, list(args), hint, wrt=wrt, hidden=hidden)


# --- exercise 1: the minibatch standard deviation ----------------------------------------------

def _stddev(x, ddof=0, eps=_EPS, over=0):
    x = _f64(x)
    std = np.sqrt(np.var(x, axis=over, ddof=ddof) + eps)
    s = std.mean()
    return np.concatenate([x, np.full(x.shape[:-1] + (1,), s)], axis=-1)


def _stddev_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    if not hidden:
        shapes = [(8, 5), (4, 3, 3, 2), (6, 2, 2, 3)]
    else:
        shapes = [(int(rng.integers(3, 9)), int(rng.integers(2, 7))),
                  (int(rng.integers(3, 7)), int(rng.integers(2, 5)), int(rng.integers(2, 5)),
                   int(rng.integers(1, 4)))]
    cases = []
    for shape in shapes:
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0, shape[-1])).astype(np.float32)
        cases.append((f"a batch of shape {shape}", (x,)))
    same = np.repeat(rng.standard_normal((1, 3, 3, 2)).astype(np.float32), 4, axis=0)
    cases.append(("4 identical examples of shape (3, 3, 2) (a collapsed batch)", (same,)))
    return cases


def _stddev_mistakes():
    def per_example(x):  # the spread of each example's own features
        std = np.sqrt(np.var(x.reshape(len(x), -1), axis=1) + _EPS)
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,)) * std.reshape(
            (-1,) + (1,) * (x.ndim - 1))], axis=-1)

    def per_example_mean(x):  # each example's own spread, averaged over the batch
        std = np.sqrt(np.var(x.reshape(len(x), -1), axis=1) + _EPS).mean()
        return np.concatenate([x, np.full(x.shape[:-1] + (1,), std)], axis=-1)

    def whole(x):  # one standard deviation of every value of the batch together
        s = np.sqrt(np.var(x) + _EPS)
        return np.concatenate([x, np.full(x.shape[:-1] + (1,), s)], axis=-1)

    def mean_variance(x):
        s = np.sqrt(np.mean(np.var(x, axis=0)) + _EPS)
        return np.concatenate([x, np.full(x.shape[:-1] + (1,), s)], axis=-1)

    def variance(x):
        s = np.mean(np.var(x, axis=0) + _EPS)
        return np.concatenate([x, np.full(x.shape[:-1] + (1,), s)], axis=-1)

    def first(x):
        return np.concatenate([_stddev(x)[..., -1:], x], axis=-1)

    return [
        ("ε is missing or outside the square root: on a collapsed batch (variance 0) the "
         "feature must be sqrt(0 + 1e-8) = 1e-4, and sqrt(0)'s gradient is infinite. Put ε "
         "inside the square root, sqrt(Var + 1e-8).", lambda x: _stddev(x, eps=0.0)),
        ("the standard deviation is taken over each example's own features; take it over the "
         "batch (axis 0), for each feature, then average those over the features.",
         per_example),
        ("the standard deviation is taken over each example's own features; take it over the "
         "batch (axis 0), for each feature, then average those over the features.",
         per_example_mean),
        ("this is the standard deviation of all the batch's values pooled together; take it "
         "over the batch (axis 0) for each feature first, then average over the features.",
         whole),
        ("the variances were averaged before the square root: take sqrt(Var + ε) of each "
         "feature first, then the mean of those standard deviations.", mean_variance),
        ("this is the variance; the feature is the standard deviation, sqrt(Var + ε).",
         variance),
        ("the sample standard deviation (dividing by N − 1) was used; PGGAN's is the "
         "population one, the mean of the squared deviations over the N examples "
         "(tf.math.reduce_std, or tf.reduce_mean of the squares).", lambda x: _stddev(x, 1)),
        ("the new channel must come last: tf.concat([x, feature], axis=-1).", first),
    ]


def _stddev_shape(shape, args):
    x = args[0]
    if shape is None:
        return (" Hint: the feature is one number for the whole batch; make it a channel of "
                "shape (N, …, 1) (tf.ones_like(x[..., :1]) * s) before tf.concat.")
    if shape[:-1] == x.shape[:-1] and shape[-1] == 2 * x.shape[-1]:
        return (" Hint: a whole map of per-feature standard deviations was appended; average "
                "them into one number and append one channel.")
    if shape == x.shape:
        return " Hint: append the feature as one more channel (tf.concat on the last axis)."
    return " Hint: the output has the input's shape with one more channel on the last axis."


def _finite_on_collapse(fn, what):
    """A collapsed batch has zero variance; without ε the square root's gradient is infinite."""
    __tracebackhide__ = True
    x = tf.constant(np.repeat(np.linspace(-1, 1, 6, dtype=np.float32).reshape(1, 6), 4, 0))
    with _h.student_code(what), tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x)[:, -1])
    grad = tape.gradient(total, x)
    if grad is None:
        raise _h.GradingError(f"no gradient flows from {what}'s new channel back to the batch: "
                              + _OPS)
    if not np.all(np.isfinite(grad.numpy())):
        raise _h.GradingError(
            f"{what}'s gradient is not finite on a batch of identical examples (a collapsed "
            "generator's, exactly where D needs this feature). Hint: add ε = 1e-8 to the "
            "variance inside the square root, sqrt(Var + 1e-8).")


@_h.check()
def check_minibatch_stddev(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """minibatch_stddev(x): x with one more channel holding mean over features of
    sqrt(Var over the batch + 1e-8), for batches of rank 2 and 4; finite gradient on a
    collapsed batch; traced and differentiated."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "minibatch_stddev"
    cases = _stddev_cases(seed, hidden)
    values = _compare(what, fn, cases, _stddev, _stddev_mistakes(), hidden, _stddev_shape)
    _finite_on_collapse(fn, what)
    _traced(what, fn, cases[1][1], [0], hidden)
    _h.report_values("check_minibatch_stddev", hidden, seed, values)
    _h.passed(f"{what} appends the batch's mean standard deviation"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 2: the pixel norm ---------------------------------------------------------------

def _pixel_norm(x, eps=_EPS):
    x = _f64(x)
    return x / np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True) + eps)


def _pixel_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4, 4, 8), (5, 16), (2, 3, 3, 1)] if not hidden else \
        [(int(rng.integers(2, 5)), int(rng.integers(2, 5)), int(rng.integers(2, 5)),
          int(rng.integers(2, 9))), (int(rng.integers(2, 6)), int(rng.integers(3, 20)))]
    cases = []
    for shape in shapes:
        x = (rng.standard_normal(shape) * rng.uniform(0.2, 5.0)).astype(np.float32)
        cases.append((f"features of shape {shape}", (x,)))
    zero = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    zero[0, 1, 2] = 0.0
    cases.append(("a (2, 3, 3, 4) batch with one pixel whose features are all 0", (zero,)))
    small = (rng.standard_normal((3, 6)) * 0.05).astype(np.float32)
    cases.append(("small features of shape (3, 6) with epsilon=0.01", (small, 0.01)))
    return cases


def _pixel_mistakes():
    def l2(x, eps=_EPS):
        return x / np.sqrt(np.sum(np.square(x), axis=-1, keepdims=True) + eps)

    def over_pixels(x, eps=_EPS):
        axes = tuple(range(1, x.ndim - 1)) or (0,)
        return x / np.sqrt(np.mean(np.square(x), axis=axes, keepdims=True) + eps)

    def over_batch(x, eps=_EPS):
        return x / np.sqrt(np.mean(np.square(x), axis=0, keepdims=True) + eps)

    def standardised(x, eps=_EPS):
        centred = x - x.mean(axis=-1, keepdims=True)
        return centred / np.sqrt(np.mean(np.square(centred), axis=-1, keepdims=True) + eps)

    def no_sqrt(x, eps=_EPS):
        return x / (np.mean(np.square(x), axis=-1, keepdims=True) + eps)

    def outside(x, eps=_EPS):
        return x / (np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True)) + eps)

    return [
        ("this divides by the L2 norm (a sum of squares, as tf.math.l2_normalize); the pixel "
         "norm divides by the root *mean* square, sqrt(mean_c x_c² + ε), so that the vector "
         "keeps a scale of about 1 per feature.", l2),
        ("the mean of the squares is taken over the pixels (height and width); take it over "
         "the channels of each pixel, the last axis.", over_pixels),
        ("the mean of the squares is taken over the batch; take it over the channels of each "
         "pixel, the last axis.", over_batch),
        ("the features were centred first, as a layer or instance norm does; the pixel norm "
         "only divides by the root mean square, without subtracting the mean.", standardised),
        ("the square root is missing: divide by sqrt(mean_c x_c² + ε).", no_sqrt),
        ("ε was added outside the square root; it belongs inside: sqrt(mean_c x_c² + ε).",
         outside),
        ("the epsilon argument is ignored: use the value passed in (1e-8 by default).",
         lambda x, eps=_EPS: _pixel_norm(x)),
    ]


def _slope_at_zero(fn, what):
    """At a zero pixel the output's derivative is 1 / sqrt(ε) = 1e4 with ε inside the root,
    1 / ε = 1e8 with it outside: the place of ε shows in the gradient."""
    __tracebackhide__ = True
    x = tf.constant(np.zeros((1, 4), np.float32))
    probe = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
    with _h.student_code(what), tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x) * probe)
    grad = tape.gradient(total, x)
    want = probe / _math.sqrt(_EPS)
    if grad is None or not np.allclose(grad.numpy(), want, rtol=1e-3):
        raise _h.GradingError(
            f"{what}'s slope at a pixel whose features are all 0 should be 1 / sqrt(ε) = 1e4; "
            + ("no gradient flows. " if grad is None else
               f"it is {float(np.abs(grad.numpy()).max() / 3.0):.3g}. ")
            + "Hint: put ε inside the square root, x / sqrt(mean_c x_c² + ε).")


@_h.check()
def check_pixel_norm(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """pixel_norm(x): x / sqrt(mean over the last axis of x² + 1e-8); finite on a zero
    pixel; traced and differentiated."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "pixel_norm"
    cases = _pixel_cases(seed, hidden)
    values = _compare(what, fn, cases, _pixel_norm, _pixel_mistakes(), hidden,
                      lambda shape, args: " Hint: the pixel norm keeps the input's shape.")
    _slope_at_zero(fn, what)
    _traced(what, fn, cases[0][1], [0], hidden)
    _h.report_values("check_pixel_norm", hidden, seed, values)
    _h.passed(f"{what} scales every feature vector to unit root mean square"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 3: the equalised dense layer --------------------------------------------------

def _dense_cases(seed, hidden):
    """(fan_in, units, gain or None for the default √2, batch)."""
    rng = np.random.default_rng(seed)
    if not hidden:
        return [(64, 48, None, 5), (200, 24, 1.0, 3), (12, 400, 0.5, 4)]
    return [(int(rng.integers(60, 130)), int(rng.integers(40, 80)), None, 3),
            (int(rng.integers(10, 20)), int(rng.integers(300, 500)), float(rng.uniform(0.3, 1.5)),
             4)]


def _dense_values(seed, fan_in, units, batch):
    """The input and the values the check assigns to the variables: (x, W, b)."""
    rng = np.random.default_rng(seed + 1000 * fan_in + units)
    return (rng.standard_normal((batch, fan_in)).astype(np.float32),
            rng.standard_normal((fan_in, units)).astype(np.float32),
            rng.standard_normal(units).astype(np.float32))


def _dense(x, kernel, bias, gain):
    return _f64(x) @ (_f64(kernel) * gain / _math.sqrt(kernel.shape[0])) + _f64(bias)


def _dense_mistakes(gain, fan_in, units):
    def scaled(c):
        return lambda x, w, b: _f64(x) @ (_f64(w) * c) + _f64(b)

    return [
        ("the stored kernel is used as it is: multiply it by c = gain / sqrt(fan_in) in call(),"
         " every time the layer runs (that is the equalised learning rate).", scaled(1.0)),
        ("the scale uses the number of outputs; He's constant uses fan_in, the number of "
         "inputs of each output (input_shape[-1] for a dense layer).",
         scaled(gain / _math.sqrt(units))),
        ("the square root is missing: c = gain / sqrt(fan_in).", scaled(gain / fan_in)),
        ("the gain is ignored: c = gain / sqrt(fan_in), with the gain the layer was given "
         "(√2 by default, for the leaky ReLU that follows).", scaled(_math.sqrt(2.0 / fan_in))),
        ("the scale is applied twice (once to the stored weights, once at run time); store "
         "N(0, 1) and scale only in call().", scaled((gain / _math.sqrt(fan_in)) ** 2)),
        ("the bias was scaled too; only the kernel is multiplied by c.",
         lambda x, w, b: _dense(x, w, b, gain) - _f64(b) + _f64(b) * gain / _math.sqrt(fan_in)),
    ]


def _named(layer, kernel, bias, fan_in, gain, what):
    """The notebook reads ``layer.kernel`` and ``layer.scale`` (section 3's measurement)."""
    __tracebackhide__ = True
    for name, variable in (("kernel", kernel), ("bias", bias)):
        if getattr(layer, name, None) is not variable:
            raise _h.GradingError(f"{what} must keep its {name} as self.{name} (the notebook "
                                  f"reads layer.{name}): self.{name} = self.add_weight(...).")
    scale = getattr(layer, "scale", None)
    try:
        value = float(np.asarray(scale, np.float64))
    except (TypeError, ValueError):
        value = None
    if value is None or not np.isclose(value, gain / _math.sqrt(fan_in), rtol=1e-5):
        raise _h.GradingError(f"{what} must keep its run-time constant as self.scale = gain / "
                              f"sqrt(fan_in), a number (the notebook reads layer.scale); it "
                              f"has {scale!r}.")


def _weights(layer, fan_in, units, what):
    __tracebackhide__ = True
    weights = list(getattr(layer, "trainable_weights", []))
    kernels = [w for w in weights if tuple(w.shape) == (fan_in, units)]
    biases = [w for w in weights if tuple(w.shape) == (units,)]
    if not kernels:
        transposed = [w for w in weights if tuple(w.shape) == (units, fan_in)]
        raise _h.GradingError(
            f"{what} built for {fan_in} inputs and {units} units has no trainable kernel of "
            f"shape ({fan_in}, {units})"
            + (f" (its kernel is ({units}, {fan_in}): the kernel is (fan_in, units), so that "
               "x @ W works)" if transposed else
               f" (its trainable weights: {[tuple(w.shape) for w in weights]})")
            + ". Create it in build() with self.add_weight(shape=(fan_in, units), ...).")
    if not biases:
        raise _h.GradingError(f"{what} has no trainable bias of shape ({units},); create it "
                              "with self.add_weight(shape=(units,), initializer='zeros').")
    if len(weights) != 2:
        raise _h.GradingError(f"{what} should have two trainable weights, the kernel and the "
                              f"bias; it has {len(weights)}: "
                              f"{[tuple(w.shape) for w in weights]}.")
    return kernels[0], biases[0]


def _initial_weights(kernel, bias, fan_in, gain, what):
    __tracebackhide__ = True
    w = _f64(kernel)
    std, mean = float(w.std()), float(w.mean())
    he = gain / _math.sqrt(fan_in)
    if not (0.9 < std < 1.1 and abs(mean) < 0.1):
        found = (" That is He's initialisation, gain / sqrt(fan_in): with an equalised "
                 "learning rate the layer *stores* N(0, 1) weights and multiplies them by "
                 "that constant only when it runs." if abs(std - he) < 0.2 * he else
                 " Use initializer=keras.initializers.RandomNormal(0.0, 1.0).")
        raise _h.GradingError(f"{what}'s kernel starts with mean {mean:.3f} and standard "
                              f"deviation {std:.3f}; it should be drawn from N(0, 1).{found}")
    if np.any(_f64(bias) != 0.0):
        raise _h.GradingError(f"{what}'s bias should start at 0 (initializer='zeros').")


def _dense_output(layer, x, what):
    __tracebackhide__ = True
    with _h.student_code(what):
        out = layer(tf.constant(x))
        if not isinstance(out, tf.Tensor | tf.Variable):
            raise _h.GradingError(f"{what}'s call returned a {type(out).__name__}; return a "
                                  "TensorFlow tensor.")
        return _f64(out)


@_h.check()
def check_equalized_dense(layer_class, hidden: bool = False, seed: int = 0, nonce=None):
    """EqualizedDense(units, gain): a trainable kernel stored as N(0, 1) and a zero bias;
    call computes x @ (W · gain / sqrt(fan_in)) + b from the variables' current values;
    gradients reach both; traced as a compiled step runs it."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "EqualizedDense"
    values = []
    for fan_in, units, gain, batch in _dense_cases(seed, hidden):
        case = (f"EqualizedDense({units}" + (f", gain={gain}" if gain is not None else "")
                + f") on a batch of shape ({batch}, {fan_in})")
        x, new_kernel, new_bias = _dense_values(seed, fan_in, units, batch)
        with _h.student_code(what):
            layer = layer_class(units) if gain is None else layer_class(units, gain=gain)
        gain = _math.sqrt(2.0) if gain is None else gain
        with _h.hidden_wording(hidden, what):
            first = _dense_output(layer, x, what)
            kernel, bias = _weights(layer, fan_in, units, what)
            _initial_weights(kernel, bias, fan_in, gain, what)
            w0, b0 = kernel.numpy(), bias.numpy()
            stale = [("the output did not follow the new values the check assigned to the "
                      "kernel and the bias: compute it in call() from the variables themselves "
                      "(self.kernel * self.scale), not from a copy made in build().",
                      lambda x, w, b, w0=w0, gain=gain: _dense(x, w0, b, gain)),
                     ("the output did not follow the new values the check assigned to the "
                      "kernel and the bias: compute it in call() from the variables themselves "
                      "(self.kernel * self.scale), not from a copy made in build().",
                      lambda x, w, b, w0=w0, b0=b0, gain=gain: _dense(x, w0, b0, gain))]
            for attempt, (w, b) in enumerate([(w0, b0), (new_kernel, new_bias)]):
                if attempt:
                    kernel.assign(w)
                    bias.assign(b)
                got = first if not attempt else _dense_output(layer, x, what)
                want = _dense(x, w, b, gain)
                if got.shape != want.shape:
                    raise _h.GradingError(f"{what} on {case} returned shape {got.shape}; "
                                          f"expected {want.shape}.")
                if not _same_scaled(got, want):
                    found = next((f" Hint: {text}" for text, mistake in
                                  _dense_mistakes(gain, fan_in, units) + stale * attempt
                                  if _close_mistake(got, mistake, (x, w, b), scaled=True)), "")
                    if hidden:
                        raise _h.GradingError(f"{what} disagrees with the reference on a "
                                              f"hidden case.{found}")
                    raise _h.GradingError(f"{what} on {case}"
                                          + (", after new values were assigned to its kernel "
                                             "and bias" if attempt else "")
                                          + f": the outputs differ from x @ (W · gain / "
                                          f"sqrt(fan_in)) + b (largest difference "
                                          f"{np.abs(got - want).max():.3g}).{found}")
            values += got.reshape(-1).tolist()
            _named(layer, kernel, bias, fan_in, gain, what)
            _gradients_reach(layer, x, kernel, bias, what)
            _layer_traces(layer, fan_in, what, hidden)
    _h.report_values("check_equalized_dense", hidden, seed, values)
    _h.passed(f"{what} stores N(0, 1) weights and scales them at run time"
              + (" on the hidden cases." if hidden else "."))


def _gradients_reach(layer, x, kernel, bias, what):
    __tracebackhide__ = True
    with _h.student_code(what), tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(tf.constant(x)))
    grads = tape.gradient(total, [kernel, bias])
    if any(g is None for g in grads):
        raise _h.GradingError(f"no gradient reaches {what}'s "
                              + ("kernel" if grads[0] is None else "bias")
                              + ": compute the output from the variables with TensorFlow "
                              "operations (tf.matmul), so that the optimizer can train them.")


def _layer_traces(layer, fan_in, what, hidden):
    __tracebackhide__ = True
    traced = tf.function(lambda x: layer(x), autograph=False,
                         input_signature=[tf.TensorSpec([None, fan_in], tf.float32)])
    _h.must_trace(traced, what, "inside a compiled training step",
                  "use TensorFlow operations in call() (tf.matmul, *), not NumPy or .numpy().",
                  hidden=hidden)


# --- exercise 4: the fade-in ---------------------------------------------------------------------

def _upsample(x):
    return np.repeat(np.repeat(_f64(x), 2, axis=1), 2, axis=2)


def _fade(alpha, new, old):
    return float(alpha) * _f64(new) + (1.0 - float(alpha)) * _upsample(old)


def _fade_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    specs = [(0.3, (2, 4, 4, 1)), (0.85, (3, 6, 6, 2)), (0.0, (1, 2, 2, 1))] if not hidden else \
        [(float(rng.uniform(0.05, 0.95)), (int(rng.integers(1, 4)), 2 * int(rng.integers(1, 5)),
                                           2 * int(rng.integers(1, 5)), int(rng.integers(1, 3))))
         for _ in range(2)]
    cases = []
    for alpha, (n, h, w, c) in specs:
        new = rng.uniform(-1, 1, (n, h, w, c)).astype(np.float32)
        old = rng.uniform(-1, 1, (n, h // 2, w // 2, c)).astype(np.float32)
        cases.append((f"α = {alpha}, new images {new.shape}, old images {old.shape}",
                      (np.array(alpha, np.float32), new, old)))
    return cases


def _fade_mistakes():
    def bilinear(alpha, new, old):
        resized = tf.image.resize(tf.constant(old, tf.float32), new.shape[1:3],
                                  method="bilinear").numpy()
        return float(alpha) * _f64(new) + (1.0 - float(alpha)) * _f64(resized)

    return [
        ("the weights are swapped: the new resolution gets α (it starts at 0 and grows to 1), "
         "the old one 1 − α.", lambda a, n, o: _fade(1.0 - float(a), n, o)),
        ("the old image is missing its (1 − α): the blend is α · new + (1 − α) · "
         "upsample(old), whose weights sum to 1.",
         lambda a, n, o: float(a) * _f64(n) + _upsample(o)),
        ("tf.tile repeats the whole image side by side; enlarge it instead by repeating each "
         "pixel into a 2×2 block (tf.image.resize with method='nearest', or tf.repeat on axes "
         "1 and 2).", lambda a, n, o: float(a) * _f64(n) + (1.0 - float(a)) * np.tile(
             _f64(o), (1, 2, 2, 1))),
        ("the old image was enlarged by bilinear interpolation; enlarge it as the generator "
         "does, by repeating each pixel into a 2×2 block (nearest neighbour: tf.repeat on "
         "axes 1 and 2, keras.layers.UpSampling2D, or tf.image.resize with "
         "method='nearest').", bilinear),
    ]


def _fade_shape(shape, args):
    return (" Hint: enlarge the old images to the new ones' size first: each pixel becomes a "
            "2×2 block (nearest-neighbour upsampling).")


@_h.check()
def check_fade_in(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """fade_in(alpha, new, old): α · new + (1 − α) · old upsampled ×2 by nearest neighbour;
    α a tensor, as the training step passes it; traced and differentiated."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "fade_in"
    cases = _fade_cases(seed, hidden)
    values = _compare(what, fn, cases, _fade, _fade_mistakes(), hidden, _fade_shape)
    _traced(what, fn, cases[0][1], [1, 2], hidden,
            hint="use TensorFlow operations on the tensors (tf.image.resize or tf.repeat, *, "
                 "+), and no Python if on α or .numpy(): α is a tf.Variable inside the "
                 "compiled training step.")
    _h.report_values("check_fade_in", hidden, seed, values)
    _h.passed(f"{what} blends the new resolution over the upsampled old one"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 5: the truncation trick -----------------------------------------------------------

def _phi(x):
    return 0.5 * (1.0 + np.vectorize(_math.erf)(np.asarray(x, np.float64) / _math.sqrt(2.0)))


def _truncated_cdf(x, psi):
    if _math.isinf(psi):
        return _phi(x)
    low = _phi(-psi)
    return np.clip((_phi(x) - low) / (_phi(psi) - low), 0.0, 1.0)


def _ks(values, psi):
    """The Kolmogorov–Smirnov distance between the sample and the truncated normal."""
    v = np.sort(np.asarray(values, np.float64).reshape(-1))
    cdf = _truncated_cdf(v, psi)
    n = len(v)
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def _ks_limit(n):
    """A distance a correct sampler exceeds with probability about 1e-9 (Dvoretzky–Kiefer–
    Wolfowitz: P(D > t) ≤ 2 exp(−2 n t²))."""
    return _math.sqrt(_math.log(2 / 1e-9) / (2 * n))


def _truncation_cases(seed, hidden):
    """(n, dim, psi, rng seed)."""
    rng = np.random.default_rng(seed)
    if not hidden:
        return [(2000, 8, 1.0, 11), (1000, 16, 2.0, 12), (500, 40, 0.5, 13),
                (400, 20, _math.inf, 14)]
    return [(int(rng.integers(800, 1500)), int(rng.integers(8, 20)),
             float(rng.uniform(1.3, 2.5)), int(rng.integers(1 << 30))),
            (int(rng.integers(300, 600)), int(rng.integers(20, 64)),
             float(rng.uniform(0.2, 0.9)), int(rng.integers(1 << 30)))]


class _TooLong(BaseException):  # noqa: N818 - not an error of the student code: a limit
    pass


@_contextlib.contextmanager
def _time_limit(seconds):
    """Interrupt the block after ``seconds`` (SIGALRM, in the kernel's main thread; elsewhere,
    no limit). A correct sampler takes milliseconds here."""
    if _threading.current_thread() is not _threading.main_thread() or \
            not hasattr(_signal, "setitimer"):
        yield
        return

    def interrupt(signum, frame):
        raise _TooLong

    previous = _signal.signal(_signal.SIGALRM, interrupt)
    _signal.setitimer(_signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _signal.signal(_signal.SIGALRM, previous)


_SAMPLER_SECONDS = 10.0


def _draw(fn, n, dim, psi, rng_seed, what):
    __tracebackhide__ = True
    try:
        with _time_limit(_SAMPLER_SECONDS), _h.student_code(what):
            out = fn(n, dim, psi, np.random.default_rng(rng_seed))
            z = np.array(out, dtype=np.float64)
    except _TooLong:
        inside = _math.erf(psi / _math.sqrt(2)) ** dim if _math.isfinite(psi) else 1.0
        raise _h.GradingError(
            f"{what}({n}, {dim}, psi={psi:.3g}, rng) was still running after "
            f"{_SAMPLER_SECONDS:.0f} s. Hint: draw again only the entries that are outside "
            f"±ψ, not whole rows: a row of {dim} entries lies entirely inside with probability "
            f"{inside:.1g}, so redrawing rows until one fits almost never ends.") from None
    if z.shape != (n, dim):
        raise _h.GradingError(f"{what}({n}, {dim}, psi={psi}, rng) returned shape {z.shape}; "
                              f"expected ({n}, {dim}).")
    return z


@_h.check()
def check_truncated_z(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """truncated_z(n, dim, psi, rng): an (n, dim) array of N(0, 1) draws, each entry beyond
    ±ψ drawn again until none is left (ψ = inf: no truncation); the rng it is given is the
    only source of randomness."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "truncated_z"
    for n, dim, psi, rng_seed in _truncation_cases(seed, hidden):
        case = f"n = {n}, dim = {dim}, psi = {psi:.3g}" if not hidden else "a hidden case"
        z = _draw(fn, n, dim, psi, rng_seed, what)
        if not np.all(np.isfinite(z)):
            raise _h.GradingError(f"{what} returned values that are not finite ({case}).")
        outside = float(np.mean(np.abs(z) > psi))
        if outside > 0:
            at_two = " tf.random.truncated_normal cuts at ±2 whatever ψ, and ignores the rng;" \
                if np.abs(z).max() <= 2.0 + 1e-6 else ""
            raise _h.GradingError(
                f"{what} ({case}) left {outside:.1%} of the entries beyond ±ψ. Hint:{at_two} "
                "draw again only the entries that are still outside, and repeat until none "
                "is left (a while loop over a boolean mask).")
        if not _math.isinf(psi) and np.mean(np.abs(z) == psi) > 0.01:
            raise _h.GradingError(
                f"{what} ({case}) put {np.mean(np.abs(z) == psi):.0%} of the entries exactly "
                "at ±ψ: clipping piles every large value onto the boundary. Hint: draw those "
                "entries again instead (np.clip is not the truncation trick).")
        distance, limit = _ks(z, psi), _ks_limit(z.size)
        if distance > limit:
            var = float(np.var(z))
            want = 1.0 if _math.isinf(psi) else \
                1.0 - 2 * psi * _math.exp(-psi * psi / 2) / _math.sqrt(2 * _math.pi) \
                / (2 * _phi(psi) - 1)
            hint = (" Hint: the values must be standard normal draws that happen to lie "
                    "within ±ψ (drawn with rng.standard_normal or rng.normal(0, 1)), not "
                    "uniform or rescaled values.")
            raise _h.GradingError(
                f"{what} ({case}): the entries are not distributed as a standard normal "
                f"restricted to [−ψ, ψ] (Kolmogorov–Smirnov distance {distance:.3f}, above "
                f"{limit:.3f}; their variance {var:.3f}"
                + ("" if hidden else f", expected {want:.3f}") + ")." + hint)
    n, dim, psi, rng_seed = _truncation_cases(seed, hidden)[0]
    again = _draw(fn, n, dim, psi, rng_seed, what)
    first = _draw(fn, n, dim, psi, rng_seed, what)
    other = _draw(fn, n, dim, psi, rng_seed + 1, what)
    if not np.array_equal(first, again):
        raise _h.GradingError(f"{what} gave different values for two generators seeded alike: "
                              "draw every number with the rng it is given (rng.standard_normal),"
                              " not np.random or tf.random, so that a seed reproduces a figure.")
    if np.array_equal(first, other):
        raise _h.GradingError(f"{what} gave the same values for two differently seeded "
                              "generators: draw with the rng it is given.")
    _h.passed(f"{what} draws N(0, 1) restricted to ±ψ by resampling"
              + (" on the hidden cases." if hidden else "."))


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_minibatch_stddev", "check_pixel_norm", "check_equalized_dense",
            "check_fade_in")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_minibatch_stddev":
        return [float(v) for _, (x,) in _stddev_cases(seed, hidden)
                for v in _stddev(x).reshape(-1)]
    if check == "check_pixel_norm":
        return [float(v) for _, args in _pixel_cases(seed, hidden)
                for v in _pixel_norm(*args).reshape(-1)]
    if check == "check_fade_in":
        return [float(v) for _, args in _fade_cases(seed, hidden)
                for v in _fade(*args).reshape(-1)]
    out = []
    for fan_in, units, _, batch in _dense_cases(seed, hidden):
        x, kernel, bias = _dense_values(seed, fan_in, units, batch)
        gain = [g for f, u, g, _ in _dense_cases(seed, hidden) if (f, u) == (fan_in, units)][0]
        out += [float(v) for v in _dense(x, kernel, bias, _math.sqrt(2.0) if gain is None
                                         else gain).reshape(-1)]
    return out
