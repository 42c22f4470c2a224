"""Notebook 05's exercises as measured changes (`python -m mmcourse.exercises 05`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

# Validation accuracy per question type, each model scored once per validation set.
HELPERS = '''
_scored = {}


def _val(model, which, column):
    # which: "easy-VQA" (its own validation questions), "balanced" or "scenes"; looked up only when
    # asked, as a run that stops early has not built the later ones
    key = (id(model), which)
    if key not in _scored:
        val = {"easy-VQA": lambda: data["validation"], "balanced": lambda: balanced["validation"],
               "scenes": lambda: scene_data["validation"]}[which]()
        _scored[key] = V.accuracy_per_type(V.predict(model, val).argmax(-1), val.answers, val.types)
    return _scored[key][column]


def _scene_prior(column):
    val = scene_data["validation"]
    guess = V.prior_predictions(V.answer_prior(scene_data["train"].answers, scene_data["train"].types), val.types)
    return V.accuracy_per_type(guess, val.answers, val.types)[column]
'''
FUSED, BLIND, CONCAT = "fused (product)", "question only", "fused (concat)"
MODEL = {FUSED: 'models["product"]', BLIND: 'models["question"]', CONCAT: 'models["concat"]'}
COLUMNS = ("all", "color", "shape", "yes/no")


def acc(name, which, column):
    return f"{name}: {column} accuracy ({which} validation)"


MEASURES = {acc(n, w, c): f"_val({m}, {w!r}, {c!r})" for n, m in MODEL.items()
            for w in ("easy-VQA", "balanced") for c in COLUMNS}
MEASURES |= {acc(f"{n}, biased training", "balanced", c): f"_val(biased[{k!r}], 'balanced', {c!r})"
             for n, k in ((FUSED, "product"), (BLIND, "question")) for c in COLUMNS}
MEASURES |= {acc(f"scenes {n}", "scenes", c): f"_val(scene_models[{k!r}], 'scenes', {c!r})"
             for n, k in ((FUSED, "product"), (BLIND, "question")) for c in ("all", "count")}
MEASURES |= {acc("scenes answer prior", "scenes", c): f"_scene_prior({c!r})" for c in ("all", "count")}

EASY_TRAINED = 'models[fusion], _ = train(fusion, data["train"], data["validation"], vocab, ANSWERS)'
BALANCED_TRAINED = 'models_balanced = {"product": train("product", balanced["train"], balanced["validation"], vocab, ANSWERS)[0]}'
SCENES_TRAINED = ('    scene_models[fusion], _ = train(fusion, scene_data["train"], scene_data["validation"], '
                  'scene_vocab, SCENE_ANSWERS)')
BIASED = BALANCED_TRAINED + '''
rows = V.biased_rows(data["train"].questions, data["train"].answers,
                     V.dominant_answers(data["train"].questions, data["train"].answers, rt.seed), share=0.9, seed=rt.seed)
biased = {fusion: train(fusion, V.subset(data["train"], rows), data["validation"], vocab, ANSWERS)[0]
          for fusion in ("product", "question")}'''


def per_type(name, which, columns=COLUMNS):
    return tuple(acc(name, which, c) for c in columns)


VARIANTS = [
    Variant(1, "share=0.9", (Change("notebook", BALANCED_TRAINED, BIASED),),
            per_type(f"{FUSED}, biased training", "balanced") + per_type(f"{BLIND}, biased training", "balanced")
            + per_type(FUSED, "balanced") + per_type(BLIND, "balanced"), "biased = {fusion: train("),
    Variant(2, "raw vectors", (Change("mmcourse/referencing/vqa.py",
            "unit = F.normalize(vectors, dim=-1) * vectors.shape[-1] ** 0.5", "unit = vectors"),),
            per_type(FUSED, "easy-VQA"), 'models["product"], history = train("product", data["train"]'),
    Variant(3, "a linear classifier", (Change("mmcourse/referencing/vqa.py",
            "self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused, dim), nn.ReLU(),\n"
            "                                        nn.Linear(dim, num_answers))",
            "self.classifier = nn.Linear(fused, num_answers)"),),
            per_type(FUSED, "easy-VQA") + per_type(CONCAT, "easy-VQA") + per_type(BLIND, "easy-VQA", ("yes/no",)),
            EASY_TRAINED),
    Variant(4, "sum pooling, EPOCHS doubled", (
        Change("mmcourse/referencing/vqa.py", "encoder.pooled(chunk.to(device).float() / 255.0)",
               "encoder.feature_map(chunk.to(device).float() / 255.0).sum(dim=(2, 3))"),
        Change("notebook", "EPOCHS = rt.profile.pick(cpu=20, gpu=60)", "EPOCHS = rt.profile.pick(cpu=40, gpu=120)")),
        per_type(f"scenes {FUSED}", "scenes", ("all", "count")) + per_type("scenes answer prior", "scenes", ("all", "count")),
        SCENES_TRAINED),
]
UNCHANGED_SHOWS = {}

BIASED_RUN, RAW, LINEAR, SUM = "share=0.9", "raw vectors", "a linear classifier", "sum pooling, EPOCHS doubled"
SCENE_FUSED, SCENE_PRIOR = f"scenes {FUSED}", "scenes answer prior"
CLAIMS = [
    ExerciseClaim("trained on the biased rows, the fused model scores higher on the balanced validation questions "
                  "than trained on easy-VQA's own, by more than the seeds differ", 1,
                  f"{BIASED_RUN}: {acc(f'{FUSED}, biased training', 'balanced', 'all')}", ">",
                  f"unchanged: {acc(FUSED, 'balanced', 'all')}", margin=f"spread: {acc(FUSED, 'balanced', 'all')}"),
    ExerciseClaim("trained on the biased rows, it answers colour questions a little less well, by more than the "
                  "seeds differ", 1, f"{BIASED_RUN}: {acc(f'{FUSED}, biased training', 'balanced', 'color')}", "<",
                  f"unchanged: {acc(FUSED, 'balanced', 'color')}", margin=f"spread: {acc(FUSED, 'balanced', 'color')}"),
    ExerciseClaim("the blind model trained on the biased rows is at a coin toss on balanced yes/no questions "
                  "(within 0.05)", 1, f"{BIASED_RUN}: {acc(f'{BLIND}, biased training', 'balanced', 'yes/no')}",
                  "within", 0.5, margin=0.05),
    within_spread("with raw vectors the overall accuracy stays within the seeds' spread", 2, RAW,
                  acc(FUSED, "easy-VQA", "all")),
    *(within_spread(f"with raw vectors the {c} column stays within the seeds' spread", 2, RAW, acc(FUSED, "easy-VQA", c))
      for c in ("color", "shape")),
    beyond_spread("with raw vectors the yes/no column rises, by more than the seeds differ", 2, RAW,
                  acc(FUSED, "easy-VQA", "yes/no"), ">"),
    ExerciseClaim("with a linear classifier, concatenation answers yes/no questions as the blind model does "
                  "(within 0.01)", 3, f"{LINEAR}: {acc(CONCAT, 'easy-VQA', 'yes/no')}", "within",
                  f"{LINEAR}: {acc(BLIND, 'easy-VQA', 'yes/no')}", margin=0.01),
    ExerciseClaim("with a linear classifier, concatenation still answers colour questions (above 0.95)", 3,
                  f"{LINEAR}: {acc(CONCAT, 'easy-VQA', 'color')}", ">", 0.95),
    within_spread("with a linear classifier, the product's yes/no column stays within the seeds' spread", 3, LINEAR,
                  acc(FUSED, "easy-VQA", "yes/no")),
    within_spread("with sum pooling and twice the epochs the count column stays within the seeds' spread", 4, SUM,
                  acc(SCENE_FUSED, "scenes", "count")),
    ExerciseClaim("with sum pooling and twice the epochs the count column stays at the answer prior's (within 0.02)", 4, f"{SUM}: {acc(SCENE_FUSED, 'scenes', 'count')}",
                  "within", f"{SUM}: {acc(SCENE_PRIOR, 'scenes', 'count')}", margin=0.02),
    beyond_spread("with sum pooling and twice the epochs the scenes' overall accuracy rises, by more than the seeds differ", 4, SUM,
                  acc(SCENE_FUSED, "scenes", "all"), ">"),
]
