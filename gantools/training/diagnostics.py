"""Plain-words detection of the training pathologies the course teaches.

Each detector reads the :class:`~gantools.training.history.History` and returns a
message (what is happening, in numbers, and the remedies the course recommends) or
``None``:

* :func:`discriminator_overpowers` — D classifies (almost) every image right, real and
  fake, over 200 steps, while G loses ground (its loss climbs or its gradient fades): G
  gets no useful gradient. A healthy DCGAN's D is right on 70–95 % of images, after a
  spell near 100 % early in training while G still draws noise and its gradient grows;
  that spell is not reported.
* :func:`generator_fools_weak_discriminator` — D calls most fakes real over a long
  window: D is too weak to teach G anything.
* :func:`mode_collapse` — samples from a fixed latent batch are far less diverse
  than real data, and not getting more diverse (a generator that is still spreading
  out early in training is not collapsed).

The accuracy detectors need a loss with a fixed real/fake threshold; they stay silent
for the Wasserstein critic, whose scores have no fixed scale.
"""

from __future__ import annotations

import numpy as np

WINDOW = 100
# Measured on the course's runs (tests/library/data/diagnostic_runs.npz): early in a
# healthy DCGAN run on mnist5k, while G still draws noise, D is right on more than 99 % of
# images for up to about 100 steps, then G catches up (70-85 %); in the stalled minimax run
# D is right on every image from about step 60 on, for good. Hence a window of 200 steps.
OVERPOWER_ACCURACY = 0.99
OVERPOWER_WINDOW = 2 * WINDOW
OVERPOWER_EACH = 0.98  # real and fake alike: a D that is right on one kind only is not it
# ... and G losing ground over the window: its loss climbing by a quarter (plus 0.05), or
# its gradient norm halving. A healthy run whose D is right on 99 % of images for 200 steps
# early on (the 32×32 digits DCGAN of notebook 04) keeps its G loss level and its gradient
# growing while G catches up.
CLIMB = 0.25
FADE = 0.5
FOOLED_FAKE_ACCURACY = 0.2
COLLAPSE_RATIO = 0.3
# A freshly initialized generator maps every z to nearly the same small output; that is
# not collapse, so the diversity check waits until training is under way.
COLLAPSE_WARMUP = 200


def _window(history, window):
    if len(history) < window:
        return None
    return slice(len(history) - window, len(history))


def discriminator_overpowers(history, window: int = OVERPOWER_WINDOW) -> str | None:
    w = _window(history, window)
    if w is None:
        return None
    real, fake = np.mean(history["d_acc_real"][w]), np.mean(history["d_acc_fake"][w])
    acc = 0.5 * (real + fake)
    if acc < OVERPOWER_ACCURACY or min(real, fake) < OVERPOWER_EACH:
        return None
    g, g_norm = history["g_loss"][w], history["g_grad_norm"][w]
    third = max(1, window // 3)
    loss_from, loss_to = np.mean(g[:third]), np.mean(g[-third:])
    norm_from, norm_to = np.mean(g_norm[:third]), np.mean(g_norm[-third:])
    climbing = loss_to > loss_from + CLIMB * abs(loss_from) + 0.05
    fading = norm_to < FADE * norm_from
    if not (climbing or fading):
        return None
    return (
        f"The discriminator overpowers the generator: over the last {window} steps D "
        f"classified {100 * acc:.1f}% of images correctly (a healthy D: 70-95%), and between "
        f"the first and the last third of them the generator loss went from {loss_from:.2f} "
        f"to {loss_to:.2f} and G's gradient norm from {norm_from:.3g} to {norm_to:.3g}. A D "
        "this sure of itself gives G vanishing (minimax loss) or useless (saturated) "
        "gradients. Remedies: use the non-saturating G loss; one-sided label smoothing (real "
        "label 0.9); a smaller D learning rate or fewer D steps per G step; dropout or noise "
        "in D; data augmentation for D (ADA); spectral normalization or a gradient penalty."
    )


def generator_fools_weak_discriminator(history, window: int = WINDOW) -> str | None:
    w = _window(history, window)
    if w is None:
        return None
    fake_acc = history["d_acc_fake"][w]
    if np.mean(fake_acc) > FOOLED_FAKE_ACCURACY:
        return None
    return (
        f"The generator fools a weak discriminator: over the last {window} steps D labelled "
        f"only {100 * np.mean(fake_acc):.0f}% of generated images as fake. A D that cannot "
        "tell real from fake gives G no direction to improve in. Remedies: check that the D "
        "step updates D's variables (and only those); give D more capacity or more steps per "
        "G step (n_critic); raise D's learning rate relative to G's (TTUR); reduce D's "
        "dropout, label smoothing or label noise."
    )


def diversity(samples) -> float:
    """Mean pairwise Euclidean distance between the rows (flattened) of ``samples``."""
    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    n = len(x)
    if n < 2:
        raise ValueError("diversity needs at least 2 samples.")
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean())


def mode_collapse(history, threshold: float = COLLAPSE_RATIO,
                  warmup: int = COLLAPSE_WARMUP) -> str | None:
    checks = [c for c in history.checks.get("diversity_ratio", []) if c[0] >= warmup]
    if len(checks) < 2:
        return None
    (_, previous), (step, ratio) = checks[-2], checks[-1]
    if ratio >= threshold or ratio > 1.1 * previous:
        return None
    return (
        f"Mode collapse: at step {step} the samples from the fixed latent batch are only "
        f"{100 * ratio:.0f}% as diverse as real data (mean pairwise distance), so G maps many "
        "z to nearly the same output. Remedies: minibatch discrimination or a minibatch "
        "standard-deviation layer in D; feature matching for G; a Wasserstein loss with a "
        "gradient penalty; a lower learning rate; keep training a while (collapse sometimes "
        "heals) and look at the samples."
    )


DETECTORS = {
    "discriminator_overpowers": discriminator_overpowers,
    "generator_fools_weak_discriminator": generator_fools_weak_discriminator,
    "mode_collapse": mode_collapse,
}


class Diagnostician:
    """Runs the detectors and reports each pathology once when it starts.

    A pathology is reported again only after it has cleared in between.
    """

    def __init__(self, accuracy_detectors: bool = True, window: int = WINDOW):
        self.active: set[str] = set()
        # the weak-D window; D's dominance must last twice as long (see OVERPOWER_WINDOW)
        self.windows = {"discriminator_overpowers": 2 * window,
                        "generator_fools_weak_discriminator": window}
        self.kinds = list(DETECTORS) if accuracy_detectors else ["mode_collapse"]

    def check(self, history, step: int) -> list[dict]:
        new = []
        for kind in self.kinds:
            fn = DETECTORS[kind]
            message = fn(history) if kind == "mode_collapse" else fn(history, self.windows[kind])
            if message is None:
                self.active.discard(kind)
            elif kind not in self.active:
                self.active.add(kind)
                history.add_event(step, kind, message)
                new.append(history.events[-1])
        return new
