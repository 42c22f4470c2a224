"""Scenes of AV digits (notebook 10): which of the digits in a picture is the one being said?

    compose_scenes()   2-4 handwritten digits of distinct classes pasted apart on one black
                       picture, and one spoken word that says one of them
    box_masks()        each digit's box as a mask, for the metrics (the pointing game, cIoU)
    words_saying()     for each scene a word that says one of its digits (other voices: people)
    other_spoken()     another digit of each scene and a word that says it (the swap test)

A scene table refers to its pictures and its word by row (`scene_features`), so give every scene
set the handwriting and the words of one split (`av_digits.handwriting_splits`, `voice_splits`):
no test digit or test voice is then ever in a training scene. Scenes are made, not cached: a few
thousand take a second or two.
"""
from __future__ import annotations

import numpy as np
from datasets import Array2D, Dataset, Features, List, Value
from PIL import Image

from mmcourse.data.av_digits import N_DIGITS

SCENE_SIZE = 96
SCENE_DIGIT_SIZES = (24, 32)   # side of each pasted digit in pixels (MNIST's is 28)
INK = 64                       # a pixel at least this bright belongs to a digit's box


def scene_features(size: int = SCENE_SIZE) -> Features:
    """Columns of `compose_scenes`'s table."""
    return Features({
        "image": Array2D((size, size), "uint8"),     # white digits on black
        "digits": List(Value("int32")),              # the digits in the scene, all different
        "boxes": List(List(Value("int32"))),         # per digit (top, left, bottom, right) of its ink, end exclusive
        "pictures": List(Value("int32")),            # per digit its row in the handwriting given
        "spoken": Value("int32"),                    # index in `digits` of the one that is said
        "word": Value("int32"),                      # the row of the words given that says it
    })


def compose_scenes(images: np.ndarray, labels: np.ndarray, word_labels: np.ndarray, n: int, seed: int = 0,
                   min_digits: int = 2, max_digits: int = 4, size: int = SCENE_SIZE,
                   digit_sizes: tuple[int, int] = SCENE_DIGIT_SIZES) -> Dataset:
    """`n` scenes of `min_digits`-`max_digits` handwritten digits of distinct classes, apart from
    each other, and for each one spoken word of one of them (`scene_features`).

    The pictures come from `images` [N, 28, 28] with digits `labels`, the words from a pool whose
    digits are `word_labels` (rows of a `voice_splits` part): give a scene set the pictures and
    voices of one split. Each digit is resized to a random side within `digit_sizes`.
    """
    labels, word_labels = np.asarray(labels), np.asarray(word_labels)
    if not 2 <= min_digits <= max_digits <= N_DIGITS:
        raise ValueError(f"need 2 <= min_digits <= max_digits <= {N_DIGITS}, got {min_digits} and {max_digits}")
    if int(np.ceil(np.sqrt(max_digits))) * (digit_sizes[1] + 2) > size:   # they must fit apart on a grid
        raise ValueError(f"{max_digits} digits of {digit_sizes[1]} px do not fit apart in {size} x {size}: "
                         "lower max_digits or digit_sizes, or raise size")
    pictures_of = {d: np.flatnonzero(labels == d) for d in range(N_DIGITS)}
    words_of = {d: np.flatnonzero(word_labels == d) for d in range(N_DIGITS)}
    missing = [d for d in range(N_DIGITS) if len(pictures_of[d]) == 0 or len(words_of[d]) == 0]
    if missing:
        raise ValueError(f"no picture or no word of digit(s) {missing}: give a whole split of each")
    rng = np.random.default_rng(seed)
    rows = {name: [] for name in scene_features(size)}
    for _ in range(n):
        digits = rng.choice(N_DIGITS, rng.integers(min_digits, max_digits + 1), replace=False)
        canvas, boxes, pictures = np.zeros((size, size), np.uint8), [], []
        for (top, left, side), digit in zip(_apart(len(digits), size, digit_sizes, rng), digits):
            picture = int(rng.choice(pictures_of[digit]))
            pasted = np.asarray(Image.fromarray(images[picture]).resize((side, side), Image.BILINEAR))
            canvas[top:top + side, left:left + side] = pasted
            ys, xs = np.nonzero(pasted >= INK)
            boxes.append([top + ys.min(), left + xs.min(), top + ys.max() + 1, left + xs.max() + 1])
            pictures.append(picture)
        spoken = int(rng.integers(len(digits)))
        for name, value in (("image", canvas), ("digits", digits.tolist()), ("boxes", boxes), ("pictures", pictures),
                            ("spoken", spoken), ("word", int(rng.choice(words_of[digits[spoken]])))):
            rows[name].append(value)
    return Dataset.from_dict(rows, features=scene_features(size))


def _apart(k: int, size: int, sides: tuple[int, int], rng: np.random.Generator) -> list[tuple[int, int, int]]:
    # k squares (top, left, side) inside the scene, at least 2 px apart: redrawn until they fit
    while True:
        placed = []
        for _ in range(100 * k):
            side = int(rng.integers(sides[0], sides[1] + 1))
            top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
            if all(top >= t + s + 2 or t >= top + side + 2 or left >= l + s + 2 or l >= left + side + 2
                   for t, l, s in placed):
                placed.append((top, left, side))
                if len(placed) == k:
                    return placed


def box_masks(scenes: Dataset) -> list[np.ndarray]:
    """Each scene's digit boxes as masks: bool [k, S, S] per scene, in the order of `digits`."""
    size = scenes.features["image"].shape[0]
    out = []
    for boxes in scenes["boxes"]:
        masks = np.zeros((len(boxes), size, size), dtype=bool)
        for m, (top, left, bottom, right) in zip(masks, boxes):
            m[top:bottom, left:right] = True
        out.append(masks)
    return out


def words_saying(scenes: Dataset, word_labels: np.ndarray, which: np.ndarray, seed: int = 0) -> np.ndarray:
    """For every scene, a random row of a word pool (digits `word_labels`) that says its digit
    number `which[i]` -> int [N]. With `which = scenes["spoken"]` and another pool (human
    voices, say), the same scenes are heard in other voices."""
    word_labels = np.asarray(word_labels)
    rng = np.random.default_rng(seed)
    rows = []
    for digits, i in zip(scenes["digits"], which):
        pool = np.flatnonzero(word_labels == digits[i])
        if len(pool) == 0:
            raise ValueError(f"no word of digit {digits[i]} in the pool: give a pool with every digit")
        rows.append(int(rng.choice(pool)))
    return np.array(rows)


def other_spoken(scenes: Dataset, word_labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The swap test's sounds: for every scene, another of its digits and a word from the pool
    that says it -> (index in `digits` [N], word row [N])."""
    rng = np.random.default_rng(seed)
    which = np.array([rng.choice([i for i in range(len(d)) if i != s]) for d, s in zip(scenes["digits"], scenes["spoken"])])
    return which, words_saying(scenes, word_labels, which, seed + 1)
