import sys
import types
from collections import Counter

import pytest
from PIL import Image

from mmcourse.data import easyvqa
from mmcourse.data.easyvqa import FEATURES, answers, load_easy_vqa, question_type


@pytest.fixture(scope="module")
def vqa():
    pytest.importorskip("easy_vqa")
    return load_easy_vqa()  # built once into the shared cache


def test_sizes_match_the_published_counts(vqa):
    assert set(vqa) == {"train", "test"}
    assert (len(vqa["train"]), len(vqa["test"])) == (38575, 9673)
    assert len(set(vqa["train"]["image_id"])) == 4000 and len(set(vqa["test"]["image_id"])) == 1000
    assert vqa["train"].features == FEATURES


def test_answers_and_question_types(vqa):
    assert len(answers()) == 13 and {"yes", "no", "circle", "teal"} <= set(answers())
    for split, n_yes_no in (("train", 28407), ("test", 7136)):  # the package README's counts
        types_ = Counter(vqa[split]["question_type"])
        assert set(types_) == {"yes/no", "shape", "color"} and types_["yes/no"] == n_yes_no
        assert set(vqa[split]["answer"]) <= set(answers())
    rows = vqa["train"].select_columns(["question", "answer", "question_type"]).select(range(2000))
    for row in rows:  # the type read off the answer agrees with the question's wording
        words = row["question"].rstrip("?").split()
        if words[0] != "what":
            assert row["question_type"] == "yes/no" and row["answer"] in ("yes", "no")
        else:  # "what color is ...", "what is the color of ..." vs "what shape ...", "what is the red shape"
            assert row["question_type"] == ("color" if "color" in words else "shape")


def test_images_are_64px_rgb_and_shared_by_image_id(vqa):
    test = vqa["test"]
    first = test[0]
    assert isinstance(first["image"], Image.Image)
    assert first["image"].size == (64, 64) and first["image"].mode == "RGB"
    same = [i for i, image_id in enumerate(test["image_id"][:50]) if image_id == first["image_id"]]
    assert len(same) > 1
    assert test[same[-1]]["image"].tobytes() == first["image"].tobytes()


def test_question_type():
    assert [question_type(a) for a in ("yes", "no", "triangle", "teal")] == [
        "yes/no", "yes/no", "shape", "color"]


def fake_package(questions, image_paths):
    module = types.ModuleType("easy_vqa")
    module.get_answers = lambda: ["yes", "no", "circle", "red"]
    module.get_train_questions = lambda: questions
    module.get_test_questions = lambda: questions
    module.get_train_image_paths = lambda: image_paths
    module.get_test_image_paths = lambda: image_paths
    return module


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_missing_package_names_the_install_command(private_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "easy_vqa", None)  # makes `import easy_vqa` fail
    with pytest.raises(ImportError, match="pip install easy-vqa"):
        load_easy_vqa()
    with pytest.raises(ImportError, match="pip install easy-vqa"):
        answers()


def test_damaged_package_is_an_error(private_cache, monkeypatch):
    image = private_cache / "0.png"
    Image.new("RGB", (64, 64)).save(image)
    missing = fake_package((["is there a circle?"], ["yes"], [1]), {0: str(image)})
    monkeypatch.setitem(sys.modules, "easy_vqa", missing)
    with pytest.raises(ValueError, match=r"1 missing images, e\.g\. \[1\].*pip install --force-reinstall"):
        load_easy_vqa()
    odd_answer = fake_package((["what shape?"], ["hexagon"], [0]), {0: str(image)})
    monkeypatch.setitem(sys.modules, "easy_vqa", odd_answer)
    with pytest.raises(ValueError, match=r"answers not in answers\.txt: \['hexagon'\]"):
        load_easy_vqa()
    empty = fake_package(([], [], []), {0: str(image)})
    monkeypatch.setitem(sys.modules, "easy_vqa", empty)
    with pytest.raises(ValueError, match="train split has no questions"):
        load_easy_vqa()


def test_fake_package_builds_and_caches(private_cache, monkeypatch):
    image = private_cache / "0.png"
    Image.new("RGB", (64, 64), "red").save(image)
    monkeypatch.setitem(sys.modules, "easy_vqa", fake_package(
        (["what color is the shape?", "is there a circle?"], ["red", "no"], [0, 0]), {0: str(image)}))
    built = load_easy_vqa()
    assert built["train"]["question_type"] == ["color", "yes/no"]
    assert built["test"][0]["image"].getpixel((0, 0)) == (255, 0, 0)
    monkeypatch.setattr(easyvqa, "_build", lambda: pytest.fail("rebuilt although a cache exists"))
    assert load_easy_vqa()["train"]["answer"] == ["red", "no"]
