"""The course pipeline end to end: source notebooks, releases, autograding a class, feedback.

Every assignment in course/source/ is checked the same way; notebook 01 also carries the
corpus of honest and hostile submissions in corpus_01.py, graded through
``nbgrader autograde`` with the course's own configuration. These run real kernels in
short mode; together they take several minutes.
"""

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import corpus_01
import nbformat
import pytest
from nbgrader.api import Gradebook

from gantools import pipeline
from gantools.grading.execute import PackageSnapshot
from gantools.grading.sandbox import sandbox_available

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = pipeline.assignments()
ENV = {"GANCOURSE_CELL_TIMEOUT": "40", "GANCOURSE_SUBMISSION_TIMEOUT": "400",
       "TF_CPP_MIN_LOG_LEVEL": "2"}


def source_path(assignment):
    return ROOT / "course" / "source" / assignment / f"{assignment}.ipynb"


def nb_grader(cell):
    return cell.metadata.get("nbgrader", {})


def points(nb) -> dict:
    return {nb_grader(c)["grade_id"]: nb_grader(c)["points"] for c in nb.cells
            if nb_grader(c).get("grade") and not nb_grader(c).get("solution")}


def answers(nb) -> dict:
    """The source's answer code by grade_id, solution markers removed."""
    out = {}
    for cell in nb.cells:
        if nb_grader(cell).get("solution") and cell.cell_type == "code":
            lines = [x for x in cell.source.split("\n") if "### BEGIN SOLUTION" not in x
                     and "### END SOLUTION" not in x]
            out[nb_grader(cell)["grade_id"]] = "\n".join(lines)
    return out


# --- the source notebooks -----------------------------------------------------------------

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_is_clean_ids_unique_and_every_code_cell_answer_or_locked(assignment):
    nb = nbformat.read(source_path(assignment), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    ids = [nb_grader(c)["grade_id"] for c in nb.cells if nb_grader(c)]
    assert len(ids) == len(set(ids))
    loose = pipeline.unlocked_code_cells(source_path(assignment))
    assert not loose, ("code cells that are neither answers nor locked would run unchecked "
                       f"at autograde; lock them: {loose}")
    first = nb.cells[0].source
    for heading in ("What you will learn", "Prerequisites", "Run time"):
        assert heading in first
    assert "Summary" in nb.cells[-1].source and "Further exercises" in nb.cells[-1].source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_only_call_the_checks_of_their_notebook(assignment):
    nb = nbformat.read(source_path(assignment), as_version=4)
    for cell in nb.cells:
        if nb_grader(cell).get("grade") and not nb_grader(cell).get("solution"):
            assert cell.source.startswith('"""'), "a test cell opens with a one-line docstring"
            calls = re.findall(r'load\("([^"]+)"\)', cell.source)
            assert calls and set(calls) == {assignment}, cell.source


# --- a class: every assignment's perfect and blank submission, and notebook 01's corpus ---

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "course" / "source", root / "source")
    for assignment in ASSIGNMENTS:
        pipeline.run_nbgrader(root, "generate_assignment", assignment, "--force")
    return root


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_test_fails_on_the_blank_release(course, assignment):
    release = course / "release" / assignment / f"{assignment}.ipynb"
    text = release.read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "hidden=True" not in text and "raise NotImplementedError()" in text
    proc = pipeline.run_nbgrader(course, "validate", "--invert", str(release), env=ENV)
    assert "Success! The notebook does not pass any tests." in proc.stdout, proc.stdout[-2000:]


def build_submission(release, good, spec):
    """The release changed as ``spec`` (see corpus_01.SUBMISSIONS) says."""
    nb = copy.deepcopy(release)
    replace = dict(good) if spec.get("good") else {}
    replace.update({k: good[k] if v == "GOOD" else v
                    for k, v in spec.get("replace", {}).items()})
    for cell in nb.cells:
        gid = nb_grader(cell).get("grade_id")
        if gid in replace:
            cell.source = replace[gid]
        if gid in spec.get("tests", {}):
            cell.source = spec["tests"][gid]
        if gid in spec.get("unlock", {}):
            cell.source = spec["unlock"][gid]
            del cell.metadata["nbgrader"]
    for after, source, *meta in reversed(spec.get("add", [])):
        index = next(i for i, c in enumerate(nb.cells) if nb_grader(c).get("grade_id") == after)
        added = nbformat.v4.new_code_cell(source)
        if meta:
            added.metadata["nbgrader"] = meta[0]
        nb.cells.insert(index + 1, added)
    if spec.get("shuffle_counts"):
        code = [c for c in nb.cells if c.cell_type == "code"]
        for count, cell in zip(range(len(code), 0, -1), code, strict=True):
            cell.execution_count = count * 7 % 23
    return nbformat.writes(nb)


def corpus():
    subs = dict(corpus_01.SUBMISSIONS)
    if not sandbox_available():  # without the sandbox these writes would really happen
        subs.pop("attack_file_system")
    return subs


@pytest.fixture(scope="module")
def graded_class(course):
    """Submit the class, autograde every assignment in one nbgrader call each, export,
    generate feedback."""
    snapshot = PackageSnapshot()
    students = {}
    for assignment in ASSIGNMENTS:
        release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
        good = answers(nbformat.read(source_path(assignment), 4))
        specs = corpus() if assignment == "01_basic_gan" else {
            "perfect": {"good": True}, "blank": {}}
        subs = {name: build_submission(release, good, spec) for name, spec in specs.items()}
        if assignment == "01_basic_gan":
            subs["broken_json"] = "{ this is not a notebook"
        for student, text in subs.items():
            pipeline.submit(course, assignment, student, {f"{assignment}.ipynb": text})
        students[assignment] = subs
    logs, seconds = {}, {}
    for assignment in ASSIGNMENTS:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment],
                              cwd=course, capture_output=True, text=True, timeout=3000,
                              env={**os.environ, **ENV})
        seconds[assignment] = time.perf_counter() - start
        logs[assignment] = proc.stdout + proc.stderr
        print(f"\nautograde {assignment}: {len(students[assignment])} submissions in "
              f"{seconds[assignment]:.0f} s")
    for assignment in ASSIGNMENTS:
        pipeline.run_nbgrader(course, "generate_feedback", assignment, "--force")
    pipeline.run_nbgrader(course, "export", "--to", str(course / "grades.csv"))
    return {"students": students, "logs": logs, "seconds": seconds, "course": course,
            "package_changed": snapshot.restore()}


def graded(graded_class, assignment, student):
    return graded_class["course"] / "autograded" / student / assignment


def report(graded_class, assignment, student):
    return json.loads((graded(graded_class, assignment, student)
                       / f"{assignment}.grading.json").read_text())


def notebook_text(graded_class, assignment, student):
    return (graded(graded_class, assignment, student) / f"{assignment}.ipynb").read_text()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_perfect_gets_full_marks_and_blank_zero_unflagged(graded_class, assignment):
    for student, full in (("perfect", True), ("blank", False)):
        scores = pipeline.grades(graded_class["course"], assignment, student)[assignment]
        assert scores["score"] == (scores["max_score"] if full else 0), (student, scores)
        assert not report(graded_class, assignment, student)["flagged"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_perfect_submission_runs_top_to_bottom_cleanly(graded_class, assignment):
    """The reference answers in short mode, as autograde ran them (every cell of the source,
    hidden tests included): no cell fails, test cells print neither to stderr nor a value,
    and the setup cell prints no start-up noise."""
    nb = nbformat.reads(notebook_text(graded_class, assignment, "perfect"), as_version=4)
    assert points(nb), "an assignment needs graded test cells"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "every code cell ran"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", (nb_grader(cell), output.get("evalue"))
            if nb_grader(cell).get("grade"):
                assert not (output.output_type == "stream" and output.name == "stderr"), \
                    f"stderr in test cell {nb_grader(cell)}: {output.text[:300]}"
                assert output.output_type != "execute_result", "a value reads as partial credit"
    noise = [o.text for o in code[0].outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not noise, f"the setup cell prints start-up noise: {noise}"


@pytest.mark.parametrize("student", list(corpus()))
def test_corpus_submission_gets_exactly_its_score_and_flag(graded_class, student):
    spec = corpus_01.SUBMISSIONS[student]
    course, assignment = graded_class["course"], "01_basic_gan"
    scores = pipeline.grades(course, assignment, student)[assignment]
    cells = {k: v[0] for k, v in scores["cells"].items()}
    assert cells == spec["expect"], (student, cells, graded_class["logs"][assignment][-3000:])

    found = report(graded_class, assignment, student)
    should_flag = "flagged" in spec or "faults" in spec
    assert found["flagged"] == should_flag, (student, found)
    violations = " | ".join(f"{v['detail']} [{v['rule']}]" for v in found["violations"])
    for needle in spec.get("flagged", []):
        assert needle in violations, (student, needle, violations)
    if "flagged_cells" in spec:
        assert len({v["cell_index"] for v in found["violations"]}) == spec["flagged_cells"]
    reasons = " | ".join(f["reason"] for f in found["faults"])
    for needle in spec.get("faults", []):
        assert needle in reasons, (student, needle, reasons)
    if not should_flag:
        assert not found["violations"] and not found["faults"]

    # the gradebook says the same: affected grades need a person, the others do not
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        manual = sorted(g.name for g in nb.grades if g.needs_manual_grade)
    assert manual == sorted(found["affected_tests"])
    assert bool(manual) == should_flag

    text = notebook_text(graded_class, assignment, student)
    for needle in spec.get("outputs", []):
        assert needle in text, (student, needle)


def test_file_system_attacks_reach_nothing(graded_class):
    if "attack_file_system" not in corpus():
        pytest.skip("bubblewrap is not installed: the file-system sandbox is not in place")
    course = graded_class["course"]
    text = notebook_text(graded_class, "01_basic_gan", "attack_file_system")
    for needle in corpus_01.SUBMISSIONS["attack_file_system"]["sandboxed_outputs"]:
        assert needle in text, needle
    assert "WROTE ../" not in text and "READ " not in text and f"WROTE {ROOT}" not in text
    assert not (course / "source" / "01_basic_gan" / "stolen.png").exists()
    assert not (graded(graded_class, "01_basic_gan", "attack_file_system")
                / "written_here.png").exists()  # it went to the kernel's private copy
    assert not (graded(graded_class, "01_basic_gan", "perfect") / "x.png").exists()


def test_no_submission_changed_the_installed_package(graded_class):
    assert graded_class["package_changed"] == []


def test_a_broken_submission_is_reported_and_the_others_graded(graded_class):
    assert "broken_json" in graded_class["logs"]["01_basic_gan"]
    autograded = graded_class["course"] / "autograded"
    for assignment, subs in graded_class["students"].items():
        done = {p.parts[-3] for p in autograded.glob(f"*/{assignment}/*.ipynb")}
        assert done == set(subs) - {"broken_json"}


def test_grades_export_to_csv(graded_class):
    with open(graded_class["course"] / "grades.csv") as f:
        rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}
    for student, spec in corpus().items():
        row = rows[("01_basic_gan", student)]
        assert float(row["raw_score"]) == sum(spec["expect"].values())
        assert float(row["max_score"]) == sum(corpus_01.POINTS.values())


def test_feedback_contains_no_hidden_tests_or_expected_values(graded_class):
    feedback = graded_class["course"] / "feedback"
    pages = {(p.parts[-2], p.parts[-3]): p.read_text() for p in feedback.glob("*/*/*.html")}
    for assignment, subs in graded_class["students"].items():
        assert {(assignment, s) for s in subs} - {(assignment, "broken_json")} <= set(pages)
    for key, html in pages.items():
        assert "HIDDEN TESTS" not in html and "hidden=True" not in html, key
    partial = pages[("01_basic_gan", "partial")]
    assert "numerically stable" in partial  # the hidden check's message, without numbers
    assert not re.search(r"expected -?\d", partial)



def test_an_unlocked_code_cell_is_found(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\ny = 2"),
                                         nbformat.v4.new_code_cell("z = 3")])
    nb.cells[1].metadata["nbgrader"] = {"locked": True, "grade_id": "z", "grade": False,
                                        "solution": False, "schema_version": 3}
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert pipeline.unlocked_code_cells(tmp_path / "n.ipynb") == ["x = 1"]


def test_building_an_unknown_assignment_names_the_ones_there(capsys):
    """`make course ONLY=...` with a typo: a clear error listing the assignments, no build."""
    assert pipeline.main(["--only", "04_lsgann"]) == 2
    error = capsys.readouterr().err
    assert "no assignment named 04_lsgann" in error and "01_basic_gan" in error
