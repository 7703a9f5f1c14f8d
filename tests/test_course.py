"""The course pipeline end to end: source notebook, release, autograding a class, feedback.

These run real kernels in short mode; together they take a few minutes.
"""

import csv
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from gantools import pipeline

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_basic_gan"
SOURCE = ROOT / "course" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
POINTS = {"test_build_generator": 1, "test_build_discriminator": 1,
          "test_discriminator_loss": 2, "test_generator_loss": 1, "test_train_step": 3}
ENV = {"GANCOURSE_CELL_TIMEOUT": "40"}


def nb_grader(cell):
    return cell.metadata.get("nbgrader", {})


def answers(nb) -> dict:
    """The source's answer code by grade_id, solution markers removed."""
    out = {}
    for cell in nb.cells:
        if nb_grader(cell).get("solution") and cell.cell_type == "code":
            lines = [x for x in cell.source.split("\n") if "### BEGIN SOLUTION" not in x
                     and "### END SOLUTION" not in x]
            out[nb_grader(cell)["grade_id"]] = "\n".join(lines)
    return out


def student_notebook(release, replace=None, tests=None):
    """A copy of the release with answer cells (and, for cheaters, test cells) replaced."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in nb.cells:
        gid = nb_grader(cell).get("grade_id")
        if replace and gid in replace:
            cell.source = replace[gid]
        if tests and gid in tests:
            cell.source = tests[gid]
    return nbformat.writes(nb)


# --- the source notebook ---------------------------------------------------------------------

def test_source_notebook_runs_top_to_bottom_and_every_test_passes(tmp_path):
    out = tmp_path / "executed.ipynb"
    seconds = pipeline.execute(SOURCE, out, short=True)
    nb = nbformat.read(out, as_version=4)
    tests = [c for c in nb.cells if nb_grader(c).get("grade") and not nb_grader(c).get("solution")]
    assert {nb_grader(c)["grade_id"]: nb_grader(c)["points"] for c in tests} == POINTS
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            assert output.output_type != "error", (nb_grader(cell), output.get("evalue"))
            if nb_grader(cell).get("grade"):
                assert not (output.output_type == "stream" and output.name == "stderr"), \
                    f"stderr in test cell {nb_grader(cell)}: {output.text[:300]}"
                assert output.output_type != "execute_result", "a value reads as partial credit"
    print(f"\nsource notebook, short mode: {seconds:.0f} s")
    first = nb.cells[0].source
    for heading in ("What you will learn", "Prerequisites", "Run time"):
        assert heading in first
    assert "Summary" in nb.cells[-1].source and "Further exercises" in nb.cells[-1].source


def test_source_is_stored_without_outputs_and_ids_are_unique():
    nb = nbformat.read(SOURCE, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    ids = [nb_grader(c)["grade_id"] for c in nb.cells if nb_grader(c)]
    assert len(ids) == len(set(ids))


# --- a small class ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "course" / "source", root / "source")
    pipeline.run_nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    return root


def test_every_graded_test_fails_on_the_blank_release(course):
    release = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    text = release.read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "hidden=True" not in text and "raise NotImplementedError()" in text
    proc = pipeline.run_nbgrader(course, "validate", "--invert", str(release), env=ENV)
    assert "Success! The notebook does not pass any tests." in proc.stdout, proc.stdout[-2000:]


UNSTABLE_D_LOSS = '''def discriminator_loss(real_logits, fake_logits):
    """log(sigmoid) written out: fine for moderate logits, inf for large ones."""
    real = -tf.math.log(tf.sigmoid(real_logits))
    fake = -tf.math.log(1.0 - tf.sigmoid(fake_logits))
    return tf.reduce_mean(real) + tf.reduce_mean(fake)'''

WRAPPER_D_LOSS = '''import gantools.losses as reference


def discriminator_loss(real_logits, fake_logits):
    return reference.discriminator_loss(real_logits, fake_logits)'''

RAISING_D = '''def build_discriminator(data_dim):
    raise ValueError("I gave up")'''

LOOPING_G_LOSS = '''def generator_loss(fake_logits):
    while True:
        pass'''


@pytest.fixture(scope="module")
def graded_class(course):
    """Submit seven students, autograde them all in one nbgrader call, export, feed back."""
    source = nbformat.read(SOURCE, as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    good = answers(source)
    name = f"{ASSIGNMENT}.ipynb"
    students = {
        "perfect": student_notebook(release, good),
        "blank": student_notebook(release),
        "partial": student_notebook(release, {
            "build_generator": good["build_generator"],
            "build_discriminator": good["build_discriminator"],
            "discriminator_loss": UNSTABLE_D_LOSS}),
        "edits_tests": student_notebook(
            release, {k: good[k] for k in ("discriminator_loss", "generator_loss")},
            tests={"test_build_generator": "pass", "test_train_step": "pass"}),
        "wraps_reference": student_notebook(release, {**good,
                                                      "discriminator_loss": WRAPPER_D_LOSS}),
        "raises_and_loops": student_notebook(release, {
            **good, "build_discriminator": RAISING_D, "generator_loss": LOOPING_G_LOSS}),
        "broken_json": "{ this is not a notebook",
    }
    pipeline.add_students(course, students)
    for student, text in students.items():
        pipeline.submit(course, ASSIGNMENT, student, {name: text})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                          cwd=course, capture_output=True, text=True, timeout=1800,
                          env={**__import__("os").environ, **ENV, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - start
    pipeline.run_nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    pipeline.run_nbgrader(course, "export", "--to", str(course / "grades.csv"))
    return {"students": students, "log": proc.stdout + proc.stderr, "seconds": seconds,
            "course": course}


EXPECTED = {
    "perfect": POINTS,
    "blank": dict.fromkeys(POINTS, 0),
    "partial": {**dict.fromkeys(POINTS, 0), "test_build_generator": 1,
                "test_build_discriminator": 1},
    "edits_tests": {**dict.fromkeys(POINTS, 0), "test_discriminator_loss": 2,
                    "test_generator_loss": 1},
    "wraps_reference": dict.fromkeys(POINTS, 0),
    "raises_and_loops": {**POINTS, "test_build_discriminator": 0, "test_generator_loss": 0},
}


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_submission_gets_exactly_its_score(graded_class, student):
    scores = pipeline.grades(graded_class["course"], ASSIGNMENT, student)[ASSIGNMENT]
    cells = {k: v[0] for k, v in scores["cells"].items() if k in POINTS}
    assert cells == EXPECTED[student], (student, cells)
    assert scores["score"] == sum(EXPECTED[student].values())


def test_a_broken_submission_is_reported_and_the_others_graded(graded_class):
    assert "broken_json" in graded_class["log"]
    autograded = graded_class["course"] / "autograded"
    graded = {p.parts[-3] for p in autograded.glob("*/*/*.ipynb")}
    assert graded == set(EXPECTED)  # every other student graded, the broken one not


def test_timeouts_and_errors_are_recorded_in_the_notebook(graded_class):
    nb = nbformat.read(graded_class["course"] / "autograded" / "raises_and_loops" / ASSIGNMENT
                       / f"{ASSIGNMENT}.ipynb", 4)
    text = nbformat.writes(nb)
    assert "CellTimeoutError" in text or "KeyboardInterrupt" in text
    assert "I gave up" in text


def test_grades_export_to_csv(graded_class):
    with open(graded_class["course"] / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    for student, expected in EXPECTED.items():
        assert float(rows[student]["raw_score"]) == sum(expected.values())
        assert float(rows[student]["max_score"]) == sum(POINTS.values())


def test_feedback_contains_no_hidden_tests_or_expected_values(graded_class):
    feedback = graded_class["course"] / "feedback"
    pages = {p.parts[-3]: p.read_text() for p in feedback.glob("*/*/*.html")}
    assert set(EXPECTED) <= set(pages)
    for student, html in pages.items():
        assert "HIDDEN TESTS" not in html and "hidden=True" not in html, student
    partial = pages["partial"]
    assert "numerically stable" in partial  # the hidden check's message, without numbers
    # the visible part of the hidden-failing cell passed, so no "expected ... got" appears
    assert not re.search(r"expected -?\d", partial)
