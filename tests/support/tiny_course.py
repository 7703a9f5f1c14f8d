"""A one-cell assignment whose every build and grading stage runs for real in seconds:
the course that tests/course/test_pipeline.py and tests/course/test_preflight.py build."""

import nbformat

NAME = "00_tiny"


def cell(source, kind="code", **grader):
    made = (nbformat.v4.new_code_cell(source) if kind == "code"
            else nbformat.v4.new_markdown_cell(source))
    if grader:
        made.metadata["nbgrader"] = {"schema_version": 3, "grade": False, "solution": False,
                                     "locked": False, "points": 0, **grader}
        if not made.metadata["nbgrader"]["points"]:
            del made.metadata["nbgrader"]["points"]
    return made


def tiny_notebook(title="Squares"):
    """Four cells with fixed ids, as the course's notebooks have."""
    nb = nbformat.v4.new_notebook(cells=[
        cell(f"# {title}", kind="markdown"),
        cell("import math", grade_id="setup", locked=True),
        cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
             grade_id="square", solution=True),
        cell('"""square(3) is 9."""\nassert square(3) == 9 and math.isfinite(square(2))',
             grade_id="test_square", grade=True, locked=True, points=1),
    ])
    for made, cell_id in zip(nb.cells, ["title", "setup", "square", "test_square"],
                             strict=True):
        made.id = cell_id
    nb.metadata["kernelspec"] = {"name": "gan-course", "display_name": "Python 3 (GAN course)",
                                 "language": "python"}
    return nb
