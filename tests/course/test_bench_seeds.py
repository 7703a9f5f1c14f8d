"""benchmarks/bench_seeds.py reruns a notebook's own experiment cells over seeds: its specs
must name cells that exist, and --set may change only what the hyperparameters define."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench():
    spec = importlib.util.spec_from_file_location("bench_seeds",
                                                  ROOT / "benchmarks" / "bench_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = bench()


@pytest.mark.parametrize("name", sorted(BENCH.SPECS))
def test_each_spec_names_experiment_cells_of_its_notebook_and_a_seed(name):
    nb = nbformat.read(ROOT / "course" / "source" / name / f"{name}.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    missing = [cell for cell in BENCH.SPECS[name]["cells"] if cell not in cells]
    assert not missing, missing
    assert "\nSEED = 0" in "\n" + cells["hyperparameters"].source
    compile(BENCH.SPECS[name]["report"], f"{name} report", "eval")  # a valid expression


def test_set_refuses_a_name_the_hyperparameters_cell_does_not_define():
    with pytest.raises(SystemExit, match="defines no NOT_A_HYPERPARAMETER"):
        BENCH.run("05_spectral_norm", 0, {"NOT_A_HYPERPARAMETER": "1"})
