"""gantools is the library alone: importing it, or any of its modules, brings in none of the
course machinery (gancourse) and no nbgrader."""

import json
import pkgutil
import subprocess
import sys

import gantools

COURSE_ALIASES = {"gantools.grading", "gantools.course", "gantools.kernel", "gantools.grade",
                  "gantools.pipeline"}  # thin re-exports of gancourse, for released notebooks


def imported_after(statement: str) -> set[str]:
    probe = (f"import sys; {statement}; import json; "
             "print(json.dumps(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return set(json.loads(out.splitlines()[-1]))


def course_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in ("gancourse", "nbgrader")
                  or m in COURSE_ALIASES)


def test_importing_gantools_imports_no_course_machinery_and_no_nbgrader():
    modules = imported_after("import gantools")
    assert "gantools" in modules
    assert not course_modules(modules)


def test_no_library_module_imports_the_course_machinery():
    names = sorted(m.name for m in pkgutil.walk_packages(gantools.__path__, "gantools.")
                   if m.name not in COURSE_ALIASES and m.name != "gantools.__main__"
                   and not m.name.startswith(tuple(a + "." for a in COURSE_ALIASES)))
    assert "gantools.training.trainer" in names and "gantools.cli" in names
    modules = imported_after("; ".join(f"import {n}" for n in names))
    assert set(names) <= modules
    assert not course_modules(modules), "a library module imports the course machinery"


def test_the_aliases_lead_to_the_course_machinery():
    """Notebooks released before the split import gantools.grading and gantools.course."""
    from gancourse import checks, modes
    from gantools import course, grading

    assert grading.load is checks.load and course.budget is modes.budget
