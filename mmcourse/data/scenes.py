"""Composed scenes: stamps pasted on generated backgrounds, with exact boxes and masks.

Because the program placed every object, the boxes and masks are exact, and so is what the
grammar (mmcourse.data.grammar) says about the layout; this module knows nothing of language. Everything is drawn from one NumPy
Generator, so a seed fixes the pixels and the layout.

    stamps = [Stamp("duck", duck_rgba), Stamp("apple", apple_rgba)]
    scene = compose_scene(stamps, rng=0)        # or make_scenes(stamps, n=1000, seed=0)
    scene.objects[0].box, scene.objects[0].mask
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

ALPHA_THRESHOLD = 128  # a stamp pixel with alpha >= this belongs to the object's mask
MIN_SIZE = 32  # smaller canvases leave no room for a readable object
BACKGROUNDS = ("flat", "gradient", "sky", "noise", "stripes", "checker")
DRAWS_PER_SCENE = 10  # make_scenes redraws a layout that cannot be placed this many times

Rng = np.random.Generator | int | Sequence[int]


class PlacementError(ValueError):
    """The objects could not be placed within the overlap limit."""


@dataclass
class Stamp:
    """A cut-out to paste. `label` is the word the grammar uses ("duck", "red apple").

    The image is converted to RGBA (an image without alpha becomes an opaque rectangle) and
    cropped to its opaque part, so boxes fit the object rather than the stamp's padding.
    """

    label: str
    image: Image.Image

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"a stamp needs a non-empty text label, got {self.label!r}")
        self.label = " ".join(self.label.split())
        if not isinstance(self.image, Image.Image):
            raise TypeError(f"stamp {self.label!r}: image must be a PIL image, got {type(self.image).__name__}")
        image = self.image if self.image.mode == "RGBA" else self.image.convert("RGBA")
        opaque = image.getchannel("A").point(lambda a: 255 if a >= ALPHA_THRESHOLD else 0)
        bbox = opaque.getbbox()
        if bbox is None:
            raise ValueError(f"stamp {self.label!r} is fully transparent (no alpha >= {ALPHA_THRESHOLD}); "
                             "check that the image was loaded with its alpha channel")
        self.image = image.crop(bbox)


@dataclass
class PlacedObject:
    """One pasted object. `box` is (x0, y0, x1, y1) in pixels, x1/y1 exclusive like slicing;
    `mask` (H, W) bool marks its visible pixels on the whole canvas (later stamps cut it)."""

    label: str
    box: tuple[int, int, int, int]
    mask: np.ndarray

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass
class Scene:
    image: Image.Image  # RGB, size x size
    objects: list[PlacedObject]
    background: str  # one of BACKGROUNDS

    @property
    def size(self) -> int:
        return self.image.size[0]

    @property
    def labels(self) -> list[str]:
        return [o.label for o in self.objects]


def as_rng(rng: Rng) -> np.random.Generator:
    """Accept a Generator (used as is) or a seed (int or sequence of ints)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# ---------------------------------------------------------------- backgrounds

def _colour(rng: np.random.Generator, low: float = 60, high: float = 235) -> np.ndarray:
    return rng.uniform(low, high, size=3)


def _vertical_blend(top: np.ndarray, bottom: np.ndarray, rows: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, rows)[:, None]  # (rows, 1)
    return (1 - t) * top + t * bottom  # (rows, 3)


def random_background(rng: Rng, size: int, kind: str | None = None) -> tuple[Image.Image, str]:
    """A size x size RGB background and its kind (random from BACKGROUNDS unless given)."""
    rng = as_rng(rng)
    if kind is None:
        kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; choose one of {BACKGROUNDS}")
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "flat":
        pixels = np.broadcast_to(_colour(rng), (size, size, 3))
    elif kind == "gradient":
        rows = _vertical_blend(_colour(rng), _colour(rng), size)
        pixels = np.broadcast_to(rows[:, None, :], (size, size, 3))
    elif kind == "sky":
        horizon = int(size * rng.uniform(0.5, 0.8))
        sky_top = rng.uniform([80, 140, 200], [140, 190, 255])
        sky = _vertical_blend(sky_top, np.array([225.0, 235.0, 245.0]), horizon)
        ground_top = rng.uniform([90, 140, 60], [160, 200, 110]) if rng.random() < 0.6 \
            else rng.uniform([190, 160, 110], [230, 200, 150])  # grass or sand
        ground = _vertical_blend(ground_top, 0.7 * ground_top, size - horizon)
        pixels = np.broadcast_to(np.concatenate([sky, ground])[:, None, :], (size, size, 3))
    elif kind == "noise":
        cells = int(rng.integers(3, 9))
        # Mostly brightness variation around one colour, a little hue: a texture, not confetti.
        coarse = _colour(rng, 80, 200) + rng.normal(0, 25, (cells, cells, 1)) + rng.normal(0, 8, (cells, cells, 3))
        coarse = np.clip(coarse, 0, 255)
        smooth = Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        pixels = np.asarray(smooth, dtype=np.float64) + rng.normal(0, 8, (size, size, 3))
    else:  # stripes or checker: two colours in a repeating pattern
        a = _colour(rng)
        b = (a + _colour(rng)) / 2  # halfway to another colour keeps the pattern from drowning the objects
        width = int(rng.integers(6, 20))
        if kind == "stripes":
            direction = rng.integers(3)
            coord = (xx, yy, xx + yy)[direction]
            pick = (coord // width) % 2
        else:
            pick = (xx // width + yy // width) % 2
        pixels = np.where(pick[..., None] == 1, a, b)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), kind


# ---------------------------------------------------------------- composing

def _resized(image: Image.Image, longest: int) -> Image.Image:
    w, h = image.size
    scale = longest / max(w, h)
    # Pillow resizes RGBA with premultiplied alpha, so edges do not pick up dark fringes.
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def _overlap_ok(alpha: np.ndarray, x0: int, y0: int, placed: list[np.ndarray], max_overlap: float) -> bool:
    """Shared pixels between the candidate and each placed mask <= max_overlap of the smaller one."""
    h, w = alpha.shape
    area = alpha.sum()
    for mask in placed:
        shared = np.count_nonzero(mask[y0:y0 + h, x0:x0 + w] & alpha)
        if shared > max_overlap * min(area, mask.sum()):
            return False
    return True


def _check_compose_args(stamps, size, scale_range, max_overlap, positions, sizes) -> None:
    if len(stamps) == 0:
        raise ValueError("compose_scene needs at least one stamp, got an empty list")
    if not all(isinstance(s, Stamp) for s in stamps):
        raise TypeError("stamps must be Stamp objects: wrap images as Stamp(label, rgba_image)")
    if size < MIN_SIZE:
        raise ValueError(f"size={size} is too small for a scene; use size >= {MIN_SIZE}")
    low, high = scale_range
    if not 0 < low <= high <= 1:
        raise ValueError(f"scale_range={scale_range} must satisfy 0 < low <= high <= 1 (fractions of the side)")
    if not 0 <= max_overlap <= 1:
        raise ValueError(f"max_overlap={max_overlap} must be a fraction in [0, 1]")
    for name, given in (("positions", positions), ("sizes", sizes)):
        if given is not None and len(given) != len(stamps):
            raise ValueError(f"{name} has {len(given)} entries for {len(stamps)} stamps; give one per stamp")
    for s in sizes or ():
        if not 4 <= s <= size:
            raise ValueError(f"stamp size {s} px must lie in [4, {size}] (the longest side on a {size} px canvas)")


def compose_scene(stamps: Sequence[Stamp], rng: Rng = 0, size: int = 128,
                  scale_range: tuple[float, float] = (0.25, 0.5), max_overlap: float = 0.1,
                  positions: Sequence[tuple[float, float]] | None = None,
                  sizes: Sequence[int] | None = None, background: str | None = None,
                  max_tries: int = 200) -> Scene:
    """Paste `stamps` in order (later ones on top) on a random background.

    Each stamp's longest side is `sizes[i]` px, else a random fraction in `scale_range` of
    `size`. Positions are `positions[i]` = (cx, cy) centres in pixels (moved inside the canvas
    if needed; overlap not checked), else sampled so that any two objects share at most
    `max_overlap` of the smaller one's pixels (PlacementError after `max_tries` attempts, or
    when a stamp ends up completely hidden).
    """
    rng = as_rng(rng)
    _check_compose_args(stamps, size, scale_range, max_overlap, positions, sizes)
    background_image, kind = random_background(rng, size, background)
    canvas = background_image.convert("RGBA")
    full_masks: list[np.ndarray] = []
    for i, stamp in enumerate(stamps):
        longest = sizes[i] if sizes is not None else round(rng.uniform(*scale_range) * size)
        image = _resized(stamp.image, longest)
        alpha = np.asarray(image.getchannel("A")) >= ALPHA_THRESHOLD  # (h, w)
        h, w = alpha.shape
        if positions is not None:
            cx, cy = positions[i]
            x0 = int(np.clip(round(cx - w / 2), 0, size - w))
            y0 = int(np.clip(round(cy - h / 2), 0, size - h))
        else:
            for _ in range(max_tries):
                x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
                if _overlap_ok(alpha, x0, y0, full_masks, max_overlap):
                    break
            else:
                raise PlacementError(f"could not place stamp {i} ({stamp.label!r}) with max_overlap={max_overlap} "
                                     f"in {max_tries} tries; use fewer or smaller stamps or a larger canvas")
        canvas.alpha_composite(image, dest=(x0, y0))
        mask = np.zeros((size, size), dtype=bool)
        mask[y0:y0 + h, x0:x0 + w] = alpha
        full_masks.append(mask)

    # What each object shows is its own mask minus everything pasted after it.
    objects, covered = [], np.zeros((size, size), dtype=bool)
    for stamp, mask in zip(reversed(stamps), reversed(full_masks)):
        visible = mask & ~covered
        covered |= mask
        if not visible.any():
            raise PlacementError(f"stamp {stamp.label!r} is completely hidden by later stamps; move it")
        ys, xs = np.nonzero(visible)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(PlacedObject(stamp.label, box, visible))
    return Scene(canvas.convert("RGB"), objects[::-1], kind)


def make_scenes(stamps: Sequence[Stamp], n: int, seed: int = 0, min_objects: int = 1,
                max_objects: int = 3, size: int = 128, **compose_kwargs) -> list[Scene]:
    """`n` scenes of `min_objects..max_objects` objects drawn from `stamps`.

    A scene picks 1..k distinct labels and repeats some, so counts like "two apples" occur;
    stamps sharing a label are interchangeable pictures of it. Scene i depends only on
    (seed, i), so the first scenes of a longer list are the same scenes.
    """
    if len(stamps) == 0:
        raise ValueError("make_scenes needs at least one stamp, got an empty list")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    by_label: dict[str, list[Stamp]] = {}
    for stamp in stamps:
        by_label.setdefault(stamp.label, []).append(stamp)
    scenes = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        for attempt in range(DRAWS_PER_SCENE):  # a crowded draw may not fit: draw again from the same stream
            chosen = _draw_stamps(by_label, rng, min_objects, max_objects)
            try:
                scenes.append(compose_scene(chosen, rng, size=size, **compose_kwargs))
                break
            except PlacementError:
                if attempt == DRAWS_PER_SCENE - 1:
                    raise
    return scenes


def _draw_stamps(by_label: dict[str, list[Stamp]], rng: np.random.Generator,
                 min_objects: int, max_objects: int) -> list[Stamp]:
    """k objects over 1..k distinct labels, each label used at least once, in random order."""
    labels = list(by_label)
    k = int(rng.integers(min_objects, max_objects + 1))
    distinct = int(rng.integers(1, min(k, len(labels)) + 1))
    chosen = [str(label) for label in rng.choice(labels, size=distinct, replace=False)]
    picks = chosen + [str(label) for label in rng.choice(chosen, size=k - distinct)]
    rng.shuffle(picks)
    return [by_label[label][rng.integers(len(by_label[label]))] for label in picks]


# ---------------------------------------------------------------- storage

def segmentation(scene: Scene) -> Image.Image:
    """One 'L' image: 0 is background, i + 1 marks the visible pixels of object i."""
    seg = np.zeros((scene.size, scene.size), dtype=np.uint8)
    for i, obj in enumerate(scene.objects):
        seg[obj.mask] = i + 1
    return Image.fromarray(seg, "L")
