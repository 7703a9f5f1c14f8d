"""Notebook 07's checks: honest spellings pass (float32 TensorFlow and NumPy), the usual
mistakes get their hint, hidden failures reveal nothing, the values reported to the grader
match its own oracle, and the checks' references agree with gantools and with loops."""

import numpy as np
import pytest
import tensorflow as tf
from support.grading_helpers import (
    hides_its_expected_values,
    names_its_hint,
    passes_visible_and_hidden,
    reports_what_the_grader_recomputes,
)

import gantools.augment as ga
from gancourse.checks import load as load_checks
from gantools.metrics import mmd2_unbiased


def load():
    return load_checks("07_ada")


# --- honest answers ----------------------------------------------------------------------------

def kid_tf(real_features, fake_features):
    real = tf.convert_to_tensor(real_features, tf.float32)
    fake = tf.convert_to_tensor(fake_features, tf.float32)
    d = tf.cast(tf.shape(real)[1], tf.float32)
    m = tf.cast(tf.shape(real)[0], tf.float32)
    n = tf.cast(tf.shape(fake)[0], tf.float32)

    def k(a, b):
        return (tf.matmul(a, b, transpose_b=True) / d + 1.0) ** 3

    k_rr, k_ff = k(real, real), k(fake, fake)
    rr = (tf.reduce_sum(k_rr) - tf.linalg.trace(k_rr)) / (m * (m - 1))
    ff = (tf.reduce_sum(k_ff) - tf.linalg.trace(k_ff)) / (n * (n - 1))
    return rr + ff - 2.0 * tf.reduce_mean(k(real, fake))


def kid_numpy(real, fake):  # a mask instead of the trace, float32 throughout
    real, fake = np.asarray(real), np.asarray(fake)
    d = real.shape[1]

    def off_diagonal_mean(a):
        k = (a @ a.T / d + 1) ** 3
        return k[~np.eye(len(a), dtype=bool)].mean()

    return off_diagonal_mean(real) + off_diagonal_mean(fake) \
        - 2 * ((real @ fake.T / d + 1) ** 3).mean()


def translate_pad(images, dx, dy):
    """Pad with zeros by the largest shift, then gather each image's window."""
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [h, h], [w, w], [0, 0]])
    rows = tf.range(h)[None, :] + h - dy[:, None]  # (B, H)
    cols = tf.range(w)[None, :] + w - dx[:, None]  # (B, W)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def translate_gantools_style(images, dx, dy):  # index arithmetic and a mask, per pixel
    return ga.translate_integer(images, dx, dy, fill="constant")


def translate_slices(images, dx, dy):  # one image at a time, slicing and padding
    out = []
    h, w = images.shape[1], images.shape[2]
    for b in range(images.shape[0]):
        sx, sy = int(dx[b]), int(dy[b])
        x = images[b]
        x = tf.pad(x, [[max(sy, 0), max(-sy, 0)], [max(sx, 0), max(-sx, 0)], [0, 0]])
        out.append(x[max(-sy, 0):max(-sy, 0) + h, max(-sx, 0):max(-sx, 0) + w])
    return tf.stack(out)


def update_tf(p, real_logits, target, integration_steps):
    accuracy = tf.reduce_mean(tf.cast(real_logits > 0, tf.float32))
    return tf.clip_by_value(p + (accuracy - target) / integration_steps, 0.0, 1.0)


def update_step(p, real_logits, target, integration_steps):  # keras-io's step function
    accuracy = tf.reduce_mean(0.5 * (1.0 + tf.sign(real_logits)))
    return tf.clip_by_value(p + (accuracy - target) / integration_steps, 0.0, 1.0)


def translate_projective(images, dx, dy):
    """An interpolating warp: right values for integer shifts, approximate gradient."""
    n = tf.shape(images)[0]
    zeros, ones = tf.zeros([n]), tf.ones([n])
    transforms = tf.stack([ones, zeros, -tf.cast(dx, tf.float32), zeros, ones,
                           -tf.cast(dy, tf.float32), zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        interpolation="BILINEAR", fill_mode="CONSTANT", fill_value=0.0)


HONEST = [
    ("check_kid", kid_tf),
    ("check_kid", kid_numpy),
    ("check_translate", translate_pad),
    ("check_translate", translate_slices),
    # for integer shifts with a constant fill, the registered gradient happens to be exact
    ("check_translate", translate_projective),
    ("check_update_probability", update_tf),
    ("check_update_probability", update_step),
]


@pytest.mark.parametrize("check, answer", HONEST, ids=lambda x: getattr(x, "__name__", x))
def test_honest_answers_pass_visible_and_hidden_checks(check, answer, capsys):
    passes_visible_and_hidden(load(), check, answer, capsys)


@pytest.mark.parametrize("check, answer", [("check_kid", kid_tf),
                                           ("check_translate", translate_pad),
                                           ("check_update_probability", update_tf)])
def test_reported_values_agree_with_the_graders_own_oracle(check, answer, monkeypatch):
    reports_what_the_grader_recomputes(load, check, answer, monkeypatch)


def test_the_kid_reference_matches_gantools_and_a_loop():
    checks = load()
    rng = np.random.default_rng(0)
    real, fake = rng.normal(0, 1, (9, 3)), rng.normal(0.5, 1, (7, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    loop = (sum(k(real[i], real[j]) for i in range(9) for j in range(9) if i != j) / 72
            + sum(k(fake[i], fake[j]) for i in range(7) for j in range(7) if i != j) / 42
            - 2 * sum(k(r, f) for r in real for f in fake) / 63)
    assert abs(checks._kid(real, fake) - loop) < 1e-12
    # gantools computes the kernel of float32 features: agreement to float32 rounding
    assert abs(checks._kid(real, fake) - mmd2_unbiased(real, fake)) < 1e-6 * abs(loop)


def test_the_translation_reference_matches_gantools_and_its_transpose():
    checks = load()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 5, 7, 2))
    v = rng.standard_normal(x.shape)
    dx, dy = np.array([2, -6, 0]), np.array([-1, 3, 4])
    assert np.allclose(checks._translate(x, dx, dy),
                       ga.translate_integer(x, dx, dy, fill="constant").numpy())
    # the move back is the transpose: <A x, v> = <x, A^T v>
    assert abs(np.sum(checks._translate(x, dx, dy) * v)
               - np.sum(x * checks._translate(v, -dx, -dy))) < 1e-12


def kid_biased(real, fake):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    return k(real, real).mean() + k(fake, fake).mean() - 2 * k(real, fake).mean()


def kid_no_scale(real, fake):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    k = lambda a, b: (a @ b.T + 1) ** 3  # noqa: E731
    m, n = len(real), len(fake)
    return ((k(real, real).sum() - np.trace(k(real, real))) / (m * (m - 1))
            + (k(fake, fake).sum() - np.trace(k(fake, fake))) / (n * (n - 1))
            - 2 * k(real, fake).mean())


def translate_wrong_gradient(images, dx, dy):
    """Right values, but a gradient that is not the transpose (as an interpolating warp
    with an approximate registered gradient would give)."""
    @tf.custom_gradient
    def move(x):
        return translate_pad(x, dx, dy), lambda upstream: translate_pad(upstream, dx, dy)
    return move(images)


def translate_roll(images, dx, dy):
    return tf.stack([tf.roll(images[b], (int(dy[b]), int(dx[b])), axis=(0, 1))
                     for b in range(images.shape[0])])


def translate_numpy(images, dx, dy):
    return tf.constant(load()._translate(images.numpy(), dx.numpy(), dy.numpy()),
                       tf.float32)


def update_sigmoid(p, logits, target, steps):
    accuracy = tf.reduce_mean(tf.sigmoid(logits))
    return tf.clip_by_value(p + (accuracy - target) / steps, 0.0, 1.0)


def update_python(p, logits, target, steps):
    accuracy = float(np.mean(np.asarray(logits) > 0))
    return min(max(float(p) + (accuracy - target) / steps, 0.0), 1.0)


def kid_one_size(real, fake):  # m taken from the real set and used for the fake set too
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, d = len(real), real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    pairs = m * (m - 1)
    return ((k(real, real).sum() - np.trace(k(real, real))) / pairs
            + (k(fake, fake).sum() - np.trace(k(fake, fake))) / pairs
            - 2 * k(real, fake).sum() / (m * m))


def translate_clipped(images, dx, dy):  # indices clipped into the image: edges repeated
    h, w = images.shape[1], images.shape[2]
    rows = tf.clip_by_value(tf.range(h)[None, :] - dy[:, None], 0, h - 1)
    cols = tf.clip_by_value(tf.range(w)[None, :] - dx[:, None], 0, w - 1)
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def kid_cross_by_m_squared(real, fake):  # only the cross sum uses m twice
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, n, d = len(real), len(fake), real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    return ((k(real, real).sum() - np.trace(k(real, real))) / (m * (m - 1))
            + (k(fake, fake).sum() - np.trace(k(fake, fake))) / (n * (n - 1))
            - 2 * k(real, fake).sum() / (m * m))


MISTAKES = [
    ("check_kid", kid_one_size, "one size is used for both sets"),
    ("check_kid", kid_cross_by_m_squared, "one size is used for both sets"),
    # a 1-element array passes a value check, then float() in the notebook's next cell fails
    ("check_kid", lambda r, f: np.array([kid_numpy(r, f)]), "0-d array"),
    ("check_kid", lambda r, f: [float(kid_numpy(r, f))], "0-d array"),
    ("check_update_probability", lambda p, logits, target, steps: tf.reshape(
        update_tf(p, logits, target, steps), [1]), r"shape \(\)"),
    ("check_translate", translate_clipped, "repeat the image's edge"),
    ("check_kid", kid_biased, "biased estimator"),
    ("check_kid", kid_no_scale, "missing the 1/d"),
    ("check_kid", lambda r, f: load()._kid_divided_by_squares(r, f), r"divided by m²"),
    ("check_translate", translate_wrong_gradient, "not the exact transpose"),
    ("check_translate", lambda x, dx, dy: translate_pad(x, dy, dx), "swapped"),
    ("check_translate", lambda x, dx, dy: translate_pad(x, -dx, -dy), "wrong way"),
    ("check_translate", translate_roll, "tf.roll"),
    ("check_translate", translate_numpy, "no gradient"),
    ("check_update_probability", update_sigmoid, "sigmoid"),
    ("check_update_probability",
     lambda p, lg, t, s: p + (tf.reduce_mean(tf.cast(lg > 0, tf.float32)) - t) / s,
     "not clipped"),
    ("check_update_probability",
     lambda p, lg, t, s: tf.clip_by_value(p - (tf.reduce_mean(tf.cast(lg > 0, tf.float32))
                                               - t) / s, 0.0, 1.0), "wrong way"),
    ("check_update_probability", update_python, "compiled training step"),
]


@pytest.mark.parametrize("check, answer, hint", MISTAKES,
                         ids=[f"{c}-{h[:20]}" for c, _, h in MISTAKES])
def test_usual_mistakes_name_their_hint(check, answer, hint):
    names_its_hint(load(), check, answer, hint)


@pytest.mark.parametrize("check, answer", [("check_kid", kid_biased),
                                           ("check_translate", translate_roll),
                                           ("check_update_probability", update_sigmoid)])
def test_hidden_failures_reveal_no_expected_values(check, answer):
    hides_its_expected_values(load(), check, answer)


def test_gantools_translation_trips_the_tripwire():
    with pytest.raises(AssertionError, match="gantools"):
        load().check_translate(translate_gantools_style)
