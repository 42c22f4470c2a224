"""Notebook 11's exercises as measured changes (`python -m mmcourse.exercises 11`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

# The exercises' own scoring (their text's `score(..., "validation")`), each method once per part.
HELPERS = '''
_scored = {}


def _still_faces(batch):
    # both speakers shown the first frame of their mouth, unmoving: no face to follow
    return av_model(batch["mixture"], batch["frames"][:, :, :1].expand_as(batch["frames"]))


def _val(method, part):
    if (method, part) not in _scored:
        separate = {"audio-visual": lambda: S.model_separator(av_model),
                    "audio-only (PIT)": lambda: S.model_separator(ao_model, pit=True),
                    "mouth-only mask": lambda: mouth_only(MOUTH_POWER),
                    "audio-visual, still faces": lambda: (av_model.eval(), _still_faces)[1]}[method]()
        _scored[method, part] = score(separate, part).mean()
    return _scored[method, part]
'''
PARTS = {"new voices": "validation_unseen", "seen voices": "validation"}
METHODS = ("audio-visual", "audio-only (PIT)", "mouth-only mask", "audio-visual, still faces")


def si_sdri(method, voices):
    return f"{method}: SI-SDRi ({voices}, validation)"


def lead(rival, voices):
    return f"audio-visual lead over {rival} ({voices}, validation)"


MEASURES = {si_sdri(m, v): f"_val({m!r}, {p!r})" for m in METHODS for v, p in PARTS.items()}
MEASURES |= {lead(r, v): f"_val('audio-visual', {p!r}) - _val({r!r}, {p!r})"
             for r in ("audio-only (PIT)", "mouth-only mask") for v, p in PARTS.items()}
MEASURES |= {"audio-visual: training seconds": "sum(av_history['seconds'])",
             "audio-only (PIT): training seconds": "sum(ao_history['seconds'])"}

TRAINED = "ao_model, ao_history = train(faces=False)"   # both networks trained: later cells are not needed
NEW, SEEN = "new voices", "seen voices"
BOTH = (si_sdri("audio-visual", NEW), si_sdri("audio-only (PIT)", NEW), si_sdri("audio-visual", SEEN),
        si_sdri("audio-only (PIT)", SEEN))
MOUTH = (si_sdri("mouth-only mask", NEW), si_sdri("audio-visual", NEW), lead("mouth-only mask", NEW),
         si_sdri("mouth-only mask", SEEN), lead("mouth-only mask", SEEN))
AV_TIME = "audio-visual: training seconds"


def setting(exercise, old, new, shows):
    return Variant(exercise, new, (Change("notebook", old, new),), shows, TRAINED)


VARIANTS = [
    setting(1, 'MASK = "complex"', 'MASK = "magnitude"', BOTH + (AV_TIME,)),
    setting(2, "POWER = 0.3 ", "POWER = 1.0 ", BOTH),
    setting(2, "POWER = 0.3 ", "POWER = 0.1 ", BOTH),
    setting(3, 'LOSS = "si-sdr"', 'LOSS = "spectrogram"', BOTH + (AV_TIME,)),
    setting(4, "N_SPEAKERS = 2 ", "N_SPEAKERS = 3 ", BOTH + MOUTH[:1] + (lead("audio-only (PIT)", NEW),
                                                                         lead("mouth-only mask", NEW))),
    Variant(5, "a perfect mouth", tuple(Change("mmcourse/data/mixtures.py", old, new) for old, new in (
        ("MAX_LAG = 2 ", "MAX_LAG = 0 "), ("JITTER = 0.4 ", "JITTER = 0.0 "), ("SMOOTH = 5 ", "SMOOTH = 1 "),
        ("NOISE = 0.25 ", "NOISE = 0.0 "))), MOUTH, TRAINED),
]
UNCHANGED_SHOWS = {
    6: (si_sdri("audio-visual, still faces", NEW), si_sdri("audio-visual", NEW), si_sdri("audio-only (PIT)", NEW),
        si_sdri("audio-visual, still faces", SEEN)),
}


AV, AO, MOUTH_ONLY, STILL = "audio-visual", "audio-only (PIT)", "mouth-only mask", "audio-visual, still faces"
MAGNITUDE, PLAIN, FLAT = 'MASK = "magnitude"', "POWER = 1.0 ", "POWER = 0.1 "
SPECTROGRAM, THREE, PERFECT = 'LOSS = "spectrogram"', "N_SPEAKERS = 3 ", "a perfect mouth"
CLAIMS = [
    *(within_spread(f"with a magnitude mask the {m} network stays within the seeds' spread on {v}", 1, MAGNITUDE,
                    si_sdri(m, v)) for m in (AV, AO) for v in (NEW, SEEN)),
    *(beyond_spread(f"with plain magnitude (p = 1) the {m} network does better on seen voices, by more than the seeds differ",
                    2, PLAIN, si_sdri(m, SEEN), ">") for m in (AV, AO)),
    *(within_spread(f"with plain magnitude the {m} network stays within the seeds' spread on new voices", 2, PLAIN,
                    si_sdri(m, NEW)) for m in (AV, AO)),
    *(beyond_spread(f"with p = 0.1 the {m} network does worse on seen voices, by more than the seeds differ", 2, FLAT,
                    si_sdri(m, SEEN), "<") for m in (AV, AO)),
    *(beyond_spread(f"with the compressed-spectrogram loss the {m} network scores lower on seen voices, by more than the "
                    "seeds differ", 3, SPECTROGRAM, si_sdri(m, SEEN), "<") for m in (AV, AO)),
    within_spread("with the compressed-spectrogram loss the audio-visual model stays within the seeds' spread on new voices",
                  3, SPECTROGRAM, si_sdri(AV, NEW)),
    beyond_spread("with three speakers the audio-visual model's lead over the audio-only network grows, by more than the "
                  "seeds differ", 4, THREE, lead(AO, NEW), ">"),
    ExerciseClaim("with three speakers the audio-visual model still beats the mouth-only mask on new voices", 4,
                  f"{THREE}: {lead(MOUTH_ONLY, NEW)}", ">", 0.0),
    beyond_spread("with a perfect mouth the mouth-only mask rises on new voices, by more than the seeds differ", 5,
                  PERFECT, si_sdri(MOUTH_ONLY, NEW), ">"),
    beyond_spread("with a perfect mouth the audio-visual model rises on new voices too, by more than the seeds differ", 5,
                  PERFECT, si_sdri(AV, NEW), ">"),
    beyond_spread("with a perfect mouth the model's lead over the mouth-only mask shrinks on new voices, by more than the "
                  "seeds differ", 5, PERFECT, lead(MOUTH_ONLY, NEW), "<"),
    *(ExerciseClaim(f"with still faces the audio-visual model scores below the mixture itself on {v} (seed 0)", 6,
                    f"unchanged: {si_sdri(STILL, v)}", "<", 0.0) for v in (NEW, SEEN)),
    ExerciseClaim("with still faces it falls below the audio-only network, by more than the seeds differ", 6,
                  f"unchanged: {si_sdri(STILL, NEW)}", "<", f"unchanged: {si_sdri(AO, NEW)}",
                  margin=f"spread: {si_sdri(AO, NEW)}"),
]
