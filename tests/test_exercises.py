"""Measured exercise answers: the changes still apply, the measurements are current, the claims hold."""
import json
from pathlib import Path

import nbformat
import pytest

from mmcourse import exercises as EX
from mmcourse.runtime import REPO_ROOT

DEFINED = sorted(p.stem for p in EX.EXERCISE_DIR.glob("[0-9][0-9]_*.py"))


def test_some_notebooks_have_measured_exercises():
    assert DEFINED, f"no definitions in {EX.EXERCISE_DIR}"


@pytest.mark.parametrize("notebook", DEFINED)
def test_every_change_applies_to_the_current_course(notebook, tmp_path):
    definitions = EX.load_definitions(notebook)
    root = EX.copy_course(REPO_ROOT, tmp_path / "course")
    for variant in definitions.variants:
        # Each variant on a fresh copy: one exercise's edit must not be needed by another's.
        copy = EX.copy_course(root, tmp_path / variant.name.replace("/", "_"))
        EX.apply_changes(copy, notebook, variant.changes)
        EX._prepare(copy, definitions, variant)


@pytest.mark.parametrize("notebook", DEFINED)
def test_measurements_are_current_and_claims_hold(notebook):
    definitions = EX.load_definitions(notebook)
    measured = EX.load_measurements(notebook)
    assert measured is not None, f"run `python -m mmcourse.exercises {notebook[:2]}`"
    stale = measured.stale(definitions)
    assert not stale, (f"{notebook}: {stale} measured with other changes or not at all: "
                       f"rerun `python -m mmcourse.exercises {notebook[:2]}`")
    for variant in definitions.variants:
        run = measured.run(variant.name)
        missing = [m for m in variant.shows if m not in run["measured"]]
        assert not missing, f"{notebook}, {variant.name!r}: its run measured no {missing}"
    wrong = [c.text for c in definitions.claims if not c.holds(measured)]
    assert not wrong, f"{notebook}: answers claim what the measurements do not show: {wrong}"


@pytest.mark.parametrize("notebook", DEFINED)
def test_the_notebook_shows_its_current_measured_answers(notebook):
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith(EX.ANSWERS_HEADING)]
    assert cells == [EX.answers_markdown(notebook)], \
        f"rewrite the measured answers: `python -m mmcourse.exercises {notebook[:2]} --render`"
    for n in EX.load_definitions(notebook).exercises():
        assert f"Exercise {n}, measured" in cells[0]


def _tiny_course(root: Path) -> Path:
    (root / "mmcourse").mkdir(parents=True)
    (root / "mmcourse" / "__init__.py").write_text("")
    (root / "mmcourse" / "knob.py").write_text("VALUE = 1.0\n")
    (root / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nfrom mmcourse import knob\nSCALE = 2.0\n"
                                  "seed = int(os.environ['MMCOURSE_SEED'])"),
        nbformat.v4.new_code_cell("result = knob.VALUE * SCALE + seed"),
        nbformat.v4.new_code_cell("raise AssertionError('a bar is missed')"),
        nbformat.v4.new_code_cell("later = 1"),
    ])
    nbformat.write(nb, root / "notebooks" / "99_tiny.ipynb")
    exercises = root / "notebooks" / "exercises"
    exercises.mkdir()
    (exercises / "99_tiny.py").write_text(
        "from mmcourse.exercises import Change, ExerciseClaim, Variant\n"
        "MEASURES = {'result': 'result', 'later': 'later', 'doubled': '_twice(result)'}\n"
        "HELPERS = 'def _twice(x):\\n    return 2 * x\\n'\n"
        "VARIANTS = [Variant(1, 'module', (Change('mmcourse/knob.py', 'VALUE = 1.0', 'VALUE = 5.0'),), ('result',)),\n"
        "            Variant(1, 'early stop', (Change('notebook', 'SCALE = 2.0', 'SCALE = 3.0'),), ('result', 'later'),\n"
        "                    stop_after='result = knob')]\n"
        "CLAIMS = [ExerciseClaim('the module change raises the result', 1, 'module: result', '>', 'unchanged: result')]\n")
    return root


def test_a_variant_runs_on_a_copy_with_its_change(tmp_path):
    # A whole run in a kernel, on a tiny course: the change is made in the copy, never in the source.
    root = _tiny_course(tmp_path / "src")
    definitions = EX.load_definitions("99_tiny", root / "notebooks" / "exercises")
    module, early = definitions.variants
    run = EX.run_variant(definitions, module, seed=0, source=root)
    assert run["measured"] == {"result": 10.0}                                # what its table shows
    assert run["errors"] and run["errors"][0].startswith("AssertionError")   # the rest still ran
    assert (root / "mmcourse" / "knob.py").read_text() == "VALUE = 1.0\n"     # the source is untouched
    run = EX.run_variant(definitions, early, seed=1, source=root)
    assert run["measured"] == {"result": 4.0} and run["errors"] == []          # stopped early: no `later`
    run = EX.run_variant(definitions, None, seed=0, source=root)             # unchanged: every measure
    assert run["measured"] == {"result": 2.0, "later": 1.0, "doubled": 4.0}


def test_claims_stale_runs_and_tables_read_the_measurements(tmp_path):
    root = _tiny_course(tmp_path)
    directory = root / "notebooks" / "exercises"
    definitions = EX.load_definitions("99_tiny", directory)
    runs = [{"variant": EX.UNCHANGED, "exercise": None, "key": [], "seed": s, "seconds": 1.0,
             "measured": {"result": 2.0 + s}, "errors": []} for s in EX.SEEDS]
    module = definitions.variants[0]
    runs.append({"variant": "module", "exercise": 1, "key": module.key(), "seed": 0, "seconds": 1.0,
                 "measured": {"result": 10.0}, "errors": ["AssertionError: a bar is missed"]})
    (directory / "99_tiny.json").write_text(json.dumps({"notebook": "99_tiny", "runs": runs}))
    measured = EX.load_measurements("99_tiny", directory)
    assert measured.stale(definitions) == ["early stop"]
    assert definitions.claims[0].holds(measured)
    assert measured.side("spread: result") == 2.0
    beyond = EX.ExerciseClaim("moves more than a seed", 1, "module: result", ">", "unchanged: result",
                              margin="spread: result")
    assert beyond.holds(measured)                   # 10 > 2 + 2
    assert not EX.ExerciseClaim("x", 1, "module: result", ">", "unchanged: result", margin=9).holds(measured)
    assert EX.ExerciseClaim("x", 1, "module: result", "within", "unchanged: result", margin=9).holds(measured)
    assert "|10.000 − 2.000| < 7.000" in EX.ExerciseClaim("x", 1, "module: result", "within", "unchanged: result",
                                                          margin=7).sentence(measured)
    table = EX.exercise_table(definitions, measured, 1)
    assert all(f"<td>unchanged, seed {s}</td><td>{2.0 + s:.3f}</td>" in table for s in EX.SEEDS)
    assert "10.000" in table and "not measured" in table and "AssertionError" in table
    with pytest.raises(KeyError, match="early stop"):
        measured.side("early stop: result")


def test_a_change_that_no_longer_applies_says_what_to_update(tmp_path):
    root = _tiny_course(tmp_path)
    with pytest.raises(ValueError, match="found it 0 times"):
        EX.apply_changes(root, "99_tiny", (EX.Change("notebook", "SCALE = 9.0", "SCALE = 1.0"),))
    with pytest.raises(ValueError, match="must be unique"):
        (root / "notebooks" / "exercises" / "99_dup.py").write_text(
            "from mmcourse.exercises import Variant\nMEASURES = {}\n"
            "VARIANTS = [Variant(1, 'a', (), ()), Variant(2, 'a', (), ())]\n")
        EX.load_definitions("99_dup", root / "notebooks" / "exercises")


def test_spread_claims_compare_a_variant_with_the_unchanged_notebook():
    stays = EX.within_spread("x stays", 2, "wider", "score")
    assert (stays.left, stays.op, stays.right, stays.margin) == ("wider: score", "within", "unchanged: score",
                                                                 "spread: score")
    falls = EX.beyond_spread("x falls", 2, "wider", "score", "<")
    assert (falls.left, falls.op, falls.right, falls.margin) == ("wider: score", "<", "unchanged: score",
                                                                 "spread: score")
    with pytest.raises(ValueError, match="comparison"):
        EX.beyond_spread("x", 2, "wider", "score", "=")
