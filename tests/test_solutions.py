"""The executed solutions for self-learners are generated from the course source."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "course" / "source").glob("*/*.ipynb"))


def code_cells(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_code_matches_the_source(source):
    solution = ROOT / "solutions" / source.name
    assert solution.exists(), f"{solution} is missing: run `make course` to generate it"
    src, sol = nbformat.read(source, 4), nbformat.read(solution, 4)
    assert code_cells(sol) == code_cells(src), (
        f"{solution.name} is out of date with {source}: regenerate it with `make course` "
        "(solutions are generated, never edited by hand)")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_was_executed_in_full_mode_with_figures(source):
    nb = nbformat.read(ROOT / "solutions" / source.name, 4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "FULL mode" in text and "SHORT mode" not in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_shows_training_as_it_ended(source):
    """Progress bars and the dashboard keep their final state in the executed notebook."""
    nb = nbformat.read(ROOT / "solutions" / source.name, 4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs
                if "application/vnd.jupyter.widget-view+json" in o.get("data", {})], \
        "a widget shows nothing in a notebook read without a live front end"
    bars = [line for o in outputs if o.output_type == "stream"
            for line in o.text.splitlines() if line.startswith("training:")]
    assert bars and all("100%" in line for line in bars), bars[:3]
