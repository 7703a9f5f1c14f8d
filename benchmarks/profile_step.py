"""Where a training step's time goes: TensorFlow's profiler on the gantools DCGAN step.

Run: .venv/bin/python benchmarks/profile_step.py [--size 32] [--steps 10]
     TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python benchmarks/profile_step.py   (oneDNN off)

The step of benchmarks/bench_training.py (DCGAN width 64, batch 64, RGB, batch norm; one
D and one G update, one step per call) runs under ``tf.profiler.experimental`` for a few
steps; the trace (an XSpace protocol buffer) is read back here and every op's time is
summed by op type. With two cores, TensorFlow runs independent ops side by side, so the
op times add up to more than the wall time: the table gives each type's milliseconds per
step and its share of all op time. The groups at the bottom sort the types into
convolutions (forward and both backward passes), matrix products, and the rest (mostly
batch norm's reductions and element-wise arithmetic, activations and the optimizer).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import gantools  # noqa: F401 - before TensorFlow: the course's environment

# isort: split
import keras
import numpy as np
import tensorflow as tf

import gantools.models as gm
from gantools.runtime import cpu_model, describe_onednn
from gantools.training import GANTrainer

# events that contain other ops, or belong to the input pipeline
_CONTAINERS = {"Process", "Run", "DoCompute", "Root", "ForeverRepeat", "Prefetch",
               "IteratorGetNext", "MemcpyH2D", "MemcpyD2H"}


def op_type(name: str) -> str | None:
    """'d/conv2d/Conv2D:Conv2D' -> 'Conv2D'; None for containers and pipeline events."""
    if ":" not in name or name.startswith("Iterator::") or name.startswith("__inference"):
        return None
    kind = name.rsplit(":", 1)[1].strip()
    if not kind or kind in _CONTAINERS or kind.startswith("__inference"):
        return None
    return kind


def group(kind: str) -> str:
    k = kind.lower()
    if "conv" in k:
        return "convolutions (forward and backward)"
    if "matmul" in k:
        return "matrix products (Dense layers)"
    return "everything else (batch norm arithmetic, activations, optimizer, ...)"


def profile(size: int, steps: int) -> tuple[float, dict[str, float], dict[str, int]]:
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    keras.utils.set_random_seed(0)
    g = gm.dcgan_generator(size, 3, 128, width=64)
    d = gm.dcgan_discriminator(size, 3, width=64)
    trainer = GANTrainer(g, d, steps_per_call=1, diagnose=False, ema_decay=None)
    x = np.random.default_rng(0).uniform(-1, 1, (1024, size, size, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(1024, seed=0).batch(
        64, drop_remainder=True).repeat()
    trainer.fit(ds, 3, progress=False, every=10**9)
    iterator, call = trainer._iterator_for(ds), trainer._train_function(1)
    for _ in range(3):
        call(iterator).numpy()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            call(iterator).numpy()
        wall = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        (trace,) = Path(logdir).rglob("*.xplane.pb")
        space = xplane_pb2.XSpace()
        space.ParseFromString(trace.read_bytes())
    seconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                kind = op_type(plane.event_metadata[event.metadata_id].name)
                if kind is not None:
                    seconds[kind] += event.duration_ps / 1e12 / steps
                    counts[kind] += 1
    return wall, dict(seconds), {k: v // steps for k, v in counts.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    wall, seconds, counts = profile(args.size, args.steps)
    total = sum(seconds.values())
    print(f"# {cpu_model()}; {describe_onednn()}")
    print(f"# DCGAN {args.size}×{args.size}, width 64, batch 64; {args.steps} profiled steps: "
          f"{wall * 1e3:.0f} ms per step (wall), {total * 1e3:.0f} ms of op time per step")
    header = f"{'op type':<40} {'ms/step':>8} {'share':>6} {'calls':>6}"
    print(header)
    print("-" * len(header))
    for kind, s in sorted(seconds.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{kind:<40} {s * 1e3:>8.1f} {s / total:>6.1%} {counts[kind]:>6}")
    groups = collections.Counter()
    for kind, s in seconds.items():
        groups[group(kind)] += s
    print("-" * len(header))
    for name, s in groups.most_common():
        print(f"{name:<70} {s * 1e3:>7.1f} ms {s / total:>6.1%}")


if __name__ == "__main__":
    main()
