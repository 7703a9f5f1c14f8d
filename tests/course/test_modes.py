"""Full and short mode: what nbgrader's environment variable switches."""

import pytest
import tensorflow as tf

from gancourse import modes as course


@pytest.mark.parametrize("env, short", [({}, False), ({"NBGRADER_EXECUTION": "autograde"}, True),
                                        ({"GANCOURSE_SHORT": "1"}, True),
                                        ({"GANCOURSE_SHORT": "no"}, False)])
def test_budget_and_compiled_follow_the_mode(monkeypatch, env, short):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("GANCOURSE_SHORT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert course.short_mode() is short
    assert course.budget(1000, 3) == (3 if short else 1000)
    assert course.describe_mode().startswith("SHORT" if short else "FULL")

    def square(x):
        return x * x

    fn = course.compiled(square, reduce_retracing=True)
    assert (fn is square) is short  # short mode runs eagerly: no trace to pay for
    assert float(fn(tf.constant(3.0))) == 9.0
    assert hasattr(fn, "get_concrete_function") is not short


@pytest.mark.parametrize("env, eager", [({}, None), ({"NBGRADER_EXECUTION": "autograde"}, "1"),
                                        ({"GANCOURSE_SHORT": "1"}, "1")])
def test_short_mode_tells_the_library_to_run_training_steps_eagerly(env, eager):
    """The library reads its own setting (GANTOOLS_EAGER_STEPS), never nbgrader's; the
    course's short mode sets it when the notebook imports its budgets."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items()
            if k not in ("NBGRADER_EXECUTION", "GANCOURSE_SHORT", "GANTOOLS_EAGER_STEPS")}
    probe = "import os, gancourse.modes; print(os.environ.get('GANTOOLS_EAGER_STEPS'))"
    out = subprocess.run([sys.executable, "-c", probe], env={**base, **env},
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert out.strip().splitlines()[-1] == str(eager)
