"""nbgrader plug-ins used by ``course/nbgrader_config.py``.

:class:`DetectTampering` runs at autograde time, after the notebook was executed and
before the grades are saved, in the grader's own process where a student's code cannot
reach it. An answer cell that imports or touches gantools, patches functions
(``__code__``, ``setattr``, ``sys.modules``, ``builtins``) or calls the grading code
makes every test cell of the notebook fail, with a message naming the cell and what was
found. Answer cells are written with TensorFlow and Keras alone.

:class:`RedactHiddenTests` runs when feedback is generated: it deletes hidden-test
regions from the test cells (nbgrader would otherwise show them to the student) and
replaces the tracebacks of those cells by the one-line message of the failed check,
which never contains expected values.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool

# What an answer cell must not contain, with the reason shown to the student.
FORBIDDEN = [
    (re.compile(r"\bgantools\b"), "uses gantools (answers are written with TensorFlow/Keras)"),
    (re.compile(r"__code__|__globals__|__builtins__"), "rewrites function internals"),
    (re.compile(r"\bsetattr\s*\(|\bdelattr\s*\("), "changes attributes with setattr/delattr"),
    (re.compile(r"\bsys\s*\.\s*modules\b"), "edits sys.modules"),
    (re.compile(r"\bimport\s+builtins\b|\bimportlib\b"), "reaches for builtins or importlib"),
]
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(_nbgrader(cell).get("solution"))


def is_test(cell) -> bool:
    meta = _nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def find_tampering(nb) -> list[str]:
    """Descriptions of forbidden code found in the notebook's answer cells."""
    found = []
    for cell in nb.cells:
        if not is_answer(cell):
            continue
        for pattern, reason in FORBIDDEN:
            match = pattern.search(cell.source)
            if match:
                cell_id = _nbgrader(cell).get("grade_id", "?")
                found.append(f"answer cell '{cell_id}' {reason} ({match.group(0)!r})")
    return found


class DetectTampering(Preprocessor):
    """Fail every test cell of a notebook whose answer cells tamper with the grading."""

    # nbconvert skips preprocessors that are not enabled (its default is False)
    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        found = find_tampering(nb)
        if found:
            message = ("Tests not run: " + "; ".join(found) + ". Write the answers with "
                       "TensorFlow/Keras only and leave gantools and the grading code alone.")
            for cell in nb.cells:
                if is_test(cell):
                    cell.outputs = [new_output("error", ename="TamperingDetected",
                                               evalue=message, traceback=[message])]
            self.log.warning("%s", message)
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
