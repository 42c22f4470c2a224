"""The package shows the lecture's map, and every module path the course names exists.

Notebooks, exercise answers, the READMEs and docstrings name modules by path
(`mmcourse/matching/tagging.py`) or dotted name (`mmcourse.matching.tagging.DeViSE`); after a
move a stale name would send a student to a file that is not there.
"""
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmcourse"
KINDS = {"matching": ["tagging", "recipes", "soundnet"],
         "translating": ["captioning", "text_to_image"],
         "referencing": ["vqa", "localization", "separation"],
         "audio": ["features", "language_id"]}

PATH = re.compile(r"\bmmcourse/[\w/]+\.py\b")
DOTTED = re.compile(r"\bmmcourse(?:\.\w+)+")


def _texts() -> dict[str, str]:
    """Every text a student reads: notebook cells (exercises included), READMEs, module sources."""
    texts = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        texts[nb.name] = "\n".join("".join(c["source"]) for c in cells)
    for doc in [ROOT / "README.md", ROOT / "data" / "README.md"]:
        texts[doc.name if doc.parent == ROOT else "data/README.md"] = doc.read_text()
    for py in sorted(PACKAGE.rglob("*.py")):
        texts[str(py.relative_to(ROOT))] = py.read_text()
    return texts


def _resolves(dotted: str) -> bool:
    """True if `dotted` is a module, or a module followed by attributes that exist."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


TEXTS = _texts()


@pytest.mark.parametrize("source", sorted(TEXTS))
def test_every_module_path_named_exists(source):
    missing = sorted({p for p in PATH.findall(TEXTS[source]) if not (ROOT / p).is_file()})
    assert not missing, f"{source} names files that do not exist: {missing}"


@pytest.mark.parametrize("source", sorted(TEXTS))
def test_every_dotted_name_resolves(source):
    # A trailing dot ends a sentence, not a name.
    names = {d.rstrip(".") for d in DOTTED.findall(TEXTS[source])}
    broken = sorted(d for d in names if not _resolves(d))
    assert not broken, f"{source} names modules or attributes that do not exist: {broken}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_a_folder_with_its_notebooks_modules(kind):
    folder = PACKAGE / kind
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    assert modules == sorted(KINDS[kind])
    init = importlib.import_module(f"mmcourse.{kind}")
    assert init.__doc__ and all(f"`{m}`" in init.__doc__ for m in KINDS[kind]), \
        f"mmcourse/{kind}/__init__.py should say what the kind means and list its modules"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_packages_do_not_re_export(kind):
    """A name is imported from the module that defines it, so a student finds its source."""
    init = (PACKAGE / kind / "__init__.py").read_text()
    assert "import" not in init, f"mmcourse/{kind}/__init__.py should hold only its docstring"


def test_no_task_module_left_at_the_top():
    tasks = {m for modules in KINDS.values() for m in modules} | {"audio_features"}
    left = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem in tasks)
    assert not left, f"task modules belong under their kind's folder: {left}"
