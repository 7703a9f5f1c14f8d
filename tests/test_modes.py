"""Full and short mode: what nbgrader's environment variable switches."""

import pytest
import tensorflow as tf

from gantools import course


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
