"""The checks that the course's test cells call. Load them with ``gantools.grading.load()``.

This file is compiled afresh from disk every time it is loaded, and it computes
expected values with its own fresh copy of the reference losses, so nothing a
student's notebook rebinds or patches in ``gantools`` changes what it expects. While a
student's function runs, every gantools reference function is booby-trapped (its code
object swapped for one that records the call), so a solution that merely calls the
reference fails. Messages of hidden checks never show expected values.
"""

import contextlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import tensorflow as tf

_ROOT = Path(__file__).resolve().parent.parent  # the gantools package folder


def _fresh(relative: str, name: str):
    """Compile gantools/<relative> into a new module object that sys.modules never sees."""
    spec = importlib.util.spec_from_file_location(f"_grading_fresh.{name}", _ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_REF = _fresh("losses/adversarial.py", "adversarial")


class GradingError(AssertionError):
    """A check failed; the message says what was expected and what came back."""


# --- the tripwire: a solution must not call the reference -------------------------------

_GUARDED_MODULES = ("gantools.losses.adversarial", "gantools.losses.penalties",
                    "gantools.losses.features", "gantools.models.dcgan", "gantools.models.mlp",
                    "gantools.training.engine")


def _guarded_functions():
    for modname in _GUARDED_MODULES:
        module = sys.modules.get(modname)
        if module is None:
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, types.FunctionType) and obj.__module__ == modname:
                yield obj
            elif isinstance(obj, type) and obj.__module__ == modname:
                yield from (a for a in vars(obj).values() if isinstance(a, types.FunctionType))


def _trap(*args, **kwargs):
    # Runs with the globals of the booby-trapped function's module, where the grader has
    # put _gantools_tripwire; co_name is the original function's name.
    return _gantools_tripwire(__import__("sys")._getframe(0).f_code.co_name)  # noqa: F821


@contextlib.contextmanager
def no_reference_calls(what: str):
    """Raise GradingError if the code run inside calls a gantools reference function.

    Each guarded function's code object is swapped for :func:`_trap` (same function
    object, so aliases such as ``from gantools.losses import discriminator_loss`` trip
    too). Functions with closures cannot be swapped and are left alone.
    """
    calls = []

    def tripwire(name):
        calls.append(name)
        raise GradingError(f"{what} calls the gantools reference {name}(); implement it "
                           "yourself with TensorFlow/Keras operations.")

    swapped, modules = [], []
    for modname in _GUARDED_MODULES:
        module = sys.modules.get(modname)
        if module is not None:
            vars(module)["_gantools_tripwire"] = tripwire
            modules.append(module)
    for fn in _guarded_functions():
        original = fn.__code__
        if original.co_freevars:
            continue
        fn.__code__ = _trap.__code__.replace(co_name=original.co_name)
        swapped.append((fn, original))
    try:
        yield calls
    finally:
        for fn, original in swapped:
            fn.__code__ = original
        for module in modules:
            vars(module).pop("_gantools_tripwire", None)
    if calls:
        raise GradingError(f"{what} calls the gantools reference {calls[0]}(); implement it "
                           "yourself with TensorFlow/Keras operations.")


# --- comparing a student's function with the reference ------------------------------------

def _logits(seed, shape, scale=3.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def _value(fn, args, what):
    try:
        with no_reference_calls(what):
            out = fn(*[tf.constant(a) for a in args])
    except NotImplementedError:
        raise GradingError(f"{what} is not implemented yet (it raises NotImplementedError)."
                           ) from None
    except GradingError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the student's code is the message
        raise GradingError(f"{what} raised {type(e).__name__}: {e}") from None
    out = np.asarray(out, dtype=np.float64)
    if out.size != 1:
        raise GradingError(f"{what} should return one number (a scalar loss averaged over the "
                           f"batch), but returned an array of shape {out.shape}.")
    return float(out.reshape(()))


def _hints(got, args, candidates):
    """Name the usual mistake whose result matches what came back."""
    for text, value in candidates:
        try:
            v = float(value(*args))
        except Exception:  # noqa: BLE001
            continue
        if np.isfinite(v) and np.isclose(got, v, rtol=1e-4, atol=1e-5):
            return f" Hint: {text}"
    return ""


def _compare(name, fn, reference, inputs, candidates, hidden):
    for case, args in inputs:
        got = _value(fn, args, f"{name}")
        want = float(reference(*[tf.constant(a) for a in args]))
        if not np.isfinite(got):
            raise GradingError(f"{name} returned {got} for {case}; use the numerically stable "
                               "logits form (tf.nn.sigmoid_cross_entropy_with_logits or "
                               "softplus) rather than log(sigmoid(...)).")
        if not np.isclose(got, want, rtol=1e-4, atol=1e-5):
            hint = _hints(got, args, candidates)
            if hidden:
                raise GradingError(f"{name} disagrees with the reference on a hidden case "
                                   f"({case}).{hint}")
            raise GradingError(f"{name} on {case}: expected {want:.6f}, got {got:.6f}.{hint}")


def _bce_cases(seed, hidden):
    shapes = [(8,), (32, 1), (5, 1)] if not hidden else [(1,), (257,), (64, 1)]
    cases = []
    for i, shape in enumerate(shapes):
        real, fake = _logits(seed + i, shape, shift=1.0), _logits(seed + 100 + i, shape, shift=-1.0)
        cases.append((f"random logits of shape {shape}", (real, fake)))
    if hidden:
        big = np.array([40.0, -40.0, 90.0], np.float32)
        cases.append(("very large logits (numerical stability)", (big, -big)))
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


def check_discriminator_loss(fn, hidden: bool = False, seed: int = 0):
    """D loss = E BCE(1, l_real) + E BCE(0, l_fake), on logits."""
    _compare("discriminator_loss", fn, _REF.discriminator_loss,
                    _bce_cases(seed + (1000 if hidden else 0), hidden), _d_loss_mistakes(), hidden)


def check_minimax_generator_loss(fn, hidden: bool = False, seed: int = 0):
    """G loss (minimax, minimized) = E log(1 - σ(l_fake)) = -E softplus(l_fake)."""
    cases = [(c, (args[1],)) for c, args in _bce_cases(seed + (2000 if hidden else 0), hidden)]
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
    _compare("generator_loss", fn, _REF.minimax_generator_loss, cases, mistakes, hidden)


# --- models ------------------------------------------------------------------------------

def _call_builder(builder, what, *args):
    try:
        with no_reference_calls(what):
            return builder(*args)
    except NotImplementedError:
        raise GradingError(f"{what} is not implemented yet (it raises NotImplementedError)."
                           ) from None
    except GradingError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GradingError(f"{what}{args} raised {type(e).__name__}: {e}") from None


def _run(model, x, what):
    try:
        return np.asarray(model(tf.constant(x), training=False))
    except Exception as e:  # noqa: BLE001
        raise GradingError(f"{what} failed on a batch of shape {x.shape}: "
                           f"{type(e).__name__}: {e}") from None


@contextlib.contextmanager
def _hidden_wording(hidden: bool, what: str):
    """In hidden checks, replace messages that would reveal the hidden sizes."""
    try:
        yield
    except GradingError as e:
        if hidden and any(ch.isdigit() for ch in str(e)):
            raise GradingError(f"{what} fails a hidden check with other sizes; make it work "
                               "for any latent_dim, data_dim and batch size.") from None
        raise


def check_generator(build_generator, hidden: bool = False, seed: int = 0):
    """G = build_generator(latent_dim, data_dim) maps (n, latent_dim) noise to (n, data_dim)."""
    with _hidden_wording(hidden, "build_generator"):
        _check_generator(build_generator, hidden, seed)


def _check_generator(build_generator, hidden, seed):
    configs = [(4, 2), (8, 2)] if not hidden else [(16, 3), (1, 2)]
    rng = np.random.default_rng(seed + (10 if hidden else 0))
    for latent_dim, data_dim in configs:
        g = _call_builder(build_generator, "build_generator", latent_dim, data_dim)
        if not getattr(g, "trainable_variables", None):
            raise GradingError("build_generator must return a Keras model with trainable "
                               "weights.")
        for n in (1, 7, 64):
            out = _run(g, rng.standard_normal((n, latent_dim)).astype(np.float32),
                       "the generator")
            if out.shape != (n, data_dim):
                raise GradingError(f"build_generator({latent_dim}, {data_dim}) maps noise of "
                                   f"shape ({n}, {latent_dim}) to {out.shape}; expected "
                                   f"({n}, {data_dim}).")
        out = _run(g, rng.standard_normal((32, latent_dim)).astype(np.float32), "the generator")
        if np.allclose(out, out[:1], atol=1e-6):
            raise GradingError("the generator gives the same output for every z: does it use "
                               "its input?")


def check_discriminator(build_discriminator, hidden: bool = False, seed: int = 0):
    """D = build_discriminator(data_dim) maps (n, data_dim) data to (n, 1) logits."""
    with _hidden_wording(hidden, "build_discriminator"):
        _check_discriminator(build_discriminator, hidden, seed)


def _check_discriminator(build_discriminator, hidden, seed):
    rng = np.random.default_rng(seed + (20 if hidden else 0))
    for data_dim in ((2,) if not hidden else (3, 1)):
        d = _call_builder(build_discriminator, "build_discriminator", data_dim)
        if not getattr(d, "trainable_variables", None):
            raise GradingError("build_discriminator must return a Keras model with trainable "
                               "weights.")
        for n in (1, 9, 64):
            out = _run(d, rng.standard_normal((n, data_dim)).astype(np.float32),
                       "the discriminator")
            if out.shape != (n, 1):
                raise GradingError(f"build_discriminator({data_dim}) maps data of shape "
                                   f"({n}, {data_dim}) to {out.shape}; expected ({n}, 1): one "
                                   "logit per example.")
        far = _run(d, (rng.standard_normal((256, data_dim)) * 1000).astype(np.float32),
                   "the discriminator")
        if far.min() >= 0.0 and far.max() <= 1.0:
            raise GradingError("the discriminator's outputs stay in [0, 1] even for extreme "
                               "inputs: it ends in a sigmoid. Return logits (a Dense(1) "
                               "layer without activation); the losses apply the sigmoid.")


# --- the training step ----------------------------------------------------------------------

class _Recorder:
    """Wraps a Keras model: records each call's input and output, delegates the rest."""

    def __init__(self, model):
        self._model = model
        self.calls = []

    def __call__(self, x, *args, **kwargs):
        out = self._model(x, *args, **kwargs)
        self.calls.append((tf.identity(x), tf.identity(out)))
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


class _RecordingOptimizer:
    """Wraps SGD: records which variables each update touches and with what gradients."""

    def __init__(self, learning_rate):
        import keras

        self._inner = keras.optimizers.SGD(learning_rate)
        self.updates = []

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        pairs = list(grads_and_vars)
        self.updates.append([(None if g is None else tf.identity(g), v) for g, v in pairs])
        return self._inner.apply_gradients(pairs, *args, **kwargs)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            raise GradingError("call optimizer.apply(grads, variables) with the variables, or "
                               "use optimizer.apply_gradients(zip(grads, variables)).")
        return self.apply_gradients(zip(grads, trainable_variables, strict=True))

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _mlp(sizes, seed, name):
    import keras

    x = keras.Input((sizes[0],))
    h = x
    for i, units in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        h = keras.layers.Dense(units, activation=None if last else "tanh",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
                               name=f"{name}_dense{i}")(h)
    return keras.Model(x, h, name=name)


def _copy(sizes, seed, name, values):
    """A fresh MLP like the one the check built, holding the given (starting) weights."""
    model = _mlp(sizes, seed, name)
    for v, value in zip(model.trainable_variables, values, strict=True):
        v.assign(value)
    return model


def _first_mismatch(expected, variables, update):
    """The first variable whose applied gradient differs from the expected one, or None."""
    applied = {id(v): g for g, v in update}
    for want, v in zip(expected, variables, strict=True):
        got = applied[id(v)]
        if got is None or not np.allclose(got, want, rtol=1e-3, atol=1e-5):
            return v
    return None


def _names(variables):
    return ", ".join(v.path for v in variables)


def check_train_step(train_step, hidden: bool = False, seed: int = 0):
    """One alternating step: a D update on real and fake, then a G update on fresh fakes.

    The models and optimizers are wrapped so the check sees every batch and every update.
    It then recomputes, with the reference losses, the gradients each update should have
    applied (D's at D's starting weights; G's through the updated D) and compares: the
    right variables, the right loss, the right direction.
    """
    latent_dim, data_dim, batch = (3, 2, 16) if not hidden else (5, 3, 9)
    g0 = _mlp([latent_dim, 8, data_dim], seed + 1, "generator")
    d0 = _mlp([data_dim, 8, 1], seed + 2, "discriminator")
    g_start = [v.numpy().copy() for v in g0.trainable_variables]
    d_start = [v.numpy().copy() for v in d0.trainable_variables]
    g, d = _Recorder(g0), _Recorder(d0)
    g_opt, d_opt = _RecordingOptimizer(0.1), _RecordingOptimizer(0.1)
    real = np.random.default_rng(seed + 3).standard_normal((batch, data_dim)).astype(np.float32)
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)  # so the recorders see values inside tf.function
    try:
        with no_reference_calls("train_step"):
            result = train_step(tf.constant(real), g, d, g_opt, d_opt, _REF.discriminator_loss,
                                _REF.minimax_generator_loss, latent_dim)
    except NotImplementedError:
        raise GradingError("train_step is not implemented yet (it raises NotImplementedError)."
                           ) from None
    except GradingError:
        raise
    except Exception as e:  # noqa: BLE001
        raise GradingError(f"train_step raised {type(e).__name__}: {e}") from None
    finally:
        tf.config.run_functions_eagerly(eager)

    d_ids = {id(v) for v in d0.trainable_variables}
    g_ids = {id(v) for v in g0.trainable_variables}
    for opt, ids, model, other in ((d_opt, d_ids, "discriminator", g_ids),
                                   (g_opt, g_ids, "generator", d_ids)):
        who = "d_optimizer" if model == "discriminator" else "g_optimizer"
        if len(opt.updates) != 1:
            raise GradingError(f"{who} should apply exactly one update per train_step, it "
                               f"applied {len(opt.updates)}.")
        touched = {id(v) for _, v in opt.updates[0]}
        if touched & other:
            wrong = [v for _, v in opt.updates[0] if id(v) in other]
            raise GradingError(f"{who} updated variables of the other model ({_names(wrong)}): "
                               f"the {model} step must change only the {model}'s variables.")
        if touched != ids:
            raise GradingError(f"{who} must update all of the {model}'s trainable variables "
                               "(pass model.trainable_variables).")

    # D's update: gradients at D's starting weights, on the real batch and the fake batch
    d_inputs = [x.numpy() for x, _ in d.calls]
    fakes = [x for x in d_inputs if x.shape == real.shape and not np.allclose(x, real)]
    if not any(np.allclose(x, real) for x in d_inputs) or not fakes:
        raise GradingError("the discriminator must see the real batch and a batch of "
                           "generated data in the D step.")
    d_ref = _copy([data_dim, 8, 1], seed + 2, "d_ref", d_start)
    with tf.GradientTape() as tape:
        d_loss = _REF.discriminator_loss(d_ref(real), d_ref(fakes[0]))
    wrong = _first_mismatch(tape.gradient(d_loss, d_ref.trainable_variables),
                            d0.trainable_variables, d_opt.updates[0])
    if wrong is not None:
        raise GradingError(
            "the discriminator update does not follow the gradient of "
            "d_loss_fn(D(real), D(fake)) at D's weights before the update"
            + ("" if hidden else f" (variable {wrong.path})")
            + ". Compute the D loss inside a GradientTape on D's outputs for the real "
            "batch and the generated batch, and take its gradient w.r.t. "
            "discriminator.trainable_variables.")

    # G's update: fresh z through G (starting weights) and the updated D
    z = g.calls[-1][0].numpy()
    g_ref = _copy([latent_dim, 8, data_dim], seed + 1, "g_ref", g_start)
    with tf.GradientTape() as tape:
        g_loss = _REF.minimax_generator_loss(d0(g_ref(z)))
    if _first_mismatch(tape.gradient(g_loss, g_ref.trainable_variables),
                       g0.trainable_variables, g_opt.updates[0]) is not None:
        raise GradingError(
            "the generator update does not follow the gradient of g_loss_fn(D(G(z))) "
            "through the discriminator after its update. Do the D step first, then "
            "generate inside a GradientTape and differentiate w.r.t. "
            "generator.trainable_variables.")
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise GradingError("train_step should return (d_loss, g_loss).")
    if not np.isclose(float(result[0]), float(d_loss), rtol=1e-4, atol=1e-5) or not np.isclose(
            float(result[1]), float(g_loss), rtol=1e-4, atol=1e-5):
        raise GradingError("train_step returns losses that differ from the ones it trained "
                           "on; return (d_loss, g_loss) of this step.")
