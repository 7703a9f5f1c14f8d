"""Digests of what a built or graded result depends on: files, a notebook's code cells,
Python source without its docstrings, and the course machinery. The build
(:mod:`gancourse.build.pipeline`) fingerprints executed solutions with them; a class-grading
worker checks with :func:`grading_code_digest` that it grades with the coordinator's code
(and imports nothing else of the build for it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MACHINERY = Path(__file__).resolve().parents[1]  # the gancourse package


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def python_digest(path: Path) -> str:
    """What running a Python file depends on: its syntax tree without docstrings, so that
    comments, docstrings and layout can change without making solutions stale. A file that
    does not parse digests by its bytes."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return digest(path)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return "ast:" + hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def code_digest(path: Path) -> str:
    """What executing a notebook depends on: its code cells (source and nbgrader metadata,
    in order). Markdown is left out: a change of text alone needs no re-execution."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = [(c.source, c.metadata.get("nbgrader", {})) for c in nb.cells
            if c.cell_type == "code"]
    return "code:" + hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()


def fingerprint(inputs: dict[str, str]) -> str:
    """One digest of ``{relative path: file digest}``."""
    return hashlib.sha256(json.dumps(sorted(inputs.items())).encode()).hexdigest()


def relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def grading_code_digest(course: Path, machinery: Path = MACHINERY) -> str:
    """The code that decides a self-check besides the notebook: the course machinery
    (gancourse: checks, autograding, this build) and the course's nbgrader configuration."""
    files = {relative(p, machinery.parent): digest(p) for p in sorted(machinery.rglob("*.py"))
             if "__pycache__" not in p.parts}
    config = course / "nbgrader_config.py"
    if config.is_file():
        files["nbgrader_config.py"] = digest(config)
    return fingerprint(files)
