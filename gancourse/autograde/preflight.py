"""Before grading anything: can the course's grading kernel start at all?

A kernel that cannot start fails every submission alike: a sandbox that hides the virtual
environment, a missing ``gan-course`` kernel spec, bubblewrap refusing to run, a gantools
the kernel cannot import. ``nbgrader autograde`` logs each failure, removes the student's
autograded folder and goes on, and ``nbgrader export`` then gives every student 0. A fault
of the machine must never read as a student's score, so every way of grading checks the
kernel first and stops, before any submission is recorded, with what failed, why and what
to do:

* ``nbgrader autograde``: :func:`autograde_hook`, ``c.Autograde.pre_convert_hook`` in
  ``course/nbgrader_config.py``. nbgrader calls it before each submission, after it chose
  the submission and before the gradebook gets a row for it; the check runs once per
  process. On failure it raises :class:`GradingHalted`, a ``SystemExit`` (nbgrader's hook
  runner swallows ``Exception``), so the whole batch stops with a few lines, not a
  traceback. One catch: with ``--force`` nbgrader has already removed the *first*
  submission's autograded folder when it calls the hook (its gradebook rows stay); that
  submission is graded by the next run, which finds its folder missing.
* ``make course`` (:mod:`gancourse.build.pipeline`): before the first self-check.
* ``python -m gancourse.classgrade``: in the coordinator before anything is sent to a worker,
  and once per worker (:mod:`gancourse.classgrade.worker`), which hands the success on to the
  nbgraders it starts through :data:`ENV_PASSED`.

:func:`check` starts one sandboxed kernel with the course's configuration (the kernel
``gan-course``, the folders ``GANTOOLS_SANDBOX_HIDE`` hides, a working folder inside the
course as in a real grading), waits for its ``kernel_info`` reply, runs a cell that imports
gantools and checks that it is the grader's gantools and that the course is hidden, and
shuts the kernel down: about a second. The launcher's, bubblewrap's and the kernel's
stderr go to a file, from which a failure takes its cause (``bwrap: execvp ...: No such
file or directory``, an import error, ...).

``python -m gancourse.autograde.preflight [--course DIR]`` runs the check by hand: it prints
the check's key on success and the message (exit status 2) on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import gantools as _gantools

from ..kernel import KERNEL_NAME

ENV_HIDE = "GANTOOLS_SANDBOX_HIDE"
#: Set by whoever checked the kernel for the processes it starts: the check's key
#: (:func:`key`), which stands only for the same Python, kernel spec, package and sandbox
#: settings.
ENV_PASSED = "GANTOOLS_PREFLIGHT_PASSED"
HEADLINE = "The grading kernel cannot start"
NOTHING_GRADED = "so no submission was graded"
TIMEOUT_S = 120  # a kernel's start on a machine busy grading
PACKAGES = {"gantools": Path(_gantools.__file__).resolve().parent,
            "gancourse": Path(__file__).resolve().parents[1]}
SANDBOX_OFF = "GANTOOLS_SANDBOX=off runs kernels without the sandbox, for debugging only"
REINSTALL = ("reinstall the course's kernel from the environment that grades: `make venv`, "
             "or `{python} -m gancourse.kernel install`")

_passed: set[str] = set()
_lock = threading.Lock()


class PreflightFailed(RuntimeError):
    """The grading kernel cannot start; :attr:`message` says why and what to do."""

    def __init__(self, cause: str, fix: str, log: str | None = None,
                 consequence: str = NOTHING_GRADED):
        self.cause, self.fix, self.log, self.consequence = cause, fix, log, consequence
        super().__init__(self.message)

    @property
    def message(self) -> str:
        lines = [f"{HEADLINE}, {self.consequence}.", f"  cause: {self.cause}",
                 f"  fix:   {self.fix}"]
        if self.log:
            lines.append(f"  the kernel's output: {self.log}")
        return "\n".join(lines)


class GradingHalted(SystemExit):
    """Stops ``nbgrader autograde`` before it records a submission. A ``SystemExit``:
    nbgrader's hook runner catches ``Exception``, and Python prints the message (exit
    status 1) without a traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def halted_message(log: str) -> str | None:
    """The check's message that ends an nbgrader log (nbgrader stopped with it), on one
    line, or None."""
    lines = log.rstrip().splitlines()
    for index in range(len(lines) - 1, max(-1, len(lines) - 8), -1):
        if lines[index].startswith(HEADLINE):
            block = lines[index:]
            if all(line.startswith("  ") for line in block[1:]):
                return " ".join(" ".join(block).split())
            return None
    return None


# --- the configuration the check stands for -----------------------------------------------

def course_env(course: Path, env: dict | None = None) -> dict:
    """``env`` (default: this process's) as nbgrader would run the course with it: with the
    folders the course's ``nbgrader_config.py`` hides, unless ``env`` names them already."""
    env = dict(os.environ if env is None else env)
    if not env.get(ENV_HIDE) and (Path(course) / "nbgrader_config.py").is_file():
        from traitlets.config.loader import PyFileConfigLoader

        saved = os.environ.pop(ENV_HIDE, None)
        try:  # the configuration sets it with os.environ.setdefault
            PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
            value = os.environ.get(ENV_HIDE)
        finally:
            os.environ.pop(ENV_HIDE, None)
            if saved is not None:
                os.environ[ENV_HIDE] = saved
        if value:
            env[ENV_HIDE] = value
    return env


def _spec(kernel_name: str):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return None


def key(env: dict | None = None, kernel_name: str = KERNEL_NAME) -> str:
    """What a passed check stands for: this Python, the kernel spec, the gantools package,
    the temporary folder, the user and the ``GANTOOLS_*`` settings of ``env`` (the
    sandbox's among them, and the folders it hides)."""
    env = os.environ if env is None else env
    spec = _spec(kernel_name)
    data = {"python": sys.executable, "uid": os.getuid(),
            "packages": {k: str(v) for k, v in PACKAGES.items()},
            "tmp": tempfile.gettempdir(), "bwrap": shutil.which("bwrap"),
            "kernel": None if spec is None else [spec.resource_dir, spec.argv, spec.env],
            "settings": sorted((k, v) for k, v in env.items()
                               if k.startswith("GANTOOLS_") and k != ENV_PASSED)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


# --- the check -------------------------------------------------------------------------------

PROBE = """\
import json as _json, os as _os, sys as _sys
import gantools as _gantools, gancourse as _gancourse
print(_json.dumps({{"gantools": _os.path.realpath(_gantools.__file__),
                   "gancourse": _os.path.realpath(_gancourse.__file__),
                   "python": _sys.executable,
                   "course_visible": _os.path.exists({config!r})}}))
"""


def _cause(text: str) -> str | None:
    """The line of the kernel's stderr that explains its failure."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in (r"^(\S*/)?bwrap: ", r"^gantools sandbox: sandbox not started: "):
        found = [line for line in lines if re.match(pattern, line)]
        if found:
            return found[0].removeprefix("gantools sandbox: ")
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)
              or "No module named" in line]
    if errors:
        return errors[-1]
    stopped = [line for line in lines if line.startswith("gantools sandbox: the kernel stopped")]
    return stopped[-1].removeprefix("gantools sandbox: ") if stopped else None


def _fix(cause: str, env: dict) -> str:
    python = sys.executable
    memory = env.get("GANTOOLS_SANDBOX_MEMORY_MB", "").strip()
    if memory and re.search(r"Cannot allocate memory|MemoryError|out of memory|"
                            r"failed to map segment", cause):
        return (f"GANTOOLS_SANDBOX_MEMORY_MB={memory} leaves a kernel too little memory to "
                "start: unset it (the default is 8192) or raise it")
    if "No module named" in cause or "ImportError" in cause:
        return (f"install the course's package into the kernel's environment: `make venv`, "
                f"or `{python} -m pip install -e .` in the checkout, then "
                f"`{python} -m gancourse.kernel install`")
    if "execvp" in cause or "No such file or directory" in cause:
        return REINSTALL.format(python=python) + f"; {SANDBOX_OFF}"
    if "sandbox hides" in cause or "private as a whole" in cause:
        return f"as the cause says; {SANDBOX_OFF}"
    if cause.startswith("bwrap") or "sandbox" in cause:
        return ("check that bubblewrap runs here (`make sandbox`; docs/instructors.md: The "
                f"sandbox setup); {SANDBOX_OFF}")
    return (f"run the check by hand for its full output: `{python} -m "
            f"gancourse.autograde.preflight --course COURSE`; {SANDBOX_OFF}")


async def _start_and_probe(course: Path, cwd: Path, env: dict, kernel_name: str,
                           log, timeout: float) -> dict:
    from jupyter_client.kernelspec import NoSuchKernel

    from .sandbox import SandboxedKernelManager, SandboxUnavailable

    km = SandboxedKernelManager(kernel_name=kernel_name)
    kc = None
    try:
        try:
            await km.start_kernel(cwd=str(cwd), env=env, stdout=log, stderr=log)
        except SandboxUnavailable as error:
            raise PreflightFailed(f"SandboxUnavailable: {error}",
                                  "install bubblewrap: `make sandbox` (apt-get install "
                                  "bubblewrap), or unset GANTOOLS_REQUIRE_SANDBOX to grade "
                                  "without the sandbox") from None
        except NoSuchKernel:
            raise PreflightFailed(
                f"no Jupyter kernel named {kernel_name!r} is installed for {sys.executable}",
                REINSTALL.format(python=sys.executable)) from None
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=timeout)
        config = str(Path(course) / "nbgrader_config.py")
        reply = await kc.execute_interactive(PROBE.format(config=config), timeout=timeout,
                                             output_hook=_collect(found := []))
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise _KernelError(f"{content.get('ename')}: {content.get('evalue')}")
        return {"sandboxed": km._sandboxed, **json.loads("".join(found).strip().splitlines()[-1])}
    finally:
        if kc is not None:
            kc.stop_channels()
        if km.has_kernel:
            await km.shutdown_kernel(now=False)
        else:
            await km.cleanup_resources()


class _KernelError(RuntimeError):
    """The probe cell failed in the kernel."""


def _collect(found: list):
    def hook(msg):
        if msg["msg_type"] == "stream" and msg["content"].get("name") == "stdout":
            found.append(msg["content"]["text"])
    return hook


def check(course: Path, env: dict | None = None, kernel_name: str = KERNEL_NAME,
          timeout: float = TIMEOUT_S, consequence: str = NOTHING_GRADED) -> str:
    """Start one grading kernel as a grading of ``course`` would and run a cell in it;
    returns the check's :func:`key`. Raises :class:`PreflightFailed` with the message."""
    course = Path(course).resolve()
    env = course_env(course, env)
    env.pop(ENV_PASSED, None)
    try:
        cwd = Path(tempfile.mkdtemp(prefix=".gantools-preflight-", dir=course))
        made = True
    except OSError:  # a read-only course: its root is a working folder too
        cwd, made = course, False
    fd, log_path = tempfile.mkstemp(prefix="gantools-preflight-", suffix=".log")
    failure = None
    try:
        with os.fdopen(fd, "w") as log:
            try:
                # in a thread of its own: the caller may be inside an event loop (nbgrader's)
                outcome: dict = {}

                def run():
                    try:
                        outcome["found"] = asyncio.run(_start_and_probe(
                            course, cwd, env, kernel_name, log, timeout))
                    except BaseException as error:  # noqa: BLE001 - handed to the caller
                        outcome["error"] = error

                thread = threading.Thread(target=run, name="gantools-preflight")
                thread.start()
                thread.join()
                if "error" in outcome:
                    raise outcome["error"]
                found = outcome["found"]
            except PreflightFailed as error:
                failure = error
            except _KernelError as error:  # the probe cell failed: its own error says it
                cause = str(error)
                failure = PreflightFailed(cause, _fix(cause, env), log_path)
            except Exception as error:  # noqa: BLE001 - the kernel's stderr says more
                log.flush()
                text = Path(log_path).read_text(errors="replace")
                cause = _cause(text) or f"{type(error).__name__}: {error}"
                failure = PreflightFailed(cause, _fix(cause, env), log_path)
        if failure is None:
            failure = _verify(found, course, env)
    finally:
        if made:
            shutil.rmtree(cwd, ignore_errors=True)
        if failure is None or not failure.log:
            Path(log_path).unlink(missing_ok=True)
    if failure is not None:
        failure.consequence = consequence
        raise failure
    return key(env, kernel_name)


def _verify(found: dict, course: Path, env: dict) -> PreflightFailed | None:
    for package, folder in PACKAGES.items():
        here = os.path.realpath(folder / "__init__.py")
        if found[package] != here:
            return PreflightFailed(
                f"the kernel imports {package} from {found[package]}, this grader from "
                f"{here} (the kernel runs {found['python']})",
                REINSTALL.format(python=sys.executable))
    hidden = [os.path.realpath(p) for p in env.get(ENV_HIDE, "").split(os.pathsep) if p]
    if found["sandboxed"] and str(course) in hidden and found["course_visible"]:
        return PreflightFailed(f"the sandboxed kernel can read the course folder {course}, "
                               f"which {ENV_HIDE} hides", SANDBOX_OFF.replace(
                                   "runs", "would run") + "; report this as a bug")
    return None


def ensure(course: Path, env: dict | None = None,
           consequence: str = NOTHING_GRADED) -> tuple[str, bool]:
    """:func:`check`, unless this process or the one that started it (:data:`ENV_PASSED`)
    passed it with the same configuration; returns the key and whether it checked now."""
    env = course_env(course, env)
    wanted = key(env)
    with _lock:
        if wanted in _passed or env.get(ENV_PASSED) == wanted:
            return wanted, False
        passed = check(course, env, consequence=consequence)
        _passed.add(passed)
        return passed, True


def autograde_hook(assignment=None, student=None, notebooks=None, **_) -> None:
    """``c.Autograde.pre_convert_hook``: the check before the first submission nbgrader
    grades (nbgrader runs in the course folder); stops the batch if it fails."""
    from traitlets.log import get_logger

    started = time.perf_counter()
    try:
        _, checked = ensure(Path.cwd())
    except PreflightFailed as failure:
        raise GradingHalted(failure.message) from None
    seconds = time.perf_counter() - started
    if checked:
        get_logger().info("The grading kernel starts (checked in %.1f s)", seconds)
    else:
        get_logger().debug("The grading kernel was checked already (%.3f s)", seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gancourse.autograde.preflight",
        description="Start one grading kernel as the course's autograde does; print the "
                    "check's key, or why the kernel cannot start (exit status 2).")
    parser.add_argument("--course", type=Path, default=Path.cwd(),
                        help="the course folder (default: the current folder)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S,
                        help="seconds the kernel has to start (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        print(check(args.course, timeout=args.timeout))
    except PreflightFailed as failure:
        print(failure.message, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
