"""Loss pairs by name, so a training run can say ``loss="hinge"``.

Each :class:`LossPair` has ``d(real_out, fake_out)`` and ``g(fake_out)``, both
minimized. ``logits`` tells whether D's output is read as a logit (cross-entropy
losses) or as an unbounded score (Wasserstein, least squares, hinge). ``threshold`` is
the output value that separates "real" from "fake" when D's accuracy is measured: 0 for
logits, the midpoint of the two targets for least squares and hinge, and ``None`` for
the Wasserstein critic, whose scores have no fixed scale (the trainer then uses the
midpoint of the batch's mean real and mean fake scores).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from . import adversarial as adv


@dataclass(frozen=True)
class LossPair:
    name: str
    d: Callable
    g: Callable
    logits: bool
    description: str
    threshold: float | None = 0.0


_PAIRS = {
    p.name: p
    for p in [
        LossPair("minimax", adv.discriminator_loss, adv.minimax_generator_loss, True,
                 "original GAN: BCE for D, G minimizes E log(1 - D(G(z))) (saturates)"),
        LossPair("non-saturating", adv.discriminator_loss, adv.non_saturating_generator_loss,
                 True, "BCE for D, G minimizes -E log D(G(z)) (the usual choice)"),
        LossPair("wasserstein", adv.wasserstein_critic_loss, adv.wasserstein_generator_loss,
                 False, "WGAN: needs a Lipschitz critic (weight clipping or a gradient penalty)",
                 None),
        LossPair("least-squares", adv.least_squares_discriminator_loss,
                 adv.least_squares_generator_loss, False, "LSGAN with (a, b, c) = (0, 1, 1)",
                 0.5),
        LossPair("least-squares-chi2",
                 functools.partial(adv.least_squares_discriminator_loss, a=-1.0, b=1.0),
                 functools.partial(adv.least_squares_generator_loss, c=0.0), False,
                 "LSGAN with (a, b, c) = (-1, 1, 0), the Pearson χ² divergence"),
        LossPair("hinge", adv.hinge_discriminator_loss, adv.hinge_generator_loss, False,
                 "hinge loss (SAGAN, BigGAN)"),
    ]
}


def loss_names() -> list[str]:
    return list(_PAIRS)


def get_loss(name) -> LossPair:
    """The :class:`LossPair` called ``name``; a ``LossPair`` passes through unchanged."""
    if isinstance(name, LossPair):
        return name
    if name not in _PAIRS:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(_PAIRS)}.")
    return _PAIRS[name]


def register_loss(pair: LossPair, overwrite: bool = False) -> None:
    """Add a loss pair to the registry (e.g. a student's own)."""
    if pair.name in _PAIRS and not overwrite:
        raise ValueError(f"a loss called {pair.name!r} exists; pass overwrite=True to replace it.")
    _PAIRS[pair.name] = pair


def resolve_loss(loss, label_smoothing: float = 0.0) -> LossPair:
    """A registry name, a :class:`LossPair`, or a pair of callables ``(d_loss, g_loss)``."""
    if isinstance(loss, tuple | list):
        if len(loss) != 2 or not all(callable(f) for f in loss):
            raise ValueError(
                "a custom loss must be a pair of callables (d_loss(real_out, fake_out), "
                f"g_loss(fake_out)), got {loss!r}."
            )
        pair = LossPair("custom", loss[0], loss[1], True, "user-supplied loss pair")
    else:
        pair = get_loss(loss)
    if label_smoothing:
        if pair.d is not adv.discriminator_loss:
            raise ValueError(
                f"label_smoothing applies to the cross-entropy losses (minimax, non-saturating),"
                f" not to {pair.name!r}."
            )
        d = functools.partial(adv.discriminator_loss, label_smoothing=label_smoothing)
        pair = LossPair(pair.name, d, pair.g, pair.logits, pair.description, pair.threshold)
    return pair
