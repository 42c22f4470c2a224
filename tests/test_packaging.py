"""The version floors in pyproject.toml admit no release that lacks what the code calls."""
from importlib.metadata import requires

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

# The installed package's metadata is pyproject.toml's (make setup reinstalls when it changes).
DEPENDENCIES = [Requirement(r) for r in requires("mmcourse") if "extra ==" not in r]

# What the code relies on, and the first release that has it.
NEEDS = {
    "torch": ("2.3", "torch.amp.GradScaler(device) in training.fit"),
    "torchaudio": ("2.3", "the torchaudio release built for torch 2.3"),
    "datasets": ("4.0", "datasets.List and torchcodec audio decoding in data/tuxpaint.py"),
    "sentence-transformers": ("3", "SentenceTransformer(local_files_only=...) in pretrained.py"),
    "filelock": ("3.10", "FileLock as a context manager across threads in data/cache.py"),
    "inflect": ("7", "engine.plural_noun/singular_noun/a in text.py"),
}


def _floors() -> dict[str, Version]:
    return {r.name.lower(): Version(s.version) for r in DEPENDENCIES for s in r.specifier if s.operator == ">="}


@pytest.mark.parametrize("package", sorted(NEEDS))
def test_floor_covers_what_the_code_calls(package):
    needed, why = NEEDS[package]
    floor = _floors().get(package)
    assert floor is not None, f"{package} needs a version floor in pyproject.toml ({why})"
    assert floor >= Version(needed), f"{package}>={floor} admits releases without {why}; use >={needed}"


def test_no_exact_pins():
    pinned = [str(r) for r in DEPENDENCIES if any(s.operator == "==" for s in r.specifier)]
    assert not pinned, f"keep floors loose, do not pin: {pinned}"
