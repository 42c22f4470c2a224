"""Sounding scenes: Tux Paint stamps that carry a real recorded sound, composed into pictures
whose soundtrack is the mix of their objects' sounds (notebooks 07 and 10).

About 130 stamps ship a sound effect (animal calls, spoken letters and digits, instruments,
tools, vehicles). `load_sound_stamps()` decodes them once, at one sample rate, trimmed of
leading and trailing silence, and caches the table. `make_clips()` pastes one to four of them
on a background (`mmcourse.data.scenes.compose_scene`) and mixes the sounds of those that
sound, each at a random level and offset, over a little noise:

    stamps = load_sound_stamps()
    parts = make_splits(stamps, seed=0)                       # notebook 07: distil / transfer
    clips = make_clips(parts["train"], n=1000, seed=0)        # a datasets.Dataset of "videos"
    clips[0]["image"], clips[0]["wave"], clips[0]["sounding"]

A clip is a stand-in for one frame of a video and its soundtrack: a user with real
audio-visual data (VGGSound, Flickr-SoundNet, ESC-50 plus pictures) fills the same columns
(`CLIP_FEATURES`) and feeds the same models.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, Image, List, Value, concatenate_datasets
from PIL import Image as PILImage

from mmcourse.data import tuxpaint
from mmcourse.data.audio_io import load_audio
from mmcourse.data.cache import cached_dataset
from mmcourse.data.scenes import PlacementError, Stamp, compose_scene, segmentation
from mmcourse.data.splits import linked_groups, split_by_group
from mmcourse.data.tuxpaint import family_of  # noqa: F401  (notebook 07 calls SS.family_of)

SAMPLE_RATE = 8000        # Hz: enough for calls, voices and tools, and cheap for a CPU
SILENCE_DB = -40.0        # trimmed: leading and trailing samples this far below the peak
MIN_PEAK = 1e-3           # a "sound" quieter than this everywhere is silent (Tux Paint has one)
LINK_COLUMNS = ("image_sha", "sound_sha")  # identical files under two names stay on one side

# The transfer task of notebook 07: which kind of thing makes the sound. Categories whose
# sound could be either (a Halloween ghost, a road sign, a Christmas hat) get no kind: they
# still serve as unlabelled sounds.
KINDS = ("animal", "voice", "object")
_KIND_OF_CATEGORY = (
    ("animals", "animal"),
    ("symbols/alphabets", "voice"), ("symbols/math", "voice"), ("symbols/faces", "voice"),
    ("hobbies", "object"), ("household", "object"), ("vehicles", "object"), ("naturalforces", "object"),
)

SOUND_STAMP_FEATURES = Features({
    "id": Value("string"),                # "animals/birds/duck", as in tuxpaint.load_stamps()
    "image": Image(mode="RGBA"),          # the cut-out, longest side <= 256 px
    "caption": Value("string"),           # "A duck."
    "category": Value("string"),          # "animals/birds"
    "family": Value("string"),            # first two levels of the category: "animals/birds"
    "top_category": Value("string"),      # "animals"
    "kind": Value("string"),              # one of KINDS, or None where the sound could be either
    "wave": List(Value("float32")),       # the sound, mono, at `sample_rate`, silence trimmed, peak 1
    "sample_rate": Value("int32"),        # Hz
    "image_sha": Value("string"),         # content hashes: linked rows never straddle a split
    "sound_sha": Value("string"),
})

CLIP_FEATURES = Features({
    "image": Image(),                     # RGB scene, size x size: the "video frame"
    "wave": List(Value("float32")),       # its soundtrack: the mix, `seconds` long, at `sample_rate`
    "sample_rate": Value("int32"),        # Hz
    "stamp_ids": List(Value("string")),   # the objects, in paste order (later ones on top)
    "families": List(Value("string")),    # each object's family ("animals/birds")
    "sounding": List(Value("bool")),      # which objects' sounds are in the mix
    "levels_db": List(Value("float32")),  # each object's level in the mix (dBFS RMS); NaN when silent
    "boxes": List(List(Value("int32"), length=4)),  # (x0, y0, x1, y1) of each visible object
    "segmentation": Image(),              # 'L': 0 background, i + 1 the visible pixels of object i
})


def sound_kind(category: str) -> str | None:
    """'animal', 'voice' or 'object' for a stamp's category path, or None where it is unclear."""
    for prefix, kind in _KIND_OF_CATEGORY:
        if category == prefix or category.startswith(prefix + "/"):
            return kind
    return None


# ---------------------------------------------------------------- the stamps and their sounds

def trim_silence(wave: np.ndarray, threshold_db: float = SILENCE_DB) -> np.ndarray:
    """`wave` without its leading and trailing samples quieter than `threshold_db` below its peak."""
    loud = np.flatnonzero(np.abs(wave) >= np.abs(wave).max() * 10 ** (threshold_db / 20))
    return wave[loud[0]:loud[-1] + 1] if len(loud) else wave[:0]


def load_sound_stamps(sample_rate: int = SAMPLE_RATE, rebuild: bool = False) -> Dataset:
    """The Tux Paint stamps that carry a sound (`SOUND_STAMP_FEATURES`), decoded once and cached.

    Sounds are resampled to `sample_rate`, trimmed of silence at both ends and scaled to
    peak 1 (the mixer sets every level anyway). Silent files are left out and counted in
    `ds.info.description`.
    """
    if sample_rate < 1000:
        raise ValueError(f"sample_rate={sample_rate} Hz is too low for these sounds; use >= 1000")
    return cached_dataset(f"sound-stamps-{sample_rate}", lambda: _build_sound_stamps(sample_rate),
                          (sys.modules[__name__], *tuxpaint.RECIPE, sample_rate), rebuild)


def _build_sound_stamps(sample_rate: int) -> Dataset:
    stamps = tuxpaint.load_stamps()
    with_sound = [i for i, sha in enumerate(list(stamps["sound_sha"])) if sha is not None]
    rows, silent = [], []
    for row in stamps.select(with_sound):
        wave = load_audio(row["sound"], sample_rate)[0].numpy()
        if np.abs(wave).max() < MIN_PEAK:
            silent.append(row["id"])
            continue
        wave = trim_silence(wave)
        rows.append({"id": row["id"], "image": row["image"], "caption": row["caption"],
                     "category": row["category"], "family": family_of(row["category"]),
                     "top_category": row["top_category"], "kind": sound_kind(row["category"]),
                     "wave": wave / np.abs(wave).max(), "sample_rate": sample_rate,
                     "image_sha": row["image_sha"], "sound_sha": row["sound_sha"]})
    kinds = Counter(r["kind"] or "none" for r in rows)
    summary = (f"{len(rows)} Tux Paint stamps with a sound at {sample_rate} Hz "
               f"({', '.join(f'{k} {n}' for k, n in kinds.most_common())}); "
               f"left out {len(silent)} silent files: {', '.join(silent) or 'none'}")
    print(summary)
    return Dataset.from_list(rows, features=SOUND_STAMP_FEATURES,
                             info=DatasetInfo(description=summary, features=SOUND_STAMP_FEATURES))


# ---------------------------------------------------------------- splits

def make_splits(stamps: Dataset, seed: int = 0, transfer_fraction: float = 0.45,
                val_fraction: float = 0.1, labels_per_kind: int = 3) -> DatasetDict:
    """Notebook 07's four parts, whole stamps and linked content on one side:

    - "train", "validation": sounds the student learns from (without labels) and is watched on;
    - "transfer_train": `labels_per_kind` labelled sounds of each kind, one draw of the few labels;
    - "transfer_test": the other held-out sounds of a kind, scored once.

    Notebook 07 pools the two transfer parts and redraws the few labels many times
    (`soundnet.few_shot_episodes`): one draw of nine sounds is too noisy to compare methods on.

    Components (stamps linked by a shared image or sound) are drawn per kind, so each kind
    keeps about `transfer_fraction` of its sounds for the transfer task; sounds without a
    kind only ever serve as unlabelled training or validation sounds.
    """
    if not 0 < transfer_fraction < 1 or not 0 < val_fraction < 1 - transfer_fraction:
        raise ValueError(f"need 0 < transfer_fraction ({transfer_fraction}) and 0 < val_fraction "
                         f"({val_fraction}) with a sum below 1")
    component = linked_groups(stamps, "id", LINK_COLUMNS)
    kind_of: dict[str, str] = {}
    for stamp_id, kind in zip(stamps["id"], stamps["kind"]):
        c = component[stamp_id]
        if kind_of.setdefault(c, kind or "") != (kind or ""):
            raise ValueError(f"stamps of two kinds share content (component {c!r}); give them one kind")
    rng = np.random.default_rng(seed)
    part_of = {}
    for kind in sorted(set(kind_of.values())):
        comps = sorted(c for c, k in kind_of.items() if k == kind)
        comps = [comps[i] for i in rng.permutation(len(comps))]
        n_val = max(1, round(val_fraction * len(comps)))
        n_transfer = round(transfer_fraction * len(comps)) if kind else 0
        if kind and n_transfer < labels_per_kind + 2:
            raise ValueError(f"kind {kind!r} has {len(comps)} sound groups: too few to hold out "
                             f"{labels_per_kind} labelled and 2 test sounds; lower labels_per_kind")
        for i, c in enumerate(comps):
            if i < labels_per_kind and kind:
                part_of[c] = "transfer_train"
            elif i < n_transfer:
                part_of[c] = "transfer_test"
            elif i < n_transfer + n_val:
                part_of[c] = "validation"
            else:
                part_of[c] = "train"
    names = ("train", "validation", "transfer_train", "transfer_test")
    ids = list(stamps["id"])
    rows = {name: [i for i, s in enumerate(ids) if part_of[component[s]] == name] for name in names}
    return DatasetDict({name: stamps.select(rows[name]) for name in names})


def leave_out(ds: Dataset, *parts: Dataset, columns: Sequence[str] = ("id", "image_sha")) -> Dataset:
    """The rows of `ds` that share no value of `columns` with any of `parts` (e.g. every stamp
    picture except those of held-out sounds, for a teacher that must not see them)."""
    taken = {c: {v for part in parts for v in part[c]} for c in columns}
    keep = [i for i, row in enumerate(zip(*(ds[c] for c in columns)))
            if not any(v in taken[c] for c, v in zip(columns, row))]
    return ds.select(keep)


def localization_splits(stamps: Dataset, seed: int = 0, test_fraction: float = 0.3,
                        val_fraction: float = 0.15) -> DatasetDict:
    """Notebook 10's train / validation / test by whole stamp, linked content kept together."""
    return split_by_group(stamps, "id", test_fraction, val_fraction, seed, link_columns=LINK_COLUMNS)


# ---------------------------------------------------------------- mixing

def rms_db(x: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (a sine of amplitude 1 is -3.01)."""
    return float(20 * np.log10(max(np.sqrt(np.mean(np.square(x, dtype=np.float64))), 1e-12)))


def place(wave: np.ndarray, offset: int, length: int) -> np.ndarray:
    """`wave` on a silent track of `length` samples, starting at `offset` (negative: cut its start)."""
    track = np.zeros(length, dtype=np.float32)
    start, stop = max(offset, 0), min(offset + len(wave), length)
    if stop <= start:
        raise ValueError(f"a sound of {len(wave)} samples at offset {offset} misses a clip of {length}")
    track[start:stop] = wave[start - offset:stop - offset]
    return track


def random_offset(n_samples: int, length: int, rng: np.random.Generator) -> int:
    """Where a sound starts: anywhere inside the clip if it is shorter, else a random window of it."""
    if n_samples <= length:
        return int(rng.integers(0, length - n_samples + 1))
    return -int(rng.integers(0, n_samples - length + 1))


def mix_sounds(waves: list[np.ndarray], length: int, levels_db: list[float], offsets: list[int],
               noise_db: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """The sum of `waves` placed at `offsets`, each scaled so that its RMS level over the
    samples it occupies in the clip is `levels_db` (dBFS), plus white noise of RMS level
    `noise_db` over the whole clip. Nothing is clipped: levels well below 0 dB keep peaks
    under 1. -> float32 [length]."""
    if not len(waves) == len(levels_db) == len(offsets):
        raise ValueError(f"{len(waves)} waves, {len(levels_db)} levels and {len(offsets)} offsets: "
                         "give one level and one offset per wave")
    mix = np.zeros(length, dtype=np.float64)
    for wave, level, offset in zip(waves, levels_db, offsets):
        track = place(np.asarray(wave, dtype=np.float32), offset, length)
        start, stop = max(offset, 0), min(offset + len(wave), length)
        current = rms_db(track[start:stop])
        if current <= -200:
            raise ValueError(f"the part of a sound that falls in the clip is silent (offset {offset})")
        mix += track * 10 ** ((level - current) / 20)
    if noise_db is not None:
        rng = rng if rng is not None else np.random.default_rng()
        noise = rng.standard_normal(length)
        mix += noise * 10 ** ((noise_db - rms_db(noise)) / 20)
    return mix.astype(np.float32)


# ---------------------------------------------------------------- clips

def make_clips(stamps: Dataset, n: int, seed: int = 0, min_objects: int = 1, max_objects: int = 3,
               one_sounds: bool = False, size: int = 48, seconds: float = 1.0,
               level_range: tuple[float, float] = (-28.0, -16.0), noise_db: float | None = -50.0,
               scale_range: tuple[float, float] = (0.35, 0.6), balance_kinds: bool = False,
               other_kinds: bool = False) -> Dataset:
    """`n` clips (`CLIP_FEATURES`) from the sound stamps `stamps`: a scene of `min_objects` to
    `max_objects` distinct stamps and the mix of their sounds.

    Every object sounds, or with `one_sounds` exactly one of them (chosen at random). Each
    sound gets a random level in `level_range` (dBFS RMS) and a random offset, and the mix a
    little white noise (`noise_db`). With `balance_kinds` each kind (and the stamps without
    one) is drawn equally often, so animal calls, half of the sounds, do not crowd out the
    rest. With `one_sounds` and `other_kinds`, the sounding object has a kind and every other
    object is of another kind (or none), so that the sound alone says which object it is: with
    a hundred stamps, a model can learn that calls go with animals, not which of two birds sings.
    Clip i depends only on (seed, i).
    """
    if other_kinds and not one_sounds:
        raise ValueError("other_kinds=True needs one_sounds=True: it picks the distractors of one sounding object")
    if len(stamps) < max_objects:
        raise ValueError(f"{len(stamps)} stamps cannot fill scenes of up to {max_objects} distinct objects")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    pictures = [Stamp("stamp", image) for image in stamps["image"]]
    for picture in pictures:  # shrink once: resizing 256 px cut-outs for every scene is the slow part
        picture.image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    waves = [np.asarray(w, dtype=np.float32) for w in stamps["wave"]]
    ids, families = list(stamps["id"]), list(stamps["family"])
    kinds = [k or "" for k in stamps["kind"]]
    share = Counter(kinds)
    weights = np.array([1 / share[k] for k in kinds]) if balance_kinds else np.ones(len(kinds))
    sample_rate = int(stamps["sample_rate"][0])
    length = round(seconds * sample_rate)
    columns: dict[str, list] = {name: [] for name in CLIP_FEATURES}
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        for attempt in range(10):  # a crowded draw may not fit: draw again from the same stream
            k = int(rng.integers(min_objects, max_objects + 1))
            if other_kinds:
                picked = _sounder_and_distractors(kinds, weights, k, rng)
                chosen = [picked[i] for i in rng.permutation(k)]   # the sounder anywhere in the pile
            else:
                chosen = [int(j) for j in rng.choice(len(stamps), size=k, replace=False, p=weights / weights.sum())]
            try:
                scene = compose_scene([pictures[j] for j in chosen], rng, size=size, scale_range=scale_range)
                break
            except PlacementError:
                if attempt == 9:
                    raise
        sounding = [True] * k
        if one_sounds:
            sounding = [False] * k
            sounding[chosen.index(picked[0]) if other_kinds else int(rng.integers(k))] = True
        voiced = [j for j, s in zip(chosen, sounding) if s]
        voiced_levels = [float(rng.uniform(*level_range)) for _ in voiced]
        offsets = [random_offset(len(waves[j]), length, rng) for j in voiced]
        wave = mix_sounds([waves[j] for j in voiced], length, voiced_levels, offsets, noise_db, rng)
        levels = iter(voiced_levels)
        columns["image"].append(scene.image)
        columns["wave"].append(wave)
        columns["sample_rate"].append(sample_rate)
        columns["stamp_ids"].append([ids[j] for j in chosen])
        columns["families"].append([families[j] for j in chosen])
        columns["sounding"].append(sounding)
        columns["levels_db"].append([next(levels) if s else float("nan") for s in sounding])
        columns["boxes"].append([list(o.box) for o in scene.objects])
        columns["segmentation"].append(segmentation(scene))
    waves_block = np.stack(columns.pop("wave"))                                    # [n, T]
    rest = Dataset.from_dict(columns, features=Features({k: v for k, v in CLIP_FEATURES.items() if k != "wave"}))
    return concatenate_datasets([rest, array_column(waves_block)], axis=1).select_columns(list(CLIP_FEATURES))


def array_column(values: np.ndarray | Sequence[np.ndarray], name: str = "wave") -> Dataset:
    """A one-column Dataset `name` of float32 lists from [n, T] or from n 1-D arrays of any
    lengths, built in Arrow directly: seconds faster than converting n NumPy arrays one by one,
    and without their Python copies in memory."""
    rows = [np.asarray(v, dtype=np.float32).ravel() for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.float32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
    return Dataset(pa.table({name: column}))


def _sounder_and_distractors(kinds: list[str], weights: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """Stamp indices: first one with a kind (drawn by `weights`), then k - 1 of other kinds."""
    has_kind = np.array([bool(kind) for kind in kinds])
    p = weights * has_kind
    sounder = int(rng.choice(len(kinds), p=p / p.sum()))
    others = np.flatnonzero(np.array(kinds) != kinds[sounder])
    if len(others) < k - 1:
        raise ValueError(f"only {len(others)} stamps are not of kind {kinds[sounder]!r}; need {k - 1} distractors")
    q = weights[others]
    return [sounder] + [int(j) for j in rng.choice(others, size=k - 1, replace=False, p=q / q.sum())]


def sound_clips(stamps: Dataset, copies: int, seed: int = 0, seconds: float = 1.0,
                level_range: tuple[float, float] = (-28.0, -16.0), noise_db: float | None = -50.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Sound only: `copies` clips of each stamp's sound alone (random window, level and noise).

    -> (waves float32 [copies * N, T], stamp index [copies * N]); copy c of stamp i is row c * N + i.
    """
    sample_rate = int(stamps["sample_rate"][0])
    length = round(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    waves, index = [], []
    for _ in range(copies):
        for i, w in enumerate(stamps["wave"]):
            w = np.asarray(w, dtype=np.float32)
            waves.append(mix_sounds([w], length, [float(rng.uniform(*level_range))],
                                    [random_offset(len(w), length, rng)], noise_db, rng))
            index.append(i)
    return np.stack(waves), np.array(index)


def clip_arrays(clips: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, S, S], waves float32 [N, T]) of a clips dataset, for the models."""
    images = np.stack([np.asarray(im) for im in clips["image"]]).transpose(0, 3, 1, 2)
    waves = clips.select_columns(["wave"]).with_format("numpy")["wave"]  # one Arrow read, no Python floats
    return np.ascontiguousarray(images), np.asarray(waves, dtype=np.float32)


def object_masks(clips: Dataset) -> list[np.ndarray]:
    """Each clip's masks, bool [n_objects, S, S], from its segmentation image."""
    out = []
    for seg, ids in zip(clips["segmentation"], clips["stamp_ids"]):
        seg = np.asarray(seg)
        out.append(np.stack([seg == i + 1 for i in range(len(ids))]))
    return out
