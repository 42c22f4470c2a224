"""Retrieval in a joint embedding space: similarities, nearest neighbours and ranking metrics.

Every metric takes a score matrix `scores [Q, N]` (query q against item n, higher = closer)
and a boolean `relevant [Q, N]` that marks each query's positives, so the same function
measures image->tags, tags->image and zero-shot tagging; a query may have several positives.
Queries with no positive at all cannot be found and are skipped (torchmetrics'
`empty_target_action="skip"`).

All of them read one ranking, with ties broken against the query: a positive's rank is 1 + the
number of items scoring strictly higher + the number of negatives tied with it (+ the tied
positives placed before it, by index, which changes no metric). So Recall@K, precision@k and
median rank can never disagree on tied scores, and a model that scores everything alike finds
nothing early rather than whatever `torch.topk` happens to return first among equals.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def cosine_scores(queries: Tensor, items: Tensor) -> Tensor:
    """Cosine similarity of every query [Q, D] with every item [N, D] -> [Q, N]."""
    if queries.ndim != 2 or items.ndim != 2 or queries.shape[1] != items.shape[1]:
        raise ValueError(f"expected queries [Q, D] and items [N, D] with the same D, "
                         f"got {tuple(queries.shape)} and {tuple(items.shape)}")
    return F.normalize(queries.float(), dim=1) @ F.normalize(items.float(), dim=1).T


def nearest(queries: Tensor, items: Tensor, k: int = 5,
            exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The k items most cosine-similar to each query: (scores [Q, k], indices [Q, k]).

    `exclude [Q, N]` (bool) hides items, e.g. the query itself when queries and items are
    the same images: `exclude=torch.eye(N, dtype=torch.bool)`.
    """
    scores = cosine_scores(queries, items)
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    return scores.topk(min(k, scores.shape[1]), dim=1)


def _check(scores: Tensor, relevant: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if scores.ndim != 2 or scores.shape != relevant.shape:
        raise ValueError(f"scores and relevant must both be [queries, items]; "
                         f"got {tuple(scores.shape)} and {tuple(relevant.shape)}")
    if not 1 <= k:
        raise ValueError(f"k must be at least 1, got {k}")
    relevant = relevant.bool()
    keep = relevant.any(dim=1)  # a query with no positive cannot be found: skip it
    if not keep.any():
        raise ValueError("no query has a relevant item; check the relevance matrix")
    return scores[keep].float(), relevant[keep]


def _ahead_of_positives(scores: Tensor, relevant: Tensor, level: Tensor) -> Tensor:
    """How many items rank ahead of a positive scoring `level [Q, 1]` -> [Q]: every item scoring
    higher, and the negatives tied with it (ties count against the query). The one rank rule."""
    return ((scores > level) | ((scores == level) & ~relevant)).sum(dim=1)


def _hits_in_top_k(scores: Tensor, relevant: Tensor, k: int) -> Tensor:
    """How many positives each query finds among its top k -> [Q]."""
    # Only the k-th score matters: positives above it are in, positives below it out, and of the
    # positives tied with it, those that fit after everything ranked ahead of them (counted without
    # sorting, which would cost ten times topk on 1000 x 1000 scores).
    kth = scores.topk(min(k, scores.shape[1]), dim=1).values[:, -1:]             # [Q, 1]
    above = (relevant & (scores > kth)).sum(dim=1)
    tied = (relevant & (scores == kth)).sum(dim=1)
    room = k - _ahead_of_positives(scores, relevant, kth)
    return (above + room.clamp(min=0).minimum(tied)).float()


def recall_at_k(scores: Tensor, relevant: Tensor, k: int) -> float:
    """Cross-modal Recall@K: the share of queries with at least one positive in their top k.

    This is the Recall@K of image-text retrieval papers (an image counts as found when any
    of its captions is in the top K); torchmetrics calls it `RetrievalHitRate`.
    """
    scores, relevant = _check(scores, relevant, k)
    return (_hits_in_top_k(scores, relevant, k) > 0).float().mean().item()


def precision_at_k(scores: Tensor, relevant: Tensor, k: int) -> float:
    """Tag precision@k: the share of the top k that are positives, averaged over queries."""
    scores, relevant = _check(scores, relevant, k)
    return (_hits_in_top_k(scores, relevant, k) / k).mean().item()


def tag_recall_at_k(scores: Tensor, relevant: Tensor, k: int) -> float:
    """Tag recall@k: the share of each query's positives found in its top k, averaged.

    Unlike `recall_at_k`, an image with four true tags must find all four to score 1.
    """
    scores, relevant = _check(scores, relevant, k)
    return (_hits_in_top_k(scores, relevant, k) / relevant.sum(dim=1)).mean().item()


def top_k_accuracy(scores: Tensor, target: Tensor, k: int) -> float:
    """Single-label top-k accuracy: is the one true class `target [Q]` among the top k of `scores [Q, C]`?

    A true class tied with others ranks behind them (see the module docstring); scikit-learn's
    `top_k_accuracy_score` breaks ties by class index instead, so the two agree on untied scores.
    """
    relevant = F.one_hot(target.long(), scores.shape[1]).bool()
    return recall_at_k(scores, relevant, k)


# Chance levels: the expected value of each metric when the ranking is a random shuffle.

def chance_recall_at_k(relevant: Tensor, k: int) -> float:
    """Expected Recall@K of a random ranking: 1 - C(N-p, k) / C(N, k) for a query with p positives."""
    relevant = relevant.bool()
    n = relevant.shape[1]
    k = min(k, n)
    positives = relevant.sum(dim=1)
    positives = positives[positives > 0].tolist()
    if not positives:
        raise ValueError("no query has a relevant item; check the relevance matrix")
    miss = [math.comb(n - p, k) / math.comb(n, k) for p in positives]
    return 1.0 - sum(miss) / len(miss)


def chance_precision_at_k(relevant: Tensor, k: int) -> float:
    """Expected precision@k of a random ranking: p / N for a query with p positives.

    With k > N every item is in the top k, and `precision_at_k` still divides by k: p / k.
    """
    n = relevant.shape[1]
    positives = relevant.bool().sum(dim=1).float()
    positives = positives[positives > 0]
    if len(positives) == 0:
        raise ValueError("no query has a relevant item; check the relevance matrix")
    return (positives * min(k, n) / n / k).mean().item()


def chance_tag_recall_at_k(relevant: Tensor, k: int) -> float:
    """Expected tag recall@k of a random ranking: k / N, whatever the number of positives."""
    return min(k, relevant.shape[1]) / relevant.shape[1]


def frequency_scores(train_relevant: Tensor, num_queries: int) -> Tensor:
    """The frequency baseline's scores [num_queries, T]: every query ranks tags by training count."""
    counts = train_relevant.float().sum(dim=0)
    return counts.expand(num_queries, -1).clone()


def median_rank(scores: Tensor, relevant: Tensor) -> float:
    """medR of im2recipe: the rank (1 = top) of each query's best-placed positive, median over queries.

    Ties count against the query, by the same rule as Recall@K (see the module docstring): the
    rank is 1 + the number of non-relevant items scoring at least as high as its best positive,
    so a model that scores everything alike gets the worst rank, not a lucky one. A random
    ranking of N items with one positive each has medR about (N + 1) / 2.
    """
    scores, relevant = _check(scores, relevant, 1)
    best = scores.masked_fill(~relevant, float("-inf")).max(dim=1, keepdim=True).values   # [Q, 1]
    ranks = 1 + _ahead_of_positives(scores, relevant, best)
    return ranks.float().quantile(0.5).item()  # as numpy.median: the mean of the two middle ranks


def csls_scores(queries: Tensor, items: Tensor, reference: Tensor, k: int = 10) -> Tensor:
    """Cross-domain similarity local scaling (Conneau et al., 2018): cosine corrected for hubness.

    CSLS(q, i) = 2 cos(q, i) - r(q) - r(i), where r(i) is the mean cosine of item i with its k
    nearest `reference` vectors [R, D] (e.g. the training images), and r(q) the mean cosine of
    query q with its k nearest items. An item close to everything (a hub) has a large r(i) and
    is pushed down every query's ranking. The statistics r(i) come from `reference` alone, so
    no test query shapes another's scores. Returns [Q, N].
    """
    cos = cosine_scores(queries, items)                                          # [Q, N]
    k_items, k_ref = min(k, cos.shape[1]), min(k, len(reference))
    r_item = cosine_scores(items, reference).topk(k_ref, dim=1).values.mean(dim=1)  # [N]
    r_query = cos.topk(k_items, dim=1).values.mean(dim=1)                           # [Q]
    return 2 * cos - r_query[:, None] - r_item[None, :]
