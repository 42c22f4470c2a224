"""Notebook 04's exercises as measured changes (`python -m mmcourse.exercises 04`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

MODELS = ("GAN-INT-CLS", "plain conditional")
MEASURES = {f"{attribute} agreement, {model}, {part} pairs": f"agreement_table.loc[({model!r}, {part!r}), {attribute!r}]"
            for model in MODELS for part in ("seen", "held-out") for attribute in ("color", "shape", "both")}
MEASURES |= {f"diversity, {model}": f"diversity_table[{model!r}]" for model in MODELS}
MEASURES["diversity, real training images"] = "diversity_table['real training images']"


def agreement(model="GAN-INT-CLS", part="seen", attributes=("color", "shape", "both")):
    return tuple(f"{a} agreement, {model}, {part} pairs" for a in attributes)


DRAWN = "diversity_table.to_frame()"  # agreement and diversity are measured by then
SETTINGS = "BATCH, LR, MODE_SEEKING = 64, 1e-3, 0.1"

VARIANTS = [
    Variant(1, "raw sentence vectors", (Change("mmcourse/translating/text_to_image.py",
            "    return (vectors - mean) / std\n", "    return vectors\n"),),
            agreement() + agreement(part="held-out", attributes=("color",)), DRAWN),
    Variant(2, "MODE_SEEKING = 0.0", (Change("notebook", SETTINGS, "BATCH, LR, MODE_SEEKING = 64, 1e-3, 0.0"),),
            agreement() + ("diversity, GAN-INT-CLS", "diversity, real training images"), DRAWN),
    Variant(2, "MODE_SEEKING = 1.0", (Change("notebook", SETTINGS, "BATCH, LR, MODE_SEEKING = 64, 1e-3, 1.0"),),
            agreement() + ("diversity, GAN-INT-CLS", "diversity, real training images"), DRAWN),
    Variant(3, "text_norm=True", (Change("notebook", "generator = T.Generator(texts.shape[1], width=WIDTH, size=SIZE)",
                                         "generator = T.Generator(texts.shape[1], width=WIDTH, size=SIZE, text_norm=True)"),),
            agreement() + agreement(part="held-out"), DRAWN),
    Variant(4, "labels = caption_color", (Change("notebook", "labels = caption_color * len(SHAPES) + caption_shape",
                                                 "labels = caption_color"),),
            agreement(attributes=("color", "shape")) + agreement("plain conditional", attributes=("color",)), DRAWN),
    Variant(4, "labels = caption_shape", (Change("notebook", "labels = caption_color * len(SHAPES) + caption_shape",
                                                 "labels = caption_shape"),),
            agreement(attributes=("color", "shape")) + agreement("plain conditional", attributes=("color",)), DRAWN),
]
COLOUR, HELD_COLOUR = "color agreement, GAN-INT-CLS, seen pairs", "color agreement, GAN-INT-CLS, held-out pairs"
SHAPE, DIVERSITY = "shape agreement, GAN-INT-CLS, seen pairs", "diversity, GAN-INT-CLS"


CLAIMS = [
    beyond_spread("raw vectors lower colour agreement on seen pairs by more than the seeds differ", 1,
                  "raw sentence vectors", COLOUR, "<"),
    ExerciseClaim("on held-out pairs raw vectors draw the asked colour less often than chance (1/8)", 1,
                  "raw sentence vectors: " + HELD_COLOUR, "<", 1 / 8),
    beyond_spread("without mode seeking the samples of one caption lose their diversity", 2, "MODE_SEEKING = 0.0", DIVERSITY, "<"),
    beyond_spread("without mode seeking colour agreement falls by more than the seeds differ", 2, "MODE_SEEKING = 0.0", COLOUR, "<"),
    ExerciseClaim("with a weight of 1.0 the samples are more diverse than real images of one pair", 2,
                  "MODE_SEEKING = 1.0: " + DIVERSITY, ">", "unchanged: diversity, real training images"),
    beyond_spread("with a weight of 1.0 colour agreement falls by more than the seeds differ", 2, "MODE_SEEKING = 1.0", COLOUR, "<"),
    within_spread("conditioning every layer moves shape agreement on seen pairs by less than the seeds differ", 3,
                  "text_norm=True", SHAPE),
    within_spread("conditioning every layer moves colour agreement on seen pairs by less than the seeds differ", 3,
                  "text_norm=True", COLOUR),
    within_spread("wrong texts of another colour only move colour agreement by less than the seeds differ", 4,
                  "labels = caption_color", COLOUR),
    ExerciseClaim("wrong texts of another shape only lower colour agreement (seed 0)", 4,
                  "labels = caption_shape: " + COLOUR, "<", "unchanged: " + COLOUR),
    within_spread("wrong texts of another shape only move shape agreement by less than the seeds differ", 4,
                  "labels = caption_shape", SHAPE),
]
