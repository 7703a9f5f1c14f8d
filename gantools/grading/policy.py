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
* gives a class a metaclass.

:func:`check_cell` returns the violations of one cell with their line numbers; the
nbgrader plug-in :class:`gantools.grading.nbgrader_ext.EnforcePolicy` applies it.
"""

from __future__ import annotations

import ast
import re
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
    "compile", "open", "breakpoint", "input", "help", "memoryview", "get_ipython",
    "exit", "quit", "In", "Out",
})
_IPYTHON_HISTORY = re.compile(r"_(i+|\d+|i\d+|ih|oh|dh|_|__)$")
_MAGIC_OPTIONS = re.compile(r"^\s*(-[a-zA-Z]+(\s+\d+)?\s+)*")
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
})
FORBIDDEN_KEYWORDS = frozenset({"metaclass", "allow_pickle"})
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


def check_cell(source: str, kind: str = ANSWER) -> list[Violation]:
    """The policy violations of one cell's source (empty when the cell may run)."""
    try:
        code = transform(source)
    except Exception as e:  # noqa: BLE001 - what IPython cannot transform is not run as is
        return [Violation(1, "unreadable", f"IPython cannot transform this cell ({e})")]
    return check_python(code, kind)


def check_python(code: str, kind: str = ANSWER, line_offset: int = 0) -> list[Violation]:
    try:
        tree = compile(code, "<cell>", "exec",
                       flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:
        return []  # the kernel cannot run it either: the cell fails with its SyntaxError
    visitor = _Visitor(kind, line_offset)
    visitor.visit(tree)
    return sorted(set(visitor.found), key=lambda v: (v.line, v.rule, v.detail))


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
    def __init__(self, kind: str, line_offset: int):
        self.kind = kind
        self.imports = ANSWER_IMPORTS if kind == ANSWER else EXTRA_IMPORTS
        self.offset = line_offset
        self.found: list[Violation] = []
        self.classes: set[str] = set()
        self.scopes: list[set[str]] = [set()]  # names bound to objects the cell constructed

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

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        if node.level:
            self.add(node, "import", f"imports from {module!r}, a relative import")
        else:
            self._check_module(node, module)
        for alias in node.names:
            self._check_imported_name(node, alias.name, module)

    # --- names and attributes -----------------------------------------------------------------
    def visit_Name(self, node):
        name = node.id
        if name in FORBIDDEN_NAMES:
            self.add(node, "forbidden-name", f"uses {name!r}, a dynamic-access or "
                     "code-execution primitive")
        elif name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDERS:
            self.add(node, "dunder", f"uses the interpreter name {name!r}")
        elif _IPYTHON_HISTORY.match(name):
            self.add(node, "forbidden-name", f"uses IPython's history variable {name!r}")

    def visit_Attribute(self, node):
        attr = node.attr
        if attr.startswith("__") and attr.endswith("__"):
            if attr not in ALLOWED_DUNDERS:
                self.add(node, "dunder", f"accesses the dunder attribute .{attr}")
        elif attr.startswith("_") and not _self_chain(node.value):
            self.add(node, "private", f"accesses the private attribute .{attr} of an object "
                     "other than self")
        if attr in FORBIDDEN_ATTRIBUTES:
            self.add(node, "forbidden-attribute", f"reaches for .{attr}, which leads out of "
                     "the numerical libraries")
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._check_store(node)
        self.generic_visit(node)

    def visit_keyword(self, node):
        if node.arg in FORBIDDEN_KEYWORDS:
            self.add(node, "forbidden-keyword", f"passes {node.arg}=")
        self.generic_visit(node)

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

    def visit_Assign(self, node):
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
            if isinstance(target, ast.Name):
                if self._constructed(node.value):
                    self.scopes[-1].add(target.id)
                else:
                    self.scopes[-1].discard(target.id)

    # --- scopes, classes, magics -------------------------------------------------------------
    def _scoped(self, node):
        self.scopes.append(set())
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _scoped

    def visit_ClassDef(self, node):
        self.classes.add(node.name)
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
        if name in ("time", "timeit"):  # their arguments are code: check it too
            for text in args[1:]:
                text = _MAGIC_OPTIONS.sub("", text) if method == "run_line_magic" else text
                line = node.lineno - 1 + self.offset
                try:
                    compile(text, "<magic>", "exec", flags=ast.PyCF_ONLY_AST)
                except SyntaxError:
                    if text.strip():
                        self.add(node, "magic", f"%{name} with code the policy cannot read")
                    continue
                self.found.extend(check_python(text, self.kind, line))
