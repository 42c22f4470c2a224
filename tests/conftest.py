"""Shared test settings: headless plotting, no network, and a cache folder of the tests' own.

The tests build their datasets in `.cache/tests` (unless MMCOURSE_CACHE is set), so a test run
never rebuilds or swaps a cache that a notebook running beside it is reading. The notebooks
that `make test` runs under nbval inherit the setting.
"""
import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MMCOURSE_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "tests"))
