"""Building the course: student release, solutions, and an autograding self-check.

``python -m gantools.pipeline`` (what ``make course`` runs) does, for every assignment
in ``course/source/``:

1. ``nbgrader generate_assignment``: the student version in ``course/release/``;
2. ``nbgrader generate_solution``, which executes the solution notebook (in full mode:
   nbgrader sets ``NBGRADER_EXECUTION`` only while autograding and validating), copied to
   ``solutions/<name>.ipynb`` for self-learners, with its figures (generated, never
   edited by hand);
3. autograding, in short mode, of the solution (it must get full marks) and of the blank
   release (every graded cell must get 0);

and prints a table of points and run times. The same functions drive the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
SOLUTIONS = ROOT / "solutions"
SELF_CHECK = ("solution-check", "blank-check")


class PipelineError(RuntimeError):
    pass


def _tools_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` executable found on PATH: make the tools
    installed next to this Python (the virtual environment's bin folder) findable."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


_tools_on_path()


def run_nbgrader(course: Path, *args, timeout: int = 3600, env=None):
    """Run ``nbgrader <args>`` in the course folder; raise with its output on failure."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          capture_output=True, text=True, timeout=timeout, env=full_env)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise PipelineError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return proc


def assignments(course: Path = COURSE) -> list[str]:
    return sorted(p.name for p in (course / "source").iterdir()
                  if p.is_dir() and not p.name.startswith("."))


def notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def execute(notebook: Path, output: Path, short: bool, timeout: int = 1200) -> float:
    """Execute a notebook top to bottom (full or short mode); returns seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    env_short = os.environ.get("GANCOURSE_SHORT")
    os.environ["GANCOURSE_SHORT"] = "1" if short else ""
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        if env_short is None:
            os.environ.pop("GANCOURSE_SHORT", None)
        else:
            os.environ["GANCOURSE_SHORT"] = env_short
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)
    return time.perf_counter() - start


def submit(course: Path, assignment: str, student: str, files: dict[str, Path | bytes]):
    """Place a student's files where ``nbgrader autograde`` looks for them."""
    folder = course / "submitted" / student / assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes | str):
            (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
        else:
            shutil.copy(content, folder / name)
    (folder / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")


def add_students(course: Path, students):
    for student in students:
        run_nbgrader(course, "db", "student", "add", student, timeout=120)


def autograde(course: Path, assignment: str, student: str | None = None,
              env=None) -> float:
    """Autograde one student (or all); returns seconds taken."""
    args = ["autograde", assignment, "--force"] + ([f"--student={student}"] if student else [])
    start = time.perf_counter()
    run_nbgrader(course, *args, env=env)
    return time.perf_counter() - start


def grades(course: Path, assignment: str, student: str) -> dict:
    """``{notebook: {"score", "max_score", "cells": {grade_id: (score, max)}}}``."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        out = {}
        for nb in submission.notebooks:
            out[nb.name] = {
                "score": nb.score, "max_score": nb.max_score,
                "cells": {g.name: (g.score, g.max_score) for g in nb.grades},
            }
        return out


def build(course: Path = COURSE, solutions: Path = SOLUTIONS):
    """Release, solutions and self-check for every assignment; returns table rows."""
    rows = []
    add_students(course, SELF_CHECK)
    solutions.mkdir(parents=True, exist_ok=True)
    for assignment in assignments(course):
        t0 = time.perf_counter()
        run_nbgrader(course, "generate_assignment", assignment, "--force")
        release_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_nbgrader(course, "generate_solution", assignment, "--force",
                     env={"GANCOURSE_SHORT": ""})
        full_time = time.perf_counter() - t0
        for nb_path in notebooks(course / "solution" / assignment):
            shutil.copy(nb_path, solutions / nb_path.name)
            submit(course, assignment, "solution-check", {nb_path.name: nb_path})
            submit(course, assignment, "blank-check",
                   {nb_path.name: course / "release" / assignment / nb_path.name})
            t_sol = autograde(course, assignment, "solution-check")
            t_blank = autograde(course, assignment, "blank-check")
            sol = grades(course, assignment, "solution-check")[nb_path.stem]
            blank = grades(course, assignment, "blank-check")[nb_path.stem]
            rows.append({
                "notebook": nb_path.stem, "solution": sol["score"], "blank": blank["score"],
                "max": sol["max_score"], "full_run_s": full_time, "autograde_solution_s": t_sol,
                "autograde_blank_s": t_blank, "release_s": release_time,
                "blank_cells_nonzero": [k for k, (s, _) in blank["cells"].items() if s],
            })
    return rows


def print_table(rows) -> bool:
    header = (f"{'notebook':<16} {'solution':>9} {'blank':>6} {'of':>4} {'full run':>9} "
              f"{'autograde sol.':>15} {'autograde blank':>16}")
    print(header)
    print("-" * len(header))
    ok = True
    for r in rows:
        print(f"{r['notebook']:<16} {r['solution']:>9g} {r['blank']:>6g} {r['max']:>4g} "
              f"{r['full_run_s']:>8.0f}s {r['autograde_solution_s']:>14.0f}s "
              f"{r['autograde_blank_s']:>15.0f}s")
        if r["solution"] != r["max"] or r["blank"] != 0 or r["blank_cells_nonzero"]:
            ok = False
            print(f"  !! self-check failed: solution {r['solution']}/{r['max']}, blank "
                  f"{r['blank']} (nonzero cells: {r['blank_cells_nonzero']})")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=COURSE)
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    args = parser.parse_args(argv)
    rows = build(args.course.resolve(), args.solutions.resolve())
    ok = print_table(rows)
    print(f"\nStudent release: {args.course / 'release'}")
    print(f"Solutions for self-learners: {args.solutions}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
