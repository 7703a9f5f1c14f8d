"""gancourse: the machinery that builds the GAN course and grades it.

The library students call is :mod:`gantools`; this package builds the notebooks from their
sources and grades what students hand in. Its folders are the places its code runs, which
are the trust boundaries of grading (``docs/grading.md``):

* :mod:`gancourse.checks` — in the **student's kernel**, next to code the student wrote:
  ``load``, the harness, the tripwire, the evidence a check reports, one module of checks
  per notebook (``checks/notebooks/``). It trusts nothing the kernel holds.
* :mod:`gancourse.autograde` — in **nbgrader's process**, which student code never reaches:
  the policy on student code, the nbgrader plug-ins, the sandboxed execution, the preflight;
  and :mod:`gancourse.autograde.confine`, which runs in the graded kernel *before* its first
  cell (no child processes, gantools switched off in cells students write).
* :mod:`gancourse.classgrade` — the **instructor's machines**: a whole class graded on a
  Dask cluster (``python -m gancourse.classgrade``), its workers and the gradebook.
* :mod:`gancourse.build` — the **instructor's build**: ``python -m gancourse.build``
  (``make course``) releases, executes and self-checks every notebook.
* :mod:`gancourse.modes` (the notebooks' full and short budgets) and
  :mod:`gancourse.kernel` (the course's Jupyter kernel, ``gan-course``).

Importing :mod:`gantools` never imports this package.
"""
