"""Rules every committed notebook follows (COURSE.md section 4 and 6)."""
from pathlib import Path

import nbformat
import pytest

from mmcourse.course import find_notebooks

NOTEBOOKS = find_notebooks(Path(__file__).resolve().parents[1] / "notebooks")


def test_course_notebook_names_are_numbered_and_unique():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shape_title_setup_and_results_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("setup(" in src for src in code[:3]), "one of the first cells calls mmcourse.setup()"
    results = [src for src in code if "Results(" in src]
    assert results, "a results cell records the metrics"
    last = code[-1] if ".require(" in code[-1] else next((s for s in reversed(code) if ".require(" in s), "")
    assert ".write(" in "".join(code) and ".require(" in last, "the results cell writes and asserts bars"
    assert f'"{path.stem}"' in "".join(results) or f"'{path.stem}'" in "".join(results), \
        "Results is named after the notebook's stem"
    assert nb.metadata.get("kernelspec", {}).get("name") == "mmcourse"
