"""Composed scenes: determinism, masks and boxes, overlap, storage."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mmcourse.data.grammar import describe, questions
from mmcourse.data.scenes import BACKGROUNDS, PlacementError, Stamp, compose_scene, make_scenes, random_background
from scene_helpers import COLOURS, shape_stamp, tight_box


@pytest.fixture(scope="module")
def stamps() -> list[Stamp]:
    return [shape_stamp("apple", "circle"), shape_stamp("duck", "triangle"),
            shape_stamp("cat", "square"), shape_stamp("owl", "circle", side=40)]


# ---------------------------------------------------------------- composing

def test_same_seed_same_scenes(stamps):
    a, b = make_scenes(stamps, 6, seed=3), make_scenes(stamps, 6, seed=3)
    for sa, sb in zip(a, b):
        assert np.array_equal(np.asarray(sa.image), np.asarray(sb.image))
        assert [o.box for o in sa.objects] == [o.box for o in sb.objects]
        assert all(np.array_equal(oa.mask, ob.mask) for oa, ob in zip(sa.objects, sb.objects))
        assert describe(sa) == describe(sb)
        assert questions(sa, 1, list(COLOURS)) == questions(sb, 1, list(COLOURS))
    # Scene i depends only on (seed, i); another seed gives other scenes.
    assert [describe(s) for s in make_scenes(stamps, 3, seed=3)] == [describe(s) for s in a[:3]]
    other = make_scenes(stamps, 6, seed=4)
    assert any(not np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, other))


def test_object_counts_and_backgrounds_vary(stamps):
    scenes = make_scenes(stamps, 60, seed=0, min_objects=1, max_objects=3)
    counts = {len(s.objects) for s in scenes}
    assert counts == {1, 2, 3}
    assert {s.background for s in scenes} == set(BACKGROUNDS)
    # Repeated labels occur, so captions can count.
    assert any(len(set(s.labels)) < len(s.labels) for s in scenes)
    assert all(s.image.size == (128, 128) and s.image.mode == "RGB" for s in scenes)


def test_masks_and_boxes_match_the_pixels(stamps):
    """At native size nothing is resampled: every visible mask pixel has its stamp's colour,
    every other pixel is the background, and each box is its mask's tight box."""
    for seed in range(8):
        chosen = [stamps[i % 4] for i in range(seed % 3 + 2)]
        scene = compose_scene(chosen, seed, size=128, sizes=[max(s.image.size) for s in chosen])
        background, kind = random_background(np.random.default_rng(seed), 128)
        assert kind == scene.background
        pixels, expected = np.asarray(scene.image), np.asarray(background).copy()
        union = np.zeros((128, 128), dtype=bool)
        for obj in scene.objects:
            assert obj.mask.shape == (128, 128) and obj.mask.dtype == bool
            assert obj.box == tight_box(obj.mask)
            assert not (obj.mask & union).any(), "visible masks must not overlap"
            union |= obj.mask
            expected[obj.mask] = COLOURS[obj.label]
        assert np.array_equal(pixels, expected)


def test_resized_masks_cover_the_pasted_alpha(stamps):
    for seed in range(6):
        scene = compose_scene(stamps[:3], seed, size=128, scale_range=(0.25, 0.5))
        background = np.asarray(random_background(np.random.default_rng(seed), 128)[0]).astype(int)
        pixels = np.asarray(scene.image).astype(int)
        union = np.zeros((128, 128), dtype=bool)
        for obj in scene.objects:
            union |= obj.mask
            x0, y0, x1, y1 = obj.box
            assert max(x1 - x0, y1 - y0) >= 0.25 * 128 - 8  # shapes fill most of their stamp
            inside = pixels[ndimage.binary_erosion(obj.mask, iterations=3)]
            assert np.abs(inside - COLOURS[obj.label]).max() <= 8
        # Away from every mask (beyond the resampling kernel) the background is untouched.
        far = ~ndimage.binary_dilation(union, iterations=6)
        assert np.array_equal(pixels[far], background[far])


def test_overlap_limit(stamps):
    pair = [stamps[0], stamps[2]]
    native = [max(s.image.size) for s in pair]
    full_area = [int((np.asarray(s.image.getchannel("A")) >= 128).sum()) for s in pair]
    covered = []
    for seed in range(40):
        scene = compose_scene(pair, seed, size=80, sizes=native, max_overlap=0.1)
        lost = full_area[0] - scene.objects[0].mask.sum()  # the later stamp covers these pixels
        covered.append(lost / min(full_area))
        assert scene.objects[1].mask.sum() == full_area[1]  # the top one is whole
    assert max(covered) <= 0.1
    assert max(covered) > 0, "an 80 px canvas should force some overlap; the test would be vacuous"
    for seed in range(10):
        scene = compose_scene(pair, seed, size=96, sizes=native, max_overlap=0.0)
        assert [o.mask.sum() for o in scene.objects] == full_area


def test_explicit_positions_and_sizes(stamps):
    scene = compose_scene([stamps[1], stamps[0]], 0, size=128, positions=[(32, 64), (96, 40)], sizes=[40, 30])
    duck, apple = scene.objects
    assert abs(duck.centre[0] - 32) <= 2 and abs(duck.centre[1] - 64) <= 2
    assert abs(apple.centre[0] - 96) <= 2 and abs(apple.centre[1] - 40) <= 2
    assert max(duck.box[2] - duck.box[0], duck.box[3] - duck.box[1]) <= 40
    assert describe(scene) == "a duck to the left of an apple"
    # A position near the edge is moved so the stamp stays inside the canvas.
    edge = compose_scene([stamps[0]], 0, size=64, positions=[(0, 0)], sizes=[32])
    assert edge.objects[0].box[:2] >= (0, 0)


def test_background_kinds_are_distinct_and_deterministic():
    for kind in BACKGROUNDS:
        a, name = random_background(5, 64, kind)
        b, _ = random_background(5, 64, kind)
        assert name == kind and a.mode == "RGB" and a.size == (64, 64)
        assert np.array_equal(np.asarray(a), np.asarray(b))
    flat = np.asarray(random_background(1, 64, "flat")[0])
    assert (flat == flat[0, 0]).all()
    stripes = np.asarray(random_background(1, 64, "stripes")[0])
    assert len(np.unique(stripes.reshape(-1, 3), axis=0)) == 2
    with pytest.raises(ValueError, match="unknown background"):
        random_background(0, 64, "plaid")


def test_bad_input_gives_clear_errors(stamps):
    with pytest.raises(ValueError, match="at least one stamp"):
        compose_scene([], 0)
    with pytest.raises(ValueError, match="at least one stamp"):
        make_scenes([], 3)
    with pytest.raises(ValueError, match="too small"):
        compose_scene(stamps[:1], 0, size=16)
    with pytest.raises(ValueError, match="scale_range"):
        compose_scene(stamps[:1], 0, scale_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="positions has 1 entries for 2 stamps"):
        compose_scene(stamps[:2], 0, positions=[(10, 10)])
    with pytest.raises(ValueError, match="stamp size 200"):
        compose_scene(stamps[:1], 0, sizes=[200])
    with pytest.raises(TypeError, match="Stamp"):
        compose_scene([Image.new("RGBA", (8, 8))], 0)
    with pytest.raises(ValueError, match="fully transparent"):
        Stamp("ghost", Image.new("RGBA", (16, 16), (255, 0, 0, 0)))
    with pytest.raises(ValueError, match="non-empty text label"):
        Stamp("  ", Image.new("RGBA", (16, 16), (255, 0, 0, 255)))
    with pytest.raises(PlacementError, match="could not place"):
        compose_scene([stamps[2]] * 6, 0, size=64, sizes=[60] * 6, max_overlap=0.0)


def test_stamp_without_alpha_is_an_opaque_rectangle():
    stamp = Stamp("box", Image.new("RGB", (20, 10), (0, 0, 255)))
    assert stamp.image.mode == "RGBA"
    scene = compose_scene([stamp], 0, size=64, sizes=[20])
    (obj,) = scene.objects
    assert obj.mask.sum() == 200 and obj.box[2] - obj.box[0] == 20 and obj.box[3] - obj.box[1] == 10


def test_stamp_is_cropped_to_its_opaque_part():
    image = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    image.paste((9, 9, 9, 255), (10, 5, 30, 15))
    assert Stamp("cat", image).image.size == (20, 10)


REAL_STAMPS = [Path("/usr/share/tuxpaint/stamps/animals/birds/duck.png"),
               Path("/usr/share/tuxpaint/stamps/food/fruit/apple_red.png")]


@pytest.mark.skipif(not all(p.exists() for p in REAL_STAMPS),
                    reason="Tux Paint stamps not installed (sudo apt-get install tuxpaint-stamps-default)")
def test_real_stamps_compose():
    real = []
    for path in REAL_STAMPS:
        image = Image.open(path)
        image.thumbnail((256, 256))
        real.append(Stamp(path.stem.split("_")[0], image))
    for scene in make_scenes(real, 5, seed=0, min_objects=2, max_objects=3):
        for obj in scene.objects:
            assert obj.mask.any() and obj.box == tight_box(obj.mask)
        assert "duck" in describe(scene) or "apple" in describe(scene)
