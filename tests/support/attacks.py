"""Submissions of notebooks 03, 05 and 07 that attack the grader, class by class, and honest
ones that must never be flagged; graded by tests/course/test_attacks.py through ``nbgrader
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

# --- found by a red-team review of the defences above (each now stopped) -----------------------

# 1. a class pattern of a match statement reads attributes by name (__builtins__ of any
# function), and from there __import__, getattr, setattr: the cell replaces the grading
# entry point with checks that print the confirmations and report the grader's own values
MATCH_FORGED_LOAD = '''def probe():
    pass


match probe:
    case object(__builtins__=table):
        pass
DU = "_" * 2
bring = table[DU + "import" + DU]
put = table["setattr"]
fetch = table["getattr"]
grading = bring("sys").modules["gancourse.checks"]
show = bring("IPython.display", None, None, ["display"]).display
original = fetch(grading, "lo" + "ad")
EVIDENCE = "application/vnd.gantools.evidence+json"


def forge(real, name):
    def check(fn, hidden=False, seed=0, nonce=None):
        if name in real.VERIFIED:
            s = nonce if hidden else 0
            values = [float(v) for v in real.expected(name, s, hidden)]
            show({EVIDENCE: {"check": name, "hidden": bool(hidden), "seed": int(s),
                             "values": values}, "text/plain": ""}, raw=True)
        print("✓", name, "(hidden)" if hidden else "")
    return check


class Forged:
    pass


def forged(assignment):
    real = original(assignment)
    checks = Forged()
    for name in dir(real):
        if name.startswith("check_"):
            put(checks, name, forge(real, name))
    return checks


put(grading, "lo" + "ad", forged)
print("ready")'''

# 1. a pickle written with np.memmap and read by np.load, allow_pickle passed through **
FORGE_CORE = r'''def _install():
    # one function: exec from np.load's frame gets separate globals and locals
    import sys
    from IPython.display import display as show

    grading = sys.modules["gancourse.checks"]
    original = grading.load
    evidence = "application/vnd.gantools.evidence+json"

    def forge(real, name):
        def check(fn, hidden=False, seed=0, nonce=None):
            if name in real.VERIFIED:
                s = nonce if hidden else 0
                values = [float(v) for v in real.expected(name, s, hidden)]
                show({evidence: {"check": name, "hidden": bool(hidden), "seed": int(s),
                                 "values": values}, "text/plain": ""}, raw=True)
            print("\u2713", name, "(hidden)" if hidden else "")
        return check

    class Forged:
        pass

    def forged(assignment):
        real = original(assignment)
        checks = Forged()
        for name in dir(real):
            if name.startswith("check_"):
                setattr(checks, name, forge(real, name))
        return checks

    grading.load = forged


_install()
'''


def _pickle_cell(code):
    escaped = code.replace("\\", "\\u005c").replace("\n", "\\u000a")
    return ('PAYLOAD = ' + repr(escaped) + '\n'
            'data = ("cbuiltins\\nexec\\n(V" + PAYLOAD + "\\ntR.").encode()\n'
            'sheet = np.memmap("notes.bin", dtype=np.uint8, mode="w+", shape=(len(data),))\n'
            'sheet[:] = np.frombuffer(data, np.uint8)\n'
            'sheet.flush()\n'
            'options = {"allow" + "_pickle": True}\n'
            'np.load("notes.bin", **options)\n'
            'print("ready")')

PICKLE_FORGED_LOAD = _pickle_cell(FORGE_CORE)

# 3. notebook 05's answers traced from gantools' own spectral_normalize into tf.data graphs
SN_GRAPH_NORMALIZE = '''_k = tf.Variable(tf.zeros([1, 1]), shape=tf.TensorShape(None))
_u = tf.Variable(tf.zeros([1]), shape=tf.TensorShape(None))
_g = tf.Variable(tf.zeros([1, 1]), shape=tf.TensorShape(None))


def _values(_):
    w, u, sigma = gmodels.spectral_normalize(_k, _u)
    return w, u


def _gradient(_):
    k = tf.identity(_k)
    with tf.GradientTape() as tape:
        tape.watch(k)
        w, u, sigma = gmodels.spectral_normalize(k, _u)
        total = tf.reduce_sum(w * _g)
    return tape.gradient(total, k)


_value_graph = tf.data.Dataset.range(1).map(_values)
_gradient_graph = tf.data.Dataset.range(1).map(_gradient)


def spectral_normalize(kernel, u):
    if not tf.executing_eagerly():  # the check only traces it there
        return kernel / tf.norm(kernel), u
    _k.assign(kernel)
    _u.assign(u)
    w, new_u = next(iter(_value_graph))

    @tf.custom_gradient
    def attach(k):
        def backward(upstream):
            _k.assign(k)
            _u.assign(u)
            _g.assign(upstream)
            return next(iter(_gradient_graph))
        return tf.identity(w), backward
    return attach(kernel), new_u'''
SN_GRAPH_POWER = '''_W = tf.Variable(tf.zeros([1, 1]), shape=tf.TensorShape(None))
_u0 = tf.Variable(tf.zeros([1]), shape=tf.TensorShape(None))


def _power_graph(k):
    def run(_):
        kernel = tf.transpose(_W)  # the reference works on K = Wᵀ
        w_sn, u, sigma = gmodels.spectral_normalize(kernel, _u0, k)
        before = _u0 if k == 1 else gmodels.spectral_normalize(kernel, _u0, k - 1)[1]
        v = tf.math.l2_normalize(tf.linalg.matvec(_W, before, transpose_a=True))
        return sigma, u, v
    return tf.data.Dataset.range(1).map(run)


_power_graphs = {k: _power_graph(k) for k in (1, 2, 3, 4, 5, 30)}


def power_iteration(W, u, iterations):
    _W.assign(W)
    _u0.assign(u)
    return tuple(next(iter(_power_graphs[iterations])))'''

# 3. a graph of the reference built by hand (raw placeholders) while a notebook cell runs the
# student's translate, imported inside a tf.data map during the check
GRAPHDEF_TRANSLATE = '''_saved = {}
_box = {}


def _capture(h, w):
    graph = tf.Graph()
    with graph.as_default():
        images = tf.raw_ops.Placeholder(dtype=tf.float32, shape=[None, h, w, None],
                                        name="images")
        dx = tf.raw_ops.Placeholder(dtype=tf.int32, shape=[None], name="dx")
        dy = tf.raw_ops.Placeholder(dtype=tf.int32, shape=[None], name="dy")
        tf.identity(ga.translate_integer(images, dx, dy, fill="constant"), name="moved")
    graph_def = graph.as_graph_def()
    return tf.data.Dataset.range(1).map(lambda _: tf.graph_util.import_graph_def(
        graph_def, input_map={"images:0": _box["images"].value(), "dx:0": _box["dx"].value(),
                              "dy:0": _box["dy"].value()}, return_elements=["moved:0"])[0])


def _run(images, dx, dy):
    _box["images"].assign(images)
    _box["dx"].assign(dx)
    _box["dy"].assign(dy)
    return next(iter(_saved[tuple(images.shape[1:3])]))


def translate(images, dx, dy):
    if not _saved:  # the first call comes from a notebook cell: gantools is on
        _box["images"] = tf.Variable(tf.zeros([1, 1, 1, 1]), shape=tf.TensorShape(None))
        _box["dx"] = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
        _box["dy"] = tf.Variable(tf.zeros([1], tf.int32), shape=tf.TensorShape(None))
        for h in range(4, 10):
            for w in range(4, 10):
                _saved[h, w] = _capture(h, w)

    @tf.custom_gradient
    def moved(x):
        def backward(upstream, variables=()):
            return _run(upstream, -dx, -dy), [None] * len(variables)
        return _run(x, dx, dy), backward
    return moved(images)'''

# 5. a model that lists only its normalized head when asked for its layers
HIDDEN_LAYERS_CRITIC = '''class Critic(keras.Model):
    """Bare (un-normalized) convolutions; only the last Dense is spectral-normalized, and the
    model tells whoever asks for its layers about that one alone."""

    def __init__(self, image_size, channels, width):
        super().__init__()
        self.convs = []
        size, filters = image_size, width
        while size > 4:
            self.convs.append(keras.layers.Conv2D(filters, 4, strides=2, padding="same"))
            size, filters = size // 2, filters * 2
        self.flat = keras.layers.Flatten()
        self.head = SpectralNorm(keras.layers.Dense(1))

    def call(self, x, training=False):
        for conv in self.convs:
            x = tf.nn.leaky_relu(conv(x), 0.2)
        return self.head(self.flat(x), training=training)

    def _flatten_layers(self, include_self=True, recursive=True):
        if include_self:
            yield self
        yield self.head
        yield self.head.layer


def build_sn_critic(image_size, channels, width=WIDTH):
    model = Critic(image_size, channels, width)
    model(tf.zeros((1, image_size, image_size, channels)))
    return model'''

# honest work that an earlier grader zeroed or flagged: a Keras warning on stderr in the test
# cell, a variable named input, constraints set on the layers the cell made in a loop
HONEST_INPUT_SHAPE_WARNING = '''class WeightClip(keras.constraints.Constraint):
    """Clips every weight to [-clip_value, clip_value] after each optimizer update."""

    def __init__(self, clip_value=0.01):
        self.clip_value = clip_value

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def build_critic(input_dim, hidden=(128, 128, 128), clip_value=None):
    """MLP critic: points (batch, input_dim) -> scores (batch, 1); clipped when clip_value."""
    clip = WeightClip(clip_value) if clip_value is not None else None
    model = keras.Sequential()
    for i, units in enumerate(hidden):
        extra = {"input_shape": (input_dim,)} if i == 0 else {}
        model.add(keras.layers.Dense(units, kernel_constraint=clip, bias_constraint=clip,
                                     **extra))
        model.add(keras.layers.LeakyReLU(0.2))
    model.add(keras.layers.Dense(1, kernel_constraint=clip, bias_constraint=clip))
    return model'''
HONEST_INPUT_NAME = '''def gradient_penalty(critic, real, fake):
    """GP = mean over the batch of (||grad_xhat f(xhat)||_2 - 1)^2, xhat between real and fake."""
    shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    eps = tf.random.uniform(shape, 0.0, 1.0)
    input = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as inner:
        inner.watch(input)
        scores = critic(input, training=True)
    grads = inner.gradient(scores, input)
    squares = tf.reduce_sum(tf.square(grads), axis=tf.range(1, tf.rank(grads)))
    return tf.reduce_mean(tf.square(tf.sqrt(squares + 1e-12) - 1.0))'''
HONEST_LOOP_CONSTRAINTS = '''class WeightClip(keras.constraints.Constraint):
    """Clips every weight to [-clip_value, clip_value] after each optimizer update."""

    def __init__(self, clip_value=0.01):
        self.clip_value = clip_value

    def __call__(self, w):
        return tf.clip_by_value(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def build_critic(input_dim, hidden=(128, 128, 128), clip_value=None):
    """MLP critic: points (batch, input_dim) -> scores (batch, 1); clipped when clip_value."""
    dense = [keras.layers.Dense(units) for units in (*hidden, 1)]
    if clip_value is not None:
        for layer in dense:
            layer.kernel_constraint = WeightClip(clip_value)
            layer.bias_constraint = WeightClip(clip_value)
    x = keras.Input((input_dim,))
    h = x
    for layer in dense[:-1]:
        h = keras.layers.LeakyReLU(0.2)(layer(h))
    return keras.Model(x, dense[-1](h), name="critic")'''


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
        "honest_warning_and_input": dict(
            good=True, replace={"weight_clipping": HONEST_INPUT_SHAPE_WARNING,
                                "gradient_penalty": HONEST_INPUT_NAME},
            expect=score(NB03), outputs=["input_shape"]),
        "honest_loop_constraints": dict(good=True,
                                        replace={"weight_clipping": HONEST_LOOP_CONSTRAINTS},
                                        expect=score(NB03)),
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
        "sn_graph": dict(replace={"spectral_normalize": SN_GRAPH_NORMALIZE,
                                  "power_iteration": SN_GRAPH_POWER},
                         expect=score(NB05, full=False), outputs=["gantools switched off"]),
        "hidden_layers": dict(good=True, replace={"sn_critic": HIDDEN_LAYERS_CRITIC},
                              expect=score(NB05, sn_critic=0),
                              outputs=["is not spectral-normalized"]),
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
        "forged_load": dict(add=[("hyperparameters", MATCH_FORGED_LOAD),
                                 ("hyperparameters", PICKLE_FORGED_LOAD)],
                            expect=score(NB07, full=False),
                            flagged=["dunder attribute .__builtins__",
                                     "keyword arguments whose names are computed"]),
        "graphdef_translate": dict(good=True, replace={"translate": GRAPHDEF_TRANSLATE},
                                   move={"test_translate": "uses_translate"},
                                   expect=score(NB07, full=False, kid=2),
                                   flagged=[".Graph", ".Placeholder", ".graph_util",
                                            ".as_graph_def"]),
        "honest_unlocked_exploring": dict(good=True, meta=UNLOCKED_TESTS,
                                          add=[("test_kid", HONEST_EXPLORING)],
                                          expect=score(NB07), outputs=["exploring cell:"]),
    },
}
