"""Notebook 02's helpers: median rank, recipe tensors, the im2recipe model and loss, CCA."""
import functools
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cross_decomposition import CCA

from mmcourse.matching import recipes as RC
from mmcourse.retrieval import median_rank
from mmcourse.text import Vocab
from mmcourse.training import TensorRows, fit, make_loader

INGREDIENTS = [["carrot", "olive oil", "salt"], ["banana", "yogurt"], ["tomato", "olive oil"]]
STEPS = [["Chop the carrots.", "Fry them in olive oil.", "Add salt."], ["Blend the bananas with yogurt."],
         ["Slice the tomatoes.", "Drizzle with olive oil."]]


@pytest.fixture(scope="module")
def vocabs():
    return RC.ingredient_vocab(INGREDIENTS), Vocab.build([s for steps in STEPS for s in steps])


def _batch(vocabs, size=16):
    tensors = RC.encode_recipes(INGREDIENTS, STEPS, *vocabs, max_steps=4, max_words=8)
    tensors["image"] = torch.rand(3, 3, size, size)
    tensors["label"] = torch.tensor([0, 1, 2])
    return tensors


# ---------------------------------------------------------------- median rank

def test_median_rank_on_hand_checked_rankings():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3],    # positive 0 is first: rank 1
                           [0.9, 0.1, 0.5, 0.3],    # positive 1 is last: rank 4
                           [0.2, 0.8, 0.6, 0.7],    # positive 2 below 0.8 and 0.7: rank 3
                           [0.5, 0.5, 0.5, 0.5]])   # a tie counts against the query: rank 4
    relevant = torch.eye(4, dtype=torch.bool)
    assert median_rank(scores, relevant) == 3.5     # ranks 1, 4, 3, 4: median (3 + 4) / 2
    assert median_rank(scores[:3], relevant[:3]) == 3.0
    # Several positives: the best-placed one counts (row 2: item 1 at rank 1).
    relevant[2, 1] = True
    assert median_rank(scores[2:3], relevant[2:3]) == 1.0


def test_median_rank_agrees_with_a_sort_and_is_about_half_n_by_chance():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(501, 501, generator=g)
    relevant = torch.eye(501, dtype=torch.bool)
    order = scores.argsort(dim=1, descending=True)
    ranks = (order == torch.arange(501)[:, None]).float().argmax(dim=1) + 1
    assert median_rank(scores, relevant) == float(np.median(ranks.numpy()))
    assert abs(median_rank(scores, relevant) - 251) < 40


def test_median_rank_needs_matching_shapes():
    with pytest.raises(ValueError, match="scores and relevant"):
        median_rank(torch.rand(3, 4), torch.eye(3, dtype=torch.bool))


# ---------------------------------------------------------------- the protocol

def test_retrieval_subsets_perfect_random_and_bad_n():
    g = torch.Generator().manual_seed(0)
    vecs = torch.randn(300, 16, generator=g)
    perfect = RC.retrieval_subsets(vecs, vecs, n=100, repeats=3)
    assert set(perfect) == {f"{d} {m}" for d in ("im2rec", "rec2im") for m in ("medR", "R@1", "R@5", "R@10")}
    assert all(len(v) == 3 for v in perfect.values())
    assert perfect["im2rec medR"].tolist() == [1.0, 1.0, 1.0] and perfect["rec2im R@1"].min() == 1.0
    noise = RC.retrieval_subsets(vecs, torch.randn(300, 16, generator=g), n=100, repeats=5)
    assert 30 < noise["im2rec medR"].mean() < 70 and noise["im2rec R@10"].mean() < 0.25
    with pytest.raises(ValueError, match="n=400"):
        RC.retrieval_subsets(vecs, vecs, n=400)


def test_within_class_ranks_only_among_the_querys_class():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3],
                           [0.2, 0.8, 0.9, 0.1],
                           [0.7, 0.4, 0.5, 0.9],
                           [0.4, 0.3, 0.2, 0.1]])
    labels = torch.tensor([0, 0, 1, 1])
    masked = RC.within_class(scores, labels, labels)
    assert torch.isinf(masked[0, 2:]).all() and masked[0, :2].tolist() == pytest.approx([0.1, 0.9])
    # Overall ranks 4, 2, 3, 4 (median 3.5); among the own class 2, 1, 2, 2 (median 2).
    found = RC.ranking_metrics(scores, ks=(1,), labels=labels)
    assert found["medR"] == 3.5 and found["within-class medR"] == 2.0
    assert set(RC.ranking_metrics(scores, ks=(1, 5))) == {"medR", "R@1", "R@5"}


def test_retrieval_subsets_with_labels_add_a_within_class_rank_never_above_the_rank():
    g = torch.Generator().manual_seed(0)
    vecs, labels = torch.randn(300, 16, generator=g), torch.arange(300) % 4
    found = RC.retrieval_subsets(vecs, torch.randn(300, 16, generator=g), n=100, repeats=4, labels=labels)
    for d in ("im2rec", "rec2im"):
        assert (found[f"{d} within-class medR"] <= found[f"{d} medR"]).all()
        assert 6 < found[f"{d} within-class medR"].mean() < 20  # random within classes of about 25
    one_class = RC.retrieval_subsets(vecs, vecs + 0.5 * torch.randn(300, 16, generator=g), n=100, repeats=2,
                                     labels=torch.zeros(300))
    assert np.array_equal(one_class["im2rec within-class medR"], one_class["im2rec medR"])


def test_every_protocol_reads_the_same_subsets():
    picks = RC.subset_picks(50, n=20, repeats=3, seed=4)
    assert len(picks) == 3 and all(len(set(p.tolist())) == 20 and p.max() < 50 for p in picks)
    assert all(torch.equal(a, b) for a, b in zip(picks, RC.subset_picks(50, n=20, repeats=3, seed=4)))
    with pytest.raises(ValueError, match="n=60"):
        RC.subset_picks(50, n=60)


def _brute_force_oracle(labels: list[int], k: int) -> tuple[float, float]:
    """Exact expected medR and R@k of the class oracle: every joint draw of the queries' ranks."""
    sizes = [labels.count(c) for c in labels]
    medians, recalls = [], []
    for ranks in itertools.product(*[range(1, s + 1) for s in sizes]):  # each equally likely
        medians.append(float(np.median(ranks)))
        recalls.append(np.mean([r <= k for r in ranks]))
    return float(np.mean(medians)), float(np.mean(recalls))


def test_class_oracle_matches_a_brute_force_expectation_on_a_tiny_case():
    labels = [0, 0, 0, 1, 1, 2]
    exact_medr, exact_r2 = _brute_force_oracle(labels, k=2)
    simulated = RC.class_oracle_subsets(labels, n=6, repeats=1, ks=(2,), draws=20000)
    assert simulated["im2rec medR"][0] == pytest.approx(exact_medr, abs=0.05)
    assert simulated["rec2im R@2"][0] == pytest.approx(exact_r2, abs=0.02)
    assert RC.class_oracle_recall(labels, 2) == pytest.approx(exact_r2)  # (2/3 * 3 + 1 * 3) / 6
    assert np.array_equal(simulated["im2rec within-class medR"], simulated["im2rec medR"])


def test_class_oracle_under_the_subset_protocol():
    labels = torch.arange(400) % 8                                   # eight classes of 50
    found = RC.class_oracle_subsets(labels, n=200, repeats=3, seed=1, draws=5)
    assert set(found) == set(RC.retrieval_subsets(torch.eye(400), torch.eye(400), n=200, repeats=3,
                                                  labels=labels))
    # About 25 of each class per subset: R@10 near 10/25 and the median rank near 13.
    assert found["im2rec R@10"].mean() == pytest.approx(0.4, abs=0.04)
    assert 11 < found["rec2im medR"].mean() < 15
    ranks = RC.class_oracle_ranks(labels[:16].numpy(), draws=200, rng=np.random.default_rng(0))
    assert ranks.shape == (200, 16) and ranks.min() == 1 and ranks.max() == 2  # two of each class


def test_class_oracle_ranks_are_what_a_within_class_shuffle_gives():
    # Rank the gallery by "same class first, then a random order", with median_rank's own rule.
    labels = [0, 1, 1, 2, 2, 2, 0, 1]
    exact, _ = _brute_force_oracle(labels, k=1)
    g, t = torch.Generator().manual_seed(0), torch.tensor(labels)
    same = (t[:, None] == t[None, :]).double()
    shuffled = [median_rank(same + torch.rand(8, 8, generator=g, dtype=torch.float64), torch.eye(8, dtype=torch.bool))
                for _ in range(300)]
    assert np.mean(shuffled) == pytest.approx(exact, abs=0.15)    # about 4 standard errors
    sampled = np.median(RC.class_oracle_ranks(np.array(labels), 20000, np.random.default_rng(0)), axis=1)
    assert sampled.mean() == pytest.approx(exact, abs=0.03)


# ---------------------------------------------------------------- tensors

def test_ingredient_names_are_single_tokens(vocabs):
    ingredients, words = vocabs
    assert "olive oil" in ingredients and "olive" not in ingredients
    assert "olive" in words


def test_encode_recipes_pads_steps_and_counts_them(vocabs):
    t = RC.encode_recipes(INGREDIENTS, STEPS, *vocabs, max_steps=4, max_words=8)
    assert t["ingredients"].shape == (3, 3) and t["n_ingredients"].tolist() == [3, 2, 2]
    assert t["steps"].shape == (3, 4, 8)
    assert t["n_steps"].tolist() == [3, 1, 2]
    assert t["n_words"][0].tolist() == [4, 6, 3, 0]  # "chop the carrots ." ...; a padding step has 0
    assert t["steps"][1, 1:].eq(0).all()
    with pytest.raises(ValueError, match="no instructions"):
        RC.encode_recipes([["salt"]], [[]], *vocabs)
    with pytest.raises(ValueError, match="ingredient lists"):
        RC.encode_recipes(INGREDIENTS, STEPS[:2], *vocabs)


# ---------------------------------------------------------------- model

def test_padding_steps_do_not_change_the_recipe_vector(vocabs):
    torch.manual_seed(0)
    encoder = RC.RecipeEncoder(len(vocabs[0]), len(vocabs[1]), dim=8, hidden=12, embed=6).eval()
    t = _batch(vocabs)
    args = (t["ingredients"], t["steps"], t["n_ingredients"], t["n_steps"], t["n_words"])
    before = encoder(*args)
    steps = t["steps"].clone()
    steps[1, 1:] = 5  # junk in recipe 1's padding steps (it has one real step)
    after = encoder(t["ingredients"], steps, t["n_ingredients"], t["n_steps"], t["n_words"])
    assert torch.allclose(before, after, atol=1e-6)
    assert before.shape == (3, 8)
    with pytest.raises(ValueError, match="steps must be word ids"):
        encoder.encode_instructions(t["steps"][0])


def test_model_gives_unit_vectors_and_shared_logits(vocabs):
    torch.manual_seed(0)
    model = RC.Im2Recipe(len(vocabs[0]), len(vocabs[1]), n_classes=3, dim=8, width=4, hidden=12, embed=6)
    out = model(_batch(vocabs))
    assert out["image"].shape == out["recipe"].shape == (3, 8)
    assert torch.allclose(out["image"].norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out["recipe"].norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out["image_logits"], model.classifier(out["image"]))   # one classifier, both sides
    assert torch.allclose(out["recipe_logits"], model.classifier(out["recipe"]))


def test_model_and_loss_stay_on_the_input_device(vocabs):
    # The meta device stands in for a GPU. Packed sequences need real lengths, so this batch has
    # none (every position counts), as TextEncoder allows.
    model = RC.Im2Recipe(len(vocabs[0]), len(vocabs[1]), n_classes=3, dim=8, width=4, hidden=12, embed=6).to("meta")
    t = _batch(vocabs)
    batch = {k: t[k].to("meta") for k in ("image", "ingredients", "steps", "label")}
    out = model(batch)
    assert all(v.device.type == "meta" for v in out.values())
    loss, logs = RC.im2recipe_loss(out, batch["label"], semantic_weight=0.1)
    assert loss.device.type == "meta" and all(v.device.type == "meta" for v in logs.values())
    hist = RC.colour_histogram(torch.rand(2, 3, 8, 8).to("meta"))
    assert hist.device.type == "meta"


# ---------------------------------------------------------------- loss

def test_sample_pairs_has_the_asked_share_of_mismatches_and_no_false_ones():
    torch.manual_seed(0)
    i, j, y = RC.sample_pairs(50, negative_share=0.8)
    assert len(y) == 250 and (y == -1).float().mean().item() == pytest.approx(0.8)
    assert torch.equal(i[y == 1], j[y == 1]) and torch.equal(i[y == 1], torch.arange(50))
    assert (i[y == -1] != j[y == -1]).all()
    assert len(RC.sample_pairs(10, negative_share=0.0)[2]) == 10
    with pytest.raises(ValueError, match="negative_share"):
        RC.sample_pairs(10, negative_share=1.0)


def test_loss_is_the_cosine_embedding_loss_plus_the_weighted_classification():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(6, 4), dim=1)
    recipe = F.normalize(torch.randn(6, 4), dim=1)
    logits_i, logits_r = torch.randn(6, 3), torch.randn(6, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = {"image": image, "recipe": recipe, "image_logits": logits_i, "recipe_logits": logits_r}
    torch.manual_seed(1)
    loss0, logs = RC.im2recipe_loss(out, labels, margin=0.1)
    torch.manual_seed(1)
    i, j, y = RC.sample_pairs(6, 0.8)
    cos = F.cosine_similarity(image[i], recipe[j])
    by_hand = torch.where(y > 0, 1 - cos, (cos - 0.1).clamp(min=0)).mean()
    assert loss0.item() == pytest.approx(by_hand.item(), abs=1e-6)
    ce = (F.cross_entropy(logits_i, labels) + F.cross_entropy(logits_r, labels)) / 2
    torch.manual_seed(1)
    loss_w, _ = RC.im2recipe_loss(out, labels, margin=0.1, semantic_weight=0.25)
    assert loss_w.item() == pytest.approx(0.75 * by_hand.item() + 0.25 * ce.item(), abs=1e-6)
    assert float(logs["class_ce"]) == pytest.approx(ce.item(), abs=1e-6)


def test_a_few_epochs_of_fit_pull_pairs_together(vocabs):
    torch.manual_seed(0)
    t = _batch(vocabs)
    model = RC.Im2Recipe(len(vocabs[0]), len(vocabs[1]), n_classes=3, dim=8, width=4, hidden=12, embed=6)
    loader = make_loader(TensorRows(t), batch_size=3, shuffle=True)
    history = fit(model, loader, functools.partial(RC.im2recipe_step, semantic_weight=0.1), epochs=15,
                  lr=2e-2, val_loader=loader, val_fn=RC.validation_ranks, progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history[-1]["val_medR"] == 1.0  # three memorised pairs
    assert history[-1]["val_within-class medR"] == 1.0  # each the only one of its class


# ---------------------------------------------------------------- the baseline

def test_colour_histogram_matches_numpy():
    torch.manual_seed(0)
    images = torch.rand(3, 3, 5, 7)
    hist = RC.colour_histogram(images, bins=4)
    assert hist.shape == (3, 64) and torch.allclose(hist.sum(1), torch.ones(3))
    pixels = images[1].permute(1, 2, 0).reshape(-1, 3).numpy()
    expected, _ = np.histogramdd(pixels, bins=4, range=[(0, 1)] * 3)
    assert np.allclose(hist[1].numpy(), expected.flatten() / pixels.shape[0])
    with pytest.raises(ValueError, match="RGB images"):
        RC.colour_histogram(torch.rand(3, 5, 7))


def test_cca_embeddings_are_scikit_learns_and_find_the_shared_signal():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(400, 1))
    x = np.hstack([shared + 0.1 * rng.normal(size=(400, 1)), rng.normal(size=(400, 4))])
    y = np.hstack([rng.normal(size=(400, 3)), -2 * shared + 0.1 * rng.normal(size=(400, 1))])
    a, b = RC.cca_embeddings(x[:300], y[:300], x[300:], y[300:], n_components=2)
    assert a.shape == b.shape == (100, 2)
    assert np.corrcoef(a[:, 0], b[:, 0])[0, 1] > 0.95  # the first pair of components is the shared one
    ref = CCA(n_components=2, max_iter=1000).fit(x[:300], y[:300]).transform(x[300:], y[300:])
    assert np.allclose(a.numpy(), ref[0], atol=1e-5) and np.allclose(b.numpy(), ref[1], atol=1e-5)
    with pytest.raises(ValueError, match="paired rows"):
        RC.cca_embeddings(x[:300], y[:299], x, y)


def test_recipe_card_lists_ingredients_then_numbered_steps():
    card = RC.recipe_card(["2 carrots", "salt"], ["Chop the carrots.", "Boil them."], width=40)
    assert card.splitlines()[0].startswith("Ingredients: 2 carrots, salt")
    assert "1. Chop the carrots." in card and "2. Boil them." in card
