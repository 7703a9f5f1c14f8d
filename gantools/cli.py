"""``python -m gantools train``: train a GAN from the command line.

Example::

    python -m gantools train --dataset mnist5k --loss non-saturating --steps 300 --out runs/demo

writes ``samples.png`` (EMA samples from the fixed latent batch), ``curves.png``,
``history.json``, ``generator.keras`` and ``checkpoints/`` into the output folder.
Stop it any time with Ctrl-C and continue with ``--resume``: the resumed run ends with
the same weights as an uninterrupted one (exactly so with ``--deterministic``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .runtime import quiet_tensorflow_import


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fail(prog, message, status=2):
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"{prog}: error: {one_line}\n")
    sys.exit(status)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gantools", description="Tools of the GAN course.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="train a GAN on a dataset and save pictures",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = t.add_argument_group("data")
    data.add_argument("--dataset", default="mnist5k",
                      help="mnist5k, digits, shapes, ring, grid, mnist, fashion_mnist, cifar10, "
                      "caltech_birds (default: mnist5k)")
    data.add_argument("--image-size", type=int, default=None,
                      help="image side in pixels: 8, 14, 16, 28, 32, 56 or 64 (default: the "
                      "dataset's)")
    data.add_argument("--batch-size", type=int, default=64, help="examples per batch (64)")
    data.add_argument("--limit", type=int, default=None,
                      help="train on a fixed subset of this many examples")
    model = t.add_argument_group("model")
    model.add_argument("--latent-dim", type=int, default=64, help="size of z (64)")
    model.add_argument("--width", type=int, default=32,
                       help="channels of the largest feature map, or MLP units (32)")
    model.add_argument("--depth", type=int, default=1, help="convolutions per resolution (1)")
    model.add_argument("--normalization", default="batch",
                       choices=["batch", "layer", "none", "spectral"],
                       help="normalization in G and D (batch)")
    model.add_argument("--upsampling", default="transpose", choices=["transpose", "upsample"])
    train = t.add_argument_group("training")
    train.add_argument("--loss", default="non-saturating",
                       help="minimax, non-saturating, wasserstein, least-squares, "
                       "least-squares-chi2, hinge (non-saturating)")
    train.add_argument("--steps", type=int, default=300, help="total generator steps (300)")
    train.add_argument("--n-critic", type=int, default=1, help="D steps per G step (1)")
    train.add_argument("--penalty", default="none", choices=["none", "gp", "r1"])
    train.add_argument("--penalty-weight", type=float, default=10.0, help="λ of the penalty (10)")
    train.add_argument("--label-smoothing", type=float, default=0.0,
                       help="one-sided smoothing of the real label, e.g. 0.1")
    train.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (2e-4)")
    train.add_argument("--beta1", type=float, default=0.5, help="Adam β1 (0.5)")
    train.add_argument("--ema", type=float, default=0.999,
                       help="decay of the averaged generator; 0 turns it off (0.999)")
    train.add_argument("--steps-per-call", type=int, default=1,
                       help="steps per compiled call (1)")
    train.add_argument("--reuse-fakes", action="store_true",
                       help="the G update reuses the D update's fakes (one G pass fewer)")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    out = t.add_argument_group("output")
    out.add_argument("--out", default="runs/demo", help="output folder (runs/demo)")
    out.add_argument("--every", type=int, default=100,
                     help="checkpoint, diagnose and refresh pictures every N steps (100)")
    out.add_argument("--resume", action="store_true",
                     help="continue from the checkpoint in --out up to --steps in total")
    out.add_argument("--deterministic", action="store_true",
                     help="enable TensorFlow op determinism (bit-exact reruns on a CPU)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _models(args, info):
    import gantools.models as gm

    if info.kind == "points":
        g = gm.mlp_generator(args.latent_dim, hidden=(args.width * 4,) * 3)
        d = gm.mlp_discriminator(hidden=(args.width * 4,) * 3,
                                 spectral=args.normalization == "spectral")
        return g, d
    size = args.image_size or info.default_size
    g = gm.dcgan_generator(size, info.channels, args.latent_dim, width=args.width,
                           depth=args.depth, upsampling=args.upsampling,
                           normalization=args.normalization)
    d = gm.dcgan_discriminator(size, info.channels, width=args.width, depth=args.depth,
                               normalization=args.normalization)
    return g, d


def train(args, prog) -> int:
    import keras
    import tensorflow as tf

    import gantools.data as gd
    from gantools.training import GANTrainer, TrainingDiverged
    from gantools.viz import plot_history, save_grid, scatter_2d

    info = gd.info(args.dataset)
    penalty = None if args.penalty == "none" else args.penalty
    if penalty == "gp" and args.normalization == "batch" and info.kind == "image":
        raise ValueError("a gradient penalty needs a critic without batch norm (each example's "
                         "gradient must not depend on the rest of the batch): add "
                         "--normalization layer, none or spectral")
    for name in ("steps", "batch_size", "every", "n_critic", "latent_dim", "width"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got "
                             f"{getattr(args, name)}")
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    has_checkpoint = tf.train.latest_checkpoint(str(ckpt_dir)) is not None
    if has_checkpoint and not args.resume:
        raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it or "
                         "choose another --out")
    if args.resume and not has_checkpoint:
        raise ValueError(f"--resume: no checkpoint in {ckpt_dir}; run without --resume first")
    kwargs = {} if info.kind == "points" else {"image_size": args.image_size}
    dataset = gd.load(args.dataset, batch_size=args.batch_size, limit=args.limit,
                      seed=args.seed, **kwargs)
    g, d = _models(args, info)
    trainer = GANTrainer(g, d, loss=args.loss, learning_rate=args.lr, beta_1=args.beta1,
                         n_critic=args.n_critic, penalty=penalty,
                         penalty_weight=args.penalty_weight,
                         label_smoothing=args.label_smoothing,
                         ema_decay=args.ema if args.ema > 0 else None, seed=args.seed,
                         steps_per_call=args.steps_per_call, reuse_fakes=args.reuse_fakes)
    if args.resume:
        trainer.restore(ckpt_dir)
        print(f"resumed from step {trainer.step} in {ckpt_dir}")
    remaining = args.steps - trainer.step
    out.mkdir(parents=True, exist_ok=True)

    def pictures(tr):
        samples = tr.sample()
        if samples.ndim == 2:
            mix = gd.mixture(args.dataset)
            real, _ = gd.arrays(args.dataset, "test", limit=1000)
            fig = scatter_2d(samples, real=real, centres=mix.centres, sigma=mix.sigma,
                             title=f"step {tr.step}")
            fig.savefig(out / "samples.png", dpi=100)
        else:
            save_grid(samples, out / "samples.png", ncols=8)
        if len(tr.history) > 1:
            plot_history(tr.history, title=f"{args.dataset}, {args.loss}").savefig(
                out / "curves.png", dpi=90)
        import matplotlib.pyplot as plt

        plt.close("all")

    start = time.perf_counter()
    if remaining > 0:
        try:
            trainer.fit(dataset, remaining, callbacks=[pictures], every=args.every,
                        checkpoint_dir=ckpt_dir, progress=not args.no_progress)
        except TrainingDiverged as e:
            _fail(prog, e, status=1)
    else:
        print(f"nothing to do: the checkpoint is at step {trainer.step} >= --steps {args.steps}")
        pictures(trainer)
    trainer.history.save(out / "history.json")
    (trainer.ema or trainer.generator).save(out / "generator.keras")
    seconds = time.perf_counter() - start
    print(f"trained {max(remaining, 0)} steps in {seconds:.1f} s; step {trainer.step}.")
    for name in ("samples.png", "curves.png", "history.json", "generator.keras"):
        print(f"  {out / name}")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"
    import matplotlib

    matplotlib.use("Agg")
    quiet_tensorflow_import()
    from gantools.data import DataUnavailableError

    try:
        return train(args, prog)
    except DataUnavailableError as e:
        _fail(prog, e, status=1)
    except ValueError as e:
        _fail(prog, e, status=2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; the checkpoint was saved: continue with --resume\n")
        return 130
    return 0
