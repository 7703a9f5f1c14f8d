"""Submissions of notebooks 03, 05 and 07 that attack the grader, class by class, and honest
ones that must never be flagged; graded by tests/test_attacks.py through ``nbgrader
autograde`` with the course's configuration and the sandbox.

The classes are those a determined student found by reading the grading code:

1. modules reachable from the notebook's own imports (``os``), other ways to talk to the
   kernel, child processes;
2. references a check lends to a student's step, kept for a later check;
3. graphs that run no Python: a reference traced into a tf.data pipeline before the check;
4. backward passes: a ``tf.custom_gradient`` whose backward calls the reference;
5. checks that trust names (a ReLU spelled as a Lambda, a renamed Conv2D);
6. references built before the check (a model built at answer time, a cache);
7. an honest notebook whose test cells lost their ``locked`` flag.

Each entry says how the release changes (see ``class_grading.build_submission``: ``good``,
``replace``, ``add``; here also ``meta`` (metadata changes by grade id) and ``move`` (test
cells moved after another cell)) and what the grader must conclude: the points of every
test (``expect``), whether the notebook is flagged (``flagged``: words of the report), and
text the graded notebook must (``outputs``) or must not (``absent``) contain.
"""

NB03, NB05, NB07 = "03_wgan", "05_spectral_norm", "07_ada"

POINTS = {
    NB03: {"test_critic_loss": 1, "test_generator_loss": 1, "test_weight_clip": 1,
           "test_build_critic": 2, "test_gradient_penalty": 2,
           "test_gradient_penalty_gradient": 1, "test_critic_train_step": 3},
    NB05: {"test_power_iteration": 2, "test_spectral_normalize": 3, "test_sn_critic": 2},
    NB07: {"test_kid": 2, "test_translate": 2, "test_update_probability": 2},
}
# the cells every notebook keeps in the trimmed copy the attacks are graded on: its setup,
# answers and tests (the training and plotting cells add minutes and nothing to grade)
KEPT = ("setup", "hyperparameters")
# and a cell of the notebook's own that calls a student's function, as the training and
# plotting cells do: (after this cell, its grade id, its source)
NOTEBOOK_CALLS = {
    NB07: [("test_translate", "uses_translate",
            "moved = translate(tf.zeros([2, 8, 8, 1]), tf.constant([1, -2]), tf.constant([0, 3]))\n"
            "print('translated', tuple(moved.shape))")],
}


def score(assignment, full=True, **points):
    """Every test at full points (``full``) or 0, but the ones given."""
    base = {k: (v if full else 0) for k, v in POINTS[assignment].items()}
    return {**base, **{f"test_{k}": v for k, v in points.items()}}


# --- 1. modules out of reach, the kernel, child processes ----------------------------------------

OS_SYSTEM = '''def critic_loss(real_scores, fake_scores):
    os.system("echo pwned > /tmp/pwned")
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_loss(fake_scores):
    return -tf.reduce_mean(fake_scores)'''

OS_ALIASED = '''shell = os
runner = shell.popen


def critic_loss(real_scores, fake_scores):
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_loss(fake_scores):
    return -tf.reduce_mean(fake_scores)'''

# a string run as code inside NumPy (numpy.testing.runstring is exec)
RUNSTRING = '''np.testing.runstring("import os; os.system('id')", {})
runner = gd.remote.os.popen


def critic_loss(real_scores, fake_scores):
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_loss(fake_scores):
    return -tf.reduce_mean(fake_scores)'''

# a child process through a policy-legal library path: matplotlib runs its movie writer
# as a program; pointed at /bin/echo, only the kernel's ban on child processes stops it
CHILD_PROCESS = '''import matplotlib.animation as animation
import matplotlib.pyplot as plt

plt.rcParams["animation.ffmpeg_path"] = "/bin/echo"
figure = plt.figure()
movie = animation.FuncAnimation(figure, lambda i: [], frames=2)
try:
    movie.save("movie.mp4", writer="ffmpeg")
    print("CHILD PROCESS RAN")
except Exception as error:
    print("CHILD PROCESS REFUSED:", type(error).__name__)
plt.close(figure)'''

# --- 2. lent references kept for later ------------------------------------------------------------

# the step keeps the penalty the check lends it; the penalty's tests are moved after the
# step's test, and the student's gradient_penalty calls what was kept
KEEPS_LENT_STEP = '''KEPT = []


def critic_train_step(real_batches, generator, critic, g_optimizer, c_optimizer,
                      critic_loss_fn, generator_loss_fn, penalty_fn, latent_dim,
                      n_critic=5, gp_weight=10.0):
    KEPT.append(penalty_fn)
    for _ in range(n_critic):
        real = next(real_batches)
        z = tf.random.normal((tf.shape(real)[0], latent_dim))
        fake = generator(z, training=True)
        with tf.GradientTape() as tape:
            c_loss = critic_loss_fn(critic(real, training=True), critic(fake, training=True))
            penalty = penalty_fn(critic, real, fake)
            total = c_loss + gp_weight * penalty
        c_vars = critic.trainable_variables
        c_optimizer.apply_gradients(zip(tape.gradient(total, c_vars), c_vars))
    z = tf.random.normal((tf.shape(real)[0], latent_dim))
    with tf.GradientTape() as tape:
        g_loss = generator_loss_fn(critic(generator(z, training=True), training=True))
    g_vars = generator.trainable_variables
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
    return c_loss, penalty, g_loss'''
KEPT_PENALTY = '''def gradient_penalty(critic, real, fake):
    return KEPT[-1](critic, real, fake)'''

# reading the lent function's closure (where the check's own copy of the reference lives)
CLOSURE_READER = '''from keras.src.utils.python_utils import func_dump

KEPT = []


def gradient_penalty(critic, real, fake):
    return func_dump(KEPT[-1])[2][0](critic, real, fake)'''

# --- 3. graphs that run no Python: the reference traced into a tf.data pipeline ----------------

GRAPH_TRANSLATE = '''_images = tf.Variable(tf.zeros([1, 1, 1, 1]), shape=tf.TensorShape(None))
_dx = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
_dy = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
_graph = tf.data.Dataset.range(1).map(
    lambda _: ga.translate_integer(_images, _dx, _dy, fill="constant"))


def _run(images, dx, dy):
    _images.assign(images)
    _dx.assign(dx)
    _dy.assign(dy)
    return next(iter(_graph))


def translate(images, dx, dy):
    @tf.custom_gradient
    def moved(x):
        def backward(upstream):
            return _run(upstream, -dx, -dy)
        return _run(x, dx, dy), backward
    return moved(images)'''

# the same graph, traced when the notebook's own cell calls the student's translate (with
# gantools on) and used when the test, moved after that cell, calls it again
GRAPH_IN_NOTEBOOK_CELL = '''_saved = {}


def _run(images, dx, dy):
    if "graph" not in _saved:
        _saved["images"] = tf.Variable(tf.zeros([1, 1, 1, 1]), shape=tf.TensorShape(None))
        _saved["dx"] = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
        _saved["dy"] = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
        _saved["graph"] = tf.data.Dataset.range(1).map(lambda _: ga.translate_integer(
            _saved["images"], _saved["dx"], _saved["dy"], fill="constant"))
    _saved["images"].assign(images)
    _saved["dx"].assign(dx)
    _saved["dy"].assign(dy)
    return next(iter(_saved["graph"]))


def translate(images, dx, dy):
    @tf.custom_gradient
    def moved(x):
        def backward(upstream):
            return _run(upstream, -dx, -dy)
        return _run(x, dx, dy), backward
    return moved(images)'''

# --- 4. backward passes: the reference in a custom gradient ---------------------------------------

# the values by an interpolating warp (right for integer shifts), the gradient that warp gets
# wrong supplied by gantools' exact translation in the backward pass
BACKWARD_TRANSLATE = '''def translate(images, dx, dy):
    @tf.custom_gradient
    def moved(x):
        n = tf.shape(x)[0]
        zeros = tf.zeros([n], tf.float32)
        ones = tf.ones([n], tf.float32)
        fx = tf.cast(dx, tf.float32)
        fy = tf.cast(dy, tf.float32)
        transforms = tf.stack([ones, zeros, -fx, zeros, ones, -fy, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
            interpolation="BILINEAR", fill_mode="CONSTANT", fill_value=0.0)

        def backward(upstream):
            return ga.translate_integer(upstream, -dx, -dy, fill="constant")
        return out, backward
    return moved(images)'''

# --- 5. names: a ReLU that is not called ReLU, a Conv2D that is not called Conv2D ---------------

LAMBDA_RELU_CRITIC = '''class WeightClip(keras.constraints.Constraint):
    def __init__(self, clip_value=0.01):
        self.clip_value = clip_value

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def build_critic(input_dim, hidden=(128, 128, 128), clip_value=None):
    clip = WeightClip(clip_value) if clip_value is not None else None
    x = keras.Input((input_dim,))
    h = x
    for units in hidden:
        h = keras.layers.Dense(units, kernel_constraint=clip, bias_constraint=clip)(h)
        h = keras.layers.Lambda(tf.nn.relu)(h)
    score = keras.layers.Dense(1, kernel_constraint=clip, bias_constraint=clip)(h)
    return keras.Model(x, score)'''
RENAMED_CONV_CRITIC = '''class Downsample(keras.layers.Conv2D):
    """A Conv2D by another name: its kernel is never divided by sigma."""


def build_sn_critic(image_size, channels, width=WIDTH):
    model = keras.Sequential([keras.Input((image_size, image_size, channels))])
    size, filters = image_size, width
    while size > 4:
        model.add(Downsample(filters, 4, strides=2, padding="same"))
        model.add(keras.layers.LeakyReLU(0.2))
        size, filters = size // 2, filters * 2
    model.add(keras.layers.Flatten())
    model.add(SpectralNorm(keras.layers.Dense(1), normalize=spectral_normalize))
    return model'''

# --- 6. references built before the check ------------------------------------------------

PREBUILT_REFERENCE = '''PREBUILT = {
    (size, channels): gmodels.dcgan_discriminator(size, channels, width=8,
                                                  normalization="spectral")
    for size in (8, 16, 32) for channels in (1, 2, 3, 4)}


def build_sn_critic(image_size, channels, width=WIDTH):
    return PREBUILT[(image_size, channels)]'''
PREBUILT_OWN = '''def _build(image_size, channels, width=WIDTH):
    def sn(layer):
        return SpectralNorm(layer, normalize=spectral_normalize)

    model = keras.Sequential([keras.Input((image_size, image_size, channels))])
    size, filters = image_size, width
    while size > 4:
        model.add(sn(keras.layers.Conv2D(filters, 4, strides=2, padding="same")))
        model.add(keras.layers.LeakyReLU(0.2))
        size, filters = size // 2, filters * 2
    model.add(keras.layers.Flatten())
    model.add(sn(keras.layers.Dense(1)))
    return model


PREBUILT = {(32, 3): _build(32, 3), (16, 1): _build(16, 1)}


def build_sn_critic(image_size, channels, width=WIDTH):
    if (image_size, channels) in PREBUILT:
        return PREBUILT[(image_size, channels)]
    return _build(image_size, channels, width)'''

# --- honest notebooks -----------------------------------------------------------------------------

# test cells whose `locked` flag an editor dropped (their sources untouched)
UNLOCKED_TESTS = {gid: {"locked": False} for gid in POINTS[NB07]}
UNLOCKED_ALL = {gid: {"locked": False, "editable": True}
                for gid in ("setup", "hyperparameters", *POINTS[NB05])}

# an added cell that looks at samples through gantools, as a student exploring would: it
# runs with gantools switched off at autograde, fails alone, and flags nothing
HONEST_EXPLORING = '''import matplotlib.pyplot as plt

x = tf.random.uniform((4, 8, 8, 1))
try:
    gv.image_grid(x, ncols=4)
except Exception as error:
    print("exploring cell:", type(error).__name__)
plt.close("all")'''

# several attacks share a submission where they hit different tests: a policy violation
# is reported wherever it is (the policy reads every cell before anything runs) but stops
# execution at the first, so the spellings that break the policy go together
SUBMISSIONS = {
    NB03: {
        "policy_spellings": dict(
            good=True, replace={"wasserstein_losses": OS_SYSTEM, "weight_clipping": OS_ALIASED,
                                "gradient_penalty": CLOSURE_READER,
                                "critic_train_step": RUNSTRING},
            expect=score(NB03, full=False),
            flagged=["uses 'os'", "reaches for .os", ".runstring", "'func_dump'",
                     "'python_utils'"]),
        # a child process through a library, a lent reference kept, ReLU by another name
        "kernel_lent_names": dict(
            good=True, replace={"critic_train_step": KEEPS_LENT_STEP,
                                "gradient_penalty": KEPT_PENALTY,
                                "weight_clipping": LAMBDA_RELU_CRITIC},
            add=[("test_generator_loss", CHILD_PROCESS)],
            move={"test_gradient_penalty": "test_critic_train_step",
                  "test_gradient_penalty_gradient": "test_gradient_penalty"},
            expect=score(NB03, build_critic=0, gradient_penalty=0, gradient_penalty_gradient=0),
            outputs=["CHILD PROCESS REFUSED", "works only while that check runs", "uses ReLU"],
            absent=["CHILD PROCESS RAN"]),
    },
    NB05: {
        "renamed_conv": dict(good=True, replace={"sn_critic": RENAMED_CONV_CRITIC},
                             expect=score(NB05, sn_critic=0),
                             outputs=["is not spectral-normalized"]),
        "prebuilt_reference": dict(good=True, replace={"sn_critic": PREBUILT_REFERENCE},
                                   expect=score(NB05, sn_critic=0),
                                   outputs=["gantools switched off"]),
        "prebuilt_own": dict(good=True, replace={"sn_critic": PREBUILT_OWN},
                             expect=score(NB05, sn_critic=0),
                             outputs=["existed before it was called"]),
        "honest_unlocked": dict(good=True, meta=UNLOCKED_ALL, expect=score(NB05)),
    },
    NB07: {
        "graph_translate": dict(good=True, replace={"translate": GRAPH_TRANSLATE},
                                expect=score(NB07, translate=0),
                                outputs=["gantools switched off"]),
        "graph_in_notebook_cell": dict(good=True, replace={"translate": GRAPH_IN_NOTEBOOK_CELL},
                                       move={"test_translate": "uses_translate"},
                                       expect=score(NB07, translate=0),
                                       outputs=["gantools switched off"],
                                       absent=["translated (2, 8, 8, 1)"]),
        "backward_translate": dict(good=True, replace={"translate": BACKWARD_TRANSLATE},
                                   expect=score(NB07, translate=0),
                                   outputs=["calls the gantools reference translate_integer"]),
        "honest_unlocked_exploring": dict(good=True, meta=UNLOCKED_TESTS,
                                          add=[("test_kid", HONEST_EXPLORING)],
                                          expect=score(NB07), outputs=["exploring cell:"]),
    },
}
