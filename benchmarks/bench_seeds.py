"""A notebook's own experiments rerun over seeds: the spread behind the numbers it quotes.

Run: .venv/bin/python benchmarks/bench_seeds.py 02_gan_tricks [--seeds 0 1 2] [--json out.json]
     .venv/bin/python benchmarks/bench_seeds.py 03_wgan
     .venv/bin/python benchmarks/bench_seeds.py 04_lsgan --seeds 0 1 2
     .venv/bin/python benchmarks/bench_seeds.py 05_spectral_norm --set STEPS=600
     .venv/bin/python benchmarks/bench_seeds.py 06_conditional_gan --seeds 1 2
     .venv/bin/python benchmarks/bench_seeds.py 07_ada --seeds 1 2
     .venv/bin/python benchmarks/bench_seeds.py 08_semi_supervised_gan --seeds 1 2
     .venv/bin/python benchmarks/bench_seeds.py 09_cyclegan --seeds 1 2
     .venv/bin/python benchmarks/bench_seeds.py 10_scaling_up --seeds 1 2

A notebook runs each experiment once, with ``SEED = 0`` (its hyperparameters cell). This
script executes the source notebook itself in full mode, in the course's kernel, once per
seed with ``SEED`` set to it: the setup and hyperparameters cells, the reference answers,
and the cells of the experiment (the check cells and the rest are skipped; each
experiment seeds its own runs, so what ran before does not change them). The code is the
notebook's, so seed 0 reproduces the run behind the solution. After the last cell it reads
the notebook's own result variables and prints, per configuration and quantity, every
seed's value and their mean ± standard deviation.

Minutes per seed on a 2-core Intel Xeon: about 2 for notebook 03's digits, 3 for notebook
04's digits. On a 2-core AMD EPYC with two seeds side by side, each pinned to one core:
6.5 minutes per seed for notebook 05's five runs, 13 for notebook 07's three (8,000 steps
without augmentation and with ADA, 3,000 at p = 1), each started as
``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 taskset -c 0 ...``.

``--set NAME=VALUE`` changes hyperparameters of the notebook for the rerun (appended to its
hyperparameters cell after ``SEED``), e.g. a longer budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

# Per notebook: the experiment's cells (grade_ids, in order) and an expression, evaluated in
# the kernel afterwards, giving {configuration: {quantity: number}}.
SPECS = {
    "02_gan_tricks": {
        "cells": ["grid_collapse", "ablation_runs"],
        "report": "{**{f'grid: {name}': {'modes covered': c.modes_covered, 'high-quality %': "
                  "100 * c.high_quality, 'KL to uniform': c.kl_to_uniform} "
                  "for name, c in grid_results.items()}, "
                  "**{name: {'KID': r['kid'], 'KID s.e.': r['kid_std'], 'legibility': "
                  "r['legibility'], 'diversity': r['diversity'], 'class KL': r['class_kl'], "
                  "'classes': r['classes_covered'], 'seconds': seconds[name], 'warnings': "
                  "len(trainers[name.removesuffix(', EMA')].history.events)} "
                  "for name, r in results.items()}}",
    },
    "03_wgan": {
        "cells": ["batch_norm_critic", "digits_wgan_gp", "loss_tracks_quality"],
        "report": "{label: {'KID': results[label]['kid'], 'KID s.e.': results[label]['kid_std'], "
                  "'legibility': legible[label], 'classes': results[label]['classes_covered'], "
                  "'loss-KID r': correlation(track), 'loss-KID rank r': "
                  "correlation(track, ranks=True), 'seconds': seconds[label]} "
                  "for label, (_, track) in runs.items()}",
    },
    "04_lsgan": {
        "cells": ["loss_pairs", "digits_train"],  # the grid runs have their 3 seeds already
        "report": "{name: {'KID': r['kid'], 'KID s.e.': r['kid_std'], 'legibility': "
                  "r['legibility'], 'classes': r['classes_covered'], 'seconds': seconds} "
                  "for name, (_, seconds, r) in digit_runs.items()}",
    },
    "05_spectral_norm": {
        "cells": ["sigma_train", "hard_setting", "sn_vs_wgan_gp"],
        "report": "{**{label: {'KID': r['kid'], 'KID s.e.': r['kid_std'], 'legibility': "
                  "r['legibility'], 'classes': r['classes_covered'], 'diversity': "
                  "r['diversity'], 'sigma product at the end': "
                  "float(np.prod(r['sigmas'].effective[-1])), 'seconds': r['seconds']} "
                  "for label, r in runs.items()}, "
                  "'SN-GAN against WGAN-GP': {'KID gap': gap, 'gap / s.e.': gap / combined}}",
    },
    "06_conditional_gan": {
        "cells": ["digits_conditional", "class_grid", "label_accuracy", "train_on_generated",
                  "ablation"],
        "report": "{**{name: {'label accuracy': accuracy, 'KID': r['kid'], 'KID s.e.': "
                  "r['kid_std'], 'legibility': legible, 'classes': r['classes_covered']} "
                  "for name, _, accuracy, r, legible in rows}, "
                  "'train on generated, test on real': {'accuracy': on_generated, "
                  "'trained on real': on_real, 'ratio': on_generated / on_real}, "
                  "'conditional run': {'seconds': train_seconds}}",
    },
    "07_ada": {
        "cells": ["kid_bias", "overfitting", "overfitting_plot", "ada", "ada_gain", "leaking"],
        "report": "{**{name: {'KID': r['kid'], 'KID s.e.': r['kid_se'], 'legibility': "
                  "r['legibility'], 'read only turned': leak[name], 'r_v at the end': "
                  "rows[-1, 2], 'p at the end': rows[-1, 5], 'seconds': seconds[name]} "
                  "for name, r, rows in zip(final, final.values(), "
                  "(plain_rows, ada_rows, always_rows))}, "
                  "'ADA against no augmentation': {'KID gain': gain, 'combined s.e.': combined, "
                  "'gain / s.e.': gain / combined}}",
    },
    "08_semi_supervised_gan": {
        "cells": ["data", "baseline", "sgan", "samples", "fooling"],
        "report": "{run.name: {'test accuracy': run.final_accuracy, 'best test accuracy': "
                  "max(run.accuracy), 'legibility': legible.get(run.name, float('nan')), "
                  "'class KL': mix[run.name].kl_to_uniform if run.name in mix else "
                  "float('nan'), 'seconds': run.seconds} for run in (baseline, sgan, fooling)}",
    },
    "09_cyclegan": {
        "cells": ["domains", "cycle_run", "cycle_figure", "no_cycle_run", "identity_run"],
        "report": "{name: {**row, 'seconds': runs[name][0].seconds} "
                  "for name, row in results.items()}",
    },
    "10_scaling_up": {  # the grid runs have their 3 seeds already
        "cells": ["progressive_run", "progressive_pictures", "he_comparison",
                  "truncation_curve"],
        "report": "{'equalised': {**{f'legible {s}×{s}': legible[s] for s in sizes}, "
                  "'seconds': run.seconds}, "
                  "'He init': {'legible 14×14': he_legible, 'seconds': he_run.seconds}, "
                  "**{f'ψ = {p}': {'legible': r['legible'], 'spread': r['spread'], "
                  "'class KL': r['kl']} for p, r in truncation.items()}}",
    },
}


def run(name: str, seed: int, overrides: dict[str, str] | None = None) -> dict:
    spec = SPECS[name]
    overrides = overrides or {}
    nb = nbformat.read(ROOT / "course" / "source" / name / f"{name}.ipynb", as_version=4)
    keep = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code":
            continue
        if grade_id == "hyperparameters":
            if "\nSEED = " not in "\n" + cell.source:
                raise SystemExit(f"{name}'s hyperparameters cell defines no SEED; the "
                                 "experiment cannot be rerun with another seed.")
            for var in overrides:
                if f"\n{var} = " not in "\n" + cell.source:
                    raise SystemExit(f"{name}'s hyperparameters cell defines no {var}; "
                                     "--set can only change a hyperparameter it defines.")
            cell.source += f"\nSEED = {seed}  # set by benchmarks/bench_seeds.py\n"
            cell.source += "".join(f"{var} = {value}  # --set\n"
                                   for var, value in overrides.items())
        if grade_id in ("setup", "hyperparameters") or meta.get("solution") \
                or grade_id in spec["cells"]:
            keep.append(cell)
    missing = set(spec["cells"]) - {c.metadata["nbgrader"].get("grade_id") for c in keep}
    if missing:
        raise SystemExit(f"{name} has no cells {sorted(missing)}; update this benchmark.")
    keep.append(nbformat.v4.new_code_cell(
        f"import json as _json\nprint(_json.dumps({spec['report']}, default=float))"))
    nb.cells = keep
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}  # full mode
    os.environ.clear()
    os.environ.update(env)
    client = NotebookClient(nb, timeout=1800, kernel_name=nb.metadata.kernelspec.name,
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", choices=sorted(SPECS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write the per-seed values here")
    parser.add_argument("--set", metavar="NAME=VALUE", nargs="+", default=[],
                        help="change hyperparameters (a Python expression each), e.g. "
                             "--set STEPS=1500")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        var, sep, value = item.partition("=")
        if not sep or not var.strip().isidentifier() or not value.strip():
            parser.error(f"--set takes NAME=VALUE, got {item!r}")
        overrides[var.strip()] = value.strip()
    per_seed = {}
    for seed in args.seeds:
        started = time.perf_counter()
        per_seed[seed] = run(args.notebook, seed, overrides)
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    changed = "".join(f", {var} = {value}" for var, value in overrides.items())
    cpu = platform.processor() or platform.machine()
    print(f"\n{args.notebook}{changed}, seeds {args.seeds}; {cpu}, {os.cpu_count()} CPUs\n")
    print("| configuration | quantity | per seed | mean ± sd |")
    print("|---|---|---|---|")
    first = per_seed[args.seeds[0]]
    for config, quantities in first.items():
        for quantity in quantities:
            values = [per_seed[s][config][quantity] for s in args.seeds]
            fmt = {"legibility": ".1%", "classes": ".0f", "seconds": ".0f", "modes covered": ".0f",
                   "high-quality %": ".1f", "warnings": ".0f",
                   "read only turned": ".1%"}.get(quantity, ".3f")
            mean, sd = sum(values) / len(values), 0.0
            if len(values) > 1:
                sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
            print(f"| {config} | {quantity} | {' '.join(format(v, fmt) for v in values)} | "
                  f"{mean:{fmt}} ± {sd:{fmt}} |")
    if args.json:
        args.json.write_text(json.dumps(per_seed, indent=1))


if __name__ == "__main__":
    main()
