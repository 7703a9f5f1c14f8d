"""nbgrader configuration of the GAN course.

Run nbgrader from this folder (course/): `cd course && nbgrader generate_assignment ...`.
See the README's "For instructors" section for the whole workflow.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file

HERE = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "gan-course"
c.CourseDirectory.root = str(HERE)
# Every notebook runs in the course's Python (the one with gantools installed).
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell time limits. nbgrader reads `Execute.timeout`; `ExecutePreprocessor.timeout`
# alone does not take effect (nbgrader issues 915, 1004, 1463). A cell that runs longer is
# interrupted, marked with a CellTimeoutError (its test scores 0), and the rest of the
# notebook still runs. Training cells stay well under the limit in short mode, which
# nbgrader triggers by setting NBGRADER_EXECUTION.
CELL_TIMEOUT = int(os.environ.get("GANCOURSE_CELL_TIMEOUT", "600"))
c.Execute.timeout = CELL_TIMEOUT
c.ExecutePreprocessor.timeout = CELL_TIMEOUT
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = "python3"

# Keep huge outputs (a print in a loop) from bloating the graded notebooks.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 60

# Autograde: after executing a submission, fail its tests if an answer cell tampers with
# gantools or the grading code (checked here, outside the student's kernel).
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "gantools.grading.nbgrader_ext.DetectTampering",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback: nbgrader would show hidden tests to students (issues 917, 1363); strip them
# and their tracebacks before rendering.
c.GenerateFeedback.preprocessors = [
    "gantools.grading.nbgrader_ext.RedactHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Local exchange for `nbgrader release_assignment` / `collect` on one machine.
c.Exchange.root = str(HERE / "exchange")
