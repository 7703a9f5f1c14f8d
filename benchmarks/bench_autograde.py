"""Autograde time per submission in short mode, with and without the kernel sandbox.

Grades copies of each notebook's solution with the course's own nbgrader configuration,
taking turns between the sandboxed kernel (bubblewrap) and the same kernel unsandboxed
(``GANTOOLS_SANDBOX=off``), so that the machine's slow spells hit both alike. Prints the
seconds per submission (median over rounds) and the sandbox's overhead.

    .venv/bin/python benchmarks/bench_autograde.py [--students 3] [--rounds 2] [ASSIGNMENT ...]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gancourse.autograde.sandbox import sandbox_available
from gancourse.build import pipeline

ROOT = Path(__file__).resolve().parents[1]


def bench(assignment: str, students: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy(ROOT / "course" / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "course" / "source", course / "source")
        pipeline.run_nbgrader(course, "generate_assignment", assignment, "--force")
        source = ROOT / "course" / "source" / assignment / f"{assignment}.ipynb"
        for i in range(students):
            pipeline.submit(course, assignment, f"s{i}", {source.name: source})
        times = {"sandboxed": [], "unsandboxed": []}
        for _ in range(rounds):
            for mode in times:
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                       "GANTOOLS_SANDBOX": "on" if mode == "sandboxed" else "off"}
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment,
                                "--force"], cwd=course, env=env, check=True,
                               capture_output=True)
                times[mode].append((time.perf_counter() - start) / students)
                scores = pipeline.grades(course, assignment, "s0")[assignment]
                # every autograded point (written answers wait for an instructor)
                assert scores["auto_score"] == scores["auto_max"], f"{mode}: {scores}"
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    args = parser.parse_args()
    if not sandbox_available():
        print("bubblewrap is not available (make sandbox): nothing to compare")
        return 1
    for assignment in args.assignments or pipeline.assignments():
        times = bench(assignment, args.students, args.rounds)
        median = {mode: statistics.median(t) for mode, t in times.items()}
        print(f"\nnotebook {assignment}, short mode, {args.students} submissions per nbgrader "
              f"call, {args.rounds} rounds taking turns\n")
        print(f"{'kernel':<12} {'s/submission':>13} {'rounds':>24}")
        for mode, t in times.items():
            print(f"{mode:<12} {median[mode]:>13.1f} {', '.join(f'{x:.1f}' for x in t):>24}")
        overhead = median["sandboxed"] - median["unsandboxed"]
        print(f"\nsandbox overhead: {overhead:+.1f} s per submission "
              f"({median['sandboxed'] / median['unsandboxed']:.2f}x); budget 45 s per "
              "submission", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
