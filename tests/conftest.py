"""Shared test settings: headless plotting, no network, and a cache folder of the tests' own.

The tests build their datasets in `.cache/tests` (unless MMCOURSE_CACHE is set), so a test run
never rebuilds or swaps a cache that a notebook running beside it is reading. The notebooks
that `make test` runs under nbval inherit the setting.
"""
import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MMCOURSE_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "tests"))


@pytest.fixture(scope="session")
def tuxpaint() -> Path:
    """The installed Tux Paint stamps folder; a test that needs the real stamps skips without it."""
    from mmcourse.data.tuxpaint import stamps_root
    try:
        return stamps_root()
    except FileNotFoundError:
        pytest.skip("tuxpaint-stamps-default not installed (`make setup` installs it)")
