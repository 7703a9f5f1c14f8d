"""Class autograding throughput: ``gantools.grade`` with 1 and 2 local Dask workers, and
sequential ``nbgrader autograde`` beside them.

Submits ``--students`` copies of every notebook's solution to a temporary course (the real
configuration, releases and sandbox) and grades each assignment in short mode three ways,
taking turns (``--force`` between them) so that the machine's slow spells hit all alike:
``nbgrader autograde``, and the command with 1 and with 2 workers. Prints, per notebook and
in all, the wall time per submission and the CPU seconds per submission (user + system
time of the grading's processes: nbgrader, sandbox, kernel), the submissions per minute,
and what a class of ``--class-size`` students times the notebooks needs to be graded
within ``--hours``.

    .venv/bin/python benchmarks/bench_grade.py [--students 2] [--rounds 1] [ASSIGNMENT ...]
"""

import argparse
import io
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gantools import grade, pipeline
from gantools.grading.sandbox import sandbox_available

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


def run_sequential(course: Path, assignment: str) -> dict:
    """``nbgrader autograde`` as an instructor runs it: one process, one submission after
    another; its CPU time is that of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    pipeline.run_nbgrader(course, "autograde", assignment, "--force")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = len(list((course / "submitted").glob(f"*/{assignment}")))
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    for student in (p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")):
        found = pipeline.grades(course, assignment, student)[assignment]
        assert found["score"] == found["max_score"], f"{assignment} sequential: {found}"
    return {"wall": wall, "n": n, "cpu": [cpu / n] * n}


def run(course: Path, assignment: str, workers: int) -> dict:
    if workers == 0:
        return run_sequential(course, assignment)
    start = time.perf_counter()
    results = grade.grade(course, assignment, workers=workers, force=True, out=io.StringIO())
    wall = time.perf_counter() - start
    bad = {s: e for s, e in results.items()
           if e["status"] != "graded" or e["score"] != e["max_score"]}
    assert not bad, f"{assignment} with {workers} workers: {bad}"
    return {"wall": wall, "n": len(results),
            "cpu": [e["cpu_seconds"] for e in results.values()],
            "each": [e["seconds"] for e in results.values()]}


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
        for r in range(args.rounds):
            for assignment in assignments:
                for workers in (modes if r % 2 == 0 else modes[::-1]):
                    runs[assignment, workers].append(run(course, assignment, workers))
                    last = runs[assignment, workers][-1]
                    print(f"  {assignment}, {label(workers)}: {last['n']} submissions in "
                          f"{last['wall']:.0f} s", flush=True)

    print(f"\n{args.students} submissions of each notebook's solution, short mode, "
          f"{args.rounds} round(s); {os.cpu_count()} CPU cores\n")
    print(f"{'notebook':<20} {'nbgrader s/sub':>15} {'1 worker s/sub':>15} "
          f"{'2 workers s/sub':>16} {'CPU s/sub (seq)':>16} {'CPU s/sub (1 w)':>16}")
    totals = {w: [0.0, 0] for w in modes}
    cpu = {w: [] for w in modes}
    for assignment in assignments:
        per, own = {}, {}
        for workers in modes:
            done = runs[assignment, workers]
            wall, n = sum(x["wall"] for x in done), sum(x["n"] for x in done)
            totals[workers][0] += wall
            totals[workers][1] += n
            per[workers] = wall / n
            own[workers] = [c for x in done for c in x["cpu"]]
            cpu[workers] += own[workers]
        print(f"{assignment:<20} {per[0]:>15.1f} {per[1]:>15.1f} {per[2]:>16.1f} "
              f"{statistics.mean(own[0]):>16.1f} {statistics.mean(own[1]):>16.1f}")
    rate = {w: totals[w][1] / (totals[w][0] / 60) for w in modes}
    mean_cpu = statistics.mean(cpu[1] + cpu[2])
    print(f"{'all':<20} {60 / rate[0]:>15.1f} {60 / rate[1]:>15.1f} {60 / rate[2]:>16.1f} "
          f"{statistics.mean(cpu[0]):>16.1f} {statistics.mean(cpu[1]):>16.1f}")
    print(f"\nsubmissions per minute: {rate[0]:.2f} sequential nbgrader, {rate[1]:.2f} with 1 "
          f"worker ({rate[1] / rate[0]:.2f}x), {rate[2]:.2f} with 2 workers "
          f"({rate[2] / rate[0]:.2f}x sequential, {rate[2] / rate[1]:.2f}x 1 worker)")
    print(f"CPU seconds per submission on the workers: {mean_cpu:.1f}")
    # a batch of a few submissions pays the cluster's start (and each worker's grading
    # server's) once; over a class only the seconds each submission keeps a worker count
    steady = {w: w * 60 / statistics.mean(
        [t for a in assignments for x in runs[a, w] for t in x["each"]]) for w in (1, 2)}
    print(f"steady state, from the seconds each submission kept its worker busy: "
          f"{steady[1]:.2f}/min with 1 worker, {steady[2]:.2f}/min with 2 workers")

    class_total = args.class_size * len(assignments)
    needed = class_total / (args.hours * 60)
    print(f"\n{args.class_size} students x {len(assignments)} notebooks = {class_total} "
          f"submissions within {args.hours:g} h: {needed:.1f} submissions/min")
    print(f"  CPU: {class_total} x {mean_cpu:.1f} s = {class_total * mean_cpu / 3600:.1f} "
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
