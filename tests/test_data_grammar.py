"""The scene grammar: captions and question/answer pairs on hand-made layouts."""
import pytest

from mmcourse.data.grammar import REGIONS, describe, noun_phrase, questions
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


