"""The tripwire: every gantools function booby-trapped while untrusted code runs.

Two users arm it. The checks (:mod:`gancourse.checks.harness`) arm it for the whole of a
check, so that a student's function, its backward pass, a property of a returned object
or any callback the check triggers cannot run the reference. The graded kernel
(:mod:`gancourse.autograde.confine`) arms it for every cell of a submission that is not one of
the release's own cells, so that nothing a student writes can build, trace or save a
gantools object before a check runs: a model built by a gantools builder, a tf.data
pipeline or a saved graph traced from a reference would otherwise compute the reference
later without running any Python the tripwire could see.

What is trapped: every live Python function whose code was compiled from a source file of
the gantools package (the library; the course machinery lives apart, in gancourse), found
through the garbage collector (aliases, methods, closures made by factories, functions
rebuilt from a reference's code object and the Python functions behind tf.functions
included), and every *grading copy* (a reference compiled by a check,
:func:`copy_filename`) except those of the check that is running. A copy carries the token
of the check that made it in its file name, which code cannot change: a reference lent to a
student's step, read out of a closure and kept, or rebuilt from its marshalled code, is
trapped in every other check and in every student cell.

The module is pure Python (no TensorFlow): the graded kernel imports it before any cell.
"""

from __future__ import annotations

import inspect
import itertools
import operator
import types
from pathlib import Path


def _package_folder() -> Path:
    """The folder of the installed gantools package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("gantools")
    if spec is None or not spec.origin:
        raise ImportError("the gantools package is not installed: the tripwire has nothing "
                          "to guard (`make venv`, or `pip install -e .` in the checkout)")
    return Path(spec.origin).resolve().parent


PACKAGE = _package_folder()  # every function compiled from a file in here is trapped
COPY_MARK = " (grading copy "


def module_file(module: str) -> Path:
    """The source file of a gantools module named by its dotted name
    (``"gantools.models.layers"``), found without importing it."""
    top, _, rest = module.partition(".")
    if top != "gantools" or not all(part.isidentifier() for part in module.split(".")):
        raise ValueError(f"{module!r} is not a module of the gantools package")
    base = PACKAGE.joinpath(*rest.split(".")) if rest else PACKAGE
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def copy_filename(path, token: str) -> str:
    """The file name a check compiles a reference copy under: its token is part of it."""
    return f"{path}{COPY_MARK}{token})"


def copy_token(filename: str) -> str | None:
    """The token of a grading copy's file name, None for any other file."""
    if not filename.endswith(")") or COPY_MARK not in filename:
        return None
    return filename.rpartition(COPY_MARK)[2][:-1]


_LIBRARY_FILES: dict[str, bool] = {}


def library_file(filename: str) -> bool:
    """True for code compiled from a source file of the gantools package."""
    if filename not in _LIBRARY_FILES:
        guarded = False
        if filename.endswith(".py"):
            try:
                path = Path(filename).resolve()
                guarded = path.is_relative_to(PACKAGE)
            except (OSError, ValueError):
                pass
        _LIBRARY_FILES[filename] = guarded
    return _LIBRARY_FILES[filename]


_KINDS: dict[str, str | bool] = {}  # per file name: a copy's token, or whether it is library


def _kind(filename: str) -> str | bool:
    kind = _KINDS.get(filename)
    if kind is None:
        copied = copy_token(filename)
        kind = _KINDS[filename] = copied if copied is not None else library_file(filename)
    return kind


def guarded(code: types.CodeType, token: str | None = None) -> bool:
    """Whether code must not run: library code, or a grading copy of another check."""
    kind = _kind(code.co_filename)
    return kind != token if isinstance(kind, str) else kind


def guarded_functions(allow=(), token: str | None = None, objects=None):
    """Every live function :func:`guarded` says must not run, but those ``allow`` names.

    ``allow``: ``(module, qualname prefix)`` pairs, ``module`` a dotted gantools module name
    (``"gantools.models.layers"``), whose functions an exercise may use (a critic may wrap its
    layers in gantools' ``SpectralNorm``). They are told by where their code was compiled
    from, which a notebook cannot change, not by any name it could rebind. ``objects``:
    the objects to look through (default: everything the garbage collector tracks).
    """
    import gc

    allowed = [(module_file(module), prefix) for module, prefix in allow]

    def permitted(code):
        return any(code.co_qualname.startswith(prefix)
                   and Path(code.co_filename).resolve() == file for file, prefix in allowed)
    found = gc.get_objects() if objects is None else objects
    function = types.FunctionType
    # the functions picked out in C, then one dict lookup each, by the file its code came
    # from: a kernel holds ~10⁵ functions among ~10⁶ objects, and every check arms this
    functions = itertools.compress(found, map(operator.is_, map(type, found),
                                              itertools.repeat(function)))
    kinds = _KINDS
    trapped = []
    for obj in functions:
        code = obj.__code__
        kind = kinds.get(code.co_filename)
        if kind is None:
            kind = _kind(code.co_filename)
        if (kind != token if isinstance(kind, str) else kind) and not (
                allowed and permitted(code)):
            trapped.append(obj)
    return trapped


_TRAPS: dict[tuple, types.CodeType] = {}
_MARK = ("__tripwire__", "__name__")


def _signature(code: types.CodeType) -> str:
    """The parameter list of ``code`` (defaults live on the function, not the code)."""
    names = code.co_varnames
    n_pos, n_kw = code.co_argcount, code.co_kwonlyargcount
    params = list(names[:n_pos])
    if code.co_posonlyargcount:
        params.insert(code.co_posonlyargcount, "/")
    rest = n_pos + n_kw
    if code.co_flags & inspect.CO_VARARGS:
        params.append("*" + names[rest])
        rest += 1
    elif n_kw:
        params.append("*")
    params += names[n_pos:n_pos + n_kw]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        params.append("**" + names[rest])
    return ", ".join(params)


def trap_code(original: types.CodeType, tripwire) -> types.CodeType:
    """A code object that calls ``tripwire(qualname)``, with ``original``'s free variables
    and parameters.

    Matching the free variables lets it replace the code of closures too; matching the
    parameters keeps what libraries read from a signature (Keras inspects a layer's
    ``__init__`` before calling it), so the trap, not an unrelated error, is what runs.
    The tripwire and the name travel as constants, so the trap works whatever globals the
    function has. A generator or coroutine function's trap is an ordinary function: the
    call itself trips.
    """
    names = original.co_freevars
    signature = _signature(original)
    key = (names, signature)
    if key not in _TRAPS:
        touch = "\n".join(f"        {n}" for n in names)
        source = ("def _outer():\n"
                  + "".join(f"    {n} = None\n" for n in names)
                  + f"    def _trap({signature}):\n"
                  + (touch + "\n" if names else "")
                  + f"        _gantools_tripwire_ = {_MARK!r}\n"
                  + "        return _gantools_tripwire_[0](_gantools_tripwire_[1])\n"
                  + "    return _trap\n")
        namespace: dict = {}
        exec(compile(source, "<gantools tripwire>", "exec"), namespace)  # noqa: S102
        code = namespace["_outer"]().__code__
        if code.co_freevars != names:  # pragma: no cover - CPython orders them as written
            raise RuntimeError(f"tripwire cannot mirror free variables {names}")
        _TRAPS[key] = code
    trap = _TRAPS[key]
    consts = tuple((tripwire, original.co_qualname) if c == _MARK else c
                   for c in trap.co_consts)
    return trap.replace(co_consts=consts, co_name=original.co_name,
                        co_qualname=original.co_qualname)


class Traps:
    """Guarded functions with their code swapped for traps, until :meth:`disarm`.

    The function objects stay the same, so every alias, method and closure trips. Every
    parameter becomes optional while trapped, so that a copy rebuilt without its defaults
    still reaches the trap instead of failing on a missing argument.
    """

    def __init__(self, tripwire, allow=(), token: str | None = None):
        self.swapped = []
        for fn in guarded_functions(allow, token):
            original = fn.__code__
            self.swapped.append((fn, original, fn.__defaults__, fn.__kwdefaults__))
            fn.__code__ = trap_code(original, tripwire)
            n_pos, n_kw = original.co_argcount, original.co_kwonlyargcount
            fn.__defaults__ = (None,) * n_pos or None
            fn.__kwdefaults__ = dict.fromkeys(original.co_varnames[n_pos:n_pos + n_kw]) or None

    def disarm(self) -> None:
        for fn, original, defaults, kwdefaults in reversed(self.swapped):
            fn.__code__ = original
            fn.__defaults__, fn.__kwdefaults__ = defaults, kwdefaults
        self.swapped = []
