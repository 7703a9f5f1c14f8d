"""Autograding a whole class in parallel: ``python -m gancourse.classgrade ASSIGNMENT --workers N``.

``nbgrader autograde`` grades one submission after another, and its SQLite gradebook takes
one writer at a time. This command grades every submission of an assignment on N workers
of a Dask cluster, each submission in its own sandboxed kernel, and gives the same
gradebook, graded notebooks, flags and ``nbgrader export`` as ``nbgrader autograde``.

How one submission is graded
----------------------------
On a worker, in a private one-student course through the real ``nbgrader autograde``
(:mod:`gancourse.classgrade.worker`). The coordinator (this process) is the gradebook's only
writer: it copies the rows the worker sends back into the course's gradebook
(:mod:`gancourse.classgrade.gradebook`) and then moves the graded folder into ``autograded/``
whole, so an interrupted run leaves every submission either graded or missing.

Failures
--------
A submission whose grading fails (nbgrader's error, a worker that dies, a grading that runs
past ``--timeout``) is sent again once; when the second attempt fails too, it is recorded
with its reason in ``grading/<assignment>/summary.json`` and its nbgrader log, and the
batch goes on. Like ``nbgrader autograde``, a failed submission has no autograded folder,
and its gradebook entry is what nbgrader left. A submission graded with *faults* (its
kernel died, flooded its output or ran past the submission's time budget: things a machine
busy with other gradings can cause) is graded once more too, and the second grading is
kept. Running the command again grades only what is missing: submissions without an
autograded folder, or submitted again since (``--force`` grades everything).

No more submissions are in flight than the cluster has worker threads: a submission waits
in the coordinator, not in a worker's queue, so a worker that dies takes with it only the
submission it was grading.

The engine
----------
Without ``--scheduler`` the command starts a Dask ``LocalCluster`` of N single-threaded
worker processes on this machine; with ``--scheduler tcp://host:8786`` it uses a running
cluster, whose workers need this package, its ``gan-course`` kernel
(``python -m gancourse.kernel install``) and bubblewrap. On a cluster that Dask retries
itself (its ``allowed-failures``, 3 by default), a dead worker counts as one attempt here
only after Dask gave up; the local cluster sets it to 0.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

from gancourse.build import pipeline
from gancourse.classgrade.gradebook import (
    GradeError,
    apply_state,
    db_url,
    student_record,
    submission_state,
    template_gradebook,
)
from gancourse.classgrade.worker import grade_submission, read_files, write_files

ENV_PREFIXES = ("GANCOURSE_", "GANTOOLS_")  # the grading's settings, sent to every worker
TIMEOUT_MARGIN_S = 300  # kernel start, nbgrader's own work, the sandbox's stuck timeout
CONNECT_TIMEOUT = "30s"  # to reach a running scheduler


# --- what to grade -------------------------------------------------------------------------

def _timestamp(folder: Path):
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    try:
        return parse_utc(path.read_text().strip()) if path.is_file() else None
    except ValueError:
        return None


def plan(course: Path, assignment: str, students=None, force: bool = False):
    """``(to_grade, up_to_date)``: the submitted students of ``assignment`` that need
    grading, by nbgrader's own rule (no autograded folder, or submitted again since it was
    made, or ``force``), and those already graded."""
    submitted = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")
                       if p.is_dir())
    if students:
        unknown = sorted(set(students) - set(submitted))
        if unknown:
            raise GradeError(f"no submission of {assignment} from {', '.join(unknown)} in "
                             f"{course / 'submitted'}")
        submitted = [s for s in submitted if s in set(students)]
    todo, done = [], []
    for student in submitted:
        dest = course / "autograded" / student / assignment
        new, old = _timestamp(course / "submitted" / student / assignment), _timestamp(dest)
        stale = new is not None and old is not None and new > old
        (todo if force or not dest.exists() or stale else done).append(student)
    return todo, done




def _grading_env() -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def default_timeout(env: dict, notebooks: int) -> int:
    """Seconds one submission's grading may take: its notebooks' limit from the course's
    configuration (``GANCOURSE_SUBMISSION_TIMEOUT``, by default 3 cell limits) plus a
    margin for starting kernels and nbgrader."""
    cell = int(env.get("GANCOURSE_CELL_TIMEOUT", "600"))
    return notebooks * int(env.get("GANCOURSE_SUBMISSION_TIMEOUT", str(3 * cell))) \
        + TIMEOUT_MARGIN_S




# --- on the coordinator --------------------------------------------------------------------

def record_folder(course: Path, assignment: str) -> Path:
    return course / "grading" / assignment


def store(course: Path, assignment: str, result: dict) -> dict:
    """Save one finished submission: its gradebook rows first, then its autograded folder
    (moved into place whole), then its line in ``summary.json`` and its log."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import rmtree

    student = result["student"]
    if result["state"] is not None:
        with Gradebook(db_url(course)) as gb:
            apply_state(gb, assignment, student, result["state"])
    dest = course / "autograded" / student / assignment
    if result["ok"]:
        staging = dest.parent / f".{assignment}.{uuid.uuid4().hex[:8]}"
        write_files(staging, result["files"])
        staging.chmod(result["dir_mode"])
        if dest.exists():
            rmtree(str(dest))
        staging.rename(dest)
    elif dest.exists() and not result.get("halted"):  # nbgrader removes what a failed
        rmtree(str(dest))  # grading left; a grading that never started leaves the last one
    folder = record_folder(course, assignment)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "logs" / f"{student}.log").write_text(result["log"])
    entry = {"status": "graded" if result["ok"] else "failed", "attempts": result["attempt"],
             "reason": result["reason"], "earlier_reasons": result.get("earlier", []),
             "seconds": round(result["seconds"], 2),
             "worker": result["worker"],
             "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if result["ok"]:
        entry["faults"] = result["faults"]
        report = dest / f"{assignment}.grading.json"
        entry["flagged"] = (json.loads(report.read_text())["flagged"]
                            if report.is_file() else False)
        with Gradebook(db_url(course)) as gb:
            sub = gb.find_submission(assignment, student)
            entry["score"], entry["max_score"] = sub.score, sub.max_score
            entry["written_max"] = sum(g.max_score for nb in sub.notebooks for g in nb.grades
                                       if g.cell.cell_type == "markdown")
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary[student] = entry
    tmp = summary_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(summary.items())), indent=1) + "\n")
    tmp.replace(summary_path)
    return entry


class Progress:
    """One line per finished submission, with the counts and the rate so far; a tqdm bar
    under the lines when the terminal is interactive."""

    def __init__(self, total: int, out=None):
        self.total, self.done, self.failed = total, 0, 0
        self.out = out or sys.stdout
        self.start = time.perf_counter()
        self.bar = None
        if out is None and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="submission", dynamic_ncols=True)

    def rate(self) -> float:
        minutes = (time.perf_counter() - self.start) / 60
        return (self.done + self.failed) / minutes if minutes > 0 else 0.0

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=self.out, flush=True)

    def finished(self, student: str, entry: dict) -> None:
        if entry["status"] == "graded":
            self.done += 1
            what = f"graded {entry['score']:g}/{entry['max_score']:g}" + (
                ", FLAGGED for manual grading" if entry.get("flagged") else "") + (
                f" after {entry['attempts']} attempts" if entry["attempts"] > 1 else "")
        else:
            self.failed += 1
            what = f"FAILED after {entry['attempts']} attempts: {entry['reason']}"
        self.say(f"[{self.done + self.failed:>{len(str(self.total))}}/{self.total}  "
                 f"done {self.done}, failed {self.failed}, {self.rate():.1f}/min]  "
                 f"{student}: {what} ({entry['seconds']:.0f} s)"
                 + (f"; {entry['written_max']:g} point(s) of written answers to grade by hand"
                    if entry.get("written_max") else ""))
        if self.bar is not None:
            self.bar.set_postfix(failed=self.failed, per_min=f"{self.rate():.1f}")
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _cluster(workers: int, scheduler: str | None):
    """A Dask client, and the local cluster it owns (None on a running cluster)."""
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT), None
        except OSError as error:
            raise GradeError(f"cannot reach the Dask scheduler at {scheduler} ({error}); "
                             "start it with `dask scheduler` and its workers with "
                             "`dask worker ADDRESS`") from error
    # a dead worker reaches the coordinator at once, which sends its submission once more
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        # no dashboard; the scheduler's own HTTP routes on a free port of this machine only
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", memory_limit=0, dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def base_task(course: Path, assignment: str, notebooks: int, timeout: int | None) -> dict:
    """What every worker's grading of ``assignment`` gets (a student's task adds the
    student, the attempt, their gradebook entry and earlier state, and their files)."""
    env = _grading_env()
    return {
        "assignment": assignment,
        "config": (course / "nbgrader_config.py").read_text(),
        "grading_fingerprint": pipeline.fingerprint(
            {"code": pipeline.grading_code_digest(course)}),
        "source_files": read_files(course / "source" / assignment, skip=["*.ipynb"]),
        "env": env, "timeout": timeout or default_timeout(env, notebooks),
        "hide": [str(course), str(course.parent / "solutions")],
    }


def check_kernel(course: Path, say) -> None:
    """Start one grading kernel here as the gradings will before anything is sent to a
    worker: when it cannot start, no submission could be graded. Raises
    :class:`GradeError` with what failed, why and what to do."""
    from gancourse.autograde import preflight

    started = time.perf_counter()
    try:
        preflight.check(course)
    except preflight.PreflightFailed as failure:
        raise GradeError(failure.message) from None
    say(f"the grading kernel starts (checked in {time.perf_counter() - started:.1f} s)")


def grade(course: Path, assignment: str, workers: int = 2, scheduler: str | None = None,
          students=None, force: bool = False, retries: int = 1, timeout: int | None = None,
          out=None) -> dict:
    """Autograde every submission of ``assignment`` that needs it; returns the summary of
    this run (``{student: entry}``, see :func:`store`)."""
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise GradeError(f"{course} is not a course folder (no nbgrader_config.py); "
                         "pass --course")
    template = template_gradebook(course)
    with Gradebook(db_url(course)) as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            known = ", ".join(a.name for a in gb.assignments) or "none"
            raise GradeError(f"the gradebook has no assignment {assignment!r} (released: "
                             f"{known})") from None
    todo, done = plan(course, assignment, students, force)

    def say(text: str) -> None:
        print(text, file=out or sys.stdout, flush=True)

    say(f"{assignment}: {len(todo)} submissions to grade, {len(done)} already graded"
        + (" (--force grades them again)" if done and not force else ""))
    if not todo:
        return {}
    check_kernel(course, say)
    base = base_task(course, assignment, len(notebooks), timeout)
    with Gradebook(db_url(course)) as gb:
        per_student = {s: {"student_record": student_record(gb, s),
                           "state": submission_state(gb, assignment, s)} for s in todo}
    progress = Progress(len(todo), out)
    run = uuid.uuid4().hex[:8]
    results = {}
    client, cluster = _cluster(workers, scheduler)
    try:
        from dask.distributed import as_completed

        shared = client.scatter(template, broadcast=True)
        keys = {}

        def submit(student: str, attempt: int, earlier: list):
            task = {**base, "student": student, "attempt": attempt, **per_student[student],
                    "files": read_files(course / "submitted" / student / assignment)}
            future = client.submit(grade_submission, task, shared, pure=False,
                                   key=f"grade-{assignment}-{student}-{attempt}-{run}")
            keys[future.key] = (student, attempt, earlier)
            return future

        say(f"grading on {workers} local Dask worker{'s' * (workers > 1)}" if cluster else
            f"grading on the Dask cluster at {scheduler} "
            f"({len(client.scheduler_info()['workers'])} workers)")
        # No more submissions in flight than the cluster has threads: a submission waits
        # here, not in a worker's queue, so a worker that dies takes with it only the
        # submission it was grading (the one that counts an attempt)
        waiting = collections.deque((s, 1, []) for s in todo)
        pending = as_completed()

        def fill() -> None:
            slots = max(1, sum(client.nthreads().values()))
            while waiting and pending.count() < slots:
                pending.add(submit(*waiting.popleft()))

        fill()
        for future in pending:
            student, attempt, earlier = keys.pop(future.key)
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - recorded; the batch goes on
                name = type(error).__name__
                reason = ("the worker grading it died (Dask: KilledWorker)"
                          if name == "KilledWorker" else f"{name}: {error}"[:300])
                result = {"student": student, "attempt": attempt, "ok": False,
                          "reason": reason, "state": None, "log": "", "seconds": 0.0,
                          "worker": "?", "faults": []}
            future.release()
            why = result["reason"] if not result["ok"] else "; ".join(result["faults"])
            if why and attempt <= retries:
                outcome = "graded with faults" if result["ok"] else "failed"
                progress.say(f"{student}: attempt {attempt} {outcome} ({why}); trying again")
                waiting.append((student, attempt + 1,
                                [*earlier, f"faults: {why}" if result["ok"] else why]))
            else:
                result["earlier"] = earlier
                results[student] = store(course, assignment, result)
                progress.finished(student, results[student])
            fill()
    finally:
        progress.close()
        client.close()
        if cluster is not None:
            cluster.close()
    failed = {s: e for s, e in results.items() if e["status"] == "failed"}
    minutes = (time.perf_counter() - progress.start) / 60
    say(f"{assignment}: graded {len(results) - len(failed)}, failed {len(failed)} in "
        f"{minutes:.1f} min ({len(results) / minutes:.1f} submissions/min)")
    for student, entry in failed.items():
        say(f"  FAILED {student}: {entry['reason']} (log: "
            f"{record_folder(course, assignment) / 'logs' / (student + '.log')})")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gancourse.classgrade",
        description="Autograde every submission of an assignment on parallel workers "
                    "(Dask), with the course's nbgrader configuration and sandbox.")
    parser.add_argument("assignment")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local worker processes (default: one per CPU core)")
    parser.add_argument("--scheduler", help="a running Dask scheduler, e.g. tcp://host:8786, "
                        "instead of a local cluster")
    parser.add_argument("--course", type=Path, default=pipeline.COURSE,
                        help="the course folder (default: %(default)s)")
    parser.add_argument("--student", action="append", dest="students",
                        help="grade only this student (repeatable)")
    parser.add_argument("--force", action="store_true",
                        help="grade again submissions that are already graded")
    parser.add_argument("--retries", type=int, default=1,
                        help="attempts after a failed one before it is recorded (default 1)")
    parser.add_argument("--timeout", type=int,
                        help="seconds one submission may take (default: the course's "
                             "submission limit per notebook + 300)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        results = grade(args.course, args.assignment, workers=args.workers,
                        scheduler=args.scheduler, students=args.students, force=args.force,
                        retries=args.retries, timeout=args.timeout)
    except GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: what was graded is saved; run the command again to grade "
              f"the rest of {args.assignment}", file=sys.stderr)
        return 130
    return 1 if any(e["status"] == "failed" for e in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
