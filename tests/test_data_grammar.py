"""The scene grammar: captions and question/answer pairs on hand-made layouts, labels from captions, storage."""
import numpy as np
import pytest

from mmcourse.data.grammar import (REGIONS, describe, label_from_caption, noun_phrase, questions, scenes_to_dataset,
                                   stamps_from_dataset)
from mmcourse.data.scenes import Stamp, make_scenes
from scene_helpers import COLOURS, fake_scene, shape_stamp


@pytest.fixture(scope="module")
def stamps() -> list[Stamp]:
    return [shape_stamp("apple", "circle"), shape_stamp("duck", "triangle"),
            shape_stamp("cat", "square"), shape_stamp("owl", "circle", side=40)]


# ---------------------------------------------------------------- grammar

def test_noun_phrase():
    assert noun_phrase("apple", 1) == "an apple"
    assert noun_phrase("apple", 2) == "two apples"
    assert noun_phrase("mouse", 3) == "three mice"
    assert noun_phrase("cat", 13) == "13 cats"


@pytest.mark.parametrize("layout, caption", [
    ([("duck", 20, 64)], "a duck on the left"),
    ([("owl", 64, 60)], "an owl in the middle"),
    ([("apple", 64, 110)], "an apple at the bottom"),
    ([("apple", 30, 15), ("apple", 100, 15)], "two apples at the top"),
    ([("apple", 20, 64), ("apple", 110, 64)], "two apples"),  # no single place fits both
    ([("duck", 20, 64), ("apple", 100, 40), ("apple", 100, 90)], "a duck to the left of two apples"),
    ([("apple", 100, 40), ("duck", 20, 64), ("apple", 100, 90)], "two apples to the right of a duck"),
    ([("mouse", 40, 20), ("mouse", 80, 20), ("fish", 60, 100)], "two mice above a fish"),
    ([("owl", 60, 100), ("egg", 64, 20)], "an owl below an egg"),
    ([("duck", 20, 64), ("apple", 100, 64), ("cat", 100, 110)],
     "a duck to the left of an apple, and a cat below the apple"),
    ([("duck", 20, 64), ("apple", 100, 30), ("apple", 100, 70), ("box", 30, 50)],
     "a duck to the left of two apples, and a box to the left of the apples"),
    ([("duck", 10, 10), ("apple", 50, 50), ("cat", 90, 90), ("owl", 110, 20)],
     "a duck, an apple, a cat and an owl"),
])
def test_describe_hand_made_layouts(layout, caption):
    assert describe(fake_scene(layout)) == caption


# ---------------------------------------------------------------- questions

def test_questions_answers_on_a_hand_made_scene():
    scene = fake_scene([("duck", 20, 64), ("apple", 100, 40), ("apple", 100, 90)])
    truth = {
        "what is on the left?": "duck", "what is on the right?": "apple", "what is at the top?": "apple",
        "what is at the bottom?": "apple", "how many ducks are there?": "one",
        "how many apples are there?": "two", "where is the duck?": "left",
        "is there a duck?": "yes", "is there an apple?": "yes", "is there a cat?": "no", "is there an owl?": "no",
    }
    seen_types, seen_questions = set(), set()
    for seed in range(30):
        for qa in questions(scene, seed, labels=["duck", "apple", "cat", "owl"]):
            assert truth[qa["question"]] == qa["answer"], qa
            seen_types.add(qa["type"])
            seen_questions.add(qa["question"])
    assert seen_types == {"what", "count", "where", "exists"}
    assert seen_questions == set(truth)  # every true question comes up over enough seeds


def test_what_questions_are_only_asked_when_unambiguous():
    # Same column: neither is "on the left"; the duck is clearly at the top.
    scene = fake_scene([("duck", 64, 20), ("cat", 66, 100)])
    whats = {qa["question"]: qa["answer"] for s in range(20) for qa in questions(scene, s) if qa["type"] == "what"}
    assert whats == {"what is at the top?": "duck", "what is at the bottom?": "cat"}
    single = fake_scene([("cat", 30, 30), ("cat", 90, 90)])
    assert [qa for qa in questions(single, 0) if qa["type"] == "what"] == [
        {"question": "what is in the picture?", "answer": "cat", "type": "what"}]
    assert not [qa for qa in questions(single, 0) if qa["type"] == "where"]  # "the cat" would be ambiguous


@pytest.mark.parametrize("cx, cy, place", [(20, 64, "left"), (110, 60, "right"), (64, 15, "top"),
                                           (70, 115, "bottom"), (60, 70, "middle")])
def test_where_answers(cx, cy, place):
    qa = [q for q in questions(fake_scene([("owl", cx, cy)]), 0) if q["type"] == "where"]
    assert place in REGIONS
    assert qa == [{"question": "where is the owl?", "answer": place, "type": "where"}]


def test_exists_is_balanced_and_no_answers_are_absent(stamps):
    pool = list(COLOURS)
    yes = no = 0
    for i, scene in enumerate(make_scenes(stamps, 40, seed=1)):
        for qa in questions(scene, i, pool):
            if qa["type"] != "exists":
                continue
            label = next(l for l in pool if qa["question"].endswith(f" {l}?"))
            assert (label in scene.labels) == (qa["answer"] == "yes")
            yes += qa["answer"] == "yes"
            no += qa["answer"] == "no"
    assert yes == no > 20  # every scene with an absent label asks one of each
    assert not [q for q in questions(make_scenes(stamps, 1)[0], 0) if q["type"] == "exists"]  # no pool, no "no"


# ---------------------------------------------------------------- stamps from captions

@pytest.mark.parametrize("caption, label", [
    ("A duck.", "duck"), ("An emperor tamarin.", "emperor tamarin"), ("A Sumatran tiger.", "Sumatran tiger"),
    ("A happy lion!", "happy lion"), ("The full moon.", "full moon"), ("A knight’s helmet.", "knight’s helmet"),
    ("A pair of glasses.", "pair of glasses"), ("A mince pie is a traditional Christmas food.", None), ("", None),
    ("Dollar sign.", None), ("Some cherries.", None), ("Greater than.", None), ("A “Fuji” apple.", None),
    ("A F-22 Raptor.", None), ("Earth. Our planet.", None),
])
def test_label_from_caption(caption, label):
    assert label_from_caption(caption) == label


def test_stamps_from_dataset(stamps):
    import datasets

    rows = datasets.Dataset.from_dict(
        {"image": [s.image for s in stamps[:3]], "caption": ["A red apple.", "A duck is a bird that swims.", "A cat."]},
        features=datasets.Features({"image": datasets.Image(mode="RGBA"), "caption": datasets.Value("string")}))
    made = stamps_from_dataset(rows)
    assert [s.label for s in made] == ["red apple", "cat"]
    assert np.array_equal(np.asarray(made[1].image), np.asarray(stamps[2].image))


# ---------------------------------------------------------------- storage

def test_scenes_to_dataset_round_trip(stamps, tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    from mmcourse.data.cache import cached_dataset

    scenes = make_scenes(stamps, 5, seed=2)
    ds = cached_dataset("scenes-test", lambda: scenes_to_dataset(scenes, seed=0))
    assert len(ds) == 5
    assert set(ds.column_names) == {"image", "caption", "labels", "boxes", "questions", "segmentation", "background"}
    pool = sorted({o.label for s in scenes for o in s.objects})
    for i, (row, scene) in enumerate(zip(ds, scenes)):
        assert np.array_equal(np.asarray(row["image"]), np.asarray(scene.image))
        assert row["caption"] == describe(scene)
        assert row["labels"] == scene.labels
        assert [tuple(b) for b in row["boxes"]] == [o.box for o in scene.objects]
        assert row["questions"] == questions(scene, np.random.default_rng([0, i]), pool)
        seg = np.asarray(row["segmentation"])
        for j, obj in enumerate(scene.objects):
            assert np.array_equal(seg == j + 1, obj.mask)


def test_the_composer_knows_nothing_of_language():
    """scenes.py places pixels; captions and questions are the grammar's (no import cycle)."""
    import ast
    import inspect

    import mmcourse.data.scenes as scenes

    tree = ast.parse(inspect.getsource(scenes))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m and m.startswith("mmcourse")}, imported
