"""The course pipeline end to end: source notebooks, releases, autograding a class, feedback.

Every assignment's source is checked here; notebook 01's class carries the corpus of
honest and hostile submissions in corpus_01.py, graded through ``nbgrader autograde`` with
the course's own configuration (tests/support/class_grading.py). The perfect and blank submissions
of the other notebooks are graded in test_course_class.py, at the same time on the
suite's other worker. These run real kernels in short mode: several minutes.
"""

import csv
import re

import nbformat
import pytest
from nbgrader.api import Gradebook
from support import corpus_01
from support.class_grading import (
    ASSIGNMENTS,
    answers,
    build_submission,
    check_feedback_hides_hidden_tests,
    check_perfect_full_marks_blank_zero_everywhere,
    check_perfect_runs_cleanly,
    check_release_is_clean,
    corpus,
    grade_class,
    graded,
    make_course,
    nb_grader,
    notebook_text,
    report,
    source_path,
)

from gancourse.build import pipeline

ROOT = pipeline.ROOT
NB01 = "01_basic_gan"


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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_written_answers_carry_a_model_answer_and_rubric_after_a_locked_question(assignment):
    """The pattern of COURSE.md: a locked question, then a markdown answer cell graded by
    hand (1 point) whose source holds the model answer and the rubric."""
    nb = nbformat.read(source_path(assignment), as_version=4)
    written = [i for i, c in enumerate(nb.cells)
               if c.cell_type == "markdown" and nb_grader(c).get("solution")]
    for i in written:
        meta = nb_grader(nb.cells[i])
        assert meta.get("grade") and meta.get("points") == 1 and not meta.get("locked"), meta
        assert "*Model answer.*" in nb.cells[i].source and "*Rubric" in nb.cells[i].source
        question = nb.cells[i - 1]
        assert question.cell_type == "markdown" and nb_grader(question).get("locked")
        assert "graded by hand" in question.source
    if assignment == NB01:
        assert [nb_grader(nb.cells[i])["grade_id"] for i in written] == list(corpus_01.WRITTEN)


# --- notebook 01's class: the corpus, a broken notebook, feedback and export --------------

@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("course"), [NB01])
    release = nbformat.read(course / "release" / NB01 / f"{NB01}.ipynb", 4)
    good = answers(nbformat.read(source_path(NB01), 4))
    subs = {name: build_submission(release, good, spec) for name, spec in corpus().items()}
    subs["broken_json"] = "{ this is not a notebook"
    return grade_class(course, {NB01: subs})


def test_the_release_keeps_the_questions_and_hides_model_answers_and_rubrics(graded_class):
    release = nbformat.read(graded_class["course"] / "release" / NB01 / f"{NB01}.ipynb", 4)
    text = "\n".join(c.source for c in release.cells)
    assert "Model answer" not in text and "Rubric" not in text
    answers_ = {nb_grader(c)["grade_id"]: c.source for c in release.cells
                if c.cell_type == "markdown" and nb_grader(c).get("solution")}
    assert answers_ == dict.fromkeys(corpus_01.WRITTEN, "YOUR ANSWER HERE")
    assert text.count("point, graded by hand).**") == len(corpus_01.WRITTEN)


def test_the_release_is_clean(graded_class):
    check_release_is_clean(graded_class["course"], NB01)


def test_perfect_gets_full_marks_and_blank_zero_in_every_cell_unflagged(graded_class):
    check_perfect_full_marks_blank_zero_everywhere(graded_class, NB01)


def test_the_perfect_submission_runs_top_to_bottom_cleanly(graded_class):
    check_perfect_runs_cleanly(graded_class, NB01)


@pytest.mark.parametrize("student", list(corpus()))
def test_corpus_submission_gets_exactly_its_score_and_flag(graded_class, student):
    spec = corpus_01.SUBMISSIONS[student]
    course, assignment = graded_class["course"], NB01
    scores = pipeline.grades(course, assignment, student)[assignment]
    cells = {k: v[0] for k, v in scores["cells"].items() if k not in corpus_01.WRITTEN}
    assert cells == spec["expect"], (student, cells, graded_class["logs"][assignment][-3000:])
    assert {k: v for k, v in scores["cells"].items() if k in corpus_01.WRITTEN} == \
        {k: (0, p) for k, p in corpus_01.WRITTEN.items()}  # not graded by hand yet

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
        assert float(row["max_score"]) == sum(corpus_01.POINTS.values()) + \
            sum(corpus_01.WRITTEN.values())


def test_feedback_contains_no_hidden_tests_or_expected_values(graded_class):
    pages = check_feedback_hides_hidden_tests(graded_class)
    partial = pages[(NB01, "partial")]
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
