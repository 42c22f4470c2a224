"""Visual question answering (notebook 05): an image vector and a question vector, fused.

The lecture's model (Antol et al., 2015) reads the image with a pretrained CNN and the
question with an LSTM, projects both into one space, multiplies them element by element and
classifies the product over a fixed set of answers. The paper's CNN was VGG, trained on
ImageNet's object labels and frozen; ours is `TagCNN`, trained on the training images' tags
(easy-VQA: colour and shape; scenes: which families are present) and frozen, so every VQA
model below reads the same image vectors. The baselines the lecture's "bias toward the easy
modality" needs differ only in what reaches the classifier:

    fusion="product"   tanh(W_i v) * tanh(W_q q)       the lecture's model
    fusion="concat"    [tanh(W_i v), tanh(W_q q)]       concatenation instead of interaction
    fusion="question"  tanh(W_q q)                      blind: the question only
    fusion="image"     tanh(W_i v)                      deaf: the image only

Data comes as a `datasets.Dataset` with one row per question and the columns of easy-VQA
(`image, question, answer, question_type, image_id`; VQA v2 fits after choosing its top
answers). `encode_vqa` turns it into tensors, and `QuestionsByImage` batches whole images
with all their questions.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from datasets import Dataset as HFDataset
from datasets import DatasetDict
from datasets import Image as HFImage
from torch.utils.data import Dataset

from mmcourse.data.easyvqa import load_easy_vqa
from mmcourse.data.splits import content_hash, linked_groups
from mmcourse.encoders import ImageCNN, TextEncoder
from mmcourse.text import Vocab

FUSIONS = ("product", "concat", "question", "image")
INPUTS = ("images", "ids", "lengths", "image_of", "question_of")  # a batch's keys that VQAModel reads


# ------------------------------------------------------------------ splits

def with_image_hash(rows: HFDataset) -> HFDataset:
    """`rows` with an `image_sha` column: the hash of each image's encoded bytes.

    Rows with the same `image_id` show the same image, so each image is hashed once.
    """
    image_ids = rows.select_columns(["image_id"]).to_dict()["image_id"]
    first = {}
    for row, image_id in enumerate(image_ids):
        first.setdefault(image_id, row)
    raw = rows.select_columns(["image"]).select(list(first.values()))
    raw = raw.cast_column("image", HFImage(decode=False)).to_dict()["image"]
    sha = {image_id: content_hash(cell["bytes"]) for image_id, cell in zip(first, raw)}
    return rows.add_column("image_sha", [sha[i] for i in image_ids])


def easyvqa_splits(seed: int, val_fraction: float = 0.1) -> DatasetDict:
    """easy-VQA as train / validation / test: validation is a `val_fraction` of the training
    images (all questions of an image, and of any identical image, on one side); test is
    the official test set. Every split gets an `image_sha` column."""
    ds = load_easy_vqa()
    train, test = with_image_hash(ds["train"]), with_image_hash(ds["test"])
    table = train.select_columns(["image_id", "image_sha"]).to_dict()
    ids, shas = zip(*dict.fromkeys(zip(table["image_id"], table["image_sha"])))  # each image once
    component = linked_groups(HFDataset.from_dict({"image_id": list(ids), "image_sha": list(shas)}),
                              "image_id", ["image_sha"])
    groups = sorted(set(component.values()))
    chosen = np.random.default_rng(seed).choice(len(groups), round(val_fraction * len(groups)), replace=False)
    held = {groups[i] for i in chosen}
    in_val = [component[i] in held for i in table["image_id"]]
    return DatasetDict(train=train.select([r for r, v in enumerate(in_val) if not v]),
                       validation=train.select([r for r, v in enumerate(in_val) if v]), test=test)


# ------------------------------------------------------------------ data as tensors

@dataclass
class VQATensors:
    """One split as tensors: each distinct image once, each question once.

    pixels [N, 3, S, S] uint8 and image_ids (N dataset ids, same order); vectors [N, C], the frozen CNN's image vectors, once
    `with_vectors` has added them; image_of [Q] (row of `pixels` each question is about);
    ids [Q, L] and lengths [Q] (the question's tokens); answers [Q] (index into the answer
    list); types and questions (Q strings each) for per-type accuracy and for showing examples.
    """

    pixels: Tensor
    image_ids: list
    image_of: Tensor
    ids: Tensor
    lengths: Tensor
    answers: Tensor
    types: list[str]
    questions: list[str]
    vectors: Tensor | None = None

    def __len__(self) -> int:
        return len(self.answers)

    def with_vectors(self, vectors: Tensor) -> "VQATensors":
        """The same split with `vectors [N, C]`, one per image (see `image_vectors`)."""
        if len(vectors) != len(self.pixels):
            raise ValueError(f"{len(vectors)} image vectors for {len(self.pixels)} images")
        return replace(self, vectors=vectors)


def _image_tensor(image: Image.Image, size: int) -> Tensor:  # -> [3, size, size] uint8
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BOX)  # BOX averages: thin edges survive
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def encode_vqa(rows, vocab: Vocab, answers: Sequence[str], size: int) -> VQATensors:
    """A VQA `datasets.Dataset` (columns image, question, answer, question_type, image_id) -> tensors.

    Every image is decoded once (from the first row that shows it) and resized to `size` px.
    """
    missing = {"image", "question", "answer", "question_type", "image_id"} - set(rows.column_names)
    if missing:
        raise KeyError(f"a VQA dataset needs the columns image, question, answer, question_type, "
                       f"image_id; this one lacks {sorted(missing)}")
    # to_dict reads whole Arrow columns at once; indexing a column of a split walks it row by row.
    table = rows.select_columns(["question", "answer", "question_type", "image_id"]).to_dict()
    index = {a: i for i, a in enumerate(answers)}
    unknown = sorted(set(table["answer"]) - set(index))
    if unknown:
        raise ValueError(f"answers {unknown[:5]} are not in the answer list; keep only rows whose "
                         "answer is in it (e.g. rows.filter(lambda a: a in answers, input_columns='answer'))")
    first: dict = {}
    for row, image_id in enumerate(table["image_id"]):
        first.setdefault(image_id, row)
    # One slice decodes the images in one call; iterating the rows would format them one by one.
    pictures = rows.select_columns(["image"]).select(list(first.values()))[:]["image"]
    position = {image_id: k for k, image_id in enumerate(first)}
    # Questions repeat ("what color is the shape?"): tokenise each distinct one once.
    distinct = sorted(set(table["question"]))
    ids, lengths = vocab.encode_batch(distinct)
    number = {q: k for k, q in enumerate(distinct)}
    which = torch.tensor([number[q] for q in table["question"]])
    return VQATensors(
        pixels=torch.stack([_image_tensor(p, size) for p in pictures]), image_ids=list(first),
        image_of=torch.tensor([position[i] for i in table["image_id"]]),
        ids=ids[which], lengths=lengths[which],
        answers=torch.tensor([index[a] for a in table["answer"]]),
        types=table["question_type"], questions=table["question"])


def subset(data: VQATensors, rows: Sequence[int]) -> VQATensors:
    """The same split with only the questions in `rows` (images are kept; unused ones cost nothing)."""
    rows = torch.as_tensor(rows, dtype=torch.long)
    keep = rows.tolist()
    return VQATensors(data.pixels, data.image_ids, data.image_of[rows], data.ids[rows], data.lengths[rows],
                      data.answers[rows], [data.types[i] for i in keep], [data.questions[i] for i in keep],
                      data.vectors)


class QuestionsByImage(Dataset):
    """Item i = the i-th image that has questions, with all of its questions.

    A batch of images with all their questions reads each image vector once and lets the
    collate step find the questions the batch repeats (easy-VQA asks about ten of each image).
    """

    def __init__(self, data: VQATensors):
        by_image: dict[int, list[int]] = defaultdict(list)
        for q, i in enumerate(data.image_of.tolist()):
            by_image[i].append(q)
        self.data = data
        self.groups = [(i, torch.tensor(qs)) for i, qs in by_image.items()]
        # Every distinct token sequence once, sorted as torch.unique sorts rows: a batch then
        # finds its distinct questions among integers (text_of [Q]) instead of rows of tokens.
        self.texts, self.text_of = torch.unique(data.ids, dim=0, return_inverse=True)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> tuple[int, Tensor]:  # (image row, its question rows [n])
        return self.groups[k]

    def collate(self, items: list[tuple[int, Tensor]]) -> dict[str, Tensor]:
        """B images with their Q questions, of which U are distinct texts.

        images [B, C], the image vectors; ids [U, L] and lengths [U] (each distinct question
        once: the LSTM reads "what color is the shape?" once per batch, not forty times);
        image_of [Q] and question_of [Q] (which image and which text each pair joins);
        answers [Q]; rows [Q] (the pairs' rows in the split).
        """
        d = self.data
        if d.vectors is None:
            raise ValueError("the split has no image vectors yet: data.with_vectors(image_vectors(cnn, data.pixels))")
        rows = torch.cat([qs for _, qs in items])                                       # [Q]
        counts = torch.tensor([len(qs) for _, qs in items])                             # [B]
        image_of = torch.repeat_interleave(torch.arange(len(items)), counts)            # [Q]
        texts, question_of = torch.unique(self.text_of[rows], return_inverse=True)
        ids = self.texts[texts, :int(d.lengths[rows].max())]
        return {"images": d.vectors[[i for i, _ in items]],
                "ids": ids, "lengths": (ids != 0).sum(1), "image_of": image_of,
                "question_of": question_of, "answers": d.answers[rows], "rows": rows}


# ------------------------------------------------------------------ the image encoder

class TagCNN(nn.Module):
    """ImageCNN plus a linear layer that predicts an image's tags: the pretrained CNN.

    Trained on the training images' tags (easy-VQA: its colour and its shape; scenes: the
    families it shows) and then frozen; its pooled features are the VQA models' image vectors,
    as VGG's fc7 (trained on ImageNet's object labels) was the paper's.
    """

    def __init__(self, num_tags: int, width: int = 8, depth: int = 4):
        super().__init__()
        self.encoder = ImageCNN(width, depth)
        self.head = nn.Linear(self.encoder.channels, num_tags)

    def forward(self, images: Tensor) -> Tensor:  # [B, 3, S, S] in [0, 1] -> tag logits [B, T]
        return self.head(self.encoder.pooled(images))


def tag_targets(tags: Sequence[Sequence[str]], groups: dict[str, Sequence[str]],
                unknown: Sequence[Sequence[str]] | None = None) -> tuple[Tensor, Tensor]:
    """Each image's tags -> (targets [N, T] float 0/1, known [N, T] bool), tags in group order.

    `groups` names the tag vocabularies, e.g. {"color": COLORS, "shape": SHAPES}; `unknown[n]`
    lists the groups nothing tells about image n: their entries are masked out of the loss.
    """
    vocab = [tag for group in groups.values() for tag in group]
    index = {tag: i for i, tag in enumerate(vocab)}
    targets = torch.zeros(len(tags), len(vocab))
    known = torch.ones(len(tags), len(vocab), dtype=torch.bool)
    for n, image_tags in enumerate(tags):
        for tag in image_tags:
            if tag not in index:
                raise KeyError(f"tag {tag!r} of image {n} is in none of the groups {list(groups)}")
            targets[n, index[tag]] = 1.0
        start = 0
        for name, group in groups.items():
            if unknown is not None and name in unknown[n]:
                known[n, start:start + len(group)] = False
            start += len(group)
    return targets, known


def tag_step(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Binary cross-entropy of every known tag: batch = (images uint8, targets, known)."""
    images, targets, known = batch
    logits = model(images.float() / 255.0)
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)


@torch.no_grad()
def image_vectors(encoder: ImageCNN, pixels: Tensor, batch_size: int = 256) -> Tensor:
    """The frozen encoder's pooled features [N, C] of uint8 images [N, 3, S, S], in eval mode."""
    encoder.eval()
    device = next(encoder.parameters()).device
    return torch.cat([encoder.pooled(chunk.to(device).float() / 255.0).float().cpu()
                      for chunk in pixels.split(batch_size)])


# ------------------------------------------------------------------ models

class VQAModel(nn.Module):
    """Image vector and LSTM question vector, projected to `dim`, fused, classified.

    The image vector (from the frozen CNN, `image_dim` numbers) is L2-normalised as in the
    paper; both projections end in tanh; the classifier is a one-hidden-layer MLP. Only the
    parts a fusion uses are built: the question-only model has no image projection.
    """

    def __init__(self, vocab_size: int, num_answers: int, fusion: str = "product", image_dim: int = 64,
                 dim: int = 128, embed_dim: int = 32, hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        if fusion != "question":
            self.image_proj = nn.Linear(image_dim, dim)
        if fusion != "image":
            self.question_encoder = TextEncoder(vocab_size, embed_dim, hidden, rnn="lstm")
            self.question_proj = nn.Linear(self.question_encoder.out_dim, dim)
        fused = 2 * dim if fusion == "concat" else dim
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused, dim), nn.ReLU(),
                                        nn.Linear(dim, num_answers))

    def encode_image(self, vectors: Tensor) -> Tensor:  # [B, C] -> [B, dim]
        # Unit length as in the paper, scaled by sqrt(C) so each entry is about 1, not 1 / sqrt(C):
        # otherwise the projection starts near zero and the product passes almost no gradient.
        unit = F.normalize(vectors, dim=-1) * vectors.shape[-1] ** 0.5
        return torch.tanh(self.image_proj(unit))

    def encode_question(self, ids: Tensor, lengths: Tensor) -> Tensor:  # [Q, L] -> [Q, dim]
        _, vector = self.question_encoder(ids, lengths)
        return torch.tanh(self.question_proj(vector))

    def forward(self, images: Tensor, ids: Tensor, lengths: Tensor, image_of: Tensor,
                question_of: Tensor) -> Tensor:
        """Answer logits [Q, A] for Q (image, question) pairs.

        images [B, C], image vectors; ids [U, L] and lengths [U], the distinct questions; pair q asks
        question `question_of[q]` about image `image_of[q]`.
        """
        if image_of.shape != question_of.shape or ids.shape[0] != lengths.shape[0]:
            raise ValueError(f"image_of {tuple(image_of.shape)} and question_of {tuple(question_of.shape)} "
                             f"need one entry per pair, ids {tuple(ids.shape)} and lengths "
                             f"{tuple(lengths.shape)} one row per distinct question")
        if self.fusion == "question":
            return self.classifier(self.encode_question(ids, lengths)[question_of])
        image = self.encode_image(images)[image_of]                     # [Q, dim]
        if self.fusion == "image":
            return self.classifier(image)
        question = self.encode_question(ids, lengths)[question_of]      # [Q, dim]
        fused = image * question if self.fusion == "product" else torch.cat([image, question], dim=-1)
        return self.classifier(fused)


def vqa_step(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """Cross-entropy over the answers, and the batch's accuracy."""
    logits = model(*(batch[k] for k in INPUTS))
    accuracy = (logits.argmax(-1) == batch["answers"]).float().mean().item()
    return F.cross_entropy(logits, batch["answers"]), {"acc": accuracy}


@torch.no_grad()
def predict(model: nn.Module, data: VQATensors, batch_images: int = 256) -> Tensor:
    """Answer probabilities [Q, A] for every question of `data`, in its order."""
    model.eval()
    device = next(model.parameters()).device
    batches = QuestionsByImage(data)
    probs = None
    for start in range(0, len(batches), batch_images):
        batch = batches.collate([batches[k] for k in range(start, min(start + batch_images, len(batches)))])
        logits = model(*(batch[k].to(device) for k in INPUTS))
        if probs is None:
            probs = torch.zeros(len(data), logits.shape[1])
        probs[batch["rows"]] = logits.softmax(-1).float().cpu()
    return probs


# ------------------------------------------------------------------ evaluation

def accuracy_per_type(predicted: Sequence[int] | Tensor, target: Sequence[int] | Tensor,
                      types: Sequence[str]) -> dict[str, float]:
    """Accuracy over all questions ("all") and within each question type, types in sorted order."""
    predicted, target = torch.as_tensor(predicted), torch.as_tensor(target)
    if not len(predicted) == len(target) == len(types):
        raise ValueError(f"{len(predicted)} predictions, {len(target)} targets and {len(types)} types: "
                         "give one of each per question")
    if len(types) == 0:
        raise ValueError("accuracy of no questions is undefined")
    right = (predicted == target).numpy()
    kinds = np.asarray(types)
    out = {"all": float(right.mean())}
    for kind in sorted(set(types)):
        out[kind] = float(right[kinds == kind].mean())
    return out


def answer_prior(answers: Sequence[int] | Tensor, types: Sequence[str]) -> dict[str, int]:
    """The most frequent training answer of each question type (ties: the smaller index)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for a, kind in zip(torch.as_tensor(answers).tolist(), types):
        counts[kind][a] += 1
    return {kind: min(c, key=lambda a: (-c[a], a)) for kind, c in counts.items()}


def prior_predictions(prior: dict[str, int], types: Sequence[str]) -> Tensor:
    """Predict the prior's answer for each question's type (the "answer prior" baseline)."""
    unseen = sorted(set(types) - set(prior))
    if unseen:
        raise KeyError(f"no prior for question types {unseen}: they never occur in training")
    return torch.tensor([prior[kind] for kind in types])


# ------------------------------------------------------------------ the modality-bias trap

def dominant_answers(keys: Sequence[str], answers: Sequence[int] | Tensor, seed: int) -> dict[str, int]:
    """For every question key, one of the answers it has, drawn at random: the bias to plant."""
    seen: dict[str, set] = defaultdict(set)
    for key, a in zip(keys, torch.as_tensor(answers).tolist()):
        seen[key].add(a)
    rng = np.random.default_rng(seed)
    return {key: int(rng.choice(sorted(seen[key]))) for key in sorted(seen)}


def biased_rows(keys: Sequence[str], answers: Sequence[int] | Tensor, dominant: dict[str, int],
                share: float, seed: int) -> list[int]:
    """Rows where each key's dominant answer makes up `share` of the key's questions.

    All rows with the dominant answer are kept, and just enough of the others (at random)
    that they make up 1 - share; a key whose dominant answer is missing keeps nothing.
    So the question alone predicts the answer `share` of the time, as in VQA-CP's shifted priors.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    groups = _rows_by_key_and_answer(keys, answers)
    rng = np.random.default_rng(seed)
    keep = []
    for key, by_answer in groups.items():
        main = by_answer.get(dominant.get(key), [])
        others = [r for a, rows in by_answer.items() if a != dominant.get(key) for r in rows]
        n_other = min(len(others), int(round(len(main) * (1 - share) / share)))
        keep += main + [int(r) for r in rng.choice(others, n_other, replace=False)] if main else []
    return sorted(keep)


def balanced_rows(keys: Sequence[str], answers: Sequence[int] | Tensor, seed: int) -> list[int]:
    """Rows where every answer a key has occurs equally often (the rarest answer's count),
    so that the question alone predicts nothing beyond which answers are possible."""
    rng = np.random.default_rng(seed)
    keep = []
    for by_answer in _rows_by_key_and_answer(keys, answers).values():
        n = min(len(rows) for rows in by_answer.values())
        for rows in by_answer.values():
            keep += [int(r) for r in rng.choice(rows, n, replace=False)]
    return sorted(keep)


def _rows_by_key_and_answer(keys, answers) -> dict[str, dict[int, list[int]]]:
    answers = torch.as_tensor(answers).tolist()
    if len(keys) != len(answers):
        raise ValueError(f"{len(keys)} keys but {len(answers)} answers")
    groups: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row, (key, a) in enumerate(zip(keys, answers)):
        groups[key][a].append(row)
    return {k: dict(v) for k, v in sorted(groups.items())}
