"""Checks of notebook 03 (WGAN with weight clipping, WGAN-GP). Test cells call them through
``gancourse.checks.load("03_wgan")``, which compiles this file afresh from disk.

Expected values come from a private copy of ``gantools.losses.adversarial``, from
closed forms (a linear critic f(x) = w·x + b has ∇ₓf = w for every x, so its gradient
penalty is (‖w‖ - 1)² whatever ε is drawn) and from NumPy written here. While a student's
code runs, every gantools function is booby-trapped (see :mod:`gancourse.checks.harness`).
Messages of hidden checks never show expected values. Only ``check_*``, ``expected`` and
``VERIFIED`` are public; the harness is ``_h``.
"""

from contextlib import contextmanager as _contextmanager

import numpy as np
import tensorflow as tf

from .. import harness as _h

# the small constant inside the square root of the gradient norm (as in gantools)
_NORM_EPS = 1e-12


def _losses():
    return _h.reference("gantools.losses.adversarial")


def _mean(x):
    return tf.reduce_mean(tf.cast(x, tf.float32))


# --- exercise 1: the Wasserstein losses -----------------------------------------------------------

def _score_cases(seed, hidden):
    """Critic scores: unbounded numbers, some far beyond where a sigmoid saturates."""
    sizes = [((8,), (8,)), ((32, 1), (32, 1)), ((16,), (9,))] if not hidden else \
        [((5,), (5,)), ((64, 1), (64, 1)), ((7, 1), (20, 1))]
    cases = []
    for i, (real_shape, fake_shape) in enumerate(sizes):
        real = _h.random_logits(seed + i, real_shape, scale=2.0, shift=0.7)
        fake = _h.random_logits(seed + 40 + i, fake_shape, scale=2.0, shift=-0.4)
        what = (f"scores of shape {real_shape}" if real_shape == fake_shape else
                f"{real_shape[0]} real and {fake_shape[0]} generated scores (batch means are "
                "taken separately)")
        cases.append((what, (real, fake)))
    real = np.array([50.0, -3.0, 120.0] if not hidden else [75.0, 2.0, -40.0], np.float32)
    fake = np.array([-80.0, 4.0, 30.0] if not hidden else [-15.0, 90.0, 5.0], np.float32)
    cases.append(("large scores (a critic's output is not a probability)", (real, fake)))
    return cases


def _critic_loss_mistakes():
    mean = _mean

    def sig(x):
        return tf.sigmoid(tf.cast(x, tf.float32))

    def softplus(x):
        return tf.nn.softplus(tf.cast(x, tf.float32))

    return [
        ("the sign is flipped. The critic minimizes E f(G(z)) - E f(x): minimizing it pushes "
         "real scores up and fake scores down.", lambda r, f: mean(r) - mean(f)),
        ("a sigmoid is applied to the scores. A WGAN critic outputs an unbounded score, not "
         "a probability: use the raw outputs.", lambda r, f: mean(sig(f)) - mean(sig(r))),
        ("a sigmoid is applied to the scores, and the sign is flipped.",
         lambda r, f: mean(sig(r)) - mean(sig(f))),
        ("this is the cross-entropy loss of notebook 01. The Wasserstein critic loss is the "
         "difference of mean scores, E f(G(z)) - E f(x), with no sigmoid and no log.",
         lambda r, f: mean(softplus(-r)) + mean(softplus(f))),
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda r, f: tf.reduce_sum(f) - tf.reduce_sum(r)),
        ("only the real term: add the mean score of the generated batch.",
         lambda r, f: -mean(r)),
    ]


def _generator_loss_mistakes():
    mean = _mean
    return [
        ("the sign is flipped. G wants high scores, so it minimizes -E f(G(z)).",
         lambda f: mean(f)),
        ("a sigmoid is applied to the scores. Use the raw critic scores: -E f(G(z)).",
         lambda f: -mean(tf.sigmoid(tf.cast(f, tf.float32)))),
        ("this is the non-saturating loss of notebook 01 (-E log σ(ℓ)). The Wasserstein "
         "generator loss is -E f(G(z)), with no sigmoid and no log.",
         lambda f: mean(tf.nn.softplus(-tf.cast(f, tf.float32)))),
        ("you summed over the batch; average instead (tf.reduce_mean).",
         lambda f: -tf.reduce_sum(f)),
    ]


def _loss_cases(check, seed, hidden):
    cases = _score_cases(seed, hidden)
    if check == "check_critic_loss":
        return cases
    return [(c.replace("real and ", "").split(" (batch")[0], (args[1],)) for c, args in cases]


def _loss_reference(check):
    losses = _losses()
    return {"check_critic_loss": losses.wasserstein_critic_loss,
            "check_generator_loss": losses.wasserstein_generator_loss}[check]


def _returns_a_scalar(name, fn, cases):
    """A further rule: the loss is a scalar, shape (), as the trainer and the notebook's
    ``float(loss)`` need; a mean over axis 0 of (batch, 1) scores has the right value but
    shape (1,), and crashes later cells."""
    def rule():
        __tracebackhide__ = True
        for _, args in cases:
            with _h.student_code(name):
                out = fn(*_h.as_tensors(args))
            if np.ndim(out) != 0:
                raise _h.GradingError(
                    f"{name} has the right value but returns a tensor of shape "
                    f"{tuple(np.shape(out))}, not a scalar (shape ()): the training loop reads "
                    "it with float(...) and adds it to other scalars. Average over all axes, "
                    "tf.reduce_mean(scores), not over axis 0 alone.")
    return rule


@_h.check()
def check_critic_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """Critic loss = E f(G(z)) - E f(x), means over each batch, on raw scores."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    check = "check_critic_loss"
    cases = _loss_cases(check, seed, hidden)
    _h.value_check(check, "critic_loss", fn, _loss_reference(check), cases,
                   _critic_loss_mistakes(), hidden, seed, shape_hint=_h.UNEQUAL_BATCHES,
                   then=_returns_a_scalar("critic_loss", fn, cases))


@_h.check()
def check_generator_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """Generator loss = -E f(G(z)) on raw scores."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 100, hidden, nonce)
    check = "check_generator_loss"
    cases = _loss_cases(check, seed, hidden)
    _h.value_check(check, "generator_loss", fn, _loss_reference(check), cases,
                   _generator_loss_mistakes(), hidden, seed,
                   then=_returns_a_scalar("generator_loss", fn, cases))


# --- exercise 2: weight clipping ------------------------------------------------------------------

def _clip_cases(seed, hidden):
    """(description, clip value c, weights) with most weights beyond ±c."""
    rng = np.random.default_rng(seed)
    specs = [(0.05, (3, 4)), (0.5, (7,)), (0.01, (2, 2, 3, 4))] if not hidden else \
        [(0.02, (5, 2)), (1.5, (1,)), (0.3, (3, 3, 2, 2)), (0.01, (6,))]
    cases = []
    for c, shape in specs:
        w = (rng.standard_normal(shape) * 2.0 * c).astype(np.float32)
        cases.append((f"a weight of shape {shape} with c = {c}", c, w))
    return cases


def _clip_expected(seed, hidden):
    return [np.clip(w, -c, c) for _, c, w in _clip_cases(seed, hidden)]


def _clip_hint(got, c, w):
    candidates = [
        (np.clip(w, 0.0, c), "the lower bound is -c: clip every weight to [-c, c]."),
        (np.clip(w, -0.01, 0.01), "the bound is fixed at 0.01: use the constraint's own "
                                  "clip_value (self.clip_value)."),
        (w, "the weights come back unchanged. A constraint *returns* the new value of the "
            "weights (Keras assigns it); it does not change its argument in place."),
        (w * min(1.0, c / max(float(np.linalg.norm(w)), 1e-12)),
         "this clips the norm of the whole tensor (tf.clip_by_norm). WGAN clips every weight "
         "on its own: tf.clip_by_value(w, -c, c)."),
        (np.clip(w, -c / 2, c / 2), "the bounds are ±c/2; clip to [-c, c]."),
        (np.minimum(w, c), "only the upper bound is applied; weights below -c must become "
                           "-c too: clip to [-c, c]."),
        (np.maximum(w, -c), "only the lower bound is applied; weights above c must become c "
                            "too: clip to [-c, c]."),
    ]
    for value, text in candidates:
        if value.shape == got.shape and np.allclose(got, value, rtol=1e-6, atol=1e-7):
            return " Hint: " + text
    return ""


@_h.check()
def check_weight_clip(cls, hidden: bool = False, seed: int = 0, nonce=None):
    """WeightClip(c)(w) = clip(w, -c, c), elementwise, for any c and any shape."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 200, hidden, nonce)
    values = []
    for case, c, w in _clip_cases(seed, hidden):
        with _h.student_code("WeightClip"):
            got = np.asarray(cls(c)(tf.constant(w)), np.float32)
        want = np.clip(w, -c, c)
        if got.shape != want.shape:
            raise _h.GradingError(
                "WeightClip changes the shape of the weights"
                + ("" if hidden else f" ({case}: got {got.shape})")
                + "; a constraint returns a tensor of the weight's own shape.")
        # clipping is exact in float32: the right answer is bit for bit np.clip
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            head = (f"WeightClip disagrees with clipping to [-c, c] on a hidden case (c = {c})."
                    if hidden else f"WeightClip on {case}: expected {np.round(want.ravel()[:4], 4)}"
                    f"..., got {np.round(got.ravel()[:4], 4)}...")
            raise _h.GradingError(head + _clip_hint(got, c, w))
        values += [float(x) for x in got.reshape(-1)]
    _clips_when_compiled(cls, seed, hidden)
    _h.report_values("check_weight_clip", hidden, seed, values)
    _h.passed("WeightClip clips every weight to [-c, c]" + (" on the hidden cases." if hidden
                                                           else "."))


_COMPILED_HINT = (
    "use TensorFlow operations in WeightClip.__call__ (tf.clip_by_value(w, -c, c) or "
    "keras.ops.clip): the optimizer applies constraints inside the compiled training step, "
    "a tf.function graph, where NumPy functions and .numpy() cannot run.")


def _error_line(error) -> str:
    """The line of an error worth showing: TensorFlow's tracer wraps an error of the code
    it traces in "in user code:" and a traceback, and ends with the error itself."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines and lines[0].startswith("in user code"):
        return lines[-1][:200]
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


def _compiled_step(variables, grads, what, subject):
    """One SGD step (learning rate 1) on ``variables``, traced into a tf.function and run as
    a graph, as the notebook's compiled training step runs its optimizer: Keras applies
    each variable's constraint after the update, inside that graph, on the symbolic
    variable. Returns the values of the variables afterwards. ``subject`` names the
    constraint in the message ("WeightClip").

    The check runs tf.functions eagerly (:func:`_h.check`); a concrete function traced
    explicitly still runs as a graph. A constraint that fails there is then called eagerly:
    an error that happens there too is not one of compiling, and is named as such."""
    __tracebackhide__ = True
    import keras

    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build(variables)  # its own variables exist before the trace
    # autograph off: the trainer's converted step calls Keras's optimizer, which AutoGraph
    # leaves as it is, so a constraint runs unconverted (plain Python on symbolic values)
    step = tf.function(lambda *g: optimizer.apply_gradients(zip(g, variables, strict=True)),
                       autograph=False)
    try:
        with _h.no_reference_calls(what):
            traced = step.get_concrete_function(
                *[tf.TensorSpec(np.shape(g), tf.float32) for g in grads])
            traced(*[tf.constant(g, tf.float32) for g in grads])
    except _h.GradingError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of the compiled step is the message
        constrained = [v for v in variables if v.constraint is not None]
        with _h.student_code(what):
            for v in constrained:
                v.constraint(v)
        if not constrained:
            raise _h.GradingError(
                f"one optimizer step on the weights of {what}'s model fails inside a compiled "
                f"training step (tf.function) ({_error_line(error)}).") from None
        raise _h.GradingError(
            f"{subject} works when called eagerly, but fails when the optimizer applies it "
            "inside a compiled training step (tf.function), as the notebook's training does "
            f"({_error_line(error)}). Hint: {_COMPILED_HINT}") from None
    return [np.asarray(v.numpy(), np.float32) for v in variables]


def _clips_when_compiled(cls, seed, hidden):
    """The constraints of the eager cases on variables, applied by an optimizer inside a
    tf.function (zero gradients: the update leaves the weights, the constraint clips them)."""
    __tracebackhide__ = True
    import keras

    cases = _clip_cases(seed, hidden)
    variables = [keras.Variable(w, name=f"weight_{i}") for i, (_, _, w) in enumerate(cases)]
    with _h.student_code("WeightClip"):
        for v, (_, c, _) in zip(variables, cases, strict=True):
            v.constraint = cls(c)
    after = _compiled_step(variables, [np.zeros_like(w) for _, _, w in cases], "WeightClip",
                           "WeightClip")
    for (case, c, w), got in zip(cases, after, strict=True):
        if got.shape != w.shape or not np.allclose(got, np.clip(w, -c, c), rtol=1e-6,
                                                   atol=1e-7):
            raise _h.GradingError(
                "WeightClip clips correctly when called eagerly, but not when the optimizer "
                "applies it inside a compiled training step (tf.function)"
                + ("" if hidden else f", on {case}") + f". Hint: {_COMPILED_HINT}")


def _builder_configs(seed, hidden):
    """(input_dim, hidden sizes, clip value): one unclipped critic, one clipped. Fixed
    visibly; for the hidden check drawn from the hidden seed (the grader's nonce), so that
    no critic built in advance fits them: input sizes in [1, 6], 1 to 4 hidden layers of 2
    to 16 units, a clip value in [0.005, 0.2) (any sizes and any c > 0 are valid)."""
    if not hidden:
        return [(2, (16, 8), None), (3, (8, 8, 4), 0.05)]
    rng = np.random.default_rng((seed, 3))

    def sizes(most):
        return tuple(int(u) for u in rng.integers(2, 17, int(rng.integers(1, most + 1))))

    return [(int(rng.integers(1, 7)), sizes(3), None),
            (int(rng.integers(1, 7)), sizes(4), round(float(rng.uniform(0.005, 0.2)), 3))]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _weight_owners(dense_layers, variables):
    """For each variable, where it lives in words: "the 2nd Dense layer 'dense_5' (of 3)",
    told from the layers with kernels that ran in the forward pass (``dense_layers``, in
    order), never from the variable's path (which names the model when a Sequential or a
    subclassed model built the layer); and whether it is the kernel or the bias."""
    owner = {}
    for i, layer in enumerate(dense_layers):
        for v in layer.trainable_variables:
            owner.setdefault(id(v), (i, layer))
            owner.setdefault(id(_h.backing(v)), (i, layer))
    described = []
    for v in variables:
        kind = "kernel" if len(v.shape) >= 2 else "bias"
        found = owner.get(id(v)) or owner.get(id(_h.backing(v)))
        if found is None:
            described.append((f"the weight '{v.path}'", kind))
            continue
        i, layer = found
        name = getattr(layer, "name", "")
        described.append((f"the {_ordinal(i + 1)} Dense layer '{name}' (of "
                          f"{len(dense_layers)})", kind))
    return described


@_h.check()
def check_critic_builder(build_critic, hidden: bool = False, seed: int = 0, nonce=None):
    """build_critic(input_dim, hidden, clip_value): an MLP critic with one unbounded score;
    with clip_value = c every weight stays in [-c, c] after any optimizer step."""
    __tracebackhide__ = True
    with _h.hidden_wording(hidden, "build_critic"):
        _check_builder(build_critic, hidden, _h.hidden_seed(seed + 300, hidden, nonce))
    _h.passed("build_critic builds the critic, and clips every weight when asked"
              + (" (hidden sizes)." if hidden else "."))


def _check_builder(build_critic, hidden, seed):
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    for input_dim, sizes, clip in _builder_configs(seed, hidden):
        _check_one_critic(build_critic, input_dim, sizes, clip, rng)


def _check_one_critic(build_critic, input_dim, sizes, clip, rng):
    """Build one critic, run it, take one huge SGD step inside a tf.function (as the
    notebook's compiled training step does); then judge what came out.

    Everything that runs student code (the builder, the model, the constraints the
    optimizer applies) runs in one guarded block: arming the tripwire scans every live
    function, which is worth doing once per critic, not once per call.
    """
    __tracebackhide__ = True
    call = f"build_critic({input_dim}, {sizes}, clip_value={clip})"
    batches = {n: rng.standard_normal((n, input_dim)).astype(np.float32) for n in (1, 9)}
    far = rng.standard_normal((256, input_dim)).astype(np.float32) * 1000
    with _h.student_code("build_critic"):
        with _h.made_here("build_critic") as judge:
            critic = build_critic(input_dim, sizes, clip)
            # told before the judge's forward pass, which would build a Sequential
            if not list(getattr(critic, "trainable_variables", None) or []):
                raise _h.GradingError(_h.weightless_hint(critic, "build_critic", "input_dim"))
            critic = judge(critic, tf.zeros((2, input_dim)))
        variables = list(critic.trainable_variables)
        outputs = {n: np.asarray(critic(tf.constant(x), training=False))
                   for n, x in batches.items()}
        # what the layers computed, whatever they are called: the layers with kernels of
        # their own, in the order they ran, and the activations from each to the next
        probe = tf.constant(batches[9] * 3)
        records = _h.layer_trace(critic, probe)
        dense = [(layer, x, y) for layer, x, y in _h.leaf_records(records)
                 if _h.own_kernels(layer)]
        widths = [(_h.shape_of(x) or (None,))[-1:] + (_h.shape_of(y) or (None,))[-1:]
                  for _, x, y in dense]
        owners = _weight_owners([layer for layer, _, _ in dense], variables)
        groups = _h.activations_between(records)
        relu = _h.uses_relu(critic, probe) or any("relu" in kinds for kinds in groups)
        far_out = np.asarray(critic(tf.constant(far), training=False))
        # one SGD step with huge gradients: every weight must land clipped (or, without
        # clip_value, move freely). Keras applies a variable's constraint after the update,
        # and the notebook's training step runs compiled: so does this step.
        before = [v.numpy().astype(np.float32) for v in variables]
        grads = [(rng.choice([-1.0, 1.0], size=b.shape) * 100.0).astype(np.float32)
                 for b in before]
        after = _compiled_step(variables, grads, "build_critic",
                               "the critic's weight constraint (WeightClip)")
    if relu:
        raise _h.GradingError("the critic uses ReLU. Hint: the exercise asks for "
                              "LeakyReLU(0.2) after each hidden layer, which keeps a gradient "
                              "for negative inputs.")
    want = list(zip((input_dim, *sizes), (*sizes, 1), strict=True))
    if widths != want:
        raise _h.GradingError(
            f"{call} should stack Dense layers {' -> '.join(map(str, (input_dim, *sizes, 1)))}"
            f" (kernels of shapes {want}); its layers with weights map {widths} features "
            "(inputs, outputs), in the order they run.")
    if not all("leaky" in kinds for kinds in groups[:-1]):
        raise _h.GradingError("a hidden layer of the critic is not followed by a LeakyReLU. "
                              "Hint: the exercise asks for LeakyReLU(0.2) after each hidden "
                              "Dense layer; without an activation the critic is a linear "
                              "function of its input.")
    for n, out in outputs.items():
        if out.shape != (n, 1):
            raise _h.GradingError(f"{call} maps a batch of shape ({n}, {input_dim}) to "
                                  f"{out.shape}; expected ({n}, 1): one score per example.")
    if clip is None and far_out.min() >= 0.0 and far_out.max() <= 1.0:
        raise _h.GradingError(
            "the critic's scores stay in [0, 1] even for extreme inputs: it ends in a "
            "sigmoid. A WGAN critic outputs an unbounded score: end with Dense(1) and no "
            "activation.")
    for (where, kind), b, g, got in zip(owners, before, grads, after, strict=True):
        moved = b - g
        target = moved if clip is None else np.clip(moved, -clip, clip)
        if np.allclose(got, target, rtol=1e-6, atol=1e-6):
            continue
        if clip is None:
            raise _h.GradingError(
                f"with clip_value=None (the WGAN-GP critic) no weight may be clipped, but the "
                f"{kind} of {where} was changed by more than the optimizer step. Add "
                "constraints only when clip_value is given.")
        advice = ("Give every Dense layer kernel_constraint=WeightClip(clip_value) and "
                  "bias_constraint=WeightClip(clip_value).")
        largest = f"largest |w| = {np.abs(got).max():.3g}"
        if np.allclose(got, moved, rtol=1e-6, atol=1e-6):
            # the kernel and the bias of this layer that no constraint clipped
            kinds = list(dict.fromkeys(
                k for (w, k), b2, g2, got2 in zip(owners, before, grads, after, strict=True)
                if w == where and np.allclose(got2, b2 - g2, rtol=1e-6, atol=1e-6)))
            absent = " nor ".join(f"{k}_constraint" for k in kinds)
            raise _h.GradingError(
                f"{where} has {'neither' if len(kinds) > 1 else 'no'} {absent}: after one "
                f"optimizer step with large gradients its {' and '.join(kinds)} left "
                f"[-{clip}, {clip}] ({largest}). {advice}")
        if np.abs(got).max() > clip * (1 + 1e-6):
            raise _h.GradingError(
                f"after one optimizer step with large gradients, the {kind} of {where} left "
                f"[-{clip}, {clip}] ({largest}): its {kind}_constraint does not clip to "
                f"clip_value. {advice}")
        raise _h.GradingError(
            f"after one optimizer step with large gradients, the {kind} of {where} is not "
            f"the updated weight clipped to [-{clip}, {clip}]. The constraint must clip "
            "each weight (tf.clip_by_value), nothing else.")


# --- exercise 3: the gradient penalty -------------------------------------------------------------

class _Quadratic:
    """f(x) = ½ Σ_k a_k x_k² per example: ∇ₓf = a ⊙ x, so every example has its own gradient
    norm. A plain callable that records the batches it is called on."""

    def __init__(self, a):
        self._a = tf.constant(a, tf.float32)
        self._calls = []

    def __call__(self, x, *args, **kwargs):
        x = tf.convert_to_tensor(x)
        self._calls.append(tf.identity(x))
        return 0.5 * tf.reduce_sum(self._a * tf.square(x), axis=-1, keepdims=True)

    def gradient(self, x):
        return self._a.numpy() * x


def _linear_critic(shape, w, bias=0.3):
    """A Keras critic f(x) = w·flatten(x) + bias with the given weights."""
    import keras

    x = keras.Input(shape)
    h = keras.layers.Flatten()(x) if len(shape) > 1 else x
    dense = keras.layers.Dense(1, name="linear")
    model = keras.Model(x, dense(h), name="linear_critic")
    dense.kernel.assign(np.asarray(w, np.float32).reshape(-1, 1))
    dense.bias.assign([bias])
    return model


def _pairs(rng, batch, shape):
    """A real and a fake batch that differ by at least 0.5 in every entry, so that the
    ε of each interpolate can be read back from it."""
    real = rng.standard_normal((batch, *shape)).astype(np.float32)
    gap = rng.uniform(0.5, 1.5, (batch, *shape)) * rng.choice([-1.0, 1.0], (batch, *shape))
    return real, (real + gap).astype(np.float32)


def _direction(rng, size, norm):
    w = rng.standard_normal(size)
    return (w / np.linalg.norm(w) * norm).astype(np.float32)


def _closed_form(w):
    """The penalty of a linear critic f(x) = w·x: (‖w‖ - 1)², whatever x̂ is."""
    return (float(np.linalg.norm(w.astype(np.float64))) - 1) ** 2


def _gp_cases(seed, hidden):
    """(description, kind, input shape, batch, critic parameter, closed-form value or None)."""
    rng = np.random.default_rng(seed)
    norms = (2.5, 0.4) if not hidden else (rng.uniform(1.5, 3.0), rng.uniform(0.1, 0.8))
    image = (4, 4, 2) if not hidden else (3, 5, 3)
    vector = (3,) if not hidden else (6,)
    batches = (24, 32, 64) if not hidden else (int(rng.integers(24, 40)),
                                              int(rng.integers(24, 40)), 48)
    w_image = _direction(rng, int(np.prod(image)), norms[0])
    w_vector = _direction(rng, int(np.prod(vector)), norms[1])
    a = rng.uniform(0.2, 1.5, 5).astype(np.float32)
    return [
        (f"a linear critic on images of shape {image} with ‖w‖ = {norms[0]:.2f}", "linear",
         image, batches[0], w_image, _closed_form(w_image)),
        (f"a linear critic on vectors of size {vector[0]} with ‖w‖ = {norms[1]:.2f}", "linear",
         vector, batches[1], w_vector, _closed_form(w_vector)),
        ("a quadratic critic f(x) = ½ Σ a_k x_k², whose gradient norm differs between "
         "examples", "quadratic", (5,), batches[2], a, None),
    ]


def _gp_inputs(seed, hidden, index):
    rng = np.random.default_rng(seed + 17 * (index + 1))
    _, _, shape, batch, _, _ = _gp_cases(seed, hidden)[index]
    return _pairs(rng, batch, shape)


def _interpolates(calls, real, fake, what):
    """The batch x̂ the critic was called on, and the ε of each example."""
    __tracebackhide__ = True
    found = [np.asarray(x, np.float64) for x in calls
             if tuple(x.shape) == real.shape and not np.allclose(x, real)
             and not np.allclose(x, fake)]
    if not found:
        raise _h.GradingError(
            f"{what} never called the critic on interpolates x̂ = ε·real + (1 - ε)·fake (a "
            "batch of the same shape as real, between real and fake). Call the critic on x̂ "
            "and differentiate its scores with respect to x̂.")
    x_hat = found[-1]
    ratio = (x_hat - fake) / (real.astype(np.float64) - fake)  # ε wherever real ≠ fake
    ratio = ratio.reshape(len(real), -1)
    return x_hat, ratio


def _check_epsilon(ratio, case, what, hidden):
    """One ε per example, drawn from U[0, 1]: x̂ on the segment between real and fake."""
    __tracebackhide__ = True
    where = f" ({case})" if not hidden else ""
    # float32 interpolation of entries of size ~1 over gaps of at least 0.5: ~1e-6
    spread = ratio.max(axis=1) - ratio.min(axis=1)
    if spread.max() > 1e-3:
        raise _h.GradingError(
            f"{what}: within one example, the entries of x̂ mix real and fake in different "
            f"proportions{where}. Draw ONE ε per example, of shape (batch, 1) for vectors and "
            "(batch, 1, 1, 1) for images, so every x̂ lies on the straight segment between its "
            "real and its fake example.")
    eps = ratio.mean(axis=1)
    if eps.min() < -1e-4 or eps.max() > 1 + 1e-4:
        raise _h.GradingError(
            f"{what}: some x̂ lie outside the segment between their real and fake examples "
            f"(ε = {eps.min():.2f} for one of them){where}. Draw ε from the uniform "
            "distribution on [0, 1] (tf.random.uniform), not from a normal distribution.")
    # the ε of a batch drawn from U[0, 1] (12 or more of them) spread by less than 0.02 with
    # P < 1e-10; one ε shared by the batch spreads by float32 round-off, ~1e-7
    if eps.std() < 0.02:
        raise _h.GradingError(
            f"{what}: every example of the batch got (nearly) the same ε{where}. Draw a "
            "different ε ~ U[0, 1] for each example: shape (batch, 1, ...), not one number.")


def _gp_candidates(grads, image):
    """(value, hint) for the usual mistakes, given the critic's input gradients."""
    g = np.asarray(grads, np.float64)
    flat = g.reshape(len(g), -1)
    norm = np.sqrt((flat ** 2).sum(1) + _NORM_EPS)
    out = [
        (np.mean(np.abs(norm - 1)), "the deviation (‖∇‖ - 1) is not squared: the penalty is "
                                    "the mean of (‖∇‖ - 1)²."),
        (np.mean((norm ** 2 - 1) ** 2), "the squared norm ‖∇‖² is compared with 1; take the "
                                        "norm itself: (‖∇‖ - 1)²."),
        (np.mean(np.maximum(norm - 1, 0) ** 2), "this penalizes only norms above 1 "
                                                "(one-sided); WGAN-GP penalizes (‖∇‖ - 1)² on "
                                                "both sides."),
        ((norm.mean() - 1) ** 2, "you averaged the norms before subtracting 1 and squaring; "
                                 "the penalty is the mean over examples of (‖∇‖ - 1)²."),
        (np.mean(norm ** 2), "this is the mean squared gradient norm (the R1 penalty); "
                             "WGAN-GP penalizes the distance of the norm from 1: (‖∇‖ - 1)²."),
        (np.sum((norm - 1) ** 2), "you summed over the batch; average instead."),
        ((np.sqrt((flat ** 2).sum() + _NORM_EPS) - 1) ** 2,
         "the norm is taken over the whole batch; take one norm per example (over all axes "
         "but the batch axis), then the mean of (‖∇‖ - 1)² over the examples."),
        (10 * np.mean((norm - 1) ** 2), "the penalty is multiplied by λ = 10 here; return the "
                                        "penalty itself (the training step weights it)."),
    ]
    if g.ndim > 2:  # a norm over one axis only, for images
        for axis, name in ((1, "1"), (g.ndim - 1, "-1")):
            n = np.sqrt((g ** 2).sum(axis) + _NORM_EPS)
            out.append((np.mean((n - 1) ** 2), f"the norm is taken over axis {name} only; "
                        "take it over all axes but the batch axis (for images: axes 1, 2 "
                        "and 3), so each example has one gradient norm."))
    return out


_WATCH_HINT = (" Hint: the inner tape gave no gradient (None) for the critic's input. x̂ is a "
               "tensor, not a variable, so a GradientTape records nothing about it unless "
               "told: call inner_tape.watch(x_hat) inside the `with` block, before calling "
               "the critic on x̂. If you watch it already, the score you differentiate was "
               "computed outside the `with` block: compute the critic's scores (and anything "
               "you take from them) inside it.")


@_contextmanager
def _none_gradients():
    """Counts the gradients that GradientTape.gradient returns as None while the block runs
    (a source the tape did not record: an unwatched x̂). The method is wrapped at class
    level, as :func:`_h.layer_trace` wraps Layer.__call__, and restored afterwards; only a
    hint depends on the count, never a verdict."""
    from tensorflow.python.eager import backprop

    tape_class = backprop.GradientTape
    original = tape_class.gradient
    nones = []

    def gradient(tape, target, sources, *args, **kwargs):
        out = original(tape, target, sources, *args, **kwargs)
        nones.extend(g for g in tf.nest.flatten(out) if g is None)
        return out

    tape_class.gradient = gradient
    try:
        yield nones
    finally:
        tape_class.gradient = original


def _call_penalty(fn, critic, real, fake, what):
    """``fn(critic, real, fake)`` as student code: (its value, whether a tape's gradient came
    back None meanwhile). When it raises after a tape gave None (an unwatched x̂ makes
    ``g.shape``, ``g * g`` or ``tf.square(g)`` fail with AttributeError, TypeError or
    ValueError), the message says to watch x̂."""
    __tracebackhide__ = True
    with _none_gradients() as nones:
        try:
            with _h.student_code(what):
                value = fn(critic, tf.constant(real), tf.constant(fake))
        except _h.GradingError as error:
            if nones and str(error).startswith(f"{what} raised "):
                raise _h.GradingError(f"{error}{_WATCH_HINT}") from None
            raise
    return value, bool(nones)


def _gp_run(fn, critic, real, fake, what):
    """fn(critic, real, fake) as a float, and whether an inner gradient came back None."""
    __tracebackhide__ = True
    try:
        return _scalar_gp(fn, critic, real, fake, what)
    except _h.GradingError as e:
        if "Incompatible shapes" in str(e) and "Hint" not in str(e):
            raise _h.GradingError(
                f"{e} Hint: ε must broadcast against the batch: shape (batch, 1) for vectors "
                "and (batch, 1, 1, 1) for images, e.g. tf.concat([tf.shape(real)[:1], "
                "tf.ones([tf.rank(real) - 1], tf.int32)], 0).") from None
        raise


def _scalar_gp(fn, critic, real, fake, what):
    __tracebackhide__ = True
    value, none_seen = _call_penalty(fn, critic, real, fake, what)
    with _h.student_code(what):
        out = np.asarray(value, np.float64)
    if out.size != 1:
        raise _h.GradingError(f"{what} should return one number (the mean over the batch), "
                              f"but returned an array of shape {out.shape}.")
    return float(out.reshape(())), none_seen


@_h.check()
def check_gradient_penalty(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """GP = mean over the batch of (‖∇_x̂ f(x̂)‖₂ - 1)², x̂ = ε x + (1 - ε) x̃, ε ~ U[0, 1]
    per example; checked on closed forms and on the recorded x̂."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 400, hidden, nonce)
    what = "gradient_penalty"
    values = []
    for index, (case, kind, shape, _, param, closed) in enumerate(_gp_cases(seed, hidden)):
        real, fake = _gp_inputs(seed, hidden, index)
        if kind == "linear":
            critic = _h.Recorder(_linear_critic(shape, param))
            got, none_seen = _gp_run(fn, critic, real, fake, what)
            calls = [x for x, _ in critic._calls]
        else:
            critic = _Quadratic(param)
            got, none_seen = _gp_run(fn, critic, real, fake, what)
            calls = critic._calls
        unwatched = _WATCH_HINT if none_seen else ""
        if not np.isfinite(got):
            where = case if not hidden else "a hidden case"
            raise _h.GradingError(f"{what} returned {got} for {where}.{unwatched}")
        x_hat, ratio = _interpolates(calls, real, fake, what)
        _check_epsilon(ratio, case, what, hidden)
        grads = (np.broadcast_to(np.asarray(param, np.float64).reshape(shape), x_hat.shape)
                 if kind == "linear" else critic.gradient(x_hat))
        norm = np.sqrt((grads.reshape(len(grads), -1) ** 2).sum(1) + _NORM_EPS)
        want = float(np.mean((norm - 1) ** 2)) if closed is None else closed
        # float32 gradients of ~10 terms: relative error ~1e-6
        if not _h.agree(got, want):
            found = unwatched
            for value, text in _gp_candidates(grads, len(shape) > 1):
                if not found and np.isclose(got, value, rtol=1e-4, atol=1e-5):
                    found = " Hint: " + text
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the definition on a hidden case "
                                      f"({kind} critic).{found}")
            raise _h.GradingError(f"{what} with {case}: expected {want:.6f}, got {got:.6f}."
                                  f"{found}")
        if closed is not None:
            values.append(got)
    _h.report_values("check_gradient_penalty", hidden, seed, values)
    _h.passed(f"{what} draws one ε ~ U[0, 1] per example and penalizes (‖∇‖ - 1)²"
              + (" on the hidden cases." if hidden else "."))


def _gradient_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    dim = 4 if not hidden else int(rng.integers(3, 7))
    norm = 1.8 if not hidden else float(rng.uniform(1.3, 2.5))
    w = _direction(rng, dim, norm)
    return dim, w


def _penalty_gradients(fn, critic, real, fake, what):
    """The value of fn(critic, real, fake), its gradients w.r.t. the critic's weights, and
    whether an inner gradient came back None (see :func:`_call_penalty`)."""
    __tracebackhide__ = True
    variables = critic.trainable_variables
    with tf.GradientTape() as tape:
        value, none_seen = _call_penalty(fn, critic, real, fake, what)
    if not isinstance(value, tf.Tensor | tf.Variable):
        raise _h.GradingError(
            f"{what} returned a {type(value).__name__}, not a TensorFlow tensor, so the "
            "critic's optimizer gets no gradient from the penalty. Keep the computation in "
            "TensorFlow: no .numpy(), float() or NumPy functions."
            + (_WATCH_HINT if none_seen else ""))
    grads = tape.gradient(value, variables)
    return float(np.asarray(value, np.float64).reshape(-1)[0]), grads, none_seen


@_h.check()
def check_gradient_penalty_gradient(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """The penalty's own gradient w.r.t. the critic's weights (the nested tape): the closed
    form 2(‖w‖ - 1) w/‖w‖ for a linear critic, a NumPy-free reference for an MLP critic, and
    finite values for a critic whose input gradient is zero."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed + 500, hidden, nonce)
    what = "gradient_penalty"
    rng = np.random.default_rng(seed)
    dim, w = _gradient_cases(seed, hidden)
    values = []

    # 1. linear critic: d/dw (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖; the bias has no effect
    critic = _linear_critic((dim,), w)
    real, fake = _pairs(rng, 16, (dim,))
    _, (g_kernel, g_bias), none_seen = _penalty_gradients(fn, critic, real, fake, what)
    if g_kernel is None:
        raise _h.GradingError(
            f"the value of {what} has no gradient with respect to the critic's weights, so "
            "the critic never learns to satisfy the penalty." + (_WATCH_HINT if none_seen else
            " Compute the input gradient with an inner GradientTape while the outer one (the "
            "training step's) records: no tf.stop_gradient, no NumPy, and call "
            "inner.gradient inside the outer tape."))
    norm = float(np.linalg.norm(w.astype(np.float64)))
    want = 2 * (norm - 1) * w.astype(np.float64) / norm
    got = np.asarray(g_kernel, np.float64).reshape(-1)
    # second derivatives in float32 of a 4-term norm: ~1e-6 relative
    if not np.allclose(got, want, rtol=1e-4, atol=1e-6):
        if np.allclose(got, 0.0, atol=1e-9):
            hint = (" It is zero: the input gradient was cut off from the critic's weights "
                    "(tf.stop_gradient, or computed outside the outer tape).")
        else:
            hint = " Check the value first (the previous test)."
        raise _h.GradingError(
            f"the gradient of {what} with respect to a linear critic's weights w should be "
            f"2(‖w‖ - 1) w/‖w‖" + ("" if hidden else f" = {np.round(want, 4)}; got "
                                                     f"{np.round(got, 4)}") + "." + hint)
    if g_bias is not None and not np.allclose(np.asarray(g_bias), 0.0, atol=1e-6):
        raise _h.GradingError(f"the gradient of {what} with respect to the critic's bias should "
                              "be 0 (the bias does not change ∇ₓf).")
    values.append(float(got @ (w.astype(np.float64) / norm)))

    # 2. an MLP critic: compare with the penalty recomputed at the x̂ the code used
    mlp = _h.Recorder(_h.mlp([3, 8, 1], seed + 1, "mlp_critic"))
    real, fake = _pairs(rng, 12, (3,))
    _, grads, _ = _penalty_gradients(fn, mlp, real, fake, what)
    x_hat, ratio = _interpolates([x for x, _ in mlp._calls], real, fake, what)
    _check_epsilon(ratio, "an MLP critic", what, hidden)
    reference = _h.copy_mlp([3, 8, 1], seed + 1, "mlp_reference",
                            [v.numpy() for v in mlp.trainable_variables])
    x = tf.constant(x_hat, tf.float32)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            scores = reference(x)
        g = inner.gradient(scores, x)
        penalty = tf.reduce_mean(tf.square(tf.sqrt(tf.reduce_sum(tf.square(g), 1) + _NORM_EPS)
                                           - 1.0))
    expected_grads = outer.gradient(penalty, reference.trainable_variables)
    for got_g, want_g, v in zip(grads, expected_grads, mlp.trainable_variables, strict=True):
        # the output bias does not change ∇ₓf: its gradient is None (no path) or 0
        got_g = np.zeros(v.shape) if got_g is None else np.asarray(got_g)
        want_g = np.zeros(v.shape) if want_g is None else np.asarray(want_g)
        # second-order float32 gradients through tanh: ~1e-5 relative
        if not np.allclose(got_g, want_g, rtol=1e-3, atol=1e-5):
            raise _h.GradingError(
                f"the gradient of {what} with respect to an MLP critic's weights differs from "
                "the penalty's true gradient" + ("" if hidden else f" (variable {v.path})")
                + ". Take the input gradient with an inner tape inside the outer tape, and "
                "build the penalty from it with TensorFlow operations only.")

    # 3. a critic with zero input gradient: finite value and finite gradient
    zero = _linear_critic((dim,), np.zeros(dim, np.float32), bias=0.5)
    real, fake = _pairs(rng, 8, (dim,))
    value, (g_kernel, _), _ = _penalty_gradients(fn, zero, real, fake, what)
    g_kernel = None if g_kernel is None else np.asarray(g_kernel, np.float64)
    if not np.isfinite(value) or g_kernel is None or not np.all(np.isfinite(g_kernel)):
        raise _h.GradingError(
            f"for a critic whose input gradient is 0, {what} gives value {value} and gradient "
            f"{'None' if g_kernel is None else g_kernel.ravel()[:3]}: NaN. The derivative of "
            "sqrt(s) at s = 0 is infinite (tf.norm has the same problem). Add a small "
            "constant inside the square root: tf.sqrt(tf.reduce_sum(tf.square(g), axes) + "
            "1e-12).")
    if abs(value - 1.0) > 1e-2 or not np.allclose(g_kernel, 0.0, atol=1e-3):
        raise _h.GradingError(
            f"for a critic whose input gradient is 0, {what} should be (0 - 1)² = 1 with a "
            "zero gradient; keep the constant inside the square root small (1e-12).")
    values.append(float(np.linalg.norm(g_kernel)))
    _h.report_values("check_gradient_penalty_gradient", hidden, seed, values)
    _h.passed(f"{what} has the right gradient with respect to the critic's weights"
              + (" (hidden case)." if hidden else "."))


# --- exercise 4: the training step with n_critic critic updates -----------------------------------

class _Batches:
    """An iterator over the real batches a check serves; counts what was taken."""

    def __init__(self, batches):
        self._batches = list(batches)
        self._taken = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._taken >= len(self._batches):
            raise _h.GradingError("critic_train_step took more real batches than n_critic "
                                  "(one per critic update).")
        self._taken += 1
        return tf.constant(self._batches[self._taken - 1])


def _fixed_penalty(critic, real, fake, eps):
    """The gradient penalty with a given ε (shape (batch, 1))."""
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        scores = critic(x_hat)
    g = inner.gradient(scores, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=1) + _NORM_EPS)
    return tf.reduce_mean(tf.square(norm - 1.0))


def _critic_gradient(losses, critic, real, fake, eps, weight, swapped=False):
    """(Wasserstein loss, penalty, gradient of loss + weight·penalty) of one critic update."""
    first, second = (fake, real) if swapped else (real, fake)
    with tf.GradientTape() as tape:
        w_loss = losses.wasserstein_critic_loss(critic(first), critic(second))
        gp = _fixed_penalty(critic, tf.constant(real), tf.constant(fake), tf.constant(eps))
        total = w_loss + weight * gp
    return float(w_loss), float(gp), tape.gradient(total, critic.trainable_variables)


def _step_config(hidden):
    # latent_dim, data_dim, batch, n_critic, gp_weight
    return (3, 2, 16, 3, 10.0) if not hidden else (5, 3, 9, 4, 5.0)


@_h.check()
def check_critic_train_step(step, hidden: bool = False, seed: int = 0, nonce=None):
    """n_critic critic updates, each on a fresh real batch and fresh z with loss
    critic_loss + λ·penalty, then one generator update through the updated critic.

    The models, optimizers, real batches and the penalty are the check's own recorders: it
    recomputes the gradient every update should have applied and compares.
    """
    __tracebackhide__ = True
    losses = _losses()
    seed = _h.hidden_seed(seed + 600, hidden, nonce)
    latent_dim, data_dim, batch, n_critic, lam = _step_config(hidden)
    g_sizes, c_sizes = [latent_dim, 8, data_dim], [data_dim, 8, 1]
    g0, c0 = _h.mlp(g_sizes, seed + 1, "generator"), _h.mlp(c_sizes, seed + 2, "critic")
    g_start = [v.numpy() for v in g0.trainable_variables]
    g, c = _h.Recorder(g0), _h.Recorder(c0)
    order = []
    c_opt = _h.RecordingOptimizer(0.05, "c_optimizer", "critic", c0.trainable_variables,
                                  g0.trainable_variables, "g_optimizer", order)
    g_opt = _h.RecordingOptimizer(0.05, "g_optimizer", "generator", g0.trainable_variables,
                                  c0.trainable_variables, "c_optimizer", order)
    rng = np.random.default_rng(seed + 3)
    served = [(rng.standard_normal((batch, data_dim)) + 0.5).astype(np.float32)
              for _ in range(n_critic + 1)]
    batches = _Batches(served)
    penalties = []  # (real, fake, ε) of every call

    def penalty(critic, real, fake):
        real = tf.convert_to_tensor(real, tf.float32)
        fake = tf.convert_to_tensor(fake, tf.float32)
        eps = tf.constant(rng.uniform(0.0, 1.0, (int(real.shape[0]), 1)), tf.float32)
        penalties.append((real.numpy(), fake.numpy(), eps.numpy()))
        return _fixed_penalty(critic, real, fake, eps)

    with _h.lent(losses.wasserstein_critic_loss, losses.wasserstein_generator_loss,
                 penalty) as (c_fn, g_fn, p_fn), _h.student_code("critic_train_step"):
        result = step(batches, g, c, g_opt, c_opt, c_fn, g_fn, p_fn, latent_dim, n_critic, lam)
        returned = ([float(x) for x in result]
                    if isinstance(result, tuple | list) and len(result) == 3 else None)

    # how many updates, in which order, of which variables
    if len(c_opt._updates) != n_critic:
        raise _h.GradingError(f"with n_critic = {n_critic}, c_optimizer should apply "
                              f"{n_critic} updates, one per critic step; it applied "
                              f"{len(c_opt._updates)}.")
    if len(g_opt._updates) != 1:
        raise _h.GradingError(f"g_optimizer should apply exactly one update per "
                              f"critic_train_step; it applied {len(g_opt._updates)}.")
    if order != ["c_optimizer"] * n_critic + ["g_optimizer"]:
        raise _h.GradingError("the updates came in the order " + ", ".join(order) + ". Do all "
                              "n_critic critic updates first, then one generator update.")
    for opt, model, updates in ((c_opt, c0, c_opt._updates), (g_opt, g0, g_opt._updates)):
        ids = {id(v) for v in model.trainable_variables}
        for update in updates:
            if {id(v) for _, v in update} != ids:
                raise _h.GradingError(f"{opt._name} must update all of the {model.name}'s "
                                      f"trainable variables (pass {model.name}."
                                      "trainable_variables).")
    if batches._taken != n_critic:
        raise _h.GradingError(
            f"critic_train_step took {batches._taken} real batch(es) from real_batches for "
            f"{n_critic} critic updates. Take a fresh batch, next(real_batches), at the start "
            "of every critic update (and none for the generator update).")
    if len(penalties) != n_critic:
        raise _h.GradingError(
            f"penalty_fn was called {len(penalties)} time(s) for {n_critic} critic updates. "
            "Call penalty_fn(critic, real, fake) once in each critic update, inside its "
            "GradientTape.")

    # each critic update: its real batch, fresh fakes from G, the right gradient
    g_outputs = [(x.numpy(), out.numpy()) for x, out in g._calls]
    fakes = []
    for i, (real, fake, _) in enumerate(penalties):
        if real.shape != served[i].shape or not np.allclose(real, served[i]):
            raise _h.GradingError(
                f"critic update {i + 1} should use the {i + 1}-th real batch taken from "
                "real_batches (a fresh batch per update), and pass it to penalty_fn.")
        if not any(out.shape == fake.shape and np.allclose(out, fake) for _, out in g_outputs):
            raise _h.GradingError(
                f"the fake batch given to penalty_fn in critic update {i + 1} is not an output "
                "of the generator: pass fake = generator(z) of that update.")
        if fake.shape[0] != batch:
            raise _h.GradingError(
                f"critic update {i + 1} generated {fake.shape[0]} fakes for a real batch of "
                f"{batch}: draw z with tf.shape(real)[0] rows.")
        if any(np.allclose(fake, other) for other in fakes):
            raise _h.GradingError(
                "two critic updates used the same fake batch. Draw a fresh z ~ N(0, I) (and "
                "generate fresh fakes) in every critic update.")
        fakes.append(fake)

    c_before = c_opt._before
    last = {}
    for i, (real, fake, eps) in enumerate(penalties):
        c_ref = _h.copy_mlp(c_sizes, seed + 2, f"c_ref{i}", c_before[i])
        record = (losses, c_ref, real, fake, eps)
        w_loss, gp, want = _critic_gradient(*record, weight=lam)
        last = {"critic_loss": w_loss, "penalty": gp}
        if _h.first_mismatch(want, c0.trainable_variables, c_opt._updates[i]) is None:
            continue
        hint = ""
        for text, kwargs in (
                ("the penalty is missing from the critic's loss: compute penalty_fn(critic, "
                 "real, fake) inside the tape and add gp_weight * penalty.", {"weight": 0.0}),
                ("the penalty is not weighted: add gp_weight * penalty (λ), not the penalty "
                 "alone.", {"weight": 1.0}),
                ("the penalty is subtracted; add it: the critic minimizes critic_loss + λ·GP.",
                 {"weight": -lam}),
                ("critic_loss_fn's arguments are swapped: it takes the critic's scores on the "
                 "real batch first, then on the fakes.", {"weight": lam, "swapped": True})):
            if _h.first_mismatch(_critic_gradient(*record, **kwargs)[2],
                                 c0.trainable_variables, c_opt._updates[i]) is None:
                hint = " Hint: " + text
                break
        raise _h.GradingError(
            f"critic update {i + 1} does not follow the gradient of critic_loss_fn("
            "critic(real), critic(fake)) + gp_weight * penalty_fn(critic, real, fake) at the "
            "critic's current weights." + (hint or " Compute the loss inside a GradientTape "
                                           "and take its gradient w.r.t. "
                                           "critic.trainable_variables."))

    # the generator update: fresh z, through the critic after its n_critic updates
    fresh = [(z, out) for z, out in g_outputs
             if not any(out.shape == f.shape and np.allclose(out, f) for f in fakes)]
    if not fresh:
        raise _h.GradingError("the generator update reuses a critic update's fakes; draw a "
                              "fresh z for the generator update.")
    z = fresh[-1][0]
    if z.shape[0] != batch:
        raise _h.GradingError(
            f"the generator update drew {z.shape[0]} noise vectors for real batches of "
            f"{batch}: use the last real batch's size, tf.shape(real)[0].")
    g_ref = _h.copy_mlp(g_sizes, seed + 1, "g_ref", g_start)

    def g_gradient(critic):
        with tf.GradientTape() as tape:
            loss = losses.wasserstein_generator_loss(critic(g_ref(z)))
        return float(loss), tape.gradient(loss, g_ref.trainable_variables)

    g_loss, want = g_gradient(c0)
    if _h.first_mismatch(want, g0.trainable_variables, g_opt._updates[0]) is not None:
        stale = _h.first_mismatch(
            g_gradient(_h.copy_mlp(c_sizes, seed + 2, "c_start", c_before[0]))[1],
            g0.trainable_variables, g_opt._updates[0]) is None
        raise _h.GradingError(
            "the generator update does not follow the gradient of "
            "generator_loss_fn(critic(generator(z))) through the critic after its updates."
            + (" Hint: it used the critic's weights from before the critic updates."
               if stale else " Generate inside the GradientTape and differentiate w.r.t. "
               "generator.trainable_variables."))

    if returned is None:
        raise _h.GradingError("critic_train_step should return (critic_loss, penalty, g_loss) "
                              "of its last critic update and its generator update.")
    want_values = [last["critic_loss"], last["penalty"], g_loss]
    if not np.allclose(returned, want_values, rtol=1e-4, atol=1e-5):
        if np.isclose(returned[0], last["critic_loss"] + lam * last["penalty"], rtol=1e-4,
                      atol=1e-5):
            raise _h.GradingError("critic_train_step returns the critic's total loss; return "
                                  "critic_loss without the penalty (its negative is the "
                                  "Wasserstein estimate), and the penalty separately.")
        raise _h.GradingError("critic_train_step returns values that differ from the ones it "
                              "trained on; return (critic_loss, penalty, g_loss) of the last "
                              "critic update and of the generator update.")
    _h.passed(f"critic_train_step does {n_critic} critic updates with the penalty, then one "
              "generator update" + (" (hidden sizes)." if hidden else "."))


# --- what the grader verifies in its own process --------------------------------------------------

VERIFIED = ("check_critic_loss", "check_generator_loss", "check_weight_clip",
            "check_gradient_penalty", "check_gradient_penalty_gradient")


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    if check == "check_weight_clip":
        return [float(x) for w in _clip_expected(seed, hidden) for x in w.reshape(-1)]
    if check == "check_gradient_penalty":
        return [closed for *_, closed in _gp_cases(seed, hidden) if closed is not None]
    if check == "check_gradient_penalty_gradient":
        _, w = _gradient_cases(seed, hidden)
        return [2 * (float(np.linalg.norm(w.astype(np.float64))) - 1), 0.0]
    reference_fn = _loss_reference(check)
    return [float(reference_fn(*_h.as_tensors(args)))
            for _, args in _loss_cases(check, seed, hidden)]
