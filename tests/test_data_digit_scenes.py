"""AV-digit scenes: distinct digits apart, one said, boxes that hold the ink, the swap test's sounds."""
from collections import Counter

import numpy as np
import pytest

from mmcourse.data import digit_scenes as DS
from mmcourse.data.av_digits import N_DIGITS


def small_handwriting(n_per_digit: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Square blobs as "digits": digit d is a bright block of side 10 + d in the middle of 28 x 28."""
    images, labels = [], []
    for d in range(N_DIGITS):
        for _ in range(n_per_digit):
            im = np.zeros((28, 28), dtype=np.uint8)
            lo = 14 - (10 + d) // 2
            im[lo:lo + 10 + d, lo:lo + 10 + d] = 255
            images.append(im)
            labels.append(d)
    return np.stack(images), np.array(labels)


def test_compose_scenes_places_distinct_digits_apart_and_says_one():
    images, labels = small_handwriting()
    word_labels = np.repeat(np.arange(N_DIGITS), 2)
    scenes = DS.compose_scenes(images, labels, word_labels, 40, seed=3)
    assert len(scenes) == 40 and scenes.features == DS.scene_features()
    again = DS.compose_scenes(images, labels, word_labels, 40, seed=3)
    assert np.array_equal(np.asarray(again["image"]), np.asarray(scenes["image"]))
    counts = Counter()
    for scene, masks in zip(scenes, DS.box_masks(scenes)):
        digits = scene["digits"]
        counts[len(digits)] += 1
        assert len(set(digits)) == len(digits) and 0 <= scene["spoken"] < len(digits)
        assert word_labels[scene["word"]] == digits[scene["spoken"]]
        assert all(labels[p] == d for p, d in zip(scene["pictures"], digits))
        assert masks.shape == (len(digits), DS.SCENE_SIZE, DS.SCENE_SIZE)
        assert masks.sum(0).max() == 1                                   # boxes never overlap
        image = np.asarray(scene["image"])
        assert (image[~masks.any(0)] < DS.INK).all()                      # no ink outside the boxes
        for m in masks:
            assert (image[m] >= DS.INK).any()
    assert set(counts) == {2, 3, 4}


def test_other_spoken_picks_another_digit_of_the_scene_and_a_word_saying_it():
    images, labels = small_handwriting()
    word_labels = np.repeat(np.arange(N_DIGITS), 2)
    scenes = DS.compose_scenes(images, labels, word_labels, 30, seed=0)
    which, words = DS.other_spoken(scenes, word_labels, seed=1)
    for scene, i, w in zip(scenes, which, words):
        assert i != scene["spoken"] and word_labels[w] == scene["digits"][i]
    others = DS.words_saying(scenes, np.arange(N_DIGITS), np.array(scenes["spoken"]))
    assert [d[s] for d, s in zip(scenes["digits"], scenes["spoken"])] == others.tolist()
    with pytest.raises(ValueError, match="no word of digit"):
        DS.words_saying(scenes, np.zeros(3, dtype=int), np.array(scenes["spoken"]))


def test_compose_scenes_names_what_cannot_be_done():
    images, labels = small_handwriting()
    with pytest.raises(ValueError, match="no picture or no word of digit"):
        DS.compose_scenes(images, labels, np.zeros(5, dtype=int), 3)
    with pytest.raises(ValueError, match="min_digits"):
        DS.compose_scenes(images, labels, labels, 3, min_digits=1)
    with pytest.raises(ValueError, match="do not fit"):
        DS.compose_scenes(images, labels, labels, 3, max_digits=8, size=64)
