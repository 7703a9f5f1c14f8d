"""What every notebook's checks share: errors, the tripwire, comparisons, hints, recorders.

A notebook's checks module (``gancourse/checks/notebooks/nb<assignment>.py``) imports these
with relative imports; :func:`gancourse.checks.load` compiles both afresh from disk, so
nothing a notebook patches in an imported copy changes them.

The rules a check follows, so that a submission cannot talk it into a pass:

* The tripwire (:mod:`gancourse.checks.tripwire`) is armed for the whole of every check
  (:func:`check`): every function compiled from a file of the gantools package is
  booby-trapped, wherever student code runs during the check (the
  student's function, its backward pass, a property of what it returned).
* Student code the check calls runs inside :func:`student_code`: tf.functions run eagerly
  (so a traced copy of a reference runs its Python code, and trips), and any error it
  raises becomes a :class:`GradingError` that names it.
* Expected values come from :func:`reference`: gantools modules compiled afresh under a
  file name that carries the running check's token, held by the check and by nothing a
  notebook can reach; kept beyond the check, they trip like the library itself.
* Objects a check hands to student code keep their bookkeeping in private attributes,
  which the answer-cell policy (:mod:`gancourse.autograde.policy`) forbids touching.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import re
import secrets
from pathlib import Path

import numpy as np
import tensorflow as tf

from .evidence import agree, report_values


def _fresh_tripwire():
    """``tripwire.py`` compiled afresh, like this module, into a module nobody else holds."""
    import types

    path = Path(__file__).resolve().parent / "tripwire.py"
    module = types.ModuleType("_gantools_tripwire")
    module.__file__ = str(path)
    exec(compile(path.read_bytes(), str(path), "exec"), vars(module))  # noqa: S102
    return module


_tripwire = _fresh_tripwire()
PACKAGE, Traps = _tripwire.PACKAGE, _tripwire.Traps
copy_filename, trap_code = _tripwire.copy_filename, _tripwire.trap_code
_guarded_functions = _tripwire.guarded_functions


class GradingError(AssertionError):
    """A check failed; the message says what was expected and what came back."""

    def _render_traceback_(self):
        # IPython shows this instead of a traceback through the grading code (it honours
        # __tracebackhide__ for every frame but the one that raised); the test cell still
        # ends in an error, so nbgrader still scores it 0
        return [f"{type(self).__name__}: {self}"]


# --- reference implementations the notebook cannot reach -----------------------------------

# The token of the check that is running: reference copies it makes carry it in their file
# name, and the tripwire traps every copy with another token (see gancourse.checks.tripwire).
_TOKEN = [secrets.token_hex(8)]


def reference(module: str):
    """The gantools module ``module`` (a dotted name, ``"gantools.losses.adversarial"``)
    compiled afresh from its source file into a module object that sys.modules never sees.

    Its functions carry the file name ``<path> (grading copy <token>)``, with the token of
    the running check: the tripwire leaves them alone while that check runs (a check may
    hand them to student code: the train step receives the reference losses) and traps
    them everywhere else, however they were kept. Relative imports of the copied file
    resolve to the installed package, whose functions *are* trapped: copy only modules that
    import no siblings, or never hand their functions to student code.
    """
    path = _tripwire.module_file(module)
    copy = importlib.util.module_from_spec(importlib.util.spec_from_loader(
        "_gantools_reference_" + module.replace(".", "_"), loader=None))
    copy.__file__ = copy_filename(path, _TOKEN[-1])
    copy.__package__ = module.rpartition(".")[0] if path.name != "__init__.py" else module
    exec(compile(path.read_bytes(), copy.__file__, "exec"), vars(copy))  # noqa: S102
    return copy


# --- the tripwire: a solution must not run gantools code -------------------------------------

def guarded_functions(allow=()):
    """Every live function the running check's tripwire traps (see
    :func:`gancourse.checks.tripwire.guarded_functions`)."""
    return _guarded_functions(allow, _TOKEN[-1])


_trap_code = trap_code
_ARMED: list[list[str]] = []  # the calls recorded by the tripwire that is set, if any
_WHAT: list[str] = []  # what is running, innermost last: the tripwire's message names it


def _tripped(what: str, name: str) -> str:
    return (f"{what} calls the gantools reference {name}(); implement it yourself with "
            "TensorFlow/Keras operations.")


@contextlib.contextmanager
def no_reference_calls(what: str, allow=()):
    """Raise GradingError if the code run inside runs any gantools function (but those
    ``allow`` names: see :func:`gancourse.checks.tripwire.guarded_functions`).

    Each guarded function's code object is swapped for a trap (same function object,
    so every alias trips), and restored afterwards. A caught GradingError does not help:
    the calls are remembered and reported when the block ends. Inside a block that is
    already guarded, the traps already set are reused (so the outermost block's ``allow``
    holds) and only the name in the message changes.
    """
    if _ARMED:
        _WHAT.append(what)
        try:
            yield _ARMED[-1]
        finally:
            _WHAT.pop()
        return
    calls: list[str] = []

    def tripwire(name):
        calls.append(_tripped(_WHAT[-1] if _WHAT else what, name))
        raise GradingError(calls[-1])

    traps = None
    _ARMED.append(calls)
    _WHAT.append(what)
    try:
        traps = Traps(tripwire, allow, _TOKEN[-1])
        yield calls
    except Exception:
        # a trapped call can surface as another error (a library that catches the
        # tripwire's and raises its own): the call is what the student needs to hear of
        if not calls:
            raise
    finally:
        _WHAT.pop()
        _ARMED.pop()
        if traps is not None:
            traps.disarm()
    if calls:
        raise GradingError(calls[0])


def check(allow=()):
    """Declares a check: it runs with the tripwire armed from its first line to its last,
    under a token of its own (reference copies it makes work only inside it), with
    tf.functions run as Python (a graph traced before the check cannot stand in for code
    the tripwire would see; a check that must test tracing traces explicitly, with
    ``get_concrete_function``).

    Student code does not only run where a check calls it: a backward pass through a
    ``tf.custom_gradient``, a property or ``__iter__`` of a returned object, a constraint
    an optimizer applies, a layer a model calls. Arming the whole check covers them all.
    ``allow`` is what the exercise may use (see :func:`guarded_functions`). Every public
    ``check_*`` function of a checks module is declared this way (a test makes sure).
    """
    def declare(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            __tracebackhide__ = True
            _TOKEN.append(secrets.token_hex(8))
            try:
                with eager(), no_reference_calls("code run by this check", allow):
                    return fn(*args, **kwargs)
            finally:
                _TOKEN.pop()
        run.armed, run.allow = True, tuple(allow)
        return run
    return declare


@contextlib.contextmanager
def eager():
    """Run tf.functions as plain Python, so recorders see values and traps see calls."""
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(before)


@contextlib.contextmanager
def student_code(what: str, allow=()):
    """Run student code: tripwire on (but for ``allow``, see :func:`guarded_functions`),
    eager tf.functions, errors turned into messages."""
    __tracebackhide__ = True
    try:
        with eager(), no_reference_calls(what, allow):
            yield
    except NotImplementedError:
        raise GradingError(f"{what} is not implemented yet (it raises NotImplementedError)."
                           ) from None
    except GradingError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the student's code is the message
        raise GradingError(f"{what} raised {type(e).__name__}: {plain(str(e))}") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(text: str) -> str:
    """``text`` without terminal colour codes (Keras wraps its errors in them)."""
    return _ANSI.sub("", text)


@contextlib.contextmanager
def lent(*functions):
    """Wrappers of ``functions`` (reference copies) that work only inside the block.

    A check that hands reference functions to student code (the train step receives the
    reference losses) lends them this way, so code that keeps them for later finds them
    dead once the check returns.
    """
    alive = [True]

    def wrap(fn):
        def lent_function(*args, **kwargs):
            if not alive[0]:
                raise GradingError("a function lent to your code by a check works only while "
                                   "that check runs.")
            return fn(*args, **kwargs)
        return lent_function

    try:
        yield [wrap(fn) for fn in functions]
    finally:
        alive[0] = False


def hidden_seed(seed: int, hidden: bool, nonce: int | None = None) -> int:
    """``seed`` for visible checks; for hidden ones the grader's nonce (autograde puts one
    in every hidden call) or else fresh entropy: inputs no table prepared in advance knows.
    """
    if not hidden:
        return seed
    return nonce if nonce is not None else secrets.randbits(31)


# --- comparing a student's function with the reference -----------------------------------

def random_logits(seed, shape, scale=3.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def as_tensors(args):
    """Check inputs as TensorFlow values: arrays become tensors, lists lists of tensors,
    Python numbers stay numbers."""
    def one(a):
        if isinstance(a, list | tuple):
            return [tf.constant(x) for x in a]
        if isinstance(a, float | int):
            return a
        return tf.constant(a)
    return [one(a) for a in args]


def scalar(fn, args, what):
    """``fn(*args)`` as a float; the function must return one number."""
    __tracebackhide__ = True
    with student_code(what):
        out = fn(*as_tensors(args))
        out = np.asarray(out, dtype=np.float64)
    if out.size != 1:
        raise GradingError(f"{what} should return one number (a scalar loss averaged over the "
                           f"batch), but returned an array of shape {out.shape}.")
    return float(out.reshape(()))


def hint(got, args, candidates):
    """Name the usual mistake whose result matches what came back ('' if none does)."""
    for text, value in candidates:
        try:
            v = float(value(*as_tensors(args)))
        except Exception:  # noqa: BLE001 - a candidate that cannot run is no match
            continue
        if np.isfinite(v) and np.isclose(got, v, rtol=1e-4, atol=1e-5):
            return f" Hint: {text}"
    return ""


def compare(name, fn, reference_fn, inputs, candidates, hidden, nonfinite_hint="",
            evidence=None):
    """Check ``fn`` against ``reference_fn`` on each ``(case, args)`` of ``inputs``.

    Values are float32 losses of at most a few hundred terms, compared at rtol 1e-4
    (float32 sums carry about 1e-6 relative error; wrong formulas differ by far more).
    Hidden cases never print expected values. ``evidence=(check, seed)``: when all cases
    pass, the values are reported to the grader (:func:`report_values`).
    """
    __tracebackhide__ = True
    values = []
    for case, args in inputs:
        got = scalar(fn, args, name)
        values.append(got)
        want = float(reference_fn(*as_tensors(args)))
        if not np.isfinite(got):
            raise GradingError(f"{name} returned {got} for {case}.{nonfinite_hint}")
        if not agree(got, want):
            found = hint(got, args, candidates)
            if hidden:
                raise GradingError(f"{name} disagrees with the reference on a hidden case "
                                   f"({case}).{found}")
            raise GradingError(f"{name} on {case}: expected {want:.6f}, got {got:.6f}.{found}")
    if evidence is not None:
        report_values(evidence[0], hidden, evidence[1], values)


UNEQUAL_BATCHES = (" Hint: the real and generated batches can have different sizes; take "
                   "the mean of each batch separately, then combine the two.")


def value_check(check, name, fn, reference_fn, inputs, candidates, hidden, seed,
                agrees="agrees with the reference", nonfinite_hint="", shape_hint="",
                then=None):
    """A whole value check: :func:`compare` with the values reported to the grader as
    ``check``'s evidence, ``then()`` (further rules, once the values agree), then the one
    confirmation line ("<name> <agrees>."). ``shape_hint`` is added when the student's code
    fails on tensors of incompatible shapes (e.g. :data:`UNEQUAL_BATCHES`)."""
    __tracebackhide__ = True
    try:
        compare(name, fn, reference_fn, inputs, candidates, hidden, nonfinite_hint,
                evidence=(check, seed))
    except GradingError as error:
        if not shape_hint or "Incompatible shapes" not in str(error):
            raise
        raise GradingError(f"{error}{shape_hint}") from None
    if then is not None:
        then()
    passed(f"{name} {agrees}" + (" on the hidden cases." if hidden else "."))


def _arrays(value) -> bool:
    """A NumPy array, or a list or tuple of them (one per layer): what a check passes as data."""
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, np.ndarray) for v in value)
    return isinstance(value, np.ndarray)


def compiled_loss(name, fn, args, hint, wrt=None, hidden=False):
    """``fn(*args)`` traced into a tf.function without autograph, as GANTrainer compiles its
    step, with the gradient of the result taken with respect to the array arguments numbered
    ``wrt`` (default: every array argument; the trainer differentiates the loss through
    them). Array arguments (:func:`_arrays`) become the traced inputs; the others (a
    smoothing factor, target values) stay Python numbers, as the trainer passes them. A
    NumPy or Python-number answer that gives the right value eagerly is refused here, with
    ``hint``, instead of crashing a training cell."""
    __tracebackhide__ = True
    positions = [i for i, a in enumerate(args) if _arrays(a)]
    wrt = positions if wrt is None else wrt
    specs = [tf.nest.map_structure(lambda a: tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)),
                                   args[i]) for i in positions]

    def run(*inputs):
        call = list(args)
        for i, x in zip(positions, inputs, strict=True):
            call[i] = x
        leaves = tf.nest.flatten([call[i] for i in wrt])
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            out = fn(*call)
        if not isinstance(out, tf.Tensor | tf.Variable):
            raise TypeError(f"it returned a {type(out).__name__}, not a TensorFlow tensor")
        if any(g is None for g in tape.gradient(out, leaves)):
            raise TypeError("no gradient flows from its result back to its inputs")
        return out

    traced = tf.function(run, input_signature=specs, autograph=False)
    must_trace(traced, name, "inside the trainer's compiled, differentiated step", hint,
               hidden=hidden)


LOSS_OPS = ("use TensorFlow operations on the scores (tf.reduce_mean, tf.square, "
            "tf.nn.softplus), not NumPy, float() or Python if/for on their values: the trainer "
            "compiles this loss into its step and differentiates it.")


def differentiable(name, fn, args):
    """A further rule for :func:`value_check`: ``fn(*args)`` must be a TensorFlow computation
    that gradients flow through to its array arguments (a trainer differentiates it), eagerly
    and traced as the trainer compiles it (:func:`compiled_loss`)."""
    def rule():
        __tracebackhide__ = True
        arrays = [tf.constant(a) for a in args if isinstance(a, np.ndarray)]
        rest = [a for a in args if not isinstance(a, np.ndarray)]
        with student_code(name), tf.GradientTape() as tape:
            for a in arrays:
                tape.watch(a)
            out = fn(*arrays, *rest)
        grads = tape.gradient(out, arrays) if isinstance(out, tf.Tensor | tf.Variable) \
            else [None]
        if any(g is None for g in grads):
            raise GradingError(
                f"{name} returns the right value, but no gradient flows through it: use "
                "TensorFlow operations (tf.reduce_mean, tf.square) on the scores, not NumPy "
                "or Python numbers. The trainer differentiates this loss.")
        compiled_loss(name, fn, args, LOSS_OPS)
    return rule


@contextlib.contextmanager
def hidden_wording(hidden: bool, what: str):
    """In hidden checks, replace messages that would reveal the hidden sizes."""
    __tracebackhide__ = True
    try:
        yield
    except GradingError as e:
        if hidden and any(ch.isdigit() for ch in str(e)):
            raise GradingError(f"{what} fails a hidden check with other sizes; make it work "
                               "for any input size and batch size.") from None
        raise


def passed(what: str) -> None:
    """The one line a passing check prints (stdout: never a displayed value)."""
    print(f"✓ {what}")


# --- recording what a training step does -------------------------------------------------------

class Recorder:
    """Wraps a Keras model: records each call's input and output, delegates the rest.

    The records live in a private attribute, which answer code may not touch.
    """

    def __init__(self, model):
        self._model = model
        self._calls = []

    def __call__(self, x, *args, **kwargs):
        out = self._model(x, *args, **kwargs)
        self._calls.append((tf.identity(x), tf.identity(out)))
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


class RecordingOptimizer:
    """Wraps SGD: records which variables each update touches and with what gradients.

    ``name`` is how the notebook calls it (``"d_optimizer"``), ``model`` the network it
    is for, ``own`` and ``other`` that network's and the other network's variables;
    ``order`` is a list shared by both optimizers, in which each update appends ``name``.
    The usual mistakes are named as they happen, before Keras's own error would.
    """

    def __init__(self, learning_rate, name="optimizer", model="model", own=(), other=(),
                 other_name="the other optimizer", order=None):
        import keras

        self._inner = keras.optimizers.SGD(learning_rate)
        self._updates = []
        self._before = []  # the values of the updated variables just before each update
        self._name, self._model, self._other_name = name, model, other_name
        self._own, self._other = {id(v) for v in own}, {id(v) for v in other}
        self._order = order if order is not None else []

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        pairs = list(grads_and_vars)
        if self._other and any(id(v) in self._other for _, v in pairs):
            wrong = [v for _, v in pairs if id(v) in self._other]
            raise GradingError(
                f"{self._name} was given variables that are not the {self._model}'s "
                f"({names(wrong)}). Hint: {self._name} updates the {self._model}; update "
                f"the other network with {self._other_name}.")
        if pairs and all(g is None for g, _ in pairs):
            raise GradingError(
                f"{self._name} got no gradient for any of the {self._model}'s variables. "
                f"Hint: compute everything the {self._model}'s loss depends on inside "
                "`with tf.GradientTape() as tape:`"
                + (" — including G(z): a batch generated before the tape is a constant "
                   "to it." if self._model == "generator" else "."))
        self._order.append(self._name)
        self._before.append([np.array(v.numpy()) for _, v in pairs])
        self._updates.append([(None if g is None else tf.identity(g), v) for g, v in pairs])
        return self._inner.apply_gradients(pairs, *args, **kwargs)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            raise GradingError("call optimizer.apply(grads, variables) with the variables, or "
                               "use optimizer.apply_gradients(zip(grads, variables)).")
        return self.apply_gradients(zip(grads, trainable_variables, strict=True))

    def __getattr__(self, name):
        return getattr(self._inner, name)


class OneNetworkOptimizer(RecordingOptimizer):
    """A recording optimizer of a step that updates one network (or one pair of networks)
    only: variables of ``other_model`` get a message that says so."""

    def __init__(self, name, model, own, other, other_model):
        super().__init__(0.1, name, model, own, other, "", [])
        self._other_model = other_model

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        pairs = list(grads_and_vars)
        wrong = [v for _, v in pairs if id(v) in self._other]
        if wrong:
            raise GradingError(
                f"{self._name} was given variables of the {self._other_model} "
                f"({names(wrong)}). Hint: this step updates the {self._model} only: pass "
                f"the {self._model}' trainable variables." if self._model.endswith("s") else
                f"{self._name} was given variables of the {self._other_model} "
                f"({names(wrong)}). Hint: this step updates the {self._model} only: pass "
                f"{self._model}.trainable_variables.")
        return super().apply_gradients(pairs, *args, **kwargs)


def must_trace(traced, what: str, failure: str, hint: str, hidden: bool = False):
    """Trace ``traced`` (a tf.function with an input signature) with the tripwire on, as a
    trainer or Keras would; returns its symbolic outputs. Any error becomes the message
    "<what> works on concrete values but fails <failure> (...). Hint: <hint>"; on a hidden
    case without TensorFlow's own message, which names the hidden shapes."""
    __tracebackhide__ = True
    try:
        with no_reference_calls(what):
            return traced.get_concrete_function().structured_outputs
    except GradingError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to trace is the message
        if hidden:
            raise GradingError(f"{what} works on concrete values but fails {failure}, on a "
                               f"hidden case. Hint: {hint}") from None
        first = (str(error).splitlines() or [""])[0]
        if len(first) > 200:  # cut at a word, not inside one
            first = first[:200].rsplit(" ", 1)[0] + " …"
        raise GradingError(f"{what} works on concrete values but fails {failure} "
                           f"({type(error).__name__}: {first}). Hint: {hint}") from None


class _Traced:
    """``step`` as a tf.function (AutoGraph on, as ``gancourse.modes.compiled`` wraps a
    notebook's steps), traced for the tensor ``specs`` followed by the Python ``args``."""

    def __init__(self, step, specs, args):
        self._function, self._specs, self._args = tf.function(step), specs, args

    def get_concrete_function(self):
        return self._function.get_concrete_function(*self._specs, *self._args)


@contextlib.contextmanager
def quiet_autograph():
    """AutoGraph warns when it cannot read a function's source, as for the lent reference
    losses (grading copies, compiled from source outside ``sys.modules``); it then runs them
    as they are, which is what they need. The warning would only alarm the student."""
    from tensorflow.python.autograph.utils import ag_logging

    logger, echo = tf.get_logger(), ag_logging.echo_log_to_stdout
    level = logger.level
    logger.setLevel("ERROR")
    ag_logging.echo_log_to_stdout = False
    try:
        yield
    finally:
        logger.setLevel(level)
        ag_logging.echo_log_to_stdout = echo


STEP_OPS = ("keep the whole step in TensorFlow operations: no .numpy() or NumPy on tensors "
            "inside it, and return the loss tensors themselves. The notebook's training "
            "compiles the step with tf.function, where tensors have no values yet.")


def compiled_step(step, what: str, specs, args, hidden: bool = False, hint: str = STEP_OPS):
    """Trace a student's training step itself (not a wrapper of the checks', whose source
    AutoGraph could not read) for tensor ``specs`` and Python ``args`` (fresh models, a
    built optimizer, lent losses), as the notebook's compiled training runs it."""
    __tracebackhide__ = True
    with quiet_autograph():
        must_trace(_Traced(step, specs, args), what,
                   "inside the notebook's compiled training step (tf.function)", hint,
                   hidden=hidden)


def one_update_each(d_opt, g_opt, discriminator, generator, order, step="train_step"):
    """The rules of an alternating step's updates: each optimizer applied one update, to all
    of its own model's variables and none of the other's, and D's came first (``order`` is
    the list the two :class:`RecordingOptimizer` share)."""
    __tracebackhide__ = True
    d_ids = {id(v) for v in discriminator.trainable_variables}
    g_ids = {id(v) for v in generator.trainable_variables}
    for opt, ids, model, other in ((d_opt, d_ids, "discriminator", g_ids),
                                   (g_opt, g_ids, "generator", d_ids)):
        who = "d_optimizer" if model == "discriminator" else "g_optimizer"
        if len(opt._updates) != 1:
            raise GradingError(f"{who} should apply exactly one update per {step}, it "
                               f"applied {len(opt._updates)}.")
        touched = {id(v) for _, v in opt._updates[0]}
        if touched & other:
            wrong = [v for _, v in opt._updates[0] if id(v) in other]
            raise GradingError(f"{who} updated variables of the other model "
                               f"({names(wrong)}): the {model} step must change only "
                               f"the {model}'s variables.")
        if touched != ids:
            raise GradingError(f"{who} must update all of the {model}'s trainable variables "
                               "(pass model.trainable_variables).")
    if order != ["d_optimizer", "g_optimizer"]:
        raise GradingError("G was updated before D. Hint: do the D step first (its update "
                           "applied), then the G step, which sees the updated D.")


def g_update_follows(g_gradient, d_after, d_before, generator, g_opt, formula: str,
                     advice: str):
    """The G update of an alternating step follows ``g_gradient(d_after)`` (a reference loss
    and its gradient, through D as updated); if it follows ``g_gradient(d_before)`` instead,
    G's loss was computed before the D update. ``formula`` names the loss in the message,
    ``advice`` is the hint otherwise. Returns the reference G loss."""
    __tracebackhide__ = True
    g_loss, expected = g_gradient(d_after)
    if first_mismatch(expected, generator.trainable_variables, g_opt._updates[0]) is not None:
        stale = first_mismatch(g_gradient(d_before)[1], generator.trainable_variables,
                               g_opt._updates[0]) is None
        raise GradingError(
            f"the generator update does not follow the gradient of {formula} through the "
            "discriminator after its update."
            + (" Hint: G's loss was computed with D's weights from before the D update: "
               "compute it in the G step, after d_optimizer has been applied." if stale else
               f" {advice}"))
    return g_loss


def returns_its_losses(returned, d_loss, g_loss, step: str) -> None:
    """An alternating step returns (d_loss, g_loss) of the update it made."""
    __tracebackhide__ = True
    if returned is None:
        raise GradingError(f"{step} should return (d_loss, g_loss).")
    if not np.allclose(returned, [float(d_loss), float(g_loss)], rtol=1e-4, atol=1e-5):
        raise GradingError(f"{step} returns losses that differ from the ones it trained on; "
                           "return (d_loss, g_loss) of this step.")


def weightless_hint(model, what: str, input_name: str) -> str:
    """The message for a builder whose model has no trainable weights yet."""
    import keras

    message = f"{what} must return a Keras model with trainable weights"
    if isinstance(model, keras.Model) and not model.built:
        return (message + f", and this one has none yet. Hint: a keras.Sequential without "
                f"an input shape creates its weights only when first called: start it with "
                f"keras.Input(shape=({input_name},)).")
    return message + "."


def layers_of(model):
    """Every layer inside ``model`` (nested ones included), or [] when it cannot be told."""
    try:
        return list(model._flatten_layers(include_self=False, recursive=True))
    except Exception:  # noqa: BLE001 - not a Keras model: nothing to inspect
        return []


# --- what layers compute, told by behaviour (never by class or function names) -------------

def layer_trace(model, x, training=False):
    """``[(layer, input, output)]`` of every Keras layer called during one call
    ``model(x, training=training)`` (the model itself excepted), in the order the calls
    returned.

    ``keras.layers.Layer.__call__`` is wrapped for the duration, at class level: the record
    is what ran, not what the model says it holds (a model can define its own
    ``_flatten_layers`` or ``trainable_variables``), however it was built (functional,
    ``Sequential`` filled with ``.add``, subclassed) and whatever its layers are called.
    Run it inside :func:`student_code`: the layers are student code.
    """
    import keras

    records = []
    original = keras.layers.Layer.__call__

    def recording(layer, *args, **kwargs):
        out = original(layer, *args, **kwargs)
        if layer is not model:
            records.append((layer, args[0] if args else kwargs.get("inputs"), out))
        return out

    keras.layers.Layer.__call__ = recording
    try:
        model(x, training=training)
    finally:
        keras.layers.Layer.__call__ = original
    return records


def backing(variable):
    """The TensorFlow variable behind a Keras variable (what a gradient tape records)."""
    value = getattr(variable, "value", None)
    return value if isinstance(value, tf.Variable) else variable


def kernels_used(model, x, training=False) -> list:
    """The trainable variables of rank >= 2 that ``model(x)`` reads: told by a gradient tape
    (it records every trainable variable read while it is open), not by the model's own
    account of its weights. TensorFlow variables: compare with :func:`backing`."""
    with tf.GradientTape() as tape:
        model(x, training=training)
    return [v for v in tape.watched_variables() if len(v.shape) >= 2]


_PROBE = np.array([-3.0, -1.7, -0.9, -0.4, -0.05, 0.05, 0.3, 0.8, 1.6, 2.9], np.float32)


def elementwise_kind(inputs, outputs) -> str | None:
    """What an elementwise map did to ``inputs``: ``"identity"``, ``"relu"`` (negatives to
    0, positives kept), ``"leaky"`` (positives kept, negatives scaled by one slope in
    (0, 1)), ``"other"``; None when it was not elementwise on these values (another shape).

    The values are what the layer computed, so a ReLU spelled as a Lambda, an Activation, a
    LeakyReLU with slope 0 or a renamed class is a ReLU all the same.
    """
    try:
        x = np.asarray(inputs, np.float64)
        y = np.asarray(outputs, np.float64)
    except Exception:  # noqa: BLE001 - not arrays (several inputs, ragged): not elementwise
        return None
    if x.shape != y.shape or x.size == 0:
        return None
    negative, positive = x < -1e-3, x > 1e-3
    if not (negative.any() and positive.any()):
        return None
    scale = 1e-5 * max(1.0, float(np.abs(x).max()))
    if np.allclose(y, x, atol=scale):
        return "identity"
    if not np.allclose(y[positive], x[positive], rtol=1e-5, atol=scale):
        return "other"
    slopes = y[negative] / x[negative]
    if np.allclose(y[negative], 0.0, atol=scale):
        return "relu"
    if np.allclose(slopes, slopes.mean(), rtol=1e-4, atol=1e-6) and 0 < slopes.mean() < 1:
        return "leaky"
    return "other"


def function_kind(fn) -> str | None:
    """:func:`elementwise_kind` of a callable (an ``activation``) on a fixed probe."""
    try:
        return elementwise_kind(_PROBE[None, :], fn(tf.constant(_PROBE[None, :])))
    except Exception:  # noqa: BLE001 - a callable that cannot take the probe tells nothing
        return None


_GRID_STEP = 1.0 / 128  # exact in float32: a slope's round-off is ~1e-4 for |f| ≤ 10
_GRID = np.arange(-6.0, 6.0, _GRID_STEP, dtype=np.float32)


def largest_slope(fn, like=None) -> float | None:
    """The largest |f(x + h) − f(x)| / h of an elementwise map over x in [−6, 6), h = 1/128:
    how far it can stretch a difference (SELU 1.76, GELU 1.13, ReLU and LeakyReLU(0.2) 1).
    ``fn`` is called on a tensor shaped like ``like`` (a layer that needs its input's
    shape) or on one row; None when it cannot take the probe or changes its shape."""
    shape = (1, _GRID.size) if like is None else tuple(int(n) for n in np.shape(like))
    size = int(np.prod(shape))
    x = np.resize(_GRID, size).reshape(shape)
    try:
        low = np.asarray(fn(tf.constant(x)), np.float64)
        high = np.asarray(fn(tf.constant(x + np.float32(_GRID_STEP))), np.float64)
    except Exception:  # noqa: BLE001 - a callable that cannot take the probe tells nothing
        return None
    if low.shape != x.shape or high.shape != x.shape:
        return None
    slopes = np.abs(high - low) / _GRID_STEP
    return float(np.nanmax(slopes)) if np.isfinite(slopes).any() else None


def activation_kinds(model, x) -> list[str]:
    """The kinds of every activation that ran in ``model(x)``: each weightless layer whose
    output is an elementwise function of its input, and each layer's ``activation``."""
    kinds = []
    for layer, inputs, outputs in layer_trace(model, x):
        if not layer.weights:
            kind = elementwise_kind(inputs, outputs)
            if kind not in (None, "identity"):
                kinds.append(kind)
        activation = getattr(layer, "activation", None)
        if callable(activation):
            kind = function_kind(activation)
            if kind not in (None, "identity"):
                kinds.append(kind)
    return kinds


def uses_relu(model, x) -> bool:
    """Whether ``model(x)`` applies a ReLU anywhere, told by what its layers computed."""
    return "relu" in activation_kinds(model, x)


def own_kernels(layer) -> list:
    """The trainable variables of rank >= 2 that ``layer`` holds itself (not through the
    layers inside it): what makes it a weighted layer, whatever its class."""
    inner = {id(v) for sub in layers_of(layer) for v in sub.trainable_variables}
    return [v for v in layer.trainable_variables if len(v.shape) >= 2 and id(v) not in inner]


@contextlib.contextmanager
def made_here(what: str):
    """Require the Keras model a builder returns inside the block to be new: each of its
    variables created inside the block. A model built before the check (by a cell, by the
    student's code while a notebook cell ran, by a cache, by a reference builder) cannot
    fit hidden sizes it never saw, and is refused outright.

    ``made_here(what)`` yields ``judge(model, *inputs)``. Variables are told new by
    TensorFlow's creation counter (every variable's unique id ends in it), read before the
    block; with ``inputs``, judge also runs the model on them under a gradient tape and
    judges every variable the forward pass reads, whatever the model says it holds (it can
    define its own ``variables``)."""
    from tensorflow.python.framework import ops

    start = ops.uid()

    def new(variable) -> bool:
        name = getattr(backing(variable), "_unique_id", "")
        count = name.rpartition("_")[2]
        return count.isdigit() and int(count) > start

    def judge(model, *inputs):
        __tracebackhide__ = True
        variables = list(getattr(model, "variables", None) or [])
        if inputs:
            try:
                with tf.GradientTape() as tape:
                    model(*inputs)
                variables += tape.watched_variables()
            except Exception:  # noqa: BLE001 - the check's own calls will say what fails
                pass
        if not all(new(v) for v in variables):
            raise GradingError(f"{what} returned a model with weights that existed before it "
                               "was called; build a new model on every call.")
        return model

    yield judge


def leaf_records(records) -> list:
    """The records of :func:`layer_trace` of the layers that compute: those that hold no
    layers, and those with kernels of their own (:func:`own_kernels`), whatever they hold.
    A nested model or block is recorded too, but its work is its layers'; a layer inside a
    layer with kernels (``Dense(activation=keras.layers.LeakyReLU(0.2))``) is part of that
    layer's work, and told by :func:`applied_activation` of it."""
    weighted = {id(layer): layer for layer, _, _ in records if own_kernels(layer)}
    inside = {id(sub) for layer in weighted.values() for sub in layers_of(layer)}
    return [(layer, x, y) for layer, x, y in records
            if id(layer) not in inside and (id(layer) in weighted or not layers_of(layer))]


def shape_of(value) -> tuple[int, ...] | None:
    """The static shape of a tensor as a tuple of ints; None for anything else (a list of
    tensors, an unknown dimension)."""
    shape = getattr(value, "shape", None)
    try:
        return tuple(int(d) for d in shape) if shape is not None else None
    except (TypeError, ValueError):
        return None


def _linear(x):
    return x


def _relu_signature(outputs) -> bool:
    """Outputs that only a ReLU at the end of a layer makes: no negative value, and a good
    share of both exact zeros and positives (an affine map of continuous inputs never
    lands exactly on 0; a layer whose weights are all zero gives only zeros)."""
    try:
        y = np.asarray(outputs, np.float64)
    except Exception:  # noqa: BLE001 - several outputs: no single activation to tell
        return False
    if y.size < 8 or y.min() < 0:
        return False
    return bool(np.mean(y == 0) >= 0.1 and np.mean(y > 0) >= 0.1)


def applied_activation(layer, inputs, outputs) -> str | None:
    """The kind (as :func:`elementwise_kind`) of the elementwise function ``layer`` applied
    last when it turned ``inputs`` into ``outputs`` (one record of :func:`layer_trace`);
    None when it applied none that can be told.

    A layer without kernels of its own (:func:`own_kernels`) is judged by its values. A
    layer with kernels is called again with its ``activation`` replaced by the identity:
    what the activation changed is read from the two outputs, so an ``activation`` the
    layer holds but does not apply counts for nothing. A layer with kernels that ends in a
    ReLU some other way is told by its outputs (:func:`_relu_signature`). Run it inside
    :func:`student_code`: the layer is student code.
    """
    if not own_kernels(layer):
        return elementwise_kind(inputs, outputs)
    kind = None
    activation = getattr(layer, "activation", None)
    if callable(activation) and not isinstance(inputs, list | tuple | dict):
        try:
            layer.activation = _linear
            bare = layer(inputs)
        except GradingError:
            raise
        except Exception:  # noqa: BLE001 - an activation that cannot be swapped tells nothing
            bare = None
        finally:
            try:
                layer.activation = activation
            except Exception:  # noqa: BLE001 - a read-only attribute was never replaced
                pass
        if bare is not None:
            kind = elementwise_kind(bare, outputs)
    if kind in (None, "identity") and _relu_signature(outputs):
        return "relu"
    return None if kind == "identity" else kind


def _gap_kind(outputs, inputs) -> str | None:
    """:func:`elementwise_kind` of what ran between one layer's output and the next layer's
    input: code in a model's or a block's ``call`` (``tf.nn.relu(layer(x))``), compared
    value by value in memory order (a reshape keeps it), or None."""
    try:
        y = np.asarray(outputs, np.float64).reshape(1, -1)
        x = np.asarray(inputs, np.float64).reshape(1, -1)
    except Exception:  # noqa: BLE001 - several tensors: nothing elementwise to tell
        return None
    if y.size != x.size:
        return None
    kind = elementwise_kind(y, x)
    return None if kind == "identity" else kind


def activations_applied(records) -> list[list[str]]:
    """For each leaf record of :func:`layer_trace` (:func:`leaf_records`, in the order the
    layers ran), the kinds of the activations it applied: the layer's own
    (:func:`applied_activation`), then whatever code between it and the next layer did to
    its output (:func:`_gap_kind`). So a ReLU is seen whether it is a layer, a layer's
    ``activation`` or ``tf.nn.relu`` in a subclassed model's ``call``."""
    leaves = leaf_records(records)
    kinds = []
    for i, (layer, x, y) in enumerate(leaves):
        found = [applied_activation(layer, x, y)]
        if i + 1 < len(leaves):
            found.append(_gap_kind(y, leaves[i + 1][1]))
        kinds.append([k for k in found if k is not None])
    return kinds


def activations_between(records) -> list[list[str]]:
    """For the layers with kernels of a forward pass (:func:`own_kernels`, in the order
    they ran), the kinds of the activations applied from each one's output (its own, fused
    activation included) up to the next one's input, or up to the last layer for the last
    one (:func:`activations_applied`)."""
    leaves = leaf_records(records)
    applied = activations_applied(records)
    weighted = [i for i, (layer, _, _) in enumerate(leaves) if own_kernels(layer)]
    return [[k for i in range(start, stop) for k in applied[i]]
            for start, stop in zip(weighted, [*weighted[1:], len(leaves)], strict=True)]


def spatial_factor(inputs, outputs) -> tuple[float, float] | None:
    """How much a layer scaled the height and width of a (batch, height, width, channels)
    map: (output height / input height, output width / input width); None unless both are
    such maps of one batch."""
    x, y = shape_of(inputs), shape_of(outputs)
    if x is None or y is None or len(x) != 4 or len(y) != 4 or x[0] != y[0] or 0 in x[1:3]:
        return None
    return y[1] / x[1], y[2] / x[2]


def normalizes_batch(layer, inputs, seed: int = 0) -> bool:
    """Whether ``layer`` does what batch normalization does in training mode, told by what it
    computes: on inputs like ``inputs`` (a record of :func:`layer_trace`), per channel (the
    last axis) with statistics pooled over the batch and every other axis,

    * its output is an affine function of its input, channel by channel (a layer norm,
      instance norm or group norm is affine per example instead);
    * that function comes from the batch: the same input with other per-channel means and
      spreads gives the same output (what an identity, a fixed scale or an inference-mode
      batch norm does not), so the output's per-channel mean and spread are the layer's
      own (β and γ), whatever the input's;
    * it updates statistics it keeps for inference (its non-trainable variables change).

    The layer is called twice with ``training=True`` on probes built from ``inputs``: the
    recorded input standardized per channel, then given per-channel spreads in [2, 6] and
    means in [-3, 3]. The variables it changed are restored afterwards. Run it inside
    :func:`student_code`: the layer is student code.
    """
    try:
        x = np.asarray(inputs, np.float64)
    except Exception:  # noqa: BLE001 - several inputs: not a normalization of one tensor
        return False
    if x.ndim < 2 or x.size < 8 * x.shape[-1]:
        return False
    channels = x.shape[-1]
    rng = np.random.default_rng(seed)
    flat = x.reshape(-1, channels)
    spread = flat.std(0)
    z = (flat - flat.mean(0)) / np.where(spread > 0, spread, 1.0)
    constant = spread <= 1e-6 * (1.0 + np.abs(flat).max(0))
    z[:, constant] = rng.standard_normal((len(z), int(constant.sum())))
    probes = [(z * rng.uniform(2.0, 6.0, channels) + rng.uniform(-3.0, 3.0, channels))
              .reshape(x.shape).astype(np.float32) for _ in range(2)]
    state = list(getattr(layer, "non_trainable_variables", []))
    before = [np.array(v.numpy()) for v in state]
    try:
        first = np.asarray(layer(tf.constant(probes[0]), training=True), np.float64)
        moved = any(not np.array_equal(b, v.numpy()) for b, v in zip(before, state,
                                                                     strict=True))
        second = np.asarray(layer(tf.constant(probes[1]), training=True), np.float64)
    except GradingError:
        raise
    except Exception:  # noqa: BLE001 - a layer that cannot take the probes is no batch norm
        return False
    finally:
        for v, b in zip(state, before, strict=True):
            v.assign(b)
    if not moved or first.shape != x.shape or second.shape != x.shape:
        return False
    inp = probes[0].reshape(-1, channels).astype(np.float64)
    out = first.reshape(-1, channels)
    out_spread = out.std(0)
    if not np.all(np.isfinite(out)) or out_spread.max() <= 0:
        return False
    # the least-squares line of each channel; float32 rounding leaves residuals of about
    # 1e-6 of the output's spread (a per-example normalization leaves tens of percent)
    centred = inp - inp.mean(0)
    slope = (centred * (out - out.mean(0))).sum(0) / (centred ** 2).sum(0)
    residual = out - out.mean(0) - slope * centred
    if np.any(np.abs(residual) > 1e-4 * out_spread + 1e-6):
        return False
    # batch statistics: the second probe (other means and spreads) gives the same output
    # but for the ε added to the variance, which moves an output z·γ by about z·γ·ε/(2σ²):
    # at most 1.3e-3·|z|·γ for ε up to 1e-2 and the probes' σ ≥ 2, under 2e-2·γ for the
    # |z| < 15 of any data; a layer that keeps the input's scale or mean is off by O(1)
    return bool(np.all(np.abs(second.reshape(-1, channels) - out)
                       <= 2e-2 * out_spread + 1e-5))


def mlp(sizes, seed, name):
    """A small tanh MLP with seeded weights, for checks of training steps."""
    import keras

    x = keras.Input((sizes[0],))
    h = x
    for i, units in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        h = keras.layers.Dense(units, activation=None if last else "tanh",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
                               name=f"{name}_dense{i}")(h)
    return keras.Model(x, h, name=name)


def copy_mlp(sizes, seed, name, values):
    """A fresh MLP like :func:`mlp`, holding the given (starting) weights."""
    model = mlp(sizes, seed, name)
    for v, value in zip(model.trainable_variables, values, strict=True):
        v.assign(value)
    return model


def first_mismatch(expected, variables, update):
    """The first variable whose applied gradient differs from the expected one, or None.

    Gradients of a float32 MLP step, compared at rtol 1e-3: the same formula computed in
    another order differs by ~1e-6; a wrong loss or wrong weights differ by far more.
    """
    applied = {id(v): g for g, v in update}
    for want, v in zip(expected, variables, strict=True):
        got = applied[id(v)]
        if got is None or not np.allclose(got, want, rtol=1e-3, atol=1e-5):
            return v
    return None


def names(variables):
    return ", ".join(v.path for v in variables)

