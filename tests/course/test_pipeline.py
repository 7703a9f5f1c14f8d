"""``make course`` (gancourse.build.pipeline) on a one-cell assignment: what it rebuilds and
what it leaves alone; and the entry points under their new and old names.

The assignment is tiny so that every stage runs for real (nbgrader, the course's kernel and
configuration, the sandboxed autograde) in seconds: the release, the executed solution with
its fingerprint, and the self-check in a temporary copy of the course.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from support.tiny_course import NAME, cell, tiny_notebook

from gancourse.build import pipeline

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    (root / "source" / NAME).mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(tiny_notebook(), root / "source" / NAME / f"{NAME}.ipynb")
    return root


def build(course, **kw):
    lines = []
    rows = pipeline.build(course, course.parent / "solutions", workers=1, log=lines.append, **kw)
    return rows, "\n".join(lines)


def stage(log, name):
    """What the build said about ``name`` (release, solution, self-check), line by line."""
    lines = [line.split(None, 2) for line in log.splitlines() if line.startswith(NAME)]
    return [text for _, said, text in lines if said == name]


# nbgrader's own add_submission warns about its session while it fills the gradebook
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_build_reuses_what_is_up_to_date_and_never_touches_the_live_gradebook(course):
    solution = course.parent / "solutions" / f"{NAME}.ipynb"
    pipeline.add_students(course, ["solution-check"])  # what builds before this one left

    rows, log = build(course)
    assert [(r["solution"], r["blank"], r["max"]) for r in rows] == [(1, 0, 1)]
    assert stage(log, "release")[0].startswith("generated")
    assert stage(log, "solution")[-1].startswith("executed")
    assert stage(log, "self-check")[-1].startswith("passed: solution 1/1, blank 0")
    assert "removed solution-check" in log
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert [s.id for s in gb.students] == []  # the self-check graded elsewhere
        assert [a.name for a in gb.assignments] == [NAME]
    record = pipeline.recorded(solution)
    assert f"course/source/{NAME}/{NAME}.ipynb" in record["inputs"]
    assert {"gantools/__init__.py", "gantools/runtime.py"} <= set(record["imported"])
    assert record["fingerprint"] == pipeline.fingerprint(record["inputs"])
    executed = nbformat.read(solution, 4)
    assert executed.cells[0].source.startswith(pipeline.BANNER)
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code")
    assert "gancourse" not in nbformat.reads(pipeline.as_submission(solution), 4).metadata

    before = solution.read_bytes()
    rows, log = build(course)
    assert stage(log, "release") == ["up to date"]
    assert stage(log, "solution")[0].startswith("up to date")
    assert stage(log, "self-check")[0].startswith("up to date")
    assert solution.read_bytes() == before  # an unchanged build writes nothing
    assert rows[0]["solution_run"] == "reused" and rows[0]["self_check"] == "cached"

    # the text changed, not the code: a new release, the solution's text refreshed in place
    nbformat.write(tiny_notebook("Squares, revised"), course / "source" / NAME / f"{NAME}.ipynb")
    rows, log = build(course)
    assert stage(log, "release")[0].startswith("generated")
    assert stage(log, "solution")[0].startswith("text refreshed")
    refreshed = nbformat.read(solution, 4)
    assert refreshed.cells[1].source == "# Squares, revised"
    assert [c.outputs for c in refreshed.cells if c.cell_type == "code"] == \
        [c.outputs for c in executed.cells if c.cell_type == "code"]
    assert rows[0]["solution_run"] == "text refreshed" and rows[0]["self_check"] == "ran"

    # a student has the release: a changed source is not released over their copy
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.add_student("alice")
        gb.add_submission(NAME, "alice")
    release = (course / "release" / NAME / f"{NAME}.ipynb").read_bytes()
    before = solution.read_bytes()
    changed = tiny_notebook("Squares, revised")
    changed.cells[1].source = "import math  # for isfinite"
    nbformat.write(changed, course / "source" / NAME / f"{NAME}.ipynb")
    with pytest.raises(pipeline.PipelineError, match=r"(?s)alice.*RERELEASE=1"):
        build(course)
    assert (course / "release" / NAME / f"{NAME}.ipynb").read_bytes() == release
    assert solution.read_bytes() == before

    rows, log = build(course, rerelease=True)  # asked for: everything downstream reruns
    assert stage(log, "release")[0].startswith("regenerated")
    assert f"course/source/{NAME}/{NAME}.ipynb changed" in stage(log, "solution")[0]
    assert "# for isfinite" in nbformat.read(solution, 4).cells[2].source
    assert rows[0]["solution_run"] == "executed" and rows[0]["self_check"] == "ran"
    assert pipeline.gradebook_students(course) == ["alice"]


def test_an_imported_file_or_a_data_file_that_changes_makes_a_solution_stale(tmp_path):
    root = tmp_path
    (root / "gantools" / "weights").mkdir(parents=True)
    (root / "gantools" / "a.py").write_text("A = 1")
    (root / "gantools" / "b.py").write_text("B = 1")
    (root / "gantools" / "weights" / "w.json").write_text("[1]")
    course = root / "course"
    (course / "source" / NAME).mkdir(parents=True)
    nbformat.write(tiny_notebook(), course / "source" / NAME / f"{NAME}.ipynb")
    kw = {"root": root, "package": root / "gantools"}
    inputs = pipeline.solution_inputs(course, NAME, ["gantools/a.py"], **kw)
    assert sorted(inputs) == [f"course/source/{NAME}/{NAME}.ipynb", "gantools/a.py",
                              "gantools/weights/w.json"]
    assert inputs[f"course/source/{NAME}/{NAME}.ipynb"].startswith("code:")
    record = {"imported": ["gantools/a.py"], "inputs": inputs}
    assert pipeline.stale_inputs(course, NAME, record, **kw) == []
    (root / "gantools" / "b.py").write_text("B = 2")  # not imported by the notebook
    assert pipeline.stale_inputs(course, NAME, record, **kw) == []
    (root / "gantools" / "a.py").write_text('"""The value A."""\n\nA = 1  # one\n')
    assert pipeline.stale_inputs(course, NAME, record, **kw) == []  # text, not code
    (root / "gantools" / "a.py").write_text("A = 2")
    (root / "gantools" / "weights" / "w.json").write_text("[2]")
    assert pipeline.stale_inputs(course, NAME, record, **kw) == [
        "gantools/a.py", "gantools/weights/w.json"]
    (root / "gantools" / "a.py").unlink()
    assert "gantools/a.py" in pipeline.stale_inputs(course, NAME, record, **kw)
    assert pipeline.stale_inputs(course, NAME, {}, **kw) == ["no fingerprint recorded"]


@pytest.mark.parametrize("module, prog", [
    ("gancourse.build", "python -m gancourse.build"),
    ("gantools.pipeline", "python -m gancourse.build"),  # the name scripts used before
    ("gancourse.classgrade", "python -m gancourse.classgrade"),
    ("gantools.grade", "python -m gancourse.classgrade"),
])
def test_entry_points_answer_under_their_new_and_old_names(module, prog):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog} "), proc.stdout[:200]


def released_before_the_split():
    """A notebook as released before the course machinery left gantools: its setup cell
    imports ``gantools.course``, its test cell ``gantools.grading``."""
    nb = tiny_notebook("Losses")
    nb.cells[1:] = [
        cell("import tensorflow as tf\nfrom gantools.course import budget\n"
             "STEPS = budget(100, short=2)", grade_id="setup", locked=True),
        cell("def discriminator_loss(real_logits, fake_logits):\n    ### BEGIN SOLUTION\n"
             "    return (tf.reduce_mean(tf.nn.softplus(-real_logits))\n"
             "            + tf.reduce_mean(tf.nn.softplus(fake_logits)))\n"
             "    ### END SOLUTION", grade_id="loss", solution=True),
        cell('"""The loss agrees with the reference."""\nfrom gantools.grading import load\n'
             'load("01_basic_gan").check_discriminator_loss(discriminator_loss)',
             grade_id="test_loss", grade=True, locked=True, points=1),
    ]
    for made, cell_id in zip(nb.cells, ["title", "setup", "loss", "test_loss"], strict=True):
        made.id = cell_id
    return nb


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_a_notebook_released_before_the_split_still_builds_and_grades(course):
    """Students keep the notebooks they were given: the old names still grade, sandboxed,
    with full marks for the solution and none for the blank notebook."""
    nbformat.write(released_before_the_split(), course / "source" / NAME / f"{NAME}.ipynb")
    rows, log = build(course)
    assert [(r["solution"], r["blank"], r["max"]) for r in rows] == [(1, 0, 1)], log
    executed = nbformat.read(course.parent / "solutions" / f"{NAME}.ipynb", 4)
    test_cell = next(c for c in executed.cells if c.get("id") == "test_loss")
    assert "discriminator_loss agrees" in "".join(o.get("text", "") for o in test_cell.outputs)


def test_a_solution_whose_cell_raised_is_refused_not_published(tmp_path):
    """nbgrader's generate_solution executes on past a failing cell; the build must not
    publish such a solution (it would reach self-learners with a traceback in place of the
    results, and its self-check can still pass: the failing cell may be one nobody grades)."""
    nb = nbformat.v4.new_notebook()
    ok = nbformat.v4.new_code_cell("x = 1")
    bad = nbformat.v4.new_code_cell("train(loss=True)")
    bad.metadata["nbgrader"] = {"grade_id": "digits_run", "locked": True}
    bad.outputs = [nbformat.v4.new_output("error", ename="ValueError",
                                          evalue="unknown loss True", traceback=[])]
    nb.cells = [ok, bad]
    nb.metadata["gancourse"] = {"imported": ["gantools/__init__.py"]}
    executed, target = tmp_path / "executed" / "a.ipynb", tmp_path / "solutions" / "a.ipynb"
    executed.parent.mkdir()
    nbformat.write(nb, executed)
    with pytest.raises(pipeline.PipelineError) as error:
        pipeline.publish(executed, target, tmp_path / "course", "nb_x", 1.0)
    message = str(error.value)
    assert "ValueError: unknown loss True" in message and "cell 1 (digits_run)" in message
    assert "nothing was published" in message and not target.exists()
