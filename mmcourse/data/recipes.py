"""Generated recipes on real pictures: a dish image and its recipe (ingredients + instructions).

No recipe corpus ships offline, so notebook 02 builds a small Recipe1M-like one on the Tux
Paint food stamps. A recipe has a dish class (soup, pizza, ...), 2-6 ingredients drawn from the
class's pool, and instructions written by a grammar that depends on both, with paraphrases.
Its image pastes the ingredients' real stamps into the class's container and layout (a bowl
of fruit, vegetables threaded on a skewer, toppings scattered on a pizza) on a random
background, with `mmcourse.data.scenes.compose_scene`.

Image and text share only part of what they say (the lecture's "unbalanced information"):

* both: the dish class (container / verbs) and the ingredients one can see;
* text only: quantities, times, temperatures, the seasoning and liquids nobody can see
  (salt, oil, yogurt, stock), and the ingredients of a blended soup or smoothie, which the
  image shows only as the colour of the liquid;
* image only: background, container colour, which picture of an apple, how many pieces, where.

    ds = load_recipes()                      # cached datasets.Dataset, columns in RECIPE_FEATURES
    parts = make_splits(ds, seed=0)          # train / validation / test, unseen combinations in test
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage
from PIL import ImageDraw

import mmcourse.data.scenes
import mmcourse.text
from mmcourse.data.cache import cached_dataset
from mmcourse.data.scenes import PlacementError, Stamp, compose_scene
from mmcourse.data.splits import assert_disjoint, content_hash, split_by_group
from mmcourse.text import plural

_plural = functools.lru_cache(maxsize=None)(plural)  # inflect is slow, and the same few words recur

# ---------------------------------------------------------------- the catalogue

@dataclass(frozen=True)
class Ingredient:
    name: str                 # one token for the ingredient encoder: "green pepper"
    stamps: tuple[str, ...]   # Tux Paint stamp ids that picture it
    unit: str | None = None   # "head of" etc. for mass nouns; None: counted ("2 carrots")


_F, _V = "food/fruit/", "food/vegetables/"
INGREDIENTS = {i.name: i for i in [
    Ingredient("apple", (_F + "apple_fuji", _F + "apple_red", _F + "apple_sierra_beauty", _F + "cartoon/apple")),
    Ingredient("green apple", (_F + "apple_green", _F + "apple_granny_smith")),
    Ingredient("apricot", (_F + "Apricot_whole", _F + "apricot")),
    Ingredient("avocado", (_F + "avocado",)),
    Ingredient("banana", (_F + "banana", _F + "cartoon/banana")),
    Ingredient("blueberry", (_F + "cartoon/blueberry",), "cup of"),
    Ingredient("cherry", (_F + "Cherry_Stella", _F + "cartoon/cherries"), "cup of"),
    Ingredient("grape", (_F + "grapes", _F + "cartoon/grapes"), "bunch of"),
    Ingredient("kiwi", (_F + "kiwi",)),
    Ingredient("lemon", (_F + "lemon", _F + "cartoon/lemon", _F + "cartoon/lemon_slice")),
    Ingredient("lime", (_F + "sliced_lime",)),
    Ingredient("mango", (_F + "mango",)),
    Ingredient("orange", (_F + "orange", _F + "orange_seville", _F + "mandarine", _F + "sliced_orange",
                          _F + "cartoon/orange")),
    Ingredient("peach", (_F + "cartoon/peach",)),
    Ingredient("pear", (_F + "pear", _F + "cartoon/pear")),
    Ingredient("pineapple", (_F + "pineapple", _F + "cartoon/pineapple")),
    Ingredient("plum", (_F + "cartoon/prune",)),
    Ingredient("pomegranate", (_F + "pomegranate",)),
    Ingredient("raspberry", (_F + "raspberry", _F + "cartoon/raspberry"), "cup of"),
    Ingredient("strawberry", (_F + "strawberry", _F + "Strawberry2", _F + "cartoon/strawberry"), "cup of"),
    Ingredient("almond", ("food/nuts/almond",), "handful of"),
    Ingredient("walnut", ("food/nuts/walnut", "food/nuts/walnut_shelled"), "handful of"),
    Ingredient("broccoli", (_V + "broccoli",), "head of"),
    Ingredient("carrot", (_V + "carrot",)),
    Ingredient("chili", (_V + "chilepepper",)),
    Ingredient("corn", (_V + "corn",), "cup of"),
    Ingredient("eggplant", (_V + "eggplant",)),
    Ingredient("garlic", (_V + "garlic", _V + "garlics"), "clove of"),
    Ingredient("lettuce", (_V + "lettuce", _V + "redlettuce"), "head of"),
    Ingredient("mushroom", (_V + "mushroom", "plants/mushrooms/cep", "plants/mushrooms/cep-1")),
    Ingredient("onion", (_V + "onion",)),
    Ingredient("squash", (_V + "pattypan_squash",)),
    Ingredient("green pepper", (_V + "pepper",)),
    Ingredient("yellow pepper", (_V + "yellowpepper",)),
    Ingredient("potato", (_V + "potato",)),
    Ingredient("pumpkin", (_V + "pumpkin_small",)),
    Ingredient("tomato", (_V + "tomato",)),
    Ingredient("yam", (_V + "yam",)),
    Ingredient("ginger", ("food/spices/ginger",), "piece of"),
]}


@dataclass(frozen=True)
class Dish:
    """A dish class: its container, which ingredients it draws from, and its instruction grammar.

    `steps` is a sequence of steps; each step is a tuple of alternatives (paraphrases), each
    alternative `(template, hidden ingredients it adds)`. An empty template skips the step.
    Templates may use {all} ("the carrots, onions and potato"), {list} (without "the"), {one}
    (one ingredient), {minutes} and {degrees}.
    """
    name: str
    container: str            # how `render_dish` draws it
    pool: tuple[str, ...]
    steps: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]
    minutes: tuple[int, int] = (5, 30)
    blended: float = 0.0      # probability that the dish is blended (ingredients seen only as colour)


_ = ()  # no hidden ingredient
DISHES = [
    Dish("fruit salad", "bowl",
         ("apple", "green apple", "banana", "grape", "kiwi", "orange", "pear", "pineapple", "strawberry",
          "mango", "blueberry", "raspberry", "cherry", "pomegranate", "peach", "plum"),
         ((("Wash the {list}.", _), ("Rinse the fruit under cold water.", _), ("", _)),
          (("Peel and slice the {list}.", _), ("Cut the {list} into bite-sized pieces.", _),
           ("Chop {all}.", _), ("Dice the fruit.", _)),
          (("Toss everything together in a large bowl.", _), ("Put the fruit in a bowl and mix gently.", _),
           ("Combine {all} in a serving bowl.", _)),
          (("Drizzle with honey and a squeeze of lime juice.", ("honey", "lime juice")),
           ("Sprinkle with sugar and a few mint leaves.", ("sugar", "mint")),
           ("Pour over a little orange juice.", ("orange juice",)), ("", _)),
          (("Chill for {minutes} minutes before serving.", _), ("Serve cold.", _), ("Serve at once.", _)))),
    Dish("green salad", "plate",
         ("lettuce", "tomato", "green pepper", "yellow pepper", "carrot", "onion", "corn", "avocado", "walnut",
          "broccoli", "mushroom", "almond"),
         ((("Wash the {list} and pat them dry.", _), ("Rinse {all}.", _)),
          (("Tear the lettuce and slice the rest.", _), ("Slice {all} thinly.", _),
           ("Cut the {list} into strips.", _), ("Chop {one} and the other vegetables.", _)),
          (("Whisk olive oil, vinegar and salt for the dressing.", ("olive oil", "vinegar", "salt")),
           ("Mix lemon juice with olive oil and pepper.", ("lemon juice", "olive oil", "pepper")),
           ("Stir yogurt with a pinch of salt.", ("yogurt", "salt"))),
          (("Arrange the vegetables on a plate and pour the dressing over.", _),
           ("Toss the salad with the dressing.", _), ("Lay everything on a wide plate and dress it.", _)),
          (("Serve immediately.", _), ("Let it rest for {minutes} minutes, then serve.", _), ("", _))),
         minutes=(2, 10)),
    Dish("soup", "pot",
         ("carrot", "potato", "onion", "pumpkin", "tomato", "corn", "garlic", "mushroom", "yam", "squash",
          "broccoli", "chili", "ginger"),
         ((("Peel and chop the {list}.", _), ("Cut {all} into cubes.", _), ("Dice the {list}.", _)),
          (("Fry the {list} in butter for a few minutes.", ("butter",)),
           ("Soften {one} in a little oil.", ("oil",)), ("", _)),
          (("Add water and a stock cube and bring to the boil.", ("water", "stock")),
           ("Cover with vegetable stock.", ("stock",)), ("Pour in water with a pinch of salt.", ("water", "salt"))),
          (("Simmer for {minutes} minutes.", _), ("Cook gently for {minutes} minutes until tender.", _),
           ("Boil everything for {minutes} minutes.", _)),
          (("Season with salt and pepper.", ("salt", "pepper")), ("Stir in a spoon of cream.", ("cream",)),
           ("", _)),
          (("Serve hot.", _), ("Serve in warm bowls.", _))),
         minutes=(10, 45), blended=0.5),
    Dish("skewer", "skewer",
         ("mushroom", "green pepper", "yellow pepper", "onion", "tomato", "eggplant", "pineapple", "squash",
          "corn", "chili", "potato"),
         ((("Soak the wooden skewers in water.", _), ("", _)),
          (("Cut the {list} into chunks.", _), ("Chop {all} into large pieces.", _)),
          (("Brush them with oil and paprika.", ("oil", "paprika")),
           ("Marinate the vegetables in oil and garlic for {minutes} minutes.", ("oil", "garlic")),
           ("Season with salt and oil.", ("salt", "oil"))),
          (("Thread {all} onto the skewers, alternating.", _), ("Push the pieces onto the sticks in turn.", _)),
          (("Grill for {minutes} minutes, turning often.", _), ("Barbecue for {minutes} minutes.", _),
           ("Roast in the oven at {degrees} degrees for {minutes} minutes.", _))),
         minutes=(8, 20)),
    Dish("sandwich", "bread",
         ("lettuce", "tomato", "avocado", "onion", "green pepper", "yellow pepper", "mushroom", "carrot",
          "eggplant", "chili"),
         ((("Toast two slices of bread.", ("bread",)), ("Cut a roll in half.", ("bread",)),
           ("Take two slices of bread.", ("bread",))),
          (("Spread them with butter.", ("butter",)), ("Spread mayonnaise on one side.", ("mayonnaise",)),
           ("Brush with mustard.", ("mustard",))),
          (("Slice the {list}.", _), ("Cut {all} into thin slices.", _), ("", _)),
          (("Layer {all} on the bottom slice.", _), ("Pile the {list} onto the bread.", _),
           ("Fill the sandwich with {all}.", _)),
          (("Close with the top slice and cut in half.", _), ("Press it together and serve.", _),
           ("Put the lid on and grill it for {minutes} minutes.", _))),
         minutes=(2, 6)),
    Dish("fruit tart", "tart",
         ("strawberry", "raspberry", "blueberry", "cherry", "apricot", "peach", "kiwi", "banana", "grape",
          "plum", "mango", "orange"),
         ((("Rub flour and butter together, add an egg and knead.", ("flour", "butter", "egg")),
           ("Make a pastry with flour, sugar and butter.", ("flour", "sugar", "butter")),
           ("Roll out ready-made pastry.", ("pastry",))),
          (("Line a tart tin and bake at {degrees} degrees for {minutes} minutes.", _),
           ("Bake the case blind for {minutes} minutes.", _)),
          (("Fill the case with vanilla cream.", ("cream", "vanilla")),
           ("Spread custard over the base.", ("custard",))),
          (("Arrange the {list} in a circle on top.", _), ("Decorate with {all}.", _),
           ("Lay the sliced {list} in rings.", _)),
          (("Glaze with warm jam.", ("jam",)), ("Dust with icing sugar.", ("sugar",)), ("", _))),
         minutes=(15, 35)),
    Dish("smoothie", "glass",
         ("banana", "strawberry", "mango", "pineapple", "kiwi", "orange", "raspberry", "blueberry", "peach",
          "apple", "pear", "avocado"),
         ((("Peel the {list}.", _), ("Wash and chop {all}.", _), ("Cut the {list} into pieces.", _)),
          (("Put them in a blender with yogurt.", ("yogurt",)), ("Add milk and a spoon of honey.", ("milk", "honey")),
           ("Pour in orange juice and add ice.", ("orange juice", "ice"))),
          (("Blend until smooth.", _), ("Whizz for a minute.", _), ("Blend for {minutes} seconds.", _)),
          (("Pour into a tall glass.", _), ("Serve in a glass with a straw.", _))),
         minutes=(30, 90), blended=1.0),
    Dish("pizza", "pizza",
         ("mushroom", "green pepper", "yellow pepper", "onion", "tomato", "corn", "chili", "pineapple", "garlic",
          "eggplant", "broccoli"),
         ((("Mix flour, yeast and water into a dough.", ("flour", "yeast", "water")),
           ("Roll out the pizza dough.", ("dough",)), ("Stretch the dough into a round.", ("dough",))),
          (("Spread tomato sauce over the base.", ("tomato sauce",)),
           ("Cover the base with passata.", ("tomato sauce",))),
          (("Slice the {list}.", _), ("Chop {all}.", _), ("", _)),
          (("Scatter {all} on top.", _), ("Top with the {list}.", _), ("Add {all} as toppings.", _)),
          (("Sprinkle with cheese.", ("cheese",)), ("Add mozzarella and oregano.", ("cheese", "oregano")), ("", _)),
          (("Bake at {degrees} degrees for {minutes} minutes.", _), ("Bake for {minutes} minutes until golden.", _))),
         minutes=(10, 20)),
]
DISH_NAMES = [d.name for d in DISHES]

RECIPE_FEATURES = Features({
    "id": Value("string"),                        # "recipe-00042"
    "image": Image(),                             # RGB dish picture, size x size
    "dish": ClassLabel(names=DISH_NAMES),         # the dish class: the semantic regulariser's target
    "ingredients": List(Value("string")),         # ingredient names, one token each, in recipe order
    "ingredient_lines": List(Value("string")),    # the same with quantities: "2 carrots", "a pinch of salt"
    "instructions": List(Value("string")),        # the steps, one sentence each
    "visible": List(Value("string")),             # ingredients drawn in the image (a blended dish shows few)
    "picture_shas": List(Value("string")),        # content hash of the stamp picture of each `visible` ingredient
    "combo": Value("string"),                     # "soup|carrot+onion+potato": the split keeps a combination on one side
    "image_sha": Value("string"),                 # hash of the picture's pixels
})

# ---------------------------------------------------------------- the text

def _number(n: int) -> str:
    return ("a", "two", "three")[n - 1] if n <= 3 else str(n)


def ingredient_line(name: str, amount: int) -> str:
    """'2 carrots', 'a head of lettuce', '3 cups of strawberries'."""
    unit = INGREDIENTS[name].unit if name in INGREDIENTS else None
    if unit is None:
        return f"{amount} {name if amount == 1 else _plural(name)}"
    measure, of = unit.rsplit(" ", 1)
    noun = name if name in ("corn", "broccoli", "lettuce", "garlic", "ginger") else _plural(name)
    return f"{_number(amount)} {measure if amount == 1 else _plural(measure)} {of} {noun}"


def _mention(name: str) -> str:
    unit = INGREDIENTS[name].unit if name in INGREDIENTS else None
    return name if unit in ("head of", "clove of", "piece of") or name == "corn" else _plural(name)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def write_instructions(dish: Dish, ingredients: list[str], rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(steps, hidden ingredients) for a dish made of `ingredients`, paraphrased at random."""
    steps, hidden = [], []
    for alternatives in dish.steps:
        template, extra = alternatives[rng.integers(len(alternatives))]
        if not template:
            continue
        order = [_mention(n) for n in rng.permutation(ingredients)]
        text = template.format(all="the " + _join(order), list=_join(order), one="the " + order[0],
                               minutes=int(rng.integers(*dish.minutes)), degrees=int(rng.choice([180, 200, 220])))
        steps.append(text[0].upper() + text[1:])
        hidden += [h for h in extra if h not in hidden]
    return steps, hidden


# ---------------------------------------------------------------- the picture

def _shade(rng: np.random.Generator, base: tuple[int, int, int], spread: int = 25) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _canvas(w: float, h: float) -> tuple[PILImage.Image, ImageDraw.ImageDraw]:
    image = PILImage.new("RGBA", (max(4, round(w)), max(4, round(h))), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def _disc(width: float, height: float, rng: np.random.Generator, outer: tuple[int, int, int],
          inner: tuple[int, int, int], spread: tuple[int, int], inset: int) -> PILImage.Image:
    """An ellipse with a smaller one inside (a plate's rim, a tart's crust, a pizza's edge), the
    inner one 1/inset of the size in from the edge; colours shaded by `spread` (outer, inner)."""
    image, draw = _canvas(width, height)
    w, h = image.size
    draw.ellipse([0, 0, w - 1, h - 1], fill=_shade(rng, outer, spread[0]) + (255,))
    draw.ellipse([w // inset, h // inset, w - w // inset, h - h // inset], fill=_shade(rng, inner, spread[1]) + (255,))
    return image


def _container(kind: str, size: int, rng: np.random.Generator, liquid: tuple[int, ...]) -> list[tuple]:
    """The container's pieces as (RGBA image, centre, drawn after the ingredients?)."""
    s = size
    if kind == "bowl":
        image, draw = _canvas(0.8 * s, 0.42 * s)
        w, h = image.size
        draw.pieslice([0, -h, w - 1, h - 1], 0, 180, fill=_shade(rng, (200, 120, 60), 60) + (255,))
        draw.ellipse([0, 0, w - 1, h // 4], fill=_shade(rng, (120, 70, 40), 30) + (255,))
        return [(image, (0.5 * s, 0.68 * s), False)]
    if kind == "plate":
        return [(_disc(0.9 * s, 0.5 * s, rng, (235, 235, 235), (210, 210, 220), (20, 25), 6), (0.5 * s, 0.58 * s), False)]
    if kind == "pot":
        image, draw = _canvas(0.8 * s, 0.55 * s)
        w, h = image.size
        metal = _shade(rng, (90, 90, 100), 30) + (255,)
        draw.rectangle([w // 10, h // 5, w - w // 10, h - 1], fill=metal)
        draw.rectangle([0, h // 5 + 2, w // 10, h // 5 + 5], fill=metal)          # handles
        draw.rectangle([w - w // 10, h // 5 + 2, w - 1, h // 5 + 5], fill=metal)
        draw.ellipse([w // 10, 0, w - w // 10, 2 * h // 5], fill=liquid + (255,))
        return [(image, (0.5 * s, 0.62 * s), False)]
    if kind == "skewer":
        image, draw = _canvas(0.92 * s, 0.06 * s)
        w, h = image.size
        draw.polygon([(0, 0), (w - 1 - h, 0), (w - 1, h // 2), (w - 1 - h, h - 1), (0, h - 1)],
                     fill=_shade(rng, (150, 110, 60), 20) + (255,))
        return [(image, (0.5 * s, 0.5 * s), False)]
    if kind == "bread":
        pieces = []
        for y, after in ((0.7, False), (0.32, True)):
            image, draw = _canvas(0.8 * s, 0.2 * s)
            w, h = image.size
            draw.rounded_rectangle([0, 0, w - 1, h - 1], radius=h // 2, fill=(150, 95, 40, 255))
            draw.rounded_rectangle([2, 2, w - 3, h - 3], radius=h // 2 - 2, fill=_shade(rng, (225, 185, 120), 15) + (255,))
            pieces.append((image, (0.5 * s, y * s), after))
        return pieces
    if kind == "tart":
        return [(_disc(0.86 * s, 0.86 * s, rng, (190, 130, 60), (250, 230, 160), (25, 10), 10), (0.5 * s, 0.5 * s), False)]
    if kind == "glass":
        image, draw = _canvas(0.36 * s, 0.7 * s)
        w, h = image.size
        draw.polygon([(0, 0), (w - 1, 0), (w - 1 - w // 8, h - 1), (w // 8, h - 1)], fill=(225, 235, 240, 255))
        draw.polygon([(2, h // 6), (w - 3, h // 6), (w - 2 - w // 8, h - 3), (w // 8 + 1, h - 3)], fill=liquid + (255,))
        return [(image, (0.38 * s, 0.58 * s), False)]
    if kind == "pizza":
        return [(_disc(0.9 * s, 0.9 * s, rng, (220, 170, 90), (200, 50, 30), (20, 20), 12), (0.5 * s, 0.5 * s), False)]
    raise ValueError(f"unknown container {kind!r}")


def _layout(kind: str, n: int, size: int, rng: np.random.Generator, blended: bool) -> list[tuple[int, float, float, float]]:
    """Where the ingredients go: (ingredient index, cx, cy, longest side) in pixels."""
    s, u = size, rng.uniform
    if kind == "bowl":
        return [(i, u(0.22, 0.78) * s, u(0.36, 0.56) * s, u(0.22, 0.3) * s) for i in range(n) for _ in range(rng.integers(1, 3))]
    if kind == "plate":
        return [(i, u(0.2, 0.8) * s, u(0.42, 0.72) * s, u(0.18, 0.25) * s) for i in range(n) for _ in range(rng.integers(1, 3))]
    if kind == "pot":
        if blended:  # one garnish at most: the rest is only the colour of the soup
            return [(int(rng.integers(n)), u(0.4, 0.6) * s, 0.44 * s, 0.16 * s)] if rng.random() < 0.5 else []
        return [(i, u(0.3, 0.7) * s, u(0.4, 0.47) * s, u(0.13, 0.17) * s) for i in range(n) for _ in range(rng.integers(1, 3))]
    if kind == "skewer":
        slots = np.linspace(0.16, 0.8, 6) * s
        order = rng.permutation(n)
        return [(int(order[j % n]), x, 0.5 * s, 0.17 * s) for j, x in enumerate(slots)]
    if kind == "bread":
        xs = np.linspace(0.22, 0.78, n) * s
        return [(i, x + u(-2, 2), u(0.47, 0.53) * s, 0.2 * s) for i, x in enumerate(xs)]
    if kind == "tart":
        k = int(rng.integers(6, 9))
        turn = u(0, 2 * np.pi)
        ring = [(0.5 + 0.27 * np.cos(turn + 2 * np.pi * j / k), 0.5 + 0.27 * np.sin(turn + 2 * np.pi * j / k)) for j in range(k)]
        return [(j % n, x * s, y * s, 0.15 * s) for j, (x, y) in enumerate(ring)] + [(int(rng.integers(n)), 0.5 * s, 0.5 * s, 0.18 * s)]
    if kind == "glass":  # one or two of the fruits beside the glass
        shown = rng.permutation(n)[:int(rng.integers(1, min(n, 2) + 1))]
        return [(int(i), 0.78 * s, (0.4 + 0.3 * j) * s, 0.26 * s) for j, i in enumerate(shown)]
    if kind == "pizza":
        spots = []
        for i in range(n):
            for _ in range(rng.integers(2, 4)):
                r, a = 0.28 * np.sqrt(u(0, 1)), u(0, 2 * np.pi)
                spots.append((i, (0.5 + r * np.cos(a)) * s, (0.5 + r * np.sin(a)) * s, u(0.12, 0.15) * s))
        return spots
    raise ValueError(f"unknown container {kind!r}")


@dataclass(frozen=True)
class Picture:
    """One stamp picture of an ingredient, shrunk for pasting, with its content hash and mean colour."""
    sha: str
    stamp: Stamp
    colour: tuple[float, float, float]  # mean RGB of its opaque pixels: the colour it gives a blended dish


def render_dish(dish: Dish, ingredients: list[str], pictures: dict[str, Picture], rng: np.random.Generator,
                size: int = 64, blended: bool = False, tries: int = 20) -> tuple[PILImage.Image, list[str]]:
    """Compose a dish picture -> (RGB image, the ingredients visible in it).

    `pictures` maps each ingredient to the picture chosen for this recipe. A blended dish fills
    its container with the mean colour of its ingredients, made a little more vivid.
    """
    mean = np.mean([pictures[n].colour for n in ingredients], axis=0)
    vivid = np.clip(mean.mean() + 1.5 * (mean - mean.mean()), 0, 255)
    liquid = tuple(int(c) for c in vivid) if blended else _shade(rng, (200, 150, 90), 30)
    for _ in range(tries):
        pieces = _container(dish.container, size, rng, liquid)
        spots = _layout(dish.container, len(ingredients), size, rng, blended)
        rng.shuffle(spots)  # later pieces lie on top
        under = [(Stamp("container", im), c, max(im.size)) for im, c, after in pieces if not after]
        over = [(Stamp("container", im), c, max(im.size)) for im, c, after in pieces if after]
        food = [(pictures[ingredients[i]].stamp, (x, y), max(4, round(side))) for i, x, y, side in spots]
        parts = under + food + over
        try:
            scene = compose_scene([p[0] for p in parts], rng, size=size, positions=[p[1] for p in parts],
                                  sizes=[p[2] for p in parts])
        except PlacementError:  # a piece ended up completely hidden: lay the dish out again
            continue
        shown = {ingredients[i] for i, *_ in spots}
        return scene.image, [n for n in ingredients if n in shown]
    raise PlacementError(f"could not lay out a {dish.name} with {ingredients} in {tries} tries")


# ---------------------------------------------------------------- the dataset

def ingredient_pictures(stamps: Dataset, size: int = 64) -> dict[str, list[Picture]]:
    """Each ingredient's distinct pictures, shrunk to `size` px.

    Tux Paint ships some pictures twice under different names; identical pixels count once.
    """
    rows = {r["id"]: r for r in stamps.select_columns(["id", "image", "image_sha"])}
    pictures = {}
    for ing in INGREDIENTS.values():
        found: dict[str, Picture] = {}
        for stamp_id in ing.stamps:
            row = rows.get(stamp_id)
            if row is None or row["image_sha"] in found:
                continue
            stamp = Stamp(ing.name, row["image"])
            stamp.image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
            pixels = np.asarray(stamp.image, dtype=np.float64)
            colour = pixels[pixels[..., 3] >= 128, :3].mean(axis=0)
            found[row["image_sha"]] = Picture(row["image_sha"], stamp, tuple(colour))
        if found:
            pictures[ing.name] = list(found.values())
    missing = [d.name for d in DISHES if sum(n in pictures for n in d.pool) < 6]
    if missing:
        raise ValueError(f"too few ingredient stamps for {missing}: is the Tux Paint stamps package complete?")
    return pictures


def make_recipe(i: int, pictures: dict[str, list[Picture]], seed: int = 0, size: int = 64) -> dict:
    """Recipe number i (a row of RECIPE_FEATURES); it depends only on (seed, i)."""
    rng = np.random.default_rng([seed, i])
    dish = DISHES[i % len(DISHES)]  # classes in turn: balanced
    pool = [n for n in dish.pool if n in pictures]
    chosen = [str(n) for n in rng.choice(pool, size=int(rng.integers(2, 7)), replace=False)]
    picks = {n: pictures[n][rng.integers(len(pictures[n]))] for n in chosen}
    blended = bool(rng.random() < dish.blended)
    steps, hidden = write_instructions(dish, chosen, rng)
    image, visible = render_dish(dish, chosen, picks, rng, size, blended)
    amounts = [int(rng.integers(1, 4)) for _ in chosen]
    return {
        "id": f"recipe-{i:05d}", "image": image, "dish": DISHES.index(dish),
        "ingredients": chosen + hidden,
        "ingredient_lines": [ingredient_line(n, a) for n, a in zip(chosen, amounts)] + hidden,
        "instructions": steps, "visible": visible,
        "picture_shas": [picks[n].sha for n in visible],
        "combo": f"{dish.name}|{'+'.join(sorted(chosen))}",
        "image_sha": content_hash(image.tobytes()),
    }


def build_recipes(n: int = 6000, seed: int = 0, size: int = 64) -> Dataset:
    from mmcourse.data.tuxpaint import load_stamps

    pictures = ingredient_pictures(load_stamps(), size)
    rows = [make_recipe(i, pictures, seed, size) for i in range(n)]
    return Dataset.from_list(rows, features=RECIPE_FEATURES)


RECIPE = (sys.modules[__name__], mmcourse.data.scenes, mmcourse.text)


def load_recipes(n: int = 6000, seed: int = 0, size: int = 64, rebuild: bool = False) -> Dataset:
    """`n` generated recipes (columns in RECIPE_FEATURES), built once and cached."""
    return cached_dataset(f"recipes-{n}-{seed}-{size}", lambda: build_recipes(n, seed, size),
                          RECIPE + (n, seed, size), rebuild)


# ---------------------------------------------------------------- splits

def test_only_pictures(ds: Dataset, seed: int, count: int = 4) -> set[str]:
    """`count` stamp pictures (hashes) that only test recipes may show, for notebook 02's split.

    Each comes from a different ingredient that has other pictures, so the ingredient itself is
    known from training but this picture of it is new.
    """
    pictures: dict[str, set[str]] = {}
    for names, shas in zip(ds["visible"], ds["picture_shas"]):
        for name, sha in zip(names, shas):
            pictures.setdefault(name, set()).add(sha)
    candidates = sorted(n for n, shas in pictures.items() if len(shas) >= 2)
    if len(candidates) < count:
        raise ValueError(f"only {len(candidates)} ingredients have two pictures or more; ask for count <= that")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=count, replace=False)
    return {str(rng.choice(sorted(pictures[n]))) for n in chosen}


def make_splits(ds: Dataset, seed: int, test_fraction: float = 0.25, val_fraction: float = 0.1,
                test_pictures: int = 4) -> DatasetDict:
    """Train / validation / test for notebook 02: test recipes are unseen combinations.

    Whole combinations (dish + ingredient set, the `combo` column) go to one side, so no test
    recipe repeats a training recipe's ingredients in another wording. On top of that,
    `test_pictures` stamp pictures (`test_only_pictures`) appear in test images only: training
    and validation recipes that would show them are dropped.
    """
    parts = split_by_group(ds, "combo", test_fraction, val_fraction, seed, link_columns=["image_sha"])
    held = test_only_pictures(ds, seed, test_pictures)
    for name in ("train", "validation"):
        parts[name] = parts[name].filter(lambda shas: not held & set(shas), input_columns="picture_shas")
    assert_disjoint(parts, ["id", "combo", "image_sha"])
    return parts
