"""What a grammar can say about a composed scene: captions and question/answer pairs.

Because the program placed every object (mmcourse.data.scenes), the text is exact: no
annotator, no noise. Plurals and articles come from the course's one inflection helper
(mmcourse.text), so "two cacti" here and the tag "cactus" in notebook 01 agree.

    describe(scene)                                   # 'a duck to the left of two apples'
    questions(scene, rng=0, labels=["duck", "apple", "cat"])
    scenes_to_dataset(make_scenes(stamps, 100))       # scenes with captions and questions, as a Dataset
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmcourse.data.scenes import PlacedObject, Scene, Stamp, segmentation
from mmcourse.text import article, plural

MIDDLE = 0.125  # a centre within this fraction of the side from the image centre is "middle"
WHAT_MARGIN = 0.15  # "what is on the left?" needs the answer this fraction of the side ahead of any other label

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six",
                "seven", "eight", "nine", "ten", "eleven", "twelve")
REGION_PHRASE = {"left": "on the left", "right": "on the right", "top": "at the top",
                 "bottom": "at the bottom", "middle": "in the middle"}
REGIONS = tuple(REGION_PHRASE)  # the answers to "where" questions


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def noun_phrase(label: str, count: int) -> str:
    """'a duck', 'an apple', 'two apples'."""
    return f"{article(label)} {label}" if count == 1 else f"{number_word(count)} {plural(label)}"


def region(obj: PlacedObject, size: int) -> str:
    """Where an object's box centre lies: 'left', 'right', 'top', 'bottom' or 'middle'."""
    cx, cy = obj.centre
    dx, dy = cx / size - 0.5, cy / size - 0.5
    if max(abs(dx), abs(dy)) < MIDDLE:
        return "middle"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def relation(a: tuple[float, float], b: tuple[float, float]) -> str:
    """How point a lies relative to point b, along the axis where they differ most (y grows down)."""
    dx, dy = a[0] - b[0], a[1] - b[1]
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


@dataclass
class _Group:
    label: str
    members: list[PlacedObject]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def centre(self) -> tuple[float, float]:
        xs, ys = zip(*(m.centre for m in self.members))
        return sum(xs) / len(xs), sum(ys) / len(ys)

    def definite(self) -> str:
        return f"the {self.label if self.count == 1 else plural(self.label)}"


def _groups(scene: Scene) -> list[_Group]:
    """Objects grouped by label, in the order each label first appears."""
    groups: dict[str, _Group] = {}
    for obj in scene.objects:
        groups.setdefault(obj.label, _Group(obj.label, [])).members.append(obj)
    return list(groups.values())


def describe(scene: Scene) -> str:
    """One caption from the layout.

    One label: "a duck on the left" (the place only if all its objects share it).
    Two or three labels: "a duck to the left of two apples, and a cat below the apples",
    each relation between group centres. More labels: a plain list.
    """
    groups = _groups(scene)
    if not groups:
        raise ValueError("the scene has no objects to describe")
    phrases = [noun_phrase(g.label, g.count) for g in groups]
    if len(groups) == 1:
        places = {region(o, scene.size) for o in groups[0].members}
        return phrases[0] + (f" {REGION_PHRASE[places.pop()]}" if len(places) == 1 else "")
    if len(groups) > 3:
        return ", ".join(phrases[:-1]) + f" and {phrases[-1]}"
    parts = [f"{phrases[0]} {relation(groups[0].centre, groups[1].centre)} {phrases[1]}"]
    for prev, group, phrase in zip(groups[1:], groups[2:], phrases[2:]):
        parts.append(f"{phrase} {relation(group.centre, prev.centre)} {prev.definite()}")
    return ", and ".join(parts)


WHAT_QUESTIONS = {"left": "what is on the left?", "right": "what is on the right?",
                  "top": "what is at the top?", "bottom": "what is at the bottom?"}


def _extreme_label(scene: Scene, direction: str) -> str | None:
    """The label furthest in `direction`, if it leads every other label by a clear margin."""
    axis = 0 if direction in ("left", "right") else 1
    sign = -1 if direction in ("left", "top") else 1
    ranked = sorted(scene.objects, key=lambda o: sign * o.centre[axis], reverse=True)
    first = ranked[0]
    rival = next((o for o in ranked if o.label != first.label), None)
    if rival is None or sign * (first.centre[axis] - rival.centre[axis]) < WHAT_MARGIN * scene.size:
        return None
    return first.label


def questions(scene: Scene, rng: np.random.Generator | int = 0, labels: Sequence[str] | None = None) -> list[dict]:
    """Question/answer pairs about a scene, each {"question", "answer", "type"}.

    Types: "what" (the label furthest left/right/top/bottom when unambiguous, or "what is in the
    picture?" with one label), "count" (answers are number words: "two"), "where" (a label that
    occurs once: left/right/top/bottom/middle), and "exists": one "yes" and one "no" per scene,
    the "no" about a label from `labels` that is absent (no "exists" pair without `labels`).
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    groups = _groups(scene)
    if not groups:
        raise ValueError("the scene has no objects to ask about")
    qa = []

    def ask(question: str, answer: str, kind: str) -> None:
        qa.append({"question": question, "answer": answer, "type": kind})

    if len(groups) == 1:
        ask("what is in the picture?", groups[0].label, "what")
    else:
        clear = [(d, label) for d in WHAT_QUESTIONS if (label := _extreme_label(scene, d)) is not None]
        if clear:
            direction, label = clear[rng.integers(len(clear))]
            ask(WHAT_QUESTIONS[direction], label, "what")

    group = groups[rng.integers(len(groups))]
    ask(f"how many {plural(group.label)} are there?", number_word(group.count), "count")

    singles = [g for g in groups if g.count == 1]
    if singles:
        group = singles[rng.integers(len(singles))]
        ask(f"where is the {group.label}?", region(group.members[0], scene.size), "where")

    present = [g.label for g in groups]
    absent = sorted(set(labels or ()) - set(present))
    if absent:
        yes, no = present[rng.integers(len(present))], absent[rng.integers(len(absent))]
        ask(f"is there {article(yes)} {yes}?", "yes", "exists")
        ask(f"is there {article(no)} {no}?", "no", "exists")
    return qa


# ---------------------------------------------------------------- stamps from captions

LABEL = re.compile(r"[A-Za-z][A-Za-z'’ -]*")


def label_from_caption(caption: str, max_words: int = 3) -> str | None:
    """A short noun label from a stamp caption: "A red apple." -> "red apple".

    Only captions of the form "A/An/The <up to max_words plain words>." give a label; others
    give None: sentences, plurals ("Some cherries."), symbols ("Greater than."), quotes, digits.
    """
    words = caption.strip().rstrip(".!").split()
    if len(words) < 2 or words[0].lower() not in ("a", "an", "the") or len(words) > max_words + 1:
        return None
    label = " ".join(words[1:])
    return label if LABEL.fullmatch(label) else None


def stamps_from_dataset(rows, label_fn=label_from_caption) -> list[Stamp]:
    """Stamps from rows with "image" and "caption" (e.g. tuxpaint.load_stamps()), labelled by
    `label_fn(caption)`; rows whose label is None are left out."""
    if hasattr(rows, "select_columns"):  # a datasets.Dataset: skip decoding audio and other columns
        rows = rows.select_columns(["image", "caption"])
    stamps = []
    for row in rows:
        label = label_fn(row["caption"])
        if label is not None:
            stamps.append(Stamp(label, row["image"]))
    return stamps


# ---------------------------------------------------------------- storage

def scenes_to_dataset(scenes: Sequence[Scene], seed: int = 0, labels: Sequence[str] | None = None):
    """A `datasets.Dataset` with image, caption, labels, boxes, questions, segmentation, background.

    Questions for scene i come from rng (seed, i); the "no" answers draw absent labels from
    `labels` (default: every label in `scenes`). Masks are stored as one `segmentation` image
    per scene: object i's mask is `np.array(row["segmentation"]) == i + 1`.
    """
    import datasets  # heavy import, only needed when storing

    pool = sorted(set(labels) if labels is not None else {o.label for s in scenes for o in s.objects})
    features = datasets.Features({
        "image": datasets.Image(),
        "caption": datasets.Value("string"),
        "labels": datasets.Sequence(datasets.Value("string")),
        "boxes": datasets.Sequence(datasets.Sequence(datasets.Value("int32"), length=4)),
        "questions": [{"question": datasets.Value("string"), "answer": datasets.Value("string"),
                       "type": datasets.Value("string")}],
        "segmentation": datasets.Image(),
        "background": datasets.Value("string"),
    })
    columns = {
        "image": [s.image for s in scenes],
        "caption": [describe(s) for s in scenes],
        "labels": [s.labels for s in scenes],
        "boxes": [[list(o.box) for o in s.objects] for s in scenes],
        "questions": [questions(s, np.random.default_rng([seed, i]), pool) for i, s in enumerate(scenes)],
        "segmentation": [segmentation(s) for s in scenes],
        "background": [s.background for s in scenes],
    }
    return datasets.Dataset.from_dict(columns, features=features)
