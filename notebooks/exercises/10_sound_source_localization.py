"""Notebook 10's exercises as measured changes (`python -m mmcourse.exercises 10`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

HELPERS = '''
_scored = {}


def _val(name):
    # score(...) of section 5 on the validation scenes, once per model
    if name not in _scored:
        _scored[name] = score(models[name], "validation")
    return _scored[name]


def _region_share(name):
    # the predicted region's share of the scene: the pixels at or above half the map's range
    return np.mean([(L.normalize_map(h) >= 0.5).mean() for h in _val(name)["maps"]])
'''
MODELS = ("supervised", "visual-only", "unsupervised")
MEASURES = {}
for model in MODELS:
    MEASURES |= {f"{model}: success rate (validation)": f"_val({model!r})['success']",
                 f"{model}: AUC (validation)": f"_val({model!r})['auc']",
                 f"{model}: peak on the sounding object (validation)": f"_val({model!r})['hits'].mean()",
                 f"{model}: peak on another object (validation)":
                     f"_val({model!r})['any object'].mean() - _val({model!r})['hits'].mean()",
                 f"{model}: peak on the background (validation)": f"1 - _val({model!r})['any object'].mean()",
                 f"{model}: region's share of the scene (validation)": f"_region_share({model!r})"}
MEASURES |= {
    "a random object is the sounding one (validation)": "L.random_object_odds(objects['validation']).mean()",
    "sounding object's share of a scene (validation)": "data['validation'][2].float().mean().item()",
    "the objects' share of a scene (validation)": "np.mean([m.any(0).mean() for m in objects['validation']])",
    "validation scenes with another object of the sounding kind":
        "np.mean([len([i for i in ids if kind[i] is not None and kind[i] == kind[ids[s.index(True)]]]) > 1 "
        "for ids, s in zip(clips['validation']['stamp_ids'], clips['validation']['sounding'])])",
}


def of(model, *what):
    return tuple(f"{model}: {w} (validation)" for w in what)


SCORED = "scores |= {name: score(model) for name, model in models.items()}"  # every model trained and scored
SUCCESS = ("success rate", "AUC")
PEAKS = ("peak on the sounding object", "peak on another object", "peak on the background")
UNSUPERVISED = 'models = {"unsupervised": train("unsupervised", labelled_share=0.0)}'

VARIANTS = [
    Variant(1, "top half of the pixels", (Change("mmcourse/referencing/localization.py",
            "    selected = normalize_map(heat) >= threshold", "    selected = heat >= np.median(heat)"),),
            of("supervised", *SUCCESS) + of("visual-only", *SUCCESS), SCORED),
    Variant(2, "other_kinds=False", (Change("notebook", "one_sounds=True, other_kinds=True,",
                                            "one_sounds=True, other_kinds=False,"),),
            of("supervised", *SUCCESS) + of("visual-only", *SUCCESS)
            + ("validation scenes with another object of the sounding kind",), SCORED),
    Variant(3, "temperature=0.03", (Change("notebook", 'models["supervised"] = train("supervised")',
                                           'models["supervised"] = train("supervised", temperature=0.03)'),),
            of("supervised", "region's share of the scene", *SUCCESS), SCORED),
    Variant(3, "temperature=0.3", (Change("notebook", 'models["supervised"] = train("supervised")',
                                          'models["supervised"] = train("supervised", temperature=0.3)'),),
            of("supervised", "region's share of the scene", *SUCCESS), SCORED),
    Variant(6, "narrow view, 16 epochs", (Change("notebook", UNSUPERVISED,
            'models = {"unsupervised": train("unsupervised", labelled_share=0.0, context=0, epochs=16)}'),),
            of("unsupervised", *PEAKS, "success rate", "region's share of the scene")
            + ("a random object is the sounding one (validation)", "sounding object's share of a scene (validation)"),
            SCORED),
]
UNCHANGED_SHOWS = {
    3: ("sounding object's share of a scene (validation)",),
    5: sum((of(m, *PEAKS) for m in MODELS), ()) + ("a random object is the sounding one (validation)",
                                                   "the objects' share of a scene (validation)"),
}


TOP_HALF, SAME_KIND, NARROW = "top half of the pixels", "other_kinds=False", "narrow view, 16 epochs"
RANDOM = "a random object is the sounding one (validation)"
SAME_KIND_SCENES = "validation scenes with another object of the sounding kind"
CLAIMS = [
    *(ExerciseClaim(f"with the top half no validation scene counts as localised by the {m} model (seed 0)", 1,
                    f"{TOP_HALF}: {m}: success rate (validation)", "<=", 0.0) for m in ("supervised", "visual-only")),
    *(beyond_spread(f"with the top half the {m} model's AUC falls by more than the seeds differ", 1, TOP_HALF,
                    f"{m}: AUC (validation)", "<") for m in ("supervised", "visual-only")),
    ExerciseClaim("with other_kinds=True no validation scene holds a second object of the sounding kind", 2,
                  f"unchanged: {SAME_KIND_SCENES}", "<=", 0.0),
    ExerciseClaim("with other_kinds=False more than a tenth of them do", 2, f"{SAME_KIND}: {SAME_KIND_SCENES}", ">", 0.1),
    *(within_spread(f"with other_kinds=False the {m} model's {w} stays within the seeds' spread", 2, SAME_KIND,
                    f"{m}: {w} (validation)") for m in ("supervised", "visual-only") for w in ("success rate", "AUC")),
    *(within_spread(f"with temperature {t} the supervised model's {w} stays within the seeds' spread", 3,
                    f"temperature={t}", f"supervised: {w} (validation)")
      for t in ("0.03", "0.3") for w in ("region's share of the scene", "success rate", "AUC")),
    *(ExerciseClaim(f"the {m} model's peaks land on an object more often than on the background (seed 0)", 5,
                    f"unchanged: {m}: peak on the background (validation)", "<", 0.5)
      for m in ("supervised", "visual-only")),
    ExerciseClaim("the objects cover less than a quarter of a scene (seed 0)", 5,
                  "unchanged: the objects' share of a scene (validation)", "<", 0.25),
    ExerciseClaim("the supervised model's peak is on the sounding object more often than a random one of the "
                  "scene's objects would be (seed 0)", 5, "unchanged: supervised: peak on the sounding object (validation)",
                  ">", f"unchanged: {RANDOM}"),
    ExerciseClaim("the visual-only map's peak is on the sounding object about as often as a random object would be: "
                  "within its seeds' spread", 5, "unchanged: visual-only: peak on the sounding object (validation)",
                  "within", f"unchanged: {RANDOM}", margin="spread: visual-only: peak on the sounding object (validation)"),
    ExerciseClaim("the unsupervised model's peaks are mostly on the background (seed 0)", 5,
                  "unchanged: unsupervised: peak on the background (validation)", ">", 0.5),
    ExerciseClaim("with the narrow view the unsupervised model's peak is on the sounding object more often, by more "
                  "than the seeds differ", 6, f"{NARROW}: unsupervised: peak on the sounding object (validation)", ">",
                  "unchanged: unsupervised: peak on the sounding object (validation)",
                  margin="spread: unsupervised: peak on the sounding object (validation)"),
    beyond_spread("with the narrow view fewer of its peaks are on the background, by more than the seeds differ", 6, NARROW,
                  "unsupervised: peak on the background (validation)", "<"),
    ExerciseClaim("with the narrow view it still localises no validation scene (seed 0)", 6,
                  f"{NARROW}: unsupervised: success rate (validation)", "<=", 0.0),
    ExerciseClaim("with the narrow view its regions are smaller than the sounding object on average (seed 0)", 6,
                  f"{NARROW}: unsupervised: region's share of the scene (validation)", "<",
                  f"{NARROW}: sounding object's share of a scene (validation)"),
]
