"""Notebook 02's exercises as measured changes (`python -m mmcourse.exercises 02`; see mmcourse/exercises.py)."""
from mmcourse.exercises import Change, ExerciseClaim, Variant

WITHIN, R10, MEDR = "within-class medR (validation)", "R@10 (validation)", "medR (validation)"
MEASURES = {
    WITHIN: "history[-1]['val_within-class medR']",
    R10: "history[-1]['val_R@10']",
    MEDR: "history[-1]['val_medR']",
    "no sem. reg.: within-class medR (validation)": "plain_history[-1]['val_within-class medR']",
    "no sem. reg.: R@10 (validation)": "plain_history[-1]['val_R@10']",
    "class oracle: within-class medR (validation)": "val_oracle",
    "CCA: medR (validation)": "val_medr[CCA_COMPONENTS]",
}
RANKS = (WITHIN, R10)
TRAINED = "val_oracle = RC.class_oracle_subsets"  # the cell after both trainings


def setting(old: str, new: str) -> Change:
    return Change("notebook", old, new)


VARIANTS = [
    Variant(1, "SEMANTIC_WEIGHT = 0.02", (setting("SEMANTIC_WEIGHT = 0.1 ", "SEMANTIC_WEIGHT = 0.02"),),
            RANKS + ("no sem. reg.: within-class medR (validation)", "no sem. reg.: R@10 (validation)"), TRAINED),
    Variant(1, "SEMANTIC_WEIGHT = 0.3", (setting("SEMANTIC_WEIGHT = 0.1 ", "SEMANTIC_WEIGHT = 0.3"),), RANKS, TRAINED),
    Variant(2, "negative_share=0.2", (setting(
        "step = functools.partial(RC.im2recipe_step, semantic_weight=semantic_weight)",
        "step = functools.partial(RC.im2recipe_step, semantic_weight=semantic_weight, negative_share=0.2)"),),
        RANKS + ("class oracle: within-class medR (validation)",), TRAINED),
    Variant(3, "mean of the step vectors", (Change(
        "mmcourse/matching/recipes.py",
        "        states, _ = self.steps(sentence.view(b, s, -1))                     # [B, S, H]\n"
        "        if n_steps is None:\n"
        "            return states[:, -1]\n"
        "        # A forward LSTM's state after the last real step ignores the padding steps after it.\n"
        "        last = (n_steps - 1).clamp(min=0).to(states.device)\n"
        "        return states[torch.arange(b, device=states.device), last]\n",
        "        mask = (torch.arange(s, device=steps.device)[None] < n_steps[:, None]).unsqueeze(-1)\n"
        "        return (sentence.view(b, s, -1) * mask).sum(1) / mask.sum(1)\n"),), RANKS, TRAINED),
    Variant(4, "ingredients only", (Change(
        "mmcourse/matching/recipes.py",
        "        ins = self.encode_instructions(steps, n_steps, n_words)              # [B, H]\n",
        "        ins = self.encode_instructions(steps, n_steps, n_words)              # [B, H]\n"
        "        ins = torch.zeros_like(ins)\n"),), RANKS, TRAINED),
    Variant(5, "SIZE = 64", (setting("SIZE = rt.profile.pick(cpu=32, gpu=64)", "SIZE = 64"),),
            RANKS, TRAINED),
    Variant(5, "BATCH = 128", (setting("BATCH = rt.profile.pick(cpu=32, gpu=128)", "BATCH = 128"),),
            RANKS, TRAINED),
    Variant(5, "EPOCHS = 5", (setting("EPOCHS = rt.profile.pick(cpu=10, gpu=40)", "EPOCHS = 5"),),
            RANKS, TRAINED),
    Variant(6, "spatial colour histograms, 64 SVD dimensions", (
        setting('colour_features = {name: RC.colour_histogram(t["image"], bins=3).numpy()\n',
                'h = SIZE // 2\n'
                'colour_features = {name: torch.cat([RC.colour_histogram(t["image"][..., i:i + h, j:j + h], bins=3) '
                'for i in (0, h) for j in (0, h)], dim=1).numpy()\n'),
        setting("svd = TruncatedSVD(32, random_state=rt.seed)", "svd = TruncatedSVD(64, random_state=rt.seed)")),
        ("CCA: medR (validation)", MEDR), "CCA_COMPONENTS = min(val_medr"),
]
ORACLE = "class oracle: within-class medR (validation)"
SPREAD_WITHIN, SPREAD_R10 = "spread: " + WITHIN, "spread: " + R10


def rank(variant):
    return f"{variant}: {WITHIN}"


def recall(variant):
    return f"{variant}: {R10}"


CLAIMS = [
    ExerciseClaim("0.1 ranks within the dish better than 0.02, by more than the seeds differ", 1,
                  rank("unchanged"), "<", rank("SEMANTIC_WEIGHT = 0.02"), margin=SPREAD_WITHIN),
    ExerciseClaim("0.1 ranks within the dish better than 0.3, by more than the seeds differ", 1,
                  rank("unchanged"), "<", rank("SEMANTIC_WEIGHT = 0.3"), margin=SPREAD_WITHIN),
    ExerciseClaim("with 20% mismatched pairs the rank within the dish is worse, by more than the seeds differ", 2,
                  rank("negative_share=0.2"), ">", rank("unchanged"), margin=SPREAD_WITHIN),
    ExerciseClaim("with 20% mismatched pairs the rank within the dish comes within 2 of the class oracle's", 2,
                  rank("negative_share=0.2"), ">", "unchanged: " + ORACLE, margin=-2),
    ExerciseClaim("the mean of the steps moves the rank within the dish by less than the seeds differ", 3,
                  rank("mean of the step vectors"), "within", rank("unchanged"), margin=SPREAD_WITHIN),
    ExerciseClaim("the mean of the steps lowers R@10 by more than the seeds differ", 3,
                  recall("mean of the step vectors"), "<", recall("unchanged"), margin=SPREAD_R10),
    ExerciseClaim("without instructions the rank within the dish moves by less than the seeds differ", 4,
                  rank("ingredients only"), "within", rank("unchanged"), margin=SPREAD_WITHIN),
    ExerciseClaim("without instructions R@10 moves by less than the seeds differ", 4,
                  recall("ingredients only"), "within", recall("unchanged"), margin=SPREAD_R10),
    ExerciseClaim("batches of 128 (a quarter of the steps) rank within the dish worse, by more than the seeds differ", 5,
                  rank("BATCH = 128"), ">", rank("unchanged"), margin=SPREAD_WITHIN),
    ExerciseClaim("64-pixel images move the rank within the dish by less than the seeds differ", 5,
                  rank("SIZE = 64"), "within", rank("unchanged"), margin=SPREAD_WITHIN),
    ExerciseClaim("the better-fed CCA's median rank falls by more than another seed moves CCA's", 6,
                  "spatial colour histograms, 64 SVD dimensions: CCA: medR (validation)", "<",
                  "unchanged: CCA: medR (validation)", margin="spread: CCA: medR (validation)"),
    ExerciseClaim("the better-fed CCA still ranks behind the model", 6,
                  "spatial colour histograms, 64 SVD dimensions: CCA: medR (validation)", ">",
                  "unchanged: " + MEDR),
]
