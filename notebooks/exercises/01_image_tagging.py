"""Notebook 01's exercises as measured changes (`python -m mmcourse.exercises 01`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant, beyond_spread, within_spread

HELPERS = '''
def _on_validation(model, column, tag_vecs=None):
    return retrieval_table(tag_scores(model, X_val, tag_vecs), Y_val)[column]


def _csls(k_neighbours, top):
    scores = R.csls_scores(held_vecs, val_candidates, reference, k=k_neighbours)
    return R.recall_at_k(scores, Y_zs_val, top)
'''
COLUMNS = {"image->tag R@1": "img→tag R@1", "tag->image R@1": "tag→img R@1",
           "image->tag R@5": "img→tag R@5", "tag->image R@5": "tag→img R@5"}
MEASURES = {f"{model}: {name} (validation)": f"_on_validation({variable}, {column!r})"
            for model, variable in (("contrastive", "clip_model"), ("hinge", "hinge_model"))
            for name, column in COLUMNS.items()}
MEASURES |= {
    "learned temperature": "torch.exp(-clip_model.logit_scale).item()",
    "DeViSE: image->tag R@5 (validation, part A's tags)": "_on_validation(devise, 'img→tag R@5', sentence_vectors(vocab))",
}
MEASURES |= {f"zero-shot top-{k}, validation labels, {score}": f"on_val[{score!r}][{k}]"
             for score in ("cosine", "CSLS") for k in (1, 5)}
MEASURES |= {f"CSLS K={n}: zero-shot top-{k}, validation labels": f"_csls({n}, {k})"
             for n in (1, 3, 10, 30, 100) for k in (1, 5)}
IMAGES = "images with a validation label"   # one of them is 1 / IMAGES of a zero-shot score
MEASURES[IMAGES] = "Y_zs_val.any(1).sum().item()"


def clip(*names):
    return tuple(f"contrastive: {n} (validation)" for n in names)


def hinge(*names):
    return tuple(f"hinge: {n} (validation)" for n in names)


ZERO_SHOT = tuple(f"zero-shot top-{k}, validation labels, {score}" for score in ("cosine", "CSLS") for k in (1, 5))
EVALUATED = "def retrieval_table("               # part A's models are trained and scored there
ZERO_SHOT_DONE = "CHOSEN = max(on_val"
NEW_CLIP = "clip_model = T.JointEmbedding(len(vocab), dim=DIM, width=WIDTH)\n"

VARIANTS = [
    Variant(1, "temperature frozen at 0.07", (Change("notebook", NEW_CLIP,
            NEW_CLIP + "clip_model.logit_scale.requires_grad_(False)\n"),),
            clip("image->tag R@1", "tag->image R@1", "image->tag R@5", "tag->image R@5") + ("learned temperature",),
            EVALUATED),
    Variant(1, "temperature frozen at 1.0", (Change("notebook", NEW_CLIP,
            "clip_model = T.JointEmbedding(len(vocab), dim=DIM, width=WIDTH, temperature=1.0)\n"
            "clip_model.logit_scale.requires_grad_(False)\n"),),
            clip("image->tag R@1", "tag->image R@1", "image->tag R@5", "tag->image R@5"), EVALUATED),
    Variant(2, "image -> tag term only", (Change("mmcourse/matching/tagging.py",
            "return (info_nce(logits, positives) + info_nce(logits.T, positives.T)) / 2",
            "return info_nce(logits, positives)"),),
            clip("image->tag R@1", "tag->image R@1", "image->tag R@5", "tag->image R@5"), EVALUATED),
    Variant(3, "DeViSE on part A's tags", (
        Change("notebook", "devise = T.DeViSE(label_vecs, clip_model.image_encoder)",
               "devise = T.DeViSE(sentence_vectors(vocab), clip_model.image_encoder)"),
        Change("notebook", "train_model(devise, T.devise_step, DEVISE_EPOCHS, loader=devise_loader, val=devise_val)",
               "train_model(devise, T.devise_step, DEVISE_EPOCHS)")),
        ZERO_SHOT + ("DeViSE: image->tag R@5 (validation, part A's tags)",), ZERO_SHOT_DONE),
    Variant(4, "DeViSE with its CNN trained", (
        Change("notebook", "devise = T.DeViSE(label_vecs, clip_model.image_encoder)",
               "devise = T.DeViSE(label_vecs, clip_model.image_encoder, train_encoder=True)"),),
        ZERO_SHOT + ("DeViSE: image->tag R@5 (validation, part A's tags)",), ZERO_SHOT_DONE),
    Variant(5, "hardest negative only", (Change("mmcourse/matching/tagging.py",
            "return ((violation * pairs).sum(dim=(1, 2)) / positives.sum(dim=1)).mean()",
            "return ((violation * pairs).amax(dim=2).sum(dim=1) / positives.sum(dim=1)).mean()"),),
            hinge("image->tag R@1", "tag->image R@1", "image->tag R@5", "tag->image R@5"), EVALUATED),
]
UNCHANGED_SHOWS = {6: (IMAGES,) + tuple(f"CSLS K={n}: zero-shot top-{k}, validation labels"
                                       for n in (1, 3, 10, 30, 100) for k in (1, 5))}


I2T1, T2I1 = "image->tag R@1 (validation)", "tag->image R@1 (validation)"
CLAIMS = [
    within_spread("frozen at 0.07, image -> tag R@1 stays within the seeds' spread", 1, "temperature frozen at 0.07",
                  "contrastive: " + I2T1),
    within_spread("frozen at 0.07, tag -> image R@1 stays within the seeds' spread", 1, "temperature frozen at 0.07",
                  "contrastive: " + T2I1),
    beyond_spread("frozen at 1.0, tag -> image R@1 falls by more than the seeds differ", 1, "temperature frozen at 1.0",
                  "contrastive: " + T2I1, "<"),
    beyond_spread("frozen at 1.0, tag -> image R@5 falls by more than the seeds differ", 1, "temperature frozen at 1.0",
                  "contrastive: tag->image R@5 (validation)", "<"),
    beyond_spread("with the image -> tag term only, tag -> image R@1 falls by more than the seeds differ", 2,
                  "image -> tag term only", "contrastive: " + T2I1, "<"),
    within_spread("with the image -> tag term only, image -> tag R@1 stays within the seeds' spread", 2,
                  "image -> tag term only", "contrastive: " + I2T1),
    within_spread("on part A's tags, DeViSE trained on them alone stays within the seeds' spread (R@5)", 3,
                  "DeViSE on part A's tags", "DeViSE: image->tag R@5 (validation, part A's tags)"),
    within_spread("training DeViSE's CNN leaves its R@5 on part A's tags within the seeds' spread", 4,
                  "DeViSE with its CNN trained", "DeViSE: image->tag R@5 (validation, part A's tags)"),
    beyond_spread("with the hardest negative, the hinge model's tag -> image R@5 falls by more than the seeds differ", 5,
                  "hardest negative only", "hinge: tag->image R@5 (validation)", "<"),
    within_spread("with the hardest negative, image -> tag R@1 stays within the seeds' spread", 5,
                  "hardest negative only", "hinge: " + I2T1),
]
