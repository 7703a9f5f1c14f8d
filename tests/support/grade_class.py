"""A small assignment and a class of submissions for the parallel grading tests.

The assignment has two auto-graded parts with hidden tests and one written answer graded by
hand, so that every kind of gradebook row appears; it imports nothing heavy, so a
submission grades in seconds through the real pipeline (nbgrader, the course's
configuration and preprocessors, the sandboxed kernel). The class holds the cases the
grading must treat alike however many workers grade it: honest work of every quality,
attacks on the grading, a hang, a crash, a flood of output, broken JSON and a late
submission.
"""

import csv
import json
import shutil
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from gancourse.autograde.sandbox import sandbox_available
from gancourse.build import pipeline

ROOT = Path(__file__).resolve().parents[2]
NAME = "00_class"
DUE = "2026-03-01 12:00:00 UTC"
ON_TIME = "2026-03-01 10:00:00.000000 UTC"
LATE = "2026-03-02 09:30:00.000000 UTC"
ENV = {"GANCOURSE_CELL_TIMEOUT": "10", "GANCOURSE_SUBMISSION_TIMEOUT": "120",
       "TF_CPP_MIN_LOG_LEVEL": "2"}

SQUARE = "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"
MEAN = ("def mean(xs):\n    ### BEGIN SOLUTION\n    return math.fsum(xs) / len(xs)\n"
        "    ### END SOLUTION")
TEST_SQUARE = ('"""square(3) is 9."""\nassert square(3) == 9\n'
               "### BEGIN HIDDEN TESTS\nassert square(-2) == 4\n### END HIDDEN TESTS")
TEST_MEAN = ('"""mean([1, 2, 3]) is 2."""\nassert mean([1, 2, 3]) == 2\n'
             "### BEGIN HIDDEN TESTS\nassert mean([0.1] * 10) == 0.1\n### END HIDDEN TESTS")


def cell(source, kind="code", cell_id=None, **grader):
    made = (nbformat.v4.new_code_cell(source) if kind == "code"
            else nbformat.v4.new_markdown_cell(source))
    made.id = cell_id or grader.get("grade_id", "text")
    if grader:
        made.metadata["nbgrader"] = {"schema_version": 3, "grade": False, "solution": False,
                                     "locked": False, **grader}
    return made


def source_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        cell("# Squares and means", kind="markdown", cell_id="title"),
        cell("import math", grade_id="setup", locked=True),
        cell(SQUARE, grade_id="square", solution=True),
        cell(TEST_SQUARE, grade_id="test_square", grade=True, locked=True, points=1),
        cell(MEAN, grade_id="mean", solution=True),
        cell(TEST_MEAN, grade_id="test_mean", grade=True, locked=True, points=2),
        cell("Why does `mean` use `math.fsum`?", kind="markdown", grade_id="why_fsum",
             solution=True, grade=True, points=1),
    ])
    nb.metadata["kernelspec"] = {"name": "gan-course", "display_name": "Python 3 (GAN course)",
                                 "language": "python"}
    return nb


FILESYSTEM = '''import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig = plt.figure()
for target in ["../../../gradebook.db", "../../../source/00_class/stolen.png",
               "../../perfect/00_class/x.png", "written_here.png"]:
    try:
        fig.savefig(target, format="png")
        print("WROTE", target)
    except Exception as e:
        print("BLOCKED", target, type(e).__name__)'''

# name -> (answers by grade_id, other changes); "GOOD" is the source's answer
CLASS = {
    "perfect": {"square": "GOOD", "mean": "GOOD", "why_fsum": "It sums without rounding."},
    "blank": {},
    "partial": {"square": "GOOD", "mean": "def mean(xs):\n    return xs[0]"},
    "hidden_only": {"square": "GOOD",  # passes the visible test, fails the hidden one
                    "mean": "def mean(xs):\n    return sum(xs) / len(xs)"},
    "edits_tests": {"square": "def square(x):\n    return 9", "test_square": "pass",
                    "mean": "GOOD"},
    "attack_import": {"square": "GOOD", "mean": "import gancourse.checks as grading\n\n"
                      "grading.load = None\n\n\ndef mean(xs):\n    return 2"},
    "attack_displayhook": {"square": "import sys\n\n\ndef square(x):\n"
                           "    sys.displayhook(1)\n    return 0", "mean": "GOOD"},
    "attack_file_system": {"square": "GOOD", "mean": "GOOD", "add_after_mean": FILESYSTEM},
    "crash": {"square": "GOOD", "mean": "import numpy as np\n\n\ndef mean(xs):\n"
              "    x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**8,), "
              "strides=(10**7,))\n    return float(x.sum())"},
    "flood": {"square": "GOOD", "mean": "GOOD",
              "add_after_mean": 'for i in range(200_000):\n    print("flood " * 200)'},
    "hang": {"square": "GOOD", "mean": "def mean(xs):\n    while True:\n        pass"},
    "late": {"square": "GOOD", "mean": "GOOD", "timestamp": LATE},
}
if not sandbox_available():  # without the sandbox its writes would really happen
    CLASS.pop("attack_file_system")
BROKEN = "broken_json"
# what every submission gets (auto-graded points; the written answer waits for a person),
# the submissions flagged for manual grading, and the one nbgrader cannot grade
SCORES = {"perfect": 3, "blank": 0, "partial": 1, "hidden_only": 1, "edits_tests": 2,
          "attack_import": 1, "attack_displayhook": 0, "attack_file_system": 3, "crash": 1,
          "flood": 1, "hang": 1, "late": 3, BROKEN: 0}
FLAGGED = {"attack_import", "attack_displayhook", "crash", "flood"}
FAULTS = {"crash": "crashed the kernel", "flood": "bytes of output"}  # graded twice


def answers():
    out = {}
    for c in source_notebook().cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and c.cell_type == "code":
            out[meta["grade_id"]] = "\n".join(x for x in c.source.split("\n")
                                              if "SOLUTION" not in x)
    return out


def submission(release, spec) -> str:
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    good = answers()
    for c in list(nb.cells):
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in spec:
            c.source = good[gid] if spec[gid] == "GOOD" else spec[gid]
        if gid == "mean" and "add_after_mean" in spec:
            added = nbformat.v4.new_code_cell(spec["add_after_mean"])
            nb.cells.insert(nb.cells.index(c) + 1, added)
    return nbformat.writes(nb)


def make_course(root: Path) -> Path:
    """A course with the real configuration, ``00_class`` released with its due date, the
    class submitted (not yet graded) and two students with names in the gradebook."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    root.mkdir(parents=True, exist_ok=True)
    (root / "source" / NAME).mkdir(parents=True)
    shutil.copy(ROOT / "course" / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(source_notebook(), root / "source" / NAME / f"{NAME}.ipynb")
    (root / "source" / NAME / "data.csv").write_text("x\n1\n2\n")  # copied by autograde
    pipeline.run_nbgrader(root, "generate_assignment", NAME, "--force")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(NAME, duedate=parse_utc(DUE))
        gb.update_or_create_student("perfect", first_name="Ada", last_name="Lovelace",
                                    email="ada@example.org")
        gb.update_or_create_student("late", first_name="Alan", last_name="Turing")
    release = nbformat.read(root / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    for student, spec in CLASS.items():
        submit(root, student, submission(release, spec), spec.get("timestamp", ON_TIME))
    submit(root, BROKEN, "{ this is not a notebook", ON_TIME)
    return root


def submit(course: Path, student: str, text: str, timestamp: str = ON_TIME) -> None:
    pipeline.submit(course, NAME, student, {f"{NAME}.ipynb": text})
    (course / "submitted" / student / NAME / "timestamp.txt").write_text(timestamp)


def copy_course(course: Path, dest: Path) -> Path:
    shutil.copytree(course, dest)
    return dest


def outcome(course: Path) -> dict:
    """Everything grading decided, read back through nbgrader alone: the rows of
    ``nbgrader export``, and by submission the gradebook's scores, comments, flags and late
    penalty, the grading report, the graded folder's files and, by code cell, the kinds
    and errors of the graded notebook's outputs."""
    export = course / "grades.csv"
    pipeline.run_nbgrader(course, "export", "--to", str(export))
    with open(export, newline="") as f:
        rows = sorted(tuple(row.items()) for row in csv.DictReader(f))
    submissions = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(NAME).submissions:
            nb, = sub.notebooks
            submissions[sub.student.id] = {
                "timestamp": str(sub.timestamp), "extension": str(sub.extension),
                "flagged": nb.flagged, "late_penalty": nb.late_submission_penalty,
                "grades": {g.name: (g.auto_score, g.manual_score, g.extra_credit,
                                    g.needs_manual_grade) for g in nb.grades},
                "comments": {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments},
            }
    for student, found in submissions.items():
        folder = course / "autograded" / student / NAME
        found["files"] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
        if folder.is_dir():
            found["report"] = json.loads((folder / f"{NAME}.grading.json").read_text())
            graded = nbformat.read(folder / f"{NAME}.ipynb", as_version=4)
            found["outputs"] = [[(o.output_type, o.get("ename")) for o in c.outputs]
                                for c in graded.cells if c.cell_type == "code"]
    return {"export": rows, "submissions": submissions}
