"""SoundNet in small (notebook 07): a visual teacher teaches a sound student, no labels needed.

    teacher (ImageCNN, trained on stamp images, then frozen)
        scene image ──> p_obj (family of the objects), p_cat (top category)
    student (WaveformCNN on the raw waveform, SoundNet's shape scaled down)
        the scene's soundtrack ──> q_obj, q_cat
    loss = KL(p_obj || q_obj) + KL(p_cat || q_cat)

The teacher's soft outputs on unlabelled "videos" (a picture and its sound) are the only
targets. The student's intermediate layers then serve as general sound features: pooled
over time, a linear classifier on few labels uses them for a new task (`transfer_features`).
`few_shot_episodes` redraws those few labels many times, so that a comparison rests on more
than one lucky draw.
Aytar, Vondrick and Torralba, "SoundNet", NeurIPS 2016.
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse import encoders, training
from mmcourse.data.cache import model_cache_path
from mmcourse.data.sound_scenes import place, random_offset
from mmcourse.encoders import ImageCNN, WaveformCNN
from mmcourse.runtime import item_rng
from mmcourse.training import History, fit, make_loader

# (kernel, stride, max-pool) per layer: SoundNet's five-layer shape with a stride of 4 in the
# first layer, which makes 8 kHz clips four times cheaper than the encoder's default on a CPU.
STUDENT_LAYERS = ((32, 4, 4), (16, 2, 4), (8, 2, 1), (8, 2, 1), (4, 2, 1))
TRANSFER_LAYER = 3  # conv4: mid-level, like SoundNet's pool5 (the last layers fit the teacher's classes)


def teacher_classes(families: Sequence[str], top_categories: Sequence[str],
                    min_count: int = 5) -> tuple[list[str], list[str]]:
    """The teacher's two label sets: families with at least `min_count` pictures (rarer ones
    train only the category head) and every top category. Both sorted."""
    counts = Counter(families)
    return sorted(f for f, n in counts.items() if n >= min_count), sorted(set(top_categories))


def label_index(values: Sequence[str], classes: Sequence[str]) -> Tensor:
    """Class indices [N] of `values` in `classes`; -1 where a value is not a class (ignored by losses)."""
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index.get(v, -1) for v in values], dtype=torch.long)


# ---------------------------------------------------------------- teacher

class Teacher(nn.Module):
    """An image CNN with two heads: the object's family and its top category (SoundNet used
    ImageNet objects and Places scenes; a stamp has a family and a top category)."""

    def __init__(self, n_objects: int, n_categories: int, width: int = 16, depth: int = 4):
        super().__init__()
        self.cnn = ImageCNN(width, depth)
        self.objects = nn.Linear(self.cnn.channels, n_objects)
        self.categories = nn.Linear(self.cnn.channels, n_categories)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:  # [B, 3, H, W] -> logits [B, K_obj], [B, K_cat]
        h = self.cnn.pooled(images)
        return self.objects(h), self.categories(h)


def teacher_step(model: nn.Module, batch) -> tuple[Tensor, dict]:
    """Cross-entropy on both heads; labels [B, 2] = (family, top category), -1 = no such class."""
    images, labels = batch
    obj, cat = model(images)
    loss = F.cross_entropy(obj, labels[:, 0], ignore_index=-1) + F.cross_entropy(cat, labels[:, 1], ignore_index=-1)
    return loss, {"acc_obj": _accuracy(obj, labels[:, 0]), "acc_cat": _accuracy(cat, labels[:, 1])}


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    known = labels >= 0
    return (logits.argmax(-1)[known] == labels[known]).float().mean().item() if known.any() else float("nan")


@torch.no_grad()
def soft_targets(teacher: nn.Module, images: Tensor, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """The frozen teacher's probabilities on uint8 or float images [N, 3, H, W] -> ([N, K_obj], [N, K_cat])."""
    teacher.eval()
    device = next(teacher.parameters()).device
    obj, cat = [], []
    for chunk in images.split(batch_size):
        chunk = chunk.to(device)
        o, c = teacher(chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk)
        obj.append(o.softmax(-1).cpu())
        cat.append(c.softmax(-1).cpu())
    return torch.cat(obj), torch.cat(cat)


# ---------------------------------------------------------------- student

class Student(nn.Module):
    """SoundNet's student: a 1-D CNN on the raw waveform, pooled, with one head per teacher output."""

    def __init__(self, n_objects: int, n_categories: int, width: int = 16,
                 layers: Sequence[tuple[int, int, int]] = STUDENT_LAYERS):
        super().__init__()
        self.encoder = WaveformCNN(width, layers)
        self.objects = nn.Linear(self.encoder.out_dim, n_objects)
        self.categories = nn.Linear(self.encoder.out_dim, n_categories)

    def forward(self, wave: Tensor) -> tuple[Tensor, Tensor]:  # [B, T] -> logits [B, K_obj], [B, K_cat]
        h = self.encoder(wave)
        return self.objects(h), self.categories(h)


def kl_distillation(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """KL(teacher || student) averaged over the batch:

        (1/B) sum_b sum_k p_bk (log p_bk - log q_bk),   q = softmax(student_logits)

    Classes the teacher gives probability 0 add nothing (0 log 0 = 0).
    """
    if student_logits.shape != teacher_probs.shape or student_logits.dim() != 2:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher probabilities "
                         f"{tuple(teacher_probs.shape)} must both be [B, K]")
    log_q = student_logits.log_softmax(-1)
    log_p = teacher_probs.clamp_min(torch.finfo(teacher_probs.dtype).tiny).log()
    return torch.where(teacher_probs > 0, teacher_probs * (log_p - log_q), 0.0).sum(-1).mean()


def top1_agreement(student_logits: Tensor, teacher_probs: Tensor) -> float:
    """Share of clips where the student's most likely class is the teacher's."""
    return (student_logits.argmax(-1) == teacher_probs.argmax(-1)).float().mean().item()


def distill_step(model: nn.Module, batch) -> tuple[Tensor, dict]:
    """Batch = (waves [B, T], teacher object probs [B, K_obj], teacher category probs [B, K_cat])."""
    wave, p_obj, p_cat = batch
    q_obj, q_cat = model(wave)
    loss = kl_distillation(q_obj, p_obj) + kl_distillation(q_cat, p_cat)
    return loss, {"agree_obj": top1_agreement(q_obj, p_obj), "agree_cat": top1_agreement(q_cat, p_cat)}


@torch.no_grad()
def predict(model: nn.Module, waves: Tensor, batch_size: int = 256) -> tuple[Tensor, ...]:
    """`model` in eval mode on waves [N, T], batch by batch -> its outputs concatenated (on the CPU)."""
    model.eval()
    device = next(model.parameters()).device
    outs = [model(chunk.to(device)) for chunk in waves.split(batch_size)]
    if isinstance(outs[0], Tensor):
        return torch.cat(outs).cpu()
    return tuple(torch.cat([o[i] for o in outs]).cpu() for i in range(len(outs[0])))


# ---------------------------------------------------------------- transfer

@torch.no_grad()
def transfer_features(encoder: WaveformCNN, waves: Tensor, layer: int = TRANSFER_LAYER,
                      batch_size: int = 256) -> np.ndarray:
    """Layer `layer` of a waveform encoder, averaged over time -> float [N, C_layer] for scikit-learn."""
    encoder.eval()
    device = next(encoder.parameters()).device
    return torch.cat([encoder.pooled(chunk.to(device), layer).cpu()
                      for chunk in waves.split(batch_size)]).numpy()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, seed: int = 0):
    """Standardised features -> multinomial logistic regression (scikit-learn), fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed)).fit(train_x, train_y)


class SoundClassifier(nn.Module):
    """The student's encoder with one linear head, trained from scratch on labelled sounds (the baseline)."""

    def __init__(self, n_classes: int, width: int = 16, layers: Sequence[tuple[int, int, int]] = STUDENT_LAYERS):
        super().__init__()
        self.encoder = WaveformCNN(width, layers, out_dim=n_classes)

    def forward(self, wave: Tensor) -> Tensor:  # [B, T] -> logits [B, n_classes]
        return self.encoder(wave)


def classify_step(model: nn.Module, batch) -> tuple[Tensor, dict]:
    wave, labels = batch
    logits = model(wave)
    return F.cross_entropy(logits, labels), {"acc": _accuracy(logits, labels)}


@torch.no_grad()
def most_exciting(encoder: WaveformCNN, waves: Tensor, units: Sequence[int], layer: int = TRANSFER_LAYER,
                  k: int = 3) -> Tensor:
    """For each unit (channel) of `layer`, the indices of the `k` waves that excite it most
    (largest activation over time) -> long [len(units), k]."""
    encoder.eval()
    device = next(encoder.parameters()).device
    peak = torch.cat([encoder.feature_maps(chunk.to(device))[layer].amax(-1).cpu()
                      for chunk in waves.split(256)])                          # [N, C]
    return peak[:, list(units)].T.topk(k, dim=-1).indices


def units_with_distinct_favourites(peaks: Tensor, n: int) -> list[int]:
    """From peak responses [N sounds, C units]: the `n` units whose peaks vary most across the
    sounds, skipping a unit whose favourite sound (its argmax) an earlier pick already has."""
    picked, favourites = [], set()
    for unit in peaks.std(0).argsort(descending=True).tolist():
        favourite = int(peaks[:, unit].argmax())
        if favourite not in favourites:
            picked.append(unit)
            favourites.add(favourite)
        if len(picked) == n:
            break
    return picked


def few_shot_episodes(labels: Sequence[str | None], groups: Sequence, shots: int, n_episodes: int,
                      seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n_episodes` random draws of one few-shot task over a pool of rows.

    In each episode `shots` groups of every label are labelled and every other row with a label
    is scored. A group (a stamp and those linked to it by shared content) is never on both
    sides. -> [(labelled row indices, scored row indices)], each sorted.
    """
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups: give one group per row")
    group_label: dict = {}
    for label, group in zip(labels, groups):
        if group_label.setdefault(group, label) != label:
            raise ValueError(f"group {group!r} holds rows of two labels; give every row of a group one label")
    by_label: dict = {}
    for group, label in group_label.items():
        if label is not None:
            by_label.setdefault(label, []).append(group)
    for label, members in by_label.items():
        if len(members) <= shots:
            raise ValueError(f"label {label!r} has {len(members)} groups: too few for {shots} labelled "
                             f"and at least one scored; lower shots")
    rng = np.random.default_rng(seed)
    groups_arr = np.array(groups, dtype=object)
    known = np.array([label is not None for label in labels])
    episodes = []
    for _ in range(n_episodes):
        picked = {g for label in sorted(by_label) for g in rng.permutation(sorted(by_label[label]))[:shots]}
        labelled = np.array([g in picked for g in groups_arr])
        episodes.append((np.flatnonzero(labelled), np.flatnonzero(~labelled & known)))
    return episodes


# ---------------------------------------------------------------- AV digits: classes that repeat

class DigitTeacher(nn.Module):
    """The handwriting teacher of AV digits: two conv blocks over 28 x 28 pixels, a hidden layer
    on the 7 x 7 map, ten digits. The hidden layer sees the whole map (a 7 x 7 convolution in
    disguise), so the same weights can slide over a larger scene."""

    def __init__(self, width: int = 16, hidden: int = 64, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.hidden = nn.Linear(2 * width * 7 * 7, hidden)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, images: Tensor) -> Tensor:  # [B, 1, 28, 28] in [0, 1] -> logits [B, n_classes]
        return self.out(F.relu(self.hidden(self.features(images).flatten(1))))

    def hidden_map(self, images: Tensor) -> Tensor:  # [B, 1, H, W] -> [B, hidden, H / 4, W / 4]
        """The hidden layer slid over a picture of any size: its weights as a 7 x 7 convolution,
        so each cell sees a 28-pixel window centred on it (zero beyond the border). On a 28 x 28
        digit the middle cell, (3, 3), is exactly the hidden layer of `forward`."""
        features = self.features(images)
        kernel = self.hidden.weight.view(len(self.hidden.weight), features.shape[1], 7, 7)
        return F.relu(F.conv2d(features, kernel, self.hidden.bias, padding=3))


def digit_batch(images: np.ndarray | Tensor) -> Tensor:
    """uint8 digits [N, 28, 28] -> float [N, 1, 28, 28] in [0, 1]."""
    images = torch.as_tensor(images)
    return (images.float() / 255 if images.dtype == torch.uint8 else images.float()).unsqueeze(1)


@torch.no_grad()
def teacher_probs(teacher: nn.Module, images: np.ndarray | Tensor, temperature: float = 1.0,
                  batch_size: int = 512) -> Tensor:
    """The frozen teacher's softened output softmax(logits / T) on digits [N, 28, 28] -> [N, 10].

    T > 1 spreads the probability over the digits a picture resembles (Hinton et al.'s "dark
    knowledge"): a sloppy 7 also looks a little like a 1, and the student hears that.
    """
    teacher.eval()
    device = next(teacher.parameters()).device
    x = digit_batch(images)
    return torch.cat([(teacher(chunk.to(device)) / temperature).softmax(-1).cpu()
                      for chunk in x.split(batch_size)])


class SpokenPairs(torch.utils.data.Dataset):
    """Unlabelled "videos" of AV digits: (a spoken word at a random place in a clip of `length`
    samples, the teacher's output on a random handwritten picture of the same digit).

    The digit only decides which pictures may go with a word, as a video of someone writing and
    saying it would; the student sees the teacher's output, never the digit. Every access draws
    a new picture and a new place (`runtime.item_rng`).
    """

    def __init__(self, words: Sequence[np.ndarray], word_digits: Sequence[int], picture_probs: Tensor,
                 picture_digits: Sequence[int], length: int):
        if len(words) != len(word_digits) or len(picture_probs) != len(picture_digits):
            raise ValueError(f"{len(words)} words with {len(word_digits)} digits, {len(picture_probs)} "
                             f"pictures with {len(picture_digits)} digits: give one digit each")
        self.words, self.word_digits, self.probs, self.length = list(words), list(word_digits), picture_probs, length
        self.pictures_of = {d: np.flatnonzero(np.asarray(picture_digits) == d) for d in set(word_digits)}
        missing = [d for d, rows in self.pictures_of.items() if len(rows) == 0]
        if missing:
            raise ValueError(f"no handwritten picture of digit(s) {missing} to pair with their words")

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        rng = item_rng()
        return _shifted(self.words[i], self.length, rng), self.probs[rng.choice(self.pictures_of[self.word_digits[i]])]


class ShiftedWords(torch.utils.data.Dataset):
    """Labelled words for training from scratch: (the word at a new random place in a clip of
    `length` samples at every access, its label)."""

    def __init__(self, words: Sequence[np.ndarray], labels: Sequence[int], length: int):
        if len(words) != len(labels):
            raise ValueError(f"{len(words)} words but {len(labels)} labels: give one label per word")
        self.words, self.labels, self.length = list(words), torch.as_tensor(np.asarray(labels), dtype=torch.long), length

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return _shifted(self.words[i], self.length, item_rng()), self.labels[i]


def _shifted(word: np.ndarray, length: int, rng: np.random.Generator) -> Tensor:
    return torch.from_numpy(place(np.asarray(word, dtype=np.float32), random_offset(len(word), length, rng), length))


def kd_step(model: nn.Module, batch) -> tuple[Tensor, dict]:
    """Batch = (waves [B, T], teacher probabilities [B, K]): KL to the teacher, and top-1 agreement."""
    wave, probs = batch
    logits = model(wave)
    return kl_distillation(logits, probs), {"agree": top1_agreement(logits, probs)}


def train_digit_teacher(pictures: dict[str, tuple[np.ndarray, np.ndarray]], *, seed: int, epochs: int,
                        device: torch.device | str, batch_size: int = 64, lr: float = 3e-3) -> tuple[DigitTeacher, History]:
    """AV digits' teacher trained on labelled handwriting, then frozen; cached (`model_cache_path`).

    `pictures` maps "train" and "validation" to (uint8 digits [N, 28, 28], labels [N]). Notebook 07
    trains it and notebook 10 reuses it: the same arguments, code and data find the same
    checkpoint, which `fit` resumes without training again.
    """
    recipe = (sys.modules[__name__], encoders, training, *pictures["train"], *pictures["validation"], seed, epochs,
              batch_size, lr, str(torch.device(device).type), torch.backends.cpu.get_cpu_capability())
    labelled = {name: torch.utils.data.TensorDataset(digit_batch(x), torch.from_numpy(np.asarray(y)))
                for name, (x, y) in pictures.items() if name in ("train", "validation")}
    torch.manual_seed(seed)
    teacher = DigitTeacher()
    opt = torch.optim.AdamW(teacher.parameters(), lr=lr)
    history = fit(teacher, make_loader(labelled["train"], batch_size, shuffle=True, seed=seed, drop_last=True),
                  classify_step, epochs=epochs, optimizer=opt, val_loader=make_loader(labelled["validation"], 256),
                  device=device, scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs),
                  checkpoint=model_cache_path("av-digit-teacher", recipe))
    return teacher.requires_grad_(False).eval(), history


def distil_digit_student(teacher: DigitTeacher, words: Mapping, pictures: dict[str, tuple[np.ndarray, np.ndarray]], *,
                         seed: int, epochs: int, width: int, temperature: float, length: int,
                         device: torch.device | str, batch_size: int = 64, lr: float = 3e-3) -> tuple[SoundClassifier, History]:
    """The waveform student distilled from `teacher` on unlabelled pairs (`SpokenPairs`); cached.

    `words` maps "train" and "validation" to spoken-digit tables (`av_digits.voice_splits`),
    `pictures` the same splits to handwriting (uint8 [N, 28, 28], labels [N]): each word meets
    random pictures of its digit from its own split. Watched on every fourth validation word.
    """
    recipe = (sys.modules[__name__], encoders, training, teacher.state_dict(),
              *(np.asarray(words[n]["audio_sha"]) for n in ("train", "validation")),
              *pictures["train"], *pictures["validation"], seed, epochs, width, temperature, length, batch_size, lr,
              str(torch.device(device).type), torch.backends.cpu.get_cpu_capability())

    def pairs(name: str, every: int = 1) -> SpokenPairs:
        chosen = words[name].select(range(0, len(words[name]), every))
        return SpokenPairs(list(chosen.with_format("numpy")["wave"]), chosen["label"],
                           teacher_probs(teacher, pictures[name][0], temperature), pictures[name][1], length)

    torch.manual_seed(seed)
    student = SoundClassifier(10, width=width)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=1e-2)
    history = fit(student, make_loader(pairs("train"), batch_size, shuffle=True, seed=seed, drop_last=True), kd_step,
                  epochs=epochs, optimizer=opt, val_loader=make_loader(pairs("validation", every=4), 256), device=device,
                  scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs),
                  checkpoint=model_cache_path("av-digit-student", recipe))
    return student.eval(), history


def shots_per_class(labels: Sequence[int], shots: int, n_episodes: int, seed: int = 0) -> list[np.ndarray]:
    """`n_episodes` draws of `shots` rows of every class from a pool -> sorted row indices each."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < shots:
        raise ValueError(f"class {classes[counts.argmin()]!r} has {counts.min()} rows, fewer than shots={shots}")
    rng = np.random.default_rng(seed)
    return [np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), shots, replace=False) for c in classes]))
            for _ in range(n_episodes)]
