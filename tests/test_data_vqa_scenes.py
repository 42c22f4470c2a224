"""Scene questions for notebook 05: family split of the stamps, composed scenes, leak-free splits."""
import numpy as np
import pytest
from datasets import Dataset

from mmcourse.data import vqa_scenes as S
from mmcourse.data.splits import SPLITS, assert_disjoint
from scene_helpers import shape_stamp


def _family_table():
    """Six families with four stamps each; two fish are one picture under two names."""
    ids, shas, categories = [], [], []
    for name, (root,) in S.FAMILIES.items():
        for k in range(4):
            ids.append(f"{root}/s{k}"), categories.append(root), shas.append(f"{name}{k}")
    shas[ids.index("animals/fish/s1")] = shas[ids.index("animals/fish/s0")]
    ids.append("vehicles/car"), categories.append("vehicles"), shas.append("car")  # not a family
    ids.append("town/houses/cartoon/hut"), categories.append("town/houses/cartoon"), shas.append("hut")
    return Dataset.from_dict({"id": ids, "image_sha": shas, "category": categories})


def test_answers_cover_families_counts_regions_and_yes_no():
    answers = S.answers()
    assert answers[:6] == list(S.FAMILIES) and answers[-2:] == ["yes", "no"]
    assert {"one", "two", "three", "left", "middle"} <= set(answers) and len(answers) == len(set(answers)) == 16


def test_family_stamps_label_subcategories_and_drop_the_rest():
    family = S.family_stamps(_family_table())
    assert "vehicles/car" not in family["id"]
    assert dict(zip(family["id"], family["label"]))["town/houses/cartoon/hut"] == "house"
    assert len(family) == 25 and family["row"][-1] == 25  # rows point back into the stamps table


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_stamps_puts_every_family_in_every_split_and_no_picture_in_two(seed):
    parts = S.split_stamps(S.family_stamps(_family_table()), seed)
    assert set(parts) == set(SPLITS)
    for part in parts.values():
        assert set(part["label"]) == set(S.FAMILIES)
    assert_disjoint(parts, ["id", "image_sha"])
    fish = {name: [i for i in part["id"] if i.startswith("animals/fish/s")] for name, part in parts.items()}
    together = [name for name, ids in fish.items() if "animals/fish/s0" in ids]
    assert "animals/fish/s1" in fish[together[0]]  # the duplicate picture went with its twin


def _pool():
    kinds = {"bird": "triangle", "fish": "circle", "flower": "square", "fruit": "circle", "house": "square",
             "planet": "circle"}
    colours = {"bird": "duck", "fish": "owl", "flower": "apple", "fruit": "apple", "house": "cat", "planet": "owl"}
    images, rows = {}, {"id": [], "row": [], "image_sha": [], "label": []}
    for k, (label, kind) in enumerate(kinds.items()):
        images[k] = shape_stamp(colours[label], kind).image
        rows["id"].append(f"{label}/0"), rows["row"].append(k), rows["image_sha"].append(f"h{k}")
        rows["label"].append(label)
    return Dataset.from_dict(rows), images


def test_scene_questions_are_exact_and_repeatable():
    pool, images = _pool()
    rows = S.scene_questions(pool, images, n=12, seed=5, size=48, first_id=100)
    assert rows.features == S.FEATURES
    assert sorted(set(rows["image_id"])) == list(range(100, 112))
    assert set(rows["answer"]) <= set(S.answers())
    assert set(rows["question_type"]) <= {"what", "count", "where", "exists"}
    for row in rows:
        families = [stamp.split("/")[0] for stamp in row["stamp_ids"]]
        assert sorted(families) == sorted(row["labels"]) and row["image"].size == (48, 48)
        if row["question_type"] == "count":
            counted = row["question"].split()[2]  # "how many birds are there?"
            assert S.answers().index(row["answer"]) - 5 == sum(counted.startswith(f) for f in row["labels"])
        if row["question_type"] == "exists":
            asked = row["question"].rstrip("?").split()[-1]
            assert (row["answer"] == "yes") == (asked in row["labels"])
    again = S.scene_questions(pool, images, n=12, seed=5, size=48, first_id=100)
    assert again["question"] == rows["question"] and again["image_sha"] == rows["image_sha"]
    first = np.asarray(rows[0]["image"])
    assert np.array_equal(first, np.asarray(again[0]["image"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_built_splits_share_no_scene_and_no_stamp(seed):
    pytest.importorskip("PIL")
    try:
        parts = S.build_splits(seed, size=48, scenes=(8, 4, 4))
    except FileNotFoundError as err:  # no Tux Paint stamps installed
        pytest.skip(str(err))
    assert [len(set(parts[p]["image_id"])) for p in SPLITS] == [8, 4, 4]
    assert_disjoint(parts, ["image_id", "image_sha", "stamp_ids", "stamp_shas"])
