"""What the tests of every notebook's checks assert (tests/course/test_grading_NN.py)."""

import pytest

from gancourse.checks.evidence import agree


def passes_visible_and_hidden(checks, check, answer, capsys):
    """An honest answer passes the visible and the hidden check, each with one ✓ line."""
    getattr(checks, check)(answer)
    getattr(checks, check)(answer, hidden=True, nonce=12345)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("✓ ") for line in lines)


def reports_what_the_grader_recomputes(load, check, answer, monkeypatch):
    """What an honest answer reports from the kernel is what VerifyValues recomputes, with a
    fresh copy of the checks, in its own process."""
    checks = load()
    assert check in checks.VERIFIED
    records = []
    monkeypatch.setattr(checks._h, "report_values",
                        lambda name, hidden, seed, values: records.append(
                            (name, hidden, seed, list(values))))
    for hidden in (False, True):
        getattr(checks, check)(answer, hidden=hidden, nonce=777)
    assert [(r[0], r[1]) for r in records] == [(check, False), (check, True)]
    for name, hidden, seed, values in records:
        want = load().expected(name, seed, hidden)
        assert len(values) == len(want) and all(map(agree, values, want))


def names_its_hint(checks, check, answer, hint):
    """A usual mistake fails the check, and the message names it (``hint``: a regex)."""
    with pytest.raises(AssertionError, match=hint):
        getattr(checks, check)(answer)


def hides_its_expected_values(checks, check, answer):
    """A hidden check that fails says so and shows no expected value; returns the message."""
    with pytest.raises(AssertionError) as caught:
        getattr(checks, check)(answer, hidden=True, nonce=99)
    message = str(caught.value)
    assert "hidden case" in message and "expected" not in message
    return message
