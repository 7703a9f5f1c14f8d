"""gancourse.checks: the checks, the attacks they must resist, and the nbgrader plug-ins."""

import keras
import nbformat
import numpy as np
import pytest
import tensorflow as tf

import gantools.losses as gl
from gancourse.autograde import plugins
from gancourse.checks import load as load_checks


def load():
    return load_checks("01_basic_gan")


def good_d_loss(real, fake):
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def good_g_loss(fake):
    return -tf.reduce_mean(tf.nn.softplus(fake))


def good_step(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, latent_dim):
    batch = tf.shape(real)[0]
    fake = generator(tf.random.normal((batch, latent_dim)), training=True)
    with tf.GradientTape() as tape:
        d_loss = d_loss_fn(discriminator(real), discriminator(fake))
    d_vars = discriminator.trainable_variables
    d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
    with tf.GradientTape() as tape:
        g_loss = g_loss_fn(discriminator(generator(tf.random.normal((batch, latent_dim)))))
    g_vars = generator.trainable_variables
    g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
    return d_loss, g_loss


def mlp(inputs, outputs, activation=None, hidden="relu"):
    x = keras.Input((inputs,))
    h = keras.layers.Dense(16, activation=hidden)(x)
    return keras.Model(x, keras.layers.Dense(outputs, activation=activation)(h))


def critic(inputs, outputs=1, activation=None):
    """A discriminator as the exercise asks: LeakyReLU hidden layer, logits out."""
    return mlp(inputs, outputs, activation, hidden="leaky_relu")


def fails(check, *args, match, **kwargs):
    with pytest.raises(AssertionError, match=match):
        check(*args, **kwargs)


# --- correct answers pass, visible and hidden ---------------------------------------------

def test_correct_answers_pass_every_check():
    g = load()
    for hidden in (False, True):
        assert g.check_discriminator_loss(good_d_loss, hidden=hidden) is None
        assert g.check_minimax_generator_loss(good_g_loss, hidden=hidden) is None
        assert g.check_generator(lambda z, d: mlp(z, d), hidden=hidden) is None
        assert g.check_discriminator(lambda d: critic(d), hidden=hidden) is None
        assert g.check_train_step(good_step, hidden=hidden) is None
    assert g.check_train_step(tf.function(good_step)) is None


# --- the usual mistakes get a hint ---------------------------------------------------------

@pytest.mark.parametrize("wrong, hint", [
    (lambda r, f: tf.reduce_sum(tf.nn.softplus(-r)) + tf.reduce_sum(tf.nn.softplus(f)),
     "summed over the batch"),
    (lambda r, f: tf.reduce_mean(tf.nn.softplus(r)) + tf.reduce_mean(tf.nn.softplus(-f)),
     "labels are swapped"),
    (lambda r, f: keras.losses.BinaryCrossentropy()(tf.ones_like(r), r)
     + keras.losses.BinaryCrossentropy()(tf.zeros_like(f), f), "from_logits=True"),
    (lambda r, f: good_d_loss(tf.sigmoid(r), tf.sigmoid(f)), "sigmoid twice"),
])
def test_wrong_discriminator_losses_name_the_mistake(wrong, hint):
    fails(load().check_discriminator_loss, wrong, match=f"expected .* got .*{hint}")


def test_hidden_failures_show_no_expected_values():
    unstable = lambda r, f: (-tf.reduce_mean(tf.math.log(tf.sigmoid(r)))  # noqa: E731
                             - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(f))))
    with pytest.raises(AssertionError) as info:
        load().check_discriminator_loss(unstable, hidden=True)
    assert "numerically stable" in str(info.value) and "expected" not in str(info.value)
    wrong = lambda r, f: 2 * good_d_loss(r, f)  # noqa: E731
    with pytest.raises(AssertionError) as info:
        load().check_discriminator_loss(wrong, hidden=True)
    assert "hidden case" in str(info.value) and "expected" not in str(info.value)


def test_generator_loss_mistakes():
    g = load()
    fails(g.check_minimax_generator_loss, lambda f: tf.reduce_mean(tf.nn.softplus(-f)),
          match="non-saturating")
    fails(g.check_minimax_generator_loss, lambda f: tf.zeros((3,)), match="one number")


def test_model_mistakes():
    g = load()
    fails(g.check_discriminator, lambda d: critic(d, 1, "sigmoid"), match="ends in a sigmoid")
    fails(g.check_discriminator, lambda d: critic(d, 2), match=r"expected \(1, 1\)")
    fails(g.check_generator, lambda z, d: mlp(z, 5), match="expected")
    fails(g.check_generator, lambda z, d: (_ for _ in ()).throw(NotImplementedError),
          match="not implemented yet")


def test_train_step_mistakes():
    g = load()

    def updates_both(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k):
        both = discriminator.trainable_variables + generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = generator(tf.random.normal((tf.shape(real)[0], k)))
            d_loss = d_loss_fn(discriminator(real), discriminator(fake))
        d_opt.apply_gradients(zip(tape.gradient(d_loss, both), both, strict=True))
        return good_step(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k)

    fails(g.check_train_step, updates_both,
          match="exactly one update|other model|not the discriminator's")

    def gradient_ascent(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k):
        return good_step(real, generator, discriminator, g_opt, d_opt,
                         lambda r, f: -d_loss_fn(r, f), g_loss_fn, k)

    fails(g.check_train_step, gradient_ascent, match="discriminator update does not follow")


# --- attacks -----------------------------------------------------------------------------------

def test_calling_the_reference_under_any_alias_fails():
    from gantools.losses import discriminator_loss as alias

    g = load()
    fails(g.check_discriminator_loss, lambda r, f: gl.discriminator_loss(r, f),
          match="calls the gantools reference discriminator_loss")
    fails(g.check_discriminator_loss, lambda r, f: alias(r, f), match="gantools reference")
    fails(g.check_minimax_generator_loss, gl.minimax_generator_loss, match="gantools reference")
    # the reference works again afterwards
    np.testing.assert_allclose(float(gl.discriminator_loss(np.zeros(2), np.zeros(2))),
                               2 * np.log(2), rtol=1e-6)


def test_rebinding_the_reference_does_not_fool_the_check(monkeypatch):
    def wrong(real, fake):
        return 2 * good_d_loss(real, fake)

    monkeypatch.setattr(gl, "discriminator_loss", wrong)
    import gantools.losses.adversarial as adversarial

    monkeypatch.setattr(adversarial, "discriminator_loss", wrong)
    fails(load().check_discriminator_loss, wrong, match="expected")


def test_patching_a_grading_helper_does_not_fool_a_fresh_load():
    patched = load()
    patched.check_discriminator_loss = lambda *a, **k: None
    patched._compare = lambda *a, **k: None
    fails(load().check_discriminator_loss, lambda r, f: 0 * r[0], match="expected")


# --- nbgrader plug-ins ------------------------------------------------------------------------

def _cell(source, **meta):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, **meta}
    return cell


def test_plugins_are_enabled_when_nbconvert_registers_them():
    """nbconvert silently skips a registered preprocessor whose `enabled` is False."""
    from nbconvert.exporters import NotebookExporter

    exporter = NotebookExporter()
    names = ("plugins.EnforcePolicy", "plugins.ScoreStrictly",
             "plugins.ForgetUnknownCells", "plugins.VerifyValues",
             "plugins.FlagForManualGrading", "plugins.RedactHiddenTests",
             "execute.SandboxedExecute")
    for name in names:
        exporter.register_preprocessor(f"gancourse.autograde.{name}")
    registered = {type(p).__name__: p.enabled for p in exporter._preprocessors}
    assert all(registered[n.split(".")[1]] for n in names), registered


def test_feedback_redaction_removes_hidden_tests_and_tracebacks():
    source = ('"""Check it."""\nload().check(f)\n### BEGIN HIDDEN TESTS\n'
              'load().check(f, hidden=True)\n### END HIDDEN TESTS')
    cell = _cell(source, grade=True, solution=False, grade_id="t", points=1)
    cell.outputs = [
        nbformat.v4.new_output("error", ename="GradingError",
                               evalue="f disagrees with the reference on a hidden case",
                               traceback=["----> 4 load().check(f, hidden=True)", "..."]),
        nbformat.v4.new_output("stream", name="stderr", text="hidden=True warning"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    out, _ = plugins.RedactHiddenTests().preprocess(nb, {})
    text = nbformat.writes(out)
    assert "HIDDEN" not in text and "hidden=True" not in text
    assert out.cells[0].source == '"""Check it."""\nload().check(f)'
    assert out.cells[0].outputs[0]["traceback"] == [
        "A test failed. GradingError: f disagrees with the reference on a hidden case"]


def test_hidden_model_checks_do_not_reveal_their_sizes():
    def fixed(latent_dim, data_dim):  # ignores data_dim: passes the visible sizes only
        return mlp(latent_dim, 2)

    load().check_generator(fixed)
    with pytest.raises(AssertionError) as info:
        load().check_generator(fixed, hidden=True)
    assert "hidden check" in str(info.value)
    assert not any(ch.isdigit() for ch in str(info.value))


# --- the tripwire and the loader, against every way of holding a copy of a reference ---------

def test_tripwire_catches_rebuilt_traced_and_partial_copies():
    import functools
    import types

    rebuilt = types.FunctionType(gl.discriminator_loss.__code__, {"tf": tf})
    traced = tf.function(gl.discriminator_loss)
    traced(tf.zeros(2), tf.zeros(2))  # traced before the check: the graph exists
    partial = functools.partial(gl.discriminator_loss)
    for copy in (rebuilt, traced, partial, gl.get_loss("non-saturating").d):
        fails(load().check_discriminator_loss, lambda r, f, c=copy: c(r, f),
              match="calls the gantools reference discriminator_loss")


def test_tripwire_traps_closures_and_catching_the_error_does_not_help():
    from gancourse.checks import harness

    def factory(scale):
        def inner(x):
            return scale * x
        return inner

    closure = factory(3)
    calls = []
    original = closure.__code__
    closure.__code__ = harness._trap_code(original, calls.append)
    closure(1)
    closure.__code__ = original
    assert calls == [original.co_qualname] and closure(2) == 6

    def swallows(real, fake):
        try:
            return gl.discriminator_loss(real, fake)
        except AssertionError:
            return good_d_loss(real, fake)

    fails(load().check_discriminator_loss, swallows, match="gantools reference")


def test_tripwire_allows_only_the_named_file_and_qualname_prefix():
    """An exercise may build with gantools' SpectralNorm; everything else still trips, and
    the permission is read from where code was compiled, not from names a notebook binds."""
    import keras

    from gancourse.checks import harness
    from gantools.models import SpectralNorm

    allow = (("gantools.models.layers", "SpectralNorm."),)
    x = tf.ones((2, 3))
    with harness.student_code("build", allow):
        layer = SpectralNorm(keras.layers.Dense(2), normalize=lambda k, u: (k / 2.0, u))
        layer(x, training=True)
    with pytest.raises(AssertionError, match="calls the gantools reference spectral_normalize"):
        with harness.student_code("build", allow):
            SpectralNorm(keras.layers.Dense(2))(x)  # the default path runs gantools' own
    with pytest.raises(AssertionError, match="calls the gantools reference discriminator_loss"):
        with harness.student_code("build", allow):
            gl.discriminator_loss(x, x)
    with pytest.raises(AssertionError, match="calls the gantools reference"):
        with harness.student_code("build", (("gantools.losses.adversarial", "SpectralNorm."),)):
            SpectralNorm(keras.layers.Dense(2))


def test_every_gantools_module_is_guarded_except_the_grading_code():
    import importlib
    import inspect
    import pkgutil
    import types

    import gantools
    from gancourse.checks import harness

    names = [m.name for m in pkgutil.walk_packages(gantools.__path__, "gantools.")
             if not m.name.endswith("__main__")]
    modules = {name: importlib.import_module(name) for name in names}
    guarded = {id(f) for f in harness.guarded_functions()}
    for name, module in modules.items():
        own = [inspect.unwrap(f) for f in vars(module).values()  # decorators: the original
               if isinstance(f, types.FunctionType) and f.__module__ == name]
        if name.startswith("gancourse.checks"):
            assert not any(id(f) in guarded for f in own), name
        else:
            assert all(id(f) in guarded for f in own), name
    assert "gantools.models.layers" in names and "gantools.metrics.distances" in names


def test_loaded_checks_expose_only_check_functions_each_armed_whole():
    """Every public check is declared with harness.check (the tripwire armed from its first
    line to its last); nothing else is public but the grader's entry points."""
    import types

    from gancourse.checks import assignments_with_checks

    for assignment in assignments_with_checks():
        module = load_checks(assignment)
        public = {k: v for k, v in vars(module).items() if not k.startswith("_")}
        for name, value in public.items():
            assert (name.startswith("check_") and getattr(value, "armed", False)) or name in (
                "expected", "VERIFIED", "CELL_ALLOW") or isinstance(value, types.ModuleType) and (
                value.__name__ in ("numpy", "tensorflow")), name
        assert set(getattr(module, "VERIFIED", ())) <= set(public)


def test_load_compiles_the_source_not_a_cached_copy_and_names_unknown_assignments():
    import sys

    first, second = load(), load()
    assert first is not second and first.check_train_step is not second.check_train_step
    assert not [m for m in sys.modules if m.startswith("_gantools_grading_")]
    with pytest.raises(LookupError, match="01_basic_gan"):
        load_checks("99_missing")


def test_reference_functions_lent_to_a_train_step_die_with_the_check():
    stash = []

    def thief(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k):
        stash.append((d_loss_fn, g_loss_fn))
        return good_step(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k)

    load().check_train_step(thief)
    for lent in stash[0]:
        with pytest.raises(AssertionError, match="works only while that check runs"):
            lent(tf.zeros(2))


def test_hidden_inputs_come_from_fresh_entropy_not_from_seeds_in_the_source():
    from gancourse.checks import harness

    assert harness.hidden_seed(7, hidden=False) == 7
    assert len({harness.hidden_seed(7, hidden=True) for _ in range(4)}) > 1


# --- hints for the usual mistakes of notebook 01's exercises -----------------------------------

def step_with(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k,
              batch=None, swap=False, g_first=False, fake_outside=False, opt_for_g=None):
    """A train step with one chosen mistake (all False: correct)."""
    n = batch or tf.shape(real)[0]

    def d_step():
        fake = generator(tf.random.normal((n, k)))
        with tf.GradientTape() as tape:
            logits = (discriminator(fake), discriminator(real)) if swap else (
                discriminator(real), discriminator(fake))
            d_loss = d_loss_fn(*logits)
        d_vars = discriminator.trainable_variables
        d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        return d_loss

    def g_step():
        fake = generator(tf.random.normal((n, k))) if fake_outside else None
        with tf.GradientTape() as tape:
            fake = fake if fake_outside else generator(tf.random.normal((n, k)))
            g_loss = g_loss_fn(discriminator(fake))
        g_vars = generator.trainable_variables
        grads = tape.gradient(g_loss, g_vars)
        (opt_for_g or g_opt).apply_gradients(zip(grads, g_vars, strict=True))
        return g_loss

    if g_first:
        g_loss = g_step()
        return d_step(), g_loss
    d_loss = d_step()
    return d_loss, g_step()


def stale_step(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, k):
    """Both losses on one persistent tape, before D's update: G follows the old D."""
    n = tf.shape(real)[0]
    with tf.GradientTape(persistent=True) as tape:
        d_loss = d_loss_fn(discriminator(real),
                           discriminator(generator(tf.random.normal((n, k)))))
        g_loss = g_loss_fn(discriminator(generator(tf.random.normal((n, k)))))
    d_vars, g_vars = discriminator.trainable_variables, generator.trainable_variables
    d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
    g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
    return d_loss, g_loss


@pytest.mark.parametrize("mistake, hint", [
    (dict(fake_outside=True), "including G\\(z\\)"),
    (dict(batch=64), "draw z with tf.shape\\(real\\)\\[0\\] rows"),
    (dict(swap=True), "arguments are swapped"),
    (dict(g_first=True), "G was updated before D"),
])
def test_train_step_mistakes_get_a_hint(mistake, hint):
    def step(*args):
        return step_with(*args, **mistake)

    fails(load().check_train_step, step, match=hint)


def test_train_step_optimizer_and_stale_d_mistakes_get_a_hint():
    def wrong_optimizer(real, generator, discriminator, g_opt, d_opt, d_fn, g_fn, k):
        return step_with(real, generator, discriminator, g_opt, d_opt, d_fn, g_fn, k,
                         opt_for_g=d_opt)

    fails(load().check_train_step, wrong_optimizer,
          match="d_optimizer was given variables that are not the discriminator's")
    fails(load().check_train_step, stale_step, match="weights from before the D update")
    load().check_train_step(step_with)  # no mistake: passes


def test_model_rules_of_the_exercise_text_are_checked_visibly():
    def sequential_without_input(latent_dim, data_dim):
        return keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(data_dim)])

    fails(load().check_generator, sequential_without_input,
          match=r"keras.Input\(shape=\(latent_dim,\)\)")
    fails(load().check_generator, lambda z, d: mlp(z, d, "tanh"), match="ends in tanh")
    fails(load().check_discriminator, lambda d: mlp(d, 1), match="uses ReLU")

    def leaky(data_dim):
        x = keras.Input((data_dim,))
        h = keras.layers.LeakyReLU(0.2)(keras.layers.Dense(16)(x))
        return keras.Model(x, keras.layers.Dense(1)(h))

    load().check_discriminator(leaky)


@pytest.mark.parametrize("notebook, check", [
    ("01_basic_gan", "check_discriminator"), ("02_gan_tricks", "check_dcgan_generator"),
    ("03_wgan", "check_critic_builder"), ("05_spectral_norm", "check_sn_critic")])
def test_a_sequential_without_input_gets_the_input_hint_in_every_builder_check(notebook, check):
    # the check's own forward passes would build such a model; the hint must come first
    def sequential_without_input(*args, **kwargs):
        return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(1)])

    fails(getattr(load_checks(notebook), check), sequential_without_input,
          match=r"has none yet.*keras.Input\(shape=\(")


def test_visible_loss_checks_include_large_logits():
    unstable = lambda r, f: (-tf.reduce_mean(tf.math.log(tf.sigmoid(r)))  # noqa: E731
                             - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(f))))
    fails(load().check_discriminator_loss, unstable, match="numerically stable")
    fails(load().check_minimax_generator_loss,
          lambda f: tf.reduce_mean(tf.math.log(1 - tf.sigmoid(f))), match="numerically stable")


def test_a_passing_check_says_so_in_one_line(capsys):
    load().check_discriminator_loss(good_d_loss)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "discriminator_loss agrees" in out


def test_a_failing_check_shows_its_message_without_the_grading_code():
    import contextlib
    import io

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(tf=tf, load=load)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = shell.run_cell("load().check_discriminator_loss("
                                "lambda r, f: tf.reduce_sum(r) * 0)")
    text = buffer.getvalue()
    assert result.error_in_exec is not None
    assert "GradingError: discriminator_loss on random logits" in text
    assert "harness.py" not in text and "nb01_basic_gan.py" not in text


# --- references kept, backward passes, graphs: the whole check is guarded -------------------

def test_a_lent_reference_kept_beyond_its_check_trips_in_every_other_check():
    """A student's step can read the reference out of a lent function (its closure) and
    keep it; it carries its check's token in its file name, so it trips in any other check,
    rebuilt from its code or not, and the lent function itself is dead."""
    import types

    kept, lent = [], []

    def thief(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn, latent_dim):
        lent.append(d_loss_fn)
        kept.extend(c.cell_contents for c in d_loss_fn.__closure__
                    if isinstance(c.cell_contents, types.FunctionType))
        return good_step(real, generator, discriminator, g_opt, d_opt, d_loss_fn, g_loss_fn,
                         latent_dim)

    load().check_train_step(thief)
    (reference,) = [f for f in kept if f.__name__ == "discriminator_loss"]
    rebuilt = types.FunctionType(reference.__code__, reference.__globals__)
    for copy in (reference, rebuilt):
        for hidden in (False, True):
            fails(load().check_discriminator_loss, lambda r, f, c=copy: c(r, f), hidden=hidden,
                  match="calls the gantools reference discriminator_loss")
    fails(load().check_discriminator_loss, lambda r, f: lent[0](r, f),
          match="works only while that check runs")


def test_a_backward_pass_that_runs_the_reference_trips():
    """A tf.custom_gradient whose backward calls gantools: the gradient is taken while the
    check runs, and the whole check is guarded."""
    from test_grading_07 import translate_pad

    import gantools.augment as ga

    def translate(images, dx, dy):
        @tf.custom_gradient
        def moved(x):
            def backward(upstream):
                return ga.translate_integer(upstream, -dx, -dy, fill="constant")
            return translate_pad(x, dx, dy), backward
        return moved(images)

    fails(load_checks("07_ada").check_translate, translate,
          match="calls the gantools reference translate_integer")


# --- what layers compute, told by behaviour: the harness's helpers against NumPy ----------------

def _harness():
    from gancourse.checks import harness
    return harness


class Passthrough(keras.layers.Layer):
    """A do-nothing layer; the tests below also give copies of it other class names."""

    def call(self, x):
        return x


def named(cls, name):
    """A subclass of ``cls`` called ``name``: a class name tells nothing."""
    return type(name, (cls,), {})


class Centre(keras.layers.Layer):
    """Subtracts the batch mean and keeps a moving mean: centred, not normalized."""

    def build(self, shape):
        self.mean = self.add_weight(shape=(shape[-1],), initializer="zeros", trainable=False)

    def call(self, x, training=False):
        mean = tf.reduce_mean(x, axis=list(range(len(x.shape) - 1)))
        if training:
            self.mean.assign(0.9 * self.mean + 0.1 * mean)
        return x - mean


class FrozenNorm(keras.layers.BatchNormalization):
    """Batch norm that always runs in inference mode: a fixed affine map."""

    def call(self, x, training=None):
        return super().call(x, training=False)


class HandNorm(keras.layers.Layer):
    """Batch norm written out: batch moments per channel, moving averages of them."""

    def build(self, shape):
        c = shape[-1]
        self.gamma = self.add_weight(shape=(c,), initializer="ones")
        self.beta = self.add_weight(shape=(c,), initializer="zeros")
        self.moving = self.add_weight(shape=(2, c), initializer="ones", trainable=False)

    def call(self, x, training=False):
        axes = list(range(len(x.shape) - 1))
        mean, var = tf.nn.moments(x, axes)
        if training:
            self.moving.assign(0.99 * self.moving + 0.01 * tf.stack([mean, var]))
        else:
            mean, var = self.moving[0], self.moving[1]
        return self.gamma * (x - mean) / tf.sqrt(var + 1e-5) + self.beta


def test_normalizes_batch_agrees_with_the_batch_norm_formula():
    """Keras's batch norm (γ, β not 1, 0), a renamed subclass and one written by hand are
    batch norms; Keras's training-mode output is the NumPy formula γ(x-μ)/√(σ²+ε)+β with
    the batch's per-channel moments (float32: 1e-4 relative)."""
    h = _harness()
    rng = np.random.default_rng(3)
    for shape in ((32, 6, 6, 5), (40, 12)):
        x = (rng.standard_normal(shape) * rng.uniform(0.01, 3, shape[-1])
             + rng.uniform(-2, 2, shape[-1])).astype(np.float32)
        for cls in (keras.layers.BatchNormalization, named(keras.layers.BatchNormalization,
                                                           "Anything"), HandNorm):
            layer = cls()
            layer.build(shape)
            for v in layer.trainable_variables:
                v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
            assert h.normalizes_batch(layer, tf.constant(x)), (cls.__name__, shape)
        layer = keras.layers.BatchNormalization(epsilon=1e-3)
        got = layer(tf.constant(x), training=True).numpy()
        flat = x.astype(np.float64).reshape(-1, shape[-1])
        want = (x - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_normalizes_batch_refuses_what_only_looks_or_is_named_like_batch_norm():
    h = _harness()
    x = tf.constant(np.random.default_rng(4).standard_normal((16, 4, 4, 6)).astype(np.float32))
    for layer in (named(Passthrough, "BatchNormalization")(), Centre(), FrozenNorm(),
                  keras.layers.LayerNormalization(), keras.layers.GroupNormalization(groups=6),
                  keras.layers.BatchNormalization(axis=1), keras.layers.ReLU(),
                  keras.layers.Rescaling(0.5, 0.1)):
        layer(x, training=True)  # built
        assert not h.normalizes_batch(layer, x), layer


def test_applied_activation_reads_values_not_names():
    """The kind of what a layer applied last, against NumPy: max(0, xW + b) is a ReLU
    however it is written; a layer holding an activation it does not apply has none."""
    h = _harness()
    rng = np.random.default_rng(5)
    x = tf.constant(rng.standard_normal((32, 6)).astype(np.float32))

    class HardRelu(keras.layers.Dense):
        def call(self, x):
            return tf.nn.relu(super().call(x))

    class Holds(keras.layers.Dense):  # its activation is never applied
        def call(self, x):
            return tf.matmul(x, self.kernel) + self.bias

    cases = [(keras.layers.Lambda(tf.nn.relu), "relu"), (keras.layers.Activation("relu"), "relu"),
             (keras.layers.LeakyReLU(negative_slope=0.0), "relu"), (keras.layers.ReLU(), "relu"),
             (named(keras.layers.LeakyReLU, "Activation")(0.2), "leaky"),
             (keras.layers.Lambda(lambda t: tf.nn.leaky_relu(t, 0.1)), "leaky"),
             (keras.layers.Dense(8, activation="relu"), "relu"),
             (keras.layers.Dense(8, activation="leaky_relu"), "leaky"), (HardRelu(8), "relu"),
             (keras.layers.Dense(8), None), (Holds(8, activation="relu"), None),
             (keras.layers.Activation("tanh"), "other")]
    for layer, want in cases:
        out = layer(x)
        assert h.applied_activation(layer, x, out) == want, (layer, want)
        if isinstance(layer, keras.layers.Dense) and want == "relu":
            kernel, bias = (v.numpy() for v in layer.weights)
            np.testing.assert_allclose(out, np.maximum(x.numpy() @ kernel + bias, 0), rtol=1e-5,
                                       atol=1e-6)


def test_activations_applied_sees_code_between_layers():
    """A ReLU in a subclassed model's call (no layer of its own) is seen between the layers."""
    h = _harness()

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = keras.layers.Dense(8), keras.layers.Dense(3)

        def call(self, x):
            return self.b(tf.reshape(tf.nn.relu(self.a(x)), (-1, 8)))

    net = Net()
    x = tf.constant(np.random.default_rng(6).standard_normal((10, 4)).astype(np.float32))
    net(x)  # built: a first call would also trace the layers while Keras builds them
    records = h.layer_trace(net, x)
    assert [layer for layer, _, _ in h.leaf_records(records)] == [net.a, net.b]
    assert h.activations_applied(records) == [["relu"], []]
    assert h.activations_between(records) == [["relu"], []]


def test_spatial_factor_follows_the_output_size_formulas():
    """Transposed convolution, 'same': out = in·s; 'valid': out = (in-1)·s + k; a strided
    convolution halves; anything but a (batch, H, W, C) map has no factor."""
    h = _harness()
    x = tf.zeros((2, 4, 6, 3))
    cases = [(keras.layers.Conv2DTranspose(5, 4, 2, "same"), (2.0, 2.0)),
             (keras.layers.Conv2DTranspose(5, 4, 2, "valid"), ((3 * 2 + 4) / 4, (5 * 2 + 4) / 6)),
             (keras.layers.UpSampling2D(2), (2.0, 2.0)),
             (keras.layers.Conv2D(5, 3, 2, "same"), (0.5, 0.5)),
             (keras.layers.Flatten(), None)]
    for layer, want in cases:
        assert h.spatial_factor(x, layer(x)) == want, layer


# --- notebook 01's builders: behaviour, fresh models, hidden sizes from the nonce ---------------

def d_with(activation, hidden=2):
    """A discriminator whose hidden layers are followed by ``activation()`` (None: none)."""
    def build(data_dim):
        x = keras.Input((data_dim,))
        h = x
        for _ in range(hidden):
            h = keras.layers.Dense(16)(h)
            h = activation()(h) if activation else h
        return keras.Model(x, keras.layers.Dense(1)(h))
    return build


class ReluDense(keras.layers.Dense):
    """A Dense layer that applies a ReLU it does not declare."""

    def call(self, x):
        return tf.nn.relu(super().call(x))


class ReluNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = keras.layers.Dense(16), keras.layers.Dense(1)

    def call(self, x):
        return self.out(tf.nn.relu(self.hidden(x)))


def d_subclassed_relu(data_dim):
    model = ReluNet()
    model(tf.zeros((1, data_dim)))
    return model


def d_layer_activation(activation):
    """Hidden Dense layers given an activation *layer* as their activation."""
    def build(data_dim):
        x = keras.Input((data_dim,))
        h = keras.layers.Dense(16, activation=activation())(x)
        h = keras.layers.Dense(16, activation=activation())(h)
        return keras.Model(x, keras.layers.Dense(1)(h))
    return build


def d_hidden_relu_dense(data_dim):
    x = keras.Input((data_dim,))
    return keras.Model(x, keras.layers.Dense(1)(ReluDense(16)(x)))


def g_sequential(latent_dim, data_dim):
    model = keras.Sequential()
    model.add(keras.Input((latent_dim,)))
    model.add(keras.layers.Dense(32))
    model.add(keras.layers.ReLU())
    model.add(keras.layers.Dense(data_dim))
    return model


def corpus_answer(name, function):
    """An honest answer of the class corpus (tests/support/corpus_01.py), run from its source."""
    from support import corpus_01

    namespace = {"keras": keras, "tf": tf, "np": np}
    exec(getattr(corpus_01, name), namespace)  # noqa: S102 - the corpus's own test source
    return namespace[function]


HONEST_01 = [
    ("check_generator", lambda z, d: mlp(z, d)),
    ("check_generator", g_sequential),
    ("check_discriminator", lambda d: critic(d)),
    ("check_discriminator", d_with(lambda: keras.layers.LeakyReLU(0.2))),
    ("check_discriminator", d_with(lambda: keras.layers.LeakyReLU())),  # Keras's slope 0.3
    ("check_discriminator", d_with(lambda: named(keras.layers.LeakyReLU, "Renamed")(0.2), 1)),
    ("check_discriminator", d_with(lambda: keras.layers.Lambda(
        lambda t: tf.nn.leaky_relu(t, 0.2)))),
    ("check_discriminator", d_layer_activation(lambda: keras.layers.LeakyReLU(0.2))),
    ("check_discriminator", corpus_answer("HONEST_SUBCLASS_D", "build_discriminator")),
    ("check_generator", corpus_answer("HONEST_SUBCLASS_G", "build_generator")),
]


@pytest.mark.parametrize("check, answer", HONEST_01, ids=[f"{c}-{i}" for i, (c, _) in
                                                          enumerate(HONEST_01)])
def test_honest_builders_pass_hidden_checks_for_many_nonces(check, answer, capsys):
    for nonce in range(10):
        getattr(load(), check)(answer, hidden=True, nonce=nonce)
    getattr(load(), check)(answer)
    assert capsys.readouterr().out.count("✓") == 11


@pytest.mark.parametrize("relu", [
    d_with(lambda: keras.layers.Lambda(tf.nn.relu)),
    d_with(lambda: keras.layers.Activation("relu")),
    d_with(lambda: keras.layers.LeakyReLU(negative_slope=0.0)),
    d_with(lambda: named(keras.layers.ReLU, "LeakyReLU")()), d_subclassed_relu,
    d_hidden_relu_dense, d_layer_activation(keras.layers.ReLU),
], ids=["lambda", "activation", "leaky-slope-0", "renamed", "subclassed-call", "dense-subclass",
        "layer-as-activation"])
def test_a_relu_in_the_discriminator_is_found_however_it_is_written(relu):
    fails(load().check_discriminator, relu, match="uses ReLU")
    # hidden: the message names the slope 0.2, a number, so it is replaced by the generic one
    fails(load().check_discriminator, relu, hidden=True, nonce=3, match="hidden check")


@pytest.mark.parametrize("activation", [None, lambda: keras.layers.Activation("tanh"),
                                        lambda: named(Passthrough, "LeakyReLU")()],
                         ids=["none", "tanh", "passthrough-named-leaky"])
def test_the_discriminator_needs_a_leaky_relu_after_each_hidden_layer(activation):
    fails(load().check_discriminator, d_with(activation), match="not followed by a LeakyReLU")


def _prebuilt(build, *args):
    """A builder that returns the model ``build(*args)`` made before the check, and one
    that caches its models (called once before the check)."""
    import functools

    made = build(*args)
    cached = functools.lru_cache(build)
    cached(*args)
    return [lambda *a: made, cached]


def test_models_built_before_the_check_are_refused():
    for builder in _prebuilt(lambda z, d: mlp(z, d), 4, 2):
        fails(load().check_generator, builder, match="existed before it was called")
    for builder in _prebuilt(lambda d: critic(d), 2):
        fails(load().check_discriminator, builder, match="existed before it was called")


def test_hidden_builder_sizes_come_from_the_nonce():
    checks = load()
    generators = {tuple(checks._generator_configs(n, True)) for n in range(20)}
    discriminators = {checks._discriminator_dims(n, True) for n in range(20)}
    assert len(generators) > 5 and len(discriminators) > 5
    assert checks._generator_configs(7, True) == checks._generator_configs(7, True)
    assert all(2 not in (c[0][1],) for c in generators)  # a data size the visible cases lack
    assert all(2 not in dims for dims in discriminators)
