"""Every notebook but 01 (whose class, with its corpus, is graded in test_course.py): the
perfect and the blank submission graded through ``nbgrader autograde`` with the course's own
configuration, feedback generated. Real kernels in short mode: several minutes."""

import pytest
from support.class_grading import (
    ASSIGNMENTS,
    check_feedback_hides_hidden_tests,
    check_perfect_full_marks_blank_zero_everywhere,
    check_perfect_runs_cleanly,
    check_release_is_clean,
    grade_class,
    graded,
    make_course,
    perfect_and_blank,
)

OTHERS = [a for a in ASSIGNMENTS if a != "01_basic_gan"]


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("course"), OTHERS)
    return grade_class(course, {a: perfect_and_blank(course, a) for a in OTHERS})


@pytest.mark.parametrize("assignment", OTHERS)
def test_the_release_is_clean(graded_class, assignment):
    check_release_is_clean(graded_class["course"], assignment)


@pytest.mark.parametrize("assignment", OTHERS)
def test_perfect_gets_full_marks_and_blank_zero_in_every_cell_unflagged(graded_class,
                                                                       assignment):
    check_perfect_full_marks_blank_zero_everywhere(graded_class, assignment)


@pytest.mark.parametrize("assignment", OTHERS)
def test_the_perfect_submission_runs_top_to_bottom_cleanly(graded_class, assignment):
    check_perfect_runs_cleanly(graded_class, assignment)


def test_no_submission_changed_the_installed_package(graded_class):
    assert graded_class["package_changed"] == []


def test_every_submission_was_graded_and_has_feedback(graded_class):
    for assignment, subs in graded_class["students"].items():
        for student in subs:
            assert (graded(graded_class, assignment, student) / f"{assignment}.ipynb").exists()
    check_feedback_hides_hidden_tests(graded_class)
