"""Every check passes every honest answer, whatever the grader's nonce and the random state.

A correct answer must pass every time it is graded. What changes from one grading to the
next is the grader's nonce, which seeds a check's hidden inputs, and the random state of the
kernel, which draws a freshly built model's weights, the ε of a gradient penalty, the noise
a training step feeds its generator. For every public ``check_*`` of every checks module
(found, not listed: a new notebook's checks are covered as soon as its checks module
exists), this module runs the honest answers, cycling through them:

* :data:`RUNS` times hidden, each run with its own nonce and its own global random state
  (``keras.utils.set_random_seed``: Python, NumPy, TensorFlow and Keras at once), and
* :data:`VISIBLE` times visible, each under another random state.

Every run must pass, as the grader runs it: the check called in this process (not through
nbgrader), tripwire and all (armed once around a check's runs, the fast form), printing
its one ✓ line. The values a check reports to the
grader (``VERIFIED`` checks) must moreover sit well inside the tolerance with which the
grader compares them with its own (``expected``, :func:`gancourse.checks.evidence.agree`):
the precision float32 really has, not just a pass. The honest answers are the source
notebook's solution (its solution cells, markers removed, run after its setup cells, as a
student's notebook runs them) and the honest spellings of the notebook's test module
(``HONEST`` in ``tests/course/test_grading_NN.py``; notebook 01's correct answers in
``tests/course/test_grading.py`` and the honest submissions of
``tests/support/corpus_01.py``); a check that lacks either fails here. A failure names the
answer, the nonce and the seed; the run is repeated with::

    keras.utils.set_random_seed(SEED)
    load("NN_name").check_x(answer, hidden=True, nonce=NONCE)

``GANTOOLS_REPEATS=RUNS,VISIBLE`` changes the numbers (``500,50`` to hunt for rare
failures). Rarer failures, found by searching far more seeds and nonces, are run besides
(:data:`FOUND`). The checks that fail here and are not ours to fix are marked as expected
failures, strict, with their cause (:data:`KNOWN`): they turn red once they are fixed, so
that the mark goes too.
"""

import contextlib
import copy
import functools
import io
import os
import re
import time
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
import tensorflow as tf
from support import corpus_01

from gancourse.checks import assignments_with_checks, load

ROOT = Path(__file__).resolve().parents[2]
RUNS, VISIBLE = (int(n) for n in os.environ.get("GANTOOLS_REPEATS", "50,4").split(","))


def nonce(i: int) -> int:
    """The grader's nonce of hidden run ``i``: 31 random-looking bits, as autograde draws."""
    return (2654435761 * (i + 1) + 97) % 2**31


def seed(i: int, hidden: bool) -> int:
    """The global random state of run ``i`` (visible runs use other seeds than hidden ones)."""
    return (1 if hidden else 100_001) + i


# --- what is checked ------------------------------------------------------------------------------

def public_checks(assignment: str) -> list[str]:
    checks = load(assignment)
    return sorted(name for name in vars(checks) if name.startswith("check_")
                  and callable(getattr(checks, name)))


CHECKS = [(assignment, check) for assignment in assignments_with_checks()
          for check in public_checks(assignment)]

# Runs in which a check failed an honest answer before it was fixed, found by searching far
# more random states than RUNS covers (rules a valid answer broke once in 10⁴ or 10⁵
# gradings): (answer index, hidden, seed, nonce). They run besides the others, so that each
# fix stays proven on the very case that failed.
FOUND = {
    # the output layer's 512 weights drawn from N(0, 0.02) have a sample excess kurtosis
    # below -0.6 (the check's test for a uniform init) in ~1e-4 of the random states: the
    # kurtosis is now judged on layers of 2000 weights or more
    ("02_gan_tricks", "check_dcgan_generator"): [(0, False, 25113, None),
                                                 (1, True, 44809, nonce(0))],
    # the 12 ε of the MLP case, drawn from U[0, 1], have a standard deviation below 0.1 (the
    # check's test for one ε shared by the batch) in ~4e-5 of the random states: now 0.02
    ("03_wgan", "check_gradient_penalty_gradient"): [(0, True, 142287, nonce(0)),
                                                     (1, False, 142287, None)],
    # 5 iterations on a random 6×2 matrix from a u almost orthogonal to its top singular
    # vector (cosine 1e-4, 6e-6): float32 round-off amplified ~1/cosine (~5e-5 of the nonces):
    # starts with a cosine below 0.1 are now drawn again (the second was found with a NumPy
    # answer, which the check now refuses: the same seed and nonce with a TensorFlow one)
    ("05_spectral_norm", "check_power_iteration"): [(0, True, 1, 17886),
                                                    (1, True, 2, 38366)],
    # freshly initialised kernels whose σ₂/σ₁ is 0.89 to 0.95: σ after 20 power iterations
    # 4 to 11 % short of the SVD's, 2 to 3 times what the check tolerated (~7 % of the runs):
    # the check now gives the kernels a known spectrum
    ("05_spectral_norm", "check_sn_critic"): [(2, True, 99, 796135380),
                                              (1, True, 142, 1120239759),
                                              (1, True, 186, 1951296251)],
}

# Checks that fail an honest answer by chance and are not fixed yet: the cause and the
# proposed fix. Strict: the mark must go when the fix lands. (None at present.)
KNOWN: dict = {}


# --- the honest answers ---------------------------------------------------------------------------

def _grader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _run_cell(source: str, namespace: dict, name: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102


def _solution(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


_TESTED = re.compile(r'load\("(?P<assignment>\w+)"\)\.(?P<check>check_\w+)\((?P<answer>\w+)')


@functools.cache
def notebook(assignment: str) -> tuple[dict, dict]:
    """(namespace, {check: answer name}): the source notebook's setup cells and solution
    cells run in one namespace, and the name each check's test cell passes it."""
    nb = nbformat.read(ROOT / "course" / "source" / assignment / f"{assignment}.ipynb", 4)
    namespace, tested, answered = {"__name__": "__main__"}, {}, False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = _grader(cell)
        if meta.get("solution"):
            answered = True
            _run_cell(_solution(cell.source), namespace, f"{assignment} {meta['grade_id']}")
        elif meta.get("grade"):
            tested.update((m["check"], m["answer"]) for m in _TESTED.finditer(cell.source)
                          if m["assignment"] == assignment)
        elif not answered:  # setup and hyperparameters: what the answers may use
            _run_cell(cell.source, namespace, f"{assignment} {meta.get('grade_id')}")
    return namespace, tested


def _corpus_01() -> list:
    """Notebook 01's honest spellings: the correct answers of tests/course/test_grading.py, and the
    honest cells of corpus_01 (its summed discriminator loss is a mistake, scored 0 there)."""
    import test_grading as t

    spellings = [("check_discriminator_loss", t.good_d_loss),
                 ("check_minimax_generator_loss", t.good_g_loss),
                 ("check_generator", lambda z, d: t.mlp(z, d)),
                 ("check_discriminator", lambda d: t.critic(d)),
                 ("check_train_step", t.good_step),
                 ("check_train_step", tf.function(t.good_step))]
    namespace, tested = notebook("01_basic_gan")
    for name, cells in (("HONEST_SUBCLASS_G", [corpus_01.HONEST_SUBCLASS_G]),
                        ("HONEST_G_LOSS", [corpus_01.HONEST_HELPERS, corpus_01.HONEST_G_LOSS]),
                        ("HONEST_SUBCLASS_D", [corpus_01.HONEST_SUBCLASS_D]),
                        ("HONEST_TF_STEP", [corpus_01.HONEST_TF_STEP]),
                        ("HONEST_LATE", [corpus_01.HONEST_LATE])):
        mine = copy.copy(namespace)
        for i, source in enumerate(cells):
            _run_cell(source, mine, f"corpus_01 {name} {i}")
        spellings += [(check, mine[answer]) for check, answer in tested.items()
                      if mine[answer] is not namespace[answer]]
    return spellings


def corpus(assignment: str) -> list:
    """(check, answer) of the honest spellings of a notebook's test module."""
    if assignment == "01_basic_gan":
        return _corpus_01()
    number = assignment.split("_")[0]
    try:
        module = __import__(f"test_grading_{number}")
    except ModuleNotFoundError:
        return []
    return list(getattr(module, "HONEST", []))


def _label(answer) -> str:
    return getattr(answer, "__name__", None) or type(answer).__name__


@functools.cache
def honest_answers(assignment: str) -> dict:
    """{check: [(label, answer)]}: the notebook's solution first, then the corpus."""
    namespace, tested = notebook(assignment)
    out = {check: [(f"solution {answer}", namespace[answer])]
           for check, answer in tested.items()}
    for i, (check, answer) in enumerate(corpus(assignment)):
        out.setdefault(check, []).append((f"corpus[{i}] {_label(answer)}", answer))
    return out


# --- the runs -------------------------------------------------------------------------------------

def run(checks, check: str, answer, hidden: bool, run_seed: int, run_nonce: int | None):
    """One grading of ``answer``: (None if it passes with its one ✓ line, else what failed;
    the largest error of the values it reports to the grader, in units of the grader's
    tolerance, or 0.0)."""
    keras.utils.set_random_seed(run_seed)
    out, reported = io.StringIO(), []
    report = checks._h.report_values
    checks._h.report_values = lambda *record: reported.append(record)
    try:
        with contextlib.redirect_stdout(out):
            getattr(checks, check)(answer, hidden=hidden, nonce=run_nonce)
    except Exception as error:  # noqa: BLE001 - a crash of the check is a failure too
        return f"{type(error).__name__}: {' '.join(str(error).split())[:400]}", 0.0
    finally:
        checks._h.report_values = report
    lines = out.getvalue().splitlines()
    if len(lines) != 1 or not lines[0].startswith("✓ "):
        return f"passed, but printed {lines!r} instead of one ✓ line", 0.0
    return None, max((error_of(checks, *record) for record in reported), default=0.0)


def error_of(checks, name: str, hidden: bool, run_seed: int, values) -> float:
    """The largest difference between reported values and the grader's own (``expected``),
    in units of what the grader tolerates (evidence.agree: 1e-5 + 1e-4·|expected|)."""
    want = checks.expected(name, run_seed, hidden)
    if len(want) != len(values):
        return float("inf")
    got, want = np.asarray(values, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) / (1e-5 + 1e-4 * np.abs(want)), initial=0.0))


def runs(answers, found=()):
    """(label, answer, hidden, seed, nonce) of every run: hidden ones, visible ones, then the
    runs found to fail (:data:`FOUND`)."""
    for i in range(RUNS):
        label, answer = answers[i % len(answers)]
        yield label, answer, True, seed(i, True), nonce(i)
    for i in range(VISIBLE):
        label, answer = answers[i % len(answers)]
        yield label, answer, False, seed(i, False), None
    for index, hidden, run_seed, run_nonce in found:
        yield *answers[index], hidden, run_seed, run_nonce


def _case(assignment, check):
    marks = ([pytest.mark.xfail(strict=True, reason=KNOWN[assignment, check])]
             if (assignment, check) in KNOWN else [])
    return pytest.param(assignment, check, id=f"{assignment}-{check}", marks=marks)


@pytest.mark.parametrize("assignment, check", [_case(*c) for c in CHECKS])
def test_honest_answers_pass_every_time(assignment, check):
    answers = honest_answers(assignment).get(check, [])
    assert answers and answers[0][0].startswith("solution"), \
        f"no test cell of the {assignment} source notebook calls {check} with its solution"
    assert len(answers) > 1, (f"{check} has no honest spelling in the test module of "
                              f"{assignment} (HONEST in tests/course/test_grading_NN.py)")
    checks = load(assignment)
    failures, start, count, worst = [], time.process_time(), 0, (0.0, "")
    # The fast form: the tripwire armed once around all the runs instead of once per run
    # (arming scans the garbage collector's ~10⁶ objects, most of a value check's time);
    # inside, each check reuses those traps. An honest answer runs the same code either way.
    with checks._h.no_reference_calls("the honest answers", getattr(checks, check).allow):
        for label, answer, hidden, run_seed, run_nonce in runs(
                answers, FOUND.get((assignment, check), ())):
            count += 1
            error, off = run(checks, check, answer, hidden, run_seed, run_nonce)
            where = f"{label}, {f'hidden, nonce={run_nonce}' if hidden else 'visible'}, " \
                    f"seed={run_seed}"
            if error is not None:
                failures.append(f"{where}: {error}")
            worst = max(worst, (off, where))
    print(f"{assignment} {check}: {count} runs of {len(answers)} answers, {len(failures)} "
          f"failed, reported values off by at most {worst[0]:.2g} of the grader's tolerance, "
          f"{time.process_time() - start:.1f} s CPU", *failures, sep="\n    ")
    assert not failures, (f"{len(failures)} of {count} honest runs of {check} failed:\n"
                          + "\n".join(failures))
    # float32 rounding, whichever order a CPU's vector units sum in, leaves honest values
    # within a quarter of the grader's tolerance. Searched over 1500 to 3·10⁵ hidden cases
    # a check: at most 9 % of it for KID (kernel sums of ~10³ round by ~1e-6, next to an
    # atol of 1e-5) and notebook 04's pull, 5 % for spectral_normalize, under 1 % elsewhere
    assert worst[0] <= 0.25, (f"an honest answer's reported values use "
                              f"{worst[0]:.0%} of the grader's tolerance ({worst[1]})")


def test_every_notebook_with_checks_is_covered():
    """Each checks module has a source notebook whose test cells call every one of its
    checks, and nothing is covered twice."""
    for assignment in assignments_with_checks():
        _, tested = notebook(assignment)
        assert set(tested) == set(public_checks(assignment)), assignment
    assert len(set(CHECKS)) == len(CHECKS)
