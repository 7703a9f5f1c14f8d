"""Notebook 09's checks: honest spellings pass, the usual mistakes get their hint, hidden
failures reveal nothing, the values reported to the grader match its own oracle, and the
pool's check follows images through any order of draws."""

import numpy as np
import pytest
import tensorflow as tf
from support.grading_helpers import (
    hides_its_expected_values,
    names_its_hint,
    passes_visible_and_hidden,
    reports_what_the_grader_recomputes,
)

from gancourse.checks import load as load_checks


def load():
    return load_checks("09_cyclegan")


# --- honest answers, several spellings each ---------------------------------------------------

def cycle_mean_abs(real_a, cycled_a, real_b, cycled_b):
    return tf.reduce_mean(tf.abs(cycled_a - real_a)) + tf.reduce_mean(tf.abs(cycled_b - real_b))


def cycle_keras(real_a, cycled_a, real_b, cycled_b):
    import keras

    mae = keras.losses.MeanAbsoluteError()
    return mae(real_a, cycled_a) + mae(real_b, cycled_b)


def pool_reference(pool, images, size, rng):
    shown = []
    for image in images:
        if len(pool) < size:
            pool.append(image)
            shown.append(image)
        elif rng.random() < 0.5:
            slot = int(rng.integers(len(pool)))
            shown.append(pool[slot])
            pool[slot] = image
        else:
            shown.append(image)
    return np.stack(shown)


def pool_pop_append(pool, images, size, rng):
    """Another honest spelling: the shown image leaves the pool, the new one is appended."""
    out = []
    for image in images:
        if len(pool) < size:
            pool.append(image.copy())
            out.append(image)
        elif rng.uniform() > 0.5:
            out.append(pool.pop(int(rng.integers(0, size))))
            pool.append(image)
        else:
            out.append(image)
    return np.array(out)


def pool_list_result(pool, images, size, rng):
    return list(pool_reference(pool, images, size, rng))


def g_step(mode="honest", training=True, returns="right"):
    def step(real_a, real_b, g_ab, g_ba, d_a, d_b, optimizer, cycle_loss_fn, lambda_cycle,
             lambda_identity):
        with tf.GradientTape() as tape:
            fake_b, fake_a = g_ab(real_a, training=training), g_ba(real_b, training=training)
            judge_b, judge_a = (d_a, d_b) if mode == "swap d" else (d_b, d_a)
            target = 0.0 if mode == "target 0" else 1.0
            if mode == "d on real":
                adv = (tf.reduce_mean(tf.square(judge_b(real_b, training=True) - 1.0))
                       + tf.reduce_mean(tf.square(judge_a(real_a, training=True) - 1.0)))
            elif mode == "bce":
                adv = (tf.reduce_mean(tf.nn.softplus(-judge_b(fake_b, training=True)))
                       + tf.reduce_mean(tf.nn.softplus(-judge_a(fake_a, training=True))))
            else:
                adv = (tf.reduce_mean(tf.square(judge_b(fake_b, training=True) - target))
                       + tf.reduce_mean(tf.square(judge_a(fake_a, training=True) - target)))
            if mode == "half adv":
                adv = 0.5 * adv
            back_a, back_b = (g_ab, g_ba) if mode == "wrong cycle" else (g_ba, g_ab)
            cycle = cycle_loss_fn(real_a, back_a(fake_b, training=True), real_b,
                                  back_b(fake_a, training=True))
            if mode == "own l1":
                identity = (tf.reduce_mean(tf.abs(g_ba(real_a, training=True) - real_a))
                            + tf.reduce_mean(tf.abs(g_ab(real_b, training=True) - real_b)))
            elif mode == "identity swapped":
                identity = cycle_loss_fn(real_a, g_ab(real_a, training=True), real_b,
                                         g_ba(real_b, training=True))
            else:
                identity = cycle_loss_fn(real_a, g_ba(real_a, training=True), real_b,
                                         g_ab(real_b, training=True))
            lam_c, lam_i = (lambda_identity, lambda_cycle) if mode == "lambdas swapped" else \
                (lambda_cycle, lambda_identity)
            total = {"no identity": adv + lam_c * cycle,
                     "no cycle": adv + lam_i * identity,
                     "unweighted": adv + cycle + identity}.get(
                         mode, adv + lam_c * cycle + lam_i * identity)
        variables = g_ab.trainable_variables + g_ba.trainable_variables
        if mode == "with d":
            variables = variables + d_a.trainable_variables + d_b.trainable_variables
        grads = tape.gradient(total, variables)
        if mode == "two updates":
            half = len(g_ab.trainable_variables)
            optimizer.apply_gradients(zip(grads[:half], variables[:half], strict=True))
            optimizer.apply_gradients(zip(grads[half:], variables[half:], strict=True))
        elif mode == "apply":
            optimizer.apply(grads, variables)
        else:
            optimizer.apply_gradients(zip(grads, variables, strict=True))
        if returns == "total":
            return total
        if returns == "shuffled":
            return identity, adv, cycle
        return adv, cycle, identity
    return step


HONEST = [
    ("check_cycle_loss", cycle_mean_abs),
    ("check_cycle_loss", cycle_keras),
    ("check_pool_query", pool_reference),
    ("check_pool_query", pool_pop_append),
    ("check_pool_query", pool_list_result),
    ("check_generator_step", g_step()),
    ("check_generator_step", g_step("own l1")),
    ("check_generator_step", g_step("apply")),
    ("check_generator_step", tf.function(g_step())),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


def test_reported_values_agree_with_the_graders_own_oracle(monkeypatch):
    reports_what_the_grader_recomputes(load, "check_cycle_loss", cycle_mean_abs, monkeypatch)


def test_the_oracle_is_the_mean_of_absolute_differences():
    checks = load()
    a = np.zeros((2, 2, 2, 1))
    ca = a.copy()
    ca[0, 0, 0, 0] = 0.8  # one pixel of 8 off by 0.8
    b = np.ones((3, 2, 2, 1))
    assert checks._cycle(a, ca, b, b - 0.5) == pytest.approx(0.1 + 0.5, abs=1e-12)


def test_the_pool_check_passes_the_pool_for_many_nonces(capsys):
    checks = load()
    for nonce in range(20):
        checks.check_pool_query(pool_reference, hidden=True, nonce=nonce)
    assert capsys.readouterr().out.count("✓") == 20


# --- the usual mistakes ---------------------------------------------------------------------------

def pool_never_swaps(pool, images, size, rng):
    for image in images:
        if len(pool) < size:
            pool.append(image)
    return np.stack(list(images))


def pool_grows(pool, images, size, rng):
    out = []
    for image in images:
        if len(pool) >= size and rng.random() < 0.5:
            out.append(pool[int(rng.integers(len(pool)))])
        else:
            out.append(image)
        pool.append(image)
    return np.stack(out)


def pool_no_return(pool, images, size, rng):
    pool_reference(pool, images, size, rng)


def pool_with(probability=0.5, per_batch=False, own_random=False, slots=None,
              store_new=True):
    """The reference pool with one thing changed: the swap probability, one coin per batch,
    Python's random instead of the rng, fewer slots drawn from (``slots``), or the new image
    not stored when a stored one is shown."""
    import random

    def query(pool, images, size, rng):
        out = []
        coin = rng.random() if per_batch else None
        for image in images:
            draw = random.random() if own_random else (coin if per_batch else rng.random())
            if len(pool) < size:
                pool.append(image)
                out.append(image)
            elif draw < probability:
                reach = size + slots if slots else size  # slots=-1: never the last slot
                slot = random.randrange(size) if own_random else int(rng.integers(reach))
                out.append(pool[slot])
                if store_new:
                    pool[slot] = image
            else:
                out.append(image)
        return np.stack(out)
    return query


MISTAKES = [
    ("check_cycle_loss", lambda a, ca, b, cb: tf.reduce_mean(tf.square(ca - a))
     + tf.reduce_mean(tf.square(cb - b)), "squared error"),
    ("check_cycle_loss", lambda a, ca, b, cb: tf.reduce_mean(tf.abs(ca - a)),
     "only the A → B → A"),
    ("check_cycle_loss", lambda a, ca, b, cb: cycle_mean_abs(a, ca, b, cb) / 2, "averaged"),
    ("check_cycle_loss", lambda a, ca, b, cb: tf.reduce_sum(tf.abs(ca - a))
     + tf.reduce_sum(tf.abs(cb - b)), "summed over the pixels"),
    ("check_cycle_loss", lambda a, ca, b, cb: tf.reduce_mean(ca - a) + tf.reduce_mean(cb - b),
     "not absolute"),
    ("check_cycle_loss", lambda a, ca, b, cb: float(cycle_mean_abs(a, ca, b, cb)),
     "TensorFlow operations"),
    ("check_pool_query", pool_never_swaps, "it should be half"),
    ("check_pool_query", pool_with(1.0), "it should be half"),
    ("check_pool_query", pool_with(0.6), "it should be half"),
    ("check_pool_query", pool_with(per_batch=True), "once per batch"),
    ("check_pool_query", pool_with(own_random=True), "rng it is given"),
    ("check_cycle_loss", lambda a, ca, b, cb: cycle_mean_abs(b, ca, a, cb)
     if a.shape == b.shape else cycle_mean_abs(a, ca, b, cb) + 1.0, "its own starting batch"),
    ("check_cycle_loss", lambda a, ca, b, cb: tf.abs(tf.reduce_mean(ca - a))
     + tf.abs(tf.reduce_mean(cb - b)), "difference of the means"),
    ("check_pool_query", pool_with(store_new=False), "lost or duplicated"),
    ("check_pool_query", pool_grows, "more than its size"),
    ("check_pool_query", pool_with(slots=-1), "uniformly over the whole pool"),
    ("check_pool_query", pool_no_return, "returned None"),
    ("check_generator_step", g_step("lambdas swapped"), "weights are swapped"),
    ("check_generator_step", g_step("no identity"), "identity loss is missing"),
    ("check_generator_step", g_step("no cycle"), "cycle loss is missing"),
    ("check_generator_step", g_step("unweighted"), "not weighted"),
    ("check_generator_step", g_step("swap d"), "wrong discriminator"),
    ("check_generator_step", g_step("target 0"), "target is 0"),
    ("check_generator_step", g_step("bce"), "least squares"),
    ("check_generator_step", g_step("identity swapped"), "identity terms use the wrong generators"),
    ("check_generator_step", g_step("wrong cycle"), "same generator"),
    ("check_generator_step", g_step("half adv"), "halved"),
    ("check_generator_step", g_step("d on real"), "judged real images"),
    ("check_generator_step", g_step("two updates"), "exactly one update"),
    ("check_generator_step", g_step("with d"),
     "variables of the discriminators.*updates the generators only"),
    ("check_generator_step", g_step(training=False), "training=True"),
    ("check_generator_step", g_step(returns="total"), r"return \(adversarial, cycle, identity\)"),
    ("check_generator_step", g_step(returns="shuffled"), "another order"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{h[:20]}" for c, _, h in MISTAKES])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


def test_hidden_failures_reveal_no_expected_values():
    message = hides_its_expected_values(
        load(), "check_cycle_loss",
        lambda a, ca, b, cb: tf.reduce_mean(tf.square(ca - a)) + tf.reduce_mean(tf.square(cb - b)))
    assert "squared error" in message


def test_a_step_that_calls_gantools_trips_the_tripwire():
    from gantools.losses import cycle as ref

    def step(real_a, real_b, g_ab, g_ba, d_a, d_b, optimizer, cycle_loss_fn, lambda_cycle,
             lambda_identity):
        return g_step()(real_a, real_b, g_ab, g_ba, d_a, d_b, optimizer,
                        ref.cycle_consistency_loss, lambda_cycle, lambda_identity)
    with pytest.raises(AssertionError, match="gantools"):
        load().check_generator_step(step)


def test_a_lent_loss_kept_for_later_is_dead():
    kept = []

    def step(real_a, real_b, g_ab, g_ba, d_a, d_b, optimizer, cycle_loss_fn, lambda_cycle,
             lambda_identity):
        kept.append(cycle_loss_fn)
        return g_step()(real_a, real_b, g_ab, g_ba, d_a, d_b, optimizer, cycle_loss_fn,
                        lambda_cycle, lambda_identity)
    load().check_generator_step(step)
    with pytest.raises(AssertionError, match="only while that check runs|gantools"):
        load().check_cycle_loss(lambda *args: kept[0](*args))
