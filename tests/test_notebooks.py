"""Rules every committed notebook follows (COURSE.md sections 4 and 6)."""
import re
from pathlib import Path

import nbformat
import pytest

from mmcourse.course import find_notebooks

NOTEBOOKS = find_notebooks(Path(__file__).resolve().parents[1] / "notebooks")


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


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
def test_title_setup_cell_with_autoreload_and_kernel(path):
    nb = nbformat.read(path, as_version=4)
    assert re.match(rf"# {path.stem[:2]} · \S", nb.cells[0].source), "the first cell is the '# NN · title' markdown"
    first = _code(nb)[0]
    # Exercises edit mmcourse: autoreload makes the edits take effect without a restart.
    assert "%load_ext autoreload" in first and "%autoreload 2" in first
    # Without it a headless kernel shows the figures made before the first pyplot call as text.
    assert "%matplotlib inline" in first
    setup_cells = [src for src in _code(nb)[:3] if re.search(r"\bsetup\(", src)]
    assert setup_cells, "one of the first three code cells calls mmcourse.setup()"
    assert nb.metadata.get("kernelspec", {}).get("name") == "mmcourse"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_results_are_written_then_every_bar_checked_in_the_last_cell(path):
    code = _code(nb := nbformat.read(path, as_version=4))
    assert re.search(rf"""Results\(\s*["']{path.stem}["']""", "\n".join(code)), \
        "Results is named after the notebook's stem"
    assert ".write()" in "\n".join(code), "the results are written to build/metrics"
    assert re.search(r"\bresults\.check\(\)", code[-1]), "the last code cell asserts the bars: results.check()"
    assert "bar=" in "\n".join(code), "at least one metric carries a bar"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_have_collapsed_answers(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    exercises = text[text.find("Exercises"):]
    assert "Exercises" in text, "the notebook ends with exercises"
    numbered = re.findall(r"^\s*\d+\.\s+\*\*", exercises, flags=re.M)
    answers = re.findall(r"<details>", exercises)
    assert numbered and len(answers) >= len(numbered), \
        f"{len(numbered)} exercises but {len(answers)} collapsed <details> answers"


# Words that mark unfinished text or speak of the project instead of the course.
PLACEHOLDERS = ("TODO", "TAKEAWAYS", "FIXME", "XXX", "TBD")
PROJECT_WORDS = (r"the issue", r"issue's", r"the reviewers?", r"the ticket", r"closing note")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_placeholders_or_project_words_in_student_text(path):
    nb = nbformat.read(path, as_version=4)
    found = [(i, w) for i, c in enumerate(nb.cells) for w in PLACEHOLDERS if re.search(rf"\b{w}\b", c.source)]
    found += [(i, w) for i, c in enumerate(nb.cells) for w in PROJECT_WORDS
              if re.search(rf"\b{w}\b", c.source, flags=re.I)]
    assert not found, f"{path.name}: placeholder or project words in cells {found}"


def test_the_text_checks_catch_what_they_are_for():
    assert re.search(r"\bTAKEAWAYS\b", "## Take-aways\n\nTAKEAWAYS")
    assert re.search(r"\bthe issue\b", "as the issue's bar says", flags=re.I)


def _module_aliases(nb) -> dict[str, str]:
    """{alias: module} for `from mmcourse.x import y as Z` and `import mmcourse.x as Z` in the code."""
    code = "\n".join(_code(nb))
    found = {alias: f"{package}.{name}" for package, name, alias
             in re.findall(r"from (mmcourse[\w.]*) import (\w+) as (\w+)", code)}
    found |= {alias: module for module, alias in re.findall(r"import (mmcourse[\w.]*) as (\w+)", code)}
    return found


def _missing_names(text: str, aliases: dict[str, str]) -> list[str]:
    import importlib

    missing = []
    for alias, module in aliases.items():
        for chain in re.findall(rf"(?<![\w.]){alias}((?:\.\w+)+)", text):
            obj = importlib.import_module(module)
            for name in chain.strip(".").split("."):
                if not hasattr(obj, name):
                    missing.append(f"{alias}{chain} ({module} has no {name!r})")
                    break
                obj = getattr(obj, name)
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_helper_a_notebook_names_exists(path):
    """Exercises and prose name helpers as `V.balanced_rows`; each must exist in the current API."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    missing = _missing_names(text, _module_aliases(nb))
    assert not missing, f"{path.name} names helpers that do not exist: {missing}"


def test_the_name_check_finds_a_missing_helper():
    aliases = {"V": "mmcourse.referencing.vqa"}
    assert _missing_names("call `V.balanced_rows(q, a)` then `V.VQAModel.encode_image`", aliases) == []
    assert _missing_names("use `V.no_such_helper(x)`", aliases) == \
        ["V.no_such_helper (mmcourse.referencing.vqa has no 'no_such_helper')"]


def test_notebook_10_asks_for_notebook_07s_av_digit_networks_with_07s_settings():
    # Otherwise 10 would train its own pair instead of reading 07's from the cache: slower, not wrong.
    by_name = {p.name[:2]: "\n".join(_code(nbformat.read(p, as_version=4))) for p in NOTEBOOKS if p.name[:2] in ("07", "10")}
    for name in ("DIGIT_TEACHER_EPOCHS", "DIGIT_STUDENT_EPOCHS"):
        lines = {n: re.search(rf"^{name} = (.*)$", code, re.M).group(1) for n, code in by_name.items()}
        assert lines["07"] == lines["10"], f"{name}: 07 says {lines['07']}, 10 says {lines['10']}"
    assert re.search(r"^TEMPERATURE = 2\.0 ", by_name["07"], re.M) and re.search(r"^TEMPERATURE, LENGTH = 2\.0,", by_name["10"], re.M)
    width = re.search(r"^WIDTH = (rt\.profile\.pick\(.*?\))", by_name["07"], re.M).group(1)
    assert re.search(rf"^DIGIT_WIDTH = {re.escape(width)}", by_name["10"], re.M)
    assert "width=WIDTH" in by_name["07"] and "width=DIGIT_WIDTH" in by_name["10"]
