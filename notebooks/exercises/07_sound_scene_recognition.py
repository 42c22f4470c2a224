"""Notebook 07's exercises as measured changes (`python -m mmcourse.exercises 07`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

HELPERS = '''
def _stamp_agreement(head):
    # section 4's top-1 agreement with the teacher, on the validation clips
    k = {"family": 0, "category": 1}[head]
    return SN.top1_agreement(SN.predict(student, torch.from_numpy(arrays["validation"][1]))[k], targets["validation"][k])


def _letters(name, k=3):
    # section 6's probe on the letters of the validation voices, mean over the same episodes
    x = features[name]
    return np.mean([(SN.linear_probe(x["train"][rows], letter_labels["train"][rows], seed=rt.seed).predict(x["validation"])
                     == letter_labels["validation"]).mean()
                    for rows in SN.shots_per_class(letter_labels["train"], k, EPISODES, seed=rt.seed)])


def _digits_heard(name="validation"):
    heard, said = heard_digits(spoken[name])
    return (heard == said).mean()
'''
STAMPS = ("category agreement (validation clips)", "family agreement (validation clips)")
DIGITS = "student digit accuracy (validation voices)"
HUMAN = "student digit accuracy (human speakers)"
LETTERS = {name: f"letters, 3 per letter: {name} (validation voices)" for name in ("distilled", "random", "pooled MFCC")}
MEASURES = {
    STAMPS[0]: "_stamp_agreement('category')",
    STAMPS[1]: "_stamp_agreement('family')",
    DIGITS: "_digits_heard()",
    HUMAN: "digit_acc['human speakers']",
    **{measure: f"_letters({name!r})" for name, measure in LETTERS.items()},
}
AGREEMENT_CELL = "agreement = {}"       # section 4: the stamp measures need nothing after it
LETTERS_CELL = "few_shot = {name: {k: []"  # section 6: the last cell the AV measures need

VARIANTS = [
    Variant(1, "T = 1", (Change("notebook", "TEMPERATURE = 2.0 ", "TEMPERATURE = 1.0 "),),
            (DIGITS, HUMAN, LETTERS["distilled"]), LETTERS_CELL),
    Variant(1, "T = 5", (Change("notebook", "TEMPERATURE = 2.0 ", "TEMPERATURE = 5.0 "),),
            (DIGITS, HUMAN, LETTERS["distilled"]), LETTERS_CELL),
    *(Variant(2, f"layer={layer}", (
        Change("notebook", "SN.transfer_features(digit_student.encoder, w)", f"SN.transfer_features(digit_student.encoder, w, {layer})"),
        Change("notebook", "SN.transfer_features(random_digit_net.encoder, w)", f"SN.transfer_features(random_digit_net.encoder, w, {layer})")),
        (LETTERS["distilled"], LETTERS["random"]), LETTERS_CELL) for layer in (1, 2, 4)),
    Variant(3, "3000 clips, 20 epochs", (
        Change("notebook", "N_CLIPS = rt.profile.pick(cpu=800,", "N_CLIPS = rt.profile.pick(cpu=3000,"),
        Change("notebook", "STUDENT_EPOCHS = rt.profile.pick(cpu=8,", "STUDENT_EPOCHS = rt.profile.pick(cpu=20,")),
        STAMPS, AGREEMENT_CELL),
    Variant(4, "category head only", (Change("mmcourse/matching/soundnet.py",
            "    loss = kl_distillation(q_obj, p_obj) + kl_distillation(q_cat, p_cat)\n",
            "    loss = kl_distillation(q_cat, p_cat)\n"),), STAMPS, AGREEMENT_CELL),
    Variant(5, "log-mel student", (
        Change("mmcourse/matching/soundnet.py", "from mmcourse.encoders import ImageCNN, WaveformCNN",
               "from mmcourse.encoders import ImageCNN, SpectrogramCNN, WaveformCNN"),
        Change("mmcourse/matching/soundnet.py", "        self.encoder = WaveformCNN(width, layers)\n",
               "        self.encoder = SpectrogramCNN(8000, width=width)\n")),
        STAMPS, AGREEMENT_CELL),
]
UNCHANGED_SHOWS = {2: (LETTERS["pooled MFCC"],)}

CLAIMS = [
    within_spread("with T = 1 the student's digit accuracy on validation voices moves less than the seeds differ", 1,
                  "T = 1", DIGITS),
    beyond_spread("with T = 5 the student's digit accuracy on validation voices falls by more than the seeds differ", 1,
                  "T = 5", DIGITS, "<"),
    *(within_spread(f"with T = {t} the distilled letters move less than the seeds differ", 1, f"T = {t}", LETTERS["distilled"])
      for t in (1, 5)),
    *(ExerciseClaim(f"at layer={layer} the distilled features beat the random network's", 2,
                    f"layer={layer}: {LETTERS['distilled']}", ">", f"layer={layer}: {LETTERS['random']}")
      for layer in (1, 2, 4)),
    ExerciseClaim("the notebook's layer (3) beats layer 1 on the distilled letters", 2,
                  f"unchanged: {LETTERS['distilled']}", ">", f"layer=1: {LETTERS['distilled']}"),
    *(within_spread(f"layer={layer} is within the seeds' spread of the notebook's layer on the distilled letters", 2,
                    f"layer={layer}", LETTERS["distilled"]) for layer in (2, 4)),
    within_spread("3000 clips move the category agreement less than the seeds differ", 3,
                  "3000 clips, 20 epochs", STAMPS[0]),
    beyond_spread("without its family term the family agreement falls by more than the seeds differ", 4,
                  "category head only", STAMPS[1], "<"),
    within_spread("without its family term the category agreement moves less than the seeds differ", 4,
                  "category head only", STAMPS[0]),
    *(within_spread(f"the log-mel student's {what} moves less than the seeds differ", 5, "log-mel student", measure)
      for what, measure in zip(("category agreement", "family agreement"), STAMPS)),
]
