"""The generated recipe dataset of notebook 02: text grammar, dish pictures, splits."""
import hashlib

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image, ImageDraw

from mmcourse.data import recipes as DR
from mmcourse.data.scenes import Stamp
from mmcourse.data.splits import assert_disjoint


def _picture(name: str, variant: int = 0) -> DR.Picture:
    """A solid disc in a colour derived from the name: a stand-in for a stamp picture."""
    colour = tuple(hashlib.sha1(f"{name}{variant}".encode()).digest()[:3])
    image = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([2, 2, 21, 21], fill=colour + (255,))
    return DR.Picture(f"{name}-{variant}", Stamp(name, image), tuple(float(c) for c in colour))


@pytest.fixture(scope="module")
def pictures():
    # Two pictures for every fifth ingredient, so some can be kept for test only.
    return {name: [_picture(name, v) for v in range(1 + (k % 5 == 0))] for k, name in enumerate(DR.INGREDIENTS)}


@pytest.fixture(scope="module")
def small(pictures):
    return Dataset.from_list([DR.make_recipe(i, pictures, size=48) for i in range(240)], features=DR.RECIPE_FEATURES)


# ---------------------------------------------------------------- text

def test_ingredient_lines_read_as_english():
    assert DR.ingredient_line("carrot", 2) == "2 carrots"
    assert DR.ingredient_line("onion", 1) == "1 onion"
    assert DR.ingredient_line("lettuce", 1) == "a head of lettuce"
    assert DR.ingredient_line("strawberry", 3) == "three cups of strawberries"
    assert DR.ingredient_line("garlic", 2) == "two cloves of garlic"


def test_instructions_mention_the_ingredients_and_vary_with_the_seed():
    soup = DR.DISHES[DR.DISH_NAMES.index("soup")]
    steps, hidden = DR.write_instructions(soup, ["carrot", "potato"], np.random.default_rng(0))
    text = " ".join(steps)
    assert "carrots" in text and "potatoes" in text
    assert all(s[0].isupper() and s.endswith(".") for s in steps)
    assert hidden and set(hidden) <= {"butter", "oil", "water", "stock", "salt", "pepper", "cream"}
    assert steps == DR.write_instructions(soup, ["carrot", "potato"], np.random.default_rng(0))[0]
    variants = {" ".join(DR.write_instructions(soup, ["carrot", "potato"], np.random.default_rng(s))[0])
                for s in range(20)}
    assert len(variants) > 10  # paraphrases, not one template


def test_every_dish_draws_from_known_ingredients():
    assert 6 <= len(DR.DISHES) <= 10
    for dish in DR.DISHES:
        assert set(dish.pool) <= set(DR.INGREDIENTS), dish.name
        assert len(dish.pool) >= 6


# ---------------------------------------------------------------- pictures

def test_a_blended_dish_shows_few_ingredients_in_the_colour_of_their_mean(pictures):
    soup = DR.DISHES[DR.DISH_NAMES.index("soup")]
    names = ["carrot", "tomato", "potato"]
    chosen = {n: pictures[n][0] for n in names}
    image, visible = DR.render_dish(soup, names, chosen, np.random.default_rng(3), size=64, blended=True)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert len(visible) <= 1
    mean = np.mean([chosen[n].colour for n in names], axis=0)
    liquid = np.clip(mean.mean() + 1.5 * (mean - mean.mean()), 0, 255).astype(int)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    assert (np.abs(pixels - liquid).max(axis=1) <= 1).sum() > 50  # the soup has the ingredients' colour


def test_a_chunky_dish_shows_every_ingredient(pictures):
    pizza = DR.DISHES[DR.DISH_NAMES.index("pizza")]
    names = ["mushroom", "onion", "corn"]
    image, visible = DR.render_dish(pizza, names, {n: pictures[n][0] for n in names}, np.random.default_rng(0))
    assert visible == names


def test_recipes_are_deterministic_rows_of_the_documented_columns(pictures, small):
    a, b = DR.make_recipe(7, pictures, size=48), DR.make_recipe(7, pictures, size=48)
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert {k: v for k, v in a.items() if k != "image"} == {k: v for k, v in b.items() if k != "image"}
    assert set(a) == set(DR.RECIPE_FEATURES)
    row = small[3]
    assert DR.DISH_NAMES[row["dish"]] == DR.DISHES[3].name  # classes come in turn
    n_visible_pool = len(row["combo"].split("|")[1].split("+"))
    assert 2 <= n_visible_pool <= 6
    assert set(row["visible"]) <= set(row["ingredients"])
    assert len(row["picture_shas"]) == len(row["visible"])
    assert len(set(small["image_sha"])) == len(small)


def test_the_catalogue_matches_the_installed_stamps():
    from mmcourse.data.tuxpaint import load_stamps

    stamps = load_stamps()
    ids = set(stamps["id"])
    missing = [s for ing in DR.INGREDIENTS.values() for s in ing.stamps if s not in ids]
    assert not missing, f"catalogue names stamps that are not installed: {missing}"
    pictures = DR.ingredient_pictures(stamps, size=32)
    assert set(pictures) == set(DR.INGREDIENTS)
    assert all(max(p.stamp.image.size) <= 32 for ps in pictures.values() for p in ps)
    assert sum(len(ps) >= 2 for ps in pictures.values()) >= 8  # enough to keep some pictures for test


# ---------------------------------------------------------------- splits

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_share_nothing_and_keep_new_pictures_for_test(small, seed):
    parts = DR.make_splits(small, seed, test_pictures=3)
    assert set(parts) == {"train", "validation", "test"}
    assert_disjoint(parts, ["id", "combo", "image_sha"])
    held = DR.test_only_pictures(small, seed, 3)
    assert len(held) == 3
    for name in ("train", "validation"):
        assert not held & {s for shas in parts[name]["picture_shas"] for s in shas}
    assert held & {s for shas in parts["test"]["picture_shas"] for s in shas}
    assert min(len(p) for p in parts.values()) > 0


def test_test_only_pictures_refuses_more_than_there_are(small):
    with pytest.raises(ValueError, match="two pictures"):
        DR.test_only_pictures(small, 0, count=99)
