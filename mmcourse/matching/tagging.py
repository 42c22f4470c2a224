"""Image tagging by matching: images and tags meet in one joint embedding space.

Two ways to build the space (notebook 01):

* learned on both sides: an image encoder and a tag encoder trained together with the
  symmetric contrastive loss of CLIP (learnable temperature) or a hinge rank loss;
* DeViSE: the text side is a frozen pretrained sentence space and only the image side
  learns to point into it, which lets it name tags no training image carried (zero-shot).

Every encoder returns unit-length vectors, so a dot product is a cosine similarity.
"""
from __future__ import annotations

import copy
import math
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset

import datasets

from mmcourse.data.grammar import label_from_caption
from mmcourse.data.scenes import Stamp, compose_scene
from mmcourse.data.splits import split_by_group
from mmcourse.data.tuxpaint import caption_tags, family_of
from mmcourse.text import singular
from mmcourse.encoders import ImageCNN
from mmcourse.runtime import item_rng

# ------------------------------------------------------------------ tags


def tag_vocabulary(tag_lists: Iterable[Sequence[str]], min_count: int = 3) -> list[str]:
    """Tags carried by at least `min_count` items, most frequent first (ties alphabetical).

    Rarer tags are dropped: a tag seen on one or two images cannot be learned from them.
    """
    counts = Counter(tag for tags in tag_lists for tag in set(tags))
    vocab = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if not vocab:
        raise ValueError(f"no tag occurs {min_count} times or more; lower min_count")
    return vocab


def multi_hot(tag_lists: Sequence[Sequence[str]], vocab: Sequence[str]) -> Tensor:
    """Tag lists -> bool [N, T] with True where item n carries vocab tag t (others ignored)."""
    index = {t: i for i, t in enumerate(vocab)}
    out = torch.zeros(len(tag_lists), len(vocab), dtype=torch.bool)
    for row, tags in enumerate(tag_lists):
        for tag in tags:
            if tag in index:
                out[row, index[tag]] = True
    return out


# ------------------------------------------------------------------ splits

LINK_COLUMNS = ("image_sha", "sound_sha", "description_shas")  # content that must not cross splits
LABEL_STAMPS = (2, 8)  # stamps carrying a word that may be held out as a zero-shot label
FAMILY_SIZE = (6, 20)  # stamps in a family that may be held out whole


def zero_shot_labels(stamps: datasets.Dataset, seed: int, n_val: int = 10,
                     n_test: int = 20) -> tuple[list[str], list[str]]:
    """The rule that picks the zero-shot labels, fixed before any result was seen: (validation, test).

    DeViSE's test: object names that no training image carried. Candidates are the head nouns
    of stamp captions ("A red apple." -> "apple") that are no category-path word and that 2-8
    stamps carry (enough to measure, few enough to leave training intact). Each seed draws its
    own n_val + n_test, so the seeds also spread over which labels are held out; the validation
    labels choose the method, the test labels are scored once.
    """
    path_words = {w for c in stamps["category"] for w in caption_tags("", c)}
    carried = Counter(t for tags in stamps["tags"] for t in set(tags))
    heads = {singular(label.split()[-1].lower()) for label in map(label_from_caption, stamps["caption"]) if label}
    low, high = LABEL_STAMPS
    candidates = sorted(w for w in heads if low <= carried[w] <= high and w not in path_words)
    if len(candidates) < n_val + n_test:
        raise ValueError(f"only {len(candidates)} candidate labels; cannot hold out {n_val} + {n_test}")
    drawn = np.random.default_rng(seed).choice(candidates, n_val + n_test, replace=False).tolist()
    return sorted(drawn[:n_val]), sorted(drawn[n_val:])


def zero_shot_families(stamps: datasets.Dataset, seed: int, n: int = 3) -> list[str]:
    """A harder rule (exercise): `n` whole two-level families of FAMILY_SIZE stamps, drawn with `seed`."""
    counts = Counter(family_of(c) for c in stamps["category"])
    low, high = FAMILY_SIZE
    candidates = sorted(f for f, c in counts.items() if "/" in f and low <= c <= high)
    return sorted(np.random.default_rng(seed).choice(candidates, n, replace=False).tolist())


def tagging_splits(stamps: datasets.Dataset, seed: int, held_labels: Sequence[str] = (),
                   held_families: Sequence[str] = ()) -> datasets.DatasetDict:
    """Notebook 01's splits: train / validation / test by whole stamps, and "heldout".

    "heldout" has every stamp that carries a held-out label or belongs to a held-out family.
    Stamps that share an image, a sound or a recording are linked (LINK_COLUMNS) and land in one
    part, so no content is seen on two sides.
    """
    labels, families = set(held_labels), set(held_families)
    held = [bool(labels & set(tags)) or family_of(c) in families for tags, c in zip(stamps["tags"], stamps["category"])]
    stamps = stamps.add_column("held_out", held)
    return split_by_group(stamps, "id", test_fraction=0.2, val_fraction=0.1, seed=seed, link_columns=LINK_COLUMNS,
                          holdout=[True] if any(held) else None, holdout_column="held_out")


# ------------------------------------------------------------------ augmented views

def prepare_stamps(images: Sequence[Image.Image], size: int) -> list[Stamp]:
    """Crop each RGBA stamp to its opaque part and shrink it to fit `size` px, once.

    Resizing a 256 px stamp for every view would be the slow part of making views.
    """
    stamps = [Stamp("stamp", image) for image in images]
    for stamp in stamps:
        stamp.image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return stamps


def render_view(stamp: Stamp, rng: np.random.Generator, size: int = 48,
                scale_range: tuple[float, float] = (0.6, 0.95), flip: bool = True) -> Tensor:
    """One augmented view of a stamp -> float [3, size, size] in [0, 1].

    Only changes that keep every tag true: a random background, scale and position, and a
    mirror image. Colours are left alone because colour words are tags.
    """
    picture = compose_scene([stamp], rng, size=size, scale_range=scale_range).image
    if flip and rng.random() < 0.5:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255.0


def render_views(stamps: Sequence[Stamp], seed: int, size: int = 48, copies: int = 1) -> Tensor:
    """A fixed, seeded set of views (e.g. for testing) -> [copies * len(stamps), 3, S, S].

    Copy c of stamp i is row `c * len(stamps) + i`, the layout `embed_images(..., copies)` expects.
    """
    rng = np.random.default_rng(seed)
    return torch.stack([render_view(stamp, rng, size) for _ in range(copies) for stamp in stamps])


class StampViews(Dataset):
    """(fresh augmented view [3, S, S], multi-hot tags [T]) pairs: a new view at every access.

    Every epoch therefore sees each stamp on a new background, at a new size and place;
    `copies` > 1 shows each stamp that many times per epoch. Each view draws its randomness
    from torch's RNG (`runtime.item_rng`): seeded by `setup`, saved in `fit`'s checkpoints
    and different in every DataLoader worker.
    """

    def __init__(self, stamps: Sequence[Stamp], tags: Tensor, size: int = 48, copies: int = 1):
        if len(stamps) != len(tags):
            raise ValueError(f"{len(stamps)} stamps but {len(tags)} rows of tags")
        self.stamps, self.tags, self.size, self.copies = list(stamps), tags, size, copies

    def __len__(self) -> int:
        return len(self.stamps) * self.copies

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        i %= len(self.stamps)
        return render_view(self.stamps[i], item_rng(), self.size), self.tags[i]


# ------------------------------------------------------------------ models

class JointEmbedding(nn.Module):
    """Image encoder and tag encoder into one `dim`-d space, plus CLIP's learnable temperature.

    The tag encoder is a table with one learned vector per tag; a set of tags (a caption's
    words) is encoded as the direction of the sum of its tags' vectors.
    """

    def __init__(self, num_tags: int, dim: int = 64, width: int = 32, temperature: float = 0.07):
        super().__init__()
        self.image_encoder = ImageCNN(width, depth=4, out_dim=dim)
        self.tag_embedding = nn.Parameter(torch.randn(num_tags, dim) / math.sqrt(dim))
        # log(1/T): learning the log keeps the temperature positive.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def encode_images(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, D]
        return F.normalize(self.image_encoder(images), dim=-1)

    def tag_vectors(self) -> Tensor:  # [T, D]
        return F.normalize(self.tag_embedding, dim=-1)

    def encode_tags(self, tags: Tensor) -> Tensor:  # multi-hot [B, T] -> [B, D]
        vectors = self.tag_vectors()
        # A multi-hot built on the CPU may meet a model on the GPU: follow the model.
        return F.normalize(tags.to(vectors.device, vectors.dtype) @ vectors, dim=-1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(image vectors [B, D], all tag vectors [T, D], log inverse temperature []).

        Everything a loss needs comes out of forward, so under DistributedDataParallel the
        loss calls the wrapped model and gradients are averaged across processes.
        """
        return self.encode_images(images), self.tag_vectors(), self.logit_scale


class DeViSE(nn.Module):
    """DeViSE (Frome et al., 2013): a pretrained visual model plus a linear map M into a frozen text space.

    `label_vectors [T, text_dim]` are the pretrained text vectors of the training tags; they
    are a buffer, not a parameter. The visual model is a copy of `encoder` (its pooled conv
    features), frozen unless `train_encoder`, so training learns M first, as the paper does.
    """

    def __init__(self, label_vectors: Tensor, encoder: ImageCNN, train_encoder: bool = False):
        super().__init__()
        self.register_buffer("label_vectors", F.normalize(label_vectors.float(), dim=-1))
        self.visual = copy.deepcopy(encoder)
        self.visual.requires_grad_(train_encoder)
        self.train_encoder = train_encoder
        self.project = nn.Linear(encoder.channels, label_vectors.shape[1])  # M

    def train(self, mode: bool = True) -> "DeViSE":
        super().train(mode)
        if not self.train_encoder:
            self.visual.eval()  # a frozen model keeps its BatchNorm statistics too
        return self

    def encode_images(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, text_dim]
        return F.normalize(self.project(self.visual.pooled(images)), dim=-1)

    def tag_vectors(self) -> Tensor:  # [T, text_dim]
        return self.label_vectors

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.encode_images(images), self.tag_vectors()


@torch.no_grad()
def embed_images(model: nn.Module, images: Tensor, copies: int = 1, batch_size: int = 256) -> Tensor:
    """`model.encode_images` in eval mode -> [N, D]; with `copies` views per image (from
    `render_views`) each image's vector is the normalised mean of its views' vectors."""
    model.eval()
    device = next(model.parameters()).device
    vectors = torch.cat([model.encode_images(chunk.to(device)).cpu() for chunk in images.split(batch_size)])
    if len(vectors) % copies:
        raise ValueError(f"{len(vectors)} images do not split into {copies} copies of equal size")
    return F.normalize(vectors.view(copies, len(vectors) // copies, -1).mean(dim=0), dim=-1)


# ------------------------------------------------------------------ losses
# All take a score matrix `scores [B, T]` (cosine of image b with tag t) and the bool
# `positives [B, T]` (image b carries tag t). Read along a row: which tags fit this image?
# Down a column: which images fit this tag? Rows or columns without a positive are skipped.

def _rows_with_positives(scores: Tensor, positives: Tensor) -> Tensor:
    """Which rows have a positive; an error when none does (a mean over no rows is NaN)."""
    if scores.shape != positives.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and positives {tuple(positives.shape)} must match")
    keep = positives.bool().any(dim=1)
    if not keep.any():
        raise ValueError("no row of this batch has a positive (no image carries any of the tags), so "
                         "the loss is undefined; drop untagged items or use bigger batches")
    return keep


def info_nce(logits: Tensor, positives: Tensor) -> Tensor:
    """Cross-entropy of each row of `logits` against a target spread evenly over its positives."""
    positives = positives.bool()
    keep = _rows_with_positives(logits, positives)
    target = positives[keep].float()
    target = target / target.sum(dim=1, keepdim=True)
    return -(target * logits[keep].log_softmax(dim=1)).sum(dim=1).mean()


def contrastive_loss(scores: Tensor, positives: Tensor, logit_scale: Tensor,
                     max_scale: float = 100.0) -> Tensor:
    """CLIP's symmetric contrastive loss: softmax over tags for each image, over images for each tag.

    logits = exp(logit_scale) * scores; the temperature 1/exp(logit_scale) is learned, capped
    at 1/max_scale as in CLIP so the logits cannot blow up.
    """
    logits = logit_scale.exp().clamp(max=max_scale) * scores
    return (info_nce(logits, positives) + info_nce(logits.T, positives.T)) / 2


def hinge_rank_loss(scores: Tensor, positives: Tensor, margin: float = 0.1) -> Tensor:
    """DeViSE's ranking loss: along each row every positive should beat every negative by `margin`.

    Per row: sum over negatives n, mean over positives p, of max(0, margin - s_p + s_n);
    then the mean over rows.
    """
    positives = positives.bool()
    keep = _rows_with_positives(scores, positives)
    scores, positives = scores[keep], positives[keep]
    # A row has a few positives among many columns (5 tags of 631), so gather each row's
    # positives first: [B, P, T] pairs instead of [B, T, T], P = the most positives in a row.
    most = int(positives.sum(dim=1).max())
    is_pos, pos_index = positives.to(scores.dtype).topk(most, dim=1)            # [B, P]
    pos_scores = scores.gather(1, pos_index)                                    # [B, P]
    violation = (margin - pos_scores[:, :, None] + scores[:, None, :]).clamp(min=0)  # [B, P, T]
    pairs = (is_pos > 0)[:, :, None] & ~positives[:, None, :]
    return ((violation * pairs).sum(dim=(1, 2)) / positives.sum(dim=1)).mean()


def symmetric_hinge_loss(scores: Tensor, positives: Tensor, margin: float = 0.1) -> Tensor:
    """`hinge_rank_loss` along rows (image -> tags) and columns (tag -> images), averaged."""
    return (hinge_rank_loss(scores, positives, margin) + hinge_rank_loss(scores.T, positives.T, margin)) / 2


# ------------------------------------------------------------------ training steps for `fit`
# A batch is (images [B, 3, H, W], tags multi-hot [B, T]). The steps call the model itself
# (never a method of an unwrapped model), so they stay correct under DistributedDataParallel.

def clip_step(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """Joint embedding trained with the contrastive loss; logs the learned temperature."""
    images, tags = batch
    image_vecs, tag_vecs, scale = model(images)
    loss = contrastive_loss(image_vecs @ tag_vecs.T, tags, scale)
    return loss, {"temperature": math.exp(-scale.item())}


def hinge_step(model: nn.Module, batch: tuple[Tensor, Tensor], margin: float = 0.1) -> Tensor:
    """Joint embedding trained with the hinge rank loss in both directions instead."""
    images, tags = batch
    image_vecs, tag_vecs, _ = model(images)
    return symmetric_hinge_loss(image_vecs @ tag_vecs.T, tags, margin)


def devise_step(model: nn.Module, batch: tuple[Tensor, Tensor], margin: float = 0.1) -> Tensor:
    """DeViSE: rank each image's own tags above every other training tag in the frozen space."""
    images, tags = batch
    image_vecs, tag_vecs = model(images)
    return hinge_rank_loss(image_vecs @ tag_vecs.T, tags, margin)
