"""nbgrader plug-ins used by ``course/nbgrader_config.py``. They run in nbgrader's process.

Autograde runs, per notebook: nbgrader's sanitizing (its own locked cells restored from
the gradebook), then

1. :class:`EnforcePolicy`: every code cell that is not one of the release's own locked
   cells is checked by :mod:`gancourse.autograde.policy`; execution stops before the first
   cell that breaks it;
2. :class:`gancourse.autograde.execute.SandboxedExecute`: the notebook runs in a sandboxed
   kernel, with submission-wide limits, surviving faults;
3. :class:`ScoreStrictly`: a displayed value in a test cell earns nothing (nbgrader would
   read the first one as a partial grade), a warning on stderr costs nothing (nbgrader
   would score the cell 0), a test cell with an error scores 0, and every test cell at or
   after the first violation or fault gets an error naming it;
4. nbgrader's ``SaveAutoGrades``, then :class:`FlagForManualGrading`: the affected
   grades are marked as needing manual grading, and ``<notebook>.grading.json`` next to
   the graded notebook lists each violation (cell, line, rule) and fault (cell, reason).

:class:`RedactHiddenTests` runs when feedback is generated: it deletes hidden-test regions
from the test cells (nbgrader would otherwise show them to the student) and replaces the
tracebacks of those cells by the one-line message of the failed check, which never
contains expected values.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool

from ..checks import checks_file
from ..checks.evidence import EVIDENCE, agree
from .confine import cell_digest
from .execute import cell_label, error_output, state
from .policy import ANSWER, EXTRA, check_cell, imported_modules

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CHECK_CALL = re.compile(
    r'load\("(?P<assignment>[\w.-]+)"\)\.(?P<check>check_\w+)\((?P<args>[^()]*)\)')
HIDDEN_ARG = re.compile(r"hidden\s*=\s*True")


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbgrader(cell).get("solution"))


def is_test(cell) -> bool:
    meta = _nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def trusted_sources(resources) -> dict[str, str]:
    """The release's locked code cells, ``{grade_id: source}``, from the gradebook."""
    if "gantools_trusted" in resources:  # given directly (tests, tools without a gradebook)
        return resources["gantools_trusted"]
    from nbgrader.api import Gradebook

    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gb:
        notebook = gb.find_notebook(info["notebook"], info["assignment"])
        return {c.name: c.source for c in notebook.source_cells
                if c.locked and c.cell_type == "code"}


def is_trusted(cell, trusted: dict[str, str]) -> bool:
    """One of the release's own locked code cells, exactly as the gradebook holds it.

    Decided by the cell's id and its source alone: the ``locked`` and ``solution`` flags
    are metadata a student's editor can change, and nbgrader restores a test cell's source
    but not those flags.
    """
    gid = _nbgrader(cell).get("grade_id")
    return bool(cell.cell_type == "code" and gid in trusted and trusted[gid] == cell.source)


def policy_violations(nb, trusted: dict[str, str]) -> list[dict]:
    """Violations of every code cell that is not a trusted locked cell, in cell order.

    Names the trusted cells bind to modules (``np``, ``gd``...) are passed to the policy,
    so that attribute chains from them are followed too.
    """
    modules = {}
    for source in trusted.values():
        modules.update(imported_modules(source))
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_trusted(cell, trusted):
            continue
        kind = ANSWER if _nbgrader(cell).get("solution") else EXTRA
        for v in check_cell(cell.source, kind, modules):
            found.append({"cell_index": index, "cell": cell_label(nb, index), "kind": kind,
                          "line": v.line, "rule": v.rule, "detail": v.detail})
    return found


def affected_from(notes) -> int | None:
    """Index of the first cell with a violation or fault (None: the notebook is clean)."""
    indices = [v["cell_index"] for v in notes["violations"]]
    indices += [0 if f["cell_index"] is None else f["cell_index"] for f in notes["faults"]]
    return min(indices) if indices else None


def affected_tests(nb, notes) -> list[int]:
    """Indices of the test cells at or after the first violation or fault."""
    first = affected_from(notes)
    return [] if first is None else [i for i, c in enumerate(nb.cells)
                                     if is_test(c) and i >= first]


def _summary(notes) -> str:
    parts = [f"{v['cell']} line {v['line']}: {v['detail']} [{v['rule']}]"
             for v in notes["violations"]]
    parts += [f"{f['cell']}: {f['reason']}" for f in notes["faults"]]
    return "; ".join(parts)


def add_nonces(nb, trusted: dict[str, str], notes) -> None:
    """Give every hidden check call of a trusted test cell the grader's nonce.

    The nonce seeds the hidden inputs; the student's code runs before the test cell and so
    cannot know it. ``notes["nonces"]`` keeps it for :class:`VerifyValues`.
    """
    for index, cell in enumerate(nb.cells):
        if not (is_test(cell) and is_trusted(cell, trusted)):
            continue
        nonce = secrets.randbits(31)
        cell.source = HIDDEN_ARG.sub(f"hidden=True, nonce={nonce}", cell.source)
        notes.setdefault("nonces", {})[index] = nonce


def cell_allow(assignment: str | None) -> list:
    """The gantools functions an assignment's answer cells may call while it is graded:
    the literal ``CELL_ALLOW`` of its checks module, read without importing it."""
    if not assignment:
        return []
    path = checks_file(assignment)
    try:
        tree = ast.parse(path.read_text())
    except OSError:
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "CELL_ALLOW" for t in node.targets):
            return [list(pair) for pair in ast.literal_eval(node.value)]
    return []


class ForgetUnknownCells(Preprocessor):
    """Sanitizing: a cell whose nbgrader id the gradebook does not know loses its nbgrader
    metadata.

    nbgrader's OverwriteCells removes only the unknown ``grade_id``; the cell's other
    metadata then fails CheckCellMetadata and the whole submission goes ungraded. As a
    plain cell it is graded like any cell a student added: checked by the policy.
    """

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            meta = cell.get("metadata", {})
            if "nbgrader" in meta and not meta["nbgrader"].get("grade_id"):
                del meta["nbgrader"]
                self.log.warning("A cell with forged or stale nbgrader metadata is graded as "
                                 "an added cell: %s", cell.source[:60])
        return nb, resources


class EnforcePolicy(Preprocessor):
    """Check student-written cells against the policy; mark breaking cells as not to run;
    give hidden checks the grader's nonces."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        notes = state(resources)
        trusted = trusted_sources(resources)
        notes["violations"] = policy_violations(nb, trusted)
        runs_as_released = [i for i, c in enumerate(nb.cells) if is_trusted(c, trusted)]
        add_nonces(nb, trusted, notes)
        # the graded kernel's cell guard: every other cell runs with gantools switched off
        notes["guard"] = {
            "trusted": sorted({cell_digest(nb.cells[i].source) for i in runs_as_released}),
            "allow": cell_allow(resources.get("nbgrader", {}).get("assignment"))}
        for v in notes["violations"]:
            notes["skip"].setdefault(v["cell_index"], (
                f"not run: {v['cell']} breaks the grading policy at line {v['line']}: "
                f"{v['detail']} [{v['rule']}]. The notebook is flagged for manual grading."))
            self.log.warning("Policy violation in %s, line %d: %s [%s]", v["cell"],
                             v["line"], v["detail"], v["rule"])
        return nb, resources


def _records(cell) -> list[dict]:
    return [o["data"][EVIDENCE] for o in cell.get("outputs", [])
            if o.get("output_type") == "display_data" and EVIDENCE in o.get("data", {})]


def verify_values(cell, nonce, load_checks) -> str | None:
    """Compare, in this process, what a test cell's verified checks received with the
    reference; the reason of a disagreement, or None."""
    records = _records(cell)
    for call in CHECK_CALL.finditer(cell.source):
        checks = load_checks(call["assignment"])
        if call["check"] not in getattr(checks, "VERIFIED", ()):
            continue
        hidden = bool(HIDDEN_ARG.search(call["args"]))
        found = [r for r in records if r.get("check") == call["check"]
                 and r.get("hidden") == hidden]
        if not found:
            return (f"{call['check']}{' (hidden)' if hidden else ''} passed in the kernel, "
                    "but no record of what the code returned reached the grader")
        record = found[0]
        if hidden and record.get("seed") != nonce:
            return f"{call['check']} (hidden) ran on inputs other than the grader's"
        want = checks.expected(call["check"], int(record["seed"]), hidden)
        got = [float(v) for v in record.get("values", [])]
        if len(got) != len(want) or not all(agree(g, w) for g, w in zip(got, want,
                                                                          strict=True)):
            return (f"{call['check']}{' (hidden)' if hidden else ''} passed in the kernel, "
                    "but the grader's own comparison of the returned values disagrees "
                    "(was a comparison patched?)")
    return None


class VerifyValues(Preprocessor):
    """Recompute, outside the kernel, the verdicts of the checks that report values."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        from ..checks import load

        notes = state(resources)
        loaded = {}

        def load_checks(assignment):
            if assignment not in loaded:
                loaded[assignment] = load(assignment)
            return loaded[assignment]

        for index, cell in enumerate(nb.cells):
            if not is_test(cell) or index not in notes.get("nonces", {}) or any(
                    o.get("output_type") == "error" for o in cell.outputs):
                continue  # untrusted, or failed already: scores 0 anyway
            reason = verify_values(cell, notes["nonces"][index], load_checks)
            if reason:
                cell.outputs.append(error_output("GraderDisagrees", reason))
                notes["faults"].append({"cell_index": index, "cell": cell_label(nb, index),
                                        "reason": reason})
                self.log.warning("Grader disagrees at %s: %s", cell_label(nb, index), reason)
        return nb, resources


class ScoreStrictly(Preprocessor):
    """Only a clean test cell earns its points."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        notes = state(resources)
        affected = set(affected_tests(nb, notes))
        for index, cell in enumerate(nb.cells):
            if not is_test(cell):
                continue
            outputs = []
            for out in cell.outputs:
                if out.get("output_type") == "execute_result":  # shown, never a grade
                    out = new_output("display_data", data=out.get("data", {}),
                                     metadata=out.get("metadata", {}))
                elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                    # nbgrader scores a cell with any stderr 0: a library's warning while a
                    # correct answer is checked is no failure (a failed check raises)
                    out = new_output("stream", name="stdout", text=out.get("text", ""))
                outputs.append(out)
            if index in affected:
                outputs.insert(0, error_output(
                    "NotCredited", "no credit: this test runs after code that broke the "
                    "grading policy or faulted; flagged for manual grading. " + _summary(notes)))
            cell.outputs = outputs
        return nb, resources


class FlagForManualGrading(Preprocessor):
    """Mark affected grades as needing manual grading and write the notebook's report."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        notes = state(resources)
        affected = [_nbgrader(nb.cells[i])["grade_id"] for i in affected_tests(nb, notes)]
        info = resources.get("nbgrader", {})
        if affected and "db_url" in info:
            from nbgrader.api import Gradebook

            with Gradebook(info["db_url"]) as gb:
                for gid in affected:
                    grade = gb.find_grade(gid, info["notebook"], info["assignment"],
                                          info["student"])
                    grade.needs_manual_grade = True
                gb.db.commit()
        flagged = affected_from(notes) is not None
        report = {"flagged": flagged, "affected_tests": affected,
                  "violations": notes["violations"], "faults": notes["faults"]}
        folder = resources.get("metadata", {}).get("path")
        if folder and "notebook" in info:
            path = Path(folder) / f"{info['notebook']}.grading.json"
            path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        if flagged:
            self.log.warning("FLAGGED for manual grading (%s): %s", ", ".join(affected),
                             _summary(notes))
        resources["gantools_report"] = report
        return nb, resources


def strip_hidden(source: str) -> tuple[str, bool]:
    """Remove ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` regions."""
    kept, inside, removed = [], False, False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            inside, removed = True, True
            continue
        if HIDDEN_END in line:
            inside = False
            continue
        if not inside:
            kept.append(line)
    return "\n".join(kept).rstrip(), removed


class RedactHiddenTests(Preprocessor):
    """Keep hidden tests and their tracebacks out of the feedback."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.source, removed = strip_hidden(cell.source)
            if not removed:
                continue
            if not cell.source.strip():
                cell.source = "# (hidden tests)"
            outputs = []
            for output in cell.outputs:
                if EVIDENCE in output.get("data", {}):
                    continue  # the record for the grader, not for the student
                if output.get("output_type") == "error":
                    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                    output = new_output("error", ename=output.get("ename", "Error"),
                                        evalue=output.get("evalue", ""),
                                        traceback=[f"A test failed. {text}"])
                elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                    continue
                outputs.append(output)
            cell.outputs = outputs
        return nb, resources
