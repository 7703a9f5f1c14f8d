"""Grading a class through the course's real pipeline, shared by the course tests.

A temporary course (the real ``nbgrader_config.py`` and ``source/``), its releases, a class
of submissions built from them, one ``nbgrader autograde`` per assignment, feedback and an
export. ``tests/course/test_course.py`` grades notebook 01 with its corpus of honest and hostile
submissions (corpus_01.py); ``tests/course/test_course_class.py`` the perfect and the blank
submission of every other notebook. They are two modules so that the suite's two workers
(pytest-xdist, ``--dist loadfile``) grade them at the same time.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from gancourse.autograde.execute import PackageSnapshot
from gancourse.autograde.sandbox import sandbox_available
from gancourse.build import pipeline
from support import corpus_01

ROOT = Path(__file__).resolve().parents[2]
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
    for gid, changes in spec.get("meta", {}).items():  # metadata a student's editor changed
        cell = next(c for c in nb.cells if nb_grader(c).get("grade_id") == gid)
        for key, value in changes.items():
            if key in ("editable", "deletable"):
                cell.metadata[key] = value
            else:
                cell.metadata["nbgrader"][key] = value
    for gid, after in spec.get("move", {}).items():  # cells a student moved
        index = next(i for i, c in enumerate(nb.cells) if nb_grader(c).get("grade_id") == gid)
        cell = nb.cells.pop(index)
        target = next(i for i, c in enumerate(nb.cells)
                      if nb_grader(c).get("grade_id") == after)
        nb.cells.insert(target + 1, cell)
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


def make_course(root: Path, assignments) -> Path:
    """A course copy with the real configuration and sources, its releases generated."""
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "course" / "source", root / "source")
    for assignment in assignments:
        pipeline.run_nbgrader(root, "generate_assignment", assignment, "--force")
    return root


def grade_class(course: Path, classes: dict) -> dict:
    """Submit ``{assignment: {student: notebook text}}``, autograde every assignment in one
    nbgrader call each, generate feedback and export the grades."""
    snapshot = PackageSnapshot()
    for assignment, subs in classes.items():
        for student, text in subs.items():
            pipeline.submit(course, assignment, student, {f"{assignment}.ipynb": text})
    logs, seconds = {}, {}
    for assignment, subs in classes.items():
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment],
                              cwd=course, capture_output=True, text=True, timeout=3000,
                              env={**os.environ, **ENV})
        seconds[assignment] = time.perf_counter() - start
        logs[assignment] = proc.stdout + proc.stderr
        print(f"\nautograde {assignment}: {len(subs)} submissions in "
              f"{seconds[assignment]:.0f} s")
    for assignment in classes:
        pipeline.run_nbgrader(course, "generate_feedback", assignment, "--force")
    pipeline.run_nbgrader(course, "export", "--to", str(course / "grades.csv"))
    # In the sandbox the package is read-only to every kernel, so nothing may have changed
    # it; a change is reported, not reverted (it would be someone's edit during the run).
    return {"students": classes, "logs": logs, "seconds": seconds, "course": course,
            "package_changed": snapshot.changed() if sandbox_available()
            else snapshot.restore()}


def perfect_and_blank(course: Path, assignment: str) -> dict:
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
    good = answers(nbformat.read(source_path(assignment), 4))
    return {name: build_submission(release, good, spec)
            for name, spec in {"perfect": {"good": True}, "blank": {}}.items()}


def graded(graded_class, assignment, student):
    return graded_class["course"] / "autograded" / student / assignment


def report(graded_class, assignment, student):
    return json.loads((graded(graded_class, assignment, student)
                       / f"{assignment}.grading.json").read_text())


def notebook_text(graded_class, assignment, student):
    return (graded(graded_class, assignment, student) / f"{assignment}.ipynb").read_text()


def check_release_is_clean(course, assignment):
    text = (course / "release" / assignment / f"{assignment}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "hidden=True" not in text and "raise NotImplementedError()" in text


def check_perfect_full_marks_blank_zero_everywhere(graded_class, assignment):
    """The reference answers get every autograded point, the blank release no point in any
    graded cell (each of its tests fails), and neither is flagged. Written answers count 0
    until an instructor grades them."""
    for student, full in (("perfect", True), ("blank", False)):
        scores = pipeline.grades(graded_class["course"], assignment, student)[assignment]
        assert scores["auto_score"] == (scores["auto_max"] if full else 0), (student, scores)
        assert scores["score"] == scores["auto_score"], (student, scores)
        assert not report(graded_class, assignment, student)["flagged"]
        if not full:
            earned = {k: s for k, (s, _) in scores["cells"].items() if s}
            assert scores["cells"] and not earned, f"graded cells the blank passes: {earned}"


def check_perfect_runs_cleanly(graded_class, assignment):
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


def check_feedback_hides_hidden_tests(graded_class):
    feedback = graded_class["course"] / "feedback"
    pages = {(p.parts[-2], p.parts[-3]): p.read_text() for p in feedback.glob("*/*/*.html")}
    for assignment, subs in graded_class["students"].items():
        assert {(assignment, s) for s in subs} - {(assignment, "broken_json")} <= set(pages)
    for key, html in pages.items():
        assert "HIDDEN TESTS" not in html and "hidden=True" not in html, key
    return pages
