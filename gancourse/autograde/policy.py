"""The rules for code that students write, checked in nbgrader's process before it runs.

Every code cell of a submission that is not one of the release's own locked cells (answer
cells, cells a student added, cells whose nbgrader metadata was removed or changed) is
transformed as IPython would transform it (magics and shell escapes become ordinary
calls), parsed, and walked. A cell breaks the policy when it

* imports anything outside an allow-list (answers: TensorFlow, Keras, NumPy and a few
  pure standard-library modules; other cells may also plot, time and show progress);
* names a dynamic-access or code-execution primitive (``getattr``, ``vars``, ``eval``,
  ``exec``, ``compile``, ``__import__``, ``open``, ``get_ipython``, IPython's history...),
  directly or as a magic other than ``%matplotlib``, ``%time`` and ``%timeit``;
* reads or writes a dunder attribute other than ``__init__``, ``__call__`` and
  ``__name__``, or a private attribute of anything but ``self``;
* reaches for an attribute that leads out of the numerical libraries: other modules
  (``os``, ``sys``, ``ctypes``...), frames and code objects, Python callbacks inside
  graphs (``py_function``), traced or converted copies of functions
  (``get_concrete_function``, ``autograph``), deserialisers, file writers;
* assigns to or deletes an attribute of an object the cell did not create: only
  ``self.…`` inside a class, names the same scope bound to a newly constructed object
  (``keras.…(...)``, ``tf.…(...)``, ``np.…(...)`` or a class the cell defines), and the
  ``trainable`` flag of any model may be set;
* follows an attribute chain from a module to a module outside the allowed packages
  (``enum.bltns`` is ``builtins``; chains are resolved in the grader's process), or uses
  a name of a small standard-library module outside its allow-list
  (``functools.update_wrapper`` writes attributes named by strings);
* defines a special method other than the ordinary ones (``__getattr__``,
  ``__setattr__``, ``__init_subclass__``...), spells a dunder name as a string, gives a
  class a metaclass, or names ``load``, the grading entry point;
* passes options to ``%time``/``%timeit`` other than ``-n``/``-r``/``-q``/``-o``, or a
  backend to ``%matplotlib`` outside the usual few.

:func:`check_cell` returns the violations of one cell with their line numbers; the
nbgrader plug-in :class:`gancourse.autograde.plugins.EnforcePolicy` applies it.
"""

from __future__ import annotations

import ast
import importlib
import re
import types
from dataclasses import dataclass

ANSWER = "answer cell"
EXTRA = "added or changed cell"

ANSWER_IMPORTS = frozenset({
    "tensorflow", "keras", "numpy", "math", "cmath", "functools", "itertools",
    "collections", "typing", "dataclasses", "random", "statistics", "enum", "abc",
    "__future__",
})
EXTRA_IMPORTS = ANSWER_IMPORTS | {"matplotlib", "IPython.display", "time", "tqdm"}

FORBIDDEN_NAMES = frozenset({
    "getattr", "setattr", "delattr", "vars", "globals", "locals", "eval", "exec",
    "compile", "open", "breakpoint", "memoryview", "get_ipython",
    "exit", "quit", "In", "Out", "load",
})
_IPYTHON_HISTORY = re.compile(r"_(i+|\d+|i\d+|ih|oh|dh|_|__)$")
_DUNDER = re.compile(r"__\w+__$")
_TIMEIT_OPTIONS = re.compile(r"^\s*((-[nr]\s*\d+|-[qo])\s+)*")
# special methods a class may define: construction, display, containers, context managers
ALLOWED_METHODS = frozenset({
    "__init__", "__call__", "__repr__", "__str__", "__len__", "__getitem__", "__iter__",
    "__next__", "__enter__", "__exit__", "__post_init__"})
MATPLOTLIB_BACKENDS = frozenset({"", "inline", "widget", "ipympl", "notebook", "agg"})

# Packages whose modules a chain of attributes may reach, and the only names usable from
# the small standard-library modules (the rest of them takes attribute names as strings,
# or leads to the interpreter).
REACHABLE_PACKAGES = frozenset({
    "numpy", "tensorflow", "keras", "matplotlib", "math", "cmath", "itertools", "random",
    "statistics", "tqdm", "gantools", "functools", "collections", "typing", "dataclasses",
    "enum", "abc", "time", "IPython", "__future__"})
# The course machinery (gancourse) is out of reach but for the notebooks' budgets; so are
# the compatibility aliases that keep its old names inside gantools.
REACHABLE_MODULES = ("gancourse.modes", "gantools.course")
OUT_OF_REACH = ("gantools.grading", "gantools.kernel", "gantools.grade", "gantools.pipeline")
STDLIB_NAMES = {
    "functools": {"partial", "reduce", "lru_cache", "cache", "total_ordering"},
    "collections": {"namedtuple", "deque", "defaultdict", "OrderedDict", "Counter", "abc"},
    "typing": {"Any", "Callable", "Dict", "Iterable", "Iterator", "List", "Mapping",
               "NamedTuple", "Optional", "Sequence", "Tuple", "Union", "TYPE_CHECKING"},
    "dataclasses": {"dataclass", "field", "fields", "asdict", "astuple", "replace"},
    "enum": {"Enum", "IntEnum", "Flag", "auto"},
    "abc": {"ABC", "abstractmethod"},
    "time": {"time", "perf_counter", "monotonic", "sleep", "process_time"},
    "IPython.display": {"display", "clear_output", "Image", "HTML", "Markdown", "Math"},
}
ALLOWED_DUNDERS = frozenset({"__init__", "__call__", "__name__"})

# Attributes that lead from the numerical libraries to the interpreter, the file system or
# copies of functions that the tripwire cannot see.
FORBIDDEN_ATTRIBUTES = frozenset({
    # modules reachable as attributes of other modules
    "os", "sys", "subprocess", "importlib", "builtins", "shutil", "signal", "ctypes",
    "ctypeslib", "inspect", "gc", "types", "marshal", "pickle", "runpy", "code", "codeop",
    "socket", "urllib", "tempfile", "pathlib", "threading", "multiprocessing", "Path",
    # frames, code objects and tracebacks
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "gi_frame",
    "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next",
    "co_code", "co_consts", "settrace", "setprofile",
    # Python callbacks in graphs, traced or converted copies of functions
    "py_function", "numpy_function", "py_func", "get_concrete_function",
    "python_function", "autograph", "to_graph", "to_code", "load_library",
    "load_op_library",
    # deserialisers that rebuild functions, string evaluators, file writers
    "deserialize", "deserialize_keras_object", "get_registered_object", "load_model",
    "model_from_json", "model_from_config", "func_load", "get_type_hints", "gfile",
    "write_file", "write_text", "write_bytes", "open", "savetxt", "tofile",
    # attribute names as strings, traced copies of functions out of reach of the checks,
    # the switch that makes tf.functions run as Python while a check runs
    "update_wrapper", "wraps", "attrgetter", "methodcaller", "get_field", "Formatter",
    "bltns", "compat", "wrap_function", "Session", "run_functions_eagerly",
    "experimental_run_functions_eagerly", "switch_backend", "f2py", "extbuild",
    # strings run as code inside the libraries, and what reads a function's insides (its
    # closure cells, its marshalled code) or rebuilds one from them
    "runstring", "rundocs", "func_dump", "cell_contents", "getclosurevars",
    "enable_unsafe_deserialization", "python_utils",
    # graphs that run without Python, out of the tripwire's sight: saved and reloaded
    # functions, a function called by name
    "saved_model", "TFSMLayer", "PartitionedCall", "StatefulPartitionedCall",
    "Graph", "GraphDef", "FuncGraph", "as_graph_def", "import_graph_def", "graph_util",
    "Placeholder", "placeholder",
})
FORBIDDEN_KEYWORDS = frozenset({"metaclass", "allow_pickle", "safe_mode"})
ALLOWED_MAGICS = frozenset({"matplotlib", "time", "timeit"})
SETTABLE_ANYWHERE = frozenset({"trainable"})
_CONSTRUCTOR_ROOTS = frozenset({"keras", "tf", "tensorflow", "np", "numpy", "layers"})


@dataclass(frozen=True)
class Violation:
    line: int
    rule: str
    detail: str

    def __str__(self):
        return f"line {self.line}: {self.detail} [{self.rule}]"


def transform(source: str) -> str:
    """The cell as IPython runs it: magics and ``!`` commands become ordinary calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def check_cell(source: str, kind: str = ANSWER,
               modules: dict[str, str] | None = None) -> list[Violation]:
    """The policy violations of one cell's source (empty when the cell may run).

    ``modules`` maps the names that trusted cells bound to modules (``np`` to ``numpy``,
    ``gd`` to ``gantools.data``...) so that attribute chains from them are resolved too.
    """
    try:
        code = transform(source)
    except Exception as e:  # noqa: BLE001 - what IPython cannot transform is not run as is
        return [Violation(1, "unreadable", f"IPython cannot transform this cell ({e})")]
    return check_python(code, kind, modules=modules)


def check_python(code: str, kind: str = ANSWER, line_offset: int = 0,
                 modules: dict[str, str] | None = None) -> list[Violation]:
    try:
        tree = compile(code, "<cell>", "exec",
                       flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:
        return []  # the kernel cannot run it either: the cell fails with its SyntaxError
    visitor = _Visitor(kind, line_offset, dict(modules or {}))
    visitor.visit(tree)
    return sorted(set(visitor.found), key=lambda v: (v.line, v.rule, v.detail))


def imported_modules(source: str) -> dict[str, str]:
    """``{name: module}`` for what a (trusted) cell binds with import statements: modules,
    and members of modules as ``module.member``."""
    try:
        tree = ast.parse(transform(source))
    except Exception:  # noqa: BLE001 - an unreadable cell binds nothing
        return {}
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = alias.name
                else:
                    found[_top(alias.name)] = _top(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                # a module or any other member: either way, what it leads to is followed,
                # and a name from a module out of reach may not be used at all
                found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _within_reach(module: str) -> bool:
    """Whether student code may use a name bound to ``module`` (or to a member of it)."""
    if _under(module, REACHABLE_MODULES):
        return True
    return _top(module) in REACHABLE_PACKAGES and not _under(module, OUT_OF_REACH)


def _resolve_module(name: str):
    """The module called ``name``, imported in this process, if it is one we may import."""
    if not _within_reach(name) or _top(name) == "__future__":
        return None
    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - not a module (or not importable): nothing to follow
        return None
    return module if isinstance(module, types.ModuleType) else None


def _constant_keys(value) -> set[str] | None:
    """The keys of a dict display or a ``dict(k=...)`` call when all are constant strings."""
    if isinstance(value, ast.Dict):
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
            return {k.value for k in value.keys}
        return None
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "dict" and not value.args
            and all(k.arg is not None for k in value.keywords)):
        return {k.arg for k in value.keywords}
    return None


def _root_name(node):
    """The name at the left end of an attribute chain ``a.b.c`` (None if not a name)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _self_chain(node) -> bool:
    """``self`` or ``self.a.b``: attributes of the object a method is running on."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


class _Visitor(ast.NodeVisitor):
    def __init__(self, kind: str, line_offset: int, modules: dict[str, str]):
        self.kind = kind
        self.imports = ANSWER_IMPORTS if kind == ANSWER else EXTRA_IMPORTS
        self.offset = line_offset
        self.modules = modules  # names bound to modules: by trusted cells, then by this one
        self.found: list[Violation] = []
        self.classes: set[str] = set()
        self.scopes: list[set[str]] = [set()]  # names bound to objects the cell constructed
        self.collections: list[set[str]] = [set()]  # ... to lists of such objects
        self.mappings: dict[str, set[str]] = {}  # names bound to dicts of constant keys
        self.computed: set[str] = set()  # ... to dicts with keys computed from strings

    def add(self, node, rule, detail):
        self.found.append(Violation(getattr(node, "lineno", 1) + self.offset, rule, detail))

    # --- imports ---------------------------------------------------------------------------
    def _import_ok(self, name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.imports for i in range(1, len(parts) + 1))

    def _check_module(self, node, name: str):
        if not self._import_ok(name):
            self.add(node, "import", f"imports {name!r}, which is not allowed in an {self.kind} "
                     f"(allowed: {', '.join(sorted(self.imports))})")
        for part in name.split(".")[1:]:
            self._check_imported_name(node, part, name)

    def _check_imported_name(self, node, part: str, module: str):
        if part in FORBIDDEN_ATTRIBUTES or part in FORBIDDEN_NAMES or part == "*" or (
                part.startswith("_") and module != "__future__"):
            self.add(node, "import", f"imports {part!r} from {module!r}")

    def visit_Import(self, node):
        for alias in node.names:
            self._check_module(node, alias.name)
            if alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                self.modules[_top(alias.name)] = _top(alias.name)

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        if node.level:
            self.add(node, "import", f"imports from {module!r}, a relative import")
            return
        self._check_module(node, module)
        for alias in node.names:
            self._check_imported_name(node, alias.name, module)
            self._check_member(node, module, alias.name)
            self._follow(node, module, [alias.name], bind=alias.asname or alias.name)

    # --- where attribute chains from modules lead -------------------------------------------
    def _check_member(self, node, module: str, name: str):
        allowed = STDLIB_NAMES.get(module)
        if allowed is not None and name not in allowed:
            self.add(node, "stdlib-name", f"uses {module}.{name}; from {module} only "
                     f"{', '.join(sorted(allowed))} may be used")

    def _follow(self, node, module: str, attrs: list[str], bind: str | None = None):
        """Resolve ``module.attrs...``; flag a step that lands on a module out of reach."""
        obj = _resolve_module(module)
        if obj is None:
            return
        path = module
        for i, attr in enumerate(attrs):
            try:
                obj = getattr(obj, attr)
            except Exception:  # noqa: BLE001 - unresolvable here: the name rules still apply
                return
            path = f"{path}.{attr}"
            if isinstance(obj, types.ModuleType):
                if not _within_reach(obj.__name__):
                    self.add(node, "module-reach", f"{path} is the module {obj.__name__!r}, "
                             "which student code may not reach")
                    return
                if i + 1 < len(attrs):
                    self._check_member(node, obj.__name__, attrs[i + 1])
        if bind is not None and isinstance(obj, types.ModuleType):
            self.modules[bind] = obj.__name__

    @staticmethod
    def _chain(node):
        """``(root name, [attr, ...])`` of ``a.b.c`` (None when the root is not a name)."""
        attrs = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        return (node.id, attrs[::-1]) if isinstance(node, ast.Name) else None

    # --- names and attributes -----------------------------------------------------------------
    def visit_Name(self, node):
        name = node.id
        if isinstance(node.ctx, ast.Load) and name in self.modules and not _within_reach(
                self.modules[name]):
            self.add(node, "module-reach", f"uses {name!r}, which a cell of the notebook bound "
                     f"to {self.modules[name]!r}, a module student code may not reach")
        elif name in FORBIDDEN_NAMES:
            self.add(node, "forbidden-name", f"uses {name!r}, a dynamic-access or "
                     "code-execution primitive")
        elif name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS:
            self.add(node, "dunder", f"uses the interpreter name {name!r}")
        elif _IPYTHON_HISTORY.match(name):
            self.add(node, "forbidden-name", f"uses IPython's history variable {name!r}")

    def _attribute_rules(self, node, attr: str, of_self: bool):
        """The rules on an attribute name, wherever it is read: ``x.attr``, or a class
        pattern ``case C(attr=...)`` of a match statement (which reads it by name)."""
        if attr.startswith("__") and attr.endswith("__"):
            if attr not in ALLOWED_DUNDERS:
                self.add(node, "dunder", f"accesses the dunder attribute .{attr}")
        elif attr.startswith("_") and not of_self:
            self.add(node, "private", f"accesses the private attribute .{attr} of an object "
                     "other than self")
        if attr in FORBIDDEN_ATTRIBUTES:
            self.add(node, "forbidden-attribute", f"reaches for .{attr}, which leads out of "
                     "the numerical libraries")

    def visit_MatchClass(self, node):
        for attr in node.kwd_attrs:
            self._attribute_rules(node, attr, of_self=False)
        self.generic_visit(node)

    def visit_Attribute(self, node, outermost=True):
        if outermost:
            chain = self._chain(node)
            if chain and chain[0] in self.modules:
                self._check_member(node, self.modules[chain[0]], chain[1][0])
                self._follow(node, self.modules[chain[0]], chain[1])
        self._attribute_rules(node, node.attr, _self_chain(node.value))
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._check_store(node)
        if isinstance(node.value, ast.Attribute):
            self.visit_Attribute(node.value, outermost=False)
        else:
            self.visit(node.value)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and _DUNDER.match(node.value) and \
                node.value not in ALLOWED_DUNDERS | {"__main__"}:
            self.add(node, "dunder", f"spells the dunder name {node.value!r} as a string")

    def visit_keyword(self, node):
        if node.arg in FORBIDDEN_KEYWORDS:
            self.add(node, "forbidden-keyword", f"passes {node.arg}=")
        if node.arg is None:  # **mapping: the keywords it passes are read where the cell
            # shows them (a dict of constant keys); keys computed from strings are refused
            if self._computed_keys(node.value):
                self.add(node, "forbidden-keyword", "passes keyword arguments whose names are "
                         f"computed (**{ast.unparse(node.value)}); write the keywords out")
            keys = self._mapping_keys(node.value) or set()
            for key in keys & FORBIDDEN_KEYWORDS:
                self.add(node, "forbidden-keyword", f"passes {key}= through **")
        self.generic_visit(node)

    def _mapping_keys(self, value) -> set[str] | None:
        """The keys of a ``**`` mapping when the cell shows them: a dict display or
        ``dict(...)`` call with constant keys, or a name bound to one; None otherwise."""
        if isinstance(value, ast.Name):
            return self.mappings.get(value.id)
        return _constant_keys(value)

    def _computed_keys(self, value) -> bool:
        """A dict display with a key that is not a constant string (or a name the cell bound
        to one, or filled with such a key): the spelling of a keyword built from strings."""
        if isinstance(value, ast.Name):
            return value.id in self.computed
        return isinstance(value, ast.Dict) and any(
            k is not None and not (isinstance(k, ast.Constant) and isinstance(k.value, str))
            for k in value.keys)

    # --- assignments to attributes ------------------------------------------------------------
    def _constructed(self, value) -> bool:
        """Whether an expression makes a new object: a call of a library or cell class."""
        if not isinstance(value, ast.Call):
            return False
        func = value.func
        if isinstance(func, ast.Name):
            return func.id in self.classes
        return _root_name(func) in _CONSTRUCTOR_ROOTS

    def _check_store(self, node):
        base = node.value
        if node.attr in SETTABLE_ANYWHERE or _self_chain(base):
            return
        if isinstance(base, ast.Name) and base.id in self.scopes[-1]:
            return
        what = ast.unparse(base)
        self.add(node, "foreign-attribute", f"sets or deletes .{node.attr} of {what!r}, an "
                 "object this cell did not create (patching modules or objects passed in is "
                 "not allowed)")

    def _constructed_collection(self, value) -> bool:
        """A list, tuple or comprehension of objects the cell constructs (or a name bound
        to one), or the layers of a model it constructed: looping over it yields objects
        the cell made."""
        if isinstance(value, ast.Name):
            return value.id in self.collections[-1]
        if isinstance(value, ast.List | ast.Tuple):
            return bool(value.elts) and all(self._constructed(e) for e in value.elts)
        if isinstance(value, ast.ListComp | ast.GeneratorExp):
            return self._constructed(value.elt)
        if isinstance(value, ast.Subscript):  # a slice of one
            return self._constructed_collection(value.value)
        return (isinstance(value, ast.Attribute) and value.attr == "layers"
                and isinstance(value.value, ast.Name) and value.value.id in self.scopes[-1])

    def visit_For(self, node):
        self.visit(node.iter)
        if isinstance(node.target, ast.Name):
            if self._constructed_collection(node.iter):
                self.scopes[-1].add(node.target.id)
            else:
                self.scopes[-1].discard(node.target.id)
        self.visit(node.target)
        for statement in node.body + node.orelse:
            self.visit(statement)

    def visit_Assign(self, node):
        self.visit(node.value)
        value = node.value
        chain = self._chain(value) if isinstance(value, ast.Attribute | ast.Name) else None
        for target in node.targets:
            self.visit(target)
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                key = target.slice  # a key stored into a dict: constant, or computed
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    self.mappings.setdefault(target.value.id, set()).add(key.value)
                else:
                    self.computed.add(target.value.id)
            if isinstance(target, ast.Name):
                keys = _constant_keys(value)
                if keys is not None:
                    self.mappings[target.id] = keys
                else:
                    self.mappings.pop(target.id, None)
                if self._computed_keys(value):
                    self.computed.add(target.id)
                else:
                    self.computed.discard(target.id)
                if self._constructed_collection(value):
                    self.collections[-1].add(target.id)
                else:
                    self.collections[-1].discard(target.id)
                if self._constructed(value):
                    self.scopes[-1].add(target.id)
                else:
                    self.scopes[-1].discard(target.id)
                self.modules.pop(target.id, None)
                if chain and chain[0] in self.modules:  # maybe an alias of a module
                    self._follow(node, self.modules[chain[0]], chain[1], bind=target.id)

    # --- scopes, classes, magics -------------------------------------------------------------
    def _scoped(self, node):
        self.scopes.append(set())
        self.collections.append(set())
        self.generic_visit(node)
        self.collections.pop()
        self.scopes.pop()

    def visit_FunctionDef(self, node):
        if _DUNDER.match(node.name) and node.name not in ALLOWED_METHODS:
            self.add(node, "special-method", f"defines the special method {node.name}, "
                     "which changes how Python itself treats the object")
        self._scoped(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = _scoped

    def visit_ClassDef(self, node):
        self.classes.add(node.name)
        if any(k.arg is None for k in node.keywords):
            self.add(node, "forbidden-keyword", "passes class keywords through ** (a "
                     "metaclass the policy cannot see)")
        self._scoped(node)

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, ast.Attribute)
                and func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "get_ipython"):
            self._magic(node, func.attr)
            return
        self.generic_visit(node)

    def _magic(self, node, method):
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                for a in node.args]
        name = args[0] if args else None
        if name not in ALLOWED_MAGICS or None in args:
            self.add(node, "magic", f"uses the IPython magic %{name or '?'}")
            return
        if name == "matplotlib":
            if any(a.strip() not in MATPLOTLIB_BACKENDS for a in args[1:]):
                self.add(node, "magic", "%matplotlib with a backend other than "
                         + ", ".join(sorted(b for b in MATPLOTLIB_BACKENDS if b)))
            return
        # %time and %timeit: their arguments are code, checked like the cell. IPython hands
        # options it does not know back to the code, so anything that looks like an option
        # other than -n N, -r N, -q, -o is refused rather than guessed at.
        line = node.lineno - 1 + self.offset
        if method == "run_cell_magic":
            options, code = args[1], args[2]
        else:
            code = _TIMEIT_OPTIONS.sub("", args[1] + " ") if name == "timeit" else args[1]
            options = ""
        if (name == "time" and options.strip()) or _TIMEIT_OPTIONS.sub("", options + " ").strip() \
                or code.lstrip().startswith("-"):
            self.add(node, "magic", f"%{name} with options other than -n N, -r N, -q, -o")
            return
        try:
            compile(code, "<magic>", "exec", flags=ast.PyCF_ONLY_AST)
        except SyntaxError:
            if code.strip():
                self.add(node, "magic", f"%{name} with code the policy cannot read")
            return
        self.found.extend(check_python(code, self.kind, line, self.modules))
