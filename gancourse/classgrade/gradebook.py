"""The gradebook rows of one submission, moved between a grading worker and the course.

A worker of :mod:`gancourse.classgrade.coordinator` grades in a private one-student course
whose gradebook starts as :func:`template_gradebook` (the course's assignments, notebooks
and cells, and nobody). What nbgrader then wrote about the submission travels back as plain
data (:func:`submission_state`) and is applied to the course's gradebook by its only
writer, the coordinator (:func:`apply_state`). The same two functions carry a submission
graded before (extension, manual scores, comments) to the worker, since autograde's results
depend on them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import sys
import tempfile
import warnings
from pathlib import Path

SUBMISSION_TABLES = ("comment", "grade", "submitted_notebook", "submitted_assignment",
                     "student")
GRADE_FIELDS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_FIELDS = ("auto_comment", "manual_comment")
STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")


class GradeError(RuntimeError):
    """The class cannot be graded as asked (what is wrong and what to do)."""


def tools_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` executable found on PATH: make the tools
    installed next to this Python (the virtual environment's bin folder) findable."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def db_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def template_gradebook(course: Path) -> bytes:
    """The course's gradebook without students and submissions: the assignments, notebooks
    and cells that autograde needs, and nothing about anyone (the copy is vacuumed, so no
    deleted row survives in a free page)."""
    source = course / "gradebook.db"
    if not source.is_file():
        raise GradeError(f"no gradebook at {source}: release the assignment first "
                         "(make course, or nbgrader generate_assignment)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gradebook.db"
        with contextlib.closing(sqlite3.connect(source)) as src, \
                contextlib.closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
            dst.executescript("".join(f"DELETE FROM {t};" for t in SUBMISSION_TABLES))
            dst.commit()
            dst.execute("VACUUM")
        return path.read_bytes()


def student_record(gb, student: str) -> dict:
    from nbgrader.api import MissingEntry

    try:
        found = gb.find_student(student)
    except MissingEntry:
        return {}
    return {k: getattr(found, k) for k in STUDENT_FIELDS if getattr(found, k) is not None}


def submission_state(gb, assignment: str, student: str) -> dict | None:
    """Everything the gradebook holds about one submission, as plain data (JSON-safe), or
    None when there is no such submission."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    return {
        "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
        "extension_s": sub.extension.total_seconds() if sub.extension is not None else None,
        "notebooks": {nb.name: {
            "flagged": nb.flagged,
            "late_submission_penalty": nb.late_submission_penalty,
            "grades": {g.name: {k: getattr(g, k) for k in GRADE_FIELDS} for g in nb.grades},
            "comments": {c.name: {k: getattr(c, k) for k in COMMENT_FIELDS}
                         for c in nb.comments},
        } for nb in sub.notebooks},
    }


def apply_state(gb, assignment: str, student: str, state: dict) -> None:
    """Make the gradebook's submission exactly ``state`` (from :func:`submission_state`),
    creating the student and the submission when needed."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():  # nbgrader's own autoflush warnings, harmless
        warnings.simplefilter("ignore", SAWarning)
        _apply_state(gb, assignment, student, state)


def _apply_state(gb, assignment: str, student: str, state: dict) -> None:
    gb.update_or_create_student(student)
    timestamp = dt.datetime.fromisoformat(state["timestamp"]) if state["timestamp"] else None
    extension = (dt.timedelta(seconds=state["extension_s"])
                 if state["extension_s"] is not None else None)
    sub = gb.update_or_create_submission(assignment, student, timestamp=timestamp,
                                         extension=extension)
    notebooks = {nb.name: nb for nb in sub.notebooks}
    if set(notebooks) != set(state["notebooks"]):
        raise GradeError(f"{assignment}: the gradebook's notebooks {sorted(notebooks)} are not "
                         f"the graded ones {sorted(state['notebooks'])}; was the assignment "
                         "released again while it was graded?")
    for name, saved in state["notebooks"].items():
        nb = notebooks[name]
        nb.flagged = saved["flagged"]
        nb.late_submission_penalty = saved["late_submission_penalty"]
        for rows, kind, fields in ((nb.grades, "grades", GRADE_FIELDS),
                                   (nb.comments, "comments", COMMENT_FIELDS)):
            by_name = {row.name: row for row in rows}
            for cell, values in saved[kind].items():
                for field in fields:
                    setattr(by_name[cell], field, values[field])
    gb.db.commit()
