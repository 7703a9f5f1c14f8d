"""Differentiable augmentation for GANs on little data: exact-gradient operations
(:mod:`gantools.augment.ops`), a pipeline applying each with probability p, and the adaptive
control of p (ADA).

Augmenting only the real images teaches D that augmented images are real, and G learns to
draw them ("leaking"). ADA (Karras et al., 2020) and DiffAugment (Zhao et al., 2020)
therefore augment **every** image D sees, real and fake, and the fakes inside G's tape, so
that G's gradient flows back through the augmentation. That is why the operations must have
exact gradients. Karras et al. show that with p below about 0.8 their pipeline does not
leak (applied with probability p < 1, a flip or a rotation leaves the un-augmented images
the most common ones, so D can still tell what the data look like); ADA raises p only as far
as D's overfitting requires.

``GANTrainer(augment=AdaptiveAugmenter())`` applies the augmenter to all of D's inputs and
calls its ``observe`` with D's outputs on the real batch at every D update; the trainer's
history records p (``history["augment_p"]``) and its checkpoints keep p, the controller's
accumulators and the augmentation's random state, so a resumed run continues exactly.

>>> aug = Augmenter(p=0.0)
>>> x = tf.random.uniform((2, 8, 8, 1), -1, 1)
>>> bool(tf.reduce_all(aug(x) == x))  # p = 0: the identity
True
"""

from __future__ import annotations

import math

import tensorflow as tf

from .ops import (
    FILLS,
    affine,
    brightness,
    contrast,
    cutout,
    flip_left_right,
    rotate90,
    saturation,
    translate_integer,
)

# one name per operation, in the order a pipeline applies them (ADA's order: pixel blitting,
# then the geometric warp, then colour; cutout last, as in DiffAugment)
OPERATIONS = ("flip", "rotate90", "translate", "scale", "rotate", "translate_fraction",
              "brightness", "contrast", "saturation", "cutout")
PIPELINES = {
    # StyleGAN2-ADA's "bgc" (without its anisotropic scaling, luma flip and hue rotation)
    "bgc": ("flip", "rotate90", "translate", "scale", "rotate", "translate_fraction",
            "brightness", "contrast", "saturation"),
    "bg": ("flip", "rotate90", "translate", "scale", "rotate", "translate_fraction"),
    "blit": ("flip", "rotate90", "translate"),
    # DiffAugment's "color,translation,cutout"
    "diffaugment": ("brightness", "saturation", "contrast", "translate", "cutout"),
}
CONTROLLERS = ("integral", "sign")


def _all_reduce(value, op):
    """Across replicas when running under a multi-replica strategy; otherwise as is."""
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        return context.all_reduce(op, value)
    return value


def _operations(ops):
    if isinstance(ops, str):
        if ops not in PIPELINES:
            raise ValueError(f"unknown pipeline {ops!r}; choose one of {sorted(PIPELINES)} or "
                             f"give a list of operations from {OPERATIONS}.")
        return PIPELINES[ops]
    ops = tuple(ops)
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown or not ops:
        raise ValueError(f"unknown operations {unknown}; choose from {OPERATIONS}.")
    return tuple(op for op in OPERATIONS if op in ops)


def augment(images, p, rng: tf.random.Generator, ops="bgc", fill: str = "reflect",
            max_translation: float = 0.125, cutout_size: float = 0.5):
    """Apply each operation of ``ops`` to each image independently with probability ``p``.

    Parameters, drawn from ``rng`` for the images selected (StyleGAN2-ADA's distributions):
    a flip or not (½ each); 0–3 quarter turns; an integer translation of up to
    ``max_translation`` of the size; isotropic scale lognormal(0, (0.2 ln 2)²); rotation
    uniform in [−π, π]; fractional translation normal with std ``max_translation`` of the
    size; brightness + N(0, 0.2²); contrast and saturation × lognormal(0, (0.5 ln 2)²) and
    lognormal(0, (ln 2)²); a cutout square of ``cutout_size`` of the size (DiffAugment).
    """
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose one of {FILLS}.")
    ops = _operations(ops)
    x = tf.convert_to_tensor(images)
    if x.shape.rank != 4:
        raise ValueError(f"augment takes a batch of images (B, H, W, C), got shape {x.shape}.")
    n = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    p = tf.clip_by_value(tf.cast(p, tf.float32), 0.0, 1.0)

    def chosen():
        return rng.uniform([n]) < p

    def where(selected, augmented, images):
        """Augmented images where selected, the others untouched (bit for bit)."""
        return tf.where(selected[:, None, None, None], augmented, images)

    if "flip" in ops:
        x = flip_left_right(x, chosen() & (rng.uniform([n]) < 0.5))
    if "rotate90" in ops and h == w:
        selected, k = chosen(), rng.uniform([n], 0, 4, dtype=tf.int32)
        x = where(selected, rotate90(x, k), x)
    if "translate" in ops:
        limit_x, limit_y = round(max_translation * w), round(max_translation * h)
        dx = rng.uniform([n], -limit_x, limit_x + 1, dtype=tf.int32)
        dy = rng.uniform([n], -limit_y, limit_y + 1, dtype=tf.int32)
        selected = chosen()
        x = where(selected, translate_integer(x, dx, dy, fill), x)
    if any(op in ops for op in ("scale", "rotate", "translate_fraction")):
        one, zero, none = tf.ones([n]), tf.zeros([n]), tf.zeros([n], tf.bool)
        use_scale = chosen() if "scale" in ops else none
        scale = tf.where(use_scale, tf.exp(rng.normal([n]) * 0.2 * math.log(2.0)), one)
        use_angle = chosen() if "rotate" in ops else none
        angle = tf.where(use_angle, rng.uniform([n], -math.pi, math.pi), zero)
        use_shift = chosen() if "translate_fraction" in ops else none
        tx = tf.where(use_shift, rng.normal([n]) * max_translation * w, zero)
        ty = tf.where(use_shift, rng.normal([n]) * max_translation * h, zero)
        warped = affine(x, angle=tf.cast(angle, x.dtype), scale=tf.cast(scale, x.dtype),
                        tx=tf.cast(tx, x.dtype), ty=tf.cast(ty, x.dtype), fill=fill)
        x = where(use_scale | use_angle | use_shift, warped, x)
    if "brightness" in ops:
        selected, delta = chosen(), rng.normal([n]) * 0.2
        x = where(selected, brightness(x, tf.cast(delta, x.dtype)), x)
    if "contrast" in ops:
        selected, factor = chosen(), tf.exp(rng.normal([n]) * 0.5 * math.log(2.0))
        x = where(selected, contrast(x, tf.cast(factor, x.dtype)), x)
    if "saturation" in ops:
        selected, factor = chosen(), tf.exp(rng.normal([n]) * math.log(2.0))
        x = where(selected, saturation(x, tf.cast(factor, x.dtype)), x)
    if "cutout" in ops:
        size = max(1, round(cutout_size * min(h, w)))
        selected = chosen()
        rows = rng.uniform([n], 0, h, dtype=tf.int32)
        cols = rng.uniform([n], 0, w, dtype=tf.int32)
        x = where(selected, cutout(x, rows, cols, size), x)
    return x


class Augmenter(tf.Module):
    """Augments a batch with a fixed probability ``p`` (a variable you may set).

    Build it inside ``strategy.scope()`` when training with a ``tf.distribute`` strategy,
    like the models: its random generator then gives every replica its own stream.
    """

    def __init__(self, p: float = 0.0, ops="bgc", seed: int = 0, fill: str = "reflect",
                 max_translation: float = 0.125, cutout_size: float = 0.5, name=None):
        super().__init__(name=name)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p is a probability in [0, 1], got {p}.")
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}; choose one of {FILLS}.")
        self.ops = _operations(ops)
        self.fill, self.max_translation, self.cutout_size = fill, max_translation, cutout_size
        self.p = tf.Variable(float(p), trainable=False, dtype=tf.float32, name="p",
                             aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.rng = tf.random.Generator.from_seed(seed)

    def __call__(self, images):
        return augment(images, self.p, self.rng, self.ops, self.fill, self.max_translation,
                       self.cutout_size)


class AdaptiveAugmenter(Augmenter):
    """ADA: an :class:`Augmenter` whose p follows D's overfitting on the real images.

    ``controller="integral"`` (the default; the keras-io ADA example): after every D update,
    with a = the fraction of real images D calls real (logit > 0),
    p ← clip(p + (a − target) / integration_steps, 0, 1), target 0.85.

    ``controller="sign"`` (StyleGAN2-ADA): r_t = E[sign D(x_real)] = 2a − 1, accumulated over
    ``interval`` D updates; then p ← max(p + sign(r_t − target) · N / adjust_images, 0), N the
    images seen in the interval, target 0.6 (p above 1 acts as 1).

    The integral rule is the default because it moves p in proportion to the error, fast when
    D is far from its target and slowly near it, and at every step; with the paper's
    ``adjust_images`` = 500,000 the sign rule needs 500,000 real images to move p from 0 to 1,
    far more than the course's short runs show (lower it to react faster).

    ``update``: your own integral rule, ``update(p, real_logits, target, integration_steps)
    -> new p``, used in place of the built-in one (single device).
    """

    def __init__(self, controller: str = "integral", target: float | None = None,
                 integration_steps: int = 1000, interval: int = 4,
                 adjust_images: int = 500_000, p: float = 0.0, ops="bgc", seed: int = 0,
                 fill: str = "reflect", max_translation: float = 0.125,
                 cutout_size: float = 0.5, update=None, name=None):
        super().__init__(p, ops, seed, fill, max_translation, cutout_size, name=name)
        if update is not None and (controller != "integral" or not callable(update)):
            raise ValueError("update is a function update(p, real_logits, target, "
                             "integration_steps) -> new p, for the integral controller.")
        self.update = update
        if controller not in CONTROLLERS:
            raise ValueError(f"unknown controller {controller!r}; choose one of {CONTROLLERS}.")
        for label, value in (("integration_steps", integration_steps), ("interval", interval),
                             ("adjust_images", adjust_images)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}.")
        self.controller = controller
        self.target = float(target if target is not None else
                            (0.85 if controller == "integral" else 0.6))
        lo = 0.0 if controller == "integral" else -1.0
        if not lo <= self.target <= 1.0:
            raise ValueError(f"target must lie in [{lo}, 1] for the {controller} controller "
                             f"(it is compared with {'an accuracy' if lo == 0 else 'E sign D'}),"
                             f" got {self.target}.")
        self.integration_steps, self.interval = integration_steps, interval
        self.adjust_images = adjust_images
        aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.sign_sum = tf.Variable(0.0, trainable=False, name="sign_sum",
                                    aggregation=aggregation)
        self.seen = tf.Variable(0.0, trainable=False, name="seen", aggregation=aggregation)
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates",
                                   aggregation=aggregation)

    def observe(self, real_logits):
        """Update p from D's outputs on a batch of real images (called by GANTrainer)."""
        real = tf.reshape(tf.cast(real_logits, tf.float32), [-1])
        if self.update is not None:  # your own integral controller (notebook 07)
            self.p.assign(tf.cast(tf.reshape(self.update(
                tf.convert_to_tensor(self.p), real, self.target, self.integration_steps), []),
                tf.float32))
            return
        if self.controller == "integral":
            accuracy = _all_reduce(tf.reduce_mean(tf.cast(real > 0, tf.float32)),
                                   tf.distribute.ReduceOp.MEAN)
            step = (accuracy - self.target) / self.integration_steps
            self.p.assign(tf.clip_by_value(self.p + step, 0.0, 1.0))
            return
        total = _all_reduce(tf.reduce_sum(tf.sign(real)), tf.distribute.ReduceOp.SUM)
        count = _all_reduce(tf.cast(tf.size(real), tf.float32), tf.distribute.ReduceOp.SUM)
        self.sign_sum.assign_add(total)
        self.seen.assign_add(count)
        self.updates.assign_add(1)

        def adjust():
            r_t = self.sign_sum / self.seen
            step = tf.sign(r_t - self.target) * self.seen / self.adjust_images
            self.p.assign(tf.maximum(self.p + step, 0.0))
            self.sign_sum.assign(0.0)
            self.seen.assign(0.0)
            return tf.constant(True)

        tf.cond(self.updates % self.interval == 0, adjust, lambda: tf.constant(False))


__all__ = [
    "CONTROLLERS", "FILLS", "OPERATIONS", "PIPELINES", "AdaptiveAugmenter", "Augmenter",
    "affine", "augment", "brightness", "contrast", "cutout", "flip_left_right", "rotate90",
    "saturation", "translate_integer",
]
