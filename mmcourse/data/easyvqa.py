"""easy-VQA as a `datasets.DatasetDict`: 64x64 images of one coloured shape, with questions.

The PyPI package `easy-vqa` (MIT, Victor Zhou) ships 4,000 train and 1,000 test images and
38,575 + 9,673 question/answer pairs, all offline. Every answer is one of 13 words, so VQA
here is a 13-way classification of (image, question) pairs.
"""
from __future__ import annotations

import sys

from datasets import Dataset, DatasetDict, Features, Image, Value

from mmcourse.data.cache import cached_dataset

SHAPES = ("circle", "rectangle", "triangle")
YES_NO = ("yes", "no")

FEATURES = Features({
    "image": Image(),                  # PIL RGB, 64x64
    "question": Value("string"),       # "what color is the triangle?"
    "answer": Value("string"),         # one of answers()
    "question_type": Value("string"),  # "shape", "color" or "yes/no"
    "image_id": Value("int32"),        # several questions share one image
})


def answers() -> list[str]:
    """The 13 possible answers in the package's order (use the index as the class label)."""
    return _package().get_answers()


def question_type(answer: str) -> str:
    """What a question asks, read off its answer: "yes/no", "shape" or "color".

    easy-vqa's questions carry no type, but each answer word belongs to exactly one kind.
    """
    if answer in YES_NO:
        return "yes/no"
    return "shape" if answer in SHAPES else "color"


def load_easy_vqa(rebuild: bool = False) -> DatasetDict:
    """easy-VQA as DatasetDict(train=..., test=...), one row per question, built once and cached."""
    return cached_dataset("easy-vqa", _build, (sys.modules[__name__],), rebuild)


def _package():
    try:
        import easy_vqa
    except ImportError as err:
        raise ImportError("the easy-vqa package is not installed: pip install easy-vqa") from err
    return easy_vqa


def _build() -> DatasetDict:
    ev = _package()
    known = set(ev.get_answers())
    return DatasetDict(
        train=_split("train", ev.get_train_questions(), ev.get_train_image_paths(), known),
        test=_split("test", ev.get_test_questions(), ev.get_test_image_paths(), known),
    )


def _split(name: str, questions: tuple[list, list, list], image_paths: dict[int, str],
           known: set[str]) -> Dataset:
    texts, answer_words, image_ids = questions
    if not texts:
        raise ValueError(f"easy-vqa {name} split has no questions; reinstall it: "
                         "pip install --force-reinstall easy-vqa")
    missing = sorted(set(image_ids) - set(image_paths))
    unknown = sorted(set(answer_words) - known)
    if missing or unknown:
        raise ValueError(f"easy-vqa {name} split is damaged ({len(missing)} missing images, e.g. "
                         f"{missing[:3]}; answers not in answers.txt: {unknown[:3]}); reinstall it: "
                         "pip install --force-reinstall easy-vqa")
    return Dataset.from_dict({
        "image": [image_paths[i] for i in image_ids],
        "question": texts,
        "answer": answer_words,
        "question_type": [question_type(a) for a in answer_words],
        "image_id": image_ids,
    }, features=FEATURES)


COLORS = ("red", "green", "blue", "yellow", "teal", "black", "brown", "gray")


def image_facts(rows: Dataset) -> dict[int, dict[str, str | None]]:
    """The colour and shape of every image, read off its questions and answers.

    {image_id: {"color": "red", "shape": "circle"}}, None where no question reveals it.
    "what color is the circle?" -> circle (and the answer's colour); "is there not a red
    shape?" -> "no" means red. Contradicting facts about one image raise ValueError.
    """
    table = rows.select_columns(["question", "answer", "image_id"]).to_dict()
    facts: dict[int, dict[str, str | None]] = {}
    for question, answer, image_id in zip(table["question"], table["answer"], table["image_id"]):
        words = question.rstrip("?").split()
        found = facts.setdefault(image_id, {"color": None, "shape": None})
        named = {"color": [w for w in words if w in COLORS], "shape": [w for w in words if w in SHAPES]}
        if answer in YES_NO:  # "is there (not) a red shape?": a fact only when the thing is there
            if (answer == "yes") == ("not" in words or "no" in words):
                continue
        else:
            named[question_type(answer)] = [answer]
        for kind, values in named.items():
            for value in values:
                if found[kind] not in (None, value):
                    raise ValueError(f"image {image_id}: questions say both {found[kind]} and {value}")
                found[kind] = value
    return facts
