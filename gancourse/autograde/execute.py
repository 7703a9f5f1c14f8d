"""Running a submission at autograde time: sandboxed, within limits, and never all-or-nothing.

:class:`SandboxedExecute` replaces nbgrader's ``Execute`` in the autograde pipeline. It

* starts the kernel through :class:`gancourse.autograde.sandbox.SandboxedKernelManager`
  (bubblewrap: read-only environment, private copy of the submission folder, no network,
  memory and file-size limits);
* stops before the first cell the policy rejected
  (:class:`gancourse.autograde.plugins.EnforcePolicy` marks them): rejected code never
  runs, and neither does anything after it, since every later test scores 0 anyway;
* limits the submission as a whole: a wall-clock budget shared by all its cells and a cap
  on the bytes of output it may send, and kills a kernel that keeps running after a cell's
  time limit;
* survives faults: when the kernel dies (a crash, the memory limit), floods its output,
  stops answering or runs out of time, the cells run so far keep their outputs, the rest
  are marked as not run, and the fault is recorded for the report, so the submission keeps
  the points earned before it and is flagged for manual grading;
* without the sandbox (where the kernel could write anywhere it may), checks that the
  installed gantools package is unchanged after every notebook, restores it if it is not,
  and flags the submission that changed it. In the sandbox the package is read-only to
  the kernel, so a change seen there was made outside it (a developer's edit during a
  grading run): it is kept and logged, never reverted.

Faults are recorded in ``resources["gantools"]["faults"]`` as dicts with the cell index,
its label and the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

import gantools as _gantools

from .confine import ENV_GUARD

#: the folders of the two installed packages: the library and the course machinery
PACKAGES = (Path(_gantools.__file__).resolve().parent, Path(__file__).resolve().parents[1])


def state(resources) -> dict:
    """The grading notes shared by the gantools preprocessors of one notebook."""
    return resources.setdefault("gantools", {"violations": [], "faults": [], "skip": {}})


def cell_label(nb, index: int) -> str:
    """How reports name a cell: its nbgrader id, or its position for cells without one."""
    meta = nb.cells[index].get("metadata", {}).get("nbgrader", {})
    if meta.get("grade_id"):
        return f"cell '{meta['grade_id']}'"
    return f"cell {index + 1} (no nbgrader id: added by the student)"


def error_output(ename: str, message: str):
    return new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


class PackageSnapshot:
    """The bytes of every file of the installed packages, gantools and gancourse (or of
    the folders given); paths are named relative to the folder that holds them."""

    def __init__(self, *folders: Path):
        self.folders = folders or PACKAGES
        self.root = self.folders[0] if len(self.folders) == 1 else Path(
            os.path.commonpath([p.parent for p in self.folders]))
        self.files = self._read()

    def _read(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for folder in self.folders for p in sorted(folder.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts}

    def digest(self) -> str:
        h = hashlib.sha256()
        for path, data in self.files.items():
            h.update(str(path).encode() + b"\0" + data)
        return h.hexdigest()

    def changed(self) -> list[str]:
        """The paths (relative to the package) changed, added or removed since the snapshot."""
        now = self._read()
        return [str(p.relative_to(self.root)) for p in sorted(set(now) | set(self.files))
                if now.get(p) != self.files.get(p)]

    def restore(self) -> list[str]:
        """Put back what changed since the snapshot; returns the changed paths."""
        changed = self.changed()
        for name in changed:
            path = self.root / name
            if path in self.files:
                path.write_bytes(self.files[path])
            else:
                path.unlink()
        return changed


class MergedStreamsExecute(Execute):
    """nbgrader's Execute with each cell's stream outputs merged and carriage returns
    applied, so that a progress bar shows where it ended instead of every redraw."""

    coalesce_streams = Bool(True)


#: Run after a solution's last cell: the gantools and gancourse source files its kernel
#: imported, relative to the repository, as a JSON list (the build's fingerprint of the
#: solution includes them).
IMPORTED_PROBE = """\
import json as _json, os as _os, sys as _sys
import gantools as _gantools
_base = _os.path.dirname(_os.path.dirname(_os.path.abspath(_gantools.__file__)))
_files = {_os.path.abspath(m.__file__) for m in list(_sys.modules.values())
          if getattr(m, "__file__", None)}
_mine = tuple(_os.path.join(_base, p) + _os.sep for p in ("gantools", "gancourse"))
print(_json.dumps(sorted(_os.path.relpath(f, _base).replace(_os.sep, "/")
                         for f in _files if f.startswith(_mine))))
"""


class SolutionExecute(MergedStreamsExecute):
    """Executes a solution notebook (``nbgrader generate_solution``) and records in its
    metadata, under ``gancourse.imported``, which gantools source files the kernel had
    imported by the end: with the notebook itself, what its outputs depend on.
    (``make course`` reuses an executed solution while none of them changed.)"""

    def preprocess(self, nb, resources=None, km=None):
        nb.cells.append(new_code_cell(IMPORTED_PROBE))
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            probe = nb.cells.pop()
        text = "".join(o.get("text", "") for o in probe.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        nb.metadata.setdefault("gancourse", {})["imported"] = json.loads(
            text.strip().splitlines()[-1])
        return nb, resources


class SandboxedExecute(MergedStreamsExecute):
    """nbgrader's Execute, sandboxed, with submission-wide limits and fault tolerance."""

    submission_timeout = Integer(
        1800, help="Seconds all cells of one notebook may take together; then the rest is "
        "not run and the submission is flagged.").tag(config=True)
    max_output_bytes = Integer(
        2_000_000, help="Bytes of output (text, images, widget messages) one notebook may "
        "send; past that the kernel is stopped and the submission flagged.").tag(config=True)
    stuck_timeout = Integer(
        15, help="Seconds a kernel has to answer after a cell was interrupted for running "
        "past its time limit; a kernel that does not answer is stopped.").tag(config=True)

    def __init__(self, **kw):
        from .sandbox import SandboxedKernelManager

        kw.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(**kw)

    # --- limits ------------------------------------------------------------------------------
    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        remaining = max(1, int(self._deadline - time.monotonic()))
        return remaining if timeout is None else min(timeout, remaining)

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] not in ("status", "execute_input"):
            self._output_bytes += len(str(msg.get("content", "")))
            if self._output_bytes > self.max_output_bytes:
                if self._fault is None:
                    self._fault = (f"sent more than {self.max_output_bytes:,} bytes of output; "
                                   "the kernel was stopped")
                    asyncio.ensure_future(self.km.signal_kernel(signal.SIGKILL))
                if msg["msg_type"] != "status":
                    return None  # drop the flood
        return super().process_message(msg, cell, cell_index)

    # --- the loop over cells -----------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        snapshot = PackageSnapshot()  # taken per notebook: only this run's changes count
        notes = state(resources)
        NotebookClient.__init__(self, nb, km)  # as ExecutePreprocessor.preprocess does
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._deadline = time.monotonic() + self.submission_timeout
        self._output_bytes = 0
        self._fault = None
        kernel = {}
        if "guard" in notes:  # the policy ran: the graded kernel guards the other cells
            kernel["env"] = {**os.environ, ENV_GUARD: json.dumps(notes["guard"])}
        with self.setup_kernel(**kernel):
            sandboxed = bool(getattr(self.km, "_sandboxed", False))
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code":
                    continue
                if index in notes["skip"]:  # the policy rejected it: stop before it
                    cell.outputs = [error_output("NotRun", notes["skip"][index])]
                    self._not_run_after(nb, index, "broke the grading policy")
                    break
                if self._fault is None and time.monotonic() > self._deadline:
                    self._fault = (f"ran past the notebook's time limit of "
                                   f"{self.submission_timeout} s")
                if self._fault is not None:
                    self._record(nb, notes, index)
                    break
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    self._fault = self._fault or self._death_reason()
                except CellTimeoutError:  # interrupted, yet never went idle again
                    self._fault = self._fault or self._stuck
                if self._fault is not None:
                    cell.outputs.append(error_output("SubmissionFault", self._fault))
                    self._record(nb, notes, index)
                    break
                if self._timed_out(cell) and not self._responsive():
                    self._fault = self._stuck
                    self._record(nb, notes, index)
                    break
        self.set_widgets_metadata()
        if sandboxed:
            # The sandbox mounts every file read-only: the kernel cannot have written the
            # package, so a change comes from outside (someone editing gantools while a
            # grading run goes on). Keep it, and say so, rather than revert their work.
            changed = snapshot.changed()
            if changed:
                self.log.warning("gantools changed while a notebook was graded (not by the "
                                 "sandboxed submission; kept): %s", changed)
            changed = []
        else:
            changed = snapshot.restore()
        if changed:
            notes["faults"].append({
                "cell_index": None, "cell": "the submission",
                "reason": "changed files of the installed gantools package (restored): "
                          + ", ".join(changed)})
            self.log.error("Submission changed the installed gantools package; restored %s",
                           changed)
        return self.nb, self.resources

    def _record(self, nb, notes, index):
        """Note the fault at cell ``index`` and mark every later code cell as not run."""
        notes["faults"].append({"cell_index": index, "cell": cell_label(nb, index),
                                "reason": self._fault})
        self.log.warning("Autograde fault at %s: %s", cell_label(nb, index), self._fault)
        self._not_run_after(nb, index, self._fault)

    @staticmethod
    def _not_run_after(nb, index, why):
        for later in nb.cells[index + 1:]:
            if later.cell_type == "code":
                later.outputs = [error_output(
                    "NotRun", f"not run: the submission {why} at {cell_label(nb, index)}.")]

    _stuck = ("kept running after its cell's time limit and did not answer an interrupt; "
              "the kernel was stopped")

    @staticmethod
    def _timed_out(cell) -> bool:
        return any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))

    def _responsive(self) -> bool:
        """Whether the kernel answers a kernel_info request within ``stuck_timeout``."""

        async def ask():
            msg_id = self.kc.kernel_info()
            deadline = time.monotonic() + self.stuck_timeout
            while (left := deadline - time.monotonic()) > 0:
                reply = await self.kc.shell_channel.get_msg(timeout=left)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return True
            return False

        try:
            return run_sync(ask)()
        except Exception:  # noqa: BLE001 - no answer in time, or no kernel: not responsive
            return False

    def _death_reason(self) -> str:
        from .sandbox import exit_reason

        reason = exit_reason(self.km) if self.km is not None else None
        return "crashed the kernel" + (f" ({reason})" if reason else
                                       " (a crash, or the sandbox's memory limit)")
