"""The policy on student-written cells: each attack class in several spellings, and honest
code that must pass untouched."""

import pytest

from gancourse.autograde.policy import ANSWER, EXTRA, check_cell

ATTACKS = {
    # 1-2. obfuscated access: names built from strings, imports by string, evaluators
    "getattr": ("def f(r, x):\n    return getattr(np, 'is' + 'close')(r, x)", "forbidden-name"),
    "dunder import": ("m = __import__('gantools')", "dunder"),
    "importlib": ("import importlib\nm = importlib.import_module('os')", "import"),
    "importlib from": ("from importlib import import_module", "import"),
    "vars": ("vars(np)['isclose'] = len", "forbidden-name"),
    "globals": ("globals()['np'] = None", "forbidden-name"),
    "locals": ("def f():\n    return locals()", "forbidden-name"),
    "eval": ("y = eval('1 + 1')", "forbidden-name"),
    "exec": ("exec('x = 1')", "forbidden-name"),
    "compile": ("c = compile('1', 'x', 'eval')", "forbidden-name"),
    "builtins attr": ("x = np.__builtins__", "dunder"),
    "dict attr": ("np.__dict__['isclose'] = len", "dunder"),
    "operator": ("import operator\nf = operator.attrgetter('__code__')", "import"),
    "typing evaluates strings": ("import typing\ntyping.get_type_hints(f)",
                                 "forbidden-attribute"),
    # 3. patching the libraries the checks use
    "module attribute": ("np.isclose = lambda *a, **k: True", "foreign-attribute"),
    "alias of a module": ("m = np\nm.allclose = len", "foreign-attribute"),
    "call returning a module": ("m = (lambda: np)()\nm.allclose = len", "foreign-attribute"),
    "class attribute": ("keras.Model.__call__ = lambda *a: 0", "foreign-attribute"),
    "augmented": ("tf.random.normal += 1", "foreign-attribute"),
    "delete": ("del np.isclose", "foreign-attribute"),
    "tuple target": ("np.isclose, x = len, 1", "foreign-attribute"),
    "argument": ("def train_step(real, g, d, g_opt, d_opt, *a):\n"
                 "    d_opt.apply_gradients = lambda *a, **k: None", "foreign-attribute"),
    "type of object": ("type(x).apply = len", "foreign-attribute"),
    "metaclass": ("class A(metaclass=M):\n    pass", "forbidden-keyword"),
    # 4. the grading entry point and the files it reads
    "gantools import": ("import gancourse.checks", "import"),
    "gantools from": ("from gancourse.checks import load", "import"),
    "relative import": ("from . import grading", "import"),
    "private attribute": ("x = load('01_basic_gan')._h", "private"),
    "open": ("open('checks.py', 'a').write('x')", "forbidden-name"),
    "tf writer": ("tf.io.write_file('checks.py', 'x')", "forbidden-attribute"),
    "numpy writer": ("np.savetxt('checks.py', [0], header='x')", "forbidden-attribute"),
    "gfile": ("tf.io.gfile.GFile('checks.py', 'w')", "forbidden-attribute"),
    "path via a module": ("gd.folder.Path('x').write_text('y')", "forbidden-attribute"),
    # 5. IPython's kernel hooks, magics and shell escapes
    "get_ipython": ("get_ipython().set_custom_exc((Exception,), print)", "forbidden-name"),
    "run_cell": ("ip = get_ipython()\nip.run_cell = print", "forbidden-name"),
    "line magic": ("%load_ext autoreload", "magic"),
    "cell magic": ("%%capture out\nraise ValueError", "magic"),
    "shell escape": ("!touch pwned", "forbidden-name"),
    "history": ("print(_ih[-1])", "forbidden-name"),
    "outputs": ("print(Out)", "forbidden-name"),
    "code inside %time": ("%time getattr(np, 'x')", "forbidden-name"),
    "code inside %%timeit": ("%%timeit -n 1\nnp.isclose = len", "foreign-attribute"),
    # 6. nbgrader's scoring rule
    "displayhook": ("import sys\nsys.displayhook(8)", "import"),
    "displayhook via IPython": ("from IPython import get_ipython", "import"),
    # 7. copies of the reference the tripwire cannot see
    "concrete function": ("cf = tf.function(f).get_concrete_function()", "forbidden-attribute"),
    "python_function": ("g = f.python_function", "forbidden-attribute"),
    "autograph copy": ("g = tf.autograph.to_graph(f)", "forbidden-attribute"),
    "code object": ("g = type(f)(f.__code__, {})", "dunder"),
    "py_function": ("tf.py_function(f, [x], tf.float32)", "forbidden-attribute"),
    "keras deserializer": ("keras.saving.deserialize_keras_object(config)",
                           "forbidden-attribute"),
    "pickle": ("x = np.load('x.npy', allow_pickle=True)", "forbidden-keyword"),
    # the interpreter
    "frames": ("def f():\n    g = (x for x in [1])\n    return g.gi_frame.f_back.f_globals",
               "forbidden-attribute"),
    "ctypes": ("np.ctypeslib.ctypes.memmove(1, 2, 3)", "forbidden-attribute"),
    "ctypes import": ("from numpy import ctypeslib", "import"),
    "os via a module": ("gd.remote.os.system('ls')", "forbidden-attribute"),
    "sys import": ("import sys", "import"),
    "subclasses": ("x = ().__class__.__base__.__subclasses__()", "dunder"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("kind", [ANSWER, EXTRA])
def test_every_spelling_of_an_attack_is_a_violation(name, kind):
    source, rule = ATTACKS[name]
    found = check_cell(source, kind)
    assert rule in {v.rule for v in found}, (name, [str(v) for v in found])
    assert all(v.line >= 1 for v in found)


HONEST = {
    "a variable named input": ("def penalty(critic, real, fake):\n"
                               "    input = 0.5 * (real + fake)\n    return critic(input)"),
    "help on a layer": "help(keras.layers.Dense)",
    "constraints set in a loop over layers the cell makes": (
        "def build(clip):\n"
        "    dense = [keras.layers.Dense(n) for n in (8, 1)]\n"
        "    for layer in dense:\n"
        "        layer.kernel_constraint = clip\n"
        "    for layer in dense[:-1]:\n"
        "        layer.bias_constraint = clip\n"
        "    model = keras.Sequential(dense)\n"
        "    for layer in model.layers:\n"
        "        layer.trainable = True\n"
        "        layer.bias_constraint = clip\n"
        "    return model"),
    "keyword arguments passed on": ("class Block(keras.layers.Layer):\n"
                                    "    def __init__(self, units, **kwargs):\n"
                                    "        super().__init__(**kwargs)\n"
                                    "        options = dict(use_bias=False, units=units)\n"
                                    "        self.dense = keras.layers.Dense(**options)"),
    "keywords chosen per layer": (
        "def build(n):\n    model = keras.Sequential()\n    for i in range(n):\n"
        "        extra = {'input_shape': (3,)} if i == 0 else {}\n"
        "        model.add(keras.layers.Dense(4, **extra))\n    return model"),
    "keywords from a config": ("def make(config):\n    return keras.layers.Dense(**config)"),
    "a match on shapes": ("def size(x):\n    match x.shape:\n        case (n, d):\n"
                          "            return d\n    return 0"),
    "losses": '''def discriminator_loss(real_logits, fake_logits):
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce(tf.ones_like(real_logits), real_logits) + bce(
        tf.zeros_like(fake_logits), fake_logits)''',
    "numpy and lambdas": '''import numpy as np
import math

scale = np.float32(math.sqrt(2.0))
mean = lambda t: tf.reduce_mean(t)  # noqa: E731


def generator_loss(fake_logits):
    return -mean(tf.nn.softplus(fake_logits)) * scale / scale''',
    "subclassed layer": '''class MinibatchFeatures(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self._units = units
        self.__cache = None

    def build(self, input_shape):
        self.T = self.add_weight(shape=(input_shape[-1], self._units), name="T")
        self.built = True

    def call(self, x):
        return tf.concat([x, tf.matmul(x, self.T)], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self._units})
        return config

    def __repr__(self):
        return f"{type(self).__name__}({self._units})"''',
    "subclassed model": '''class Critic(keras.Model):
    def __init__(self):
        super().__init__()
        self.body = keras.Sequential([keras.layers.Dense(8), keras.layers.LeakyReLU(0.2)])
        self.head = keras.layers.Dense(1)

    def call(self, x, training=False):
        return self.head(self.body(x, training=training))''',
    "train step": '''@tf.function
def train_step(real, generator, discriminator, g_optimizer, d_optimizer,
               d_loss_fn, g_loss_fn, latent_dim):
    discriminator.trainable = True
    batch = tf.shape(real)[0]
    with tf.GradientTape() as tape:
        fake = generator(tf.random.normal((batch, latent_dim)), training=True)
        d_loss = d_loss_fn(discriminator(real), discriminator(fake))
    grads = tape.gradient(d_loss, discriminator.trainable_variables)
    d_optimizer.apply_gradients(zip(grads, discriminator.trainable_variables))
    return d_loss, d_loss''',
    "own objects": '''opt = keras.optimizers.Adam(1e-3)
opt.learning_rate = 2e-4
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
model.stop_training = False
for layer in model.layers:
    layer.trainable = False
results = {}
results["loss"] = 1.0
values = [0, 1]
values[0] = 2''',
    "plots and prints": '''%matplotlib inline
import matplotlib.pyplot as plt
from IPython.display import display

plt.rcParams["figure.figsize"] = (4, 3)
fig, ax = plt.subplots()
ax.plot(np.arange(3))
ax.set_title(f"{discriminator_loss.__name__!r}")
plt.show()
display("done")
print(__name__)''',
    "timing and progress": '''%%time
import time
from tqdm.auto import tqdm

for _ in tqdm(range(2)):
    time.sleep(0.01)''',
    "line magics": '''%time x = np.ones(3)
%timeit -n 2 -r 1 np.ones(3)''',
    "typing and dataclasses": '''from dataclasses import dataclass
from typing import Optional


@dataclass
class Config:
    units: int = 8
    note: Optional[str] = None


cfg = Config()
cfg.units = 16''',
    "throwaway and private helpers": '''def _helper(x):
    return x * 2


_, second = (1, 2)
print(_helper(second))''',
    "syntax error": "def f(:\n    pass",
}


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_code_is_never_flagged(name):
    kind = EXTRA if name in ("plots and prints", "timing and progress") else ANSWER
    assert check_cell(HONEST[name], kind) == [], name
    assert check_cell(HONEST[name], EXTRA) == [], name


def test_answers_may_not_import_what_extra_cells_may():
    assert check_cell("import matplotlib.pyplot as plt", EXTRA) == []
    found = check_cell("import matplotlib.pyplot as plt", ANSWER)
    assert [v.rule for v in found] == ["import"]
    assert "answer cell" in found[0].detail and "tensorflow" in found[0].detail


def test_violations_name_their_line():
    found = check_cell("x = 1\n\ny = np\ny.isclose = len\n%load_ext x")
    assert [(v.line, v.rule) for v in found] == [(4, "foreign-attribute"), (5, "magic")]
    assert str(found[0]).startswith("line 4: sets or deletes .isclose of 'y'")


# Names the notebooks' trusted setup cells bind to modules: chains from them are followed.
SETUP = {"np": "numpy", "tf": "tensorflow", "keras": "keras", "plt": "matplotlib.pyplot",
         "gd": "gantools.data", "gmodels": "gantools.models", "gv": "gantools.viz",
         "gmetrics": "gantools.metrics", "os": "os", "time": "time",
         "budget": "gancourse.modes.budget", "path": "os.path"}

REACHING = {
    "update_wrapper patches a module": ('''import functools


class Patch:
    def __init__(self):
        self.isclose = len


functools.update_wrapper(np, Patch())''', "stdlib-name"),
    "wraps patches a module": ("import functools\nfunctools.wraps(P())(np)", "stdlib-name"),
    "update_wrapper imported": ("from functools import update_wrapper", "stdlib-name"),
    "enum leads to builtins": ("import enum\nenum.bltns.exec('x = 1')", "forbidden-attribute"),
    "builtins imported from enum": ("from enum import bltns", "import"),
    "typing leads to operator": ("import typing\nf = typing.operator.attrgetter('x')",
                                 "stdlib-name"),
    "keras leads to types": ("t = keras.src.utils.python_utils.python_types",
                             "module-reach"),
    "an alias of a module path": ("u = keras.src.utils.python_utils\nt = u.python_types",
                                  "module-reach"),
    "numpy leads to a compiler": ("np.f2py.compile('x')", "forbidden-attribute"),
    "the grading entry point": ("load('01_basic_gan').check_train_step(thief)",
                                "forbidden-name"),
    "options %time hands back as code": ("%time -eval ('1')", "magic"),
    "%timeit with an unknown option": ("%timeit -x 1", "magic"),
    "%matplotlib with a module backend": ("%matplotlib module://evil", "magic"),
    "special method": ("class G:\n    def __setattr__(self, k, v):\n        pass",
                       "special-method"),
    "special method via type()": ("X = type('X', (), {'__getattr__': print})", "dunder"),
    "graph copy": ("g = tf.compat.v1.wrap_function(f, [])", "forbidden-attribute"),
    "eager switch off": ("tf.config.run_functions_eagerly(False)", "forbidden-attribute"),
    # modules the notebook's own cells bind (its setup imports os): out of reach by name too
    "os from the setup cell": ("os.system('id')", "module-reach"),
    "os under another name": ("shell = os\nrun = shell.popen", "module-reach"),
    "os as a default argument": ("def f(m=os):\n    return m.getcwd()", "module-reach"),
    "os inside a function": ("def f():\n    return os.environ", "module-reach"),
    "os through gantools": ("runner = gd.remote.os.popen", "forbidden-attribute"),
    "a member imported from os": ("p = path.join('a', 'b')", "module-reach"),
    # strings run as code inside the libraries; a function's closure read out or rebuilt
    "numpy runs a string": ("np.testing.runstring('import os', {})", "forbidden-attribute"),
    "numpy runs doctests": ("np.testing.rundocs('x.py')", "forbidden-attribute"),
    "keras dumps a closure": ("from keras.src.utils.python_utils import func_dump", "import"),
    "closure cells": ("x = lent.cell_contents", "forbidden-attribute"),
    "unsafe deserialization on": ("keras.config.enable_unsafe_deserialization()",
                                  "forbidden-attribute"),
    "safe mode off": ("keras.layers.Lambda.from_config(c, safe_mode=False)",
                      "forbidden-keyword"),
    # a loop over objects the cell did not make yields objects it did not make
    "loop over layers passed in": ("def f(model):\n    for layer in model.layers:\n"
                                   "        layer.call = print", "foreign-attribute"),
    "loop over a module's members": ("for m in [np, tf]:\n    m.isclose = len",
                                     "foreign-attribute"),
    # a class pattern of a match statement reads attributes by name
    "match reads a dunder": ("match f:\n    case object(__builtins__=table):\n        pass",
                             "dunder"),
    "match reads a private attribute": ("match m:\n    case object(_layers=found):\n"
                                        "        pass", "private"),
    "match reads a forbidden attribute": ("match np:\n    case object(testing=t):\n"
                                          "        t.runstring('x', {})", "forbidden-attribute"),
    # keywords passed through ** whose names the policy cannot read
    "keywords built from strings": ("np.load('f', **{'allow' + '_pickle': True})",
                                    "forbidden-keyword"),
    "keywords from a name": ("options = {'allow' + '_pickle': True}\nnp.load('f', **options)",
                             "forbidden-keyword"),
    "keywords stored under a computed key": (
        "options = {}\noptions['allow' + '_pickle'] = True\nnp.load('f', **options)",
        "forbidden-keyword"),
    "a metaclass through **": ("class A(**options):\n    pass", "forbidden-keyword"),
    "a forbidden keyword in a constant dict": ("np.load('f', **{'allow_pickle': True})",
                                               "forbidden-keyword"),
    # graphs built by hand and imported where no Python runs
    "a graph by hand": ("g = tf.Graph()", "forbidden-attribute"),
    "a graph imported": ("tf.graph_util.import_graph_def(d)", "forbidden-attribute"),
    "a graph's definition": ("d = g.as_graph_def()", "forbidden-attribute"),
    "placeholders": ("x = tf.raw_ops.Placeholder(dtype=tf.float32)", "forbidden-attribute"),
    # graphs that run without Python: saved and reloaded, or called by name
    "saved graph": ("tf.saved_model.save(m, 'm')\nf = tf.saved_model.load('m')",
                    "forbidden-attribute"),
    "saved graph as a layer": ("layer = keras.layers.TFSMLayer('m')", "forbidden-attribute"),
    "function called by name": ("tf.raw_ops.PartitionedCall(args=[x], Tout=[tf.float32], f=f)",
                                "forbidden-attribute"),
}


@pytest.mark.parametrize("name", list(REACHING))
def test_chains_from_modules_and_string_attribute_apis_are_violations(name):
    source, rule = REACHING[name]
    found = check_cell(source, EXTRA, SETUP)
    assert rule in {v.rule for v in found}, (name, [str(v) for v in found])


def test_matplotlib_string_module_is_out_of_reach():
    found = check_cell("import matplotlib.ticker\n"
                       "f = matplotlib.ticker.string.Formatter()", EXTRA)
    assert "module-reach" in {v.rule for v in found}


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_code_passes_with_the_setup_names_too(name):
    assert check_cell(HONEST[name], EXTRA, SETUP) == [], name


def release_bindings():
    """What each notebook's locked cells bind with imports (the names student cells see)."""
    import nbformat

    from gancourse.autograde.policy import imported_modules
    from gancourse.build import pipeline

    found = {}
    for assignment in pipeline.assignments():
        nb = nbformat.read(pipeline.COURSE / "source" / assignment / f"{assignment}.ipynb", 4)
        modules = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("locked") and not meta.get("solution"):
                modules.update(imported_modules(cell.source))
        found[assignment] = modules
    return found


def test_every_name_the_notebooks_bind_to_a_module_out_of_reach_is_refused():
    """Whatever a notebook's own cells import, a student cell that uses a name bound to a
    module outside the allowed packages (os in most setups) breaks the policy; the names
    bound to the numerical libraries, gantools and the notebooks' budgets do not."""
    from gancourse.autograde.policy import REACHABLE_MODULES, REACHABLE_PACKAGES

    def reachable(module):
        if any(module.startswith(m + ".") for m in REACHABLE_MODULES):
            return True  # budget, describe_mode, ... (gancourse.modes)
        return module.split(".")[0] in REACHABLE_PACKAGES

    for assignment, modules in release_bindings().items():
        out_of_reach = [name for name, module in modules.items() if not reachable(module)]
        assert set(out_of_reach) <= {"os", "load"}, (assignment, modules)
        for name in out_of_reach:
            found = check_cell(f"x = {name}", ANSWER, modules)
            assert "module-reach" in {v.rule for v in found}, (assignment, name)
        for name in set(modules) - set(out_of_reach):
            assert check_cell(f"x = {name}", ANSWER, modules) == [], (assignment, name)


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_code_passes_with_every_notebooks_own_names(name):
    for assignment, modules in release_bindings().items():
        assert check_cell(HONEST[name], EXTRA, modules) == [], (assignment, name)


@pytest.mark.parametrize("bindings, source", [
    ({"load": "gancourse.checks.load"}, "x = load"),
    ({"load": "gantools.grading.load"}, "x = load"),  # the compatibility alias
    ({"gk": "gantools.kernel"}, "x = gk"),
    ({"build": "gancourse.build"}, "x = build.pipeline"),
    ({"modes": "gancourse.modes"}, "modes.os.system('id')"),  # through a reachable module
    ({"course": "gantools.course"}, "course.budget.__globals__"),
])
def test_the_course_machinery_is_out_of_reach_but_for_the_budgets(bindings, source):
    assert {v.rule for v in check_cell(source, ANSWER, bindings)} & {
        "module-reach", "dunder", "dunder-attribute"}, source


def test_the_notebooks_budgets_stay_usable_in_student_cells():
    bindings = {"budget": "gancourse.modes.budget", "modes": "gancourse.modes",
                "old_budget": "gantools.course.budget"}
    assert not check_cell("steps = budget(100, short=2) + modes.budget(3, 1) + "
                          "old_budget(1, 1)", EXTRA, bindings)
