"""Notebook 03's exercises as measured changes (`python -m mmcourse.exercises 03`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

# The exercises' own scoring code (section 9), under a name that does not hide the notebook's.
HELPERS = '''
val_features = features["validation"].to(rt.device)
val_references = [[c.split() for c in caps] for caps in val["captions"]]


_scored = {}


def _val_scores(model, width=None, feats=None):
    key = (id(model), width, feats is None)   # each decoding once: the measures share it
    if key not in _scored:
        _scored[key] = _score(model, width, val_features if feats is None else feats)
    return _scored[key]


def _score(model, width, feats):
    if width is None:
        caps, alphas = greedy(model, feats)
    else:
        found = C.beam_search(model, feats, width, MAX_LEN)
        caps, alphas = [C.decode_ids(vocab, ids) for ids, _, _ in found], [a for _, a, _ in found]
    out = {"BLEU-4": C.corpus_bleu([c.split() for c in caps], val_references),
           "noun precision": C.noun_scores(caps, val["nouns"], noun_forms)[0]}
    if alphas is not None and alphas[0] is not None:   # greedy Show and Tell has no attention
        checks = [hit for i, cap in enumerate(caps) for hit in
                  C.pointing(alphas[i].cpu(), cap.split(), GRID, SIZE, val[i]["boxes"], val[i]["nouns"], noun_forms)]
        out["pointing"] = np.mean([h for h, _ in checks])
        out["pointing chance"] = np.mean([c for _, c in checks])
    return out
'''
ST, SAT = "Show and Tell", "Show, Attend and Tell"
MODELS = {ST: "show_tell", SAT: "attend_tell"}
MEASURES = {f"{name}, width {w}: BLEU-4": f"_val_scores({var}, {w})['BLEU-4']"
            for name, var in MODELS.items() for w in (1, 3, 5)}
MEASURES |= {f"{name}, beam: {what}": f"_val_scores({var}, BEAM)[{what!r}]"
             for name, var in MODELS.items() for what in ("BLEU-4", "noun precision")}
MEASURES |= {f"{SAT}, beam: pointing": "_val_scores(attend_tell, BEAM)['pointing']",
             f"{SAT}, greedy: BLEU-4": "_val_scores(attend_tell)['BLEU-4']",
             f"{SAT}, greedy: pointing": "_val_scores(attend_tell)['pointing']",
             f"{SAT}, greedy: pointing chance": "_val_scores(attend_tell)['pointing chance']"}
MEASURES |= {f"{name} on blank features, greedy: BLEU-4":
             f"_val_scores({var}, feats=torch.zeros_like(val_features))['BLEU-4']" for name, var in MODELS.items()}
MEASURES |= {f"{name}, greedy: BLEU-4": f"_val_scores({var})['BLEU-4']" for name, var in MODELS.items()}
MEASURES |= {f"tagger {what} (validation)": f"tagger_table.loc['the tagger', {what!r}]"
             for what in ("mAP", "micro F1", "accuracy")}
MEASURES["no tag at all: accuracy (validation)"] = "tagger_table.loc['no tag at all', 'accuracy']"

TRAINED = "def greedy("          # both decoders are trained and `greedy` exists there
SAT_POINTING = (f"{SAT}, greedy: pointing", f"{SAT}, greedy: pointing chance", f"{SAT}, beam: BLEU-4",
                f"{SAT}, greedy: BLEU-4")
TAGGER = "tagger = C.SceneTagger(len(TAGS), width=WIDTH)"

VARIANTS = [
    Variant(2, "PENALTY = 1.0", (Change("notebook", "PENALTY = 0.01", "PENALTY = 1.0"),), SAT_POINTING, TRAINED),
    Variant(2, "PENALTY = 0", (Change("notebook", "PENALTY = 0.01", "PENALTY = 0.0"),), SAT_POINTING, TRAINED),
    Variant(3, "no gate", (Change("mmcourse/translating/captioning.py",
            "z = torch.sigmoid(self.gate(h)) * (alpha[:, :, None] * features).sum(dim=1)",
            "z = (alpha[:, :, None] * features).sum(dim=1)"),), SAT_POINTING, TRAINED),
    Variant(5, "depth=2, a 12x12 map", (
        Change("notebook", TAGGER, "tagger = C.SceneTagger(len(TAGS), width=WIDTH, depth=2)"),
        Change("notebook", "GRID = (SIZE // 8, SIZE // 8)", "GRID = (SIZE // 4, SIZE // 4)")),
        SAT_POINTING + (f"{SAT}, beam: noun precision",), TRAINED),
    Variant(6, "pool=\"mean\" tagger", (Change("notebook", TAGGER,
            "tagger = C.SceneTagger(len(TAGS), width=WIDTH, pool=\"mean\")"),),
            (f"{ST}, beam: BLEU-4", f"{ST}, beam: noun precision", f"{SAT}, beam: BLEU-4", f"{SAT}, beam: pointing"),
            TRAINED),
    Variant(7, "plain tagger loss", (Change("notebook",
            "tag_loss = functools.partial(C.tagger_step, pos_weight=C.balancing_pos_weight(tag_data[\"train\"][\"tags\"]))",
            "tag_loss = C.tagger_step"),),
            ("tagger mAP (validation)", "tagger micro F1 (validation)", "tagger accuracy (validation)",
             "no tag at all: accuracy (validation)", f"{SAT}, beam: BLEU-4", f"{SAT}, beam: noun precision",
             f"{ST}, beam: BLEU-4", f"{ST}, beam: noun precision"), TRAINED),
]
UNCHANGED_SHOWS = {
    1: tuple(f"{name}, width {w}: BLEU-4" for name in MODELS for w in (1, 3, 5)),
    4: tuple(f"{name} on blank features, greedy: BLEU-4" for name in MODELS)
       + tuple(f"{name}, greedy: BLEU-4" for name in MODELS),
}


def width(name, w):
    return f"unchanged: {name}, width {w}: BLEU-4"


POINTING, CHANCE = f"{SAT}, greedy: pointing", f"{SAT}, greedy: pointing chance"
BEAM_BLEU = f"{SAT}, beam: BLEU-4"
CLAIMS = [
    *(ExerciseClaim(f"{name}: width 3 beats greedy decoding (width 1) by more than the seeds differ", 1,
                    width(name, 3), ">", width(name, 1), margin=f"spread: {name}, width 1: BLEU-4") for name in MODELS),
    *(ExerciseClaim(f"{name}: width 5 is no better than width 3 (seed 0)", 1, width(name, 5), "<=", width(name, 3))
      for name in MODELS),
    ExerciseClaim("with the paper's penalty the nouns' attention peaks land in their boxes less often than chance", 2,
                  f"PENALTY = 1.0: {POINTING}", "<", f"PENALTY = 1.0: {CHANCE}"),
    within_spread("without the penalty pointing stays within the seeds' spread", 2, "PENALTY = 0", POINTING),
    within_spread("with the paper's penalty beam BLEU-4 stays within the seeds' spread", 2, "PENALTY = 1.0", BEAM_BLEU),
    within_spread("without the penalty beam BLEU-4 stays within the seeds' spread", 2, "PENALTY = 0", BEAM_BLEU),
    ExerciseClaim("on blank features Show and Tell's single caption shares no 4-gram with the references (seed 0)",
                  4, f"unchanged: {ST} on blank features, greedy: BLEU-4", "<=", 0.0),
    ExerciseClaim("on blank features Show, Attend and Tell's single caption stays within the seeds' spread of its "
                  "greedy BLEU-4 on the real images", 4, f"unchanged: {SAT} on blank features, greedy: BLEU-4",
                  "within", f"unchanged: {SAT}, greedy: BLEU-4", margin=f"spread: {SAT}, greedy: BLEU-4"),
    within_spread("without the gate pointing stays within the seeds' spread", 3, "no gate", POINTING),
    within_spread("without the gate beam BLEU-4 stays within the seeds' spread", 3, "no gate", BEAM_BLEU),
    within_spread("with a 12x12 map pointing stays within the seeds' spread", 5, "depth=2, a 12x12 map", POINTING),
    within_spread("with a 12x12 map beam BLEU-4 stays within the seeds' spread", 5, "depth=2, a 12x12 map", BEAM_BLEU),
    within_spread("with a 12x12 map noun precision stays within the seeds' spread", 5, "depth=2, a 12x12 map",
                  f"{SAT}, beam: noun precision"),
    within_spread("with a mean-pooled tagger Show and Tell's beam BLEU-4 stays within the seeds' spread", 6,
                  'pool="mean" tagger', f"{ST}, beam: BLEU-4"),
    within_spread("with a mean-pooled tagger Show and Tell's noun precision stays within the seeds' spread", 6,
                  'pool="mean" tagger', f"{ST}, beam: noun precision"),
    within_spread("with a mean-pooled tagger the attention's pointing stays within the seeds' spread", 6,
                  'pool="mean" tagger', f"{SAT}, beam: pointing"),
    within_spread("with the plain loss the tagger's mAP stays within the seeds' spread", 7, "plain tagger loss",
                  "tagger mAP (validation)"),
    ExerciseClaim("with the plain loss the tagger's micro F1 falls by more than the seeds differ", 7,
                  "plain tagger loss: tagger micro F1 (validation)", "<", "unchanged: tagger micro F1 (validation)",
                  margin="spread: tagger micro F1 (validation)"),
    ExerciseClaim("with the plain loss the tagger is as accurate as saying no tag at all, within 0.01", 7,
                  "plain tagger loss: tagger accuracy (validation)", "within",
                  "plain tagger loss: no tag at all: accuracy (validation)", margin=0.01),
    within_spread("with the plain loss Show, Attend and Tell's beam BLEU-4 stays within the seeds' spread", 7,
                  "plain tagger loss", BEAM_BLEU),
    within_spread("with the plain loss Show and Tell's beam BLEU-4 stays within the seeds' spread", 7,
                  "plain tagger loss", f"{ST}, beam: BLEU-4"),
]
