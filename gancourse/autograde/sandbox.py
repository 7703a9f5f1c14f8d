"""Running the kernel of a submission in a bubblewrap sandbox.

nbgrader executes every submission in a Jupyter kernel where the student's code can do
anything the grader's user can. With ``SandboxedKernelManager`` as nbclient's
``kernel_manager_class`` (for nbgrader: ``c.Execute.kernel_manager_class``), the kernel
starts through this module's launcher,
``python -m gancourse.autograde.sandbox [options] -- <kernel command>``, which runs it under
bubblewrap (``bwrap``) and talks to it over ZMQ ``ipc`` sockets in a private folder.

What the sandbox protects:

* the course: the folders in ``GANTOOLS_SANDBOX_HIDE`` (the course root: the gradebook,
  ``source/`` with the hidden tests, the other students' submissions) are hidden behind an
  empty, read-only file system. The kernel works in a private copy of its working folder
  (the notebook's folder), so a submission can write next to its notebook and nothing it
  writes reaches the real folder. Notebooks are left out of the copy: nbgrader writes the
  notebook it grades, hidden tests included, into that folder before running it.
* the installed package and the rest of the machine: the whole file system is read-only,
  ``/tmp`` is private, and the kernel runs without capabilities (even as root) in its own
  PID, IPC and network namespaces;
* the network: none, not even the host's loopback. ``/run`` and the temporary folder
  are hidden as well, since a read-only mount does not stop connecting to the Unix
  sockets of system services and of other kernels found there.

What the kernel still sees wherever it lives: a checkout and virtual environment under
``/tmp`` (or under the temporary folder or ``/run``, which the sandbox hides) would vanish
behind those private folders (``bwrap: execvp .../.venv/bin/python: No such file or
directory``). The launcher binds back, read-only, what the kernel needs that lies there:
the environment of the kernel command's interpreter as the kernel spec names it (which
holds ``pyvenv.cfg`` and ``site-packages``), the installation of its real binary, this
Python's ``sys.prefix`` and ``sys.base_prefix``, and the gantools and gancourse packages
(an editable install maps them into the checkout). Mounts go from outer to inner folders,
so a hidden folder inside one bound back (a course in the checkout) is hidden again. It
refuses, naming the path and what to do, only where binding back cannot work: what the
kernel needs inside a folder ``GANTOOLS_SANDBOX_HIDE`` hides, or a private folder as a
whole.

What it limits, per process: address space (``GANTOOLS_SANDBOX_MEMORY_MB``, 8192 by
default, so a huge allocation raises MemoryError instead of waking the OOM killer),
file size (``GANTOOLS_SANDBOX_FSIZE_MB``, 256), core dumps (none), and the size of the
private ``/tmp`` (``GANTOOLS_SANDBOX_TMP_MB``, 512) and ``/dev/shm`` (64 MB). The
sandbox has a minimal ``/dev``: no GPU, kernels run on the CPU.

What it leaves to the grader: wall-clock time and output size, which nbgrader's process
enforces (``Execute.timeout`` with interrupts, ``LimitOutput``); the total memory, disk
space and number of processes of a kernel and its children (cgroups, e.g.
``systemd-run --scope -p MemoryMax=...``); and files elsewhere on the machine, which are
read-only but readable: keep secrets off the grading machine or list their folders in
``GANTOOLS_SANDBOX_HIDE``.

Without a working bubblewrap the kernel runs unsandboxed, with the same limits, after a
loud warning; ``GANTOOLS_REQUIRE_SANDBOX=1`` turns that into a
:class:`SandboxUnavailable` error. The launcher writes why a kernel died (a signal, an
exit status) to ``exit-reason`` in the private folder: see :func:`exit_reason`. A kernel
that cannot start at all would fail every submission alike: every way of grading first
starts one (:mod:`gancourse.autograde.preflight`) and stops, saying why, when it cannot.
"""

from __future__ import annotations

import argparse
import ctypes
import fnmatch
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum, Unicode

INSTALL_HINT = "apt-get install bubblewrap"

ENV_HIDE = "GANTOOLS_SANDBOX_HIDE"
ENV_MEMORY_MB = "GANTOOLS_SANDBOX_MEMORY_MB"
ENV_FSIZE_MB = "GANTOOLS_SANDBOX_FSIZE_MB"
ENV_TMP_MB = "GANTOOLS_SANDBOX_TMP_MB"
ENV_REQUIRE = "GANTOOLS_REQUIRE_SANDBOX"
ENV_SWITCH = "GANTOOLS_SANDBOX"  # "off": run kernels unsandboxed, with the usual warning

# Measured peaks of address space (VmPeak): 1.7 GB after importing TensorFlow, 2.6 GB for
# notebook 01 in short mode (3.3 GB without the MALLOC_ARENA_MAX below), of which ~1 GB
# resident. 8 GB leaves room for bigger models and still turns a runaway allocation into
# a MemoryError long before it fills the machine. 0 lifts a limit.
DEFAULT_MEMORY_MB = 8192
DEFAULT_FSIZE_MB = 256
DEFAULT_TMP_MB = 512
SHM_MB = 64
HIDDEN_TMPFS_BYTES = 1 << 20  # room for the mount points of the working folder, no more
WORKDIR_COPY_LIMIT_MB = 1024
SANDBOX_HOME = "/tmp/home"
EXIT_REASON = "exit-reason"
NOT_COPIED = ("*.ipynb", ".ipynb_checkpoints")
LAUNCHER = "gancourse.autograde.sandbox"

_PR_SET_PDEATHSIG = 1
_warned = False
_probed: dict[str, str | None] = {}


class SandboxUnavailable(RuntimeError):
    """A sandbox is required (``GANTOOLS_REQUIRE_SANDBOX=1``) and bubblewrap cannot run."""


def _find_bwrap() -> str | None:
    return shutil.which("bwrap")


def _probe(bwrap: str) -> str | None:
    """bwrap's complaint when it cannot create the namespaces here (e.g. in a container
    without the privileges), None when it can; asked once per process."""
    if bwrap not in _probed:
        try:
            proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net",
                                   "--cap-drop", "ALL", "true"],
                                  capture_output=True, text=True, timeout=30)
            _probed[bwrap] = (None if proc.returncode == 0
                              else proc.stderr.strip() or f"exit status {proc.returncode}")
        except (OSError, subprocess.TimeoutExpired) as error:
            _probed[bwrap] = str(error)
    return _probed[bwrap]


def _sandbox_problem() -> str | None:
    if os.environ.get(ENV_SWITCH, "").strip().lower() == "off":
        return f"{ENV_SWITCH}=off turns the sandbox off (for measurements and debugging)"
    bwrap = _find_bwrap()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed or not on PATH"
    error = _probe(bwrap)
    return None if error is None else f"bubblewrap ({bwrap}) cannot create a sandbox: {error}"


def sandbox_available() -> bool:
    """Whether kernels can run in a bubblewrap sandbox on this machine."""
    return _sandbox_problem() is None


def _check_sandbox(log) -> bool:
    """True to sandbox; False to fall back, after a warning once per process; raise if
    ``GANTOOLS_REQUIRE_SANDBOX=1`` forbids the fallback."""
    global _warned
    problem = _sandbox_problem()
    if problem is None:
        return True
    if os.environ.get(ENV_REQUIRE, "").strip() == "1":
        raise SandboxUnavailable(
            f"{problem}, and {ENV_REQUIRE}=1 forbids running students' kernels without a "
            f"sandbox. Install it: `{INSTALL_HINT}` (Fedora: `dnf install bubblewrap`), or "
            f"unset {ENV_REQUIRE} to grade unsandboxed.")
    if not _warned:
        _warned = True
        log.warning(
            "!!! STUDENTS' KERNELS RUN WITHOUT A SANDBOX: %s. A submission can read the "
            "gradebook and the hidden tests, write wherever the grader can and use the "
            "network; only the memory and file-size limits apply. Install bubblewrap: `%s`. "
            "Set %s=1 to refuse to grade without it.", problem, INSTALL_HINT, ENV_REQUIRE)
    return False


def _private_base() -> str:
    """Where kernels' private folders go. ZMQ's ipc sockets, ``<base>/gk-XXXXXXXX/k-N``,
    must fit in ``sun_path`` (108 bytes, counted in the file system's encoding): a long
    temporary folder falls back to ``/tmp``. Spaces are fine (tested)."""
    base = os.path.realpath(tempfile.gettempdir())
    return base if len(os.fsencode(base)) <= 60 else "/tmp"


def launcher_command(kernel_cmd: list[str], private: str, sandboxed: bool = True) -> list[str]:
    """The command that runs ``kernel_cmd`` through the launcher."""
    return [sys.executable, "-m", LAUNCHER, "--private", private,
            *([] if sandboxed else ["--no-bwrap"]), "--", *kernel_cmd]


def _read_reason(folder: str) -> str | None:
    try:
        with open(os.path.join(folder, EXIT_REASON)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def exit_reason(km) -> str | None:
    """Why the latest kernel of ``km`` died (``"killed by signal 9 (SIGKILL)"``,
    ``"exit status 137 (killed by signal 9, SIGKILL)"``, ...), or None when it exited
    normally or is still running. A kernel that ``shutdown_kernel`` had to terminate reads
    ``"killed by signal 15 (SIGTERM)"``. Still answers after the kernel was cleaned up."""
    folder = getattr(km, "sandbox_dir", "")
    return (_read_reason(folder) if folder else None) or getattr(km, "_exit_reason", None)


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run in the bubblewrap sandbox.

    Drop-in for nbclient's and nbgrader's ``kernel_manager_class``. The kernel cannot
    reach the grader over TCP (it has no network), so the manager uses ZMQ ``ipc`` sockets
    in a private folder per kernel, ``sandbox_dir``, which also holds the connection file,
    the copy of the working folder and ``exit-reason``; the folder is removed when the
    kernel is cleaned up. Interrupts keep working: the launcher and bwrap stay in the
    kernel's process group and ignore SIGINT, so the kernel gets it. A kernel outlives
    neither its launcher nor the process that started it (the launcher checks every
    second).
    """

    transport = CaselessStrEnum(["ipc"], default_value="ipc", config=True,
                                help="Always ipc: the sandboxed kernel has no network.")
    sandbox_dir = Unicode("", help="The kernel's private folder (set when it starts).")
    _exit_reason: str | None = None
    _sandboxed = True
    _remove_dir = None

    async def _async_pre_start_kernel(self, **kw):
        self._sandboxed = _check_sandbox(self.log)
        if not self.sandbox_dir or not os.path.isdir(self.sandbox_dir):
            self.sandbox_dir = tempfile.mkdtemp(prefix="gk-", dir=_private_base())
            self._remove_dir = weakref.finalize(self, shutil.rmtree, self.sandbox_dir, True)
            self.connection_file = os.path.join(self.sandbox_dir, "kernel.json")
            self.ip = os.path.join(self.sandbox_dir, "k")
        self._exit_reason = None
        _write_reason(self.sandbox_dir, None)
        return await super()._async_pre_start_kernel(**kw)

    pre_start_kernel = _async_pre_start_kernel

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        from .confine import confined_command

        cmd = super().format_kernel_cmd(extra_arguments)
        confined = confined_command(cmd)
        if confined is None:
            self.log.warning("The kernel %s is not one the grading kernel can confine: it "
                             "runs without the child-process ban and the cell guard.", cmd)
        return launcher_command(confined or cmd, self.sandbox_dir, self._sandboxed)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self.sandbox_dir:
            self._exit_reason = _read_reason(self.sandbox_dir)
            if self._exit_reason:
                # a kernel slow to quit gets SIGTERM from shutdown_kernel: no news
                log = self.log.debug if self.shutting_down else self.log.warning
                log("Sandboxed kernel %s stopped: %s", self.kernel_id, self._exit_reason)
            if self._remove_dir is not None:
                self._remove_dir()
            self.sandbox_dir = ""

    cleanup_resources = _async_cleanup_resources


# ---------------------------------------------------------------------------------------
# The launcher: python -m gancourse.autograde.sandbox [options] -- cmd...
# ---------------------------------------------------------------------------------------


def _env_mb(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name}={value!r}: expected a number of megabytes") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {LAUNCHER}",
        usage=f"python -m {LAUNCHER} [options] -- command [args...]",
        description="Run a command (a Jupyter kernel) in the grading sandbox. Defaults "
                    "come from the GANTOOLS_SANDBOX_* environment variables.")
    parser.add_argument("--private", help="the kernel's private folder (connection file, "
                        "ipc sockets); default: a new temporary folder, removed at exit")
    parser.add_argument("--memory-mb", type=int, default=_env_mb(ENV_MEMORY_MB,
                        DEFAULT_MEMORY_MB), help="address-space limit (0: none)")
    parser.add_argument("--fsize-mb", type=int, default=_env_mb(ENV_FSIZE_MB,
                        DEFAULT_FSIZE_MB), help="file-size limit (0: none)")
    parser.add_argument("--tmp-mb", type=int, default=_env_mb(ENV_TMP_MB, DEFAULT_TMP_MB),
                        help="size of the private /tmp")
    parser.add_argument("--hide", action="append", default=[], metavar="PATH",
                        help=f"hide this folder, in addition to those in ${ENV_HIDE}")
    parser.add_argument("--no-bwrap", action="store_true",
                        help="run without a sandbox, with the limits only (the fallback)")
    return parser


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _listed_hidden(extra: list[str]) -> list[str]:
    """The existing folders (and files) the grader asked to hide: ``$GANTOOLS_SANDBOX_HIDE``
    and ``--hide``, resolved."""
    listed = os.environ.get(ENV_HIDE, "").split(os.pathsep) + list(extra)
    return sorted({os.path.realpath(p) for p in listed if p.strip() and os.path.lexists(p)})


def _private_folders() -> list[str]:
    """The folders the sandbox replaces by empty ones of its own: ``/tmp`` (the kernel's
    private ``/tmp``), ``/run`` and the temporary folder (hidden: Unix sockets)."""
    return sorted({"/tmp", "/run", os.path.realpath(tempfile.gettempdir())})


def _hidden_paths(extra: list[str], bound: list[str] = ()) -> list[str]:
    """The existing paths to hide, outermost only, except that a path inside a folder bound
    back (see :func:`_bound_paths`) is kept, so that it is hidden again there. ``/tmp`` is
    private already; a folder inside it is hidden all the same, so that it is read-only
    like any hidden folder."""
    # Unix sockets of system services (docker, dbus, databases) live in /run; those of
    # other kernels in the temporary folder
    listed = _listed_hidden(extra) + [p for p in ("/run", tempfile.gettempdir())
                                      if os.path.lexists(p)]
    found = sorted({os.path.realpath(p) for p in listed}, key=len)
    hidden: list[str] = []
    for path in found:
        if path in ("/", "/tmp"):
            continue
        if any(_is_within(path, h) for h in hidden) and not any(
                _is_within(path, b) for b in bound):
            continue
        hidden.append(path)
    return hidden


def _environment_of(executable: str) -> str:
    """The folder of an interpreter's installation: the virtual environment (which holds
    ``pyvenv.cfg`` and ``site-packages``) or prefix above ``bin/``."""
    folder = os.path.dirname(executable)
    return os.path.dirname(folder) if os.path.basename(folder) in ("bin", "Scripts") else folder


def _needed_paths(interpreter: str) -> list[tuple[str, str]]:
    """``(path, what)``: what the kernel needs to start, as named and resolved: the
    environment of the kernel command's interpreter (a virtual environment named as the
    kernel spec names it), the installation of the interpreter's real binary (its standard
    library), this Python's prefixes and the two packages, gantools and gancourse (an
    editable install maps them to the checkout)."""
    import importlib.util

    exe = os.path.abspath(shutil.which(interpreter) or interpreter)
    machinery = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    library = os.path.dirname(importlib.util.find_spec("gantools").origin)
    found = [(_environment_of(exe), f"the environment of the kernel's Python, {exe}"),
             (_environment_of(os.path.realpath(exe)),
              f"the installation of the kernel's Python, {os.path.realpath(exe)}"),
             (sys.prefix, "sys.prefix"), (sys.base_prefix, "sys.base_prefix"),
             (library, "the gantools package"), (machinery, "the gancourse package")]
    needed: dict[str, str] = {}
    for path, what in found:
        for form in (os.path.abspath(path), os.path.realpath(path)):
            needed.setdefault(form, what)
    return list(needed.items())


def _bound_paths(interpreter: str, extra_hidden: list[str]) -> list[str]:
    """The paths the kernel needs that lie in a folder the sandbox makes private (``/tmp``,
    ``/run``, the temporary folder): they are bound back read-only, outermost only, with
    the folders this Python imports from. A course or environment checked out under
    ``/tmp`` works so. Raises ``SystemExit``
    with what to do where the kernel cannot see what it needs: a path inside a folder the
    grader hides, or a private folder as a whole."""
    listed, private = _listed_hidden(extra_hidden), _private_folders()
    bound: list[str] = []
    for path, what in _needed_paths(interpreter):
        inside = next((h for h in listed if _is_within(path, h)), None)
        if inside is not None:
            raise SystemExit(
                f"the kernel needs {path} ({what}), which is inside {inside}, a folder the "
                f"sandbox hides ({ENV_HIDE} or --hide): keep the virtual environment and "
                f"the checkout out of the course folder, or stop hiding {inside}")
        folder = next((p for p in private if _is_within(path, p)), None)
        if folder is None:
            continue
        if path == folder:
            raise SystemExit(
                f"the kernel needs {path} ({what}), which is the folder the sandbox makes "
                f"private as a whole: install the environment in a folder of its own "
                f"(e.g. `make venv` in a checkout)")
        bound.append(path)
    # and where this Python imports from (site folders, and what .pth files add: a checkout
    # or another environment's packages): the kernel is this Python. sys.path[0] is this
    # launcher's working folder (python -m), never needed; a folder hidden or private as a
    # whole is left out here, since none of them is known to be needed
    for path in dict.fromkeys(os.path.abspath(p) for p in sys.path[1:] if p):
        folder = next((f for f in private if _is_within(path, f)), None)
        if (folder is not None and path != folder and os.path.isdir(path)
                and not any(_is_within(path, h) for h in listed)):
            bound.append(path)
    outermost: list[str] = []
    for path in sorted(set(bound), key=len):
        if not any(_is_within(path, b) for b in outermost):
            outermost.append(path)
    return outermost


def _workdir_size(src: str, skip: set[str], limit: int) -> int:
    """Bytes to copy, counting until ``limit`` is passed."""
    total = 0
    for folder, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not _not_copied(os.path.join(folder, d), d, skip)]
        for name in files:
            if not _not_copied(os.path.join(folder, name), name, skip):
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass
        if total > limit:
            break
    return total


def _not_copied(path: str, name: str, skip: set[str]) -> bool:
    return path in skip or any(fnmatch.fnmatch(name, pattern) for pattern in NOT_COPIED)


def _copy_workdir(src: str, dest: str, skip: set[str]) -> None:
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    if src in skip:  # a hidden folder: a copy would show what it hides
        os.mkdir(dest)
        return
    limit = WORKDIR_COPY_LIMIT_MB << 20
    if _workdir_size(src, skip, limit) > limit:
        raise SystemExit(f"the working folder {src} holds more than {WORKDIR_COPY_LIMIT_MB} MB "
                         "to copy into the sandbox; start the kernel in the notebook's folder")
    try:
        # symlinks stay links: their targets resolve inside the sandbox, hidden or read-only
        shutil.copytree(src, dest, symlinks=True,
                        ignore=lambda folder, names: [n for n in names if _not_copied(
                            os.path.join(folder, n), n, skip)])
    except shutil.Error as error:  # unreadable files, sockets: copy the rest
        _say(f"not copied: {error}")


def bwrap_command(bwrap: str, cmd: list[str], *, private: str, cwd: str,
                  workdir_copy: str | None, hidden: list[str], tmp_mb: int,
                  bound: list[str] = ()) -> list[str]:
    """The bwrap command line that runs ``cmd`` in the sandbox, in ``cwd``. ``bound``:
    paths inside private folders that are bound back read-only (see
    :func:`_bound_paths`)."""
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--size", str(SHM_MB << 20), "--tmpfs", "/dev/shm",
            "--size", str(tmp_mb << 20), "--tmpfs", "/tmp",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent",
            # bwrap run by root keeps root's capabilities (remount, ...) unless told
            "--cap-drop", "ALL"]
    # No --new-session: the kernel must stay in the launcher's process group, where
    # jupyter_client sends SIGINT; it has no controlling terminal to abuse anyway.
    # Outer folders first, so that a deeper mount lands on what a shallower one made: a
    # folder bound back inside a hidden one, a hidden folder inside one bound back (hidden
    # again), the working folder's copy inside the hidden course. At one path: hide, then
    # bind.
    mounts = []  # (path, order, args)
    for path in hidden:
        if os.path.isdir(path):
            mounts.append((path, 0, ["--size", str(HIDDEN_TMPFS_BYTES), "--tmpfs", path]))
        else:
            mounts.append((path, 0, ["--ro-bind", "/dev/null", path]))
    for path in bound:
        mounts.append((path, 1, ["--ro-bind", path, path]))
    mounts.append((private, 1, ["--bind", private, private]))
    if workdir_copy:
        mounts.append((cwd, 1, ["--bind", workdir_copy, cwd]))
    for _, _, mount in sorted(mounts, key=lambda m: (len(Path(m[0]).parts), m[1])):
        args += mount
    # a non-recursive remount: the folders bound inside stay writable
    for path in hidden:
        if os.path.isdir(path) and path not in (private, cwd):
            args += ["--remount-ro", path]
    args += ["--dir", SANDBOX_HOME, "--chdir", cwd if workdir_copy else SANDBOX_HOME]
    return [*args, "--", *cmd]


def _sandbox_env(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    # The kernel's parent is bwrap's init, PID 1, which ipykernel's parent poller takes
    # for an orphaned kernel: "1" turns the poller off (--die-with-parent does its job)
    # without the console banner ipykernel prints when the variable is unset.
    env["JPY_PARENT_PID"] = "1"
    env.pop("XDG_RUNTIME_DIR", None)  # in the hidden /run
    # the datasets the instructor cached stay readable, though HOME moves
    home = Path.home()
    for var, folder in (("KERAS_HOME", home / ".keras"),
                        ("TFDS_DATA_DIR", home / "tensorflow_datasets")):
        if var not in env and folder.is_dir():
            env[var] = str(folder)
    # a writable home, so that IPython, matplotlib and Keras find writable config folders
    env.update(HOME=SANDBOX_HOME, TMPDIR="/tmp", IPYTHONDIR=f"{SANDBOX_HOME}/.ipython",
               MPLCONFIGDIR=f"{SANDBOX_HOME}/.config/matplotlib",
               XDG_CONFIG_HOME=f"{SANDBOX_HOME}/.config", XDG_CACHE_HOME=f"{SANDBOX_HOME}/.cache",
               XDG_DATA_HOME=f"{SANDBOX_HOME}/.local/share")
    return env


def _limits(memory_mb: int, fsize_mb: int) -> list[tuple[int, int]]:
    limits = [(resource.RLIMIT_CORE, 0)]
    if memory_mb > 0:
        limits.append((resource.RLIMIT_AS, memory_mb << 20))
    if fsize_mb > 0:
        limits.append((resource.RLIMIT_FSIZE, fsize_mb << 20))
    return limits


def _child_setup(limits: list[tuple[int, int]]):
    """Runs in the child between fork and exec: die with the launcher, take the limits
    (soft and hard, so the kernel cannot raise them back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    launcher = os.getpid()

    def setup() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != launcher:  # the launcher died before prctl took effect
            os._exit(1)
        for which, value in limits:
            _, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

    return setup


def _say(message: str) -> None:
    try:
        print(f"gantools sandbox: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the grader's end of stderr may be gone
        pass


def _watch_parent(grader: int, child: subprocess.Popen, orphaned: list[bool]) -> None:
    """Kill the sandbox when the grader that started it is gone: a kernel nobody can
    reach or stop would run forever. (ipykernel's parent poller does this outside the
    sandbox; inside, the kernel's parent is bwrap's init.)"""
    while child.poll() is None:
        if os.getppid() != grader:
            orphaned.append(True)
            child.kill()
            return
        time.sleep(1.0)


def _describe(returncode: int, via_bwrap: bool) -> str | None:
    def name(signum: int) -> str:
        try:
            return signal.Signals(signum).name
        except ValueError:
            return "?"

    if returncode == 0:
        return None
    if returncode < 0:
        return f"killed by signal {-returncode} ({name(-returncode)})"
    if via_bwrap and returncode > 128:  # bwrap reports a signal as 128 + its number
        return (f"exit status {returncode} (killed by signal {returncode - 128}, "
                f"{name(returncode - 128)})")
    return f"exit status {returncode}"


def _write_reason(private: str, reason: str | None) -> None:
    path = os.path.join(private, EXIT_REASON)
    try:
        # the kernel can write in this folder: never follow a link it left there
        if os.path.lexists(path):
            os.unlink(path)
        if reason:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(reason + "\n")
    except OSError as error:
        _say(f"cannot write {path}: {error}")


def main(argv: list[str] | None = None) -> int:
    """Run the command after ``--`` in the sandbox; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        _parser().error("give the command to run after --")
    split = argv.index("--")
    args, cmd = _parser().parse_args(argv[:split]), argv[split + 1:]

    own_private = args.private is None
    private = os.path.realpath(args.private or tempfile.mkdtemp(prefix="gk-",
                                                                dir=_private_base()))
    cwd = os.path.realpath(os.getcwd())
    workdir_copy = None
    stop_requested: list[int] = []
    orphaned: list[bool] = []
    # jupyter_client names the grader in JPY_PARENT_PID unless the kernel is meant to
    # outlive it
    grader = os.getppid() if os.environ.get("JPY_PARENT_PID") == str(os.getppid()) else None
    env = dict(os.environ)
    try:
        if args.no_bwrap:
            full_cmd = cmd
            env["JPY_PARENT_PID"] = str(os.getpid())  # the kernel's parent is the launcher
        else:
            bwrap = _find_bwrap()
            if bwrap is None:
                raise SystemExit(f"bwrap not found: `{INSTALL_HINT}`, or pass --no-bwrap")
            bound = _bound_paths(cmd[0], args.hide)
            hidden = _hidden_paths(args.hide, bound)
            if cwd != "/":
                workdir_copy = os.path.join(private, "cwd")
                _copy_workdir(cwd, workdir_copy, {*hidden, private})
            full_cmd = bwrap_command(bwrap, cmd, private=private, cwd=cwd,
                                     workdir_copy=workdir_copy, hidden=hidden,
                                     tmp_mb=args.tmp_mb, bound=bound)
            env = _sandbox_env(env)
        if args.memory_mb > 0:
            # glibc reserves 64 MB of address space per malloc arena, up to 8 per core:
            # TensorFlow's threads would spend the limit on reservations on big machines
            env.setdefault("MALLOC_ARENA_MAX", "4")

        # SIGINT (an interrupt) goes to the whole process group: the kernel handles it,
        # the launcher and bwrap (which inherits SIG_IGN) must survive it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            child = subprocess.Popen(full_cmd, env=env,
                                     preexec_fn=_child_setup(_limits(args.memory_mb,
                                                                     args.fsize_mb)))
        except OSError as error:
            raise SystemExit(f"cannot run {full_cmd[0]}: {error}") from None

        def forward(signum, _frame):
            stop_requested.append(signum)
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, forward)
        if grader is not None:
            threading.Thread(target=_watch_parent, args=(grader, child, orphaned),
                             daemon=True).start()
        returncode = child.wait()
        reason = _describe(returncode, via_bwrap=not args.no_bwrap)
        if orphaned:
            reason = f"the grader (process {grader}) exited without stopping the kernel"
        if reason and not stop_requested:
            _say(f"the kernel stopped: {reason}")
    except SystemExit as stop:
        if not isinstance(stop.code, str):
            raise
        reason, returncode = f"sandbox not started: {stop.code}", 1
        _say(reason)
    finally:
        if workdir_copy and os.path.isdir(workdir_copy) and not os.path.islink(workdir_copy):
            shutil.rmtree(workdir_copy, ignore_errors=True)

    if own_private or orphaned:  # nobody is left to read or remove the folder
        shutil.rmtree(private, ignore_errors=True)
    else:
        _write_reason(private, reason)
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main())
