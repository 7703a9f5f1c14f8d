"""gantools.training: the loop's contract, EMA, history, diagnostics, guards."""

import copy
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import gantools.data as gd
import gantools.models as gm
from gantools import runtime
from gantools.training import METRICS, GANTrainer, History, TrainingDiverged, diagnostics
from gantools.training.ema import clone_generator, ema_update, warmup_decay


@pytest.fixture(scope="module")
def ring():
    return gd.load("ring", batch_size=64)


@pytest.fixture(scope="module")
def digits16():
    return gd.load("digits", batch_size=16, image_size=16)


def small_dcgan(**d_kwargs):
    g = gm.dcgan_generator(16, 1, latent_dim=8, width=8)
    d = gm.dcgan_discriminator(16, 1, width=8, **d_kwargs)
    return g, d


def snapshot(model):
    return [v.numpy().copy() for v in model.variables]


def changed(model, before):
    return [v.path for v, b in zip(model.variables, before, strict=True)
            if not np.array_equal(v.numpy(), b)]


# --- each update touches only its own model ------------------------------------------------

@pytest.mark.parametrize("d_kwargs", [{}, {"normalization": "spectral", "dropout": 0.3,
                                           "minibatch": "stddev"}])
def test_d_step_changes_only_d_and_g_step_only_g(digits16, d_kwargs):
    g, d = small_dcgan(**d_kwargs)
    trainer = GANTrainer(g, d, seed=0)
    it = trainer._iterator_for(digits16)

    @tf.function
    def d_update(batch):
        return trainer._d_update(batch)

    @tf.function
    def g_update(batch):
        return trainer._g_update(batch)

    g0, d0 = snapshot(g), snapshot(d)
    d_update(next(it))
    assert changed(g, g0) == []  # not even G's batch-norm statistics
    assert len(changed(d, d0)) == len(d.variables)
    g0, d0 = snapshot(g), snapshot(d)
    g_update(next(it))
    assert changed(d, d0) == []  # not D's statistics nor its spectral-norm vector u
    assert {v.path for v in g.trainable_variables} <= set(changed(g, g0))


def softplus(x):
    return np.logaddexp(0.0, x)


def adam(model, grads):
    """One step of a fresh Adam(2e-4, β1 = 0.5), the trainer's default."""
    keras.optimizers.Adam(2e-4, beta_1=0.5).apply_gradients(
        zip(grads, model.trainable_variables, strict=True))


@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_one_step_equals_a_hand_written_step(reuse_fakes):
    """One training step against the algorithm written out on copies of the models.

    The noise is replayed from a generator seeded like the trainer's: the D update draws
    z first; the G update draws new noise, or with ``reuse_fakes`` scores the same fakes.
    """
    keras.utils.set_random_seed(1)
    g, d = gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,))
    g0, d0 = keras.models.clone_model(g), keras.models.clone_model(d)
    g0.set_weights(g.get_weights())
    d0.set_weights(d.get_weights())
    real = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    trainer = GANTrainer(g, d, seed=5, ema_decay=None, reuse_fakes=reuse_fakes, diagnose=False)
    history = trainer.fit(tf.data.Dataset.from_tensors(real), 1, progress=False)

    rng = tf.random.Generator.from_seed(5)
    z_d = rng.normal([32, 4])
    z_g = z_d if reuse_fakes else rng.normal([32, 4])
    fake = g0(z_d).numpy()
    with tf.GradientTape() as tape:
        l_real, l_fake = d0(real), d0(fake)
        d_loss = tf.reduce_mean(tf.nn.softplus(-l_real)) + tf.reduce_mean(tf.nn.softplus(l_fake))
    adam(d0, tape.gradient(d_loss, d0.trainable_variables))
    expected_d = softplus(-l_real.numpy()).mean() + softplus(l_fake.numpy()).mean()
    with tf.GradientTape() as tape:
        g_loss = tf.reduce_mean(tf.nn.softplus(-d0(g0(z_g))))  # the updated D
    adam(g0, tape.gradient(g_loss, g0.trainable_variables))

    np.testing.assert_allclose(history["d_loss"][0], expected_d, rtol=1e-5)
    np.testing.assert_allclose(history["g_loss"][0], g_loss.numpy(), rtol=1e-5)
    for model, oracle in ((d, d0), (g, g0)):
        for a, b in zip(model.weights, oracle.weights, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_feature_matching_step_equals_a_hand_written_step():
    """G's feature-matching loss and update against NumPy means of D's activations."""
    keras.utils.set_random_seed(2)
    g, d = gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16, 8))
    g0, d0 = keras.models.clone_model(g), keras.models.clone_model(d)
    g0.set_weights(g.get_weights())
    d0.set_weights(d.get_weights())
    real = np.random.default_rng(1).normal(size=(32, 2)).astype(np.float32)
    trainer = GANTrainer(g, d, seed=3, ema_decay=None, diagnose=False, feature_matching=True)
    history = trainer.fit(tf.data.Dataset.from_tensors(real), 1, progress=False)

    rng = tf.random.Generator.from_seed(3)
    fake_d = g0(rng.normal([32, 4])).numpy()
    with tf.GradientTape() as tape:
        d_loss = tf.reduce_mean(tf.nn.softplus(-d0(real))) + tf.reduce_mean(
            tf.nn.softplus(d0(fake_d)))
    adam(d0, tape.gradient(d_loss, d0.trainable_variables))
    z_g = rng.normal([32, 4])
    acts = [layer.output for layer in d0.layers
            if isinstance(layer, keras.layers.LeakyReLU | keras.layers.ReLU)]
    assert len(acts) == 2
    features = keras.Model(d0.inputs[0], acts)
    with tf.GradientTape() as tape:
        fake_f = features(g0(z_g))
        g_loss = sum(tf.reduce_sum(tf.square(tf.reduce_mean(r, 0) - tf.reduce_mean(f, 0)))
                     for r, f in zip(features(real), fake_f, strict=True))
    adam(g0, tape.gradient(g_loss, g0.trainable_variables))
    expected = sum(np.sum((np.mean(r, 0) - np.mean(f, 0)) ** 2)
                   for r, f in zip((x.numpy().astype(np.float64) for x in features(real)),
                                   (x.numpy().astype(np.float64) for x in fake_f), strict=True))

    np.testing.assert_allclose(history["g_loss"][0], expected, rtol=1e-4)  # float32 sums
    for a, b in zip(g.weights, g0.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_feature_matching_with_chosen_layers_and_bad_options(ring):
    g, d = gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16, 8))
    first = [layer.name for layer in d.layers
                         if isinstance(layer, keras.layers.LeakyReLU)][:1]
    calls = []

    def my_loss(real_features, fake_features):
        calls.append(len(real_features))
        return tf.add_n([tf.reduce_sum(tf.abs(tf.reduce_mean(r, 0) - tf.reduce_mean(f, 0)))
                         for r, f in zip(real_features, fake_features, strict=True)])

    trainer = GANTrainer(g, d, feature_matching=my_loss, feature_layers=first, seed=0)
    trainer.fit(ring, 2, progress=False)
    assert calls == [1] and trainer.step == 2  # traced once, with the one chosen layer
    with pytest.raises(ValueError, match="feature_layers only applies"):
        GANTrainer(g, d, feature_layers=first)
    with pytest.raises(ValueError, match="feature_matching must be"):
        GANTrainer(g, d, feature_matching="yes")
    with pytest.raises(ValueError, match="no layer"):
        GANTrainer(g, d, feature_matching=True, feature_layers=["nope"])


def test_reuse_fakes_with_n_critic_and_a_penalty(ring):
    g, d = gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,))
    trainer = GANTrainer(g, d, loss="wasserstein", n_critic=3, penalty="gp", seed=0,
                         reuse_fakes=True)
    history = trainer.fit(ring, 4, progress=False)
    assert int(trainer.d_optimizer.iterations.numpy()) == 12
    assert int(trainer.g_optimizer.iterations.numpy()) == 4
    assert np.all(np.isfinite(history["g_loss"])) and np.all(history["penalty"] > 0)


def test_n_critic_counts_updates_and_batches(ring):
    g, d = gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,))
    trainer = GANTrainer(g, d, loss="wasserstein", n_critic=3, penalty="gp", seed=0)
    history = trainer.fit(ring, 5, progress=False)
    assert trainer.step == 5 and int(trainer.batches_seen.numpy()) == 15
    assert int(trainer.d_optimizer.iterations.numpy()) == 15
    assert int(trainer.g_optimizer.iterations.numpy()) == 5
    assert len(history) == 5 and np.all(history["penalty"] > 0)


def test_history_records_every_metric(ring):
    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)), seed=0)
    history = trainer.fit(ring, 12, progress=False, every=5)
    for key in history.keys():
        assert history[key].shape == (12,) and np.all(np.isfinite(history[key]))
    for key in ("d_acc_real", "d_acc_fake"):
        assert np.all((history[key] >= 0) & (history[key] <= 1))
    assert np.all(history["penalty"] == 0)
    assert [s for s, _ in history.checks["diversity_ratio"]] == [5, 10, 12]
    np.testing.assert_array_equal(history["step"], np.arange(1, 13))


def test_steps_per_call_gives_the_same_training():
    def train(k):
        keras.utils.set_random_seed(3)
        t = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                       seed=0, steps_per_call=k)
        # a fresh pipeline: a reshuffling dataset object continues its epoch order
        t.fit(gd.load("ring", batch_size=64), 9, progress=False)
        return t

    one, four = train(1), train(4)
    assert four.step == 9
    # Same maths; the looped graph may round differently, while a skipped step or reused
    # noise would change the losses and weights by far more than these tolerances.
    np.testing.assert_allclose(one.history["d_loss"], four.history["d_loss"], rtol=1e-4)
    for a, b in zip(one.generator.weights, four.generator.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_trainer_calls_augment_on_every_discriminator_input(ring):
    calls, observed = [], []

    class Augment:
        def __call__(self, x):
            calls.append(x.shape)
            return x + 0.0

        def observe(self, real_outputs):
            observed.append(real_outputs.shape)

    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                         augment=Augment(), seed=0)
    trainer.fit(ring, 2, progress=False)
    assert len(calls) == 3  # traced once: D real, D fake, G fake
    assert observed == [tf.TensorShape([64, 1])]


def test_conditional_training_and_previews():
    ds = gd.load("digits", batch_size=16, image_size=8, with_labels=True)
    g = gm.dcgan_generator(8, 1, latent_dim=8, width=4, num_classes=10)
    d = gm.dcgan_discriminator(8, 1, width=4, num_classes=10)
    trainer = GANTrainer(g, d, seed=0, preview_size=20)
    trainer.fit(ds, 3, progress=False)
    assert trainer.num_classes == 10
    np.testing.assert_array_equal(trainer.fixed_labels, np.arange(20) % 10)
    assert trainer.sample().shape == (20, 8, 8, 1)
    with pytest.raises(ValueError, match="with_labels=True"):
        trainer.fit(gd.load("digits", batch_size=16, image_size=8), 1, progress=False)


# --- EMA -----------------------------------------------------------------------------------

def test_ema_update_averages_weights_and_copies_statistics(rng):
    g = gm.dcgan_generator(8, 1, latent_dim=4, width=4)
    ema = clone_generator(g)
    for w in g.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32))
    before = [w.numpy() for w in ema.weights]
    ema_update(ema, g, 0.9)
    for avg, cur, old in zip(ema.weights, g.weights, before, strict=True):
        expected = 0.9 * old + 0.1 * cur.numpy() if cur.trainable else cur.numpy()
        np.testing.assert_allclose(avg.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert any(not w.trainable for w in g.weights)  # batch-norm statistics were checked
    np.testing.assert_allclose([float(warmup_decay(0.999, t)) for t in (0, 10, 10_000)],
                               [0.1, 11 / 20, 0.999], rtol=1e-6)


def test_ema_generator_follows_training(ring):
    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                         seed=0, ema_decay=0.99)
    trainer.fit(ring, 30, progress=False)
    ema, raw = trainer.sample(), trainer.sample(ema=False)
    assert ema.shape == raw.shape and not np.allclose(ema, raw)
    assert np.abs(ema - raw).mean() < np.abs(raw).mean()
    with pytest.raises(ValueError, match="ema_decay must be in"):
        GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                   ema_decay=1.0)


# --- guards and bad input --------------------------------------------------------------------

def test_nan_loss_stops_with_step_metric_and_causes(ring, tmp_path):
    def exploding_d_loss(real, fake):
        return tf.reduce_mean(real) * 0.0 + tf.math.log(-1.0)

    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                         loss=(exploding_d_loss, lambda fake: tf.reduce_mean(fake)), seed=0)
    with pytest.raises(TrainingDiverged, match=r"step 1: d_loss became nan.*learning rate"):
        trainer.fit(ring, 3, progress=False)


def test_python_branch_on_a_tensor_in_a_loss_explains_the_fix(ring):
    def branching_g_loss(fake):
        if tf.reduce_mean(fake) > 0:  # needs autograph, which the compiled step leaves off
            return tf.reduce_mean(fake)
        return -tf.reduce_mean(fake)

    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                         loss=(lambda r, f: tf.reduce_mean(f - r), branching_g_loss), seed=0)
    with pytest.raises(TypeError, match=r"(?s)tensor.*tf\.where or tf\.cond"):
        trainer.fit(ring, 1, progress=False)
    assert trainer.step == 0


def test_nan_guard_points_to_the_last_good_checkpoint(ring, tmp_path):
    state = tf.Variable(0.0)

    def d_loss(real, fake):
        state.assign_add(1.0)  # becomes NaN from the third call on
        bad = tf.where(state > 2.0, tf.constant(np.nan), 0.0)
        return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake)) + bad

    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)),
                         loss=(d_loss, lambda f: tf.reduce_mean(tf.nn.softplus(-f))), seed=0)
    with pytest.raises(TrainingDiverged, match=r"step 3.*ckpt-2.*untouched"):
        trainer.fit(ring, 5, progress=False, every=1, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(penalty="l2"), "unknown penalty"),
    (dict(n_critic=0), "n_critic must be a positive integer"),
    (dict(steps_per_call=0), "steps_per_call must be"),
    (dict(loss="hinge", label_smoothing=0.1), "label_smoothing applies to the cross-entropy"),
    (dict(loss=(lambda r, f: 0.0,)), "pair of callables"),
    (dict(loss="wgan"), "unknown loss"),
    (dict(augment=3), "augment must be callable"),
    (dict(reuse_fakes="yes"), "reuse_fakes must be True or False"),
])
def test_bad_trainer_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)), **kwargs)


def test_shared_optimizer_and_mismatched_data_are_rejected(digits16):
    opt = keras.optimizers.Adam()
    g, d = small_dcgan()
    with pytest.raises(ValueError, match="separate optimizer objects"):
        GANTrainer(g, d, d_optimizer=opt, g_optimizer=opt)
    trainer = GANTrainer(*small_dcgan())
    with pytest.raises(ValueError, match=r"\(32, 32, 1\).*image_size=16"):
        trainer.fit(gd.load("digits", batch_size=16), 1, progress=False)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        trainer.fit(digits16, 0, progress=False)


# --- checkpoints in-process -----------------------------------------------------------------

def test_save_restore_roundtrip_and_interrupt_saves(ring, tmp_path):
    trainer = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)), seed=0)

    def interrupt(tr):
        if tr.step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(ring, 10, progress=False, every=3, callbacks=[interrupt],
                    checkpoint_dir=tmp_path)
    fresh = GANTrainer(gm.mlp_generator(4, (16,)), gm.mlp_discriminator(hidden=(16,)), seed=1)
    assert fresh.restore(tmp_path)
    assert fresh.step == 6 and len(fresh.history) == 6
    for a, b in zip(trainer.generator.weights, fresh.generator.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not GANTrainer(gm.mlp_generator(4, (16,)),
                          gm.mlp_discriminator(hidden=(16,))).restore(tmp_path / "empty")
    other = GANTrainer(gm.mlp_generator(4, (32,)), gm.mlp_discriminator(hidden=(16,)))
    with pytest.raises(ValueError, match="does not fit these models"):
        other.restore(tmp_path)


def test_history_json_roundtrip(tmp_path):
    h = History()
    h.append(np.array([[1.0, 2.0, 0.5, 0.5, 0.0, np.nan, 3.0, 0.25]]))
    h.add_check("diversity_ratio", 1, 0.7)
    h.add_event(1, "mode_collapse", "text")
    h.save(tmp_path / "h.json")
    again = History.load(tmp_path / "h.json")
    assert np.isnan(again["d_grad_norm"][0]) and again["g_loss"][0] == 2.0
    assert again.checks == {"diversity_ratio": [(1, 0.7)]} and again.events == h.events
    assert again["augment_p"][0] == 0.25
    with pytest.raises(KeyError, match="no metric"):
        h["accuracy"]
    # a history saved before augment_p existed reads it as 0 (no augmentation)
    old = json.loads((tmp_path / "h.json").read_text())
    del old["augment_p"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert History.load(tmp_path / "old.json")["augment_p"].tolist() == [0.0]


# --- diagnostics ---------------------------------------------------------------------------

def _history(acc_real, acc_fake, g_loss, n=250, g_norm=lambda t: 1 + 0 * t):
    h = History()
    t = np.linspace(0, 1, n)
    rows = np.zeros((n, len(METRICS)))
    rows[:, 0] = 0.5
    rows[:, METRICS.index("g_loss")] = g_loss(t)
    rows[:, METRICS.index("d_acc_real")] = acc_real
    rows[:, METRICS.index("d_acc_fake")] = acc_fake
    rows[:, METRICS.index("g_grad_norm")] = g_norm(t)
    h.append(rows)
    return h


def test_overpowering_detector_on_constructed_histories():
    bad = _history(1.0, 0.995, lambda t: 1 + 3 * t, n=200)
    assert "overpowers" in diagnostics.discriminator_overpowers(bad)
    # the threshold: 99 % on average, at least 98 % on real and on fake images, 200 steps
    assert "overpowers" in diagnostics.discriminator_overpowers(_history(0.995, 0.99, np.sin))
    assert diagnostics.discriminator_overpowers(_history(0.99, 0.985, np.sin)) is None
    assert diagnostics.discriminator_overpowers(_history(1.0, 0.975, np.sin)) is None
    assert diagnostics.discriminator_overpowers(_history(0.7, 0.6, lambda t: 1 + 3 * t)) is None
    assert diagnostics.discriminator_overpowers(_history(1.0, 1.0, lambda t: t, n=199)) is None
    # ... and G losing ground: its loss up by more than a quarter + 0.05, or ‖∇G‖ halved
    level = lambda t: 0.37 + 0.02 * t  # noqa: E731 - notebook 04's healthy early spell:
    growing = lambda t: 1.0 + 1.5 * t  # noqa: E731 - level loss, growing gradient
    assert diagnostics.discriminator_overpowers(_history(1.0, 0.99, level, g_norm=growing)) \
        is None
    fading = lambda t: 2.0 * np.exp(-3 * t)  # noqa: E731 - the minimax stall: ‖∇G‖ → 0
    assert "overpowers" in diagnostics.discriminator_overpowers(
        _history(1.0, 1.0, level, g_norm=fading))


def _recorded(name):
    """A History holding one recorded run of ``tests/library/data/diagnostic_runs.npz``."""
    runs = np.load(Path(__file__).parent / "data" / "diagnostic_runs.npz")
    columns = runs[name]  # d_acc_real, d_acc_fake, g_loss, g_grad_norm per step
    rows = np.zeros((columns.shape[1], len(METRICS)))
    for row, metric in zip(columns, ("d_acc_real", "d_acc_fake", "g_loss", "g_grad_norm"),
                           strict=True):
        rows[:, METRICS.index(metric)] = row
    h = History()
    h.append(rows)
    return h


@pytest.mark.parametrize("name", ["healthy_mnist5k", "healthy_digits"])
def test_no_overpowering_warning_on_recorded_healthy_runs(name):
    """Non-saturating DCGAN runs whose samples are legible digits (notebook 01's model on
    mnist5k, and the 32×32 digits model): D is sure of itself for a while early on, never
    enough to be reported, at any check step."""
    history = _recorded(name)
    assert len(history) >= 1000
    assert _replay(history, every=50) == []


def test_overpowering_warning_on_the_recorded_minimax_run():
    """Notebook 01's DCGAN with the minimax G loss: D is right on every image from about
    step 60 and G's gradient fades; the warning comes once 200 such steps are seen."""
    history = _recorded("minimax_mnist5k")
    found = _replay(history, every=50)
    assert found and found[0] == (250, "discriminator_overpowers"), found


def test_weak_discriminator_detector_on_constructed_histories():
    assert "fools a weak" in diagnostics.generator_fools_weak_discriminator(
        _history(0.95, 0.05, lambda t: 0.3 + 0 * t))
    assert diagnostics.generator_fools_weak_discriminator(
        _history(0.7, 0.6, lambda t: 1 + 0 * t)) is None


def test_diversity_and_collapse_detector():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    brute = np.mean([np.linalg.norm(a - b) for i, a in enumerate(x) for j, b in enumerate(x)
                     if i != j])
    # float64 end to end (distances near 2.4): BLAS paths differ by ~1e-15 relative
    np.testing.assert_allclose(diagnostics.diversity(x), brute, rtol=1e-9)
    h = History()
    for step, ratio in [(100, 0.05), (200, 0.1), (300, 0.1)]:
        h.add_check("diversity_ratio", step, ratio)
    assert "Mode collapse" in diagnostics.mode_collapse(h)
    spreading = History()
    for step, ratio in [(200, 0.1), (300, 0.25)]:
        spreading.add_check("diversity_ratio", step, ratio)
    assert diagnostics.mode_collapse(spreading) is None  # still getting more diverse
    with pytest.raises(ValueError, match="at least 2 samples"):
        diagnostics.diversity(x[:1])


def _run(ring, steps, g_lr=1e-3, d_lr=1e-3, setup=None):
    keras.utils.set_random_seed(0)
    g, d = gm.mlp_generator(8, (64, 64)), gm.mlp_discriminator(hidden=(64, 64))
    if setup:
        setup(g, d)
    trainer = GANTrainer(g, d, d_optimizer=keras.optimizers.Adam(d_lr, beta_1=0.5),
                         g_optimizer=keras.optimizers.Adam(g_lr, beta_1=0.5), seed=0)
    return trainer.fit(ring, steps, progress=False, every=100)


def _kinds(history):
    return [e["kind"] for e in history.events]


def _replay(history, every=100):
    """(step, kind) of the events a fresh Diagnostician raises on ``history``'s own
    metrics when it looks every ``every`` steps, as the trainer does."""
    diagnostician = diagnostics.Diagnostician()
    found = []
    for step in range(every, len(history) + 1, every):
        past = copy.deepcopy(history)
        past.truncate(step)
        past.events = []
        found += [(e["step"], e["kind"]) for e in diagnostician.check(past, step)]
    return found


def test_a_healthy_history_raises_no_warning():
    """Balanced D accuracy, a flat G loss, samples as diverse as the data: no detector fires
    at any check."""
    healthy = _history(0.6, 0.45, lambda t: 1.0 + 0.05 * np.sin(40 * t), n=300)
    for step, ratio in [(100, 0.5), (200, 0.8), (300, 0.9)]:
        healthy.add_check("diversity_ratio", step, ratio)
    assert _replay(healthy) == []


def test_a_training_run_raises_what_its_history_shows(ring):
    """Which warnings a real two-player run raises depends on its trajectory, and that is
    chaotic: another CPU rounds differently and ends elsewhere (a healthy run usually
    raises none). What holds for every trajectory: the trainer raises exactly the
    detectors' findings on its recorded metrics, at its check steps."""
    history = _run(ring, 300)
    assert [(e["step"], e["kind"]) for e in history.events] == _replay(history)
    assert {e["kind"] for e in history.events} <= set(diagnostics.DETECTORS)


def test_constructed_runs_show_each_pathology(ring):
    # One model is frozen in each run, so there is no chaotic two-player game and the
    # pathology shows on any trajectory, not only this CPU's (seeds 0-5: D accuracy
    # 0.98-0.99 while G's loss doubles; every fake called real; zero sample diversity).
    # a frozen G against a fast D: D wins and G's loss climbs
    assert "discriminator_overpowers" in _kinds(_run(ring, 300, g_lr=0.0, d_lr=1e-2))

    def gullible(g, d):  # a frozen D that calls everything real
        d.layers[-1].bias.assign([20.0])

    assert "generator_fools_weak_discriminator" in _kinds(
        _run(ring, 200, d_lr=0.0, setup=gullible))

    def collapsed(g, d):  # a frozen G whose output ignores z
        g.layers[-1].kernel.assign(tf.zeros_like(g.layers[-1].kernel))

    assert "mode_collapse" in _kinds(_run(ring, 300, g_lr=0.0, setup=collapsed))


def test_ctrl_c_is_held_back_until_the_bookkeeping_is_done():
    import os
    import signal

    from gantools.training.interrupt import deferred_interrupt

    # Start from Python's own Ctrl-C handler: pytest run under nohup or as a background
    # job inherits SIGINT ignored (SIG_IGN), and the checks below compare against it.
    original = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        done = []
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("rest of the block")
        assert done == ["rest of the block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with deferred_interrupt():  # no signal: nothing raised
            done.append("again")
        with pytest.raises(KeyboardInterrupt):  # a safe point inside the block
            with deferred_interrupt() as check:
                check()
                os.kill(os.getpid(), signal.SIGINT)
                done.append("up to the check")
                check()
                done.append("never")
        with pytest.raises(KeyboardInterrupt):  # pressed twice: at once
            with deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
                done.append("never")
        assert done[-1] == "up to the check" and "never" not in done
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, original)


# --- penalties given as callables, and critics a penalty cannot use ---------------------------

def test_callable_penalty_enters_the_critic_loss_as_written():
    """One WGAN step with penalty(critic, real, fake) = E f(x)², against the step by hand."""
    keras.utils.set_random_seed(2)
    g, d = gm.mlp_generator(4, (8,)), gm.mlp_discriminator(hidden=(8,))
    d0 = keras.models.clone_model(d)
    d0.set_weights(d.get_weights())
    g0 = keras.models.clone_model(g)
    g0.set_weights(g.get_weights())
    real = np.random.default_rng(1).normal(size=(16, 2)).astype(np.float32)

    def penalty(critic, real, fake):
        return tf.reduce_mean(tf.square(critic(real, training=True)))

    trainer = GANTrainer(g, d, loss="wasserstein", penalty=penalty, penalty_weight=3.0,
                         d_optimizer=keras.optimizers.SGD(0.1),
                         g_optimizer=keras.optimizers.SGD(0.1), seed=7, ema_decay=None,
                         diagnose=False)
    history = trainer.fit(tf.data.Dataset.from_tensors(real), 1, progress=False)

    fake = g0(tf.random.Generator.from_seed(7).normal([16, 4]))
    with tf.GradientTape() as tape:
        f_real = d0(real)
        pen = tf.reduce_mean(tf.square(f_real))
        loss = tf.reduce_mean(d0(fake)) - tf.reduce_mean(f_real) + 3.0 * pen
    for v, grad in zip(d0.trainable_variables, tape.gradient(loss, d0.trainable_variables),
                       strict=True):
        v.assign_sub(0.1 * grad)
    np.testing.assert_allclose(history["penalty"][0], pen.numpy(), rtol=1e-5)
    for a, b in zip(d.weights, d0.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_callable_penalty_sees_a_conditional_critic_as_a_function_of_images():
    from gantools.losses import gradient_penalty

    g = gm.dcgan_generator(8, 1, latent_dim=4, width=4, num_classes=10)
    d = gm.dcgan_discriminator(8, 1, width=4, num_classes=10, normalization="layer")
    seen = []

    def penalty(critic, real, fake):
        seen.append(tuple(real.shape))
        return gradient_penalty(critic, real, fake)

    trainer = GANTrainer(g, d, loss="wasserstein", penalty=penalty, n_critic=2, seed=0)
    history = trainer.fit(gd.load("digits", batch_size=8, image_size=8, with_labels=True), 2,
                          progress=False)
    assert seen and seen[0][1:] == (8, 8, 1)  # traced once, on images alone
    assert np.all(np.isfinite(history["penalty"])) and np.all(history["penalty"] > 0)


@pytest.mark.parametrize("penalty", ["gp", "r1", lambda critic, real, fake: 0.0])
def test_a_penalty_refuses_a_critic_with_batch_norm(penalty):
    g, d = small_dcgan()  # the DCGAN discriminator has batch norm by default
    with pytest.raises(ValueError, match="batch normalization .*layer normalization"):
        GANTrainer(g, d, loss="wasserstein", penalty=penalty)
    GANTrainer(g, d, loss="wasserstein")  # without a penalty, batch norm is allowed
    GANTrainer(*small_dcgan(normalization="layer"), loss="wasserstein", penalty=penalty)


@pytest.mark.parametrize("value, compiled", [(None, True), ("1", False), ("0", True)])
def test_steps_are_compiled_unless_the_library_is_told_to_run_them_eagerly(
        monkeypatch, value, compiled):
    """GANTOOLS_EAGER_STEPS=1 (what the course's short mode sets) runs the same step
    without tracing it; both give the same numbers (float32, a few ulps apart at most)."""
    points = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    ring = tf.data.Dataset.from_tensor_slices(points).batch(32)
    if value is None:
        monkeypatch.delenv("GANTOOLS_EAGER_STEPS", raising=False)
    else:
        monkeypatch.setenv("GANTOOLS_EAGER_STEPS", value)
    keras.utils.set_random_seed(0)
    trainer = GANTrainer(gm.mlp_generator(4, (8,)), gm.mlp_discriminator(hidden=(8,)), seed=0)
    history = trainer.fit(ring, 2, progress=False, every=2)
    assert hasattr(trainer._train_function(1), "get_concrete_function") is compiled
    monkeypatch.setenv("GANTOOLS_EAGER_STEPS", "0" if value == "1" else "1")
    keras.utils.set_random_seed(0)
    other = GANTrainer(gm.mlp_generator(4, (8,)), gm.mlp_discriminator(hidden=(8,)), seed=0)
    np.testing.assert_allclose(other.fit(ring, 2, progress=False, every=2)["d_loss"],
                               history["d_loss"], rtol=1e-5, atol=1e-6)


def test_in_a_notebook_the_bar_is_one_output_replaced_in_place(monkeypatch, capsys):
    """In a notebook the progress bar is one display output that each redraw replaces, so a
    saved notebook keeps its final line whichever client ran it; the diagnostics and the
    callbacks' prints go to stdout beside it, and nothing of the bar does."""
    from IPython import display as ipd


    shown, updates = [], []

    class Handle:
        def update(self, obj, raw=False):
            assert raw and set(obj) == {"text/plain"}
            updates.append(obj["text/plain"])

    def display(obj, raw=False, display_id=False):
        assert raw and display_id is True  # updatable: the last state is what stays
        shown.append(obj["text/plain"])
        return Handle()

    monkeypatch.setattr(ipd, "display", display)
    monkeypatch.setattr(runtime, "in_notebook", lambda: True)
    trainer = GANTrainer(gm.mlp_generator(4, (8,)), gm.mlp_discriminator(hidden=(8,)), seed=0)
    trainer.fit(gd.load("ring", batch_size=16), 12, every=5,
                callbacks=[lambda t: print(f"callback at {t.step}")])
    out = capsys.readouterr().out
    assert len(shown) == 1, shown  # one bar, one output
    assert updates and all(line.startswith("training:") and "\n" not in line
                           and "\r" not in line for line in updates), updates
    assert "100%" in updates[-1] and "12/12" in updates[-1] and "█" in updates[-1]
    assert len(set(updates)) == len(updates)  # a redraw that changes nothing is not sent
    assert out.splitlines() == ["callback at 5", "callback at 10", "callback at 12"]
    # outside a notebook, nothing is displayed
    monkeypatch.setattr(runtime, "in_notebook", lambda: False)
    trainer.fit(gd.load("ring", batch_size=16), 2)
    assert len(shown) == 1
