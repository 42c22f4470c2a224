"""Questions about composed scenes (notebook 05): counting, position and existence.

Tux Paint stamps of six families (birds, fish, flowers, fruit, houses, planets) are pasted
on generated backgrounds (mmcourse.data.scenes) and the scene grammar asks about them
(mmcourse.data.grammar): "what is on the left?", "how many fish are there?", "where is the
planet?", "is there a house?". The answer is a family name, a number word, a region or
yes/no, exact by construction.

The split is leak-free twice over: every stamp picture (by id and by pixel hash) belongs to
one split only, so a test scene shows birds the model never saw, only other birds; and every
scene is one image, so its questions stay together.

    parts = make_splits(seed=0)            # DatasetDict train / validation / test
    parts["test"][0]                       # {"image", "question", "answer", "question_type", "image_id", ...}

The columns match easy-VQA's (mmcourse.data.easyvqa), so the same VQA code reads both.
"""
from __future__ import annotations

import sys

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

import mmcourse.data.grammar
import mmcourse.data.scenes
import mmcourse.text
from mmcourse.data.cache import cached_dataset
from mmcourse.data.scenes import PlacementError, Stamp, compose_scene
from mmcourse.data.splits import SPLITS, content_hash, split_by_group

# label -> the Tux Paint categories whose stamps show it
FAMILIES = {"bird": ("animals/birds",), "fish": ("animals/fish",), "flower": ("plants/flowers",),
            "fruit": ("food/fruit",), "house": ("town/houses",), "planet": ("space/planets",)}
MAX_OBJECTS = 3
SCALE = (0.3, 0.5)  # an object's longest side, as a fraction of the canvas

FEATURES = Features({
    "image": Image(),                     # PIL RGB, size x size: the scene
    "question": Value("string"),          # "how many fish are there?"
    "answer": Value("string"),            # one of answers()
    "question_type": Value("string"),     # "what", "count", "where" or "exists"
    "image_id": Value("int32"),           # the scene; all its questions share it
    "labels": List(Value("string")),      # the family of each object in the scene, e.g. ["bird", "bird"]
    "stamp_ids": List(Value("string")),   # Tux Paint ids of the stamps pasted in the scene
    "stamp_shas": List(Value("string")),  # their pixel hashes (identical pictures, same hash)
    "image_sha": Value("string"),         # the scene's pixel hash
})


def answers() -> list[str]:
    """Every possible answer: family names, counts, regions, yes/no (use the index as the class)."""
    numbers = [mmcourse.data.grammar.number_word(n) for n in range(1, MAX_OBJECTS + 1)]
    return list(FAMILIES) + numbers + list(mmcourse.data.grammar.REGIONS) + ["yes", "no"]


def family_stamps(stamps: Dataset) -> Dataset:
    """id, image_sha and family `label` of the stamps in FAMILIES (from tuxpaint.load_stamps), no images."""
    def label(category: str) -> str | None:
        return next((name for name, roots in FAMILIES.items()
                     if any(category == r or category.startswith(r + "/") for r in roots)), None)
    table = stamps.select_columns(["id", "image_sha", "category"]).to_dict()
    labels = [label(c) for c in table["category"]]
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    return Dataset.from_dict({"id": [table["id"][i] for i in keep], "row": keep,
                              "image_sha": [table["image_sha"][i] for i in keep],
                              "label": [labels[i] for i in keep]})


def split_stamps(family: Dataset, seed: int, test_fraction: float = 0.25,
                 val_fraction: float = 0.15) -> dict[str, Dataset]:
    """Split each family's stamps by id (linked by pixel hash) into train / validation / test,
    so that every split has pictures of every family and no picture is in two splits."""
    labels = family["label"]
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for name in FAMILIES:
        members = family.select([i for i, lab in enumerate(labels) if lab == name])
        split = split_by_group(members, "id", test_fraction, val_fraction, seed, link_columns=["image_sha"])
        for part in SPLITS:
            parts[part] += split[part]["row"]
    rows = family["row"]
    return {part: family.select([rows.index(r) for r in chosen]) for part, chosen in parts.items()}


def scene_questions(pool: Dataset, images, n: int, seed: int, size: int, first_id: int = 0) -> Dataset:
    """`n` scenes of 1..MAX_OBJECTS stamps from `pool` (rows of family_stamps; `images[row]` is
    the stamp's RGBA picture), one row per question (FEATURES).

    Scene i depends only on (seed, i): it picks 1..k distinct families and repeats some (so
    there is something to count), then one picture of its family for each object.
    """
    pictures: dict[str, list[tuple[str, str, Stamp]]] = {name: [] for name in FAMILIES}
    for stamp_id, row, sha, label in zip(pool["id"], pool["row"], pool["image_sha"], pool["label"]):
        stamp = Stamp(label, images[row])
        stamp.image.thumbnail((size, size), PILImage.Resampling.LANCZOS)  # resize once, not per scene
        pictures[label].append((stamp_id, sha, stamp))
    present = [name for name in FAMILIES if pictures[name]]
    rows: dict[str, list] = {key: [] for key in FEATURES}
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        chosen, scene = _compose(pictures, present, rng, size)
        picture_hash = content_hash(np.asarray(scene.image).tobytes())
        for qa in mmcourse.data.grammar.questions(scene, rng, list(FAMILIES)):
            rows["image"].append(scene.image)
            rows["question"].append(qa["question"])
            rows["answer"].append(qa["answer"])
            rows["question_type"].append(qa["type"])
            rows["image_id"].append(first_id + i)
            rows["labels"].append(scene.labels)
            rows["stamp_ids"].append([c[0] for c in chosen])
            rows["stamp_shas"].append([c[1] for c in chosen])
            rows["image_sha"].append(picture_hash)
    return Dataset.from_dict(rows, features=FEATURES)


def _compose(pictures, present, rng, size, tries: int = 10):
    for _ in range(tries):  # a crowded draw may not fit: draw again from the same stream
        k = int(rng.integers(1, MAX_OBJECTS + 1))
        families = list(rng.choice(present, size=int(rng.integers(1, min(k, len(present)) + 1)), replace=False))
        labels = families + list(rng.choice(families, size=k - len(families)))
        chosen = [pictures[lab][rng.integers(len(pictures[lab]))] for lab in labels]
        try:
            return chosen, compose_scene([c[2] for c in chosen], rng, size=size, scale_range=SCALE)
        except PlacementError:
            continue
    raise PlacementError(f"could not place {MAX_OBJECTS} objects on a {size} px canvas in {tries} draws")


def build_splits(seed: int = 0, size: int = 48, scenes: tuple[int, int, int] = (1600, 200, 400)) -> DatasetDict:
    """Scene questions for train / validation / test (`scenes` = scenes per split), not cached.

    Stamps are split first (split_stamps), then each split's scenes are composed from its own
    stamps only; image ids are unique across the splits.
    """
    from mmcourse.data.tuxpaint import load_stamps

    stamps = load_stamps()
    family = family_stamps(stamps)
    pools = split_stamps(family, seed)
    images = dict(zip(family["row"], stamps.select_columns(["image"]).select(family["row"])["image"]))
    offsets = np.cumsum([0, *scenes[:-1]])
    return DatasetDict({part: scene_questions(pools[part], images, n, seed=seed * 10 + k, size=size,
                                              first_id=int(offsets[k]))
                        for k, (part, n) in enumerate(zip(SPLITS, scenes))})


def make_splits(seed: int = 0, size: int = 48, scenes: tuple[int, int, int] = (1600, 200, 400),
                rebuild: bool = False) -> DatasetDict:
    """`build_splits`, built once per (seed, size, scenes) and cached."""
    recipe = (sys.modules[__name__], mmcourse.data.scenes, mmcourse.data.grammar, mmcourse.text, seed, size, scenes)
    name = f"vqa-scenes-{seed}-{size}-" + "-".join(map(str, scenes))
    return cached_dataset(name, lambda: build_splits(seed, size, scenes), recipe, rebuild)
