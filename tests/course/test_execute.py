"""Autograde plug-ins on small notebooks: limits, faults, the policy's cells, strict scoring.

The kernels here import no TensorFlow, so each run takes a few seconds. The same plug-ins
are exercised through ``nbgrader autograde`` on notebook 01 in test_course.py and on
notebooks 03, 05 and 07 in test_attacks.py.
"""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from gancourse.autograde import plugins
from gancourse.autograde.execute import PackageSnapshot, SandboxedExecute, state
from gancourse.autograde.sandbox import sandbox_available


def cell(source, **nbgrader):
    c = new_code_cell(source)
    if nbgrader:
        c.metadata["nbgrader"] = {"schema_version": 3, "solution": False, "grade": False,
                                  "locked": False, **nbgrader}
    return c


def run(cells, tmp_path, **limits):
    nb = new_notebook(cells=cells)
    resources = {"metadata": {"path": str(tmp_path)}}
    ex = SandboxedExecute(timeout=limits.pop("timeout", 20), **limits)
    nb, resources = ex.preprocess(nb, resources)
    return nb, state(resources)


def texts(c):
    return " ".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in c.outputs)


def test_a_dead_kernel_keeps_what_ran_before_and_records_why(tmp_path):
    nb, notes = run([cell("print('before')"),
                     cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                     cell("print('after')")], tmp_path)
    assert "before" in texts(nb.cells[0])
    assert nb.cells[1].outputs[-1]["ename"] == "SubmissionFault"
    assert "crashed the kernel" in texts(nb.cells[1]) and "SIGKILL" in texts(nb.cells[1])
    assert nb.cells[2].outputs[0]["ename"] == "NotRun" and "after" not in texts(nb.cells[2])
    assert [f["cell_index"] for f in notes["faults"]] == [1]


def test_an_output_flood_stops_the_kernel_and_the_flood_is_not_stored(tmp_path):
    nb, notes = run([cell("for i in range(10**6):\n    print('x' * 1000)"), cell("1")],
                    tmp_path, max_output_bytes=200_000)
    assert "more than 200,000 bytes" in notes["faults"][0]["reason"]
    stored = sum(len(str(o)) for o in nb.cells[0].outputs)
    assert stored < 400_000  # what arrived before the kernel was stopped, not 1 GB
    assert nb.cells[1].outputs[0]["ename"] == "NotRun"


def test_an_interruptible_slow_cell_fails_alone(tmp_path):
    nb, notes = run([cell("while True:\n    pass"), cell("print('next')")], tmp_path,
                    timeout=3)
    assert any(o.get("ename") == "CellTimeoutError" for o in nb.cells[0].outputs)
    assert "next" in texts(nb.cells[1]) and notes["faults"] == []


def test_a_kernel_that_ignores_interrupts_is_stopped(tmp_path):
    stubborn = ("while True:\n    try:\n        while True:\n            pass\n"
                "    except KeyboardInterrupt:\n        pass")
    nb, notes = run([cell(stubborn), cell("print('next')")], tmp_path, timeout=3,
                    stuck_timeout=3)
    assert "did not answer an interrupt" in notes["faults"][0]["reason"]
    assert nb.cells[1].outputs[0]["ename"] == "NotRun"


def test_many_slow_cells_hit_the_submission_time_limit(tmp_path):
    nb, notes = run([cell("import time\ntime.sleep(1.5)") for _ in range(6)], tmp_path,
                    submission_timeout=4)
    assert "time limit of 4 s" in notes["faults"][0]["reason"]
    ran = [c for c in nb.cells if not any(o.get("ename") == "NotRun" for o in c.outputs)]
    assert 2 <= len(ran) <= 4


def test_cells_the_policy_rejected_and_everything_after_them_do_not_run(tmp_path):
    nb = new_notebook(cells=[cell("open('evidence', 'w').write('x')"), cell("print('ok')"),
                             cell("print('after')")])
    resources = {"metadata": {"path": str(tmp_path)}}
    state(resources)["skip"] = {1: "not run: policy"}
    nb, resources = SandboxedExecute(timeout=20).preprocess(nb, resources)
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "1"  # one character written...
    if sandbox_available():  # ... into the kernel's private copy of the folder
        assert not (tmp_path / "evidence").exists()
    assert nb.cells[1].outputs[0]["evalue"] == "not run: policy"
    assert "after" not in texts(nb.cells[2])
    assert state(resources)["faults"] == []


def test_package_snapshot_restores_changed_added_and_removed_files(tmp_path):
    (tmp_path / "a.py").write_text("A")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("B")
    snap = PackageSnapshot(tmp_path)
    (tmp_path / "a.py").write_text("A, patched")
    (tmp_path / "sub" / "b.py").unlink()
    (tmp_path / "sub" / "evil.py").write_text("E")
    assert snap.restore() == ["a.py", "sub/b.py", "sub/evil.py"]
    assert (tmp_path / "a.py").read_text() == "A" and (tmp_path / "sub" / "b.py").exists()
    assert not (tmp_path / "sub" / "evil.py").exists() and snap.restore() == []


# --- the policy and the scoring plug-ins, without a kernel ----------------------------------

def graded_notebook():
    return new_notebook(cells=[
        cell("import numpy as np", grade_id="setup", locked=True),
        cell("def f(x):\n    return np.sum(x)", grade_id="answer", solution=True),
        cell("check(f)", grade_id="test_f", grade=True, locked=True, points=2),
        cell("np.isclose = lambda *a, **k: True"),  # added by the student
        cell("check(f)", grade_id="test_g", grade=True, locked=True, points=3),
    ])


TRUSTED = {"gantools_trusted": {"setup": "import numpy as np", "test_f": "check(f)",
                                "test_g": "check(f)"}}


def test_policy_plugin_checks_every_cell_but_the_release_locked_ones():
    nb = graded_notebook()
    nb.cells[0].source = "import numpy as np\nimport os"  # a locked cell changed: checked
    resources = dict(TRUSTED)
    plugins.EnforcePolicy().preprocess(nb, resources)
    found = {(v["cell_index"], v["rule"]) for v in state(resources)["violations"]}
    assert found == {(0, "import"), (3, "foreign-attribute")}
    assert set(state(resources)["skip"]) == {0, 3}
    assert "cell 4 (no nbgrader id" in state(resources)["violations"][-1]["cell"]


def test_trust_is_decided_by_the_release_id_and_source_never_by_editable_flags():
    """A test cell whose `locked` flag an editor dropped (or whose `solution` flag it set) is
    still the release's cell when its id and source are; a cell that copies a trusted id onto
    other code is not. The grader's cell guard trusts the same cells (by their digests)."""
    from gancourse.autograde.confine import cell_digest

    nb = graded_notebook()
    nb.cells[2].metadata["nbgrader"]["locked"] = False
    nb.cells[0].metadata["nbgrader"].update(locked=False, solution=True)
    forged = cell("np.isclose = len", grade_id="test_g", grade=True, locked=True, points=3)
    nb.cells[4] = forged
    resources = dict(TRUSTED)
    plugins.EnforcePolicy().preprocess(nb, resources)
    notes = state(resources)
    assert {v["cell_index"] for v in notes["violations"]} == {3, 4}
    assert set(notes["guard"]["trusted"]) == {cell_digest(nb.cells[i].source) for i in (0, 2)}


def test_strict_scoring_and_flags():
    nb = graded_notebook()
    nb.cells[2].outputs = [new_output("execute_result", data={"text/plain": "1.5"},
                                      execution_count=1)]
    nb.cells[4].outputs = [new_output("execute_result", data={"text/plain": "3"},
                                      execution_count=2),
                           new_output("error", ename="GradingError", evalue="wrong",
                                      traceback=[])]
    # nbgrader alone reads the first displayed value as the grade and ignores the error
    assert determine_grade(nb.cells[2])[0] == 1.5 and determine_grade(nb.cells[4])[0] == 3
    resources = {}
    plugins.ScoreStrictly().preprocess(nb, resources)
    assert determine_grade(nb.cells[2])[0] == 2 and determine_grade(nb.cells[4])[0] == 0
    assert "execute_result" not in nbformat.writes(nb)

    # a library's warning on stderr while a correct answer is checked: nbgrader alone scores
    # the cell 0; here it is shown on stdout and the cell keeps its points
    nb = graded_notebook()
    nb.cells[2].outputs = [new_output("stream", name="stderr", text="UserWarning: ...\n"),
                           new_output("stream", name="stdout", text="✓ f passes.\n")]
    assert determine_grade(nb.cells[2])[0] == 0
    plugins.ScoreStrictly().preprocess(nb, {})
    assert determine_grade(nb.cells[2])[0] == 2
    assert "UserWarning" in nb.cells[2].outputs[0]["text"]

    nb = graded_notebook()
    resources = dict(TRUSTED)
    plugins.EnforcePolicy().preprocess(nb, resources)
    plugins.ScoreStrictly().preprocess(nb, resources)
    assert determine_grade(nb.cells[2])[0] == 2  # before the violation: kept
    assert determine_grade(nb.cells[4])[0] == 0  # after it: no credit, and said why
    assert "np.isclose" not in nb.cells[4].outputs[0]["evalue"]
    assert "line 1" in nb.cells[4].outputs[0]["evalue"]
    resources["metadata"] = {}
    _, resources = plugins.FlagForManualGrading().preprocess(nb, resources)
    report = resources["gantools_report"]
    assert report["flagged"] and report["affected_tests"] == ["test_g"]


@pytest.mark.parametrize("source", [
    "x = 1", "print('hi')", "import numpy as np\nprint(np.ones(3))"])
def test_clean_cells_leave_no_notes(source):
    nb = new_notebook(cells=[cell(source)])
    resources = {"gantools_trusted": {}}
    plugins.EnforcePolicy().preprocess(nb, resources)
    assert state(resources)["violations"] == [] and state(resources)["skip"] == {}


# --- verdicts recomputed in the grader's process ----------------------------------------------

def test_hidden_calls_of_trusted_test_cells_get_the_graders_nonce():
    source = ('load("01_basic_gan").check_discriminator_loss(f)\n'
              'load("01_basic_gan").check_discriminator_loss(f, hidden=True)')
    nb = new_notebook(cells=[cell(source, grade_id="t", grade=True, locked=True, points=1),
                             cell(source)])  # an added copy is not trusted: no nonce
    notes = {}
    plugins.add_nonces(nb, {"t": source}, notes)
    nonce = notes["nonces"][0]
    assert f"hidden=True, nonce={nonce})" in nb.cells[0].source
    assert "nonce" not in nb.cells[1].source and list(notes["nonces"]) == [0]


def test_the_grader_recomputes_what_the_kernel_reported():
    from gancourse.checks import load
    from gancourse.checks.evidence import EVIDENCE

    checks = load("01_basic_gan")
    source = ('load("01_basic_gan").check_discriminator_loss(f)\n'
              'load("01_basic_gan").check_discriminator_loss(f, hidden=True, nonce=77)')

    def test_cell(*records):
        c = cell(source, grade_id="t", grade=True, locked=True, points=2)
        c.outputs = [new_output("display_data", data={EVIDENCE: r, "text/plain": ""})
                     for r in records]
        return c

    def record(hidden, seed, values=None):
        return {"check": "check_discriminator_loss", "hidden": hidden, "seed": seed,
                "values": values or checks.expected("check_discriminator_loss", seed, hidden)}

    def verify(c):
        return plugins.verify_values(c, 77, lambda name: checks)

    assert verify(test_cell(record(False, 0), record(True, 77))) is None
    wrong = [v + 0.5 for v in checks.expected("check_discriminator_loss", 77, True)]
    assert "own comparison" in verify(test_cell(record(False, 0), record(True, 77, wrong)))
    assert "no record" in verify(test_cell(record(False, 0)))
    assert "inputs other than the grader's" in verify(test_cell(record(False, 0),
                                                                record(True, 5)))


def test_cells_with_forged_nbgrader_metadata_are_graded_as_added_cells():
    forged = cell("import sys", grade=False, locked=True)  # its unknown grade_id was removed
    known = cell("x = 1", grade_id="setup", locked=True)
    nb = new_notebook(cells=[forged, known])
    plugins.ForgetUnknownCells().preprocess(nb, {})
    assert "nbgrader" not in nb.cells[0].metadata and "nbgrader" in nb.cells[1].metadata
    resources = {"gantools_trusted": {"setup": "x = 1"}}
    plugins.EnforcePolicy().preprocess(nb, resources)
    assert [v["cell_index"] for v in state(resources)["violations"]] == [0]


def test_executed_notebooks_keep_a_progress_bar_where_it_ended(tmp_path):
    from gancourse.autograde.execute import MergedStreamsExecute

    nb = new_notebook(cells=[cell(
        "import sys, time\nfrom tqdm import tqdm\n"
        "for _ in tqdm(range(5), file=sys.stdout, mininterval=0):\n    time.sleep(0.05)")])
    nb, _ = MergedStreamsExecute(timeout=20).preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    streams = [o for o in nb.cells[0].outputs if o.output_type == "stream"]
    assert len(streams) == 1 and "5/5" in streams[0].text and "0/5" not in streams[0].text
