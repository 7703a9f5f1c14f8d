"""Checks of notebook 05 (spectral normalization). Test cells call them through
``gancourse.checks.load("05_spectral_norm")``, which compiles this file afresh from disk.

Expected values come from NumPy re-implementations in float64 of Algorithm 1 of Miyato et
al. (2018) and from the closed form of the gradient of W / σ(W); the convergence rule is
checked against ``np.linalg.svd``. The critic's rules are checked on its behaviour: each
weighted layer computes its operation with kernel / σ_max (an SVD), a training call leaves
the kernels alone, and the gradient with respect to every kernel is orthogonal to it (W/σ(W)
does not change when W is scaled, so its gradient has no component along W). While a
student's code runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only ``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

# --- NumPy references ---------------------------------------------------------------------------


def _unit(x):
    return x / np.sqrt(np.sum(x * x))


def _power_iteration(w, u, iterations):
    """Algorithm 1, float64: v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖, σ = uᵀWv."""
    w, u = np.asarray(w, np.float64), np.asarray(u, np.float64)
    v = None
    for _ in range(iterations):
        v = _unit(w.T @ u)
        u = _unit(w @ v)
    return float(u @ w @ v), u, v


def _paper_matrix(kernel):
    """The paper's W (out × in) of a Keras kernel (..., out): reshape to (-1, out), transpose."""
    kernel = np.asarray(kernel, np.float64)
    return kernel.reshape(-1, kernel.shape[-1]).T


def _normalize(kernel, u):
    """(W / σ, new u, σ, v) after one power iteration on the paper's W."""
    sigma, u, v = _power_iteration(_paper_matrix(kernel), u, 1)
    return np.asarray(kernel, np.float64) / sigma, u, sigma, v


def _gradient(kernel, u, probe):
    """∂/∂kernel of Σ probe ⊙ (kernel / σ) with u, v constant: G/σ − ⟨G, K⟩/σ² · v uᵀ.

    σ = uᵀ W v = vᵀ K u (K = Wᵀ, the reshaped kernel), so ∂σ/∂K = v uᵀ.
    """
    kernel = np.asarray(kernel, np.float64)
    _, u, sigma, v = _normalize(kernel, u)
    g = np.asarray(probe, np.float64)
    dsigma = np.outer(v, u).reshape(kernel.shape)
    return g / sigma - np.sum(g * kernel) / sigma**2 * dsigma


# --- exercise 1: power iteration ------------------------------------------------------------------

def _matrix(rng, rows, cols, singular_values):
    """A matrix with the given singular values and random singular vectors."""
    left, _ = np.linalg.qr(rng.normal(size=(rows, rows)))
    right, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
    s = np.zeros((rows, cols))
    k = min(rows, cols)
    s[:k, :k] = np.diag(singular_values[:k])
    return left @ s @ right.T


def _start(rng, w, scale):
    """A start u for power iteration on ``w``, of N(0, scale²) entries. One almost orthogonal
    to the top singular vector amplifies float32 round-off by 1/cosine (a cosine of 1e-4 fails
    honest answers): drawn again below 0.1."""
    top = np.linalg.svd(np.asarray(w, np.float64))[0][:, 0]
    u = rng.normal(0, scale, len(top))
    while abs(top @ u) < 0.1 * np.linalg.norm(u):
        u = rng.normal(0, scale, len(top))
    return u


def _power_cases(seed, hidden):
    """(description, W, u, iterations): float32 inputs, u not of unit length."""
    rng = np.random.default_rng(seed)
    specs = [((5, 3), "random", 1), ((4, 7), "random", 3), ((6, 6), "ill", 2),
             ((3, 3), "random", 4)] if not hidden else \
        [((7, 4), "random", 2), ((3, 8), "ill", 3), ((5, 5), "random", 1), ((6, 2), "random", 5)]
    cases = []
    for (rows, cols), kind, iterations in specs:
        if kind == "ill":  # condition number 1e6: tiny singular values, a clear top one
            values = np.geomspace(1e3, 1e-3, min(rows, cols))
            values[1] = 400.0
            w = _matrix(rng, rows, cols, values)
            what = f"an ill-conditioned {rows}×{cols} matrix (σ from 1000 down to 0.001)"
        else:
            w = rng.normal(0, 1, (rows, cols))
            what = f"a random {rows}×{cols} matrix"
        u = _start(rng, w, 2.0)
        cases.append((f"{what}, {iterations} iteration{'s' * (iterations > 1)}",
                      w.astype(np.float32), u.astype(np.float32), iterations))
    return cases


def _power_mistakes():
    """(hint, fn(W, u, k) -> (σ, u, v)) in float64."""
    def run(update, sigma_of=lambda w, u, v, u0: u @ w @ v):
        def fn(w, u, k):
            w, u = np.asarray(w, np.float64), np.asarray(u, np.float64)
            v = None
            for _ in range(k):
                u0 = u
                u, v = update(w, u)
            return sigma_of(w, u, v, u0), u, v
        return fn

    def swapped(w, u, k):
        # v ← W u, u ← Wᵀ v: only runs for square matrices, and computes Wᵀ's vectors
        v = None
        for _ in range(k):
            v = _unit(w @ u)
            u = _unit(w.T @ v)
        return float(v @ w @ u), u, v

    return [
        ("the transposes are swapped. With W of shape (m, n) and u of m entries, "
         "v ← Wᵀu / ‖Wᵀu‖ (n entries), then u ← W v / ‖W v‖ (m entries). Write-ups that store W as "
         "(in, out), as Keras stores a Dense kernel, exchange W and Wᵀ; here W is (m, n), "
         "and the swapped update computes the singular vectors of Wᵀ.", swapped),
        ("v is not normalized: v ← Wᵀu / ‖Wᵀu‖.",
         run(lambda w, u: (_unit(w @ (w.T @ u)), w.T @ u))),
        ("u is not normalized: u ← W v / ‖W v‖.",
         run(lambda w, u: (w @ _unit(w.T @ u), _unit(w.T @ u)))),
        ("neither u nor v is normalized. Each step divides by the norm of the vector it "
         "just computed: v ← Wᵀu / ‖Wᵀu‖, u ← W v / ‖W v‖.",
         run(lambda w, u: (w @ (w.T @ u), w.T @ u))),
        ("each step divides by the norm of the wrong vector (the one it started from). "
         "Normalize the vector just computed: v ← Wᵀu / ‖Wᵀu‖, u ← W v / ‖W v‖.",
         run(lambda w, u: ((w @ (w.T @ u / np.linalg.norm(u)))
                           / np.linalg.norm(w.T @ u / np.linalg.norm(u)),
                           w.T @ u / np.linalg.norm(u)))),
        ("σ is computed as ‖Wᵀu‖ with the new u. This notebook (and the paper) estimates "
         "σ = uᵀ W v with the u and v of the last iteration.",
         run(lambda w, u: (_unit(w @ _unit(w.T @ u)), _unit(w.T @ u)),
             sigma_of=lambda w, u, v, u0: np.linalg.norm(w.T @ u))),
        ("σ is computed with the u the last iteration started from. Use the updated u: "
         "σ = uᵀ W v after u ← W v / ‖W v‖.",
         run(lambda w, u: (_unit(w @ _unit(w.T @ u)), _unit(w.T @ u)),
             sigma_of=lambda w, u, v, u0: u0 @ w @ v)),
        ("the two updates run in the wrong order: u was updated first and v computed from the "
         "new u. Algorithm 1 starts from the given u: v ← Wᵀu / ‖Wᵀu‖ first, then "
         "u ← W v / ‖W v‖, so the v returned is the one the last u was computed from.",
         run(lambda w, u: (lambda new_u: (new_u, _unit(w.T @ new_u)))(
             _unit(w @ _unit(w.T @ u))))),
        ("each step divides by the squared norm (the sum of squares) instead of the norm. "
         "Divide by tf.norm(x), the square root of the sum of squares, so that u and v have "
         "length 1.",
         run(lambda w, u: (lambda v: (w @ v / np.sum((w @ v) ** 2), v))(
             w.T @ u / np.sum((w.T @ u) ** 2)))),
        ("each step divides by the sum of absolute values (the L1 norm) instead of the "
         "Euclidean norm. Divide by tf.norm(x) (ord 2, the default), so that u and v have "
         "length 1.",
         run(lambda w, u: (lambda v: (w @ v / np.sum(np.abs(w @ v)), v))(
             w.T @ u / np.sum(np.abs(w.T @ u))))),
        ("only one iteration ran: repeat the two updates `iterations` times.",
         lambda w, u, k: _power_iteration(w, u, 1)),
        ("u and v are returned in the wrong order: return (sigma, u, v).",
         lambda w, u, k: (lambda s, uu, vv: (s, vv, uu))(*_power_iteration(w, u, k))),
    ]


def _as_vector(x, n, name, what):
    __tracebackhide__ = True
    x = np.asarray(x, np.float64)
    if x.size != n:
        raise _h.GradingError(f"{what} returned {name} with shape {x.shape}; expected a vector "
                              f"of {n} numbers.")
    return x.reshape(n)


def _triple(got, what, m, n):
    __tracebackhide__ = True
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise _h.GradingError(f"{what} should return three things, (sigma, u, v); it returned "
                              f"{type(got).__name__}"
                              + (f" of length {len(got)}." if isinstance(got, tuple | list)
                                 else "."))
    sigma = np.asarray(got[0], np.float64)
    if sigma.size != 1:
        raise _h.GradingError(f"{what} returned sigma of shape {sigma.shape}; expected one "
                              "number.")
    sizes = (np.size(got[1]), np.size(got[2]))
    if m != n and sizes == (n, m):
        raise _h.GradingError(f"{what} returned a u of {n} and a v of {m} numbers for a {m}×{n} "
                              "matrix: u and v are returned in the wrong order. Return "
                              "(sigma, u, v), u with one entry per row of W.")
    return float(sigma.reshape(())), _as_vector(got[1], m, "u", what), \
        _as_vector(got[2], n, "v", what)


def _close(a, b):
    # float32 power iterations on matrices of at most 8×8 entries: about 1e-6 relative
    return np.allclose(a, b, rtol=1e-4, atol=1e-5)


def _same_triple(got, want):
    return all(_close(np.asarray(g, np.float64), np.asarray(w, np.float64))
               for g, w in zip(got, want, strict=True))


def _power_hint(got, w, u, k):
    for text, candidate in _power_mistakes():
        try:
            want = candidate(w, u, k)
        except ValueError:  # a shape mismatch: this mistake cannot produce that output
            continue
        if all(np.shape(g) == np.shape(x) for g, x in zip(got, want, strict=True)) \
                and _same_triple(got, want):
            return f" Hint: {text}"
    w64 = np.asarray(w, np.float64)
    exact, estimate = np.linalg.svd(w64, compute_uv=False)[0], _power_iteration(w, u, k)[0]
    sigma = np.asarray(got[0], np.float64)
    if sigma.size == 1 and abs(float(sigma.reshape(())) - exact) <= 1e-5 * exact \
            and abs(estimate - exact) > 1e-4 * exact:
        return (" Hint: sigma is the exact largest singular value (as an SVD gives it), not "
                "Algorithm 1's estimate after `iterations` steps from the given u. Run the "
                "two updates and return σ = uᵀ W v: a layer does one cheap iteration per "
                "training step and carries u to the next, where an SVD would cost far more "
                "at every step.")
    # any other way of dividing by the wrong number leaves a vector that is not of length 1
    for name, x in (("v", got[2]), ("u", got[1])):
        length = float(np.linalg.norm(np.asarray(x, np.float64)))
        if np.isfinite(length) and abs(length - 1.0) > 1e-3:
            return (f" Hint: the returned {name} has length {length:.4g}, not 1. Each step "
                    "divides the vector it just computed by its Euclidean norm, tf.norm(x) "
                    "(the square root of the sum of squares).")
    return ""


def _shape_error(error) -> bool:
    text = str(error).lower()
    return any(k in text for k in ("incompatible shapes", "matrix size", "dimensions must be",
                                   "shapes", "size"))


def _run_power(fn, w, u, k, what, hidden=False):
    __tracebackhide__ = True
    m, n = w.shape
    try:
        with _h.student_code(what):
            got = fn(tf.constant(w), tf.constant(u), k)
            got = tuple(np.asarray(x) for x in got) if isinstance(got, tuple | list) else got
    except _h.GradingError as error:
        if not _shape_error(error):
            raise
        where = "a hidden case" if hidden else f"a {m}×{n} matrix W and a u of {m} entries"
        raise _h.GradingError(
            f"{what} fails on {where}: the shapes of a product do not fit. Hint: with W of "
            "shape (m, n), u has m entries and v n entries: v ← Wᵀu / ‖Wᵀu‖ "
            "(tf.linalg.matvec(W, u, transpose_a=True)), then u ← W v / ‖W v‖. If you wrote "
            "v ← W u, the transposes are swapped (write-ups that store W as (in, out), as "
            "Keras stores a Dense kernel, exchange W and Wᵀ).") from None
    return _triple(got, what, m, n)


@_h.check()
def check_power_iteration(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """power_iteration(W, u, iterations) = (σ, u, v) of Algorithm 1; σ → σ_max(W)."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "power_iteration"
    values = []
    for case, w, u, k in _power_cases(seed, hidden):
        got = _run_power(fn, w, u, k, what, hidden)
        want = _power_iteration(w, u, k)
        if not _same_triple(got, want):
            found = _power_hint(got, w, u, k)
            if hidden:
                raise _h.GradingError(f"{what} disagrees with Algorithm 1 on a hidden case "
                                      f"({case.split(',')[0]}).{found}")
            names = [n for n, g, x in zip(("sigma", "u", "v"), got, want, strict=True)
                     if not _close(g, x)]
            name = names[0]
            index = ("sigma", "u", "v").index(name)
            raise _h.GradingError(
                f"{what} on {case}: expected {name} = {np.round(want[index], 5)}, got "
                f"{np.round(got[index], 5)}.{found}")
        values += [got[0], *got[1], *got[2]]
    _power_compiled(fn, seed, hidden, what)
    _converges(fn, seed, hidden, what)
    _h.report_values("check_power_iteration", hidden, seed, values)
    _h.passed(f"{what} follows Algorithm 1 and converges to the SVD's top singular pair"
              + (" on the hidden cases." if hidden else "."))


_COMPILED_HINT = ("use TensorFlow operations throughout (tf.linalg.matvec, tf.norm, "
                  "tf.tensordot), not NumPy, .numpy() or float(): spectral_normalize calls "
                  "this function inside the trainer's compiled step, where W and u have no "
                  "values yet.")


def _power_compiled(fn, seed, hidden, what):
    """Exercise 2's layer calls power_iteration inside the trainer's tf.function (autograph
    off, as GANTrainer compiles its step): it must trace there and give Algorithm 1's
    values when the graph runs."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed + 2)
    rows, cols, k = (5, 3, 2) if not hidden else (4, 7, 3)
    w = rng.normal(size=(rows, cols)).astype(np.float32)
    u = _start(rng, w, 1.0).astype(np.float32)
    traced = tf.function(lambda w_, u_: tuple(fn(w_, u_, k)), autograph=False,
                         input_signature=[tf.TensorSpec((rows, cols), tf.float32),
                                          tf.TensorSpec((rows,), tf.float32)])
    _h.must_trace(traced, what, "inside a tf.function, as spectral_normalize calls it in the "
                  "trainer's compiled step", _COMPILED_HINT, hidden=hidden)
    try:
        with _h.no_reference_calls(what):
            got = tuple(np.asarray(x) for x in traced(tf.constant(w), tf.constant(u)))
    except _h.GradingError:
        raise
    except Exception as error:  # noqa: BLE001 - a graph that fails to run is the message
        raise _h.GradingError(f"{what} traces inside a tf.function but fails when the graph "
                              f"runs ({type(error).__name__}). Hint: {_COMPILED_HINT}") from None
    got = _triple(got, what, rows, cols)
    if not _same_triple(got, _power_iteration(w, u, k)):
        raise _h.GradingError(f"{what} gives Algorithm 1's values when called eagerly, but "
                              "other values inside a tf.function. Hint: " + _COMPILED_HINT)


def _converges(fn, seed, hidden, what):
    """With enough iterations, σ, u and v approach the SVD's (up to a common sign)."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed + 1)
    rows, cols = (6, 4) if not hidden else (5, 9)
    values = np.array([10.0, 5.0, 1.0, 1e-4, 1e-5][:min(rows, cols)])  # σ₂/σ₁ = 1/2
    w = _matrix(rng, rows, cols, values).astype(np.float32)
    u0 = rng.normal(size=rows).astype(np.float32)
    sigma, u, v = _run_power(fn, w, u0, 30, what, hidden)
    left, s, right = np.linalg.svd(w.astype(np.float64))
    # error of the vectors after 30 iterations ~ (1/2)^30: float32 round-off is what remains
    if not (abs(sigma - s[0]) <= 1e-4 * s[0] and abs(abs(u @ left[:, 0]) - 1) < 1e-4
            and abs(abs(v @ right[0]) - 1) < 1e-4):
        raise _h.GradingError(
            f"{what}: after 30 iterations on a matrix whose second singular value is half "
            "the first, the result should match np.linalg.svd: sigma = σ₁, u = ±(first left "
            "singular vector), v = ±(first right singular vector)"
            + (" (hidden case)." if hidden else f"; here σ₁ = {s[0]:.6g}, got sigma = "
               f"{sigma:.6g}."))


# --- exercise 2: the normalized kernel, and its gradient ----------------------------------------

def _kernel_cases(seed, hidden):
    """(description, kernel, u, probe): Dense and Conv2D kernels, u of `out` entries."""
    rng = np.random.default_rng(seed)
    shapes = [(6, 4), (3, 3, 2, 5), (4, 4), (4, 4, 3, 8)] if not hidden else \
        [(9, 3), (3, 3, 4, 6), (5, 5), (4, 4, 2, 4)]
    cases = []
    for shape in shapes:
        kernel = rng.normal(0, 0.3, shape).astype(np.float32)
        u = rng.normal(0, 1, shape[-1]).astype(np.float32)
        probe = rng.normal(0, 1, shape).astype(np.float32)
        kind = "a Dense kernel" if len(shape) == 2 else "a Conv2D kernel"
        cases.append((f"{kind} of shape {shape}", kernel, u, probe))
    return cases


def _normalize_mistakes():
    """(hint, fn(kernel, u) -> (W_SN, u)) in float64, for wrong values."""
    def frobenius(kernel, u):
        k = np.asarray(kernel, np.float64)
        return k / np.linalg.norm(k), _normalize(kernel, u)[1]

    def reshaped_wrong(kernel, u):
        k = np.asarray(kernel, np.float64)
        w = k.reshape(k.shape[-1], -1)  # (out, -1): mixes the entries of different outputs
        sigma, u, _ = _power_iteration(w, u, 1)
        return k / sigma, u

    def untransposed(kernel, u):  # K (in × out) used as the paper's W: u must have in entries
        k = np.asarray(kernel, np.float64)
        sigma, u, _ = _power_iteration(k.reshape(-1, k.shape[-1]), u, 1)
        return k / sigma, u

    def exact(kernel, u):
        k = np.asarray(kernel, np.float64)
        return k / np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0], \
            _normalize(kernel, u)[1]

    def old_u(kernel, u):
        return _normalize(kernel, u)[0], np.asarray(u, np.float64)

    def times_sigma(kernel, u):
        w, u, sigma, _ = _normalize(kernel, u)
        return w * sigma**2, u

    return [
        ("the kernel is divided by its Frobenius norm. Spectral normalization divides by "
         "σ(W), the largest singular value, estimated by one power iteration.", frobenius),
        ("the kernel is reshaped to (out, -1), which mixes the weights of different output "
         "channels. Reshape to (-1, out), one column per output unit, and transpose: the "
         "paper's W is (out, in).", reshaped_wrong),
        ("the reshaped kernel K = reshape(kernel, (-1, out)) is used as the paper's W "
         "without the transpose. The paper's W is (out × in), so W = Kᵀ, and u, with one "
         "entry per output unit, multiplies it from the left.", untransposed),
        ("the kernel is divided by the exact σ_max (an SVD). Spectral normalization runs one "
         "power iteration from the stored u per call: cheap, and accurate over training "
         "because u carries over from step to step.", exact),
        ("the u returned is the one passed in. Return the u of the power iteration, so "
         "that the next call starts from it.", old_u),
        ("the kernel is multiplied by σ instead of divided by it.", times_sigma),
    ]


def _pair(got, kernel, u, what):
    __tracebackhide__ = True
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise _h.GradingError(f"{what} should return two things, (normalized kernel, u); it "
                              f"returned {type(got).__name__}.")
    w = np.asarray(got[0], np.float64)
    if w.shape != kernel.shape:
        raise _h.GradingError(f"{what} returned a normalized kernel of shape {w.shape}; "
                              f"expected the kernel's shape {kernel.shape}: reshape back "
                              "after computing σ, or divide the original kernel by σ.")
    return w, _as_vector(got[1], kernel.shape[-1], "u", what)


def _run_normalize(fn, kernel, u, what, hidden=False):
    __tracebackhide__ = True
    try:
        with _h.student_code(what):
            got = fn(tf.constant(kernel), tf.constant(u))
            got = tuple(np.asarray(x) for x in got) if isinstance(got, tuple | list) else got
    except _h.GradingError as error:
        if not _shape_error(error):
            raise
        where = "a hidden case" if hidden else \
            f"a kernel of shape {kernel.shape} and a u of {kernel.shape[-1]} entries"
        raise _h.GradingError(
            f"{what} fails on {where}: the shapes of a product do not fit. Hint: u has one "
            "entry per output unit (the kernel's last dimension). The paper's W is "
            "(out × in): the transpose of reshape(kernel, (-1, out)).") from None
    return _pair(got, kernel, u, what)


def _gradient_of(fn, kernel, u, probe, what):
    """∂/∂kernel Σ probe ⊙ fn(kernel, u)[0], taken through the student's code."""
    __tracebackhide__ = True
    with _h.student_code(what):
        k = tf.constant(kernel)
        with tf.GradientTape() as tape:
            tape.watch(k)
            out = fn(k, tf.constant(u))
            w = out[0] if isinstance(out, tuple | list) else out
            loss = tf.reduce_sum(tf.cast(w, tf.float32) * probe) \
                if isinstance(w, tf.Tensor | tf.Variable) else None
        grad = tape.gradient(loss, k) if loss is not None else None
    if grad is None:
        raise _h.GradingError(
            f"{what} returns the right values, but no gradient flows from the normalized "
            "kernel back to the kernel: compute it with TensorFlow operations (tf.reshape, "
            "tf.linalg.matvec, tf.stop_gradient), not NumPy. The optimizer needs this "
            "gradient.")
    return grad.numpy().astype(np.float64)


def _gradient_hint(got, kernel, u, probe):
    _, _, sigma, _ = _normalize(kernel, u)
    if np.allclose(got, probe / sigma, rtol=1e-3, atol=1e-5):
        return (" Hint: the gradient has no path through σ: it is that of kernel / σ with σ a "
                "constant (σ computed in NumPy or as a Python number, wrapped in "
                "tf.stop_gradient, or a kernel overwritten in place as Keras's "
                "SpectralNormalization does). Hold u and v constant, not σ: "
                "σ = tf.stop_gradient(u)ᵀ W tf.stop_gradient(v) is differentiated, "
                "∂σ/∂W = u vᵀ.")
    if np.allclose(got, _gradient_free_uv(kernel, u, probe), rtol=1e-3, atol=1e-5):
        return (" Hint: the gradient also flows through u and v. The paper holds them "
                "constant: wrap both in tf.stop_gradient before computing σ = uᵀ W v.")
    return ""


def _gradient_free_uv(kernel, u, probe):
    """The gradient when u and v are differentiated too (TensorFlow, float64)."""
    k = tf.constant(np.asarray(kernel, np.float64))
    with tf.GradientTape() as tape:
        tape.watch(k)
        w = tf.transpose(tf.reshape(k, (-1, k.shape[-1])))
        uu = tf.constant(np.asarray(u, np.float64))
        v = tf.linalg.l2_normalize(tf.linalg.matvec(w, uu, transpose_a=True))
        uu = tf.linalg.l2_normalize(tf.linalg.matvec(w, v))
        sigma = tf.tensordot(uu, tf.linalg.matvec(w, v), 1)
        loss = tf.reduce_sum(k / sigma * np.asarray(probe, np.float64))
    return tape.gradient(loss, k).numpy()


def _compiled(fn, kernel, u, what):
    """The layer calls the function inside a compiled training step: it must trace."""
    __tracebackhide__ = True
    try:
        with _h.no_reference_calls(what):
            # autograph off: the student's Python loops run at trace time, and nothing is
            # printed; traced and then run as a graph (the check runs tf.functions eagerly)
            traced = tf.function(fn, autograph=False).get_concrete_function(
                tf.TensorSpec(kernel.shape, tf.float32), tf.TensorSpec(u.shape, tf.float32))
            traced(tf.constant(kernel), tf.constant(u))
    except _h.GradingError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the student's code is the message
        raise _h.GradingError(
            f"{what} gives the right values when called eagerly, but fails inside a "
            f"tf.function ({type(e).__name__}: {str(e).splitlines()[0][:200]}). The layer "
            "calls it in the trainer's compiled step: use TensorFlow operations throughout "
            "(no .numpy(), no NumPy functions on tensors).") from None


@_h.check()
def check_spectral_normalize(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """spectral_normalize(kernel, u) = (kernel / σ, u) after one power iteration, with σ
    differentiated and u, v held constant."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 100, hidden, nonce)
    what = "spectral_normalize"
    values = []
    for case, kernel, u, probe in _kernel_cases(seed, hidden):
        got_w, got_u = _run_normalize(fn, kernel, u, what, hidden)
        want_w, want_u, _, _ = _normalize(kernel, u)
        for name, got, want in (("normalized kernel", got_w, want_w), ("u", got_u, want_u)):
            if _close(got, want):
                continue
            found = ""
            for text, candidate in _normalize_mistakes():
                try:
                    cw, cu = candidate(kernel, u)
                except ValueError:
                    continue
                if _close(got_w, cw) and _close(got_u, cu):
                    found = f" Hint: {text}"
                    break
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the reference on a hidden case "
                                      f"({case.split(' of shape')[0]}).{found}")
            i = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape)
            raise _h.GradingError(
                f"{what} on {case}: {name}{[int(k) for k in i] if got.ndim else ''} expected "
                f"{want[i]:.6f}, got {got[i]:.6f}.{found}")
        grad = _gradient_of(fn, kernel, u, probe, what)
        want_grad = _gradient(kernel, u, probe)
        # float32 kernels of at most 384 entries: 1e-6 relative; a missing term differs by
        # more than 1e-2 of the largest entry
        scale = np.abs(want_grad).max()
        if not np.allclose(grad, want_grad, rtol=1e-3, atol=1e-4 * scale):
            found = _gradient_hint(grad, kernel, u, probe)
            if hidden:
                raise _h.GradingError(f"{what}: the gradient with respect to the kernel is "
                                      f"wrong on a hidden case.{found}")
            raise _h.GradingError(
                f"{what} on {case}: the gradient of Σ probe · W_SN with respect to the kernel "
                f"should be G/σ − ⟨G, W⟩/σ² · ∂σ/∂W (G = probe); the largest difference is "
                f"{np.abs(grad - want_grad).max():.3g}.{found}")
        values += [*got_w.reshape(-1), *got_u, *grad.reshape(-1)]
    _compiled(fn, *_kernel_cases(seed, hidden)[1][1:3], what)
    _h.report_values("check_spectral_normalize", hidden, seed, values)
    _h.passed(f"{what} divides by σ and differentiates σ with u, v held constant"
              + (" on the hidden cases." if hidden else "."))


# --- exercise 3: the spectral-normalized critic ----------------------------------------------

_CRITIC_SIZES = [(28, 1), (32, 3)]  # the notebook's digits, and a colour size
_HIDDEN_IMAGE_SIZES = (8, 16, 28, 32)  # what the exercise's halving loop handles (to 4 or 7)
_HIDDEN_CHANNELS = (1, 2, 3, 4)
# the critic may wrap its layers in gantools' SpectralNorm (with the student's function or,
# once exercise 2 passes, gantools' own); its code is told by the file it was compiled from
_ALLOW = (("gantools.models.layers", "SpectralNorm."),
          ("gantools.models.layers", "spectral_normalize"),
          ("gantools.models.layers", "_l2_normalize"))
# what the cells a student writes may call while the notebook is autograded (read from
# this file's source by the grader, so it stays a literal): the wrapper's methods, never the
# reference of exercise 2 (gantools' spectral_normalize), which a cell could trace
# into a graph that runs during the check without Python
CELL_ALLOW = (("gantools.models.layers", "SpectralNorm."),)
# the kernels the check gives every normalized layer: σ_max = 4, every other σ in [0.2, 1],
# so that each power iteration shrinks u's error by (1/4)² and 20 calls leave ~1e-24 of it
_SIGMA_MAX = 4.0
_CALLS = 20


def _critic_sizes(rng, hidden):
    """(image size, channels) of the critics to build; hidden ones drawn from the grader's
    nonce, two different image sizes, so that no model built in advance fits them."""
    if not hidden:
        return _CRITIC_SIZES
    sizes = rng.choice(_HIDDEN_IMAGE_SIZES, 2, replace=False)
    return [(int(size), int(rng.choice(_HIDDEN_CHANNELS))) for size in sizes]


def _wrappers(records):
    """The layers that ran in the forward pass and wrap a weighted layer (Keras's Wrapper:
    gantools' SpectralNorm, Keras's SpectralNormalization, or a student's own); what they
    compute is checked separately. Each once, in the order they ran."""
    import keras

    found = {}
    for layer, _, _ in records:
        if isinstance(layer, keras.layers.Wrapper) and _h.own_kernels(
                getattr(layer, "layer", None) or keras.layers.Layer()):
            found.setdefault(id(layer), layer)
    return list(found.values())


def _kernel_of(inner):
    return _h.own_kernels(inner)[0]


def _owner(variable, records):
    """The name of the layer that ran holding ``variable`` (else the variable's path)."""
    for layer, _, _ in records:
        if any(_h.backing(v) is variable for v in _h.own_kernels(layer)):
            return layer.name
    return variable.name.split(":")[0]


def _with_kernel(inner, x, kernel):
    """What the wrapped layer computes on ``x`` with ``kernel`` in place of its own: the
    layer itself called with the kernel swapped in (and back), whatever its operation."""
    variable = _kernel_of(inner)
    saved = variable.numpy()
    variable.assign(kernel)
    try:
        return np.asarray(inner(x, training=False), np.float64)
    finally:
        variable.assign(saved)


def _spectrum_kernel(shape, rng):
    """A kernel of ``shape`` whose paper matrix (reshape to (-1, out)) has σ_max = 4 and every
    other singular value in [0.2, 1], with random singular vectors."""
    rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
    k = min(rows, cols)
    values = np.sort(rng.uniform(0.2, 1.0, k))[::-1]
    values[0] = _SIGMA_MAX
    # k orthonormal columns on each side (a reduced QR: a conv kernel has thousands of rows)
    left = np.linalg.qr(rng.normal(size=(rows, k)))[0]
    right = np.linalg.qr(rng.normal(size=(cols, k)))[0]
    return ((left * values) @ right.T).reshape(shape).astype(np.float32)


def _batch_dependent(layer, x):
    """Whether ``layer``'s training-mode output for the first example changes with the rest
    of the batch (what batch normalization does), told by calling it: a random layer
    (dropout) differs even on the same batch and is left alone."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank is None or x.shape[0] is None or x.shape[0] < 2:
        return False
    try:
        first = np.asarray(layer(x, training=True), np.float64)
        again = np.asarray(layer(x, training=True), np.float64)
        if not np.allclose(first, again, rtol=1e-5, atol=1e-6):
            return False
        others = tf.concat([x[:1], tf.reverse(x[1:], [0]) * 3.0 + 1.0], axis=0)
        changed = np.asarray(layer(others, training=True), np.float64)
    except Exception:  # noqa: BLE001 - a layer that cannot be called alone tells nothing
        return False
    return not np.allclose(first[:1], changed[:1], rtol=1e-4, atol=1e-5)


def _critic(build, size, channels, rng, what, hidden):
    __tracebackhide__ = True
    import keras

    x = tf.constant(rng.uniform(-1, 1, (4, size, size, channels)).astype(np.float32))
    call = f"{what}({size}, {channels})"
    with _h.student_code(what, _ALLOW), _h.made_here(call) as judge:
        d = build(size, channels)
        # told before the judge's forward pass, which would build a Sequential
        if not (isinstance(d, keras.Model) and bool(d.trainable_variables)):
            raise _h.GradingError(_h.weightless_hint(d, what, "image_size, image_size, "
                                                     "channels"))
        d = judge(d, x)
        records = _h.layer_trace(d, x, training=True)
        used = _h.kernels_used(d, x)
        out = np.asarray(d(x, training=False))
        # the plain layers that hold no kernel (wrappers and nested models are judged by
        # the layers inside them, which the trace holds too)
        dependent = [layer.name for layer, inputs, _ in records
                     if not _h.own_kernels(layer) and not _h.layers_of(layer)
                     and _batch_dependent(layer, inputs)]
    if out.shape != (4, 1):
        raise _h.GradingError(f"{call} maps images of shape (4, {size}, {size}, {channels}) "
                              f"to {out.shape}; expected one score per image, (4, 1).")
    if dependent:
        raise _h.GradingError(f"{call}: the layer {dependent[0]!r} makes each image's output "
                              "depend on the rest of the batch (batch normalization). Drop it "
                              "from a spectral-normalized critic: its scale can undo the "
                              "normalization (it divides by a batch statistic), and it makes "
                              "each image's score depend on the rest of the batch.")
    stretching = _stretching(records, what)
    if stretching:
        name, slope = stretching
        raise _h.GradingError(
            f"{call}: the activation {name!r} stretches differences by up to {slope:.2f} (its "
            "largest slope), so the product of the layers' σ no longer bounds the critic's "
            "slope. Use an activation whose slope is at most 1, such as LeakyReLU(0.2), as "
            "the text asks, or ReLU.")
    wrapped = _wrappers(records)
    # every kernel the score is computed from must be one a wrapper normalizes (told by a
    # tape, whatever the model says about its layers)
    normalized = {id(_h.backing(_kernel_of(w.layer))) for w in wrapped}
    bare = [_owner(v, records) for v in used if id(v) not in normalized]
    if bare:
        raise _h.GradingError(f"{call}: the layer {bare[0]!r} is not spectral-normalized. Wrap "
                              "every layer with weights of the critic (Dense and Conv2D), the "
                              "last one included: gmodels.SpectralNorm(layer, "
                              "normalize=spectral_normalize).")
    if not wrapped:
        raise _h.GradingError(f"{call} has no spectral-normalized Dense or Conv2D layer.")
    # the layer that made the score: the last one to finish among wrappers and plain layers
    # (a model nested inside the critic finishes after its own last layer)
    ends = [layer for layer, _, _ in records
            if isinstance(layer, keras.layers.Wrapper) or not _h.layers_of(layer)]
    last = ends[-1] if ends else None
    inner = getattr(last, "layer", None)
    activation = getattr(inner, "activation", None)
    if not (last in wrapped and len(_kernel_of(inner).shape) == 2
            and (activation is None or _h.function_kind(activation) == "identity")):
        raise _h.GradingError(f"{call} should end in a spectral-normalized Dense layer with no "
                              "activation: the critic outputs a raw score for the hinge loss "
                              "(no sigmoid).")
    return d, x, wrapped, {id(layer): inputs for layer, inputs, _ in records}


_STRETCH = 1.01  # a slope's round-off on the probe grid is ~1e-4; SELU's is 1.76, GELU's 1.13


def _stretching(records, what):
    """(name, slope) of the first activation that stretches differences: a layer's own
    ``activation`` (inside a wrapper too), or a weightless layer that maps its input to an
    output of the same shape (an Activation, a LeakyReLU with a slope above 1, a Lambda)."""
    with _h.student_code(what, _ALLOW):
        for layer, inputs, outputs in records:
            # a wrapper may compute its layer's operation itself, never calling the layer
            activation = getattr(layer, "activation", None) or \
                getattr(getattr(layer, "layer", None), "activation", None)
            slope = None
            if callable(activation):
                slope = _h.largest_slope(activation)
            elif not layer.weights and not _h.layers_of(layer) \
                    and _h.elementwise_kind(inputs, outputs) not in (None, "identity"):
                slope = _h.largest_slope(lambda t, f=layer: f(t, training=False), like=inputs)
            if slope is not None and slope > _STRETCH:
                return layer.name, slope
    return None


def _kernels(wrapped):
    return [np.asarray(_kernel_of(w.layer), np.float64).copy() for w in wrapped]


def _probe_input(inputs, rng):
    """A probe shaped like what the layer received in the critic, with new values."""
    shape = tuple(int(n) for n in tf.convert_to_tensor(inputs).shape)
    return tf.constant(rng.normal(0, 1, shape).astype(np.float32))


def _check_critic(build, size, channels, rng, what, hidden):
    __tracebackhide__ = True
    d, x, wrapped, inputs = _critic(build, size, channels, rng, what, hidden)
    call = f"{what}({size}, {channels})"
    with _h.student_code(what, _ALLOW):
        for w in wrapped:  # a known spectrum: power iteration converges in a few calls
            variable = _kernel_of(w.layer)
            variable.assign(_spectrum_kernel(tuple(variable.shape), rng))
        before = _kernels(wrapped)
        for _ in range(_CALLS):
            d(x[:1], training=True)
    after = _kernels(wrapped)
    for w, k0, k1 in zip(wrapped, before, after, strict=True):
        if not np.array_equal(k0, k1):
            raise _h.GradingError(
                f"{call}: a call with training=True changed the stored kernel of "
                f"{w.layer.name!r}. That is what keras.layers.SpectralNormalization does (it "
                "overwrites the kernel with W/σ, and then no gradient flows through σ). The "
                "paper's reparametrisation computes W/σ(W) on the fly and leaves W to the "
                "optimizer: gmodels.SpectralNorm(layer, normalize=spectral_normalize).")
    for w in wrapped:
        kernel = np.asarray(_kernel_of(w.layer), np.float64)
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        probe = _probe_input(inputs[id(w)], rng)
        with _h.student_code(what, _ALLOW):
            got = np.asarray(w(probe, training=False), np.float64)
            want = _with_kernel(w.layer, probe, (kernel / sigma).astype(np.float32))
        # with σ₂/σ₁ ≤ 1/4, 20 power iterations leave σ's error far below float32's ~1e-6
        # relative round-off of these products; a kernel divided by anything else (no σ,
        # the Frobenius norm, a stale σ) is off by 10 % or more
        if not np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()):
            raise _h.GradingError(
                f"{call}: the layer {w.layer.name!r} does not compute its operation with "
                "kernel / σ_max (σ_max from an SVD of the kernel reshaped to (-1, out)) after "
                f"{_CALLS} training calls. Wrap it with gmodels.SpectralNorm(layer, "
                "normalize=spectral_normalize).")
    variables = [_kernel_of(w.layer) for w in wrapped]
    with _h.student_code(what, _ALLOW), tf.GradientTape() as tape:
        score = tf.reduce_sum(d(x, training=False))
        grads = tape.gradient(score, variables)
    for w, v, g in zip(wrapped, variables, grads, strict=True):
        if g is None:
            raise _h.GradingError(f"{call}: no gradient reaches the kernel of {w.layer.name!r}.")
        g, k = np.asarray(g, np.float64), np.asarray(v, np.float64)
        # W/σ(W) is unchanged when W is scaled, so ⟨∂L/∂W, W⟩ = 0 exactly; float32 leaves
        # ~1e-5 of ‖g‖‖W‖, a gradient without the σ term ~1e-1
        if abs(np.sum(g * k)) > 1e-3 * np.linalg.norm(g) * np.linalg.norm(k):
            raise _h.GradingError(
                f"{call}: the gradient with respect to the kernel of {w.layer.name!r} is not "
                "orthogonal to the kernel, so it has no path through σ. W/σ(W) does not change "
                "when W is scaled by any factor, so its gradient has no component along W; "
                "that holds only when σ is differentiated (Keras's SpectralNormalization "
                "loses it). Use gmodels.SpectralNorm(layer, normalize=spectral_normalize).")


@_h.check(_ALLOW)
def check_sn_critic(build, hidden: bool = False, seed: int = 0, nonce=None):
    """build_sn_critic(image_size, channels): every weighted layer divided by σ with the
    gradient through σ, no batch norm, a raw score."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 200, hidden, nonce)
    what = "build_sn_critic"
    rng = np.random.default_rng(seed)
    with _h.hidden_wording(hidden, what):
        for size, channels in _critic_sizes(rng, hidden):
            _check_critic(build, size, channels, rng, what, hidden)
    _h.passed(f"{what} normalizes every weighted layer by σ, differentiably, with no batch "
              "norm" + (" (hidden sizes)." if hidden else "."))


VERIFIED = ("check_power_iteration", "check_spectral_normalize")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_power_iteration":
        return [float(x) for _, w, u, k in _power_cases(seed, hidden)
                for s, uu, vv in [_power_iteration(w, u, k)] for x in (s, *uu, *vv)]
    out = []
    for _, kernel, u, probe in _kernel_cases(seed, hidden):
        w, uu, _, _ = _normalize(kernel, u)
        out += [float(x) for x in (*w.reshape(-1), *uu, *_gradient(kernel, u, probe).reshape(-1))]
    return out
