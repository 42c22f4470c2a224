"""Train/test splits that measure generalisation: whole groups (stamps, categories) held out.

Splitting rows at random would put the same stamp, in different scenes or recordings, on both
sides and reward memorising it. Here every group (all rows with one `group_column` value)
lands in exactly one split, and whole categories can be held out for zero-shot tests.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from datasets import Dataset, DatasetDict


def split_by_group(ds: Dataset, group_column: str = "id", test_fraction: float = 0.2, seed: int = 0,
                   holdout: Iterable | None = None, holdout_column: str = "top_category") -> DatasetDict:
    """Split `ds` into "train" and "test" by group, plus "heldout" when `holdout` is given.

    `test_fraction` is the share of groups (not rows) that go to test. Rows whose
    `holdout_column` value is in `holdout` (e.g. `holdout=["vehicles"]`) form "heldout", with
    every other row of their groups, so no held-out value and no group appears in train or
    test. The same `seed` always gives the same split; rows keep their order within a split.
    """
    if len(ds) == 0:
        raise ValueError("cannot split an empty dataset (0 rows)")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    _require_column(ds, group_column)
    groups = list(ds[group_column])

    held_groups: set = set()
    if holdout is not None:
        held = {holdout} if isinstance(holdout, str) else set(holdout)
        _require_column(ds, holdout_column)
        values = list(ds[holdout_column])
        absent = held - set(values)
        if absent:
            raise ValueError(f"holdout values {sorted(absent, key=str)} do not occur in column "
                             f"{holdout_column!r}; it has {sorted(set(values), key=str)[:20]}")
        held_groups = {g for g, v in zip(groups, values) if v in held}

    # Sort before shuffling so the split depends on the seed, not on the row order.
    candidates = sorted({g for g in groups if g not in held_groups}, key=str)
    if len(candidates) < 2:
        raise ValueError(f"need at least 2 groups in {group_column!r} outside the holdout to make "
                         f"train and test, found {len(candidates)}")
    n_test = min(max(1, round(test_fraction * len(candidates))), len(candidates) - 1)
    order = np.random.default_rng(seed).permutation(len(candidates))
    test_groups = {candidates[i] for i in order[:n_test]}

    rows: dict[str, list[int]] = {"train": [], "test": [], "heldout": []}
    for i, g in enumerate(groups):
        split = "heldout" if g in held_groups else "test" if g in test_groups else "train"
        rows[split].append(i)
    names = ["train", "test"] + (["heldout"] if holdout is not None else [])
    return DatasetDict({name: ds.select(rows[name]) for name in names})


def _require_column(ds: Dataset, column: str) -> None:
    if column not in ds.column_names:
        raise KeyError(f"column {column!r} not in the dataset; it has {ds.column_names}")
