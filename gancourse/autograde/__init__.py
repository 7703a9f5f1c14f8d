"""Autograding in nbgrader's process, where student code cannot reach: the policy on the
code students write (:mod:`~gancourse.autograde.policy`), the autograde and feedback
plug-ins (:mod:`~gancourse.autograde.plugins`), execution in the kernel's bubblewrap sandbox
(:mod:`~gancourse.autograde.execute`, :mod:`~gancourse.autograde.sandbox`) and the preflight
that starts one kernel before anyone is graded (:mod:`~gancourse.autograde.preflight`).
:mod:`~gancourse.autograde.confine` is the graded kernel's entry point: it runs before the
kernel's first cell."""
