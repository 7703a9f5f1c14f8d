"""The attacks of tests/support/attacks.py, autograded through nbgrader with the course's
configuration and the sandbox: each earns nothing (or is flagged), the honest notebooks get
every point and no flag.

The notebooks are the real sources of 03, 05 and 07, trimmed to their setup, answers and
tests (tests/support/attacks.py says why), in a temporary course with the real nbgrader_config.py.
"""

import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook
from support import attacks
from support.class_grading import (
    ROOT,
    answers,
    build_submission,
    grade_class,
    nb_grader,
    notebook_text,
    report,
    source_path,
)

from gancourse.autograde.sandbox import sandbox_available
from gancourse.build import pipeline

CASES = [(assignment, student) for assignment, subs in attacks.SUBMISSIONS.items()
         for student in subs]


def trimmed(assignment):
    """The source notebook with only its setup, answers and tests."""
    nb = nbformat.read(source_path(assignment), as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code" and (
        nb_grader(c).get("grade_id") in attacks.KEPT or nb_grader(c).get("solution")
        or nb_grader(c).get("grade"))]
    for after, grade_id, source in attacks.NOTEBOOK_CALLS.get(assignment, []):
        index = next(i for i, c in enumerate(nb.cells) if nb_grader(c).get("grade_id") == after)
        added = nbformat.v4.new_code_cell(source)
        added.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": True,
                                      "schema_version": 3, "solution": False, "task": False}
        nb.cells.insert(index + 1, added)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not sandbox_available():
        pytest.skip("bubblewrap cannot run here: these attacks are graded in the sandbox")
    course = tmp_path_factory.mktemp("attacks")
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")
    classes = {}
    for assignment, subs in attacks.SUBMISSIONS.items():
        folder = course / "source" / assignment
        folder.mkdir(parents=True)
        nbformat.write(trimmed(assignment), folder / f"{assignment}.ipynb")
        pipeline.run_nbgrader(course, "generate_assignment", assignment, "--force")
        release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
        good = answers(nbformat.read(source_path(assignment), 4))
        classes[assignment] = {student: build_submission(release, good, spec)
                               for student, spec in subs.items()}
    return grade_class(course, classes)


@pytest.mark.parametrize("assignment, student", CASES)
def test_attack_earns_nothing_and_honest_work_everything(graded, assignment, student):
    spec = attacks.SUBMISSIONS[assignment][student]
    course = graded["course"]
    scores = pipeline.grades(course, assignment, student)[assignment]
    cells = {k: v[0] for k, v in scores["cells"].items()}
    assert cells == spec["expect"], (student, cells, graded["logs"][assignment][-3000:])

    found = report(graded, assignment, student)
    assert found["flagged"] == ("flagged" in spec), (student, found)
    violations = " | ".join(f"{v['detail']} [{v['rule']}]" for v in found["violations"])
    for needle in spec.get("flagged", []):
        assert needle in violations, (student, needle, violations)
    if "flagged" not in spec:
        assert not found["violations"] and not found["faults"], (student, found)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        manual = sorted(g.name for g in nb.grades if g.needs_manual_grade)
    assert manual == sorted(found["affected_tests"])

    text = outputs_text(nbformat.reads(notebook_text(graded, assignment, student), 4))
    for needle in spec.get("outputs", []):
        assert needle in text, (student, needle)
    for needle in spec.get("absent", []):
        assert needle not in text, (student, needle)


def outputs_text(nb) -> str:
    """Everything the graded cells printed, showed or raised (not their sources)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts += [out.get("text", ""), out.get("evalue", ""),
                      str(out.get("data", {}).get("text/plain", ""))]
    return "\n".join(parts)


def test_no_attack_changed_the_installed_package(graded):
    assert graded["package_changed"] == []
