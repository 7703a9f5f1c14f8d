"""A grading kernel that cannot start is the machine's fault, never a student's score.

Two sides of it. A checkout and virtual environment under ``/tmp`` (which the sandbox
makes private) or under a path with spaces build, self-check and grade like any other:
the sandbox binds back what the kernel needs. And a kernel made unable to start stops
``nbgrader autograde``, ``make course`` (``python -m gancourse.build``) and ``python -m
gancourse.classgrade`` before any submission is recorded, with a message of a few lines (what
failed, the cause, the fix) instead of a 0 for every student.

The courses are one small assignment (tests/support/tiny_course.py's, with a locked cell that
reports what the kernel sees), so every command runs for real in seconds.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from support.tiny_course import NAME, cell, tiny_notebook

from gancourse.autograde import preflight, sandbox
from gancourse.build import pipeline
from gancourse.classgrade import coordinator as grade
from gancourse.classgrade import worker
from gancourse.classgrade.gradebook import db_url, student_record, template_gradebook
from gancourse.classgrade.worker import read_files

ROOT = Path(__file__).resolve().parents[2]
ENV = {"GANCOURSE_CELL_TIMEOUT": "60", "GANCOURSE_SUBMISSION_TIMEOUT": "120",
       "TF_CPP_MIN_LOG_LEVEL": "2"}
BROKEN = {**ENV, sandbox.ENV_MEMORY_MB: "1"}  # no kernel starts with 1 MB of address space

needs_bwrap = pytest.mark.skipif(
    not sandbox.sandbox_available(),
    reason=f"bubblewrap (bwrap) cannot run here; install it: {sandbox.INSTALL_HINT}")

# a locked cell (trusted, never checked by the policy): which gantools the kernel imported,
# and whether it can read the course (three folders up from autograded/<student>/<name>)
PROBE = ('import os\nimport gantools\nprint("gantools:", os.path.dirname(gantools.__file__))\n'
         'print("course readable:", os.path.exists(os.path.join("..", "..", "..", '
         '"nbgrader_config.py")))')


def probe_notebook():
    nb = tiny_notebook()
    probe = cell(PROBE, grade_id="probe", locked=True)
    probe.id = "probe"
    nb.cells.insert(2, probe)
    return nb


def make_course(course: Path, students=("alice", "bob")) -> Path:
    """The assignment released in ``course`` (real configuration), ``students`` submitted
    (the blank release), nothing graded."""
    (course / "source" / NAME).mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    nbformat.write(probe_notebook(), course / "source" / NAME / f"{NAME}.ipynb")
    pipeline.run_nbgrader(course, "generate_assignment", NAME, "--force")
    release = course / "release" / NAME / f"{NAME}.ipynb"
    for student in students:
        pipeline.submit(course, NAME, student, {release.name: release})
    return course


def environment(extra: dict) -> dict:
    """This process's environment with ``extra``, without the folders to hide that an
    earlier test's course configuration left in it (each course names its own)."""
    env = {**os.environ, **extra}
    env.pop(sandbox.ENV_HIDE, None)
    env.pop(preflight.ENV_PASSED, None)
    return env


@pytest.fixture(autouse=True)
def _no_inherited_course(monkeypatch):
    monkeypatch.delenv(sandbox.ENV_HIDE, raising=False)
    monkeypatch.delenv(preflight.ENV_PASSED, raising=False)


def gradebook_rows(course: Path) -> tuple[list, list]:
    """The gradebook's students and submissions."""
    with Gradebook(db_url(course)) as gb:
        return ([s.id for s in gb.students],
                [(s.student.id, s.score) for a in gb.assignments for s in a.submissions])


def check_halted_message(text: str, consequence: str = preflight.NOTHING_GRADED) -> None:
    """A few lines saying what failed, why and what to do; no traceback."""
    assert f"{preflight.HEADLINE}, {consequence}." in text, text
    assert "  cause: /usr/bin/bwrap: error while loading shared libraries" in text or \
        "  cause: bwrap: " in text, text
    assert f"  fix:   {sandbox.ENV_MEMORY_MB}=1 leaves a kernel too little memory" in text, text
    assert "Traceback" not in text, text
    message = text[text.index(preflight.HEADLINE):].splitlines()
    assert len(message) <= 5, message
    remove_kernel_output(text)


def remove_kernel_output(text: str) -> None:
    """The kernel's output that a failed check keeps for the instructor."""
    for path in re.findall(r"the kernel's output: (.+?\.log)", text):
        Path(path).unlink(missing_ok=True)


# --- a checkout under /tmp, and one under a path with spaces -------------------------------

def base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def make_checkout(checkout: Path) -> Path:
    """A copy of the course's checkout (the package, the configuration, the assignment)
    with a virtual environment of its own in ``.venv``: made from the base interpreter,
    borrowing this environment's packages through a ``.pth`` file (no TensorFlow to
    install), importing the copy's gantools and gancourse, with the ``gan-course`` kernel installed.
    Returns its Python."""
    for package in ("gantools", "gancourse"):
        shutil.copytree(ROOT / package, checkout / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    course = checkout / "course"
    (course / "source" / NAME).mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    nbformat.write(probe_notebook(), course / "source" / NAME / f"{NAME}.ipynb")
    venv = checkout / ".venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # the copy's packages are found on sys.path before the editable install's finder, which
    # this environment's site-packages bring along, maps them to the real checkout
    (purelib / "00_gantools_checkout.pth").write_text(f"{checkout}\n")
    (purelib / "01_course_packages.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([python, "-m", "gancourse.kernel", "install"], check=True, timeout=120,
                   capture_output=True)
    return python


def run(python: Path, *args, cwd: Path, env=None, timeout=600):
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment({**ENV, **(env or {})}))


def graded_probe(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / NAME / f"{NAME}.ipynb", 4)
    probe = next(c for c in nb.cells if c.get("id") == "probe")
    return "".join(o.get("text", "") for o in probe.outputs)


@pytest.fixture(params=["checkout", "gan course checkout"], ids=["tmp", "tmp-with-spaces"])
def checkout(request):
    base = Path(tempfile.mkdtemp(prefix="gantools test " if " " in request.param
                                 else "gantools-test-", dir="/tmp"))
    yield base / request.param
    shutil.rmtree(base, ignore_errors=True)


@needs_bwrap
def test_a_checkout_under_tmp_builds_self_checks_and_grades(checkout):
    python = make_checkout(checkout)
    course = checkout / "course"
    found = run(python, "-c", "import gantools; print(gantools.__file__)", cwd=course)
    assert found.stdout.strip() == str(checkout / "gantools" / "__init__.py"), found.stderr

    # make course: release, solution, self-check (the sandboxed kernel)
    built = run(python, "-m", "gancourse.build", "--only", NAME, "--workers", "1",
                cwd=checkout)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "the grading kernel starts" in built.stdout
    assert "passed: solution 1/1, blank 0" in built.stdout, built.stdout

    # nbgrader autograde of a perfect submission
    solution = pipeline.as_submission(checkout / "solutions" / f"{NAME}.ipynb")
    pipeline.submit(course, NAME, "alice", {f"{NAME}.ipynb": solution})
    graded = run(python, "-m", "nbgrader", "autograde", NAME, cwd=course)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert pipeline.grades(course, NAME, "alice")[NAME]["score"] == 1
    assert graded_probe(course, "alice") == (f"gantools: {checkout / 'gantools'}\n"
                                             "course readable: False\n")

    # python -m gancourse.classgrade: a worker's one-student course, the same sandbox
    pipeline.submit(course, NAME, "bob", {f"{NAME}.ipynb": solution})
    graded = run(python, "-m", "gancourse.classgrade", NAME, "--workers", "1", "--student", "bob",
                 cwd=checkout)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    summary = json.loads((course / "grading" / NAME / "summary.json").read_text())
    assert summary["bob"]["status"] == "graded" and summary["bob"]["score"] == 1, summary
    assert graded_probe(course, "bob") == (f"gantools: {checkout / 'gantools'}\n"
                                           "course readable: False\n")


# --- a kernel that cannot start ------------------------------------------------------------

@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("released") / "course")


@pytest.fixture
def course(released, tmp_path):
    return Path(shutil.copytree(released, tmp_path / "course"))


@needs_bwrap
def test_nbgrader_autograde_stops_before_recording_anyone(course):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", NAME], cwd=course,
                          capture_output=True, text=True, timeout=600,
                          env=environment(BROKEN))
    assert proc.returncode != 0
    check_halted_message(proc.stderr)
    assert "There was an error processing assignment" not in proc.stdout + proc.stderr
    assert gradebook_rows(course) == ([], [])
    assert not (course / "autograded").exists()

    # the same course with a working kernel: graded
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", NAME], cwd=course,
                          capture_output=True, text=True, timeout=600,
                          env=environment(ENV))
    assert proc.returncode == 0, proc.stderr
    assert "The grading kernel starts (checked in" in proc.stderr
    assert gradebook_rows(course) == (["alice", "bob"], [("alice", 0.0), ("bob", 0.0)])


@needs_bwrap
def test_make_course_stops_before_the_self_check(released, tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(released / "source" / NAME, course / "source" / NAME)
    shutil.copy(released / "nbgrader_config.py", course)
    proc = subprocess.run([sys.executable, "-m", "gancourse.build", "--course", str(course),
                           "--solutions", str(tmp_path / "solutions"), "--workers", "1"],
                          capture_output=True, text=True, timeout=600,
                          env=environment(BROKEN))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    check_halted_message(proc.stderr, "so the self-check cannot run")
    assert proc.stderr.startswith("error: ")
    assert "autograding" not in proc.stdout
    assert gradebook_rows(course) == ([], [])
    state = json.loads((course / ".build" / "state.json").read_text())
    assert state["self_check"] == {}


@needs_bwrap
def test_grading_a_class_stops_before_dispatching_anything(course):
    proc = subprocess.run([sys.executable, "-m", "gancourse.classgrade", NAME, "--course",
                           str(course), "--workers", "1"], capture_output=True, text=True,
                          timeout=600, env=environment(BROKEN))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    check_halted_message(proc.stderr)
    assert "grading on" not in proc.stdout  # no cluster started, nothing sent
    assert gradebook_rows(course) == ([], [])
    assert not (course / "autograded").exists() and not (course / "grading").exists()


def task_for(course: Path, student: str) -> tuple[dict, bytes]:
    """A worker's task for ``student``, as the coordinator sends it."""
    base = grade.base_task(course, NAME, 1, 300)
    with Gradebook(db_url(course)) as gb:
        record = student_record(gb, student)
    task = {**base, "student": student, "attempt": 1, "student_record": record,
            "state": None, "files": read_files(course / "submitted" / student / NAME)}
    return task, template_gradebook(course)


@needs_bwrap
def test_a_worker_records_a_kernel_that_cannot_start_and_grades_nothing(
        course, monkeypatch):
    """The worker's own check fails; or it passed, and nbgrader's check fails (a worker
    that sends on a success nbgrader's configuration does not match): either way the
    submission is recorded as failed with the check's message, its gradebook rows are
    not touched and its earlier grading stays."""
    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    task, template = task_for(course, "alice")
    result = worker.grade_submission(task, template)
    assert not result["ok"] and result["halted"] and result["state"] is None
    assert result["reason"].startswith(f"{preflight.HEADLINE}, {preflight.NOTHING_GRADED}. "
                                       "cause: "), result["reason"]
    assert f"fix: {sandbox.ENV_MEMORY_MB}=1 leaves" in result["reason"]
    remove_kernel_output(result["reason"])

    monkeypatch.setattr(worker, "check_kernel", lambda course, env: ("not this one", None))
    try:
        result = worker.grade_submission(task, template)
    finally:
        worker.grading_server().stop()
    assert not result["ok"] and result["halted"] and result["state"] is None, result
    assert result["reason"].startswith(f"{preflight.HEADLINE}, "), result["reason"]
    assert "Traceback" not in result["log"]
    remove_kernel_output(result["reason"])

    earlier = course / "autograded" / "alice" / NAME
    earlier.mkdir(parents=True)
    (earlier / "x.txt").write_text("the last grading")
    entry = grade.store(course, NAME, {**result, "earlier": []})
    assert entry["status"] == "failed" and entry["reason"] == result["reason"]
    assert (earlier / "x.txt").read_text() == "the last grading"
    assert gradebook_rows(course) == ([], [])


# --- the parts -----------------------------------------------------------------------------

def test_a_passed_check_is_handed_on_only_for_the_same_configuration(
        course, monkeypatch):
    checks = []
    monkeypatch.setattr(preflight, "check",
                        lambda course, env, **kw: checks.append(1) or preflight.key(env))
    monkeypatch.setattr(preflight, "_passed", set())
    env = preflight.course_env(course)
    assert env[sandbox.ENV_HIDE] == str(course)  # what nbgrader_config.py hides
    key = preflight.key(env)
    assert preflight.ensure(course, {**env, preflight.ENV_PASSED: key}) == (key, False)
    assert preflight.ensure(course, {**env, preflight.ENV_PASSED: "other"}) == (key, True)
    assert preflight.ensure(course, env) == (key, False)  # passed in this process
    other = {**env, sandbox.ENV_MEMORY_MB: "4096"}
    assert preflight.key(other) != key
    assert preflight.ensure(course, {**other, preflight.ENV_PASSED: key})[1]
    assert len(checks) == 2


@needs_bwrap
def test_the_check_passes_on_the_course_and_cleans_up(course):
    before = sorted(p.name for p in course.iterdir())
    env = preflight.course_env(course)
    assert preflight.check(course, env) == preflight.key(env)
    assert sorted(p.name for p in course.iterdir()) == before


def test_a_missing_kernel_is_named_with_its_fix(course):
    with pytest.raises(preflight.PreflightFailed) as failed:
        preflight.check(course, kernel_name="no-such-kernel")
    assert "no Jupyter kernel named 'no-such-kernel' is installed" in failed.value.cause
    assert "gancourse.kernel install" in failed.value.fix


def test_the_cause_is_the_line_that_explains_it():
    stderr = ("bwrap: execvp /tmp/x/.venv/bin/python: No such file or directory\n"
              "gantools sandbox: the kernel stopped: exit status 1\n")
    assert preflight._cause(stderr) == ("bwrap: execvp /tmp/x/.venv/bin/python: No such "
                                        "file or directory")
    stderr = ("/tmp/x/.venv/bin/python: Error while finding module specification for "
              "'gancourse.kernel' (ModuleNotFoundError: No module named 'gantools')\n"
              "gantools sandbox: the kernel stopped: exit status 1\n")
    assert "No module named 'gantools'" in preflight._cause(stderr)
    assert "pip install -e ." in preflight._fix(preflight._cause(stderr), {})
    log = (f"[AutogradeApp | INFO] Running pre-convert hook\n{preflight.HEADLINE}, "
           f"{preflight.NOTHING_GRADED}.\n  cause: it\n  fix:   that\n")
    assert preflight.halted_message(log) == (f"{preflight.HEADLINE}, "
                                             f"{preflight.NOTHING_GRADED}. cause: it fix: that")
    assert preflight.halted_message("nothing") is None
    assert preflight.halted_message(log + "[AutogradeApp | INFO] graded on\n") is None
