"""Train / validation / test splits that measure generalisation, with no content on two sides.

Splitting rows at random would put the same stamp, in different scenes or recordings, on both
sides and reward memorising it. Here every group (all rows with one `group_column` value)
lands in exactly one split, whole categories can be held out for zero-shot tests, and groups
that share any content are kept together: Tux Paint ships identical recordings and images
under different stamp names (`flower1..8_desc_fr.ogg` are one recording), so rows are linked
through content hashes (`link_columns`) and each connected component of the "shares a hash
with" graph moves as one piece. Audio is hashed after decoding (`audio_hash`), not as file
bytes: an Ogg file carries a random stream serial number, so one recording saved twice
differs in its bytes (`badger.ogg` and `beaver.ogg` do).

    parts = split_by_group(stamps, "id", link_columns=["image_sha", "sound_sha", "description_shas"])
    assert_disjoint(parts, ["image_sha", "sound_sha", "description_shas"])   # never fails by construction
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

SPLITS = ("train", "validation", "test")


def content_hash(data: bytes) -> str:
    """A short, stable fingerprint of some bytes (sha1, 16 hex digits): equal content, equal hash."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"content_hash needs bytes, got {type(data).__name__}")
    return hashlib.sha1(bytes(data)).hexdigest()[:16]


def audio_hash(samples: Any, sample_rate: int) -> str:
    """`content_hash` of decoded audio: same samples, rate and channel count, same hash, whatever the file.

    `samples` is a float array or CPU tensor in [-1, 1], shape (time,) or (channels, time), as
    `mmcourse.data.audio_io.load_audio(..., mono=False)` returns it. The samples are rounded to
    16-bit integers first: one step (-90 dBFS) lies far below any recording's noise, and float
    noise far below one step (another ffmpeg build, another SIMD path) no longer changes the
    hash (a sample sitting exactly on a rounding boundary still could; the near-duplicate check
    in `mmcourse.data.tuxpaint` links such recordings anyway).
    """
    pcm = np.asarray(samples, dtype=np.float64)
    if pcm.ndim == 1:
        pcm = pcm[None]
    if pcm.ndim != 2 or pcm.shape[1] == 0:
        raise ValueError(f"audio_hash needs samples shaped (time,) or (channels, time) with at least "
                         f"one sample, got shape {tuple(np.shape(samples))}")
    pcm = np.clip(np.rint(pcm * 32768), -32768, 32767).astype("<i2")  # WAV's int16 maps back exactly
    return content_hash(f"{int(sample_rate)} Hz, {pcm.shape[0]} channels:".encode() + pcm.tobytes())


def _values(cell: Any) -> list:
    """The hashes one cell holds: none (None), one (a string) or several (a list)."""
    if cell is None:
        return []
    if isinstance(cell, (list, tuple)):
        return [v for v in cell if v is not None]
    return [cell]


class _UnionFind:
    def __init__(self, items: Iterable):
        self.parent = {item: item for item in items}

    def find(self, item):
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb, key=str)] = min(ra, rb, key=str)  # order-independent roots


def linked_groups(ds: Dataset, group_column: str, link_columns: Sequence[str] = ()) -> dict:
    """Map each group to a component id: groups that share any value in `link_columns` meet."""
    for column in (group_column, *link_columns):
        _require_column(ds, column)
    groups = list(ds[group_column])
    components = _UnionFind(set(groups))
    for column in link_columns:
        owner: dict = {}
        for group, cell in zip(groups, ds[column]):
            for value in _values(cell):
                components.union(owner.setdefault(value, group), group)
    return {g: components.find(g) for g in set(groups)}


def split_by_group(ds: Dataset, group_column: str = "id", test_fraction: float = 0.2,
                   val_fraction: float = 0.1, seed: int = 0, link_columns: Sequence[str] = (),
                   holdout: Iterable | str | None = None,
                   holdout_column: str = "top_category") -> DatasetDict:
    """Split `ds` into "train", "validation" and "test" by group, plus "heldout" when `holdout` is given.

    `test_fraction` and `val_fraction` are shares of the components (groups linked by shared
    content, see the module docstring), not of rows. Rows whose `holdout_column` value is in
    `holdout` (e.g. `holdout=["vehicles"]`) form "heldout", together with every row linked to
    them, so no held-out value, group or content appears in the other splits. The same `seed`
    always gives the same split; rows keep their order within a split.
    """
    if len(ds) == 0:
        raise ValueError("cannot split an empty dataset (0 rows)")
    for name, fraction in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {fraction}")
    if test_fraction + val_fraction >= 1.0:
        raise ValueError(f"test_fraction + val_fraction = {test_fraction + val_fraction} leaves "
                         "nothing to train on; keep their sum below 1")
    component = linked_groups(ds, group_column, link_columns)
    groups = list(ds[group_column])

    held: set = set()
    if holdout is not None:
        wanted = {holdout} if isinstance(holdout, str) else set(holdout)
        _require_column(ds, holdout_column)
        values = list(ds[holdout_column])
        absent = wanted - set(values)
        if absent:
            raise ValueError(f"holdout values {sorted(absent, key=str)} do not occur in column "
                             f"{holdout_column!r}; it has {sorted(set(values), key=str)[:20]}")
        held = {component[g] for g, v in zip(groups, values) if v in wanted}

    # Sort before shuffling so the split depends on the seed, not on the row order.
    candidates = sorted({c for c in component.values() if c not in held}, key=str)
    if len(candidates) < 3:
        raise ValueError(f"need at least 3 groups in {group_column!r} (after linking shared content) "
                         f"outside the holdout to make train, validation and test; found {len(candidates)}")
    n = len(candidates)
    n_test = min(max(1, round(test_fraction * n)), n - 2)  # every split keeps at least one component
    n_val = min(max(1, round(val_fraction * n)), n - 1 - n_test)
    order = [candidates[i] for i in np.random.default_rng(seed).permutation(len(candidates))]
    part_of = {c: "test" for c in order[:n_test]}
    part_of |= {c: "validation" for c in order[n_test:n_test + n_val]}
    part_of |= {c: "heldout" for c in held}

    rows: dict[str, list[int]] = {"train": [], "validation": [], "test": [], "heldout": []}
    for i, g in enumerate(groups):
        rows[part_of.get(component[g], "train")].append(i)
    names = list(SPLITS) + (["heldout"] if holdout is not None else [])
    return DatasetDict({name: ds.select(rows[name]) for name in names})


def shared_content(parts: DatasetDict | dict, columns: Sequence[str]) -> dict[str, set]:
    """Values of `columns` (hashes, ids) that occur in more than one split: {column: values}."""
    shared = {}
    for column in columns:
        seen: dict = {}
        clash = set()
        for name, part in parts.items():
            _require_column(part, column)
            for cell in part[column]:
                for value in _values(cell):
                    if seen.setdefault(value, name) != name:
                        clash.add(value)
        if clash:
            shared[column] = clash
    return shared


def assert_disjoint(parts: DatasetDict | dict, columns: Sequence[str]) -> None:
    """Raise ValueError if any value of `columns` (a hash, an id) occurs in two splits."""
    shared = shared_content(parts, columns)
    if shared:
        detail = "; ".join(f"{len(v)} values of {c!r}, e.g. {sorted(v, key=str)[:3]}" for c, v in shared.items())
        raise ValueError(f"the splits share content: {detail}. Split with "
                         f"link_columns={list(columns)} so that linked rows stay together")


def _require_column(ds: Dataset, column: str) -> None:
    if column not in ds.column_names:
        raise KeyError(f"column {column!r} not in the dataset; it has {ds.column_names}")
