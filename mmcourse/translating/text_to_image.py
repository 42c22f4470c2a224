"""Text to image (notebook 04): a conditional GAN whose discriminator also reads the text (GAN-INT-CLS).

Reed et al. (2016) condition a DCGAN on a sentence vector: the generator draws from noise
plus a projection of the text; the discriminator sees the image *and* the text (replicated
over its feature map) and learns three things: a real image with its own text is real, a
generated image is fake, and a real image with the *wrong* text is fake too (the
matching-aware term, "-CLS"). The generator also learns from texts halfway between two
captions ("-INT"), which fills the text space between the training captions. A mode-seeking
term (Mao et al., 2019) keeps two noises from drawing the same picture.

An independent classifier (`Judge`: a colour head and a shape head, trained on real images)
says what a generated image shows, so "does the picture match the text?" becomes a number.

Data: easy-VQA's images of one coloured shape, captioned from their colour and shape (read off
their questions) and their size (measured on the pixels): "a small blue circle".
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage
from PIL import ImageFilter
from torch import Tensor, nn
from tqdm.auto import tqdm

from mmcourse.data.cache import cached_dataset
from mmcourse.data.easyvqa import COLORS, SHAPES, image_facts, load_easy_vqa
from mmcourse.data.splits import content_hash
from mmcourse.encoders import ImageCNN, image_batch

SIZES = ("small", "large")
TEMPLATES = ("a {size} {color} {shape}", "a {color} {shape}", "there is a {size} {color} {shape}",
             "a {shape} that is {color}", "one {color} {shape} on a light background")

FEATURES = Features({
    "image": Image(),                  # PIL RGB, 64x64: one coloured shape
    "color": Value("string"),          # one of COLORS
    "shape": Value("string"),          # one of SHAPES
    "size": Value("string"),           # "small" or "large": the shape's area against the median
    "captions": List(Value("string")),  # paraphrases written from color, shape and size
    "image_id": Value("int32"),        # easy-VQA's image id within its split
    "image_sha": Value("string"),      # hash of the image's pixels
})


# ------------------------------------------------------------------ data

def captions(color: str, shape: str, size: str) -> list[str]:
    """Every paraphrase of one image's facts: 'a small blue circle', 'a circle that is blue', ..."""
    return [t.format(color=color, shape=shape, size=size) for t in TEMPLATES]


def shape_area(image: PILImage.Image) -> float:
    """Share of the pixels that differ clearly from the background (the commonest border colour:
    a shape may touch a corner, it never covers most of the border)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return float((np.abs(pixels - colours[counts.argmax()]).sum(-1) > 60).mean())


def caption_split(rows: Dataset, threshold: float | None = None) -> tuple[Dataset, float]:
    """One row per image of an easy-VQA split with both facts known (FEATURES), and the size threshold.

    `threshold` (the median area, from the training split) divides small from large shapes.
    """
    facts = image_facts(rows)
    table = rows.select_columns(["image_id"]).to_dict()["image_id"]
    first: dict = {}
    for row, image_id in enumerate(table):
        if None not in facts[image_id].values():
            first.setdefault(image_id, row)
    pictures = [p["image"].convert("RGB") for p in rows.select_columns(["image"]).select(list(first.values()))]
    areas = [shape_area(p) for p in pictures]
    threshold = float(np.median(areas)) if threshold is None else threshold
    out = {key: [] for key in FEATURES}
    for image_id, picture, area in zip(first, pictures, areas):
        color, shape = facts[image_id]["color"], facts[image_id]["shape"]
        size = SIZES[area > threshold]
        out["image"].append(picture), out["color"].append(color), out["shape"].append(shape)
        out["size"].append(size), out["captions"].append(captions(color, shape, size))
        out["image_id"].append(image_id), out["image_sha"].append(content_hash(picture.tobytes()))
    return Dataset.from_dict(out, features=FEATURES), threshold


def load_captioned_shapes(rebuild: bool = False) -> DatasetDict:
    """easy-VQA's train and test images with captions (FEATURES), built once and cached."""
    def build() -> DatasetDict:
        ds = load_easy_vqa()
        train, threshold = caption_split(ds["train"])
        return DatasetDict(train=train, test=caption_split(ds["test"], threshold)[0])
    return cached_dataset("captioned-shapes", build, (sys.modules[__name__],), rebuild)


def make_splits(seed: int, heldout: Sequence[tuple[str, str]], val_fraction: float = 0.1) -> DatasetDict:
    """train / validation / test / heldout: the (colour, shape) pairs in `heldout` leave the
    training images entirely (they form "heldout"); validation is a share of the other
    training images; test is easy-VQA's test set (all pairs)."""
    ds = load_captioned_shapes()
    pairs = list(zip(ds["train"]["color"], ds["train"]["shape"]))
    missing = set(heldout) - set(pairs)
    if missing:
        raise ValueError(f"held-out pairs {sorted(missing)} never occur; use (colour, shape) from {COLORS} x {SHAPES}")
    held = [i for i, p in enumerate(pairs) if p in set(heldout)]
    rest = [i for i, p in enumerate(pairs) if p not in set(heldout)]
    order = np.random.default_rng(seed).permutation(len(rest))
    n_val = round(val_fraction * len(rest))
    val = sorted(rest[i] for i in order[:n_val])
    train = sorted(rest[i] for i in order[n_val:])
    return DatasetDict(train=ds["train"].select(train), validation=ds["train"].select(val),
                       test=ds["test"], heldout=ds["train"].select(held))


def to_tensor(images: Sequence[PILImage.Image], size: int) -> Tensor:
    """PIL images -> float [N, 3, size, size] in [-1, 1] (the generator's tanh range)."""
    return image_batch(images, size) * 2 - 1


def all_captions() -> list[str]:
    """Every distinct caption of every colour x shape x size: the rows of the text-vector table."""
    return sorted({c for color, shape, size in itertools.product(COLORS, SHAPES, SIZES)
                   for c in captions(color, shape, size)})


@dataclass
class Encoded:
    """One split as tensors: what the GAN and the judge read."""

    images: Tensor       # [N, 3, S, S] in [-1, 1]
    caption_ids: Tensor  # [N, P] each image's paraphrases, as rows of the caption table
    color: Tensor        # [N] index into COLORS
    shape: Tensor        # [N] index into SHAPES


def encode(rows: Dataset, size: int, caption_table: Sequence[str]) -> Encoded:
    """Tensors of a captioned split (FEATURES columns image, captions, color, shape) at `size` px."""
    index = {c: i for i, c in enumerate(caption_table)}
    unknown = {c for caps in rows["captions"] for c in caps} - set(index)
    if unknown:
        raise ValueError(f"captions missing from the caption table, e.g. {sorted(unknown)[:3]}; "
                         "build the table from every caption (all_captions())")
    return Encoded(to_tensor(list(rows["image"]), size),
                   torch.tensor([[index[c] for c in caps] for caps in rows["captions"]]),
                   torch.tensor([COLORS.index(c) for c in rows["color"]]),
                   torch.tensor([SHAPES.index(s) for s in rows["shape"]]))


def caption_labels(caption_table: Sequence[str]) -> tuple[Tensor, Tensor]:
    """The colour and shape index [K] each caption names (read off its words)."""
    color = [next(i for i, c in enumerate(COLORS) if c in caption.split()) for caption in caption_table]
    shape = [next(i for i, s in enumerate(SHAPES) if s in caption.split()) for caption in caption_table]
    return torch.tensor(color), torch.tensor(shape)


def standardise(vectors: Tensor, reference: Tensor) -> Tensor:
    """(vectors - mean) / std per dimension, with the statistics of `reference` (training captions).

    MiniLM's vectors of "a red circle" and "a blue circle" differ by a few hundredths per
    dimension; standardised, the differences are of order one and the networks can use them.
    """
    mean, std = reference.mean(0), reference.std(0).clamp(min=1e-6)
    return (vectors - mean) / std


# ------------------------------------------------------------------ the GAN

class TextBatchNorm(nn.Module):
    """BatchNorm whose gain and shift are computed from the text (conditional batch norm):
    the text can then change every feature map of the generator, not only its first input."""

    def __init__(self, channels: int, text_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(text_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight), nn.init.zeros_(self.affine.bias)  # starts as plain BN

    def forward(self, x: Tensor, text: Tensor) -> Tensor:  # [B, C, H, W], [B, T]
        gain, shift = self.affine(text)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + gain) + shift


class Generator(nn.Module):
    """DCGAN generator: [noise; projected text] -> 4x4 map -> transposed convs -> image in [-1, 1].

    With `text_norm`, every BatchNorm takes its gain and shift from the projected text."""

    def __init__(self, text_dim: int, noise_dim: int = 32, text_proj: int = 64, width: int = 32, size: int = 16,
                 text_norm: bool = False):
        super().__init__()
        ups = int(np.log2(size // 4))
        if 4 * 2 ** ups != size:
            raise ValueError(f"size must be 4 times a power of two (8, 16, 32, 64), got {size}")
        self.noise_dim = noise_dim
        self.project_text = nn.Sequential(nn.Linear(text_dim, text_proj), nn.LeakyReLU(0.2))
        channels = [width * 2 ** (ups - i) for i in range(ups + 1)]  # e.g. [4w, 2w, w]
        self.start = nn.Sequential(nn.Linear(noise_dim + text_proj, channels[0] * 16),
                                   nn.Unflatten(1, (channels[0], 4, 4)))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
                                 for c_in, c_out in zip(channels, channels[1:]))
        norm = (lambda c: TextBatchNorm(c, text_proj)) if text_norm else nn.BatchNorm2d
        self.norms = nn.ModuleList(norm(c) for c in channels)
        self.text_norm = text_norm
        self.to_rgb = nn.Sequential(nn.Conv2d(channels[-1], 3, 3, padding=1), nn.Tanh())

    def forward(self, noise: Tensor, text: Tensor) -> Tensor:  # [B, Z], [B, T] -> [B, 3, S, S]
        text = self.project_text(text)
        x = self.start(torch.cat([noise, text], dim=1))
        for i, norm in enumerate(self.norms):
            if i:
                x = self.ups[i - 1](x)
            x = F.relu(norm(x, text) if self.text_norm else norm(x))
        return self.to_rgb(x)


class Discriminator(nn.Module):
    """DCGAN discriminator that also reads the text: strided convs down to a 4x4 map, the
    projected text vector replicated over those 4x4 positions and concatenated, then a 1x1 conv
    and a linear layer to one real/fake logit per (image, text) pair.

    `forward(images, *texts)` reads the images once and scores them against each text: the
    matching-aware loss asks about a real image with its right and a wrong text, and its
    BatchNorm then sees real images only (and fakes only in another call), as in DCGAN."""

    def __init__(self, text_dim: int, text_proj: int = 64, width: int = 32, size: int = 16):
        super().__init__()
        downs = int(np.log2(size // 4))
        channels = [3] + [width * 2 ** i for i in range(downs)]
        blocks = []
        for i, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
            blocks += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
            blocks += [nn.BatchNorm2d(c_out)] if i else []  # DCGAN: no normalisation on the input layer
            blocks += [nn.LeakyReLU(0.2)]
        self.blocks = nn.Sequential(*blocks)
        self.project_text = nn.Sequential(nn.Linear(text_dim, text_proj), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(channels[-1] + text_proj, channels[-1], 1), nn.LeakyReLU(0.2),
                                   nn.Flatten(), nn.Linear(channels[-1] * 16, 1))

    def forward(self, images: Tensor, *texts: Tensor) -> Tensor:  # [B, 3, S, S], k x [B, T] -> logits [k, B]
        if not texts:
            raise ValueError("the discriminator scores (image, text) pairs: pass at least one text [B, T]")
        features = self.blocks(images)                                      # [B, C, 4, 4]
        k, (b, _, h, w) = len(texts), features.shape
        text = self.project_text(torch.cat(texts))[:, :, None, None].expand(-1, -1, h, w)  # [k B, P, 4, 4]
        joint = torch.cat([features.repeat(k, 1, 1, 1), text], dim=1)
        return self.joint(joint).view(k, b)


def matching_aware_d_loss(real_right: Tensor, fake_right: Tensor, real_wrong: Tensor | None) -> tuple[Tensor, dict]:
    """The discriminator's loss from its logits; `real_wrong=None` gives the plain conditional GAN.

    GAN-INT-CLS: BCE(real, right text -> 1) + [BCE(fake -> 0) + BCE(real, wrong text -> 0)] / 2.
    Plain:       BCE(real, right text -> 1) + BCE(fake -> 0).
    """
    real = F.binary_cross_entropy_with_logits(real_right, torch.ones_like(real_right))
    fake = F.binary_cross_entropy_with_logits(fake_right, torch.zeros_like(fake_right))
    if real_wrong is None:
        return real + fake, {"d_real": real.item(), "d_fake": fake.item()}
    wrong = F.binary_cross_entropy_with_logits(real_wrong, torch.zeros_like(real_wrong))
    return real + (fake + wrong) / 2, {"d_real": real.item(), "d_fake": fake.item(), "d_wrong": wrong.item()}


def mode_seeking_ratio(images_a: Tensor, images_b: Tensor, noise_a: Tensor, noise_b: Tensor) -> Tensor:
    """Mao et al. (2019): mean |G(z1) - G(z2)| / mean |z1 - z2| per pair, averaged. The generator
    maximises it (adds its inverse to the loss), so different noises give different pictures."""
    image_gap = (images_a - images_b).abs().flatten(1).mean(1)
    noise_gap = (noise_a - noise_b).abs().mean(1)
    return (image_gap / noise_gap.clamp(min=1e-8)).mean()


def shuffled_other(labels: Tensor) -> Tensor:
    """A permutation index where each row points to a row with a different label where one exists
    (the 'wrong text' for each real image); rows whose label is everywhere keep a random partner."""
    n = len(labels)
    perm = torch.randperm(n, device=labels.device)
    for _ in range(3):  # a few re-draws move most clashes
        clash = labels[perm] == labels
        if not clash.any():
            break
        perm[clash] = perm[clash][torch.randperm(int(clash.sum()), device=labels.device)]
    return perm


def train_gan(generator: Generator, discriminator: Discriminator, images: Tensor, caption_ids: Tensor,
              texts: Tensor, labels: Tensor, steps: int, batch_size: int = 64, matching_aware: bool = True,
              interpolate: bool = True, mode_seeking: float = 0.1, lr: float = 1e-3,
              device: torch.device | str = "cpu", log_every: int = 50, progress: bool = True) -> list[dict]:
    """Alternate one discriminator and one generator step, `steps` times; returns a log per `log_every`.

    images [N, 3, S, S] in [-1, 1] and caption_ids [N, P] (the P paraphrases of each image, as
    rows of `texts`) stay in memory; each step draws a batch and one paraphrase per image.
    texts [K, T] are the standardised caption vectors and labels [K] a label per caption (its
    colour-shape pair), used to pick wrong texts that really are wrong. (The shared loop `fit`
    runs one optimiser; a GAN alternates two, so it gets this loop of its own.)

    Defaults are what worked at 16 px: DCGAN's Adam 2e-4 learnt colour too slowly for a few hundred
    steps, and a mode-seeking weight of 1 outweighed the adversarial loss (speckled noise).
    """
    if images.dim() != 4 or len(images) != len(caption_ids):
        raise ValueError(f"expected images [N, 3, S, S] and caption_ids [N, P] with the same N, "
                         f"got {tuple(images.shape)} and {tuple(caption_ids.shape)}")
    generator.to(device).train()
    discriminator.to(device).train()
    images, caption_ids = images.to(device), caption_ids.to(device)
    texts, labels = texts.to(device), labels.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    b = batch_size
    log, sums = [], {}
    for step in tqdm(range(1, steps + 1), desc="GAN steps", disable=not progress, leave=False):
        rows = torch.randint(len(images), (b,), device=device)
        caption = caption_ids[rows, torch.randint(caption_ids.shape[1], (b,), device=device)]
        real, text = images[rows], texts[caption]

        # One generator call for everything this step needs: images for the text (D and G), and
        # for half the batch a second noise (mode seeking) and a text between two captions (GAN-INT).
        h = b // 2
        noise = torch.randn(2 * b, generator.noise_dim, device=device)
        mixed = (text[:h] + text[torch.randperm(b, device=device)[:h]]) / 2
        fake, fake_b, fake_mixed = generator(noise, torch.cat([text, text[:h], mixed])).split([b, h, h])

        # The discriminator: real images with the right (and, for -CLS, a wrong) text, then fakes.
        if matching_aware:
            real_right, real_wrong = discriminator(real, text, text[shuffled_other(labels[caption])])
        else:
            real_right, real_wrong = discriminator(real, text)[0], None
        d_loss, d_logs = matching_aware_d_loss(real_right, discriminator(fake.detach(), text)[0], real_wrong)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # The generator: fool D on the right text, and on texts between two captions (GAN-INT).
        if interpolate:
            logits = discriminator(torch.cat([fake, fake_mixed]), torch.cat([text, mixed]))[0]
        else:
            logits = discriminator(fake, text)[0]
        g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        if mode_seeking:
            ratio = mode_seeking_ratio(fake[:h], fake_b, noise[:h], noise[b:b + h])
            g_loss = g_loss + mode_seeking / (ratio + 1e-5)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        for k, v in {"d_loss": d_loss.item(), "g_loss": g_loss.item(), **d_logs}.items():
            sums[k] = sums.get(k, 0.0) + v
        if step % log_every == 0:
            log.append({"step": step, **{k: v / log_every for k, v in sums.items()}})
            sums = {}
    return log


@torch.no_grad()
def generate(generator: Generator, texts: Tensor, noise: Tensor | None = None, seed: int = 0) -> Tensor:
    """Images [N, 3, S, S] in [-1, 1] for text vectors [N, T] (noise drawn from `seed` unless given)."""
    generator.eval()
    device = next(generator.parameters()).device
    if noise is None:
        noise = torch.randn(len(texts), generator.noise_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([generator(z.to(device), t.to(device)).cpu()
                      for z, t in zip(noise.split(256), texts.split(256))])


# ------------------------------------------------------------------ the judge

class Judge(nn.Module):
    """An independent classifier: a small CNN with a colour head and a shape head."""

    def __init__(self, width: int = 16, depth: int = 3):
        super().__init__()
        self.encoder = ImageCNN(width, depth)
        self.color = nn.Linear(self.encoder.channels, len(COLORS))
        self.shape = nn.Linear(self.encoder.channels, len(SHAPES))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:  # [B, 3, S, S] in [-1, 1] -> logits
        features = self.encoder.pooled(images)
        return self.color(features), self.shape(features)


def blur(images: Tensor, radius: float) -> Tensor:
    """Gaussian blur of images [N, 3, S, S] (any range): shapes turn into blobs, colours stay."""
    low, high = images.min(), images.max()
    scaled = ((images - low) / (high - low + 1e-8) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    out = [np.asarray(PILImage.fromarray(a).filter(ImageFilter.GaussianBlur(radius))) for a in scaled]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255 * (high - low) + low


def judge_step(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor, Tensor]) -> tuple[Tensor, dict]:
    """Cross-entropy of colour and shape; blurred copies must keep the colour but give no shape.

    batch = (images, colour, shape, blurred images). The blurred copies' shape target is the
    uniform distribution: a shape head that is confident on a blob reads size or outline
    fuzz, not shape.
    """
    images, color, shape, blurred = batch
    color_logits, shape_logits = model(torch.cat([images, blurred]))
    n = len(images)
    uniform = torch.full_like(shape_logits[n:], 1.0 / shape_logits.shape[1])
    loss = (F.cross_entropy(color_logits, torch.cat([color, color]))
            + F.cross_entropy(shape_logits[:n], shape)
            + F.cross_entropy(shape_logits[n:], uniform))
    return loss, {"color_acc": (color_logits[:n].argmax(1) == color).float().mean().item(),
                  "shape_acc": (shape_logits[:n].argmax(1) == shape).float().mean().item()}


@torch.no_grad()
def judge(model: Judge, images: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """Colour and shape probabilities [N, 8], [N, 3] of images in [-1, 1]."""
    model.eval()
    device = next(model.parameters()).device
    colors, shapes = [], []
    for chunk in images.split(batch_size):
        c, s = model(chunk.to(device))
        colors.append(c.softmax(1).cpu()), shapes.append(s.softmax(1).cpu())
    return torch.cat(colors), torch.cat(shapes)


def agreement(color_probs: Tensor, shape_probs: Tensor, color: Tensor, shape: Tensor) -> dict[str, float]:
    """Share of images whose judged colour, shape, and both, are the requested ones."""
    color_ok = color_probs.argmax(1) == color
    shape_ok = shape_probs.argmax(1) == shape
    return {"color": color_ok.float().mean().item(), "shape": shape_ok.float().mean().item(),
            "both": (color_ok & shape_ok).float().mean().item()}


def mean_pairwise_distance(images: Tensor) -> float:
    """Mean L2 distance between all pairs of images [N, 3, S, S] (N >= 2): a simple diversity number."""
    if len(images) < 2:
        raise ValueError("diversity needs at least two images")
    flat = images.flatten(1)
    d = torch.cdist(flat, flat)
    n = len(flat)
    return (d.sum() / (n * (n - 1))).item()
