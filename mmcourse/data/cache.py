"""Build a dataset once, cache it as Arrow, reload it in seconds.

Every generated or converted dataset in the course goes through `cached_dataset`, so a
second run of a notebook starts from the cache instead of rebuilding. The cache is keyed by
a fingerprint of its *recipe*: the source code of the modules and functions that build it
and any parameters. Edit the code that derives a column (say, how tags are made) and the
next call builds afresh; nobody has to remember to bump a version number.

Two processes (a notebook and the unit tests, say) may ask for the same dataset at once: a
file lock around the check, the build and the swap makes the second one wait and then read
what the first built.
"""
from __future__ import annotations

import hashlib
import inspect
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from filelock import FileLock

from mmcourse.files import atomic_path
from mmcourse.runtime import cache_dir

AnyDataset = Union[Dataset, DatasetDict]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def recipe_fingerprint(recipe: Iterable[Any]) -> str:
    """12 hex digits that change whenever any part of `recipe` changes.

    Modules, classes and functions count by their source code, arrays and tensors by their
    shape, dtype and bytes (data a model was trained on), anything else by its repr (so pass
    plain parameters: numbers, strings, tuples of them).
    """
    digest = hashlib.sha1()
    for part in recipe:
        if inspect.ismodule(part) or inspect.isclass(part) or inspect.isroutine(part):
            data = inspect.getsource(part).encode("utf-8")
        elif isinstance(part, (np.ndarray, torch.Tensor)):
            array = np.ascontiguousarray(part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else part)
            data = f"{array.shape} {array.dtype}".encode() + array.tobytes()
        else:
            data = repr(part).encode("utf-8")
        digest.update(data + b"\x00")
    return digest.hexdigest()[:12]


def dataset_cache_path(name: str, recipe: Iterable[Any] = ()) -> Path:
    """Where `cached_dataset(name, ..., recipe)` keeps its copy: `cache_dir()/datasets/<name>-<fingerprint>`."""
    if not _NAME.match(name):
        raise ValueError(f"dataset cache name {name!r} must be letters, digits, '_', '-' or '.' "
                         "(it becomes a folder name)")
    return cache_dir() / "datasets" / f"{name}-{recipe_fingerprint(recipe)}"


def model_cache_path(name: str, recipe: Iterable[Any]) -> Path:
    """Where a model trained by `recipe` (its code, data, settings, seed) keeps its checkpoint:
    `cache_dir()/models/<name>-<fingerprint>.pt`. Pass it as `fit(checkpoint=...)`: the first run
    trains and saves every epoch, a later one with the same recipe resumes the finished run, so it
    gets the same weights, history and random state without training again."""
    if not _NAME.match(name):
        raise ValueError(f"model cache name {name!r} must be letters, digits, '_', '-' or '.' (it becomes a file name)")
    return cache_dir() / "models" / f"{name}-{recipe_fingerprint(recipe)}.pt"


def cached_dataset(name: str, build_fn: Callable[[], AnyDataset], recipe: Iterable[Any] = (),
                   rebuild: bool = False) -> AnyDataset:
    """Return the cached dataset `name`, calling `build_fn()` and saving its result if needed.

    `recipe` lists what the result depends on (the building modules, parameters); a change to
    any of them gives a new cache, and older caches of the same `name` are removed. The copy is
    written into a temporary folder that is moved into place only when complete
    (mmcourse.files.atomic_path). The returned dataset is always the one read back from disk
    (memory-mapped), so the first run and every later run see exactly the same thing.
    """
    path = dataset_cache_path(name, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{name}.lock")):
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
        for stale in path.parent.glob(f"{name}-*"):  # earlier recipes of the same dataset
            if stale != path and stale.is_dir() and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{12}}", stale.name):
                shutil.rmtree(stale, ignore_errors=True)
        return load_from_disk(str(path))
