"""Visual question answering (notebook 05): an image vector and a question vector, fused.

The lecture's model (Antol et al., 2015) reads the image with a CNN and the question with
an LSTM, projects both into one space, multiplies them element by element and classifies
the product over a fixed set of answers. The baselines the lecture's "bias toward the easy
modality" needs differ only in what reaches the classifier:

    fusion="product"   tanh(W_i v) * tanh(W_q q)       the lecture's model
    fusion="concat"    [tanh(W_i v), tanh(W_q q)]       concatenation instead of interaction
    fusion="question"  tanh(W_q q)                      blind: the question only
    fusion="image"     tanh(W_i v)                      deaf: the image only

Data comes as a `datasets.Dataset` with one row per question and the columns of easy-VQA
(`image, question, answer, question_type, image_id`; VQA v2 fits after choosing its top
answers). `encode_vqa` turns it into tensors, and `QuestionsByImage` batches whole images
with all their questions, so the CNN runs once per image rather than once per question.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset

from mmcourse.encoders import ImageCNN, TextEncoder
from mmcourse.text import Vocab

FUSIONS = ("product", "concat", "question", "image")


# ------------------------------------------------------------------ data as tensors

@dataclass
class VQATensors:
    """One split as tensors: each distinct image once, each question once.

    images [N, 3, S, S] uint8; image_of [Q] (row of `images` each question is about);
    ids [Q, L] and lengths [Q] (the question's tokens); answers [Q] (index into the answer
    list); types and questions (Q strings each) for per-type accuracy and for showing examples.
    """

    images: Tensor
    image_of: Tensor
    ids: Tensor
    lengths: Tensor
    answers: Tensor
    types: list[str]
    questions: list[str]

    def __len__(self) -> int:
        return len(self.answers)


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
    index = {a: i for i, a in enumerate(answers)}
    unknown = sorted(set(rows["answer"]) - set(index))
    if unknown:
        raise ValueError(f"answers {unknown[:5]} are not in the answer list; keep only rows whose "
                         "answer is in it (e.g. rows.filter(lambda a: a in answers, input_columns='answer'))")
    image_ids = rows["image_id"]
    first: dict = {}
    for row, image_id in enumerate(image_ids):
        first.setdefault(image_id, row)
    pictures = rows.select_columns(["image"]).select(list(first.values()))["image"]
    position = {image_id: k for k, image_id in enumerate(first)}
    ids, lengths = vocab.encode_batch(rows["question"])
    return VQATensors(
        images=torch.stack([_image_tensor(p, size) for p in pictures]),
        image_of=torch.tensor([position[i] for i in image_ids]),
        ids=ids, lengths=lengths,
        answers=torch.tensor([index[a] for a in rows["answer"]]),
        types=list(rows["question_type"]), questions=list(rows["question"]))


def subset(data: VQATensors, rows: Sequence[int]) -> VQATensors:
    """The same split with only the questions in `rows` (images are kept; unused ones cost nothing)."""
    rows = torch.as_tensor(rows, dtype=torch.long)
    keep = rows.tolist()
    return VQATensors(data.images, data.image_of[rows], data.ids[rows], data.lengths[rows],
                      data.answers[rows], [data.types[i] for i in keep], [data.questions[i] for i in keep])


class QuestionsByImage(Dataset):
    """Item i = the i-th image that has questions, with all of its questions.

    Batching images rather than questions runs the CNN once per image: easy-VQA asks about
    ten questions of each image, so an epoch costs a tenth of the convolutions.
    """

    def __init__(self, data: VQATensors):
        by_image: dict[int, list[int]] = defaultdict(list)
        for q, i in enumerate(data.image_of.tolist()):
            by_image[i].append(q)
        self.data, self.groups = data, list(by_image.items())

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> tuple[int, list[int]]:
        return self.groups[k]

    def collate(self, items: list[tuple[int, list[int]]]) -> dict[str, Tensor]:
        """Images [B, 3, S, S] in [0, 1], their questions ids [Q, L], lengths [Q], owner [Q], answers [Q]."""
        d = self.data
        rows = torch.tensor([q for _, qs in items for q in qs])
        owner = torch.cat([torch.full((len(qs),), b) for b, (_, qs) in enumerate(items)])
        longest = int(d.lengths[rows].max())
        return {"images": d.images[[i for i, _ in items]].float() / 255.0,
                "ids": d.ids[rows, :longest], "lengths": d.lengths[rows], "owner": owner,
                "answers": d.answers[rows], "rows": rows}


# ------------------------------------------------------------------ models

class VQAModel(nn.Module):
    """CNN image vector and LSTM question vector, projected to `dim`, fused, classified.

    The image vector is L2-normalised before its projection, as in the paper (where it is
    VGG's fc7); both projections end in tanh. The classifier is a one-hidden-layer MLP.
    Only the parts a fusion uses are built: the question-only model has no CNN.
    """

    def __init__(self, vocab_size: int, num_answers: int, fusion: str = "product", width: int = 8,
                 depth: int = 4, dim: int = 128, embed_dim: int = 32, hidden: int = 64, dropout: float = 0.1):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.fusion = fusion
        if fusion != "question":
            self.image_encoder = ImageCNN(width, depth)
            self.image_proj = nn.Linear(self.image_encoder.channels, dim)
        if fusion != "image":
            self.question_encoder = TextEncoder(vocab_size, embed_dim, hidden, rnn="lstm")
            self.question_proj = nn.Linear(self.question_encoder.out_dim, dim)
        fused = 2 * dim if fusion == "concat" else dim
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused, dim), nn.ReLU(),
                                        nn.Linear(dim, num_answers))

    def encode_image(self, images: Tensor) -> Tensor:  # [B, 3, S, S] -> [B, dim]
        pooled = F.normalize(self.image_encoder.pooled(images), dim=-1)
        return torch.tanh(self.image_proj(pooled))

    def encode_question(self, ids: Tensor, lengths: Tensor) -> Tensor:  # [Q, L] -> [Q, dim]
        _, vector = self.question_encoder(ids, lengths)
        return torch.tanh(self.question_proj(vector))

    def forward(self, images: Tensor, ids: Tensor, lengths: Tensor, owner: Tensor) -> Tensor:
        """Answer logits [Q, A] for Q questions about B images; `owner[q]` is question q's image."""
        if owner.shape != lengths.shape or ids.shape[0] != owner.shape[0]:
            raise ValueError(f"ids {tuple(ids.shape)}, lengths {tuple(lengths.shape)} and owner "
                             f"{tuple(owner.shape)} must all have one entry per question")
        if self.fusion == "question":
            return self.classifier(self.encode_question(ids, lengths))
        image = self.encode_image(images)[owner]                        # [Q, dim]
        if self.fusion == "image":
            return self.classifier(image)
        question = self.encode_question(ids, lengths)                   # [Q, dim]
        fused = image * question if self.fusion == "product" else torch.cat([image, question], dim=-1)
        return self.classifier(fused)


def vqa_step(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """Cross-entropy over the answers, and the batch's accuracy."""
    logits = model(batch["images"], batch["ids"], batch["lengths"], batch["owner"])
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
        logits = model(*(batch[k].to(device) for k in ("images", "ids", "lengths", "owner")))
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
