"""Grading one submission on a Dask worker of :mod:`gancourse.classgrade.coordinator`.

:func:`grade_submission` receives everything the grading needs (the course's
``nbgrader_config.py``, the assignment's non-notebook files, the template gradebook, the
student's entry and earlier state, the submitted files), so a worker may run on another
machine without the course's files. It builds a private one-student course in a temporary
folder and runs the real ``nbgrader autograde ASSIGNMENT --student ID`` there, with every
preprocessor of the course (the grading policy, the bubblewrap sandbox, the value checks,
the flags), through this worker's :class:`GradingServer`. It sends back the autograded
folder, the submission's gradebook rows, nbgrader's log, the faults the grading reports,
and the seconds it took.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..autograde import preflight
from ..build.fingerprints import fingerprint, grading_code_digest
from .gradebook import apply_state, db_url, submission_state, tools_on_path

LOG_TAIL = 20_000  # characters of nbgrader's log kept per submission
SERVER_START_S = 120  # importing nbgrader on a loaded machine
PREFLIGHT_S = 300  # the kernel check: importing, starting a kernel on a loaded machine


def read_files(folder: Path, skip=()) -> dict:
    """``{relative path: (bytes, mode)}`` of the files under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(folder.rglob("*")) if p.is_file()
            and not any(p.match(pattern) for pattern in skip)}


def write_files(folder: Path, files: dict) -> None:
    for name, (content, mode) in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


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
    """The grading server stopped answering; the next submission starts a new one."""


class GradingServer:
    """This worker thread's :mod:`gancourse.classgrade.child` server, which forks one nbgrader
    per submission from a process that has imported nbgrader and the course's plug-ins
    once (see there for the protocol)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gancourse.classgrade.child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""
        if "ready" not in (self._read(SERVER_START_S) or {}):
            self.stop()
            raise GradingServerDied("the grading server did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """After anything unexpected: the next submission starts a new server."""
        self.proc.kill()
        self.proc.wait()

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
                raise GradingServerDied(f"its process (pid {self.proc.pid}) died")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, argv, cwd: Path, env: dict, log: Path, timeout: float):
        """Run ``nbgrader argv``: its exit status, or None when it ran past ``timeout``."""
        try:
            return self._run(argv, cwd, env, log, timeout)
        except (GradingServerDied, BrokenPipeError) as error:
            self.stop()
            raise GradingServerDied(f"the grading server failed: {error}") from None

    def _run(self, argv, cwd, env, log, timeout):
        request = {"argv": argv, "cwd": str(cwd), "env": env, "log": str(log)}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        started = self._read(SERVER_START_S)
        if started is None:
            raise GradingServerDied("it did not start nbgrader")
        ended = self._read(timeout)
        if ended is None:  # nbgrader, the sandbox and the kernel: its process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started["pid"], signal.SIGKILL)
            ended = self._read(SERVER_START_S)
            if ended is None:
                raise GradingServerDied("it did not stop nbgrader")
            return None
        return ended["returncode"]


_servers = threading.local()
_lock = threading.Lock()
_folder: list[Path] = []  # this worker process's folder for its one-student courses
_checked: dict[str, str] = {}  # the kernel checks this worker passed: its key -> theirs


def private_folder() -> Path:
    """The folder, private to this worker process, that holds the one-student courses of
    its gradings; the sandbox hides it as a whole, so the folders it hides are the same
    for every grading here, and one kernel check stands for all of them."""
    with _lock:
        if not _folder or not _folder[0].is_dir():
            _folder[:] = [Path(tempfile.mkdtemp(prefix="gantools-grade-"))]
            atexit.register(shutil.rmtree, _folder[0], True)
        return _folder[0]


def check_kernel(course: Path, env: dict) -> tuple[str | None, str | None]:
    """``(key, None)`` once a grading kernel started here with ``env`` (checked once per
    worker and configuration, in a subprocess with nbgrader's environment); ``(None,
    message)`` when it cannot start. The key, passed on to nbgrader through
    ``GANTOOLS_PREFLIGHT_PASSED``, spares each submission its own check."""
    mine = preflight.key(env)
    with _lock:
        if mine in _checked:
            return _checked[mine], None
    try:
        proc = subprocess.run([sys.executable, "-m", "gancourse.autograde.preflight",
                               "--course", str(course)], cwd=course, env=env,
                              capture_output=True, text=True, timeout=PREFLIGHT_S)
    except subprocess.TimeoutExpired:
        return None, (f"{preflight.HEADLINE} on this worker, {preflight.NOTHING_GRADED}: "
                      f"the check did not finish in {PREFLIGHT_S} s")
    if proc.returncode != 0:
        return None, (preflight.halted_message(proc.stderr)
                      or f"{preflight.HEADLINE} on this worker: {proc.stderr.strip()[-300:]}")
    passed = proc.stdout.strip().splitlines()[-1]
    with _lock:
        _checked[mine] = passed
    return passed, None


def grading_server() -> GradingServer:
    server = getattr(_servers, "server", None)
    if server is None or not server.alive():
        server = _servers.server = GradingServer()
    return server


def fault_reasons(files: dict) -> list[str]:
    """The faults that the grading reports among a graded folder's files list: a kernel
    that died, an output flood, a submission past its time budget. A machine busy with
    other gradings can cause some of them, so a submission with faults is graded once more
    before they are recorded."""
    found = []
    for name, (content, _) in sorted(files.items()):
        if name.endswith(".grading.json"):
            found += [f"{f['cell']}: {f['reason']}" for f in json.loads(content)["faults"]]
    return found


def grade_submission(task: dict, template: bytes) -> dict:
    """Grade one submission in a private one-student course (runs on a Dask worker)."""
    from nbgrader.api import Gradebook

    tools_on_path()
    started = time.perf_counter()
    result = {"student": task["student"], "attempt": task["attempt"], "ok": False,
              "worker": f"{socket.gethostname()}:{os.getpid()}", "files": {}, "state": None,
              "log": "", "reason": None}
    root = Path(tempfile.mkdtemp(prefix="course-", dir=private_folder()))
    try:
        course = root / "course"
        assignment, student = task["assignment"], task["student"]
        (course / "source" / assignment).mkdir(parents=True)
        (course / "nbgrader_config.py").write_text(task["config"])
        here = grading_code_digest(course)
        if fingerprint({"code": here}) != task["grading_fingerprint"]:
            result["reason"] = ("this worker's grading code (gancourse) is not the "
                                "coordinator's: install the same checkout on every worker")
            return result
        (course / "gradebook.db").write_bytes(template)
        write_files(course / "source" / assignment, task["source_files"])
        write_files(course / "submitted" / student / assignment, task["files"])
        with Gradebook(db_url(course)) as gb:
            gb.update_or_create_student(student, **task["student_record"])
            if task["state"] is not None:
                apply_state(gb, assignment, student, task["state"])
        hide = [p for p in os.environ.get("GANTOOLS_SANDBOX_HIDE", "").split(os.pathsep) if p]
        env = {**os.environ, **task["env"], "GANTOOLS_SANDBOX_HIDE": os.pathsep.join(
            [str(private_folder()), *task["hide"], *hide])}
        env.pop(preflight.ENV_PASSED, None)
        passed, halted = check_kernel(course, env)
        if halted is not None:  # nothing graded, nothing to merge into the gradebook
            result.update(reason=halted, halted=True, log=halted + "\n")
            return result
        env[preflight.ENV_PASSED] = passed
        argv = ["autograde", assignment, f"--student={student}",
                f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url={db_url(course)}"]
        log_path = root / "nbgrader.log"
        returncode = grading_server().run(
            argv, cwd=course, env=env, log=log_path, timeout=task["timeout"])
        text = log_path.read_text(errors="replace")
        result["log"] = text[-LOG_TAIL:]
        halted = preflight.halted_message(text)
        if halted is not None:  # nbgrader stopped before it graded or recorded anything
            result.update(reason=halted, halted=True)
            return result
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
            result["files"] = read_files(graded)
            result["dir_mode"] = graded.stat().st_mode & 0o777
            result["faults"] = fault_reasons(result["files"])
        return result
    except GradingServerDied as error:
        result["reason"] = str(error)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)
        result["seconds"] = time.perf_counter() - started
