"""Checks of notebook 09 (CycleGAN). Test cells call them through
``gancourse.checks.load("09_cyclegan")``, which compiles this file afresh from disk.

The cycle-consistency loss is compared with a NumPy oracle (float64 mean absolute errors)
and traced and differentiated as the training step runs it. The image pool is checked by
its properties, whatever random draws it makes: what it shows D and what it keeps are,
together, what it held and what it was given (no image lost or made up), it never holds
more than its size, it shows each new image while it fills, and once full it shows a
stored image in place of about half of the new ones, drawn from every slot. The generator
step is checked like notebook 01's: recorded models and optimizer, the gradient the update
should have applied recomputed with private copies of the reference losses
(``gantools.losses.cycle``). Messages of hidden checks never show expected values. Only
``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

_REFERENCE = "gantools.losses.cycle"


def _mae(x, y):
    return float(np.mean(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))


def _cycle(real_a, cycled_a, real_b, cycled_b):
    return _mae(cycled_a, real_a) + _mae(cycled_b, real_b)


# --- exercise 1: the cycle-consistency loss ----------------------------------------------------

def _cycle_cases(seed, hidden):
    rng = np.random.default_rng(seed)
    shapes = [((3, 4, 4, 1), (3, 4, 4, 1)), ((2, 5, 5, 1), (4, 5, 5, 1)),
              ((4, 3, 3, 3), (1, 3, 3, 3))] if not hidden else \
        [((5, 3, 3, 1), (2, 3, 3, 1)), ((3, 6, 6, 1), (3, 6, 6, 1)), ((2, 4, 4, 3), (5, 4, 4, 3))]
    cases = []
    for shape_a, shape_b in shapes:
        a = rng.uniform(-1, 1, shape_a).astype(np.float32)
        b = rng.uniform(-1, 1, shape_b).astype(np.float32)
        cycled_a = np.clip(a + rng.normal(0, 0.3, shape_a), -1, 1).astype(np.float32)
        cycled_b = np.clip(b + rng.normal(0, 0.5, shape_b), -1, 1).astype(np.float32)
        cases.append((f"{shape_a[0]} images of A and {shape_b[0]} of B, "
                      f"{shape_a[1]}×{shape_a[2]}×{shape_a[3]}", [a, cycled_a, b, cycled_b]))
    return cases


def _cycle_mistakes():
    def mse(x, y):
        return float(np.mean(np.square(np.asarray(x, np.float64) - np.asarray(y, np.float64))))

    return [
        ("this is a squared error; the cycle loss is the L1 error, mean |F(G(a)) − a| "
         "(tf.abs), which the paper chose because it keeps images sharper.",
         lambda a, ca, b, cb: mse(ca, a) + mse(cb, b)),
        ("only the A → B → A direction is there; add mean |G(F(b)) − b|.",
         lambda a, ca, b, cb: _mae(ca, a)),
        ("only the B → A → B direction is there; add mean |F(G(a)) − a|.",
         lambda a, ca, b, cb: _mae(cb, b)),
        ("the two directions are averaged; L_cyc is their sum.",
         lambda a, ca, b, cb: 0.5 * (_mae(ca, a) + _mae(cb, b))),
        ("the absolute errors are summed over the pixels; take their mean (tf.reduce_mean).",
         lambda a, ca, b, cb: float(np.sum(np.abs(np.asarray(ca, np.float64) - a))
                                    + np.sum(np.abs(np.asarray(cb, np.float64) - b)))),
        ("the errors of A and B were put in one mean; take the mean of each direction "
         "separately (the batches can differ in size), then add the two.",
         lambda a, ca, b, cb: float(np.mean(np.concatenate([
             np.abs(np.asarray(ca, np.float64) - a).reshape(-1),
             np.abs(np.asarray(cb, np.float64) - b).reshape(-1)])))),
        ("each cycled image must be compared with its own starting batch: F(G(a)) with "
         "real_a, G(F(b)) with real_b.",
         lambda a, ca, b, cb: _mae(ca, b) + _mae(cb, a) if np.shape(a) == np.shape(b)
         else float("nan")),
        ("the absolute value was taken of the difference of the means; take it of each "
         "pixel's difference first, then the mean: tf.reduce_mean(tf.abs(cycled - real)).",
         lambda a, ca, b, cb: abs(float(np.mean(np.asarray(ca, np.float64) - a)))
         + abs(float(np.mean(np.asarray(cb, np.float64) - b)))),
        ("the error is not absolute: mean (F(G(a)) − a) lets positive and negative errors "
         "cancel; take tf.abs first.",
         lambda a, ca, b, cb: float(np.mean(np.asarray(ca, np.float64) - a)
                                    + np.mean(np.asarray(cb, np.float64) - b))),
    ]


_LOSS_OPS = ("use TensorFlow operations on the images (tf.abs, tf.reduce_mean), not NumPy or "
             "float(): the generator step is compiled and differentiated through this loss.")


@_h.check()
def check_cycle_loss(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """cycle_consistency_loss(a, F(G(a)), b, G(F(b))) = mean |F(G(a)) − a| +
    mean |G(F(b)) − b|, traced and differentiated as the generator step runs it."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    cases = _cycle_cases(seed, hidden)
    args = cases[1][1]
    _h.value_check("check_cycle_loss", "cycle_consistency_loss", fn, _cycle, cases,
                   _cycle_mistakes(), hidden, seed, shape_hint=_h.UNEQUAL_BATCHES,
                   then=lambda: _h.compiled_loss("cycle_consistency_loss", fn, args, _LOSS_OPS,
                                                 wrt=[1, 3], hidden=hidden))


# --- exercise 2: the image pool -----------------------------------------------------------------

def _tagged(ids, shape=(2, 2, 1)):
    """Images that carry their number: image k is constant k (so any copy is recognised)."""
    return np.stack([np.full(shape, float(k), np.float32) for k in ids])


def _ids(images, what):
    __tracebackhide__ = True
    array = np.asarray(images, np.float64)
    ids = array.reshape(len(array), -1)
    if not np.all(ids == ids[:, :1]) or not np.all(ids == np.round(ids)):
        raise _h.GradingError(f"{what} returned images that are not among those it was given "
                              "or had stored: return the images themselves, unchanged.")
    return [int(k) for k in ids[:, 0]]


def _query(fn, pool, images, size, rng, what):
    __tracebackhide__ = True
    with _h.student_code(what):
        out = fn(pool, images, size, rng)
    if out is None:
        raise _h.GradingError(f"{what} returned None; return the batch D is shown, an array "
                              "of as many images as it was given (np.stack).")
    shape = np.shape(out)
    if shape != images.shape:
        raise _h.GradingError(f"{what} was given {images.shape[0]} images of shape "
                              f"{images.shape[1:]} and returned an array of shape {shape}; "
                              "return one image per image given, in the same order.")
    return out


def _follow(fn, size, first, seed, what):
    """Feed the pool ``first`` images, then 400 batches of 3; check every rule on the way and
    return (what was shown, per call; the fraction of new images swapped once full; the
    fraction of full batches that mixed swapped and unswapped images; the slots drawn)."""
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    pool = []
    images = _tagged(range(first))
    shown = _ids(_query(fn, pool, images, size, rng, what), what)
    if not isinstance(pool, list) or len(pool) != first:
        raise _h.GradingError(
            f"after {first} images an empty pool of size {size} should hold those {first} "
            f"images, it holds {len(pool) if isinstance(pool, list) else pool!r}. Hint: append "
            "each image to the list `pool` (in place) while it has fewer than `size`.")
    if shown != list(range(first)):
        raise _h.GradingError(f"while the pool fills, D should be shown the new images "
                              f"themselves; it was shown images {shown} for {list(range(first))}.")
    history = [shown]
    next_id, swapped, full, mixed, full_batches, slots = first, 0, 0, 0, 0, set()
    for _ in range(400):
        batch = _tagged(range(next_id, next_id + 3))
        before = _ids(pool, "the pool")
        shown = _ids(_query(fn, pool, batch, size, rng, what), what)
        after = _ids(pool, "the pool")
        history.append(shown)
        if len(after) > size:
            raise _h.GradingError(f"the pool holds {len(after)} images, more than its size "
                                  f"{size}. Hint: once it is full, a new image only ever "
                                  "replaces a stored one.")
        new = list(range(next_id, next_id + 3))
        filled = new[:max(0, size - len(before))]  # stored and shown while the pool fills
        if sorted(before + new + filled) != sorted(after + shown):
            lost = sorted(set(before + new) - set(after + shown))
            raise _h.GradingError(
                "an image was lost or duplicated: what the pool held plus the new images "
                "must be exactly what it holds now plus what D was shown"
                + (f" (image {lost[0]} went nowhere)" if lost else "")
                + ". Hint: when a stored image is shown, the new image takes its slot; "
                  "otherwise the new image is shown and the pool is unchanged.")
        flips = []
        for position, (k, s) in enumerate(zip(new, shown, strict=True)):
            if len(before) + position < size:
                if s != k:
                    raise _h.GradingError("while the pool fills, D should be shown the new "
                                          "images themselves.")
                continue
            full += 1
            flips.append(s != k)
            if s != k:
                swapped += 1
                if s in before:
                    slots.add(before.index(s))
        if len(flips) == 3:
            full_batches += 1
            mixed += 0 < sum(flips) < 3
        next_id += 3
    return history, swapped / full, mixed / max(full_batches, 1), slots, swapped


@_h.check()
def check_pool_query(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """pool_query(pool, images, size, rng): fills the pool first, then shows a stored image
    in place of each new one with probability ½ (the new one taking its slot), drawing with
    the rng it is given; nothing lost, nothing made up, never more than ``size`` stored."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "pool_query"
    size, first = (5, 3) if not hidden else (7, 4)
    history, fraction, mixed, slots, swaps = _follow(fn, size, first, seed, what)
    # 1,200 new images, 1,200 − size once full: the fraction's standard error is about
    # 0.0145 at ½, so ±0.065 is 4.5 of them (a correct pool fails about once in 10⁵ gradings)
    if not 0.435 <= fraction <= 0.565:
        raise _h.GradingError(
            f"once the pool was full, D was shown a stored image in place of "
            f"{fraction:.0%} of the new images; it should be half of them (within a few "
            "percent over this many). Hint: for each image, with probability 0.5 "
            "(rng.random() < 0.5) swap it with a stored one drawn uniformly "
            "(rng.integers(len(pool))); otherwise show it as it is.")
    if mixed < 0.5:
        raise _h.GradingError(
            f"in batches of three new images, {mixed:.0%} of the batches mixed swapped and "
            "unswapped images (about 75 % should): the coin is tossed once per batch. Hint: "
            "toss it for each image (rng.random() inside the loop over the images).")
    if len(slots) < size:
        raise _h.GradingError(
            f"of the {size} slots of a full pool, only {len(slots)} ever gave D an image in "
            f"{swaps} swaps. Hint: draw the slot uniformly over the whole pool, "
            "rng.integers(len(pool)) (or rng.integers(size)).")
    again = _follow(fn, size, first, seed, what)[0]
    if again != history:
        raise _h.GradingError(
            f"{what} showed other images in a second run with an identically seeded rng: it "
            "draws its random numbers from somewhere else (Python's random, np.random). "
            "Hint: draw with the rng it is given, rng.random() and rng.integers(...), so that "
            "a training run repeats with its seed.")
    _h.passed(f"{what} fills the pool, then swaps half of the images with stored ones"
              + (" (hidden sizes)." if hidden else "."))


# --- exercise 3: the generators' step -----------------------------------------------------------

def _model(sizes, seed, name):
    """A small tanh MLP on flat 'images' (the last layer linear), seeded."""
    return _h.mlp(sizes, seed, name)


class _Recorder(_h.Recorder):
    """Records each call's input, output and ``training`` flag."""

    def __init__(self, model, role):
        super().__init__(model)
        self._role, self._flags = role, []

    def __call__(self, x, *args, **kwargs):
        self._flags.append(kwargs.get("training", args[0] if args else None))
        return super().__call__(x, *args, **kwargs)


def _same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return x.shape == y.shape and np.allclose(x, y, rtol=1e-6, atol=1e-7)


@_h.check()
def check_generator_step(step, hidden: bool = False, seed: int = 0, nonce=None):
    """One update of both generators with L_adv + λ_cyc L_cyc + λ_id L_id (least squares,
    D_B judging G(a) and D_A judging F(b)), every network in training mode, the gradient
    applied to both generators' variables by the one optimizer; returns the three losses."""
    __tracebackhide__ = True
    losses = _h.reference(_REFERENCE)
    seed = _h.hidden_seed(seed, hidden, nonce)
    dim, n_a, n_b = (3, 5, 4) if not hidden else (4, 3, 6)
    lam_cyc, lam_id = (10.0, 1.0) if not hidden else (7.0, 2.5)
    sizes_g, sizes_d = [dim, 6, dim], [dim, 5, 2]  # D: two "patch" scores per image
    start = {}
    models = {}
    for key, sizes, offset in (("g_ab", sizes_g, 1), ("g_ba", sizes_g, 2), ("d_a", sizes_d, 3),
                               ("d_b", sizes_d, 4)):
        models[key] = _model(sizes, seed + offset * 10, key)
        start[key] = [v.numpy().copy() for v in models[key].trainable_variables]
    rec = {key: _Recorder(m, key) for key, m in models.items()}
    g_vars = models["g_ab"].trainable_variables + models["g_ba"].trainable_variables
    d_vars = models["d_a"].trainable_variables + models["d_b"].trainable_variables
    optimizer = _h.OneNetworkOptimizer("optimizer", "generators", g_vars, d_vars,
                                       "discriminators")
    optimizer._inner.build(g_vars)  # as the notebook builds it: a second update is counted
    rng = np.random.default_rng(seed + 5)
    real_a = rng.uniform(-1, 1, (n_a, dim)).astype(np.float32)
    real_b = rng.uniform(-1, 1, (n_b, dim)).astype(np.float32)
    with _h.lent(losses.cycle_consistency_loss) as (cycle_fn,), \
            _h.student_code("generator_step"):
        result = step(tf.constant(real_a), tf.constant(real_b), rec["g_ab"], rec["g_ba"],
                      rec["d_a"], rec["d_b"], optimizer, cycle_fn, lam_cyc, lam_id)
        returned = ([float(x) for x in result]
                    if isinstance(result, tuple | list) and len(result) == 3 else None)

    if len(optimizer._updates) != 1:
        raise _h.GradingError(f"optimizer should apply exactly one update per step, it applied "
                              f"{len(optimizer._updates)}: both generators are updated "
                              "together, by one gradient of the total loss.")
    touched = {id(v) for _, v in optimizer._updates[0]}
    if touched & {id(v) for v in d_vars}:
        raise _h.GradingError("the optimizer updated the discriminators' variables: this step "
                              "updates the two generators only.")
    if touched != {id(v) for v in g_vars}:
        g_ab_ids = {id(v) for v in models["g_ab"].trainable_variables}
        g_ba_ids = {id(v) for v in models["g_ba"].trainable_variables}
        missing = "G's (g_ab)" if not touched & g_ab_ids else \
            "F's (g_ba)" if not touched & g_ba_ids else "some generator"
        raise _h.GradingError(f"the update left out {missing} variables: pass "
                              "g_ab.trainable_variables + g_ba.trainable_variables.")
    for key in ("d_a", "d_b"):
        if any(not np.array_equal(v.numpy(), s) for v, s in
               zip(models[key].trainable_variables, start[key], strict=True)):
            raise _h.GradingError(f"{key}'s weights changed: this step updates the generators "
                                  "only.")
    for key, r in rec.items():
        if any(flag is not True for flag in r._flags):
            raise _h.GradingError(f"{key} was called without training=True. Hint: call every "
                                  "network with training=True in the training step.")

    refs = {key: _model(sizes_g if key.startswith("g") else sizes_d, seed, f"{key}_ref")
            for key in models}
    for key, model in refs.items():
        for v, value in zip(model.trainable_variables, start[key], strict=True):
            v.assign(value)
    a, b = tf.constant(real_a), tf.constant(real_b)

    def gradient(cyc=lam_cyc, ident=lam_id, adv_target=1.0, swap_d=False, bce=False,
                 identity_pairs="right", adv_scale=1.0, wrong_cycle=False, d_on_real=False):
        g_ab, g_ba, d_a, d_b = refs["g_ab"], refs["g_ba"], refs["d_a"], refs["d_b"]
        with tf.GradientTape() as tape:
            fake_b, fake_a = g_ab(a), g_ba(b)
            judge_b, judge_a = (d_a, d_b) if swap_d else (d_b, d_a)
            if d_on_real:
                adv = (tf.reduce_mean(tf.square(judge_b(b) - adv_target))
                       + tf.reduce_mean(tf.square(judge_a(a) - adv_target)))
            elif bce:
                adv = (tf.reduce_mean(tf.nn.softplus(-judge_b(fake_b)))
                       + tf.reduce_mean(tf.nn.softplus(-judge_a(fake_a))))
            else:
                adv = (tf.reduce_mean(tf.square(judge_b(fake_b) - adv_target))
                       + tf.reduce_mean(tf.square(judge_a(fake_a) - adv_target)))
            adv = adv_scale * adv
            cycle = (losses.cycle_consistency_loss(a, g_ab(fake_b), b, g_ba(fake_a))
                     if wrong_cycle else
                     losses.cycle_consistency_loss(a, g_ba(fake_b), b, g_ab(fake_a)))
            if identity_pairs == "right":
                identity = losses.cycle_consistency_loss(a, g_ba(a), b, g_ab(b))
            else:  # each generator given its own source domain
                identity = losses.cycle_consistency_loss(a, g_ab(a), b, g_ba(b))
            total = adv + cyc * cycle + ident * identity
        variables = g_ab.trainable_variables + g_ba.trainable_variables
        return (float(adv), float(cycle), float(identity)), tape.gradient(total, variables)

    values, expected = gradient()
    update = optimizer._updates[0]
    if _h.first_mismatch(expected, g_vars, update) is not None:
        mistakes = [
            ("the weights are swapped: λ_cyc multiplies the cycle loss, λ_id the identity loss.",
             dict(cyc=lam_id, ident=lam_cyc)),
            ("the identity loss is missing: add lambda_identity · cycle_loss_fn(real_a, "
             "g_ba(real_a), real_b, g_ab(real_b)).", dict(ident=0.0)),
            ("the cycle loss is missing: add lambda_cycle · cycle_loss_fn(real_a, "
             "g_ba(fake_b), real_b, g_ab(fake_a)).", dict(cyc=0.0)),
            ("the losses are not weighted: the total is L_adv + lambda_cycle · L_cyc + "
             "lambda_identity · L_id.", dict(cyc=1.0, ident=1.0)),
            ("each translation was judged by the wrong discriminator: D_B (d_b) judges "
             "G(a) = g_ab(real_a), which should look like domain B; D_A judges F(b).",
             dict(swap_d=True)),
            ("the adversarial target is 0: the generators want their images scored as real, "
             "mean (D(fake) − 1)².", dict(adv_target=0.0)),
            ("this adversarial loss is the non-saturating cross-entropy; CycleGAN's is least "
             "squares: mean (D(fake) − 1)².", dict(bce=True)),
            ("the identity terms use the wrong generators: G (g_ab) maps A to B, so the image "
             "it should leave alone is one of B, ‖G(b) − b‖; F (g_ba) should leave an image "
             "of A alone, ‖F(a) − a‖.", dict(identity_pairs="swapped")),
            ("the translations were sent back through the same generator: the way back from "
             "B is F, so the cycle of a is g_ba(g_ab(real_a)), and of b g_ab(g_ba(real_b)).",
             dict(wrong_cycle=True)),
            ("the adversarial loss is halved: the generators' L_adv is the plain sum of the "
             "two means (the ½ belongs to the discriminators' loss).", dict(adv_scale=0.5)),
            ("the discriminators judged real images; in the generators' step they judge the "
             "translations: d_b(g_ab(real_a)) and d_a(g_ba(real_b)).", dict(d_on_real=True)),
        ]
        found = next((f" Hint: {text}" for text, options in mistakes
                      if _h.first_mismatch(gradient(**options)[1], g_vars, update) is None), "")
        raise _h.GradingError(
            "the generators' update does not follow the gradient of L_adv + λ_cyc L_cyc + "
            "λ_id L_id at their weights before the update." + (found or (
                " Compute every translation and every loss inside one GradientTape and "
                "differentiate the total w.r.t. g_ab.trainable_variables + "
                "g_ba.trainable_variables.")))
    if returned is None:
        raise _h.GradingError("generator_step should return (adversarial, cycle, identity): "
                              "the three losses before weighting.")
    if not np.allclose(returned, values, rtol=1e-4, atol=1e-5):
        order = "" if sorted(np.round(returned, 5)) != sorted(np.round(values, 5)) else \
            " They are the right numbers in another order: (adversarial, cycle, identity)."
        raise _h.GradingError("generator_step returns losses that differ from the ones it "
                              "trained on; return (adversarial, cycle, identity) of this "
                              f"update, before weighting.{order}")
    import keras

    fresh = {key: _model(sizes_g if key.startswith("g") else sizes_d, seed + 7, f"{key}_traced")
             for key in models}
    adam = keras.optimizers.Adam(2e-4, beta_1=0.5)
    adam.build(fresh["g_ab"].trainable_variables + fresh["g_ba"].trainable_variables)
    with _h.lent(losses.cycle_consistency_loss) as (cycle_fn,):
        _h.compiled_step(step, "generator_step",
                         [tf.TensorSpec((None, dim), tf.float32)] * 2,
                         (fresh["g_ab"], fresh["g_ba"], fresh["d_a"], fresh["d_b"], adam,
                          cycle_fn, lam_cyc, lam_id), hidden)
    _h.passed("generator_step updates both generators with L_adv + λ_cyc L_cyc + λ_id L_id"
              + (" (hidden sizes)." if hidden else "."))


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_cycle_loss",)


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    return [_cycle(*args) for _, args in _cycle_cases(seed, hidden)]
