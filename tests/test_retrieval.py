import math

import pytest
import torch
from sklearn.metrics import top_k_accuracy_score
from torchmetrics.retrieval import RetrievalHitRate, RetrievalPrecision, RetrievalRecall

from mmcourse.retrieval import (chance_precision_at_k, chance_recall_at_k, chance_tag_recall_at_k, csls_scores,
                                cosine_scores, frequency_scores, median_rank, nearest, precision_at_k,
                                recall_at_k, tag_recall_at_k, top_k_accuracy)

# Three queries over five items, checked by hand.
#   q0 ranks items 4,3,2,1,0 and has positives {3, 0}
#   q1 ranks items 0,1,2,3,4 and has positive {2}
#   q2 ranks items 2,0,4,1,3 and has no positive: it is skipped
SCORES = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.4],
                       [0.9, 0.8, 0.7, 0.6, 0.5],
                       [0.8, 0.2, 0.9, 0.1, 0.3]])
RELEVANT = torch.tensor([[1, 0, 0, 1, 0],
                         [0, 0, 1, 0, 0],
                         [0, 0, 0, 0, 0]], dtype=torch.bool)


def test_recall_at_k_by_hand():
    assert recall_at_k(SCORES, RELEVANT, 1) == 0.0      # q0 top-1 is item 4, q1 top-1 is item 0
    assert recall_at_k(SCORES, RELEVANT, 2) == 0.5      # q0 finds item 3
    assert recall_at_k(SCORES, RELEVANT, 3) == 1.0      # q1 finds item 2


def test_precision_and_tag_recall_by_hand():
    assert precision_at_k(SCORES, RELEVANT, 2) == pytest.approx((1 / 2 + 0 / 2) / 2)
    assert precision_at_k(SCORES, RELEVANT, 5) == pytest.approx((2 / 5 + 1 / 5) / 2)
    assert tag_recall_at_k(SCORES, RELEVANT, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert tag_recall_at_k(SCORES, RELEVANT, 3) == pytest.approx((1 / 2 + 1) / 2)
    assert tag_recall_at_k(SCORES, RELEVANT, 5) == 1.0


def _torchmetrics(metric, scores, relevant):
    # torchmetrics' RetrievalPrecision and RetrievalRecall (1.7.4 and later) never count a positive
    # that scores <= 0 as found, wherever it ranks; our metrics look at the ranking only. Shifting every score above 0 (in float64, so no
    # two scores round together) keeps each query's ranking and takes that rule out of the comparison.
    q, n = scores.shape
    indexes = torch.arange(q).repeat_interleave(n)
    shifted = scores.double() - scores.min().double() + 1.0
    return metric(shifted.flatten(), relevant.flatten(), indexes=indexes).item()


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("offset", [0.0, -3.0])
def test_metrics_match_torchmetrics(k, offset):
    # Continuous scores: no ties, so torchmetrics' order among tied scores plays no part.
    gen = torch.Generator().manual_seed(k)
    scores = torch.randn(40, 25, generator=gen) + offset
    relevant = torch.rand(40, 25, generator=gen) < 0.12
    relevant[0] = False  # one query without positives, skipped by both
    assert relevant[1:].any(dim=1).sum() > 20
    if offset < 0:  # mostly negative scores: positives scoring <= 0 are found in some top k
        top = scores.topk(k, dim=1)
        assert (relevant.gather(1, top.indices) & (top.values <= 0)).any()
    skip = dict(empty_target_action="skip", top_k=k)
    assert recall_at_k(scores, relevant, k) == pytest.approx(
        _torchmetrics(RetrievalHitRate(**skip), scores, relevant), abs=1e-6)
    assert precision_at_k(scores, relevant, k) == pytest.approx(
        _torchmetrics(RetrievalPrecision(**skip), scores, relevant), abs=1e-6)
    assert tag_recall_at_k(scores, relevant, k) == pytest.approx(
        _torchmetrics(RetrievalRecall(**skip), scores, relevant), abs=1e-6)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_accuracy_matches_sklearn(k):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 7, generator=gen)
    target = torch.randint(0, 7, (200,), generator=gen)
    expected = top_k_accuracy_score(target.numpy(), scores.numpy(), k=k, labels=list(range(7)))
    assert top_k_accuracy(scores, target, k) == pytest.approx(expected)


# ---------------------------------------------------------------- ties

def _ranks_written_out(scores, relevant):
    """Each item's rank, by sorting: score first, and on a tie negatives before positives."""
    ranks = []
    for s, r in zip(scores.tolist(), relevant.tolist()):
        order = sorted(range(len(s)), key=lambda j: (-s[j], r[j]))
        ranks.append([order.index(j) + 1 for j in range(len(s))])
    return torch.tensor(ranks)


def test_all_equal_scores_rank_every_positive_last():
    scores = torch.zeros(2, 5)
    relevant = torch.tensor([[0, 0, 1, 0, 0], [1, 0, 0, 0, 1]], dtype=torch.bool)
    # q0's positive comes after its 4 negatives: rank 5; q1's two positives take ranks 4 and 5.
    assert median_rank(scores, relevant) == 4.5
    assert [recall_at_k(scores, relevant, k) for k in range(1, 6)] == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert precision_at_k(scores, relevant, 4) == pytest.approx((0 / 4 + 1 / 4) / 2)
    assert tag_recall_at_k(scores, relevant, 4) == pytest.approx((0 + 1 / 2) / 2)
    assert tag_recall_at_k(scores, relevant, 5) == 1.0
    target = torch.tensor([0, 1, 3])
    assert top_k_accuracy(torch.zeros(3, 4), target, 3) == 0.0
    assert top_k_accuracy(torch.zeros(3, 4), target, 4) == 1.0


def test_a_positive_tied_with_negatives_at_the_k_boundary_is_not_found():
    # Item 0 leads; the positive, item 1, ties with items 2 and 3 for places 2 to 4: it gets 4.
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.5, 0.1]])
    relevant = torch.tensor([[0, 1, 0, 0, 0]], dtype=torch.bool)
    assert median_rank(scores, relevant) == 4.0
    assert [recall_at_k(scores, relevant, k) for k in range(1, 6)] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert precision_at_k(scores, relevant, 2) == 0.0
    assert tag_recall_at_k(scores, relevant, 3) == 0.0
    assert top_k_accuracy(scores, torch.tensor([1]), 2) == 0.0
    assert top_k_accuracy(scores, torch.tensor([1]), 4) == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_every_metric_reads_the_same_ranks_on_tied_scores(seed):
    # Four score levels over 12 items: ties everywhere, also between positives.
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (30, 12), generator=gen).float()
    relevant = torch.rand(30, 12, generator=gen) < 0.25
    keep = relevant.any(dim=1)
    ranks = _ranks_written_out(scores, relevant)[keep]
    rel = relevant[keep]
    best = ranks.masked_fill(~rel, 13).min(dim=1).values.float()      # each query's best positive
    assert median_rank(scores, relevant) == pytest.approx(best.quantile(0.5).item())
    for k in range(1, 15):                                             # k > N too
        found = (rel & (ranks <= k)).sum(dim=1).float()
        assert recall_at_k(scores, relevant, k) == pytest.approx((best <= k).float().mean().item())
        assert precision_at_k(scores, relevant, k) == pytest.approx((found / k).mean().item())
        assert tag_recall_at_k(scores, relevant, k) == pytest.approx((found / rel.sum(dim=1)).mean().item())


def test_chance_levels_by_hand():
    # one query, 5 items, 2 positives, k=2: miss both = C(3,2)/C(5,2) = 3/10
    rel = torch.tensor([[1, 1, 0, 0, 0]], dtype=torch.bool)
    assert chance_recall_at_k(rel, 2) == pytest.approx(1 - 3 / 10)
    assert chance_precision_at_k(rel, 2) == pytest.approx(2 / 5)
    assert chance_tag_recall_at_k(rel, 2) == pytest.approx(2 / 5)
    assert chance_recall_at_k(rel, 9) == 1.0  # k beyond N sees everything
    # ... and then precision@k is (positives found = p) / k, for the model and for chance alike.
    assert chance_precision_at_k(rel, 10) == pytest.approx(2 / 10)
    assert precision_at_k(torch.rand(1, 5), rel[:1], 10) == pytest.approx(2 / 10)


def test_chance_precision_with_nothing_relevant_is_an_error_not_nan():
    with pytest.raises(ValueError, match="no query has a relevant item"):
        chance_precision_at_k(torch.zeros(2, 5, dtype=torch.bool), 2)


def test_chance_levels_match_random_rankings():
    gen = torch.Generator().manual_seed(1)
    relevant = torch.rand(30, 20, generator=gen) < 0.15
    k, trials = 3, 400
    runs = [[f(torch.rand(30, 20, generator=gen), relevant, k)
             for f in (recall_at_k, precision_at_k, tag_recall_at_k)] for _ in range(trials)]
    mean = torch.tensor(runs).mean(dim=0)
    expected = [chance_recall_at_k(relevant, k), chance_precision_at_k(relevant, k),
                chance_tag_recall_at_k(relevant, k)]
    assert mean.tolist() == pytest.approx(expected, abs=0.01)


def test_frequency_scores_rank_common_tags_first():
    train = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    scores = frequency_scores(train, num_queries=2)
    assert scores.shape == (2, 3)
    assert scores.argmax(dim=1).tolist() == [0, 0]
    test = torch.tensor([[1, 0, 0], [0, 1, 0]], dtype=torch.bool)
    assert recall_at_k(scores, test, 1) == 0.5


def test_cosine_scores_and_nearest():
    items = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    scores = cosine_scores(items, items)
    assert scores.diagonal().tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert scores[0, 2].item() == pytest.approx(1 / math.sqrt(2))
    sims, idx = nearest(items, items, k=2, exclude=torch.eye(3, dtype=torch.bool))
    assert idx[:, 0].tolist() == [2, 2, 0]  # the diagonal item is never its own neighbour
    assert sims[0, 0].item() == pytest.approx(1 / math.sqrt(2))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same D"):
        cosine_scores(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="queries, items"):
        recall_at_k(SCORES, RELEVANT[:2], 1)
    with pytest.raises(ValueError, match="no query has a relevant item"):
        recall_at_k(SCORES, torch.zeros_like(RELEVANT), 1)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(SCORES, RELEVANT, 0)


def test_csls_by_hand_pushes_a_hub_down():
    # Two queries, two items; item 1 is a hub: close to every reference vector.
    queries = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    reference = torch.tensor([[0.0, 1.0], [0.28, 0.96], [1.0, 0.0]])
    cos = queries @ items.T                                    # [[1, 0], [0.6, 0.8]]: all unit vectors
    r_item = torch.tensor([(1.0 + 0.28) / 2, (1.0 + 0.96) / 2])  # top-2 cosines with the reference
    r_query = cos.topk(2, dim=1).values.mean(dim=1)
    expected = 2 * cos - r_query[:, None] - r_item[None, :]
    scores = csls_scores(queries, items, reference, k=2)
    assert torch.allclose(scores, expected, atol=1e-6)
    # Query 1 prefers the hub by 0.2 in cosine; the hub's r is 0.34 higher: 2 * 0.2 > 0.34, it stays.
    assert scores[1].argmax() == 1
    near_tie = csls_scores(torch.tensor([[0.6, 0.8], [0.64, 0.768]]), items, reference, k=2)
    # By 0.128 < 0.34 / 2, plain cosine still picks the hub, but CSLS no longer does.
    assert near_tie[1].argmax() == 0 and cosine_scores(torch.tensor([[0.64, 0.768]]), items).argmax() == 1
