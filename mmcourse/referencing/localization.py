"""Where in the picture is the sound? Audio-visual sound source localisation (notebook 10).

    visual feature map  V = ContextCNN(image)        [B, D, h, w]   (after a 1x1 projection; h = H / 4)
    audio vector        a = SpectrogramCNN(wave)     [B, D]         (pooled over time and frequency)
    heatmap             s_xy = cos(a, V_xy) / tau    [B, h, w]      one score per location
    attention           alpha = softmax_xy(s)        [B, h, w]
    attended vector     z = sum_xy alpha_xy V_xy     [B, D]

Three ways to train the same model (Senocak et al., CVPR 2018):

* unsupervised: metric learning, z close to its own clip's audio and far from other clips'
  (`unsupervised_loss`);
* supervised: the attention pushed towards the true mask of the sounding object (`supervised_loss`);
* semi-supervised: both, the second only on the few scenes that have a mask.

Evaluation as in the localisation literature: the heatmap, upsampled to the image and
min-max normalised, is thresholded; cIoU compares the selected pixels with the ground truth,
the success rate counts scenes with cIoU >= 0.5, and AUC is the area under the success rate
as the cIoU threshold goes from 0 to 1 (`ciou`, `success_rate`, `success_auc`). The pointing
game asks only whether the heatmap's maximum falls on the sounding object (`pointing_accuracy`),
against pointing at a random one of the scene's objects (`random_object_odds`).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmcourse import report
from mmcourse.encoders import ImageCNN, SpectrogramCNN

CIOU_SUCCESS = 0.5                            # a scene is localised when cIoU >= this
AUC_THRESHOLDS = np.linspace(0.0, 1.0, 21)    # cIoU thresholds of the success curve, as in LVS


# ---------------------------------------------------------------- model

class ContextCNN(nn.Module):
    """`ImageCNN(width, depth)` followed by `context` dilated 3x3 conv blocks at the same resolution.

    Localising a small object needs a fine grid: a perfect map on a 6 x 6 grid, upsampled, fails
    on more validation scenes than one on a 12 x 12 grid (notebook 10, section 3, measures both
    with `oracle_heatmaps`). Two pooling blocks keep a grid of H / 4; the dilated blocks
    (dilation 2) widen what each location sees, from 10 to 42 pixels with two of them, so that
    every location sees a whole object without pooling further.
    """

    def __init__(self, width: int = 8, depth: int = 2, context: int = 2):
        super().__init__()
        self.cnn = ImageCNN(width, depth)
        c = self.cnn.channels
        self.context = nn.Sequential(*[layer for _ in range(context) for layer in (
            nn.Conv2d(c, c, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))])
        self.channels = c
        self.stride = 2 ** depth  # image pixels per feature-map cell

    def feature_map(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, C, H / stride, W / stride]
        return self.context(self.cnn.feature_map(images))


class SoundLocalizer(nn.Module):
    """Audio vector . visual feature map -> heatmap; attended visual vector z.

    With `listen=False` the audio vector is replaced by one learned vector, the same for every
    clip: the same visual network without audio, a saliency map (the visual-only baseline).
    `visual`, a pretrained network with `.channels` and `.feature_map` (an ImageCNN or a
    ContextCNN), is copied and frozen; otherwise a `ContextCNN(width, depth, context)` is
    trained with the rest.
    """

    def __init__(self, sample_rate: int, dim: int = 64, width: int = 8, depth: int = 2, context: int = 2,
                 audio_depth: int = 3, n_mels: int = 32, temperature: float = 0.1, listen: bool = True,
                 visual: nn.Module | None = None):
        super().__init__()
        # A given visual network (pretrained on pictures) is copied and frozen, BatchNorm included.
        self.frozen_visual = visual is not None
        self.visual = (copy.deepcopy(visual).requires_grad_(False).eval() if visual is not None
                       else ContextCNN(width, depth, context))
        self.project = nn.Conv2d(self.visual.channels, dim, 1)   # one D-vector per location
        self.listen = listen
        if listen:
            self.audio = SpectrogramCNN(sample_rate, width, audio_depth, out_dim=dim, n_mels=n_mels)
        else:
            self.query = nn.Parameter(torch.randn(dim) / dim ** 0.5)
        self.temperature = temperature

    def train(self, mode: bool = True) -> "SoundLocalizer":
        super().train(mode)
        if self.frozen_visual:
            self.visual.eval()
        return self

    def visual_map(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> unit vectors [B, D, h, w]
        return F.normalize(self.project(self.visual.feature_map(images)), dim=1)

    def audio_vector(self, waves: Tensor) -> Tensor:  # [B, T] -> unit vectors [B, D]
        if not self.listen:
            return F.normalize(self.query, dim=0).expand(len(waves), -1)
        return F.normalize(self.audio(waves), dim=-1)

    def forward(self, images: Tensor, waves: Tensor) -> tuple[Tensor, Tensor]:
        """(visual map [B, D, h, w], audio vectors [B, D]): everything every loss and heatmap needs."""
        if len(images) != len(waves):
            raise ValueError(f"{len(images)} images but {len(waves)} waveforms: one sound per scene")
        return self.visual_map(images), self.audio_vector(waves)


class FrozenEncoderHeads(nn.Module):
    """The localiser on two frozen, pretrained encoders: only the two heads and the temperature learn.

        visual features [B, C_v, h, w] (a frozen image network, slid over the scene)
            -> visual head at every location -> unit vectors [B, D, h, w]
        audio features [B, C_a] (a frozen sound network, pooled) -> audio head -> unit vectors [B, D]

    The features are computed once (`in_batches`): training runs the heads and the loss only.
    Each head starts as a copy of the Linear layer given (an encoder's own output layer: when
    both encoders end in the same classes, the untrained map already compares the sound's
    class with each location's), and `temperature` (tau) is learned in log space. With
    `listen=False` one learned vector replaces the sound: the visual-only map.
    """

    def __init__(self, visual_head: nn.Linear, audio_head: nn.Linear, temperature: float = 0.1, listen: bool = True):
        super().__init__()
        if visual_head.out_features != audio_head.out_features:
            raise ValueError(f"the heads must meet in one space: visual {visual_head.out_features}, "
                             f"audio {audio_head.out_features} outputs")
        self.visual_head = copy.deepcopy(visual_head).requires_grad_(True)
        self.listen = listen
        if listen:
            self.audio_head = copy.deepcopy(audio_head).requires_grad_(True)
        else:
            self.query = nn.Parameter(audio_head.bias.detach().clone())
        self.log_temperature = nn.Parameter(torch.tensor(float(np.log(temperature))))

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.exp()

    def forward(self, visual: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Features ([B, C_v, h, w], [B, C_a]) -> (unit visual map [B, D, h, w], unit audio vectors [B, D])."""
        if len(visual) != len(audio):
            raise ValueError(f"{len(visual)} scenes but {len(audio)} sounds: one sound per scene")
        w, b = self.visual_head.weight, self.visual_head.bias           # the Linear at every cell
        visual = F.normalize(torch.einsum("bchw,dc->bdhw", visual, w) + b[:, None, None], dim=1)
        if not self.listen:
            return visual, F.normalize(self.query, dim=0).expand(len(audio), -1)
        return visual, F.normalize(self.audio_head(audio), dim=-1)


@torch.no_grad()
def in_batches(encode, inputs: Tensor, device: torch.device | str, batch_size: int = 256) -> Tensor:
    """A frozen encoder (an eval-mode module or one of its methods, on `device`) applied to `inputs`
    batch by batch on `device` -> its outputs concatenated on the CPU."""
    return torch.cat([encode(chunk.to(device)).cpu() for chunk in inputs.split(batch_size)])


def heatmap(visual: Tensor, audio: Tensor, temperature: float) -> Tensor:
    """Scores s[b, x, y] = cos(audio_b, visual_b at x, y) / temperature -> [B, h, w]."""
    return torch.einsum("bdhw,bd->bhw", visual, audio) / temperature


def attend(visual: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
    """Spatial softmax of `scores` [B, h, w] and the attended vectors z [B, D] of `visual` [B, D, h, w]."""
    alpha = scores.flatten(1).softmax(-1).view_as(scores)
    return alpha, torch.einsum("bdhw,bhw->bd", visual, alpha)


def pair_scores(visual: Tensor, audio: Tensor, temperature: float) -> Tensor:
    """cos(z_ij, a_j) for every image i and audio j, where z_ij attends image i with audio j -> [B, B].

    The diagonal holds each clip's own picture and sound; everything else is a mismatched pair.
    """
    scores = torch.einsum("idhw,jd->ijhw", visual, audio) / temperature       # [B_img, B_aud, h, w]
    alpha = scores.flatten(2).softmax(-1).view_as(scores)
    z = F.normalize(torch.einsum("idhw,ijhw->ijd", visual, alpha), dim=-1)  # [B, B, D]
    return torch.einsum("ijd,jd->ij", z, audio)


def unsupervised_loss(visual: Tensor, audio: Tensor, temperature: float, contrast_temperature: float = 0.07) -> Tensor:
    """Metric learning without masks: each image's attended vector must match its own sound
    better than the other sounds of the batch, and each sound its own image (symmetric InfoNCE
    over `pair_scores` / contrast_temperature)."""
    logits = pair_scores(visual, audio, temperature) / contrast_temperature
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def mask_to_grid(masks: Tensor, grid: tuple[int, int]) -> Tensor:
    """Share of each feature-map cell covered by the mask: bool/float [B, H, W] -> [B, h, w]."""
    return F.adaptive_avg_pool2d(masks.float()[:, None], grid)[:, 0]


def supervised_loss(scores: Tensor, target: Tensor) -> Tensor:
    """KL(target || attention): the attention, a distribution over locations, pushed onto the
    normalised ground-truth map `target` [B, h, w] (e.g. `mask_to_grid` of the object's mask)."""
    g = target.flatten(1)
    g = g / g.sum(-1, keepdim=True).clamp_min(1e-8)
    log_alpha = scores.flatten(1).log_softmax(-1)
    return torch.where(g > 0, g * (g.clamp_min(1e-12).log() - log_alpha), 0.0).sum(-1).mean()


def localization_step(mode: str, sup_weight: float = 1.0):
    """A `fit` loss for batches (images, waves, target grids [B, h, w], labelled flags [B]).

    mode "unsupervised" ignores targets; "supervised" sees only the labelled scenes of the
    batch (the others are not even passed through the model, so not even its BatchNorm
    statistics learn from them); "semi" adds `sup_weight` x the supervised loss on the labelled
    scenes to the unsupervised loss on all of them. A supervised batch without a labelled scene
    gives a zero loss.
    """
    if mode not in ("unsupervised", "supervised", "semi"):
        raise ValueError(f"mode must be 'unsupervised', 'supervised' or 'semi', got {mode!r}")

    def step(model: nn.Module, batch) -> tuple[Tensor, dict]:
        images, waves, target, labelled = batch
        if mode == "supervised":
            if not labelled.any():  # fit needs a loss with a graph: zero, through the parameters
                return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0, {}
            if not labelled.all():
                images, waves, target = images[labelled], waves[labelled], target[labelled]
                labelled = labelled[labelled]
        visual, audio = model(images, waves)
        tau = getattr(model, "module", model).temperature
        logs, loss = {}, torch.zeros((), device=visual.device)
        if mode != "supervised":
            unsup = unsupervised_loss(visual, audio, tau)
            loss = loss + unsup
            logs["unsup"] = unsup.item()
        if mode != "unsupervised" and labelled.any():
            sup = supervised_loss(heatmap(visual[labelled], audio[labelled], tau), target[labelled])
            loss = loss + sup_weight * sup
            logs["sup"] = sup.item()
        return loss, logs

    return step


def upsample(maps: Tensor, size: int) -> Tensor:
    """Feature-grid maps [N, h, w] -> [N, size, size], bilinear: how every map meets the pixels."""
    return F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def oracle_heatmaps(masks: Tensor, grid: tuple[int, int]) -> Tensor:
    """The best a map on `grid` can do: each true mask [N, S, S] averaged into the grid
    (`mask_to_grid`) and upsampled back like a model's map -> float [N, S, S]."""
    return upsample(mask_to_grid(masks, grid), masks.shape[-1])


@torch.no_grad()
def predict_heatmaps(model: SoundLocalizer, images: Tensor, waves: Tensor, size: int,
                     batch_size: int = 128) -> Tensor:
    """Attention maps upsampled (`upsample`) to `size` x `size` pixels -> float [N, size, size]."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for im, wv in zip(images.split(batch_size), waves.split(batch_size)):
        im = im.to(device)
        visual, audio = model(im.float() / 255 if im.dtype == torch.uint8 else im, wv.to(device))
        alpha, _ = attend(visual, heatmap(visual, audio, model.temperature))
        out.append(upsample(alpha, size).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------- metrics

def normalize_map(heat: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to [0, 1]; a constant map becomes all ones (it selects everything)."""
    heat = np.asarray(heat, dtype=np.float64)
    low, high = heat.min(), heat.max()
    return np.ones_like(heat) if high - low < 1e-12 else (heat - low) / (high - low)


def ciou(heat: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Consensus IoU (Senocak et al., 2018) of one heatmap against a ground-truth map g in [0, 1]:

        A = {pixels whose min-max normalised heat is >= threshold}
        cIoU = sum_{i in A} g_i / (sum_i g_i + sum_{i in A, g_i = 0} 1)

    With a binary mask (ours: the composer knows every pixel) it is the IoU of A and the mask.
    """
    heat, truth = np.asarray(heat), np.asarray(truth, dtype=np.float64)
    if heat.shape != truth.shape:
        raise ValueError(f"heatmap {heat.shape} and ground truth {truth.shape} must have the same shape; "
                         "upsample the heatmap to the image first (predict_heatmaps does)")
    if truth.sum() <= 0:
        raise ValueError("the ground-truth map is empty: nothing to localise")
    selected = normalize_map(heat) >= threshold
    return float(truth[selected].sum() / (truth.sum() + np.count_nonzero(selected & (truth == 0))))


def success_rate(cious: np.ndarray, at: float = CIOU_SUCCESS) -> float:
    """Share of scenes with cIoU >= `at` (the number usually reported as "cIoU" in tables)."""
    return float(np.mean(np.asarray(cious) >= at))


def success_auc(cious: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS) -> float:
    """Area under the success rate as the cIoU threshold sweeps [0, 1] (trapezoids)."""
    rates = [success_rate(cious, t) for t in thresholds]
    return float(np.trapezoid(rates, thresholds))


def evaluate(heatmaps, truths, threshold: float = 0.5) -> dict[str, float]:
    """cIoU per scene -> {"success": rate at cIoU >= 0.5, "auc": area, "mean cIoU"}."""
    cious = np.array([ciou(h, t, threshold) for h, t in zip(heatmaps, truths)])
    return {"success": success_rate(cious), "auc": success_auc(cious), "mean cIoU": float(cious.mean()),
            "cious": cious}


def bootstrap_interval(cious: np.ndarray, seed: int = 0, n: int = 1000, level: float = 0.9) -> tuple[float, float]:
    """A percentile bootstrap interval of the success rate over scenes."""
    return report.bootstrap_interval(cious, success_rate, seed, n, level)


def paired_bootstrap_interval(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 1000,
                              level: float = 0.9) -> tuple[float, float]:
    """A percentile bootstrap interval of mean(a) - mean(b), resampling the *same* scenes for both.

    `a` and `b` hold one number per scene (a success 0/1, a pointing hit, a chance 1/k): pairing
    removes the scene-to-scene variation both share, so the interval is tighter than two separate
    intervals, and a lead whose interval stays above 0 is not an accident of which scenes were drawn.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of per-scene values of one length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), (n, len(a)))
    leads = a[picks].mean(1) - b[picks].mean(1)
    return float(np.quantile(leads, (1 - level) / 2)), float(np.quantile(leads, (1 + level) / 2))


def pointing_hits(heatmaps, masks) -> np.ndarray:
    """The pointing game: for each scene, does the heatmap's maximum fall inside the mask?

    heatmaps [N, S, S] and masks bool [N, S, S] (the sounding object's, or any other object
    set, e.g. the union of all objects) -> bool [N]. A tie goes to the first maximum in row order.
    """
    heatmaps, masks = np.asarray(heatmaps), np.asarray(masks, dtype=bool)
    if heatmaps.shape != masks.shape:
        raise ValueError(f"heatmaps {heatmaps.shape} and masks {masks.shape} must have the same shape")
    peaks = heatmaps.reshape(len(heatmaps), -1).argmax(1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), peaks]


def pointing_accuracy(heatmaps, masks) -> float:
    """Share of scenes whose heatmap maximum falls inside the mask (`pointing_hits`).

    It ignores how large the selected region is, so it separates "finds the right object" from
    "covers it well", which the cIoU mixes.
    """
    return float(np.mean(pointing_hits(heatmaps, masks)))


def random_object_odds(object_masks: list[np.ndarray]) -> np.ndarray:
    """For each scene, the chance that pointing inside a random one of its objects hits the
    sounding one: 1 / (number of objects with at least one visible pixel) -> float [N].

    `object_masks` holds one bool [k, S, S] per scene (`sound_scenes.object_masks`); its mean is
    the pointing game's chance level for a sound-blind pointer that knows where the objects are.
    """
    return np.array([1.0 / np.count_nonzero(m.reshape(len(m), -1).any(1)) for m in object_masks])


def kind_overlap(sounder_kinds: list[str | None], scene_kinds: list[set[str]]) -> float:
    """How often another scene also holds an object of the kind that sounds in a scene.

    For every ordered pair of scenes i != j: is an object of `sounder_kinds[i]` among
    `scene_kinds[j]`? -> the share of such pairs. A scene always holds its own sounder, so this
    is what tells a clip's own picture from the others of a batch, for a model that knows kinds.
    A sounder of no kind (None, possible with `other_kinds=False`) is held by no other scene.
    """
    if len(sounder_kinds) != len(scene_kinds) or len(scene_kinds) < 2:
        raise ValueError("need one sounder kind per scene and at least two scenes")
    kinds = list(dict.fromkeys([*sounder_kinds, *set().union(*scene_kinds)]))   # each once, any type
    holds = np.array([[kind in scene for kind in kinds] for scene in scene_kinds])  # [N, kinds]
    column = np.array([kinds.index(kind) for kind in sounder_kinds])
    others = holds[:, column].sum(0) - holds[np.arange(len(column)), column]       # scenes j != i
    return float(others.sum() / (len(column) * (len(column) - 1)))


# ---------------------------------------------------------------- baselines

def centre_prior(size: int, area: float) -> np.ndarray:
    """A Gaussian bump at the image centre whose half-maximum disc covers `area` (a share of the image)."""
    radius = np.sqrt(area * size * size / np.pi)               # of the disc with that area
    sigma = radius / np.sqrt(2 * np.log(2))                    # the half maximum falls at `radius`
    yy, xx = np.mgrid[:size, :size] + 0.5 - size / 2
    return np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))


def whole_image(size: int) -> np.ndarray:
    """The "everywhere" map: every pixel selected."""
    return np.ones((size, size))
