"""Checks of notebook 07 (data-efficient GANs: KID, exact-gradient augmentation, ADA). Test
cells call them through ``gancourse.checks.load("07_ada")``, which compiles this file afresh
from disk.

Expected values come from float64 NumPy re-implementations: the unbiased MMD² with the
cubic polynomial kernel, a translation written with index arithmetic, and the integral
controller's update. The translation's gradient is checked against its exact transpose (the
translation back, with zero fill), computed in NumPy: an interpolating warp such as
``ImageProjectiveTransformV3`` has the right values for integer shifts but a wrong gradient.
While a student's code runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only ``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

# --- exercise 1: KID on one block ----------------------------------------------------------------


def _kernel(a, b, degree=3, scale=True):
    d = a.shape[1]
    return (a @ b.T / (d if scale else 1.0) + 1.0) ** degree


def _kid(real, fake, degree=3, scale=True, unbiased=True):
    """Unbiased MMD²: off-diagonal means of k(real, real) and k(fake, fake), minus twice the
    mean of k(real, fake)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, n = len(real), len(fake)
    k_rr, k_ff = _kernel(real, real, degree, scale), _kernel(fake, fake, degree, scale)
    k_rf = _kernel(real, fake, degree, scale)
    if unbiased:
        rr = (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))
        ff = (k_ff.sum() - np.trace(k_ff)) / (n * (n - 1))
    else:
        rr, ff = k_rr.mean(), k_ff.mean()
    return rr + ff - 2.0 * k_rf.mean()


def _kid_divided_by_squares(real, fake):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    k_rr, k_ff = _kernel(real, real), _kernel(fake, fake)
    return ((k_rr.sum() - np.trace(k_rr)) / len(real) ** 2
            + (k_ff.sum() - np.trace(k_ff)) / len(fake) ** 2 - 2.0 * _kernel(real, fake).mean())


def _kid_one_size(real, fake, pairs=True, cross=False):
    """The unbiased estimator with the real set's size m used in place of the fake set's n:
    for the fake pairs (``pairs``), for the cross sum (``cross``), or for both."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, n = len(real), len(fake)
    k_rr, k_ff, k_rf = _kernel(real, real), _kernel(fake, fake), _kernel(real, fake)
    fake_pairs = m * (m - 1) if pairs else n * (n - 1)
    return ((k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))
            + (k_ff.sum() - np.trace(k_ff)) / fake_pairs
            - 2.0 * k_rf.sum() / (m * (m if cross else n)))


def _kid_mistakes():
    one_size = ("one size is used for both sets: the real set has m vectors and the fake set "
                "n, which may differ. Divide the fake pairs by n(n − 1) and the cross sum by "
                "m·n (or take its mean).")
    return [
        (one_size, _kid_one_size),
        (one_size, lambda r, f: _kid_one_size(r, f, cross=True)),
        (one_size, lambda r, f: _kid_one_size(r, f, pairs=False, cross=True)),
        ("the diagonal terms k(x_i, x_i) are kept: that is the biased estimator, which is "
         "positive even for two samples of one distribution. Average k(x_i, x_j) over i ≠ j "
         "only: subtract the trace and divide by m(m − 1).",
         lambda r, f: _kid(r, f, unbiased=False)),
        ("the diagonal is removed but the sums are divided by m² (and n²): there are only "
         "m(m − 1) pairs i ≠ j, so divide by m(m − 1) and n(n − 1).",
         lambda r, f: _kid_divided_by_squares(r, f)),
        ("the kernel is missing the 1/d: k(x, y) = (xᵀy / d + 1)³ with d the number of "
         "features.", lambda r, f: _kid(r, f, scale=False)),
        ("the kernel is squared; KID uses the cubic polynomial kernel (xᵀy/d + 1)³.",
         lambda r, f: _kid(r, f, degree=2)),
        ("the cross term is added; MMD² subtracts it twice: E k(x, x') + E k(y, y') − "
         "2 E k(x, y).", lambda r, f: _kid(r, f) + 4.0 * _kernel(
             np.asarray(r, np.float64), np.asarray(f, np.float64)).mean()),
        ("the cross term is counted once; MMD² subtracts it twice.",
         lambda r, f: _kid(r, f) + _kernel(np.asarray(r, np.float64),
                                           np.asarray(f, np.float64)).mean()),
    ]


def _kid_cases(seed, hidden):
    """(description, real (m, d), fake (n, d)) float32: same and shifted distributions."""
    rng = np.random.default_rng(seed)
    # hidden sizes drawn from the grader's nonce: nothing prepared for fixed shapes fits
    specs = [(20, 20, 4, 0.0), (30, 25, 8, 0.5), (12, 40, 3, 1.5)] if not hidden else \
        [(int(rng.integers(12, 41)), int(rng.integers(12, 41)), int(rng.integers(low, 9)), shift)
         for low, shift in ((4, 0.0), (2, float(rng.uniform(0.3, 1.0))),
                            (2, float(rng.uniform(1.5, 2.5))))]
    cases = []
    for m, n, d, shift in specs:
        real = rng.normal(0, 1, (m, d)).astype(np.float32)
        fake = (rng.normal(0, 1, (n, d)) * (1 + shift / 2) + shift).astype(np.float32)
        what = "two samples of one distribution" if shift == 0 else "shifted fakes"
        cases.append((f"{m} real and {n} fake vectors of {d} features ({what})", real, fake))
    return cases


def _kid_close(got, want):
    # the grader compares the reported values the same way (evidence.agree: rtol 1e-4, atol
    # 1e-5); the cases keep float32 rounding (~1e-6 of kernel means near 1) well inside it
    return _h.agree(got, want)


@_h.check()
def check_kid(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """kid(real, fake) = unbiased MMD² with k(x, y) = (xᵀy/d + 1)³, on one block."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "kid"
    values = []
    for case, real, fake in _kid_cases(seed, hidden):
        with _h.student_code(what):
            out = fn(real, fake)
            got = np.asarray(out, np.float64)
        if got.ndim != 0:
            raise _h.GradingError(f"{what} should return one number (a float, or a 0-d array "
                                  f"or tensor), got an array of shape {got.shape}: the "
                                  f"notebook calls float({what}(...)), which needs a single "
                                  "value. Return the sum's value itself, not a list or a "
                                  "1-element array.")
        got = float(got.reshape(()))
        want = _kid(real, fake)
        if not np.isfinite(got) or not _kid_close(got, want):
            found = next((f" Hint: {text}" for text, mistake in _kid_mistakes()
                          if _kid_close(got, mistake(real, fake))), "")
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the reference on a hidden case."
                                      f"{found}")
            raise _h.GradingError(f"{what} on {case}: expected {want:.6f}, got {got:.6f}."
                                  f"{found}")
        values.append(got)
    _h.report_values("check_kid", hidden, seed, values)
    _h.passed(f"{what} computes the unbiased MMD² with the cubic kernel"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 2: translation with an exact gradient ---------------------------------------------

def _translate(x, dx, dy):
    """out[b, i, j] = x[b, i − dy[b], j − dx[b]] inside the image, 0 outside."""
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for b in range(len(x)):
        sy, sx = int(dy[b]), int(dx[b])
        rows_out = slice(max(sy, 0), min(h, h + sy))
        rows_in = slice(max(-sy, 0), min(h, h - sy))
        cols_out = slice(max(sx, 0), min(w, w + sx))
        cols_in = slice(max(-sx, 0), min(w, w - sx))
        out[b, rows_out, cols_out] = x[b, rows_in, cols_in]
    return out


def _translate_mistakes():
    def rolled(x, dx, dy):
        return np.stack([np.roll(x[b], (int(dy[b]), int(dx[b])), axis=(0, 1))
                         for b in range(len(x))])

    def clipped(x, dx, dy):
        h, w = x.shape[1:3]
        out = np.empty_like(np.asarray(x, np.float64))
        for b in range(len(x)):
            rows = np.clip(np.arange(h) - int(dy[b]), 0, h - 1)
            cols = np.clip(np.arange(w) - int(dx[b]), 0, w - 1)
            out[b] = np.asarray(x, np.float64)[b][rows][:, cols]
        return out

    return [
        ("the uncovered pixels repeat the image's edge row or column (the source indices are "
         "clipped into the image): they must be 0. Pad the images with zeros first and "
         "gather from the padded images, or set the pixels whose source lies outside to 0.",
         clipped),
        ("dx and dy are swapped: dx moves the image right (along the width, axis 2), dy moves "
         "it down (along the height, axis 1).", lambda x, dx, dy: _translate(x, dy, dx)),
        ("the image moves the wrong way: a positive dx moves the content right, "
         "out[i, j] = x[i − dy, j − dx].", lambda x, dx, dy: _translate(x, -dx, -dy)),
        ("the pixels that leave on one side come back on the other (tf.roll wraps around); "
         "fill the uncovered pixels with 0 instead: pad with zeros, then gather or slice.",
         rolled),
        ("every image moved by the first image's shift: each image has its own (dx, dy).",
         lambda x, dx, dy: _translate(x, np.full_like(dx, dx[0]), np.full_like(dy, dy[0]))),
    ]


def _translate_cases(seed, hidden):
    """(description, images (B, H, W, C) float32, dx int32 (B,), dy int32 (B,))."""
    rng = np.random.default_rng(seed)
    # hidden sizes drawn from the grader's nonce: nothing prepared for fixed shapes fits
    specs = [(3, 6, 6, 1), (4, 5, 8, 3), (2, 9, 4, 2)] if not hidden else \
        [tuple(int(x) for x in (rng.integers(2, 6), rng.integers(4, 10), rng.integers(4, 10),
                                rng.integers(1, 4))) for _ in range(3)]
    cases = []
    for n, h, w, c in specs:
        x = rng.uniform(-1, 1, (n, h, w, c)).astype(np.float32)
        dx = rng.integers(-(w - 1), w, n).astype(np.int32)
        dy = rng.integers(-(h - 1), h, n).astype(np.int32)
        dx[0], dy[0] = 2, -1  # distinct, so that swapped or shared shifts show
        cases.append((f"{n} images of {h}×{w}×{c}, dx = {dx.tolist()}, dy = {dy.tolist()}",
                      x, dx, dy))
    return cases


def _run_translate(fn, x, dx, dy, what):
    __tracebackhide__ = True
    xt = tf.constant(x)
    probe = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    with _h.student_code(what), tf.GradientTape() as tape:
        tape.watch(xt)
        out = fn(xt, tf.constant(dx), tf.constant(dy))
        inner = tf.reduce_sum(tf.cast(out, tf.float32) * probe) \
            if isinstance(out, tf.Tensor | tf.Variable) else None
    if inner is None:
        raise _h.GradingError(f"{what} returned a {type(out).__name__}; return a TensorFlow "
                              "tensor: the generator's gradient must flow through it.")
    if tuple(out.shape) != x.shape:
        raise _h.GradingError(f"{what} returned shape {tuple(out.shape)} for images of shape "
                              f"{x.shape}; a translation keeps the shape.")
    grad = tape.gradient(inner, xt)
    return np.asarray(out, np.float64), (None if grad is None else grad.numpy()), probe


@_h.check()
def check_translate(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """translate(images, dx, dy): each image moved by its (dx, dy) pixels, zeros moved in;
    the gradient is the exact transpose (the move back)."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "translate"
    values = []
    for case, x, dx, dy in _translate_cases(seed, hidden):
        got, grad, probe = _run_translate(fn, x, dx, dy, what)
        want = _translate(x, dx, dy)
        if not np.allclose(got, want, atol=1e-6):
            found = next((f" Hint: {text}" for text, mistake in _translate_mistakes()
                          if np.allclose(got, mistake(x, dx, dy), atol=1e-6)), "")
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the reference on a hidden case."
                                      f"{found}")
            raise _h.GradingError(f"{what} on {case}: the values differ from the expected "
                                  f"translation (largest difference "
                                  f"{np.abs(got - want).max():.3g}).{found}")
        if grad is None:
            raise _h.GradingError(f"{what} gives the right values but no gradient flows back "
                                  "to the images: build the output from the images with "
                                  "TensorFlow operations (tf.pad and tf.gather, or slicing), "
                                  "not NumPy.")
        exact = _translate(probe, -dx, -dy)  # the transpose of a move is the move back
        error = np.linalg.norm(grad - exact) / max(np.linalg.norm(exact), 1e-12)
        if error > 1e-5:
            raise _h.GradingError(
                f"{what} gives the right values, but its gradient is not the exact transpose "
                f"of the translation (relative error {error:.2g}"
                + ("" if not hidden else ", hidden case") + "). Hint: an interpolating warp "
                "(ImageProjectiveTransformV3, keras.layers.RandomTranslation, tfa.image) "
                "registers an approximate gradient; move the pixels with tf.pad and "
                "tf.gather (or slicing), whose gradients are exact.")
        values += got.reshape(-1).tolist()
    _h.report_values("check_translate", hidden, seed, values)
    _h.passed(f"{what} moves each image by its own shift, with the exact gradient"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 3: the integral controller --------------------------------------------------------

def _update(p, logits, target, steps):
    accuracy = np.mean(np.asarray(logits, np.float64) > 0)
    return float(np.clip(p + (accuracy - target) / steps, 0.0, 1.0))


def _update_mistakes():
    def sigmoid_mean(p, logits, target, steps):
        accuracy = np.mean(1 / (1 + np.exp(-np.asarray(logits, np.float64))))
        return float(np.clip(p + (accuracy - target) / steps, 0.0, 1.0))

    return [
        ("the accuracy is the fraction of real images D calls real, mean(logits > 0), not the "
         "mean of sigmoid(logits).", sigmoid_mean),
        ("p moves the wrong way: when D is more accurate than the target (it overfits), p "
         "must grow: p + (accuracy − target) / integration_steps.",
         lambda p, lg, t, s: float(np.clip(p - (np.mean(np.asarray(lg) > 0) - t) / s, 0, 1))),
        ("p is not clipped to [0, 1]: it is a probability.",
         lambda p, lg, t, s: p + (np.mean(np.asarray(lg, np.float64) > 0) - t) / s),
        ("the error is not divided by integration_steps.",
         lambda p, lg, t, s: float(np.clip(p + (np.mean(np.asarray(lg) > 0) - t), 0, 1))),
    ]


def _update_cases(seed, hidden):
    """(description, p0, logit batches, target, integration_steps): a sequence each."""
    rng = np.random.default_rng(seed)
    specs = [(0.3, 0.85, 10, 6, 2.0), (0.5, 0.8, 4, 6, -0.5), (0.98, 0.6, 20, 5, 3.0),
             (0.02, 0.9, 3, 5, -3.0)] if not hidden else \
        [(0.4, 0.7, 8, 6, 1.0), (0.9, 0.85, 5, 5, 2.5), (0.03, 0.75, 2, 6, -2.0)]
    cases = []
    for p0, target, steps, length, bias in specs:
        batches = []
        for _ in range(length):
            logits = rng.normal(bias, 1.5, int(rng.integers(5, 12)))
            logits[np.abs(logits) < 1e-3] = 0.5  # no logit exactly on the boundary
            batches.append(logits.astype(np.float32))
        cases.append((f"p = {p0}, target {target}, integration_steps {steps}, {length} "
                      "batches of logits", p0, batches, target, steps))
    return cases


@_h.check()
def check_update_probability(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """p ← clip(p + (mean(real_logits > 0) − target) / integration_steps, 0, 1), in sequence."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "update_probability"
    values = []
    for case, p0, batches, target, steps in _update_cases(seed, hidden):
        p = want = p0
        for i, logits in enumerate(batches):
            with _h.student_code(what):
                out = fn(tf.constant(p, tf.float32), tf.constant(logits), target, steps)
                got = np.asarray(out, np.float64)
            if got.ndim != 0:
                raise _h.GradingError(f"{what} should return the new p, one number (a "
                                      f"scalar tensor, shape ()); got shape {got.shape}. "
                                      "tf.reduce_mean over the batch gives a scalar; do not "
                                      "keep a batch axis or wrap p in a list.")
            got = float(got.reshape(()))
            expected_now = _update(want, logits, target, steps)
            if not np.isfinite(got) or abs(got - expected_now) > 1e-6:
                found = next((f" Hint: {text}" for text, mistake in _update_mistakes()
                              if abs(got - float(mistake(want, logits, target, steps))) < 1e-6),
                             "")
                if hidden:
                    raise _h.GradingError(f"{what} disagrees with the reference on a hidden "
                                          f"case (a sequence of updates).{found}")
                raise _h.GradingError(
                    f"{what} on {case}, update {i + 1} (p = {want:.6f}, accuracy "
                    f"{np.mean(logits > 0):.3f}): expected {expected_now:.6f}, got "
                    f"{got:.6f}.{found}")
            p = want = expected_now
            values.append(got)
    _traces(fn, what)
    _h.report_values("check_update_probability", hidden, seed, values)
    _h.passed(f"{what} follows the integral controller"
              + (" on the hidden sequences." if hidden else "."))


def _traces(fn, what):
    """The augmenter calls it inside the compiled training step: it must trace."""
    __tracebackhide__ = True
    traced = tf.function(lambda p, logits: fn(p, logits, 0.85, 100), autograph=False,
                         input_signature=[tf.TensorSpec([], tf.float32),
                                          tf.TensorSpec([None], tf.float32)])
    _h.must_trace(traced, what, "inside a compiled training step",
                  "use TensorFlow operations (tf.reduce_mean, tf.cast, tf.clip_by_value), not "
                  "NumPy, float() or Python if/min/max on tensors.")


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_kid", "check_translate", "check_update_probability")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_kid":
        return [float(_kid(r, f)) for _, r, f in _kid_cases(seed, hidden)]
    if check == "check_translate":
        return [float(v) for _, x, dx, dy in _translate_cases(seed, hidden)
                for v in _translate(x, dx, dy).reshape(-1)]
    out = []
    for _, p, batches, target, steps in _update_cases(seed, hidden):
        for logits in batches:
            p = _update(p, logits, target, steps)
            out.append(p)
    return out
