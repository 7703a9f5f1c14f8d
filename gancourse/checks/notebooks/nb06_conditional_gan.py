"""Checks of notebook 06 (the conditional GAN). Test cells call them through
``gancourse.checks.load("06_conditional_gan")``, which compiles this file afresh from disk.

Expected label planes come from a NumPy construction (ones in the requested class's channel,
everywhere in the image). The builders are checked on their behaviour: shapes, the output
moving with the label at a fixed noise vector or image, the range of G's output, D's logits,
and the planes D concatenates to its image, read from D's own layers. The training step is
checked like notebook 01's: recorded models and optimizers, and the gradients each update
should have applied recomputed with reference losses, with every call's labels compared
with the batch's. While a student's code runs, every gantools function is booby-trapped (see
:mod:`gancourse.checks.harness`). Messages of hidden checks never show expected values.
Only ``check_*``, ``expected`` and ``VERIFIED`` are public; the harness is ``_h``.
"""

import numpy as np
import tensorflow as tf

from .. import harness as _h

# --- exercise 1: label planes ------------------------------------------------------------------


def _planes(labels, num_classes, height, width):
    """One constant plane per class: out[i, :, :, labels[i]] = 1, zero elsewhere."""
    labels = np.asarray(labels).reshape(-1)
    out = np.zeros((len(labels), height, width, num_classes))
    out[np.arange(len(labels)), :, :, labels] = 1.0
    return out


def _band(labels, num_classes, height, width):
    """The keras-io example's planes: tf.repeat on the flattened one-hot, then a reshape."""
    onehot = np.eye(num_classes)[np.asarray(labels)]
    return np.repeat(onehot.reshape(-1), height * width).reshape(-1, height, width, num_classes)


def _shifted(offset):
    def fn(labels, num_classes, height, width):
        labels = np.asarray(labels) + offset
        out = np.zeros((len(labels), height, width, num_classes))
        inside = (labels >= 0) & (labels < num_classes)
        out[np.flatnonzero(inside), :, :, labels[inside]] = 1.0
        return out
    return fn


_BAND = ("the planes come out as a horizontal band of ones across all channels: the one-hot "
         "vectors were flattened and repeated (tf.repeat without an axis, as in the keras-io "
         "conditional GAN example) and then reshaped, which lays the repeated values out row "
         "by row. Each class needs its own constant plane: give the one-hot vectors two "
         "spatial axes, (batch, 1, 1, K), and tile or broadcast them to (batch, H, W, K).")


def _planes_mistakes():
    return [
        (_BAND, _band),
        ("the classes are off by one: label k must set channel k (class 0 is the first "
         "channel); the labels are already 0-based.", _shifted(-1)),
        ("the classes are off by one: label k must set channel k (class 0 is the first "
         "channel); the labels are already 0-based.", _shifted(1)),
        ("every channel is one everywhere: only the requested class's channel is one, the "
         "others are zero (tf.one_hot).", lambda y, k, h, w: np.ones((len(y), h, w, k))),
    ]


def _planes_cases(seed, hidden):
    """(description, labels int32, num_classes, height, width)."""
    rng = np.random.default_rng(seed)
    sizes = [(3, 4, 5, 5), (5, 3, 4, 6), (4, 10, 8, 8), (1, 2, 1, 3)] if not hidden else \
        [(6, 5, 3, 7), (2, 10, 6, 4), (7, 3, 2, 2), (3, 2, 5, 1)]
    cases = []
    for n, k, h, w in sizes:
        labels = rng.integers(0, k, n).astype(np.int32)
        labels[0] = k - 1  # the last class, where an off-by-one falls outside the planes
        cases.append((f"labels {labels.tolist()} with {k} classes at {h}×{w}", labels, k, h, w))
    return cases


def _run_planes(fn, labels, k, h, w, what):
    __tracebackhide__ = True
    with _h.student_code(what):
        out = fn(tf.constant(labels), k, h, w)
    if not isinstance(out, tf.Tensor | tf.Variable):
        raise _h.GradingError(f"{what} returned a {type(out).__name__}; return a TensorFlow "
                              "tensor (tf.one_hot, tf.tile): the discriminator calls it inside "
                              "a Keras layer.")
    if out.dtype != tf.float32:
        raise _h.GradingError(f"{what} returned a {out.dtype.name} tensor; return float32 "
                              "(tf.one_hot's default), the dtype of the images it is "
                              "concatenated to.")
    return np.asarray(out, np.float64)


def _shape_message(got, n, k, h, w, what, hidden):
    if got == (n, k, h, w):
        return (f"{what} returned channels first, {got}; Keras images are channels last: "
                "(batch, height, width, num_classes).")
    if got == (n, w, h, k) and h != w:
        return f"{what} swapped height and width: return (batch, height, width, num_classes)."
    if hidden:
        return f"{what} returns a tensor of the wrong shape on a hidden case."
    return (f"{what} returned shape {got} for {n} labels, {k} classes at {h}×{w}; expected "
            f"{(n, h, w, k)}: (batch, height, width, num_classes).")


@_h.check()
def check_label_planes(fn, hidden: bool = False, seed: int = 0, nonce=None):
    """label_planes(labels, K, H, W)[i, :, :, c] = 1 if c == labels[i] else 0, float32."""
    __tracebackhide__ = True
    seed = _h.hidden_seed(seed, hidden, nonce)
    what = "label_planes"
    values = []
    for case, labels, k, h, w in _planes_cases(seed, hidden):
        got = _run_planes(fn, labels, k, h, w, what)
        want = _planes(labels, k, h, w)
        if got.shape != want.shape:
            raise _h.GradingError(_shape_message(got.shape, len(labels), k, h, w, what, hidden))
        if not np.array_equal(got, want):
            found = next((f" Hint: {text}" for text, mistake in _planes_mistakes()
                          if np.array_equal(got, mistake(labels, k, h, w))), "")
            if hidden:
                raise _h.GradingError(f"{what} disagrees with the reference on a hidden case."
                                      f"{found}")
            i = int(np.argwhere(got != want)[0][0])
            raise _h.GradingError(
                f"{what} on {case}: image {i} (label {labels[i]}) should have ones in channel "
                f"{labels[i]} and zeros in every other channel; channel by channel it has "
                f"{[round(float(got[i, ..., c].mean()), 3) for c in range(k)]} as the mean "
                f"value.{found}")
        values += got.reshape(-1).tolist()
    _symbolic(fn, what)
    _h.report_values("check_label_planes", hidden, seed, values)
    _h.passed(f"{what} gives one constant plane per class"
              + (" on the hidden cases." if hidden else "."))


def _symbolic(fn, what):
    """The discriminator calls label_planes while Keras builds it: batch size unknown."""
    __tracebackhide__ = True
    traced = tf.function(lambda y: fn(y, 3, 4, 4),
                         input_signature=[tf.TensorSpec([None], tf.int32)], autograph=False)
    out = _h.must_trace(
        traced, what, "on labels whose batch size is not known yet, as when Keras builds the "
        "discriminator", "use TensorFlow operations only (tf.one_hot, tf.tile or "
        "tf.broadcast_to) and take the batch size from tf.shape(labels)[0], not len(labels), "
        "labels.shape[0] or .numpy().")
    if not isinstance(out, tf.Tensor) or out.shape.rank != 4 or \
            tuple(out.shape[1:]) != (4, 4, 3):
        raise _h.GradingError(f"{what} on labels of unknown batch size should give a tensor of "
                              f"shape (None, 4, 4, 3) for 3 classes at 4×4, got "
                              f"{getattr(out, 'shape', type(out).__name__)}.")


# --- exercise 2: the conditional models --------------------------------------------------------

# the notebook's own size (28×28 digits, 10 classes) and a small colour one
_G_SIZES = [(8, 10, 28, 1), (5, 3, 8, 3)]
_D_SIZES = [(10, 28, 1), (3, 8, 3)]
_HIDDEN_IMAGE_SIZES = (8, 12, 16, 28)


def _g_sizes(seed, hidden):
    """(latent_dim, num_classes, image_size, channels) of each generator built: fixed
    visibly; for the hidden check drawn from the hidden seed (the grader's nonce), so that
    no model built in advance fits them: latent sizes in [1, 16], 2 to 10 classes, images
    of 8, 12, 16 or 28 pixels (a multiple of 4: two doublings of image_size // 4), 1 to 4
    channels."""
    if not hidden:
        return _G_SIZES
    rng = np.random.default_rng((seed, 6))
    return [(int(rng.integers(1, 17)), int(rng.integers(2, 11)),
             int(rng.choice(_HIDDEN_IMAGE_SIZES)),
             int(rng.integers(1, 5))) for _ in range(2)]


def _d_sizes(seed, hidden):
    """(num_classes, image_size, channels) of each discriminator built: fixed visibly;
    hidden ones drawn from the hidden seed as for the generator."""
    if not hidden:
        return _D_SIZES
    rng = np.random.default_rng((seed, 7))
    return [(int(rng.integers(2, 11)), int(rng.choice(_HIDDEN_IMAGE_SIZES)),
             int(rng.integers(1, 5)))
            for _ in range(2)]


def _inputs_of(model):
    return list(getattr(model, "inputs", None) or [])


def _call(model, inputs, what, training=False):
    __tracebackhide__ = True
    with _h.student_code(what):
        return np.asarray(model([tf.constant(inputs[0]), tf.constant(inputs[1], tf.int32)],
                                training=training), np.float64)


def _built(build, args, what):
    __tracebackhide__ = True
    import keras

    # not under student_code: its eager mode keeps a Lambda layer from inferring its shape
    try:
        with _h.no_reference_calls(what):
            with _h.made_here(what) as judge:
                model = judge(build(*args))
            weighted = isinstance(model, keras.Model) and bool(model.trainable_variables)
    except _h.GradingError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the student's code is the message
        if "infer the shape of the Lambda" in str(e):
            raise _h.GradingError(
                f"{what}: Keras could not work out the shape of a Lambda layer's output (it "
                "calls the function on float32 placeholders, which tf.one_hot refuses). Hint: "
                "give the layer its output shape, keras.layers.Lambda(..., output_shape="
                "(image_size, image_size, num_classes)).") from None
        if "KerasTensor cannot be used as input to a TensorFlow function" in str(e):
            raise _h.GradingError(
                f"{what}: a TensorFlow function (such as tf.one_hot) was applied to a Keras "
                "input while the model was being built. Hint: use Keras operations on Keras "
                "inputs, keras.ops.one_hot(labels, num_classes), or put TensorFlow code in a "
                "keras.layers.Lambda layer.") from None
        if type(e) is NotImplementedError:
            raise _h.GradingError(f"{what} is not implemented yet (it raises "
                                  "NotImplementedError).") from None
        raise _h.GradingError(f"{what} raised {type(e).__name__}: "
                              f"{' '.join(str(e).split())[:600]}") from None
    if not weighted:
        raise _h.GradingError(_h.weightless_hint(model, what, "..."))
    if len(_inputs_of(model)) != 2:
        raise _h.GradingError(f"{what} must return a model with two inputs, [x, labels] (an "
                              "int32 label per example: keras.Input((), dtype='int32')); this "
                              f"one has {len(_inputs_of(model))}.")
    return model


def _distinct_per_label(outputs, num_classes):
    """The pair of classes whose outputs agree (for a fixed z or image), or None."""
    for a in range(num_classes):
        for b in range(a + 1, num_classes):
            if np.allclose(outputs[a], outputs[b], rtol=1e-5, atol=1e-6):
                return a, b
    return None


@_h.check()
def check_conditional_generator(build, hidden: bool = False, seed: int = 0, nonce=None):
    """G = build(latent_dim, K, size, channels) maps [z, labels] to images in [-1, 1]."""
    __tracebackhide__ = True
    what = "build_conditional_generator"
    with _h.hidden_wording(hidden, what):
        _check_generator(build, hidden, _h.hidden_seed(seed + 10, hidden, nonce), what)
    _h.passed(f"{what} builds a generator whose images follow the label"
              + (" for the hidden sizes." if hidden else "."))


def _check_generator(build, hidden, seed, what):
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    for latent_dim, k, size, channels in _g_sizes(seed, hidden):
        call = f"{what}({latent_dim}, {k}, {size}, {channels})"
        g = _built(build, (latent_dim, k, size, channels), call)
        for n in (1, 5):
            z = rng.standard_normal((n, latent_dim)).astype(np.float32)
            out = _call(g, (z, rng.integers(0, k, n)), "the generator")
            if out.shape != (n, size, size, channels):
                raise _h.GradingError(f"{call} maps [z of shape {z.shape}, {n} labels] to "
                                      f"{out.shape}; expected {(n, size, size, channels)}.")
        z = np.repeat(rng.standard_normal((1, latent_dim)).astype(np.float32), k, axis=0)
        same = _distinct_per_label(_call(g, (z, np.arange(k)), "the generator"), k)
        if same is not None:
            raise _h.GradingError(
                f"{call}: for one z, the labels {same[0]} and {same[1]} give the same image: "
                "the generator ignores its label. Concatenate the label's one-hot vector "
                "(keras.ops.one_hot(labels, num_classes)) or a learned embedding to z before "
                "the first Dense layer.")
        z = rng.standard_normal((8, latent_dim)).astype(np.float32)
        out = _call(g, (z, np.zeros(8, np.int64)), "the generator")
        if np.allclose(out, out[:1], atol=1e-6):
            raise _h.GradingError(f"{call}: for one label, every z gives the same image: the "
                                  "generator ignores its noise input.")
        far = _call(g, ((rng.standard_normal((32, latent_dim)) * 1000).astype(np.float32),
                        rng.integers(0, k, 32)), "the generator", training=True)
        if np.abs(far).max() > 1.0 + 1e-6:
            raise _h.GradingError(f"{call}: the images leave [-1, 1] for extreme noise. The "
                                  "digits are scaled to [-1, 1]: end with a tanh activation.")
        if far.min() >= -1e-6:
            raise _h.GradingError(f"{call}: the images never go below 0, even for extreme "
                                  "noise: the output is in [0, 1] (a sigmoid?). The digits are "
                                  "scaled to [-1, 1]: end with a tanh activation.")


@_h.check()
def check_conditional_discriminator(build, hidden: bool = False, seed: int = 0, nonce=None):
    """D = build(K, size, channels) maps [images, labels] to logits and sees label planes."""
    __tracebackhide__ = True
    what = "build_conditional_discriminator"
    with _h.hidden_wording(hidden, what):
        _check_discriminator(build, hidden, _h.hidden_seed(seed + 20, hidden, nonce), what)
    _h.passed(f"{what} judges each image together with its label planes"
              + (" for the hidden sizes." if hidden else "."))


def _check_discriminator(build, hidden, seed, what):
    __tracebackhide__ = True
    rng = np.random.default_rng(seed)
    for k, size, channels in _d_sizes(seed, hidden):
        call = f"{what}({k}, {size}, {channels})"
        d = _built(build, (k, size, channels), call)
        for n in (1, 5):
            x = rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32)
            out = _call(d, (x, rng.integers(0, k, n)), "the discriminator")
            if out.shape != (n, 1):
                raise _h.GradingError(f"{call} maps [images of shape {x.shape}, {n} labels] to "
                                      f"{out.shape}; expected one logit per image, ({n}, 1).")
        x = np.repeat(rng.uniform(-1, 1, (1, size, size, channels)).astype(np.float32), k, 0)
        same = _distinct_per_label(_call(d, (x, np.arange(k)), "the discriminator"), k)
        if same is not None:
            raise _h.GradingError(
                f"{call}: for one image, the labels {same[0]} and {same[1]} give the same "
                "logit: the discriminator ignores the label. Concatenate label_planes(labels, "
                "num_classes, image_size, image_size) to the image before the first "
                "convolution.")
        far = _call(d, ((rng.uniform(-1, 1, (64, size, size, channels)) * 1000).astype(
            np.float32), rng.integers(0, k, 64)), "the discriminator")
        if far.min() >= 0.0 and far.max() <= 1.0:
            raise _h.GradingError(f"{call}: the outputs stay in [0, 1] even for extreme "
                                  "images: it ends in a sigmoid. Return logits (Dense(1) "
                                  "without activation); the loss applies the sigmoid.")
        _check_planes_inside(d, k, size, channels, rng, call, hidden)
        _check_batch_norm(d, k, size, channels, rng, call)


def _check_batch_norm(d, k, size, channels, rng, call):
    """The exercise asks for batch norm after the second convolution: without it this
    discriminator teaches G far more slowly at 28×28 (measured in a student pass: label
    accuracy 26.5 % after 1,500 steps against 78.6 %). Told by behaviour: in training mode
    an image's logit changes when the rest of its batch does."""
    __tracebackhide__ = True
    x = rng.uniform(-1, 1, (6, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, k, 6)
    other = x.copy()
    other[1:] = rng.uniform(-1, 1, other[1:].shape).astype(np.float32) * 3.0
    first = _call(d, (x, labels), "the discriminator", training=True)[:1]
    again = _call(d, (x, labels), "the discriminator", training=True)[:1]
    changed = _call(d, (other, labels), "the discriminator", training=True)[:1]
    if np.allclose(first, again, rtol=1e-5, atol=1e-6) and \
            np.allclose(first, changed, rtol=1e-4, atol=1e-5):
        raise _h.GradingError(
            f"{call} has no batch normalization: in training mode each image's logit ignores "
            "the rest of its batch. Step 3 asks for keras.layers.BatchNormalization() after "
            "the second convolution, as the DCGAN paper and gmodels.dcgan_discriminator put "
            "it; without it this discriminator teaches G the digits far more slowly at 28×28 "
            "(further exercise 6 measures it).")


def _check_planes_inside(d, k, size, channels, rng, call, hidden):
    """Read what D concatenates: the image's channels and the label planes, in either order.

    The tensors are what D's layers received and returned in one call (a record of
    :func:`gancourse.checks.harness.layer_trace`), however the model was built and whatever
    its layers are called: the concatenation's output, or the first convolution's input.
    """
    __tracebackhide__ = True
    n = 4
    x = rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, k, n)
    labels[0] = k - 1
    want = _planes(labels, k, size, size)
    with _h.student_code("the discriminator"):
        records = _h.layer_trace(d, [tf.constant(x), tf.constant(labels, tf.int32)])
        joined = [np.asarray(t, np.float64) for _, inputs, outputs in records
                  for t in (inputs, outputs)
                  if _h.shape_of(t) == (n, size, size, channels + k)]
    if not joined:
        raise _h.GradingError(
            f"{call}: no layer of the discriminator outputs the image with its label planes, "
            f"shape (batch, {size}, {size}, {channels} + {k}). Build a functional model: "
            "planes = keras.layers.Lambda(...)(labels) with your label_planes, then "
            "keras.layers.Concatenate()([images, planes]) before the first convolution.")
    for got in joined:
        for image, planes in ((got[..., :channels], got[..., channels:]),
                              (got[..., k:], got[..., :k])):
            if np.allclose(image, x, atol=1e-6) and np.array_equal(planes, want):
                return
    for got in joined:
        for image, planes in ((got[..., :channels], got[..., channels:]),
                              (got[..., k:], got[..., :k])):
            if np.allclose(image, x, atol=1e-6):
                found = next((f" Hint: {text}" for text, mistake in _planes_mistakes()
                              if np.array_equal(planes, mistake(labels, k, size, size))), "")
                raise _h.GradingError(f"{call}: the label planes the discriminator "
                                      "concatenates to the image are not one constant plane "
                                      "per class (ones in the label's channel, zeros "
                                      f"elsewhere).{found}")
    raise _h.GradingError(f"{call}: the discriminator's (batch, {size}, {size}, "
                          f"{channels + k}) tensor is not the image next to its label "
                          "planes: concatenate the images, unchanged, with "
                          "label_planes(labels, ...) along the channel axis.")


# --- exercise 3: the conditional training step -------------------------------------------------

def _conditional_mlp(sizes, num_classes, seed, name):
    """[x, labels] → concat(x, one-hot) → tanh MLP: a small conditional model with seeded
    weights, for checks of the training step."""
    import keras

    x = keras.Input((sizes[0],), name=f"{name}_x")
    labels = keras.Input((), dtype="int32", name=f"{name}_labels")
    h = keras.layers.Concatenate()([x, keras.ops.one_hot(labels, num_classes)])
    for i, units in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        h = keras.layers.Dense(units, activation=None if last else "tanh",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
                               name=f"{name}_dense{i}")(h)
    return keras.Model([x, labels], h, name=name)


def _copy(sizes, num_classes, seed, name, values):
    model = _conditional_mlp(sizes, num_classes, seed, name)
    for v, value in zip(model.trainable_variables, values, strict=True):
        v.assign(value)
    return model


class _Recorder(_h.Recorder):
    """A recorder of a conditional model: each call must pass [x, labels]."""

    def __init__(self, model, role, first):
        super().__init__(model)
        self._role, self._first = role, first

    def __call__(self, inputs, *args, **kwargs):
        if not (isinstance(inputs, list | tuple) and len(inputs) == 2):
            raise _h.GradingError(
                f"the {self._role} was called with {type(inputs).__name__} input; a "
                f"conditional {self._role} takes a list [{self._first}, labels]: "
                f"{self._role}([{self._first}, labels], training=True).")
        rows = [tf.shape(x)[0] if tf.is_tensor(x) else np.shape(x)[0] for x in inputs]
        if int(rows[0]) != int(rows[1]):
            raise _h.GradingError(
                f"the {self._role} was called with {int(rows[0])} rows of {self._first} and "
                f"{int(rows[1])} labels. Hint: draw z with the real batch's size, "
                "tf.random.normal((tf.shape(real)[0], latent_dim)), not a fixed BATCH_SIZE: "
                "the last batch of an epoch (and the check's) can be smaller.")
        out = self._model(list(inputs), *args, **kwargs)
        self._calls.append(([tf.identity(inputs[0]), tf.identity(inputs[1])], tf.identity(out)))
        return out


def _same_labels(got, labels):
    got = np.asarray(got).reshape(-1)
    return got.shape == labels.shape and np.array_equal(got, labels)


@_h.check()
def check_conditional_train_step(train_step, hidden: bool = False, seed: int = 0, nonce=None):
    """One alternating step of notebook 01 in which every call of G and D gets the batch's
    labels: D judges [real, labels] and [G([z, labels]), labels]; G's update goes through
    D([G([z', labels]), labels]).

    As in notebook 01 the models and optimizers are wrapped, so the check sees every call and
    update; it compares each call's labels with the batch's and recomputes, with reference
    losses, the gradients each update should have applied.
    """
    __tracebackhide__ = True
    losses = _h.reference("gantools.losses.adversarial")
    seed = _h.hidden_seed(seed, hidden, nonce)
    latent_dim, data_dim, k, batch = (3, 2, 4, 16) if not hidden else (5, 3, 3, 9)
    g_sizes, d_sizes = [latent_dim, 8, data_dim], [data_dim, 8, 1]
    g0 = _conditional_mlp(g_sizes, k, seed + 1, "generator")
    d0 = _conditional_mlp(d_sizes, k, seed + 2, "discriminator")
    g_start = [v.numpy().copy() for v in g0.trainable_variables]
    d_start = [v.numpy().copy() for v in d0.trainable_variables]
    g, d = _Recorder(g0, "generator", "z"), _Recorder(d0, "discriminator", "images")
    order = []
    d_opt = _h.RecordingOptimizer(0.1, "d_optimizer", "discriminator", d0.trainable_variables,
                                  g0.trainable_variables, "g_optimizer", order)
    g_opt = _h.RecordingOptimizer(0.1, "g_optimizer", "generator", g0.trainable_variables,
                                  d0.trainable_variables, "d_optimizer", order)
    rng = np.random.default_rng(seed + 3)
    real = rng.standard_normal((batch, data_dim)).astype(np.float32)
    labels = rng.integers(0, k, batch).astype(np.int32)
    labels[:k] = np.arange(k)  # every class present
    with _h.lent(losses.discriminator_loss, losses.non_saturating_generator_loss) as (d_fn, g_fn), \
            _h.student_code("conditional_train_step"):
        result = train_step(tf.constant(real), tf.constant(labels), g, d, g_opt, d_opt, d_fn,
                            g_fn, latent_dim)
        returned = ([float(x) for x in result]
                    if isinstance(result, tuple | list) and len(result) == 2 else None)

    _h.one_update_each(d_opt, g_opt, d0, g0, order, "step")
    for inputs, _ in g._calls:
        if not _same_labels(inputs[1], labels):
            raise _h.GradingError(
                "the generator was asked for other labels than the batch's. Hint: request "
                "the real batch's labels for the fakes, generator([z, labels]): the fakes "
                "then have the same classes as the real images D compares them with.")
    d_calls = [(x.numpy(), y.numpy()) for (x, y), _ in d._calls]
    reals = [y for x, y in d_calls if x.shape == real.shape and np.allclose(x, real)]
    fakes = [(x, y) for x, y in d_calls if x.shape == real.shape and not np.allclose(x, real)]
    sizes = sorted({x.shape[0] for x, _ in d_calls if x.shape[0] != batch})
    if sizes:
        raise _h.GradingError(
            f"the discriminator saw a batch of {sizes[0]} examples and a real batch of {batch}. "
            "Hint: draw z with tf.shape(real)[0] rows, not a fixed BATCH_SIZE.")
    if not reals or not fakes:
        raise _h.GradingError("the discriminator must see the real batch and a batch of "
                              "generated data in the D step.")
    if not all(_same_labels(y, labels) for y in reals):
        raise _h.GradingError(
            "the discriminator judged the real images with labels that are not theirs. Hint: "
            "discriminator([real, labels]): each real image with its own label.")
    if not all(_same_labels(y, labels) for _, y in fakes):
        raise _h.GradingError(
            "the discriminator judged generated images with other labels than the ones the "
            "generator was asked for. Hint: pass the same labels to both, "
            "discriminator([generator([z, labels]), labels]): D can only reject a fake for "
            "not matching its class if it is told which class was requested.")

    d_ref = _copy(d_sizes, k, seed + 2, "d_ref", d_start)
    y = tf.constant(labels)

    def d_gradient(first, second):
        with tf.GradientTape() as tape:
            loss = losses.discriminator_loss(d_ref([tf.constant(first), y]),
                                             d_ref([tf.constant(second), y]))
        return loss, tape.gradient(loss, d_ref.trainable_variables)

    d_loss, expected = d_gradient(real, fakes[0][0])
    if _h.first_mismatch(expected, d0.trainable_variables, d_opt._updates[0]) is not None:
        swapped = _h.first_mismatch(d_gradient(fakes[0][0], real)[1], d0.trainable_variables,
                                    d_opt._updates[0]) is None
        raise _h.GradingError(
            "the discriminator update does not follow the gradient of "
            "d_loss_fn(D([real, labels]), D([fake, labels])) at D's weights before the update."
            + (" Hint: the arguments are swapped: d_loss_fn takes D's logits on the real batch "
               "first." if swapped else " Compute the D loss inside a GradientTape and take its "
               "gradient w.r.t. discriminator.trainable_variables."))

    z = g._calls[-1][0][0].numpy()
    g_ref = _copy(g_sizes, k, seed + 1, "g_ref", g_start)

    def g_gradient(discriminator):
        with tf.GradientTape() as tape:
            loss = losses.non_saturating_generator_loss(
                discriminator([g_ref([tf.constant(z), y]), y]))
        return loss, tape.gradient(loss, g_ref.trainable_variables)

    g_loss = _h.g_update_follows(
        g_gradient, d0, d_ref, g0, g_opt, "g_loss_fn(D([G([z, labels]), labels]))",
        "Generate inside a GradientTape and differentiate w.r.t. "
        "generator.trainable_variables.")
    _h.returns_its_losses(returned, d_loss, g_loss, "conditional_train_step")
    _h.passed("conditional_train_step passes the batch's labels to every call of G and D and "
              "updates D, then G" + (" (hidden sizes)." if hidden else "."))


# The checks whose values nbgrader's process verifies again, outside the kernel.
VERIFIED = ("check_label_planes",)


def expected(check: str, seed: int, hidden: bool) -> list[float]:
    """The reference values of a verified check's cases, for the grader's own comparison."""
    return [float(x) for _, labels, k, h, w in _planes_cases(seed, hidden)
            for x in _planes(labels, k, h, w).reshape(-1)]
