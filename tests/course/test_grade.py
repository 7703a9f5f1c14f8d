"""``python -m gancourse.classgrade``: a class autograded on parallel Dask workers.

The class of tests/support/grade_class.py (honest work, attacks, a hang, a crash, a flood of
output, a late and a broken submission) is graded three times from the same submitted
state: by sequential ``nbgrader autograde``, the oracle, and by the command with one and
with two local workers. What nbgrader's own export, gradebook API and graded files then
say must be identical. Further tests grade a few submissions each: a re-run, a grading
past its time limit, a worker killed in the middle of a submission on a running cluster.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from support import grade_class as gc

from gancourse.classgrade import coordinator as grade
from gancourse.classgrade import gradebook, worker


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    """The released assignment with the whole class submitted, nothing graded yet."""
    return gc.make_course(tmp_path_factory.mktemp("class") / "course")


@pytest.fixture(scope="module")
def grading_env():
    saved = {k: os.environ.get(k) for k in gc.ENV}
    os.environ.update(gc.ENV)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def copy_of(course: Path, tmp_path_factory, name: str) -> Path:
    return gc.copy_course(course, tmp_path_factory.mktemp(name) / "course")


@pytest.fixture(scope="module")
def sequential(submitted, grading_env, tmp_path_factory):
    course = copy_of(submitted, tmp_path_factory, "sequential")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", gc.NAME], cwd=course,
                   capture_output=True, timeout=1200, env={**os.environ, **gc.ENV})
    print(f"\nsequential nbgrader autograde: {time.perf_counter() - start:.0f} s")
    return gc.outcome(course)


def graded_in_parallel(submitted, tmp_path_factory, workers):
    course = copy_of(submitted, tmp_path_factory, f"workers{workers}")
    out = io.StringIO()
    start = time.perf_counter()
    results = grade.grade(course, gc.NAME, workers=workers, out=out)
    print(f"\n{workers} workers: {time.perf_counter() - start:.0f} s\n{out.getvalue()}")
    return {"course": course, "results": results, "printed": out.getvalue(),
            "outcome": gc.outcome(course)}


@pytest.fixture(scope="module")
def one_worker(submitted, grading_env, tmp_path_factory):
    return graded_in_parallel(submitted, tmp_path_factory, 1)


@pytest.fixture(scope="module")
def two_workers(submitted, grading_env, tmp_path_factory):
    return graded_in_parallel(submitted, tmp_path_factory, 2)


def scores(outcome) -> dict:
    return {student: sum(g[0] or 0 for g in found["grades"].values())
            for student, found in outcome["submissions"].items()}


# --- the whole class: 1 and 2 workers against sequential nbgrader -------------------------

def test_the_oracle_grades_the_class_as_designed(sequential):
    """Sequential nbgrader gives each submission its intended score and flags: the
    comparisons below are between meaningful gradings, not two empty ones."""
    assert scores(sequential) == {s: gc.SCORES[s] for s in [*gc.CLASS, gc.BROKEN]}
    flagged = {s for s, found in sequential["submissions"].items()
               if found.get("report", {}).get("flagged")}
    assert flagged == gc.FLAGGED
    assert sequential["submissions"][gc.BROKEN]["files"] is None  # nbgrader cannot grade it
    late = dict(next(r for r in sequential["export"] if dict(r)["student_id"] == "late"))
    assert late["timestamp"].startswith("2026-03-02 09:30")
    assert dict(next(r for r in sequential["export"] if dict(r)["student_id"] == "perfect"))[
        "last_name"] == "Lovelace"


@pytest.mark.parametrize("workers", ["one_worker", "two_workers"])
def test_parallel_grading_gives_exactly_what_sequential_autograde_gives(
        request, sequential, workers):
    """The export, every grade, comment and flag, the grading reports, the graded files and
    the outputs of every cell are those of ``nbgrader autograde``."""
    parallel = request.getfixturevalue(workers)["outcome"]
    assert parallel["export"] == sequential["export"]
    assert set(parallel["submissions"]) == set(sequential["submissions"])
    for student, expected in sequential["submissions"].items():
        assert parallel["submissions"][student] == expected, student


def test_one_and_two_workers_agree(one_worker, two_workers):
    assert one_worker["outcome"] == two_workers["outcome"]
    assert len({e["worker"] for e in one_worker["results"].values()}) == 1
    assert len({e["worker"] for e in two_workers["results"].values()}) == 2


def test_a_broken_notebook_is_tried_twice_then_recorded_and_the_batch_goes_on(two_workers):
    summary = json.loads((two_workers["course"] / "grading" / gc.NAME / "summary.json")
                         .read_text())
    assert set(summary) == {*gc.CLASS, gc.BROKEN}
    broken = summary[gc.BROKEN]
    assert broken["status"] == "failed" and broken["attempts"] == 2
    assert broken["reason"].startswith("NotJSONError: Notebook does not appear to be JSON")
    assert broken["earlier_reasons"] == [broken["reason"]]
    log = two_workers["course"] / "grading" / gc.NAME / "logs" / f"{gc.BROKEN}.log"
    assert "NotJSONError" in log.read_text()
    assert all(summary[s]["status"] == "graded" for s in gc.CLASS)
    assert {s for s in gc.CLASS if summary[s]["attempts"] == 2} == set(gc.FAULTS)


def test_a_submission_graded_with_faults_is_graded_once_more(two_workers):
    """A kernel that died or flooded its output may have been a busy machine's doing: the
    submission is graded again and the second grading kept, which here faults alike."""
    summary = json.loads((two_workers["course"] / "grading" / gc.NAME / "summary.json")
                         .read_text())
    for student, needle in gc.FAULTS.items():
        entry = summary[student]
        assert entry["attempts"] == 2 and entry["flagged"], entry
        earlier, = entry["earlier_reasons"]
        assert earlier.startswith("faults: ") and needle in earlier, earlier
        assert len(entry["faults"]) == 1 and needle in entry["faults"][0]
        assert f"{student}: attempt 1 graded with faults (" in two_workers["printed"]
    assert all(not summary[s]["faults"] for s in gc.CLASS if s not in gc.FAULTS)
    assert {s for s in gc.CLASS if summary[s]["flagged"]} == gc.FLAGGED
    assert {s: summary[s]["score"] for s in gc.CLASS} == {s: gc.SCORES[s] for s in gc.CLASS}


def test_progress_counts_done_failed_and_the_rate(two_workers):
    lines = two_workers["printed"].splitlines()
    total = len(gc.CLASS) + 1
    assert lines[0] == f"{gc.NAME}: {total} submissions to grade, 0 already graded"
    finished = [x for x in lines if x.startswith("[")]
    assert len(finished) == total
    assert finished[-1].startswith(f"[{total}/{total}  done {total - 1}, failed 1, ")
    assert "perfect: graded 3/4" in two_workers["printed"]
    # the class's notebook has one written answer (1 point), which autograde leaves at 0
    assert "s); 1 point(s) of written answers to grade by hand" in two_workers["printed"]
    assert "crash: graded 1/4, FLAGGED for manual grading after 2 attempts (" in two_workers[
        "printed"]
    assert f"{gc.BROKEN}: attempt 1 failed (NotJSONError" in two_workers["printed"]
    assert f"graded {total - 1}, failed 1 in" in lines[-2]
    assert "submissions/min" in lines[-2] and lines[-1].startswith(f"  FAILED {gc.BROKEN}")


def test_a_rerun_grades_only_what_is_missing_or_submitted_again(
        two_workers, sequential, tmp_path_factory):
    course = copy_of(two_workers["course"], tmp_path_factory, "rerun")
    shutil.rmtree(course / "autograded" / "perfect")
    (course / "submitted" / "late" / gc.NAME / "timestamp.txt").write_text(
        "2026-03-02 10:00:00.000000 UTC")  # submitted again, after its grading
    out = io.StringIO()
    results = grade.grade(course, gc.NAME, workers=2, out=out)
    assert set(results) == {"perfect", "late", gc.BROKEN}
    assert out.getvalue().startswith(f"{gc.NAME}: 3 submissions to grade, "
                                     f"{len(gc.CLASS) - 2} already graded")
    again = gc.outcome(course)
    assert again["submissions"]["perfect"] == sequential["submissions"]["perfect"]
    assert again["submissions"]["late"]["timestamp"].startswith("2026-03-02 10:00")
    untouched = set(gc.CLASS) - {"late"}
    assert {s: again["submissions"][s] for s in untouched} == {
        s: sequential["submissions"][s] for s in untouched}
    assert grade.grade(course, gc.NAME, students=["perfect"], out=io.StringIO()) == {}


def test_an_interrupted_run_resumes_where_it_stopped(
        submitted, sequential, grading_env, tmp_path_factory):
    """The command, interrupted (Ctrl-C) after its first graded submission, keeps what it
    graded and stops its workers; run again, it grades the rest, and the class is graded
    as sequential nbgrader grades it."""
    course = copy_of(submitted, tmp_path_factory, "interrupted")
    students = ["perfect", "partial", "blank", "late"]
    command = [sys.executable, "-m", "gancourse.classgrade", gc.NAME, "--course", str(course),
               "--workers", "1", *(f"--student={s}" for s in students)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    for line in proc.stdout:
        if line.startswith("[1/4"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, rest
    assert "interrupted: what was graded is saved; run the command again" in rest
    graded = {p.parent.name for p in (course / "autograded").glob(f"*/{gc.NAME}")}
    assert 1 <= len(graded) < len(students)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"{gc.NAME}: {len(students) - len(graded)} submissions "
                                   f"to grade, {len(graded)} already graded")
    found = gc.outcome(course)["submissions"]
    assert {s: found[s] for s in students} == {s: sequential["submissions"][s]
                                              for s in students}


# --- failures: a grading that runs too long, a worker that dies -----------------------------

def grading_processes() -> list:
    """The processes of a submission's grading on a worker: nbgrader and what it started."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if "gancourse.classgrade.child" in line or "gantools-grade-" in line:
            found.append(proc)
    return found


def test_a_grading_past_its_time_limit_is_stopped_tried_again_and_recorded(
        submitted, grading_env, tmp_path_factory, monkeypatch):
    """The hang, with cells allowed a minute: the grading's own limit (5 s) stops it, kernel
    included; the second attempt fails alike and the reason is recorded."""
    monkeypatch.setenv("GANCOURSE_CELL_TIMEOUT", "60")
    course = copy_of(submitted, tmp_path_factory, "timeout")
    results = grade.grade(course, gc.NAME, workers=1, students=["hang"], timeout=5,
                          out=io.StringIO())
    entry = results["hang"]
    assert entry["status"] == "failed" and entry["attempts"] == 2
    assert entry["reason"] == "grading took longer than 5 s and was stopped (--timeout)"
    assert not (course / "autograded" / "hang").exists()
    deadline = time.monotonic() + 10
    while grading_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not grading_processes()


def start_cluster(folder: Path, workers: int):
    """A Dask scheduler and ``workers`` worker processes without nannies, as an instructor
    would start them (``dask scheduler``, ``dask worker``), on this machine's loopback."""
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    scheduler_file = folder / "scheduler.json"

    def start(module, *args):
        return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{module}", *args,
                                 "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    procs = [start("dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                   "--scheduler-file", str(scheduler_file))]
    deadline = time.monotonic() + 60
    while not scheduler_file.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    procs += [start("dask_worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                    "--no-nanny", "--name", f"w{i}") for i in range(workers)]
    address = json.loads(scheduler_file.read_text())["address"]
    from dask.distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=60)
    return address, procs


def kill_first_grading_worker(worker_pids: set, killed: list, stop: threading.Event):
    while not stop.is_set():
        for proc in grading_processes():
            try:
                parent = proc.parent()
            except psutil.Error:
                continue
            if parent is not None and parent.pid in worker_pids:
                os.kill(parent.pid, signal.SIGKILL)
                killed.append(parent.pid)
                return
        time.sleep(0.2)


def test_a_worker_killed_mid_submission_on_a_running_cluster(
        submitted, sequential, grading_env, tmp_path_factory):
    """``--scheduler``: a worker dies while it grades; its submission is graded again on
    the other worker, the batch finishes, and the grades are sequential nbgrader's. The
    orphaned nbgrader and kernel stop by themselves."""
    course = copy_of(submitted, tmp_path_factory, "cluster")
    address, procs = start_cluster(course.parent, workers=2)
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_first_grading_worker,
                              args=({p.pid for p in procs[1:]}, killed, stop))
    killer.start()
    students = ["perfect", "partial", "attack_import"]
    try:
        out = io.StringIO()
        results = grade.grade(course, gc.NAME, scheduler=address, students=students, out=out)
    finally:
        stop.set()
        killer.join()
        for proc in procs:
            proc.kill()
            proc.wait()
    assert len(killed) == 1
    assert set(results) == set(students)
    assert all(e["status"] == "graded" for e in results.values()), out.getvalue()
    again = [s for s, e in results.items() if e["attempts"] == 2]
    assert len(again) == 1, out.getvalue()
    assert results[again[0]]["earlier_reasons"] == ["the worker grading it died "
                                                    "(Dask: KilledWorker)"]
    assert f"grading on the Dask cluster at {address} (2 workers)" in out.getvalue()
    found = gc.outcome(course)["submissions"]
    assert {s: found[s] for s in students} == {s: sequential["submissions"][s]
                                              for s in students}
    deadline = time.monotonic() + 15
    while grading_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not grading_processes()


# --- the parts, and what an instructor gets wrong -----------------------------------------

def test_the_template_gradebook_holds_the_assignment_and_nobody(submitted, tmp_path):
    import sqlite3

    path = tmp_path / "gradebook.db"
    path.write_bytes(gradebook.template_gradebook(submitted))
    with sqlite3.connect(path) as db:
        for table in gradebook.SUBMISSION_TABLES:
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
        assert db.execute("SELECT name FROM assignment").fetchall() == [(gc.NAME,)]
        assert db.execute("SELECT COUNT(*) FROM grade_cells").fetchone()[0] == 3
    assert b"Lovelace" not in path.read_bytes()  # vacuumed: no deleted row survives


def test_a_worker_with_other_grading_code_refuses_to_grade(submitted):
    task = {"student": "perfect", "attempt": 1, "assignment": gc.NAME,
            "config": (submitted / "nbgrader_config.py").read_text(),
            "grading_fingerprint": "0" * 16}
    result = worker.grade_submission(task, b"")
    assert not result["ok"] and "install the same checkout on every worker" in result["reason"]


def test_failure_reason_names_the_last_exception_of_nbgrader_log():
    log = ("[AutogradeApp | ERROR] There was an error processing assignment\n"
           "    Traceback (most recent call last):\n"
           "    nbformat.reader.NotJSONError: Notebook does not appear to be JSON: '{'\n"
           "[AutogradeApp | ERROR] nbgrader.apps.baseapp.NbGraderException: failed\n")
    assert worker.failure_reason(log, 1) == (
        "NotJSONError: Notebook does not appear to be JSON: '{'")
    assert worker.failure_reason("nothing useful", -9) == "nbgrader exited with status -9"


@pytest.mark.parametrize("args, message", [
    (["00_class", "--workers", "0"], "--workers must be at least 1"),
    (["nope"], "the gradebook has no assignment 'nope' (released: 00_class)"),
    (["00_class", "--student", "nobody"], "no submission of 00_class from nobody"),
    (["00_class", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
])
def test_the_command_says_what_is_wrong(submitted, capsys, args, message, monkeypatch):
    monkeypatch.setattr(grade, "CONNECT_TIMEOUT", "2s")
    try:
        code = grade.main([*args, "--course", str(submitted)])
    except SystemExit as error:  # argparse's usage errors
        code = error.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_folder_that_is_not_a_course_is_refused(tmp_path, capsys):
    assert grade.main(["00_class", "--course", str(tmp_path)]) == 2
    assert "is not a course folder (no nbgrader_config.py)" in capsys.readouterr().err


def test_the_default_time_limit_follows_the_course_configuration():
    assert grade.default_timeout({}, 1) == 3 * 600 + grade.TIMEOUT_MARGIN_S
    env = {"GANCOURSE_CELL_TIMEOUT": "40", "GANCOURSE_SUBMISSION_TIMEOUT": "400"}
    assert grade.default_timeout(env, 2) == 800 + grade.TIMEOUT_MARGIN_S


def test_a_worker_imports_nothing_of_the_build():
    """A grading worker checks the coordinator's code by its digest alone: the build (which
    puts its tools on PATH when imported) stays out of the worker's process."""
    probe = ("import sys, gancourse.classgrade.worker; "
             "print(sorted(m for m in sys.modules if m.startswith('gancourse.build')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=300).stdout.strip().splitlines()[-1]
    assert out == "['gancourse.build', 'gancourse.build.fingerprints']"
