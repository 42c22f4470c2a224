"""Measured exercise answers: each exercise's change made on a copy of the course, the notebook run
headless, and its validation numbers kept beside the unchanged notebook's over seeds 0-2.

    python -m mmcourse.exercises 02            # every exercise of notebook 02
    python -m mmcourse.exercises 02 --only 3   # exercise 3 only, keep the others
    python -m mmcourse.exercises 02 --again    # re-measure what is already measured too
    python -m mmcourse.exercises 02 --render   # only rewrite the notebook's measured-answers cell

What each exercise changes and what to measure is written in `notebooks/exercises/<notebook>.py`.
A `Change` is the edit the exercise asks for, as the text it replaces, so the numbers are exactly
what a student who follows the exercise gets; a test fails when the notebook or module no longer
holds that text. The measurements go to `notebooks/exercises/<notebook>.json`, and the command
writes them, one table folded under each exercise, into the markdown cell after the notebook's
exercises ("Measured answers"), so they read on any notebook viewer. Changes run on seed 0, the
unchanged notebook on seeds 0-2, so every answer stands beside the spread another seed makes.

A definitions file holds:

    MEASURES = {"R@1 (validation)": "val_recall(model, 1)", ...}  # name -> expression, evaluated last
    HELPERS = "def val_recall(model, k): ..."                      # code the expressions may call
    VARIANTS = [Variant(1, "frozen at 1.0", (Change("notebook", "old", "new"),), (...measures shown)), ...]
    UNCHANGED_SHOWS = {6: ("CSLS K=1 top-1", ...)}                 # exercises answered by the unchanged runs
    CLAIMS = [ExerciseClaim("...", 1, "frozen at 1.0: R@1 (validation)", "<", "unchanged: R@1 (validation)")]
"""
from __future__ import annotations

import argparse
import html
import importlib.util
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mmcourse.files import atomic_write_text
from mmcourse.report import COMPARISONS, _fmt, environment
from mmcourse.runtime import REPO_ROOT, cache_dir

EXERCISE_DIR = REPO_ROOT / "notebooks" / "exercises"
UNCHANGED = "unchanged"
WITHIN = "within"  # an ExerciseClaim's op: |left - right| < margin ("moves less than another seed does")
SEEDS = (0, 1, 2)
_MARK = "EXERCISE_MEASURED "
# What a copy of the course needs to run a notebook; caches stay where they are ($MMCOURSE_CACHE).
_COPIED = ("mmcourse", "notebooks", "data", "pyproject.toml")


@dataclass(frozen=True)
class Change:
    """Replace `old` by `new` in `path`: "notebook" (the notebook's cells) or a repository file."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Variant:
    """One measured answer: exercise `exercise`, the edits it asks for, the measures its table shows."""

    exercise: int
    name: str
    changes: tuple[Change, ...]
    shows: tuple[str, ...]
    stop_after: str | None = None  # text of the last cell the measures need: later cells are not run

    def key(self) -> list:
        """What makes this measurement: a run recorded under another key is stale."""
        return [[c.path, c.old, c.new] for c in self.changes] + [self.stop_after]


@dataclass(frozen=True)
class ExerciseClaim:
    """An answer's comparison, `left op right`: each "<variant>: <measure>" (seed 0) or a number;
    op "within" says |left - right| < margin.

    "unchanged: <measure>" is the unchanged notebook on seed 0; "spread: <measure>" the range of
    the unchanged notebook over seeds 0-2. `margin` asks for a clear win, as in `report.Claim`;
    a margin of "spread: <measure>" asks for more than another seed moves the measure."""

    text: str
    exercise: int
    left: str | float
    op: str
    right: str | float
    margin: str | float = 0.0

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS and self.op != WITHIN:
            raise ValueError(f"claim {self.text!r}: comparison {self.op!r} is not one of "
                             f"{sorted(COMPARISONS) + [WITHIN]}")

    def sentence(self, measured: "Measurements") -> str:
        """'<text>: holds (24.000 < 27.000 − 2.000)', with the numbers compared."""
        a, b, margin = measured.side(self.left), measured.side(self.right), measured.side(self.margin)
        verdict = "holds" if self.holds(measured) else "does NOT hold"
        if self.op == WITHIN:
            numbers = f"|{_fmt(a)} − {_fmt(b)}| < {_fmt(margin)}"
        else:
            shift = margin if self.op.startswith(">") else -margin
            extra = f" {'+' if shift > 0 else '−'} {_fmt(abs(shift))}" if shift else ""
            numbers = f"{_fmt(a)} {self.op} {_fmt(b)}{extra}"
        return f"{self.text[:1].upper()}{self.text[1:]}: {verdict} ({numbers})"

    def holds(self, measured: "Measurements") -> bool:
        a, b, margin = measured.side(self.left), measured.side(self.right), measured.side(self.margin)
        if self.op == WITHIN:
            return abs(a - b) < margin
        shift = margin if self.op.startswith(">") else -margin
        return bool(COMPARISONS[self.op](a, b + shift))


def within_spread(text: str, exercise: int, variant: str, measure: str) -> ExerciseClaim:
    """`variant` moves `measure` by less than the unchanged notebook's seeds differ."""
    return ExerciseClaim(text, exercise, f"{variant}: {measure}", WITHIN, f"{UNCHANGED}: {measure}",
                         margin=f"spread: {measure}")


def beyond_spread(text: str, exercise: int, variant: str, measure: str, op: str) -> ExerciseClaim:
    """`variant` moves `measure` up (op ">") or down ("<") by more than the unchanged seeds differ."""
    return ExerciseClaim(text, exercise, f"{variant}: {measure}", op, f"{UNCHANGED}: {measure}",
                         margin=f"spread: {measure}")


@dataclass
class Definitions:
    notebook: str
    measures: dict[str, str]
    helpers: str
    variants: list[Variant]
    claims: list[ExerciseClaim] = field(default_factory=list)
    unchanged_shows: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def exercises(self) -> list[int]:
        return sorted({v.exercise for v in self.variants} | set(self.unchanged_shows))

    def shows(self, exercise: int) -> list[str]:
        """The measures exercise `exercise`'s table shows, in order."""
        found = [m for v in self.variants if v.exercise == exercise for m in v.shows]
        return list(dict.fromkeys(list(self.unchanged_shows.get(exercise, ())) + found))


def definitions_path(notebook: str, directory: Path | None = None) -> Path:
    return (directory or EXERCISE_DIR) / f"{notebook}.py"


def measurements_path(notebook: str, directory: Path | None = None) -> Path:
    return (directory or EXERCISE_DIR) / f"{notebook}.json"


def load_definitions(notebook: str, directory: Path | None = None) -> Definitions:
    path = definitions_path(notebook, directory)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: a notebook's measured exercises are defined there")
    spec = importlib.util.spec_from_file_location(f"_exercises_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = Definitions(notebook, dict(module.MEASURES), getattr(module, "HELPERS", ""),
                        list(module.VARIANTS), list(getattr(module, "CLAIMS", [])),
                        dict(getattr(module, "UNCHANGED_SHOWS", {})))
    names = [v.name for v in found.variants]
    if len(set(names)) != len(names) or UNCHANGED in names:
        raise ValueError(f"{path}: variant names must be unique and not {UNCHANGED!r}")
    for n in found.exercises():
        unknown = set(found.shows(n)) - set(found.measures)
        if unknown:
            raise ValueError(f"{path}: exercise {n} shows {sorted(unknown)}, which MEASURES does not define")
    return found


# ---------------------------------------------------------------------------- applying changes

def apply_changes(root: Path, notebook: str, changes: tuple[Change, ...]) -> None:
    """Make the edits in the copy of the course at `root`; each `old` text must occur exactly once."""
    import nbformat

    book = root / "notebooks" / f"{notebook}.ipynb"
    for change in changes:
        if change.path == "notebook":
            nb = nbformat.read(book, as_version=4)
            hits = [c for c in nb.cells if c.cell_type == "code" and change.old in c.source]
            _check_once(notebook + ".ipynb", change.old, sum(c.source.count(change.old) for c in hits))
            hits[0].source = hits[0].source.replace(change.old, change.new)
            nbformat.write(nb, book)
        else:
            target = root / change.path
            text = target.read_text(encoding="utf-8") if target.exists() else ""
            _check_once(change.path, change.old, text.count(change.old))
            target.write_text(text.replace(change.old, change.new), encoding="utf-8")


def _check_once(where: str, old: str, count: int) -> None:
    if count != 1:
        raise ValueError(f"an exercise's change expects {old!r} once in {where}, found it {count} times: "
                         "update the exercise (its text and its definitions file) to the current code")


def _measuring_cell(definitions: Definitions, variant: Variant | None) -> str:
    # A variant evaluates only what its table shows, the unchanged notebook everything. Each
    # measure is evaluated on its own: a run that stops early or breaks a later cell still
    # reports what it has.
    names = definitions.measures if variant is None else variant.shows
    measures = {name: definitions.measures[name] for name in names}
    return (f"{definitions.helpers}\n"
            "import json as _json\n"
            "_measured = {}\n"
            f"for _name, _expr in {measures!r}.items():\n"
            "    try:\n"
            "        _measured[_name] = float(eval(_expr))\n"
            "    except Exception:\n"
            "        pass\n"
            f"print({_MARK!r} + _json.dumps(_measured))\n")


def _prepare(root: Path, definitions: Definitions, variant: Variant | None) -> Path:
    import nbformat

    book = root / "notebooks" / f"{definitions.notebook}.ipynb"
    nb = nbformat.read(book, as_version=4)
    stop_after = variant.stop_after if variant else None
    if stop_after is not None:
        last = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and stop_after in c.source]
        _check_once(book.name, stop_after, len(last))
        nb.cells = nb.cells[: last[0] + 1]
    nb.cells.append(nbformat.v4.new_code_cell(_measuring_cell(definitions, variant)))
    nbformat.write(nb, book)
    return book


def copy_course(source: Path, target: Path) -> Path:
    """The parts of the course a notebook run reads, copied to `target` (no caches, no build)."""
    skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")
    for name in _COPIED:
        item = source / name
        if item.is_dir():
            shutil.copytree(item, target / name, ignore=skip)
        elif item.exists():
            shutil.copy2(item, target / name)
    return target


def run_variant(definitions: Definitions, variant: Variant | None, seed: int,
                source: Path = REPO_ROOT, timeout: int = 1800) -> dict:
    """Run the notebook once on a copy of the course with the variant's changes (None: unchanged)."""
    import nbformat

    from mmcourse.course import execute_notebook
    from mmcourse.references import _environ

    with tempfile.TemporaryDirectory(prefix="mmcourse-exercise-") as tmp:
        root = copy_course(source, Path(tmp) / "course")
        apply_changes(root, definitions.notebook, variant.changes if variant else ())
        book = _prepare(root, definitions, variant)
        env = {"MMCOURSE_SEED": str(seed), "MMCOURSE_BUILD": str(Path(tmp) / "build"),
               "MMCOURSE_CACHE": str(cache_dir()), "PYTHONPATH": str(root)}
        with _environ(env):
            seconds, _ = execute_notebook(book, Path(tmp) / "executed", timeout=timeout, allow_errors=True)
        executed = nbformat.read(Path(tmp) / "executed" / book.name, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    printed = "".join(o.get("text", "") for o in outputs[-3:] if o.get("output_type") == "stream")
    if _MARK not in printed:
        raise RuntimeError(f"{definitions.notebook}, {variant.name if variant else UNCHANGED}: "
                           "the measuring cell printed nothing")
    measured = json.loads(printed.split(_MARK, 1)[1].splitlines()[0])
    errors = [f"{o['ename']}: {o['evalue'][:200]}" for o in outputs if o.get("output_type") == "error"]
    return {"variant": variant.name if variant else UNCHANGED,
            "exercise": variant.exercise if variant else None,
            "key": variant.key() if variant else [], "seed": seed, "seconds": round(seconds, 1),
            "measured": measured, "errors": errors}


# ---------------------------------------------------------------------------- reading them back

@dataclass
class Measurements:
    notebook: str
    runs: list[dict]
    environment: dict

    def run(self, variant: str, seed: int = 0) -> dict | None:
        return next((r for r in self.runs if r["variant"] == variant and r["seed"] == seed), None)

    def value(self, variant: str, measure: str, seed: int = 0) -> float | None:
        found = self.run(variant, seed)
        return None if found is None else found["measured"].get(measure)

    def spread(self, measure: str) -> tuple[float, float] | None:
        found = [r["measured"][measure] for r in self.runs
                 if r["variant"] == UNCHANGED and measure in r["measured"]]
        return (min(found), max(found)) if found else None

    def side(self, which: str | float) -> float:
        if not isinstance(which, str):
            return float(which)
        variant, _, measure = which.partition(": ")
        if variant == "spread":
            low, high = self.spread(measure) or (None, None)
            if low is None:
                raise KeyError(f"no unchanged run measured {measure!r}")
            return high - low
        value = self.value(variant, measure)
        if value is None:
            raise KeyError(f"{which!r}: no seed-0 run of {variant!r} measured {measure!r}")
        return value

    def stale(self, definitions: Definitions) -> list[str]:
        """Variants whose measurement is missing or was made with other changes."""
        problems = [] if all(self.run(UNCHANGED, s) for s in SEEDS) else [f"{UNCHANGED} (seeds {list(SEEDS)})"]
        for v in definitions.variants:
            found = self.run(v.name)
            if found is None or found["key"] != json.loads(json.dumps(v.key())):
                problems.append(v.name)
        return problems


def load_measurements(notebook: str, directory: Path | None = None) -> Measurements | None:
    path = measurements_path(notebook, directory)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("notebook") != notebook:
        raise ValueError(f"{path} is not the exercise measurements of {notebook}: regenerate it with "
                         f"`python -m mmcourse.exercises {notebook[:2]}`")
    return Measurements(notebook, data["runs"], data.get("environment", {}))


def exercise_table(definitions: Definitions, measured: Measurements, exercise: int) -> str:
    """One exercise's measured answer as an HTML table: the unchanged notebook on seeds 0-2, then
    each change (seed 0), then the answer's claims with the numbers they compare."""
    variants = [v for v in definitions.variants if v.exercise == exercise]
    shows = definitions.shows(exercise)
    head = "".join(f"<th>{html.escape(m)}</th>" for m in shows)
    rows = []
    # The unchanged notebook on every seed first: the spread a change must clear.
    for name, seed in [(UNCHANGED, s) for s in SEEDS] + [(v.name, 0) for v in variants]:
        run = measured.run(name, seed)
        label = f"unchanged, seed {seed}" if name == UNCHANGED else html.escape(name)
        cells = "".join(f"<td>{_fmt(measured.value(name, m, seed)) if run else 'not measured'}</td>" for m in shows)
        note = "" if run is None or not run["errors"] else html.escape("; ".join(e.split(":")[0] for e in run["errors"]))
        seconds = f"{run['seconds']:.0f}" if run else ""
        rows.append(f"<tr><td>{label}</td>{cells}<td>{seconds}</td><td>{note}</td></tr>")
    claims = [c for c in definitions.claims if c.exercise == exercise]
    said = "".join(f"<li>{html.escape(c.sentence(measured))}</li>" for c in claims)
    return (f"<table><tr><th>run</th>{head}<th>seconds</th><th>cells that raised</th></tr>{''.join(rows)}</table>"
            + (f"<ul>{said}</ul>" if said else ""))


ANSWERS_HEADING = "### Measured answers"


def answers_markdown(notebook: str, directory: Path | None = None) -> str:
    """The notebook's "Measured answers" cell: each exercise's table folded under its number."""
    definitions = load_definitions(notebook, directory)
    measured = load_measurements(notebook, directory)
    command = f"`python -m mmcourse.exercises {notebook[:2]}`"
    if measured is None:
        return f"{ANSWERS_HEADING}\n\nThe exercises have not been measured yet: {command} measures them."
    where = ", ".join(f"{k} {v}" for k, v in measured.environment.items())
    parts = [f"<details><summary><b>Exercise {n}, measured</b></summary>\n\n"
             f"{exercise_table(definitions, measured, n)}\n\n</details>" for n in definitions.exercises()]
    return "\n".join([
        ANSWERS_HEADING, "",
        "Open one after you have tried the exercise. Validation numbers; each change is one run on seed "
        "0 of the whole notebook, or as far as its measures need (its seconds are the wall-clock time "
        "of that run on a machine that may have been busy: compare them within one table only). "
        f"Written by {command} with {html.escape(where)}; `tests/test_exercises.py` checks that this "
        "cell, the changes and the sentences agree with the measurements.", "", *parts])


def write_answers(notebook: str) -> Path:
    """Put the rendered answers in the cell after the exercises (replacing an older rendering)."""
    import nbformat

    path = REPO_ROOT / "notebooks" / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_markdown_cell(answers_markdown(notebook))
    old = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(ANSWERS_HEADING)]
    if old:
        cell["id"] = nb.cells[old[0]].get("id", cell.get("id"))
        nb.cells[old[0]] = cell
    else:
        heading = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                   and "Exercises" in c.source.split("\n")[0]]
        if len(heading) != 1:
            raise ValueError(f"{path.name}: expected one markdown cell headed 'Exercises', found {len(heading)}")
        nb.cells.insert(heading[0] + 1, cell)
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------------------- the command

def measure(notebook: str, only: list[int] | None = None, seeds: tuple[int, ...] = SEEDS,
            again: bool = False) -> Path:
    """Measure the unchanged notebook (when `only` is None) and the variants; write the file.

    Runs already measured with the same changes are kept unless `again` (after a change to the
    notebook or the package that moves every number)."""
    definitions = load_definitions(notebook)
    previous = load_measurements(notebook)
    runs = [] if previous is None else [r for r in previous.runs if r["variant"] == UNCHANGED or
                                        any(v.name == r["variant"] for v in definitions.variants)]
    current = set() if previous is None or again else set(
        [(UNCHANGED, s) for s in seeds if previous.run(UNCHANGED, s)]
        + [(v.name, 0) for v in definitions.variants if v.name not in previous.stale(definitions)])
    # The unchanged runs answer the exercises in UNCHANGED_SHOWS: `--only` one of those measures them.
    unchanged = not only or any(n in definitions.unchanged_shows for n in only)
    todo: list[tuple[Variant | None, int]] = [(None, s) for s in seeds] if unchanged else []
    todo += [(v, 0) for v in definitions.variants if not only or v.exercise in only]
    todo = [(v, s) for v, s in todo if (v.name if v else UNCHANGED, s) not in current]
    path = measurements_path(notebook)
    for i, (variant, seed) in enumerate(todo, 1):
        name = variant.name if variant else UNCHANGED
        print(f"  [{i}/{len(todo)}] {notebook}: {name}, seed {seed} ...", flush=True)
        run = run_variant(definitions, variant, seed)
        runs = [r for r in runs if not (r["variant"] == name and r["seed"] == seed)] + [run]
        content = {"notebook": notebook, "command": f"python -m mmcourse.exercises {notebook[:2]}",
                   "environment": environment(), "runs": runs}
        atomic_write_text(path, json.dumps(content, indent=1, ensure_ascii=False) + "\n")  # after each run
    return path


def main(argv: list[str] | None = None) -> int:
    from mmcourse.course import find_notebooks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", help="the notebook's number, e.g. 02")
    parser.add_argument("--only", nargs="+", type=int, help="exercise numbers to measure")
    parser.add_argument("--again", action="store_true",
                        help="re-measure runs already measured with the same changes")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing, only rewrite the notebook's measured-answers cell")
    args = parser.parse_args(argv)
    books = [b for b in find_notebooks(REPO_ROOT / "notebooks", [args.notebook])
             if definitions_path(b.stem).exists()]
    if not books:
        print(f"no notebook {args.notebook!r} with a definitions file in {EXERCISE_DIR}", file=sys.stderr)
        return 2
    for book in books:
        if not args.render:
            print(f"wrote {measure(book.stem, args.only, again=args.again).relative_to(REPO_ROOT)}")
        print(f"wrote the measured answers into {write_answers(book.stem).relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
