"""Class autograding throughput: ``python -m gancourse.classgrade`` with 1 and 2 local Dask
workers, and sequential ``nbgrader autograde`` beside them.

Submits ``--students`` copies of every notebook's solution to a temporary course (the real
configuration, releases and sandbox) and grades each assignment in short mode three ways,
taking turns (``--force`` between them) so that the machine's slow spells hit all alike:
``nbgrader autograde``, and the command with 1 and with 2 workers. Prints, per notebook and
in all, the wall time per submission, the CPU seconds per submission (the machine's busy
time over all cores from ``/proc/stat``, so nothing escapes it: nbgrader, sandbox, kernel,
Dask), the submissions per minute, and what
a class of ``--class-size`` students times the notebooks needs to be graded within
``--hours``.

    .venv/bin/python benchmarks/bench_grade.py [--students 2] [--rounds 1] [ASSIGNMENT ...]
"""

import argparse
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gancourse.autograde.sandbox import sandbox_available
from gancourse.build import pipeline
from gancourse.classgrade import coordinator as grade

ROOT = Path(__file__).resolve().parents[1]


def make_course(folder: Path, assignments, students: int) -> Path:
    course = folder / "course"
    course.mkdir()
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "course" / "source", course / "source")
    for assignment in assignments:
        pipeline.run_nbgrader(course, "generate_assignment", assignment, "--force")
        solution = ROOT / "solutions" / f"{assignment}.ipynb"
        for i in range(students):
            pipeline.submit(course, assignment, f"s{i}",
                            {f"{assignment}.ipynb": pipeline.as_submission(solution)})
    return course


def busy_seconds() -> float:
    """CPU seconds this machine has spent busy since boot, all cores (``/proc/stat``): the
    whole cost of a grading, whichever processes it ran in and however they ended."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_sequential(course: Path, assignment: str) -> dict:
    """``nbgrader autograde`` as an instructor runs it: one process, one submission after
    another."""
    pipeline.run_nbgrader(course, "autograde", assignment, "--force")
    students = [p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")]
    for student in students:
        found = pipeline.grades(course, assignment, student)[assignment]
        # every autograded point; written answers wait for an instructor
        assert found["auto_score"] == found["auto_max"], f"{assignment} sequential: {found}"
    return {"n": len(students)}


def run_workers(course: Path, assignment: str, workers: int) -> dict:
    results = grade.grade(course, assignment, workers=workers, force=True, out=io.StringIO())
    bad = {s: e for s, e in results.items()
           if e["status"] != "graded"
           or e["score"] != e["max_score"] - e.get("written_max", 0)}
    assert not bad, f"{assignment} with {workers} workers: {bad}"
    return {"n": len(results), "each": [e["seconds"] for e in results.values()]}


def run(course: Path, assignment: str, workers: int) -> dict:
    busy, start = busy_seconds(), time.perf_counter()
    found = (run_sequential(course, assignment) if workers == 0
             else run_workers(course, assignment, workers))
    return {**found, "wall": time.perf_counter() - start, "busy": busy_seconds() - busy}


def label(workers: int) -> str:
    return "sequential nbgrader" if workers == 0 else f"{workers} worker(s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=2, help="submissions per notebook")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--class-size", type=int, default=300)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("assignments", nargs="*", help="default: every assignment")
    args = parser.parse_args()
    assignments = args.assignments or pipeline.assignments()
    if not sandbox_available():
        print("note: bubblewrap is not available (make sandbox); kernels run unsandboxed")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    modes = (0, 1, 2)  # 0: sequential nbgrader autograde
    runs = {(a, w): [] for a in assignments for w in modes}
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp), assignments, args.students)
        # one grading first, not measured: the first kernel and TensorFlow import of a run
        # read everything from disk, which would count against whichever mode came first
        run(course, assignments[0], 0)
        for r in range(args.rounds):
            for assignment in assignments:
                for workers in (modes if r % 2 == 0 else modes[::-1]):
                    runs[assignment, workers].append(run(course, assignment, workers))
                    last = runs[assignment, workers][-1]
                    print(f"  {assignment}, {label(workers)}: {last['n']} submissions in "
                          f"{last['wall']:.0f} s", flush=True)

    print(f"\n{args.students} submissions of each notebook's solution, short mode, "
          f"{args.rounds} round(s); {os.cpu_count()} CPU cores\n")
    print(f"{'notebook':<20} {'nbgrader':>9} {'1 worker':>9} {'2 workers':>10} "
          f"{'CPU nbgrader':>13} {'CPU 1 worker':>13} {'CPU 2 workers':>14}")
    print(f"{'':<20} {'(wall seconds per submission)':>30} "
          f"{'(machine busy CPU seconds per submission)':>42}")

    def per(workers, key, folder=None):
        done = [x for a in (folder or assignments) for x in runs[a, workers]]
        return sum(x[key] for x in done) / sum(x["n"] for x in done)

    for name in [*assignments, "all"]:
        only = None if name == "all" else [name]
        print(f"{name:<20} {per(0, 'wall', only):>9.1f} {per(1, 'wall', only):>9.1f} "
              f"{per(2, 'wall', only):>10.1f} {per(0, 'busy', only):>13.1f} "
              f"{per(1, 'busy', only):>13.1f} {per(2, 'busy', only):>14.1f}")
    rate = {w: 60 / per(w, "wall") for w in modes}
    print(f"\nsubmissions per minute: {rate[0]:.2f} sequential nbgrader, {rate[1]:.2f} with 1 "
          f"worker ({rate[1] / rate[0]:.2f}x), {rate[2]:.2f} with 2 workers "
          f"({rate[2] / rate[0]:.2f}x sequential, {rate[2] / rate[1]:.2f}x 1 worker)")
    # a batch of a few submissions pays the cluster's start (and each worker's grading
    # server's) once; over a class only the seconds each submission keeps a worker count
    steady = {w: w * 60 / statistics.mean(
        [t for a in assignments for x in runs[a, w] for t in x["each"]]) for w in (1, 2)}
    print(f"steady state, from the seconds each submission kept its worker busy: "
          f"{steady[1]:.2f}/min with 1 worker, {steady[2]:.2f}/min with 2 workers")
    mean_cpu = per(2, "busy")

    class_total = args.class_size * len(assignments)
    needed = class_total / (args.hours * 60)
    print(f"\n{args.class_size} students x {len(assignments)} notebooks = {class_total} "
          f"submissions within {args.hours:g} h: {needed:.1f} submissions/min")
    print(f"  CPU (machine busy time with 2 workers): {class_total} x {mean_cpu:.1f} s = "
          f"{class_total * mean_cpu / 3600:.1f} "
          f"core-hours, {math.ceil(class_total * mean_cpu / (args.hours * 3600))} cores "
          "kept busy for the whole time")
    machines = math.ceil(needed / steady[2])
    print(f"  machines like this one with 2 workers each (steady state): {machines} "
          f"({machines * 2} workers)")
    print(f"  one machine: {class_total / rate[0] / 60:.1f} h with sequential nbgrader, "
          f"{class_total / steady[2] / 60:.1f} h with 2 workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
