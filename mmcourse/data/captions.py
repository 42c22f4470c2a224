"""Captioned scenes for notebook 03: Tux Paint stamps composed into scenes, several captions each.

Each object is a real stamp named by its family ("bird", "fish", "house", ...) and, when one
colour clearly dominates its pixels, that colour ("a red bird"). The scene composer
(`mmcourse.data.scenes`) places 1-3 objects with exact boxes; the captions say what is there,
how many, their colours and where, in several wordings (the shared grammar's `describe` plus
three other phrasings), so every image has several reference captions, as in COCO.

Whole stamps are split first (train / validation / test, identical pictures kept together), and
each part's scenes are composed from its own stamps only: a test image never shows a picture
seen in training.

    parts = load_caption_scenes(seed=0)   # DatasetDict, columns in CAPTION_FEATURES
"""
from __future__ import annotations

import sys

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

import mmcourse.data.grammar
import mmcourse.data.scenes
from mmcourse.data.cache import cached_dataset
from mmcourse.data.grammar import REGION_PHRASE, describe, noun_phrase, region, relation
from mmcourse.data.scenes import PlacementError, Scene, Stamp, compose_scene
from mmcourse.data.splits import content_hash, split_by_group

NOUNS = {  # category folder -> the noun a caption uses
    "animals/birds": "bird", "animals/fish": "fish", "animals/insects": "insect", "food/fruit": "fruit",
    "plants/flowers": "flower", "town/houses": "house", "space/planets": "planet", "town/flags": "flag",
    "clothes/hats": "hat", "vehicles": "vehicle", "plants/trees": "tree",
}
SCENE_COUNTS = {"train": 3000, "validation": 400, "test": 600}

CAPTION_FEATURES = Features({
    "image": Image(),                                   # RGB scene, size x size
    "captions": List(Value("string")),                  # 2-4 reference captions, all true
    "labels": List(Value("string")),                    # per object: "red bird"
    "nouns": List(Value("string")),                     # per object: "bird" (what pointing checks)
    "boxes": List(List(Value("int32"), length=4)),      # per object: x0, y0, x1, y1 in pixels (exclusive)
    "stamp_shas": List(Value("string")),                # per object: hash of the stamp picture
    "image_sha": Value("string"),                       # hash of the scene's pixels
})


# ---------------------------------------------------------------- labels

def colour_name(image: PILImage.Image, share: float = 0.6) -> str | None:
    """The colour word of a stamp when one colour covers at least `share` of its opaque pixels."""
    from matplotlib.colors import rgb_to_hsv

    small = image.convert("RGBA")
    small.thumbnail((48, 48))                                             # enough pixels to vote
    rgba = np.asarray(small, dtype=np.float64) / 255
    h, s, v = rgb_to_hsv(rgba[rgba[..., 3] >= 0.5, :3]).T                # each [P], in [0, 1]
    if len(h) == 0:
        return None
    hue, reddish = h * 360, (h * 360 < 15) | (h * 360 >= 345)
    names = np.select(  # the first condition that holds names the pixel
        [v < 0.2, (s < 0.3) & (v > 0.8), s < 0.3, reddish & (v > 0.5), reddish, (hue < 40) & (v > 0.6), hue < 40,
         hue < 70, hue < 170, hue < 260, hue < 300],
        ["black", "white", "grey", "red", "brown", "orange", "brown", "yellow", "green", "blue", "purple"], "pink")
    values, counts = np.unique(names, return_counts=True)
    best = counts.argmax()
    return str(values[best]) if counts[best] >= share * len(names) else None


def caption_stamps(stamps: Dataset) -> Dataset:
    """The stamps whose category has a noun in NOUNS, with columns `noun` and `label` added."""
    def noun_of(category: str) -> str | None:
        return next((n for prefix, n in NOUNS.items() if category == prefix or category.startswith(prefix + "/")), None)

    keep = stamps.filter(lambda c: noun_of(c) is not None, input_columns="category")
    nouns = [noun_of(c) for c in keep["category"]]
    colours = [colour_name(image) for image in keep["image"]]
    labels = [f"{c} {n}" if c else n for c, n in zip(colours, nouns)]
    return keep.add_column("noun", nouns).add_column("label", labels)


def split_stamps(stamps: Dataset, seed: int, test_fraction: float = 0.2, val_fraction: float = 0.1) -> DatasetDict:
    """Whole stamps on one side; byte-identical pictures (same `image_sha`) stay together."""
    return split_by_group(stamps, "id", test_fraction, val_fraction, seed, link_columns=["image_sha"])


# ---------------------------------------------------------------- captions

def _groups(scene: Scene) -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for obj in scene.objects:
        groups.setdefault(obj.label, []).append(obj)
    return list(groups.items())


def _centre(members: list) -> tuple[float, float]:
    xs, ys = zip(*(m.centre for m in members))
    return sum(xs) / len(xs), sum(ys) / len(ys)


def captions(scene: Scene) -> list[str]:
    """Several true captions of one scene (no repeats): the grammar's, and three other wordings."""
    groups = _groups(scene)
    phrases = {label: noun_phrase(label, len(members)) for label, members in groups}
    by_x = sorted(groups, key=lambda g: _centre(g[1])[0])
    first = describe(scene)
    out = [first, f"there {'is' if len(groups[0][1]) == 1 else 'are'} {first}",
           " and ".join(phrases[label] for label, _ in by_x)]
    placed = []
    for label, members in by_x:
        places = {region(m, scene.size) for m in members}
        placed.append(phrases[label] + (f" {REGION_PHRASE[places.pop()]}" if len(places) == 1 else ""))
    out.append(" and ".join(placed))
    if len(groups) == 2:  # the same relation told from the other side
        (a, ma), (b, mb) = groups
        out.append(f"{phrases[b]} {relation(_centre(mb), _centre(ma))} {phrases[a]}")
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- scenes

def compose_captioned(stamps: list[Stamp], shas: list[str], nouns: list[str], n: int, seed: int,
                      size: int = 48, max_objects: int = 3) -> list[dict]:
    """`n` scenes of 1..max_objects stamps (1 or 2 distinct labels) as rows of CAPTION_FEATURES."""
    by_label: dict[str, list[int]] = {}
    for k, stamp in enumerate(stamps):
        by_label.setdefault(stamp.label, []).append(k)
    labels = sorted(by_label)
    rows = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        while True:  # a crowded draw may not fit: draw again from the same stream
            count = int(rng.integers(1, max_objects + 1))
            chosen = [str(x) for x in rng.choice(labels, size=min(count, 2), replace=False)]
            picks = chosen + [str(x) for x in rng.choice(chosen, size=count - len(chosen))]
            index = [by_label[label][rng.integers(len(by_label[label]))] for label in picks]
            try:
                scene = compose_scene([stamps[k] for k in index], rng, size=size, scale_range=(0.3, 0.5))
                break
            except PlacementError:
                continue
        rows.append({"image": scene.image, "captions": captions(scene), "labels": scene.labels,
                     "nouns": [nouns[k] for k in index], "boxes": [list(o.box) for o in scene.objects],
                     "stamp_shas": [shas[k] for k in index], "image_sha": content_hash(scene.image.tobytes())})
    return rows


def build_caption_scenes(seed: int, size: int = 48, counts: dict[str, int] | None = None) -> DatasetDict:
    from mmcourse.data.tuxpaint import load_stamps

    counts = counts or SCENE_COUNTS
    parts = split_stamps(caption_stamps(load_stamps()), seed)
    out = {}
    for k, (name, part) in enumerate(parts.items()):
        stamps = [Stamp(label, image) for label, image in zip(part["label"], part["image"])]
        for stamp in stamps:
            stamp.image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
        rows = compose_captioned(stamps, list(part["image_sha"]), list(part["noun"]), counts[name],
                                 seed=1000 * seed + k, size=size)
        out[name] = Dataset.from_list(rows, features=CAPTION_FEATURES)
    return DatasetDict(out)


RECIPE = (sys.modules[__name__], mmcourse.data.scenes, mmcourse.data.grammar)


def load_caption_scenes(seed: int = 0, size: int = 48, counts: dict[str, int] | None = None,
                        rebuild: bool = False) -> DatasetDict:
    """Train / validation / test captioned scenes for one split seed, built once and cached."""
    counts = counts or SCENE_COUNTS
    return cached_dataset(f"caption-scenes-{seed}-{size}", lambda: build_caption_scenes(seed, size, counts),
                          RECIPE + (seed, size, tuple(sorted(counts.items()))), rebuild)
