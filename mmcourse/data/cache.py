"""Build a dataset once, cache it as Arrow, reload it in seconds.

Every generated or converted dataset in the course goes through `cached_dataset`, so a
second run of a notebook starts from the cache instead of rebuilding. Bump `version`
whenever the build changes what it produces: the old cache is then simply not read.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Union

from datasets import Dataset, DatasetDict, load_from_disk

from mmcourse.files import atomic_path
from mmcourse.runtime import cache_dir

AnyDataset = Union[Dataset, DatasetDict]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def dataset_cache_path(name: str, version: int | str) -> Path:
    """Where `cached_dataset(name, ..., version)` keeps its copy: `cache_dir()/datasets/<name>-v<version>`."""
    if not _NAME.match(name):
        raise ValueError(f"dataset cache name {name!r} must be letters, digits, '_', '-' or '.' "
                         "(it becomes a folder name)")
    if not _NAME.match(str(version)):
        raise ValueError(f"dataset cache version {version!r} must be a simple number or word")
    return cache_dir() / "datasets" / f"{name}-v{version}"


def cached_dataset(name: str, build_fn: Callable[[], AnyDataset], version: int | str = 1,
                   rebuild: bool = False) -> AnyDataset:
    """Return the cached dataset `name`, calling `build_fn()` and saving its result if needed.

    The copy is written with `Dataset.save_to_disk` into a temporary folder that replaces the
    cache in one step (mmcourse.files.atomic_path), so an interrupted build leaves no half-
    written cache. The returned dataset is always the one read back from disk (memory-mapped),
    so the first run and every later run see exactly the same thing.
    """
    path = dataset_cache_path(name, version)
    if path.exists() and not rebuild:
        try:
            return load_from_disk(str(path))
        except Exception as err:  # a cache from another `datasets` version, or damaged by hand
            raise RuntimeError(f"cannot read cached dataset {path}: {err}; "
                               f"delete that folder or pass rebuild=True") from err
    ds = build_fn()
    if not isinstance(ds, (Dataset, DatasetDict)):
        raise TypeError(f"build function for {name!r} returned {type(ds).__name__}, "
                        "expected a datasets.Dataset or DatasetDict")
    with atomic_path(path) as tmp:
        ds.save_to_disk(str(tmp))
    return load_from_disk(str(path))
