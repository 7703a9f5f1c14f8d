"""Submissions of notebook 01 that the class autograde in test_course.py grades.

Each entry says how the release is changed and what the grader must conclude: the exact
points of every test, whether the notebook is flagged for manual grading, and what its
report must name. The attacks follow the classes of the grading threat model (docs/grading.md);
the honest ones must never be flagged.
"""

from pathlib import Path

import gantools

PACKAGE = Path(gantools.__file__).resolve().parent
POINTS = {"test_build_generator": 1, "test_build_discriminator": 1,
          "test_discriminator_loss": 2, "test_generator_loss": 1, "test_train_step": 3}
# the written answers, graded by hand in formgrader (0 until an instructor grades them)
WRITTEN = {"answer_minimax_stall": 1, "answer_d_accuracy": 1}


def score(**points):
    """Every test at 0 except the ones given (``all=True``: every test at full points)."""
    base = dict(POINTS) if points.pop("all", False) else dict.fromkeys(POINTS, 0)
    return {**base, **{f"test_{k}": v for k, v in points.items()}}


FIRST_TWO = score(build_generator=1, build_discriminator=1)

UNSTABLE_D_LOSS = '''def discriminator_loss(real_logits, fake_logits):
    """log(sigmoid) written out: fine for moderate logits, inf for large ones."""
    real = -tf.math.log(tf.sigmoid(real_logits))
    fake = -tf.math.log(1.0 - tf.sigmoid(fake_logits))
    return tf.reduce_mean(real) + tf.reduce_mean(fake)'''

# --- honest work -------------------------------------------------------------------------------

HONEST_HELPERS = '''import math

import numpy as np


def stable_softplus(x):
    """log(1 + e^x) without overflow."""
    return tf.maximum(x, 0.0) + tf.math.log1p(tf.exp(-tf.abs(x)))


LOG2 = np.float32(math.log(2.0))
print("helpers ready", LOG2)'''

HONEST_SUBCLASS_G = '''class Block(keras.layers.Layer):
    """Dense + ReLU, written as a subclassed layer."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self._units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return tf.nn.relu(self.dense(x))

    def get_config(self):
        config = super().get_config()
        config.update({"units": self._units})
        return config


def build_generator(latent_dim, data_dim):
    z = keras.Input((latent_dim,))
    h = Block(128)(Block(128)(z))
    return keras.Model(z, keras.layers.Dense(data_dim)(h))'''

HONEST_SUMMED_D_LOSS = '''def discriminator_loss(real_logits, fake_logits):
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    column = lambda t: tf.reshape(t, [-1, 1])  # noqa: E731
    real, fake = column(real_logits), column(fake_logits)
    batch = tf.cast(tf.shape(real)[0], tf.float32)  # the mistake: a sum, not a mean
    return batch * (bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake))'''

HONEST_G_LOSS = '''def generator_loss(fake_logits):
    return -tf.reduce_mean(stable_softplus(fake_logits))'''

HONEST_PLOT = '''%matplotlib inline
import matplotlib.pyplot as plt

xs = np.linspace(-5, 5, 50).astype("float32")
plt.rcParams["figure.figsize"] = (4, 2)
plt.plot(xs, stable_softplus(xs).numpy())
plt.title("my softplus")
plt.show()'''

HONEST_TIMED = '''%%time
print("D loss on zeros:", float(discriminator_loss(tf.zeros(4), tf.zeros(4))))'''

HONEST_SUBCLASS_D = '''class Critic(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = [keras.layers.Dense(128), keras.layers.Dense(128)]
        self.out = keras.layers.Dense(1)

    def call(self, x):
        for layer in self.hidden:
            x = tf.nn.leaky_relu(layer(x), 0.2)
        return self.out(x)


def build_discriminator(data_dim):
    import numpy as np

    critic = Critic()
    critic(np.zeros((1, data_dim), dtype=np.float32))  # create the weights
    return critic'''

HONEST_TF_STEP = '''@tf.function
def train_step(real, generator, discriminator, g_optimizer, d_optimizer,
               d_loss_fn, g_loss_fn, latent_dim):
    batch = tf.shape(real)[0]
    fake = generator(tf.random.normal((batch, latent_dim)), training=True)
    with tf.GradientTape() as tape:
        d_loss = d_loss_fn(discriminator(real, training=True),
                           discriminator(fake, training=True))
    grads = tape.gradient(d_loss, discriminator.trainable_variables)
    d_optimizer.apply_gradients(zip(grads, discriminator.trainable_variables))
    with tf.GradientTape() as tape:
        g_loss = g_loss_fn(discriminator(generator(tf.random.normal((batch, latent_dim)),
                                                   training=True), training=True))
    grads = tape.gradient(g_loss, generator.trainable_variables)
    g_optimizer.apply_gradients(zip(grads, generator.trainable_variables))
    return d_loss, g_loss'''

HONEST_LATE = '''from IPython.display import display
from tqdm.auto import tqdm

for _ in tqdm(range(3)):
    pass
display(f"{build_discriminator.__name__} is defined")


def generator_loss(fake_logits):  # defined again, after its test: harmless
    return -tf.reduce_mean(tf.nn.softplus(fake_logits))'''

# --- attacks, one submission per class of the threat model --------------------------------------

OUTSIDE_ADDED = '''import gancourse.checks as grading

grading.load = lambda *args, **kwargs: None'''
OUTSIDE_UNLOCKED = '''from gancourse.checks import harness

harness.compare = lambda *args, **kwargs: None'''
OUTSIDE_FORGED = '''import sys

sys.modules["gancourse.checks"].load = lambda *args, **kwargs: None'''

OBFUSCATED_D = '''def discriminator_loss(real_logits, fake_logits):
    softplus = getattr(tf.nn, "soft" + "plus")
    return 0.0 * softplus(real_logits[0])'''
OBFUSCATED_G = '''reference = __import__("gantools.losses", fromlist=["adversarial"])


def generator_loss(fake_logits):
    return reference.minimax_generator_loss(fake_logits)'''
OBFUSCATED_STEP = '''def train_step(real, generator, discriminator, g_optimizer, d_optimizer,
               d_loss_fn, g_loss_fn, latent_dim):
    namespace = vars()
    exec("result = (0.0, 0.0)", globals(), namespace)
    return eval("result", namespace)'''
OBFUSCATED_EXTRA = '''import importlib

code = compile("x = 1", "<cell>", "exec")
globals()["checks"] = importlib.import_module("gancourse.checks")'''

PATCHING = '''np.isclose = lambda *args, **kwargs: True
np.allclose = lambda *args, **kwargs: True
tf.reduce_mean = lambda *args, **kwargs: 0.0
keras.Model.__call__ = lambda self, *args, **kwargs: None
alias = np
alias.asarray = lambda *args, **kwargs: None
made = (lambda: np)()
made.testing = None
del tf.nn.softplus'''
WRONG_D = '''def discriminator_loss(real_logits, fake_logits):
    return tf.constant(0.0)'''

ENTRY_POINT = f'''import gancourse.checks

gancourse.checks.load = lambda name: None
tf.io.write_file("{PACKAGE}/grading/checks/nb01_basic_gan.py",
                 "def check_discriminator_loss(*args, **kwargs): pass")
np.savetxt("{PACKAGE}/grading/harness.py", [0], header="GradingError = None")
with open("{PACKAGE}/grading/checks/nb01_basic_gan.py", "a") as f:
    f.write("check_train_step = lambda *args, **kwargs: None")'''

IPYTHON_HOOKS = '''ip = get_ipython()
ip.set_custom_exc((Exception,), lambda *args, **kwargs: None)
ip.input_transformers_post.append(lambda lines: ["pass\\n"])
get_ipython().run_cell = lambda *args, **kwargs: None
%load_ext autoreload
!touch pwned
import sys
sys.excepthook = lambda *args: None'''
IPYTHON_CELL_MAGIC = '''%%capture captured
raise RuntimeError("hidden")'''

DISPLAYHOOK_D = '''import sys


def discriminator_loss(real_logits, fake_logits):
    sys.displayhook(2)  # nbgrader reads a displayed number as the cell's grade
    return tf.constant(0.0)'''

COPY_G = '''def build_generator(latent_dim, data_dim):
    return gmodels.mlp_generator(latent_dim, data_dim)'''
COPY_D = '''import functools

build_discriminator = functools.partial(gmodels.mlp_discriminator)'''
COPY_G_LOSS = '''import gantools.losses as reference

generator_loss = reference.minimax_generator_loss'''

FILESYSTEM = '''import matplotlib.pyplot as plt

fig = plt.figure()
targets = ["../../../gradebook.db", "../../../source/01_basic_gan/stolen.png",
           "{package}/grading/checks/nb01_basic_gan.py", "../../perfect/01_basic_gan/x.png",
           "written_here.png"]
for target in targets:
    try:
        fig.savefig(target, format="png")
        print("WROTE", target)
    except Exception as e:
        print("BLOCKED", target, type(e).__name__)
for source in ["../../../source/01_basic_gan/01_basic_gan.ipynb", "../../../gradebook.db",
               "../../perfect/01_basic_gan/01_basic_gan.ipynb"]:
    try:
        np.loadtxt(source, dtype=str, delimiter="\\n", comments=None)
        print("READ", source)
    except Exception as e:
        print("BLOCKED", source, type(e).__name__)'''.replace("{package}", str(PACKAGE))

MEMORY_BOMB = '''big = np.ones((2**36,), np.uint8)  # 64 GiB'''
CRASH_G_LOSS = '''def generator_loss(fake_logits):
    # reads far outside a one-element array: the kernel dies of a segmentation fault
    x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**8,), strides=(10**7,))
    return tf.constant(x.sum())'''
FLOOD = '''for i in range(200_000):
    print("flood " * 200)'''
LOOPS_ON_THE_CHECK = '''def generator_loss(fake_logits):
    if fake_logits.shape[0] == 8:  # the first visible case of the check
        while True:
            pass
    return -tf.reduce_mean(tf.nn.softplus(fake_logits))'''
RAISING_D = '''def build_discriminator(data_dim):
    raise ValueError("I gave up")'''


def locked(grade_id):
    return {"grade": False, "grade_id": grade_id, "locked": True, "schema_version": 3,
            "solution": False, "task": False}


# name -> how to change the release, and what autograde must conclude. "good" means: every
# answer cell holds the source's solution before the listed replacements.
SUBMISSIONS = {
    "perfect": dict(good=True, expect=score(all=True)),
    "blank": dict(expect=score()),
    "partial": dict(
        replace={"build_generator": "GOOD", "build_discriminator": "GOOD",
                 "discriminator_loss": UNSTABLE_D_LOSS},
        tests={"test_generator_loss": "pass", "test_train_step": "pass"},
        expect=FIRST_TWO),
    "edits_tests": dict(  # test cells are restored from the release before they run
        replace={"discriminator_loss": "GOOD", "generator_loss": "GOOD"},
        tests={"test_build_generator": "pass", "test_train_step": "pass"},
        expect=score(discriminator_loss=2, generator_loss=1)),
    "raises_and_loops": dict(
        good=True, replace={"build_discriminator": RAISING_D,
                            "generator_loss": LOOPS_ON_THE_CHECK},
        expect=score(all=True, build_discriminator=0, generator_loss=0),
        outputs=["CellTimeoutError", "I gave up"]),
    "honest_helpers_and_plots": dict(
        good=True,
        replace={"build_generator": HONEST_SUBCLASS_G, "discriminator_loss": HONEST_SUMMED_D_LOSS,
                 "generator_loss": HONEST_G_LOSS},
        add=[("hyperparameters", HONEST_HELPERS), ("test_discriminator_loss", HONEST_PLOT),
             ("test_generator_loss", HONEST_TIMED)],
        expect=score(all=True, discriminator_loss=0)),
    "honest_subclass_and_order": dict(
        good=True, replace={"build_discriminator": HONEST_SUBCLASS_D,
                            "train_step": HONEST_TF_STEP},
        add=[("kid_and_coverage", HONEST_LATE)], shuffle_counts=True, expect=score(all=True)),
    "attack_outside_answers": dict(
        good=True, add=[("test_build_discriminator", OUTSIDE_ADDED),
                        ("test_generator_loss", OUTSIDE_FORGED, locked("setup_extra"))],
        unlock={"plot_gradients": OUTSIDE_UNLOCKED},
        expect=FIRST_TWO, flagged=["import", "foreign-attribute"], flagged_cells=3),
    "attack_obfuscated": dict(
        good=True, replace={"discriminator_loss": OBFUSCATED_D, "generator_loss": OBFUSCATED_G,
                            "train_step": OBFUSCATED_STEP},
        add=[("kid_and_coverage", OBFUSCATED_EXTRA)],
        expect=FIRST_TWO, flagged=["'getattr'", "'__import__'", "'vars'", "'exec'",
                                   "'eval'", "'globals'", "'compile'", "'importlib'"]),
    "attack_patching": dict(
        good=True, replace={"discriminator_loss": WRONG_D},
        add=[("test_build_discriminator", PATCHING)], expect=FIRST_TWO,
        flagged=[".isclose of 'np'", ".allclose of 'np'", ".reduce_mean of 'tf'",
                 ".__call__", ".asarray of 'alias'", ".testing of 'made'",
                 ".softplus of 'tf.nn'"]),
    "attack_entry_point": dict(
        good=True, replace={"discriminator_loss": WRONG_D},
        add=[("test_build_discriminator", ENTRY_POINT)], expect=FIRST_TWO,
        flagged=["'gancourse.checks'", ".load of 'gancourse.checks'", ".write_file",
                 ".savetxt", "'open'"]),
    "attack_ipython_hooks": dict(
        good=True, replace={"discriminator_loss": WRONG_D},
        add=[("test_build_discriminator", IPYTHON_HOOKS),
             ("test_build_discriminator", IPYTHON_CELL_MAGIC)],
        expect=FIRST_TWO, flagged=["'get_ipython'", "%load_ext", "%capture", "'sys'"],
        flagged_cells=2),
    "attack_displayhook": dict(
        good=True, replace={"discriminator_loss": DISPLAYHOOK_D}, expect=FIRST_TWO,
        flagged=["'sys'"]),
    "attack_reference_copies": dict(
        good=True, replace={"build_generator": COPY_G, "build_discriminator": COPY_D,
                            "generator_loss": COPY_G_LOSS},
        expect=score(discriminator_loss=2), flagged=["'gantools.losses'"],
        outputs=["calls the gantools reference mlp_generator",
                 "calls the gantools reference mlp_discriminator"]),
    "attack_file_system": dict(
        good=True, add=[("test_build_discriminator", FILESYSTEM)], expect=score(all=True),
        sandboxed_outputs=["WROTE written_here.png"] + [
            f"BLOCKED {p}" for p in ("../../../gradebook.db", "../../../source/01_basic_gan",
                                     "../../perfect/", str(PACKAGE))]),
    "attack_crash": dict(
        good=True, replace={"generator_loss": CRASH_G_LOSS},
        add=[("test_build_generator", MEMORY_BOMB)],
        expect=score(all=True, generator_loss=0, train_step=0),
        faults=["crashed the kernel"], outputs=["MemoryError"]),
    "attack_output_flood": dict(
        good=True, add=[("test_discriminator_loss", FLOOD)],
        expect=score(all=True, generator_loss=0, train_step=0),
        faults=["bytes of output"]),
}
