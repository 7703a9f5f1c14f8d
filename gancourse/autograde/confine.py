"""The graded kernel: the course's IPython kernel, confined before any cell runs.

The sandbox (:mod:`gancourse.autograde.sandbox`) starts a submission's kernel as
``python -m gancourse.autograde.confine -f <connection file>`` instead of the course's
``python -m gancourse.kernel``. Before the kernel answers its first request, this module

* forbids child processes for good (a seccomp filter, which no process can lift): no
  ``execve``, no ``fork``, no ``clone`` that makes a process rather than a thread. A
  submission can start no shell, no second interpreter (where no tripwire exists) and no
  Jupyter client of its own. Python reports the refusal as ``PermissionError``;
* removes the connection file once the kernel has read it, so that nothing in the
  sandbox can learn the key that signs the kernel's messages from a file;
* with ``GANTOOLS_GUARD`` set by the grader (a JSON object: ``trusted``, the SHA-256 of
  every cell of the release that the grader runs as it is, and ``allow``, the gantools
  functions the assignment's answers may use), arms the tripwire
  (:mod:`gancourse.checks.tripwire`) before every other cell and disarms it before a
  trusted one. A cell a student wrote therefore runs with every gantools function (and
  every reference copy a check ever made) switched off: it cannot build a reference
  model, trace a reference into a graph or dataset, or keep one for later. The release's
  own cells (setup, training, plots, the checks) run with gantools as usual, except that
  tf.data traces a function with gantools switched off whenever code from a student's cell
  is on the call stack (a student's step that a training cell calls).

Without seccomp support (a kernel older than 3.17, an architecture other than x86-64 and
AArch64) the kernel still starts, after a warning on its standard error; the sandbox's
namespaces and the grading policy remain.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import sys

ENV_GUARD = "GANTOOLS_GUARD"
MODULE = "gancourse.autograde.confine"
# kernel commands this module can run in-process (it replaces them; an exec would be refused)
KERNEL_MODULES = ("gancourse.kernel", "gantools.kernel", "ipykernel_launcher", "ipykernel")

# --- seccomp: no child processes -------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# (execve, execveat, fork, vfork, clone, clone3); aarch64 has no fork or vfork
_SYSCALLS = {"x86_64": (59, 322, 57, 58, 56, 435), "aarch64": (221, 281, None, None, 220, 435)}
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277}
_X32_BIT = 0x40000000
_CLONE_THREAD = 0x00010000
_EPERM, _ENOSYS = 1, 38
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K, _JGE_K, _JSET_K = 0x15, 0x35, 0x45
_RET_K = 0x06


def _filter_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF program: (code, jump if true, jump if false, k) per instruction."""
    execve, execveat, fork, vfork, clone, clone3 = _SYSCALLS[machine]
    denied = [n for n in (execve, execveat, fork, vfork) if n is not None]
    # layout: 0 arch, 1 arch check, 2 nr, 3 x32, denied..., clone3, clone, args[0],
    # CLONE_THREAD test, ALLOW, EPERM, ENOSYS
    n_denied = len(denied)
    allow = 4 + n_denied + 4
    eperm, enosys = allow + 1, allow + 2

    def jump(at, target):
        return target - at - 1

    prog = [(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
            (_JEQ_K, 0, jump(1, eperm), _AUDIT_ARCH[machine]),
            (_LD_W_ABS, 0, 0, 0)]  # seccomp_data.nr
    prog.append((_JGE_K, jump(3, eperm), 0, _X32_BIT) if machine == "x86_64"
                else (_JEQ_K, 0, 0, 0xFFFFFFFF))  # (a no-op where there is no x32)
    for i, nr in enumerate(denied):
        at = 4 + i
        prog.append((_JEQ_K, jump(at, eperm), 0, nr))
    at = 4 + n_denied
    prog.append((_JEQ_K, jump(at, enosys), 0, clone3))  # glibc falls back to clone
    prog.append((_JEQ_K, 0, jump(at + 1, allow), clone))
    prog.append((_LD_W_ABS, 0, 0, 16))  # seccomp_data.args[0], low 32 bits
    prog.append((_JSET_K, jump(at + 3, allow), jump(at + 3, eperm), _CLONE_THREAD))
    prog += [(_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, _RET_ERRNO | _EPERM),
             (_RET_K, 0, 0, _RET_ERRNO | _ENOSYS)]
    assert len(prog) == enosys + 1
    return prog


def forbid_child_processes() -> str | None:
    """Install the filter in this process and all its threads; None when it took effect,
    else why not."""
    machine = platform.machine()
    if sys.platform != "linux" or machine not in _AUDIT_ARCH:
        return f"no seccomp filter for {sys.platform}/{machine}"
    prog = _filter_program(machine)

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(prog))(*(SockFilter(*insn) for insn in prog))
    fprog = SockFprog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}"
    result = libc.syscall(ctypes.c_long(_SECCOMP_SYSCALL[machine]),
                          ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                          ctypes.c_long(_SECCOMP_FILTER_FLAG_TSYNC),
                          ctypes.byref(fprog))
    if result != 0:
        return f"seccomp() failed: {os.strerror(ctypes.get_errno())}"
    return None


# --- the cell guard ------------------------------------------------------------------------------

def cell_digest(source: str) -> str:
    """How the grader and the kernel name a cell's source."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


class GantoolsSwitchedOff(RuntimeError):
    """A cell a student wrote called gantools while the notebook was autograded."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


# what IPython names code that a %time or %timeit line of a student's cell compiles
_MAGIC_FILES = frozenset({"<timed exec>", "<timed eval>", "<magic-timeit>"})


class CellGuard:
    """Arms the tripwire before every cell the release does not hold as it is, and while
    tf.data traces a function for code that a student's cell compiled.

    The second covers what the first cannot: a student's function that a notebook cell
    calls (a training loop calls the student's step) runs with gantools on, and a
    reference traced there into a tf.data pipeline would later run as a graph, without any
    Python for a check's tripwire to see.
    """

    def __init__(self, trusted, allow=(), shell=None):
        from gancourse.checks import tripwire

        self._tripwire = tripwire
        self._trusted = frozenset(trusted)
        self._allow = tuple(tuple(pair) for pair in allow)
        self._traps = None
        self._shell = shell
        self._student_files = set(_MAGIC_FILES)
        self._tf_data_guarded = False

    def _trip(self, name):
        raise GantoolsSwitchedOff(
            f"this cell called gantools' {name}(). While a notebook is autograded, the cells "
            "you wrote run with gantools switched off: write your answers with TensorFlow, "
            "Keras and NumPy (the notebook's own cells and the checks still use gantools).")

    def pre_run_cell(self, info) -> None:
        try:
            raw = info.raw_cell or ""
            if cell_digest(raw) in self._trusted:
                if self._traps is not None:
                    self._traps.disarm()
                    self._traps = None
            else:
                if self._shell is not None:  # the file name IPython compiles the cell under
                    self._student_files.add(self._shell.compile.get_code_name(
                        raw, raw, self._shell.execution_count))
                if self._traps is None:
                    self._traps = self._tripwire.Traps(self._trip, self._allow)
            self._guard_tf_data()
        except BaseException as error:  # fail closed: no cell runs with the guard broken
            _say(f"the cell guard failed ({type(error).__name__}: {error}); stopping")
            os._exit(70)

    def _student_on_stack(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename in self._student_files:
                return True
            frame = frame.f_back
        return False

    def _guard_tf_data(self) -> None:
        """Once TensorFlow is imported: tf.data traces a function (map, filter, reduce...)
        with gantools switched off whenever a student's code is on the call stack."""
        module = sys.modules.get("tensorflow.python.data.ops.structured_function")
        if self._tf_data_guarded or module is None:
            return
        wrapper = module.StructuredFunctionWrapper
        original = wrapper.__init__
        guard = self

        def __init__(self, *args, **kwargs):
            if guard._traps is not None or not guard._student_on_stack():
                return original(self, *args, **kwargs)
            # nothing allowed here: a graph traced now would run without Python later
            traps = guard._tripwire.Traps(guard._trip)
            try:
                return original(self, *args, **kwargs)
            finally:
                traps.disarm()

        wrapper.__init__ = __init__
        self._tf_data_guarded = True


def _say(message: str) -> None:
    try:
        print(f"gantools graded kernel: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def confined_command(cmd: list[str]) -> list[str] | None:
    """``cmd`` (a kernel spec's ``python -m <kernel module> ...``) run through this module,
    or None when it is not a kernel command this module knows how to run."""
    if len(cmd) >= 3 and cmd[1] == "-m" and cmd[2] in KERNEL_MODULES:
        return [cmd[0], "-m", MODULE, *cmd[3:]]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    guard = json.loads(os.environ.pop(ENV_GUARD, "") or "null")
    problem = forbid_child_processes()
    if problem:
        _say(f"child processes are NOT forbidden: {problem}")
    from ipykernel.kernelapp import IPKernelApp

    import gantools  # noqa: F401 - applies the course's environment (gantools.runtime)

    app = IPKernelApp.instance()
    app.initialize(argv)
    if guard is not None:
        cells = CellGuard(guard.get("trusted", ()), guard.get("allow", ()), app.shell)
        app.shell.events.register("pre_run_cell", cells.pre_run_cell)
    try:
        os.unlink(app.abs_connection_file)
    except OSError:
        pass
    app.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
