"""gancourse.autograde.sandbox: a submission's kernel cannot touch the course, the installed
package, the network or the machine's memory, and it still runs, is interrupted on a cell
timeout, and stops without leaving anything behind.

One sandboxed kernel, started by nbclient as nbgrader starts it, runs a notebook of
probes; the tests read its outputs.
"""

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

import gantools
from gancourse.autograde import sandbox
from gancourse.kernel import KERNEL_NAME

needs_bwrap = pytest.mark.skipif(
    not sandbox.sandbox_available(),
    reason=f"bubblewrap (bwrap) cannot run here; install it: {sandbox.INSTALL_HINT}")

INTERRUPTED_CELL = "while True:\n    pass"


class RecordingKM(sandbox.SandboxedKernelManager):
    """Remembers each kernel's launcher PID and private folder, to check the cleanup."""

    started: list = []

    async def _async_post_start_kernel(self, **kw):
        await super()._async_post_start_kernel(**kw)
        RecordingKM.started.append({"pid": self.provisioner.pid, "dir": self.sandbox_dir})


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_notebook(cells, cwd, **options):
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, kernel_manager_class=RecordingKM,
                            resources={"metadata": {"path": str(cwd)}}, **options)
    client.execute()
    return nb


def text_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def error_of(cell) -> str | None:
    return next((out.ename for out in cell.outputs if out.output_type == "error"), None)


@pytest.fixture(scope="module")
def course():
    """A course outside the system's temporary folder (which the sandbox hides anyway)."""
    base = Path("/var/tmp")
    if not (base.is_dir() and os.access(base, os.W_OK)) or str(base.resolve()).startswith(
            os.path.realpath(tempfile.gettempdir())):
        base = Path.home() / ".cache"
        base.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="gantools-course-", dir=base))
    (root / "gradebook.db").write_text("grades")
    (root / "source" / "ps1").mkdir(parents=True)
    (root / "source" / "ps1" / "hidden_tests.txt").write_text("expected values")
    (root / "submitted" / "bob" / "ps1").mkdir(parents=True)
    (root / "submitted" / "bob" / "ps1" / "answer.txt").write_text("bob's answer")
    cwd = root / "autograded" / "alice" / "ps1"
    cwd.mkdir(parents=True)
    (cwd / "data.txt").write_text("alice's data")
    (cwd / "ps1.ipynb").write_text("{}")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def host_server():
    """A TCP server on the host's loopback that the kernel must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


PROBES = '''
import json, os, socket
import numpy as np
import tensorflow as tf
import gantools
import gantools.models

def attempt(action):
    try:
        return action()
    except Exception as error:
        return type(error).__name__

def write(path):
    with open(path, "w") as f:
        f.write("x")
    return "written"

def connect():
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    return "connected"

course = {course!r}
print(json.dumps({{
    "versions": [tf.__version__, gantools.__version__],
    "write_package": attempt(lambda: write(os.path.join(os.path.dirname(gantools.__file__),
                                                        "pwned.py"))),
    "read_hidden": attempt(lambda: open(os.path.join(course, "source", "ps1",
                                                     "hidden_tests.txt")).read()),
    "read_other_student": attempt(lambda: open(os.path.join(course, "submitted", "bob", "ps1",
                                                            "answer.txt")).read()),
    "write_hidden": attempt(lambda: write(os.path.join(course, "gradebook.db"))),
    "hidden_listing": sorted(os.listdir(course)),
    "cwd": os.getcwd(),
    "read_cwd": attempt(lambda: open("data.txt").read()),
    "write_cwd": attempt(lambda: write("new.txt")),
    "cwd_listing": sorted(os.listdir(".")),
    "network": attempt(connect),
    "home": os.environ["HOME"],
    "write_home": attempt(lambda: write(os.path.join(os.environ["HOME"], "x"))),
    "memory_limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_AS)[0],
    "capabilities": [line.split()[1] for line in open("/proc/self/status")
                     if line.startswith("CapEff")],
    "run": os.listdir("/run"),
    "tmp_mb": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize >> 20,
    "subprocess": attempt(lambda: __import__("subprocess").run(["true"]).returncode),
    "fork": attempt(lambda: os._exit(0) if os.fork() == 0 else "forked"),
    "spawn": attempt(lambda: os.posix_spawn("/bin/true", ["true"], {{}})),
    "threads": attempt(lambda: __import__("concurrent.futures").futures.ThreadPoolExecutor(
        2).submit(lambda: "thread ran").result()),
    "connection_file": attempt(lambda: os.path.exists(__import__(
        "ipykernel.kernelapp").kernelapp.IPKernelApp.instance().abs_connection_file)),
    "onednn": [os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
               bool(__import__("tensorflow.python.util._pywrap_util_port",
                               fromlist=["x"]).IsMklEnabled())],
}}))
'''


@pytest.fixture(scope="module")
def sandboxed_run(course, host_server):
    """Executes the probes, a 16 GiB allocation and an endless loop in one sandboxed kernel,
    the way nbgrader does; returns the notebook, the kernel's record and the kernel's
    working folder."""
    if not sandbox.sandbox_available():
        pytest.skip(f"bubblewrap (bwrap) cannot run here; install it: {sandbox.INSTALL_HINT}")
    cwd = course / "autograded" / "alice" / "ps1"
    cells = [
        PROBES.format(port=host_server, course=str(course)),
        "import numpy as np\nx = np.ones(2**34, dtype=np.uint8)",  # 16 GiB
        "print(int(np.ones(1000).sum()))",
        INTERRUPTED_CELL,
        "print('after the interrupt')",
    ]
    RecordingKM.started.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(sandbox.ENV_HIDE, str(course))
        for name in (sandbox.ENV_MEMORY_MB, sandbox.ENV_TMP_MB):
            mp.delenv(name, raising=False)  # the default limits
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        mp.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)  # the course's kernel sets it
        nb = run_notebook(cells, cwd, allow_errors=True, interrupt_on_timeout=True,
                          timeout_func=lambda cell: 5 if cell.source == INTERRUPTED_CELL else 120)
    (kernel,) = RecordingKM.started
    return nb, kernel, cwd


@pytest.fixture(scope="module")
def probes(sandboxed_run):
    nb, _, _ = sandboxed_run
    assert error_of(nb.cells[0]) is None, nb.cells[0].outputs
    return json.loads(text_of(nb.cells[0]).strip().splitlines()[-1])


@needs_bwrap
def test_tensorflow_and_gantools_import_in_the_sandbox(probes):
    assert len(probes["versions"]) == 2
    assert probes["write_home"] == "written" and probes["home"] == sandbox.SANDBOX_HOME


@needs_bwrap
def test_the_sandboxed_course_kernel_has_onednn_on(probes):
    """The grader's environment has no TF_ENABLE_ONEDNN_OPTS; the course's kernel sets it
    before the submission's first import of TensorFlow."""
    assert probes["onednn"] == ["1", True]


@needs_bwrap
def test_no_capabilities_no_service_sockets_and_a_bounded_tmp(probes):
    assert probes["capabilities"] == ["0000000000000000"]  # even when grading as root
    assert probes["run"] == []
    assert probes["tmp_mb"] == sandbox.DEFAULT_TMP_MB


@needs_bwrap
def test_no_child_process_threads_still_run_and_the_connection_file_is_gone(probes):
    """The graded kernel (gancourse.autograde.confine) cannot start a process of any kind, so no
    shell, second interpreter or Jupyter client of its own; threads (TensorFlow's, the
    kernel's) still run; and the file holding the key that signs kernel messages is gone."""
    assert probes["subprocess"] == probes["fork"] == probes["spawn"] == "PermissionError"
    assert probes["threads"] == "thread ran"
    assert probes["connection_file"] is False


@needs_bwrap
def test_installed_package_is_read_only(probes):
    assert probes["write_package"] == "OSError"  # EROFS
    assert not (Path(gantools.__file__).parent / "pwned.py").exists()


@needs_bwrap
def test_hidden_course_is_out_of_reach(probes, course):
    assert probes["read_hidden"] == "FileNotFoundError"
    assert probes["read_other_student"] == "FileNotFoundError"
    assert probes["write_hidden"] == "OSError"
    assert probes["hidden_listing"] == ["autograded"]  # the way to the working folder only
    assert (course / "gradebook.db").read_text() == "grades"


@needs_bwrap
def test_working_folder_is_a_private_copy(probes, sandboxed_run):
    _, _, cwd = sandboxed_run
    assert probes["cwd"] == str(cwd.resolve())
    assert probes["read_cwd"] == "alice's data"
    assert probes["write_cwd"] == "written"
    # the graded notebook, hidden tests included, is not copied
    assert probes["cwd_listing"] == ["data.txt", "new.txt"]
    assert sorted(p.name for p in cwd.iterdir()) == ["data.txt", "ps1.ipynb"]


@needs_bwrap
def test_no_network(probes):
    assert probes["network"] in {"ConnectionRefusedError", "OSError", "TimeoutError"}


@needs_bwrap
def test_memory_bomb_raises_memory_error_and_the_kernel_survives(probes, sandboxed_run):
    nb, _, _ = sandboxed_run
    assert probes["memory_limit"] == sandbox.DEFAULT_MEMORY_MB << 20
    assert error_of(nb.cells[1]) == "MemoryError"
    assert text_of(nb.cells[2]).strip() == "1000"


@needs_bwrap
def test_cell_timeout_interrupts_the_kernel(sandboxed_run):
    nb, _, _ = sandboxed_run
    assert error_of(nb.cells[3]) == "KeyboardInterrupt"
    assert text_of(nb.cells[4]).strip() == "after the interrupt"


@needs_bwrap
def test_nothing_left_after_shutdown(sandboxed_run):
    _, kernel, _ = sandboxed_run
    assert not Path(kernel["dir"]).exists()
    deadline = time.monotonic() + 10
    while (pid_alive(kernel["pid"]) or processes_mentioning(kernel["dir"])) and (
            time.monotonic() < deadline):
        time.sleep(0.2)
    assert not pid_alive(kernel["pid"])
    assert processes_mentioning(kernel["dir"]) == []


async def start(cwd):
    km = sandbox.SandboxedKernelManager(kernel_name=KERNEL_NAME)
    await km.start_kernel(cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def wait_until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@needs_bwrap
def test_exit_reason_and_killing_the_launcher(tmp_path):
    async def scenario():
        # the kernel is killed: the launcher says so
        km, kc = await start(tmp_path)
        kc.execute("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        await wait_until(lambda: _not(km.is_alive()))
        assert sandbox.exit_reason(km) == "exit status 137 (killed by signal 9, SIGKILL)"
        kc.stop_channels()
        folder = km.sandbox_dir
        await km.cleanup_resources()
        assert not os.path.exists(folder)
        assert sandbox.exit_reason(km) == "exit status 137 (killed by signal 9, SIGKILL)"

        # the launcher is killed: the kernel dies with it
        km, kc = await start(tmp_path)
        folder = km.sandbox_dir
        assert len(processes_mentioning(folder)) >= 2  # launcher, bwrap, kernel
        os.kill(km.provisioner.pid, signal.SIGKILL)

        async def gone():
            return not processes_mentioning(folder)

        await wait_until(gone)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        assert not os.path.exists(folder)

    asyncio.run(scenario())


GRADER_THAT_CRASHES = """
import asyncio, os, sys
from gancourse.autograde.sandbox import SandboxedKernelManager

async def main():
    km = SandboxedKernelManager(kernel_name="gan-course")
    await km.start_kernel(cwd=sys.argv[1])
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    with open(sys.argv[2], "w") as f:
        f.write(km.sandbox_dir)
    os._exit(0)  # no shutdown, no cleanup

asyncio.run(main())
"""


@needs_bwrap
def test_kernel_dies_with_the_grader(tmp_path):
    report, log = tmp_path / "sandbox_dir.txt", tmp_path / "grader.log"
    with log.open("w") as out:  # not a pipe: the kernel would hold it open
        subprocess.run([sys.executable, "-c", GRADER_THAT_CRASHES, str(tmp_path), str(report)],
                       stdout=out, stderr=out, timeout=120)
    assert report.exists(), log.read_text()
    folder = report.read_text()
    try:
        deadline = time.monotonic() + 10
        while (processes_mentioning(folder) or os.path.exists(folder)) and (
                time.monotonic() < deadline):
            time.sleep(0.2)
        assert processes_mentioning(folder) == []
        assert not os.path.exists(folder)
    finally:  # leave nothing behind when it fails
        for pid in processes_mentioning(folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


async def _not(awaitable):
    return not await awaitable


def test_fallback_without_bwrap_warns_and_runs(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "_find_bwrap", lambda: None)
    monkeypatch.setattr(sandbox, "_warned", False)
    monkeypatch.delenv(sandbox.ENV_REQUIRE, raising=False)
    monkeypatch.setenv(sandbox.ENV_MEMORY_MB, "6144")
    assert not sandbox.sandbox_available()
    RecordingKM.started.clear()
    with caplog.at_level("WARNING"):
        nb = run_notebook(["import os, resource\n"
                           "print(resource.getrlimit(resource.RLIMIT_AS)[0], os.getcwd())"],
                          tmp_path, timeout=60)
    limit, cwd = text_of(nb.cells[0]).split()
    assert int(limit) == 6144 << 20  # the limits apply without the sandbox too
    assert cwd == str(tmp_path.resolve())
    warnings = [r.getMessage() for r in caplog.records if "WITHOUT A SANDBOX" in r.getMessage()]
    assert len(warnings) == 1 and sandbox.INSTALL_HINT in warnings[0]
    assert not Path(RecordingKM.started[-1]["dir"]).exists()


def test_require_sandbox_refuses_to_fall_back(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "_find_bwrap", lambda: None)
    monkeypatch.setenv(sandbox.ENV_REQUIRE, "1")
    private_base = tmp_path / "private"
    private_base.mkdir()
    monkeypatch.setattr(sandbox, "_private_base", lambda: str(private_base))
    with pytest.raises(sandbox.SandboxUnavailable, match=re.escape(sandbox.INSTALL_HINT)):
        run_notebook(["print(1)"], tmp_path, timeout=60)
    assert list(private_base.iterdir()) == []  # refused before making anything


def test_launcher_limits_without_bwrap(tmp_path):
    """The launcher alone: limits, exit status, and the reason file."""
    private = tmp_path / "private"
    private.mkdir()
    code = ("import resource as r, sys; print(*(r.getrlimit(limit)[0] for limit in "
            "(r.RLIMIT_AS, r.RLIMIT_FSIZE, r.RLIMIT_CORE))); sys.exit(3)")
    proc = subprocess.run([sys.executable, "-m", sandbox.LAUNCHER, "--private", str(private),
                           "--no-bwrap", "--memory-mb", "4096", "--fsize-mb", "16", "--",
                           sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stdout.split() == [str(4096 << 20), str(16 << 20), "0"]
    assert (private / sandbox.EXIT_REASON).read_text().strip() == "exit status 3"
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != 4096 << 20  # the grader's untouched


def test_nbgrader_execute_configured_with_the_sandbox(tmp_path):
    """``c.Execute.kernel_manager_class`` takes effect, though nbgrader's ``Execute``
    passes its own class to ``__init__``: ``preprocess`` applies the configuration again."""
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    config = Config()
    config.Execute.kernel_manager_class = "gancourse.autograde.sandbox.SandboxedKernelManager"
    nb = new_notebook(cells=[new_code_cell("import os; print(os.environ['HOME'])")])
    execute = Execute(config=config)
    execute.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert execute.kernel_manager_class is sandbox.SandboxedKernelManager
    if sandbox.sandbox_available():
        assert text_of(nb.cells[0]).strip() == sandbox.SANDBOX_HOME


def test_mounts_go_from_outer_to_inner_folders(tmp_path):
    course, private = tmp_path / "course", tmp_path / "gk-private"
    cwd = course / "autograded" / "alice" / "ps1"
    cwd.mkdir(parents=True)

    def ops(cwd):
        args = sandbox.bwrap_command("bwrap", ["kernel"], private=str(private), cwd=str(cwd),
                                     workdir_copy=str(private / "cwd"), hidden=[str(course)],
                                     tmp_mb=64)
        return [(args[i], args[i + 1]) for i in range(len(args) - 1)
                if args[i] in {"--tmpfs", "--bind", "--remount-ro"}]

    # the course is hidden, then the copy of the working folder goes inside it, then the
    # course is made read-only (not the copy)
    assert ops(cwd)[-4:] == [("--tmpfs", str(course)), ("--bind", str(private)),
                             ("--bind", str(private / "cwd")), ("--remount-ro", str(course))]
    # a working folder above the hidden one is bound first, and hides nothing
    assert ops(tmp_path)[-4:] == [("--bind", str(private / "cwd")), ("--tmpfs", str(course)),
                                  ("--bind", str(private)), ("--remount-ro", str(course))]
    # the hidden folder itself as the working folder: writable (its copy is empty)
    assert ops(course)[-3:] == [("--tmpfs", str(course)), ("--bind", str(private)),
                                ("--bind", str(private / "cwd"))]


def test_the_sandbox_can_be_switched_off_for_measurements(monkeypatch):
    from gancourse.autograde import sandbox

    monkeypatch.setenv("GANTOOLS_SANDBOX", "off")
    assert not sandbox.sandbox_available()
    assert "GANTOOLS_SANDBOX=off" in sandbox._sandbox_problem()


def test_what_the_kernel_needs_under_tmp_is_bound_back_and_what_is_hidden_stays_hidden():
    """A virtual environment under /tmp (private in the sandbox) is bound back read-only
    after the private /tmp is mounted; a hidden course inside it is hidden again after
    that, and made read-only last."""
    base = tempfile.mkdtemp(dir="/tmp")
    try:
        env, course, private = f"{base}/.venv", f"{base}/.venv/course", "/tmp/gk-private"
        os.makedirs(course)
        args = sandbox.bwrap_command("bwrap", ["kernel"], private=private, cwd="/",
                                     workdir_copy=None, hidden=[course], tmp_mb=64,
                                     bound=[env])
    finally:
        shutil.rmtree(base)
    ops = [(args[i], args[i + 1]) for i in range(len(args) - 1)
           if args[i] in {"--tmpfs", "--bind", "--ro-bind", "--remount-ro"}]
    assert ops[0] == ("--ro-bind", "/") and ops[2] == ("--tmpfs", "/tmp")
    assert ops[3:] == [("--bind", private), ("--ro-bind", env), ("--tmpfs", course),
                       ("--remount-ro", course)]
    assert args[args.index(env) - 1:args.index(env) + 2] == ["--ro-bind", env, env]


def test_only_needed_paths_in_private_folders_are_bound_and_hidden_ones_refused(
        tmp_path, monkeypatch):
    checkout = Path(tempfile.mkdtemp(prefix="gantools test ", dir="/tmp"))
    try:
        venv, course = checkout / ".venv", checkout / "course"
        (venv / "bin").mkdir(parents=True)
        course.mkdir()
        (venv / "bin" / "python").symlink_to(sys.executable)
        monkeypatch.setenv(sandbox.ENV_HIDE, str(course))
        bound = sandbox._bound_paths(str(venv / "bin" / "python"), [])
        assert str(venv) in bound  # as the kernel spec names it; spaces and all
        assert not any(p.startswith(str(course)) for p in bound)
        # the course, hidden, inside a folder bound back: hidden again, not dropped
        assert str(course) in sandbox._hidden_paths([], [str(checkout)])

        monkeypatch.setenv(sandbox.ENV_HIDE, str(checkout))  # the environment in the course
        with pytest.raises(SystemExit, match=r"which is inside .*a folder the sandbox hides"):
            sandbox._bound_paths(str(venv / "bin" / "python"), [])
        monkeypatch.delenv(sandbox.ENV_HIDE)
        with pytest.raises(SystemExit, match="private as a whole"):
            sandbox._bound_paths("/tmp/python", [])
    finally:
        shutil.rmtree(checkout)


def test_folders_this_python_imports_from_are_bound_back_unless_hidden(monkeypatch):
    """An environment may import from a folder under /tmp through a .pth file (a checkout,
    another environment's packages): the kernel, the same Python, needs it too."""
    base = Path(tempfile.mkdtemp(prefix="gantools test ", dir="/tmp"))
    try:
        borrowed, hidden = base / "site-packages", base / "course" / "lib"
        borrowed.mkdir()
        hidden.mkdir(parents=True)
        monkeypatch.setattr(sys, "path", [str(base / "cwd"), *sys.path, str(borrowed),
                                          str(hidden), "/tmp", str(base / "missing")])
        monkeypatch.setenv(sandbox.ENV_HIDE, str(base / "course"))
        bound = sandbox._bound_paths(sys.executable, [])
        assert str(borrowed) in bound
        assert not any(p.startswith((str(base / "course"), str(base / "cwd"),
                                     str(base / "missing"))) or p == "/tmp" for p in bound)
    finally:
        shutil.rmtree(base)


@needs_bwrap
def test_an_interpreter_under_tmp_runs_in_the_sandbox_and_a_hidden_folder_in_it_stays_hidden(
        monkeypatch):
    """The launcher for real: a Python whose environment lies in /tmp starts, reads its
    own files, and cannot see the hidden folder inside its environment."""
    base = Path(tempfile.mkdtemp(prefix="gantools env ", dir="/tmp"))
    try:
        (base / "bin").mkdir()
        (base / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
        (base / "notes.txt").write_text("readable")
        (base / "course").mkdir()
        (base / "course" / "secret.txt").write_text("hidden")
        monkeypatch.setenv(sandbox.ENV_HIDE, str(base / "course"))
        code = ("import os, sys; print(open(sys.argv[1]).read(), "
                "sorted(os.listdir(sys.argv[2])))")
        proc = subprocess.run([sys.executable, "-m", sandbox.LAUNCHER, "--",
                               str(base / "bin" / "python"), "-c", code,
                               str(base / "notes.txt"), str(base / "course")],
                              cwd="/", capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["readable", "[]"]
    finally:
        shutil.rmtree(base)


@needs_bwrap
def test_a_temporary_folder_with_spaces_holds_the_kernels_sockets(tmp_path, monkeypatch):
    base = Path(tempfile.mkdtemp(prefix="temp with spaces ", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.setenv("TMPDIR", str(base))

    async def scenario():
        km, kc = await start(tmp_path)
        try:
            assert km.sandbox_dir.startswith(str(base)) and km._sandboxed
            reply = await kc.execute_interactive("print(6 * 7)", timeout=60)
            assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            await km.shutdown_kernel()

    try:
        asyncio.run(scenario())
    finally:
        shutil.rmtree(base)


GUARDED_CELLS = [
    # 0, trusted: the notebook's own cell uses gantools
    "import json\nimport gantools.augment as ga\nimport tensorflow as tf\n"
    "x = tf.zeros([1, 4, 4, 1])\nprint('trusted:', ga.translate_integer(x, [1], [0]).shape)",
    # 1, a student's cell: gantools is switched off, also for tracing into a graph
    "try:\n    ga.translate_integer(x, [1], [0])\nexcept Exception as e:\n"
    "    print('untrusted call:', type(e).__name__)\n"
    "try:\n    tf.data.Dataset.range(1).map(lambda _: ga.translate_integer(x, [1], [0]))\n"
    "except Exception as e:  # tf.data wraps the error while it traces\n"
    "    print('untrusted trace:', 'gantools switched off' in str(e))",
    # 2, a student's cell: what the assignment allows still runs
    "print('allowed:', type(ga.Augmenter).__name__)",
    # 3, trusted again: gantools is back
    "print('trusted again:', ga.translate_integer(x, [1], [0]).shape)",
    # 4, a student's cell defines a function that traces gantools into a tf.data pipeline
    "def student_pipeline():\n"
    "    return tf.data.Dataset.range(1).map(lambda _: ga.translate_integer(x, [1], [0]))",
    # 5, trusted: the notebook calls it (gantools on) and traces gantools itself
    "try:\n    student_pipeline()\n    print('student trace: ran')\n"
    "except Exception as e:\n    print('student trace:', 'gantools switched off' in str(e))\n"
    "own = tf.data.Dataset.range(1).map(lambda _: ga.translate_integer(x, [1], [0]))\n"
    "print('own trace:', next(iter(own)).shape)",
]


@needs_bwrap
def test_cells_the_release_does_not_hold_run_with_gantools_switched_off(course, tmp_path):
    """The cell guard of the graded kernel: a cell whose source is not one of the trusted
    digests the grader passes runs with every gantools function trapped; trusted cells
    run with gantools as usual, but tf.data traces with gantools off while a student's
    code is on the call stack."""
    from gancourse.autograde.confine import ENV_GUARD, cell_digest

    guard = {"trusted": [cell_digest(GUARDED_CELLS[i]) for i in (0, 3, 5)], "allow": []}
    nb = new_notebook(cells=[new_code_cell(source) for source in GUARDED_CELLS])
    client = NotebookClient(nb, kernel_name=KERNEL_NAME,
                            kernel_manager_class=sandbox.SandboxedKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}}, timeout=120)
    client.execute(env={**os.environ, ENV_GUARD: json.dumps(guard),
                        "TF_CPP_MIN_LOG_LEVEL": "2"})
    texts = [text_of(cell) for cell in nb.cells]
    assert "trusted: (1, 4, 4, 1)" in texts[0]
    assert "untrusted call: GantoolsSwitchedOff" in texts[1]
    assert "untrusted trace: True" in texts[1]
    assert "allowed: type" in texts[2]  # looking at a class runs no gantools code
    assert "trusted again: (1, 4, 4, 1)" in texts[3]
    # a student's function traces with gantools off even when a notebook cell calls it
    assert "student trace: True" in texts[5] and "own trace: (1, 4, 4, 1)" in texts[5]


def test_the_child_process_ban_is_a_seccomp_filter_that_keeps_threads(tmp_path):
    """forbid_child_processes in a fresh interpreter (it cannot be lifted): exec, fork and
    spawn fail with PermissionError, threads and TensorFlow-free work go on."""
    import platform

    from gancourse.autograde.confine import _AUDIT_ARCH
    if platform.machine() not in _AUDIT_ARCH:
        pytest.skip(f"no seccomp filter for {platform.machine()}")
    script = (
        "import os, subprocess, threading\n"
        "from gancourse.autograde.confine import forbid_child_processes\n"
        "print('installed:', forbid_child_processes())\n"
        "def attempt(name, action):\n"
        "    try:\n        action(); print(name, 'ran')\n"
        "    except OSError as e:\n        print(name, type(e).__name__)\n"
        "attempt('run', lambda: subprocess.run(['true']))\n"
        "attempt('fork', lambda: os._exit(0) if os.fork() == 0 else None)\n"
        "attempt('execv', lambda: os.execv('/bin/true', ['true']))\n"
        "t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == ["installed: None", "run PermissionError", "fork PermissionError",
                     "execv PermissionError", "thread ran"], proc.stdout
