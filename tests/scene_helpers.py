"""Hand-made stamps and scenes shared by the scene and grammar tests."""
import numpy as np
from PIL import Image, ImageDraw

from mmcourse.data.scenes import PlacedObject, Scene, Stamp

COLOURS = {"apple": (220, 20, 20), "duck": (250, 220, 0), "cat": (20, 20, 20), "owl": (120, 60, 200)}


def shape_stamp(label: str, kind: str = "circle", side: int = 48) -> Stamp:
    """A solid-colour shape on a transparent square (drawn without antialiasing: alpha 0 or 255)."""
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    fill = COLOURS[label] + (255,)
    if kind == "circle":
        draw.ellipse([4, 4, side - 5, side - 5], fill=fill)
    elif kind == "triangle":
        draw.polygon([(side // 2, 2), (side - 3, side - 3), (2, side - 3)], fill=fill)
    else:
        draw.rectangle([6, 10, side - 7, side - 11], fill=fill)
    return Stamp(label, image)


def fake_scene(layout: list[tuple[str, float, float]], size: int = 128, half: int = 8) -> Scene:
    """A hand-made scene: (label, cx, cy) squares of side 2 * half, no pixels needed."""
    objects = []
    for label, cx, cy in layout:
        box = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))
        mask = np.zeros((size, size), dtype=bool)
        mask[box[1]:box[3], box[0]:box[2]] = True
        objects.append(PlacedObject(label, box, mask))
    return Scene(Image.new("RGB", (size, size)), objects, "flat")


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
