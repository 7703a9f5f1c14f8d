"""Autograding a whole class in parallel: ``python -m gantools.grade ASSIGNMENT --workers N``.

``nbgrader autograde`` grades one submission after another, and its SQLite gradebook takes
one writer at a time. This command grades every submission of an assignment on N workers
of a Dask cluster, each submission in its own sandboxed kernel, and gives the same
gradebook, graded notebooks, flags and ``nbgrader export`` as ``nbgrader autograde``.

How one submission is graded
----------------------------
The coordinator (this process) sends a worker everything the grading needs, so a worker
may run on another machine without the course's files:

* the course's ``nbgrader_config.py`` and the assignment's non-notebook source files;
* a *template gradebook*: the course's gradebook without students and submissions (only
  the assignments, their notebooks and cells), copied with SQLite's backup and vacuumed;
* the student's gradebook entry and, when the student was graded before, the state of that
  submission (extension, manual scores, comments), since autograde's results depend on them;
* the submitted files.

The worker builds a private one-student course in a temporary folder and runs the real
``nbgrader autograde ASSIGNMENT --student ID`` there with the course's preprocessors: the
grading policy, the bubblewrap sandbox, the value checks, the flags. It sends back the
autograded folder and the submission's rows of its gradebook (scores, comments,
``needs_manual_grade``, penalties). The coordinator, the gradebook's only writer, copies
those rows into the course's gradebook and then moves the folder into ``autograded/``, so
an interrupted run leaves every submission either graded or missing.

Failures
--------
A submission whose grading fails (nbgrader's error, a worker that dies, a grading that runs
past ``--timeout``) is sent again once; when the second attempt fails too, it is recorded
with its reason in ``grading/<assignment>/summary.json`` and its nbgrader log, and the
batch goes on. Like ``nbgrader autograde``, a failed submission has no autograded folder,
and its gradebook entry is what nbgrader left. Running the command again grades only what
is missing: submissions without an autograded folder, or submitted again since
(``--force`` grades everything).

The engine
----------
Without ``--scheduler`` the command starts a Dask ``LocalCluster`` of N single-threaded
worker processes on this machine; with ``--scheduler tcp://host:8786`` it uses a running
cluster, whose workers need this package, its ``gan-course`` kernel
(``python -m gantools.kernel install``) and bubblewrap. On a cluster that Dask retries
itself (its ``allowed-failures``, 3 by default), a dead worker counts as one attempt here
only after Dask gave up; the local cluster sets it to 0.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path

from gantools import pipeline

SUBMISSION_TABLES = ("comment", "grade", "submitted_notebook", "submitted_assignment",
                     "student")
GRADE_FIELDS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_FIELDS = ("auto_comment", "manual_comment")
STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")
ENV_PREFIXES = ("GANCOURSE_", "GANTOOLS_")  # the grading's settings, sent to every worker
TIMEOUT_MARGIN_S = 300  # kernel start, nbgrader's own work, the sandbox's stuck timeout
LOG_TAIL = 20_000
SERVER_START_S = 120  # importing nbgrader on a loaded machine
CONNECT_TIMEOUT = "30s"  # to reach a running scheduler


class GradeError(RuntimeError):
    """The class cannot be graded as asked (what is wrong and what to do)."""


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


# --- the gradebook: what a worker starts from, what it sends back ---------------------------

def template_gradebook(course: Path) -> bytes:
    """The course's gradebook without students and submissions: the assignments, notebooks
    and cells that autograde needs, and nothing about anyone (the copy is vacuumed, so no
    deleted row survives in a free page)."""
    source = course / "gradebook.db"
    if not source.is_file():
        raise GradeError(f"no gradebook at {source}: release the assignment first "
                         "(make course, or nbgrader generate_assignment)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gradebook.db"
        with contextlib.closing(sqlite3.connect(source)) as src, \
                contextlib.closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
            dst.executescript("".join(f"DELETE FROM {t};" for t in SUBMISSION_TABLES))
            dst.commit()
            dst.execute("VACUUM")
        return path.read_bytes()


def student_record(gb, student: str) -> dict:
    from nbgrader.api import MissingEntry

    try:
        found = gb.find_student(student)
    except MissingEntry:
        return {}
    return {k: getattr(found, k) for k in STUDENT_FIELDS if getattr(found, k) is not None}


def submission_state(gb, assignment: str, student: str) -> dict | None:
    """Everything the gradebook holds about one submission, as plain data (JSON-safe), or
    None when there is no such submission."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    return {
        "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
        "extension_s": sub.extension.total_seconds() if sub.extension is not None else None,
        "notebooks": {nb.name: {
            "flagged": nb.flagged,
            "late_submission_penalty": nb.late_submission_penalty,
            "grades": {g.name: {k: getattr(g, k) for k in GRADE_FIELDS} for g in nb.grades},
            "comments": {c.name: {k: getattr(c, k) for k in COMMENT_FIELDS}
                         for c in nb.comments},
        } for nb in sub.notebooks},
    }


def apply_state(gb, assignment: str, student: str, state: dict) -> None:
    """Make the gradebook's submission exactly ``state`` (from :func:`submission_state`),
    creating the student and the submission when needed."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():  # nbgrader's own autoflush warnings, harmless
        warnings.simplefilter("ignore", SAWarning)
        _apply_state(gb, assignment, student, state)


def _apply_state(gb, assignment: str, student: str, state: dict) -> None:
    gb.update_or_create_student(student)
    timestamp = dt.datetime.fromisoformat(state["timestamp"]) if state["timestamp"] else None
    extension = (dt.timedelta(seconds=state["extension_s"])
                 if state["extension_s"] is not None else None)
    sub = gb.update_or_create_submission(assignment, student, timestamp=timestamp,
                                         extension=extension)
    notebooks = {nb.name: nb for nb in sub.notebooks}
    if set(notebooks) != set(state["notebooks"]):
        raise GradeError(f"{assignment}: the gradebook's notebooks {sorted(notebooks)} are not "
                         f"the graded ones {sorted(state['notebooks'])}; was the assignment "
                         "released again while it was graded?")
    for name, saved in state["notebooks"].items():
        nb = notebooks[name]
        nb.flagged = saved["flagged"]
        nb.late_submission_penalty = saved["late_submission_penalty"]
        for rows, kind, fields in ((nb.grades, "grades", GRADE_FIELDS),
                                   (nb.comments, "comments", COMMENT_FIELDS)):
            by_name = {row.name: row for row in rows}
            for cell, values in saved[kind].items():
                for field in fields:
                    setattr(by_name[cell], field, values[field])
    gb.db.commit()


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


def _read_files(folder: Path, skip=()) -> dict:
    """``{relative path: (bytes, mode)}`` of the files under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(folder.rglob("*")) if p.is_file()
            and not any(p.match(pattern) for pattern in skip)}


def _write_files(folder: Path, files: dict) -> None:
    for name, (content, mode) in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


def _grading_env() -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def default_timeout(env: dict, notebooks: int) -> int:
    """Seconds one submission's grading may take: its notebooks' limit from the course's
    configuration (``GANCOURSE_SUBMISSION_TIMEOUT``, by default 3 cell limits) plus a
    margin for starting kernels and nbgrader."""
    cell = int(env.get("GANCOURSE_CELL_TIMEOUT", "600"))
    return notebooks * int(env.get("GANCOURSE_SUBMISSION_TIMEOUT", str(3 * cell))) \
        + TIMEOUT_MARGIN_S


# --- on the worker -------------------------------------------------------------------------

def failure_reason(log: str, returncode: int | None) -> str:
    """The reason to record for a failed nbgrader run: the last exception its log names,
    or its exit status."""
    found = re.findall(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", log, re.MULTILINE)
    found = [f for f in found if f[0] != "NbGraderException"] or found
    if found:
        name, message = found[-1]
        return f"{name}: {message.strip()}"[:300]
    return f"nbgrader exited with status {returncode}"


class GradingServerDied(RuntimeError):
    pass


class GradingServer:
    """This worker thread's :mod:`gantools.grading.child` server, which forks one nbgrader
    per submission from a process that has imported nbgrader and the course's plug-ins
    once (see there for the protocol)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gantools.grading.child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""
        if "ready" not in self._read(SERVER_START_S):
            raise GradingServerDied("the grading server did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self, timeout: float) -> dict | None:
        """The server's next line, None after ``timeout`` seconds without one."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise GradingServerDied(f"the grading server (pid {self.proc.pid}) died")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv, cwd: Path, env: dict, log: Path, timeout: float):
        """Run ``nbgrader argv``: ``(exit status or None after timeout, CPU seconds)``."""
        request = {"argv": argv, "cwd": str(cwd), "env": env, "log": str(log)}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise GradingServerDied("the grading server is gone") from None
        started = self._read(SERVER_START_S)
        if started is None:
            raise GradingServerDied("the grading server does not answer")
        ended = self._read(timeout)
        if ended is None:  # nbgrader, the sandbox and the kernel: its process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started["pid"], signal.SIGKILL)
            ended = self._read(SERVER_START_S) or {"cpu_seconds": 0.0}
            return None, ended["cpu_seconds"]
        return ended["returncode"], ended["cpu_seconds"]


_servers = threading.local()


def grading_server() -> GradingServer:
    server = getattr(_servers, "server", None)
    if server is None or not server.alive():
        server = _servers.server = GradingServer()
    return server


def grade_submission(task: dict, template: bytes) -> dict:
    """Grade one submission in a private one-student course (runs on a Dask worker)."""
    from nbgrader.api import Gradebook

    started = time.perf_counter()
    result = {"student": task["student"], "attempt": task["attempt"], "ok": False,
              "worker": f"{socket.gethostname()}:{os.getpid()}", "files": {}, "state": None,
              "log": "", "reason": None, "cpu_seconds": 0.0}
    root = Path(tempfile.mkdtemp(prefix="gantools-grade-"))
    try:
        course = root / "course"
        assignment, student = task["assignment"], task["student"]
        (course / "source" / assignment).mkdir(parents=True)
        (course / "nbgrader_config.py").write_text(task["config"])
        here = pipeline.grading_code_digest(course)
        if pipeline.fingerprint({"code": here}) != task["grading_fingerprint"]:
            result["reason"] = ("this worker's gantools grading code is not the coordinator's: "
                                "install the same gantools on every worker")
            return result
        (course / "gradebook.db").write_bytes(template)
        _write_files(course / "source" / assignment, task["source_files"])
        _write_files(course / "submitted" / student / assignment, task["files"])
        with Gradebook(db_url(course)) as gb:
            gb.update_or_create_student(student, **task["student_record"])
            if task["state"] is not None:
                apply_state(gb, assignment, student, task["state"])
        hide = [p for p in os.environ.get("GANTOOLS_SANDBOX_HIDE", "").split(os.pathsep) if p]
        env = {**os.environ, **task["env"], "GANTOOLS_SANDBOX_HIDE": os.pathsep.join(
            [str(root), *task["hide"], *hide])}
        argv = ["autograde", assignment, f"--student={student}",
                f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url={db_url(course)}"]
        log_path = root / "nbgrader.log"
        returncode, result["cpu_seconds"] = grading_server().run(
            argv, cwd=course, env=env, log=log_path, timeout=task["timeout"])
        text = log_path.read_text(errors="replace")
        result["log"] = text[-LOG_TAIL:]
        graded = course / "autograded" / student / assignment
        with Gradebook(db_url(course)) as gb:
            result["state"] = submission_state(gb, assignment, student)
        notebooks = [name for name in task["files"] if name.endswith(".ipynb")]
        if returncode is None:
            result["reason"] = (f"grading took longer than {task['timeout']} s and was stopped "
                                "(--timeout)")
        elif returncode != 0 or not all((graded / n).is_file() for n in notebooks):
            result["reason"] = failure_reason(text, returncode)
        else:
            result["ok"] = True
            result["files"] = _read_files(graded)
            result["dir_mode"] = graded.stat().st_mode & 0o777
        return result
    except GradingServerDied as error:
        result["reason"] = str(error)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)
        result["seconds"] = time.perf_counter() - started


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
        _write_files(staging, result["files"])
        staging.chmod(result["dir_mode"])
        if dest.exists():
            rmtree(str(dest))
        staging.rename(dest)
    elif dest.exists():  # nbgrader removes what a failed grading left
        rmtree(str(dest))
    folder = record_folder(course, assignment)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "logs" / f"{student}.log").write_text(result["log"])
    entry = {"status": "graded" if result["ok"] else "failed", "attempts": result["attempt"],
             "reason": result["reason"], "earlier_reasons": result.get("earlier", []),
             "seconds": round(result["seconds"], 2),
             "cpu_seconds": round(result["cpu_seconds"], 2), "worker": result["worker"],
             "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if result["ok"]:
        report = dest / f"{assignment}.grading.json"
        entry["flagged"] = (json.loads(report.read_text())["flagged"]
                            if report.is_file() else False)
        with Gradebook(db_url(course)) as gb:
            sub = gb.find_submission(assignment, student)
            entry["score"], entry["max_score"] = sub.score, sub.max_score
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
                ", FLAGGED for manual grading" if entry.get("flagged") else "")
        else:
            self.failed += 1
            what = f"FAILED after {entry['attempts']} attempts: {entry['reason']}"
        self.say(f"[{self.done + self.failed:>{len(str(self.total))}}/{self.total}  "
                 f"done {self.done}, failed {self.failed}, {self.rate():.1f}/min]  "
                 f"{student}: {what} ({entry['seconds']:.0f} s, {entry['cpu_seconds']:.0f} "
                 f"CPU s)")
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
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=0, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


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
    env = _grading_env()
    base = {
        "assignment": assignment, "course": str(course),
        "config": (course / "nbgrader_config.py").read_text(),
        "grading_fingerprint": pipeline.fingerprint(
            {"code": pipeline.grading_code_digest(course)}),
        "source_files": _read_files(course / "source" / assignment, skip=["*.ipynb"]),
        "env": env, "timeout": timeout or default_timeout(env, len(notebooks)),
        "hide": [str(course), str(course.parent / "solutions")],
    }
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
                    "files": _read_files(course / "submitted" / student / assignment)}
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
                          "cpu_seconds": 0.0, "worker": "?"}
            future.release()
            if not result["ok"] and attempt <= retries:
                progress.say(f"{student}: attempt {attempt} failed ({result['reason']}); "
                             "trying again")
                waiting.append((student, attempt + 1, [*earlier, result["reason"]]))
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
        prog="python -m gantools.grade",
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
    return 1 if any(e["status"] == "failed" for e in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
