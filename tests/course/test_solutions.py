"""The executed solutions for self-learners are generated from the course source."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    # each bar is one display output replaced in place: its final line, and no redraws
    bars = [o.data["text/plain"] for o in outputs if o.output_type == "display_data"
            and o.data.get("text/plain", "").startswith("training:")]
    assert bars and all("100%" in bar and "\n" not in bar for bar in bars), bars[:3]
    redraws = [line for o in outputs if o.output_type == "stream"
               for line in o.text.replace("\r", "\n").splitlines()
               if line.startswith("training:")]
    assert not redraws, redraws[:3]


TENSORFLOW_NOISE = re.compile(r"^[IWEF]\d{4} |absl::|cuInit|cuda drivers|oneDNN custom operations"
                              r"|remapper failed|TF-TRT|computation placer", re.MULTILINE)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_shows_no_tensorflow_noise(source):
    """A self-learner's first output is the course's: no C++ log lines of TensorFlow (start-up
    notices, missing-GPU errors, grappler's remapper) anywhere in the executed solution."""
    nb = nbformat.read(ROOT / "solutions" / source.name, 4)
    noise = [(i, m.group(0)) for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for o in c.outputs if o.output_type == "stream"
             for m in [TENSORFLOW_NOISE.search(o.text)] if m]
    assert not noise, f"TensorFlow's log lines in cells {noise}: rebuild with `make course`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_records_the_fingerprint_make_course_reuses_it_by(source):
    """A fresh clone's `make course` executes nothing when the committed solutions are up to
    date: each records what it was executed from, and that still matches the tree."""
    from gancourse.build import pipeline

    record = pipeline.recorded(ROOT / "solutions" / source.name)
    assert record.get("fingerprint"), "no fingerprint: rebuild with `make course`"
    stale = pipeline.stale_inputs(pipeline.COURSE, source.parent.name, record)
    assert not stale, (f"{source.name} was executed before {stale} changed: rebuild it with "
                       f"`make course ONLY={source.parent.name}` and commit it")
    assert record["text"] == pipeline.digest(source), "`make course` refreshes its text"
