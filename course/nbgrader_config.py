"""nbgrader configuration of the GAN course.

Run nbgrader from this folder (course/): `cd course && nbgrader generate_assignment ...`.
docs/instructors.md describes the whole workflow.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file

HERE = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "gan-course"
c.CourseDirectory.root = str(HERE)
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
# Every notebook runs in the course's kernel: the Python with gantools installed, started
# with the course's environment (oneDNN on; gancourse.kernel, gantools.runtime). The
# pipeline installs it; by hand: `python -m gancourse.kernel install`.
c.Execute.kernel_name = "gan-course"
# Solutions run with gantools' Execute, which merges stream outputs (progress bars then
# show where they ended; nbclient's switch for it is not configurable) and records which
# gantools files the notebook imported (make course reuses a solution until they change).
c.GenerateSolution.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
    "gancourse.autograde.execute.SolutionExecute",
]

# Keep huge outputs (a print in a loop) from bloating the graded notebooks.
c.LimitOutput.max_lines = 500
c.LimitOutput.max_traceback = 60

# Autograde (see gancourse.autograde.plugins): student-written cells are checked by the
# grading policy before they run; the notebook runs in a bubblewrap sandbox with limits on
# the whole submission; the value checks are compared again in this process; displayed
# values never earn credit; faults and violations flag the notebook for manual grading
# and are listed in <notebook>.grading.json beside it.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "gancourse.autograde.plugins.ForgetUnknownCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "gancourse.autograde.plugins.EnforcePolicy",
    "gancourse.autograde.execute.SandboxedExecute",
    "gancourse.autograde.plugins.VerifyValues",
    "gancourse.autograde.plugins.ScoreStrictly",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "gancourse.autograde.plugins.FlagForManualGrading",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.SandboxedExecute.timeout = CELL_TIMEOUT
c.SandboxedExecute.interrupt_on_timeout = True
c.SandboxedExecute.kernel_name = "gan-course"
c.SandboxedExecute.submission_timeout = int(
    os.environ.get("GANCOURSE_SUBMISSION_TIMEOUT", str(3 * CELL_TIMEOUT)))
c.SandboxedExecute.max_output_bytes = 5_000_000
# Before the first submission, one grading kernel is started as the gradings will start
# theirs: a kernel that cannot start (a sandbox that hides the virtual environment, a
# missing gan-course kernel, no bubblewrap where GANTOOLS_REQUIRE_SANDBOX=1) would fail
# every submission, which nbgrader records as 0 for everyone. Instead the batch stops
# before any submission is recorded, saying why and what to do (gancourse.autograde.preflight).
from gancourse.autograde.preflight import autograde_hook  # noqa: E402

c.Autograde.pre_convert_hook = autograde_hook
# The sandbox hides the course folder (gradebook, source/ with hidden tests, other
# students) from the kernel; only a private copy of the submission's folder is visible.
# The executed solutions beside the course folder are hidden too.
os.environ.setdefault("GANTOOLS_SANDBOX_HIDE", os.pathsep.join(
    str(p) for p in (HERE, HERE.parent / "solutions") if p.is_dir()))

# Feedback: nbgrader would show hidden tests to students (issues 917, 1363); strip them
# and their tracebacks before rendering.
c.GenerateFeedback.preprocessors = [
    "gancourse.autograde.plugins.RedactHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Local exchange for `nbgrader release_assignment` / `collect` on one machine.
c.Exchange.root = str(HERE / "exchange")
