"""``python -m gancourse.classgrade.child``: the process that starts a grading worker's nbgraders.

A grading worker (:mod:`gancourse.classgrade.worker`) runs ``nbgrader autograde`` once per
submission. Started afresh each time, nbgrader would spend seconds importing itself and the
course's plug-ins before grading anything, several times what sequential
``nbgrader autograde`` spends per submission. So each worker starts this server once: it
imports nbgrader and the plug-ins, then, for each request, forks a child that runs nbgrader
with the request's arguments, working folder, environment and log file. The server itself
starts no thread, so the fork copies a quiet, single-threaded process; TensorFlow, which the
value checks import, is imported in the child, never here.

The protocol is one JSON line each way on stdin/stdout:

* request ``{"argv": [...], "cwd": ..., "env": {...}, "log": ...}``;
* answer ``{"pid": N}`` once the child runs, its own process group (``kill -9 -N`` stops
  nbgrader and what it started); then ``{"returncode": R}`` when it ended.

The server is a *subreaper* (``PR_SET_CHILD_SUBREAPER``): a process orphaned below it (the
sandbox and kernel, whose launcher nbgrader kills at shutdown) becomes its child instead of
init's, and it kills what is still running a few seconds after nbgrader ended: no grading
leaves a process behind.

When the worker goes away (its end of stdin closes), the server stops the running child
and exits; a child whose server is gone stops by itself within a second, and the sandboxed
kernel follows, since its launcher watches nbgrader the same way
(:mod:`gancourse.autograde.sandbox`). ``prctl(PR_SET_PDEATHSIG)`` would not do: it fires
when the *thread* that started the process ends, and a Dask worker runs tasks on pool
threads that come and go.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
import time

EXIT_ORPHANED = 70  # the server that forked this child is gone
PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE_S = 5.0  # for what nbgrader started to end by itself after nbgrader
PRELOAD = ("nbgrader.apps.nbgraderapp", "gancourse.autograde.plugins",
           "gancourse.autograde.execute", "gancourse.autograde.sandbox")


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    print(f"gantools: the grading server (pid {parent}) is gone; stopping nbgrader",
          file=sys.stderr, flush=True)
    os._exit(EXIT_ORPHANED)


def _child(request: dict) -> None:
    """In the forked child: become nbgrader with the request's settings; never returns."""
    code = 1
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threading.Thread(target=_watch, args=(os.getppid(),), daemon=True).start()
        from nbgrader.apps.nbgraderapp import main as nbgrader_main

        sys.argv = ["nbgrader", *request["argv"]]
        try:
            code = nbgrader_main() or 0
        except SystemExit as stop:  # as Python does at exit: a message is printed
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if not isinstance(stop.code, int | None):
                print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported in the log, the exit status says it
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _become_subreaper() -> bool:
    """Processes orphaned below this one (a sandbox whose launcher nbgrader killed at
    shutdown) become its children, so that none outlives its submission. Linux's
    ``PR_SET_CHILD_SUBREAPER``."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    """The living children of this process (orphans it adopted among them)."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _reap(block: bool) -> tuple[int, int] | None:
    """One ended child, ``(pid, wait status)``, or None."""
    try:
        pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    return (pid, status) if pid else None


def _kill(pid: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)


def _wait(pid: int) -> int | None:
    """Wait for the child while watching stdin, then for what it left behind (killed after
    a grace period); the child's exit status, or None when the worker went away."""
    returncode = None
    while returncode is None:
        while (ended := _reap(block=False)) is not None:
            if ended[0] == pid:
                returncode = os.waitstatus_to_exitcode(ended[1])
        if returncode is not None:
            break
        readable, _, _ = select.select([sys.stdin], [], [], 0.2)
        if readable and not sys.stdin.readline():  # EOF: the worker is gone
            _kill(pid, group=True)
            for orphan in _children():
                _kill(orphan)
            return None
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while (left := _children()) and time.monotonic() < deadline:
        while _reap(block=False) is not None:
            pass
        time.sleep(0.1)
    for orphan in left:
        _kill(orphan)
    while _reap(block=True) is not None:
        pass
    return returncode


def serve() -> int:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _become_subreaper()
    _send({"ready": os.getpid()})
    while True:
        line = sys.stdin.readline()
        if not line:  # the worker is gone
            return 0
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _send({"pid": pid})
        ended = _wait(pid)
        if ended is None:
            return 0
        _send({"returncode": ended})


if __name__ == "__main__":
    sys.exit(serve())
