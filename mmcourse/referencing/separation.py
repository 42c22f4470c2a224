"""Audio-visual speech separation (notebook 11), after Looking to Listen (Ephrat et al., 2018).

A mixture of voices and one mouth stream per speaker go in; each speaker's voice comes out.
The mixture's STFT is power-law compressed and read by 1-D convolutions whose filters span every
frequency bin; each speaker's mouth frames are encoded and upsampled to the audio frame rate;
for each speaker, the audio features, that speaker's face features and the others' are
concatenated and read by a BiLSTM (the same weights for every speaker), which outputs that
speaker's bounded complex ratio mask; mask times mixture spectrogram, inverse STFT, a waveform
per speaker. The k-th mask belongs to the k-th face, so no permutation is needed: the face
chooses the speaker.

    model = Separator(n_speakers=2)
    estimates = model(batch["mixture"], batch["frames"])        # (B, K, time)
    loss = -si_sdr(estimates, batch["sources"]).mean()

The same network without faces (`faces=False`) cannot know which output is whose, and is
trained with permutation-invariant training (`pit_si_sdr`, torchmetrics' PIT).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.audio import (permutation_invariant_training,
                                           scale_invariant_signal_distortion_ratio)

N_FFT, HOP = 256, 128       # 32 ms windows, 16 ms steps at 8 kHz: 129 frequency bins
POWER = 0.3                 # power-law compression of the magnitude, as in the paper
EPS = 1e-8


# --- spectrograms and masks ----------------------------------------------------------------

def stft(wave: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """(..., time) -> (..., n_fft // 2 + 1, frames) complex spectrogram (Hann window, centred)."""
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    flat = wave.reshape(-1, wave.shape[-1])
    spec = torch.stft(flat, n_fft, hop, window=window, return_complex=True)
    return spec.reshape(*wave.shape[:-1], *spec.shape[-2:])


def istft(spec: Tensor, length: int, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """(..., freq, frames) complex spectrogram -> (..., length) waveform; inverts `stft`."""
    window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    flat = spec.reshape(-1, *spec.shape[-2:])
    wave = torch.istft(flat, n_fft, hop, window=window, length=length)
    return wave.reshape(*spec.shape[:-2], length)


def compress(spec: Tensor, power: float = POWER) -> Tensor:
    """|spec| ** power: loud and quiet parts of speech on one scale (power 1: plain magnitude)."""
    return spec.abs().clamp_min(EPS).pow(power)


def bounded_complex_mask(real: Tensor, imag: Tensor) -> Tensor:
    """A complex ratio mask of magnitude below 1: tanh(|z|) in the direction of z = real + i imag.

    The magnitude is bounded like that of the ideal ratio mask, so no output can blow up; the
    direction rotates the mixture's phase towards the speaker's."""
    z = torch.complex(real, imag)
    size = z.abs()
    return z * (torch.tanh(size) / size.clamp_min(EPS))


def to_audio_frames(visual: Tensor, n_frames: int, hop: int = HOP, video_hop: int = 320) -> Tensor:
    """(..., video frames) -> (..., n_frames): linear interpolation at each STFT frame's time.

    STFT frame n is centred on sample n * hop; video frame t covers samples t * video_hop to
    (t + 1) * video_hop, centred half a frame later. Beyond the first and last centres the
    nearest frame holds."""
    t = visual.shape[-1]
    pos = ((torch.arange(n_frames, device=visual.device, dtype=visual.dtype) * hop
            - video_hop / 2) / video_hop).clamp(0, t - 1)
    low = pos.floor().long().clamp(max=t - 1)
    high = (low + 1).clamp(max=t - 1)
    w = pos - low.to(pos.dtype)
    return visual[..., low] * (1 - w) + visual[..., high] * w


# --- the metric -----------------------------------------------------------------------------

def si_sdr(estimate: Tensor, reference: Tensor) -> Tensor:
    """Scale-invariant signal-to-distortion ratio in dB over the last axis, (...) per signal.

    Both zero-mean; the target is the reference scaled to best fit the estimate,
    s_t = (<e, s> / <s, s>) s; SI-SDR = 10 log10(|s_t|^2 / |e - s_t|^2). Rescaling the estimate
    changes nothing, so a separator is scored on what it keeps, not on its loudness."""
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} differ in shape")
    e = estimate - estimate.mean(-1, keepdim=True)
    s = reference - reference.mean(-1, keepdim=True)
    target = (e * s).sum(-1, keepdim=True) / (s.pow(2).sum(-1, keepdim=True) + EPS) * s
    return 10 * torch.log10((target.pow(2).sum(-1) + EPS) / ((e - target).pow(2).sum(-1) + EPS))


def si_sdr_improvement(estimates: Tensor, sources: Tensor, mixture: Tensor) -> Tensor:
    """(B, K, time) estimates and references, (B, time) mixture -> (B,) SI-SDRi in dB, mean over
    speakers: how much better each estimate is than the mixture itself (torchmetrics' SI-SDR)."""
    def score(x: Tensor) -> Tensor:
        return scale_invariant_signal_distortion_ratio(x, sources, zero_mean=True)
    return (score(estimates) - score(mixture[:, None].expand_as(sources))).mean(-1)


def pit_si_sdr(estimates: Tensor, sources: Tensor) -> tuple[Tensor, Tensor]:
    """(B, K, time) -> ((B,) SI-SDR of the best assignment of estimates to sources, mean over
    speakers; (B, K) that assignment): permutation-invariant training's objective."""
    return permutation_invariant_training(estimates, sources, si_sdr, mode="speaker-wise", eval_func="max")


# --- the model ------------------------------------------------------------------------------

class MouthEncoder(nn.Module):
    """(B, K, T, H, W) uint8 mouth crops -> (B, K, dim, T): a small CNN per frame, then a
    temporal convolution (the opening's rise and fall matter more than one frame)."""

    def __init__(self, dim: int = 16, width: int = 8):
        super().__init__()
        # Strided: a mouth crop is small and smooth, and 50 frames per speaker per clip add up.
        self.frame = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, dim, 3, stride=2, padding=1), nn.ReLU())
        self.time = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU())

    def forward(self, frames: Tensor) -> Tensor:
        b, k, t = frames.shape[:3]
        x = frames.float()
        # Per clip: the mouth's movement matters, not its face's shade or the crop's exposure.
        x = (x - x.mean(dim=(2, 3, 4), keepdim=True)) / (x.std(dim=(2, 3, 4), keepdim=True) + 1e-5)
        x = x.reshape(b * k * t, 1, *frames.shape[3:])
        x = self.frame(x).mean(dim=(-2, -1))                      # (B*K*T, dim)
        x = x.view(b * k, t, -1).transpose(1, 2)                  # (B*K, dim, T)
        return self.time(x).view(b, k, -1, t)


class Separator(nn.Module):
    """Mixture (B, time) and mouths (B, K, T, H, W) -> K waveforms (B, K, time).

    With faces, each speaker gets one pass of the BiLSTM and head (shared weights) on the audio,
    their face and the mean of the other faces; faces=False drops the visual stream and one pass
    outputs all K masks (the audio-only baseline, trained with PIT). mask is
    "complex" (bounded complex ratio mask, the lecture's) or "magnitude" (a sigmoid mask that
    keeps the mixture's phase). `visual` replaces the mouth encoder, e.g. for face crops or
    lip embeddings: any module mapping (B, K, T, ...) to (B, K, visual_dim, T)."""

    def __init__(self, n_speakers: int = 2, faces: bool = True, mask: str = "complex",
                 power: float = POWER, n_fft: int = N_FFT, hop: int = HOP, channels: int = 96,
                 visual_dim: int = 16, hidden: int = 128, video_hop: int = 320,
                 visual: nn.Module | None = None):
        super().__init__()
        if mask not in ("complex", "magnitude"):
            raise ValueError(f"mask must be 'complex' or 'magnitude', not {mask!r}")
        self.n_speakers, self.faces, self.mask, self.power = n_speakers, faces, mask, power
        self.n_fft, self.hop, self.video_hop = n_fft, hop, video_hop
        bins = n_fft // 2 + 1
        # Each filter spans all frequency bins of 5 (then 9, dilated) neighbouring frames.
        self.audio = nn.Sequential(
            nn.Conv1d(bins, channels, 5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, padding=4, dilation=2), nn.ReLU())
        self.visual = (visual or MouthEncoder(visual_dim)) if faces else None
        # Each feature at one scale per clip (over time), so the face is not drowned by 96 audio
        # channels; unlike a per-frame norm this keeps which frames are loud and which quiet.
        self.audio_norm = nn.InstanceNorm1d(channels, affine=True)
        self.visual_norm = nn.InstanceNorm1d(visual_dim, affine=True) if faces else None
        # With faces, one pass per speaker: the audio, that speaker's face and the others' faces
        # (their mean) in, that speaker's mask out; the same weights serve every speaker. Without
        # faces, one pass gives all the masks, in no particular order.
        fused = channels + (2 * visual_dim if faces else 0)
        self.lstm = nn.LSTM(fused, hidden, batch_first=True, bidirectional=True)
        self.parts = 2 if mask == "complex" else 1                 # real and imaginary, or one gain
        self.per_pass = 1 if faces else n_speakers
        self.head = nn.Linear(2 * hidden, self.per_pass * self.parts * bins)
        with torch.no_grad():  # start from half the mixture per speaker: tanh(0.55) = sigmoid(0) = 0.5
            bias = self.head.bias.view(self.per_pass, self.parts, bins)
            bias.zero_()
            if mask == "complex":
                bias[:, 0] = math.atanh(0.5)

    def masks(self, mixture: Tensor, frames: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(complex spectrogram of the mixture (B, F, N), masks (B, K, F, N))."""
        spec = stft(mixture, self.n_fft, self.hop)                               # (B, F, N)
        # Per-clip normalisation: the features do not depend on how loud the mixture is.
        level = mixture.pow(2).mean(-1).sqrt().clamp_min(EPS)[:, None, None]
        a = self.audio_norm(self.audio(compress(spec / level, self.power))).transpose(1, 2)  # (B, N, C)
        b, n, k = a.shape[0], a.shape[1], self.n_speakers
        if self.faces:
            if frames is None or frames.shape[1] != k:
                raise ValueError(f"this model needs one mouth stream per speaker, frames (B, {k}, T, ...), "
                                 f"got {None if frames is None else tuple(frames.shape)}")
            v = self.visual(frames)                                               # (B, K, D, T)
            v = self.visual_norm(v.flatten(0, 1)).view(v.shape)
            v = to_audio_frames(v, n, self.hop, self.video_hop).transpose(2, 3)    # (B, K, N, D)
            others = (v.sum(1, keepdim=True) - v) / max(k - 1, 1)                  # (B, K, N, D)
            x = torch.cat([a[:, None].expand(b, k, n, a.shape[-1]), v, others], -1).flatten(0, 1)  # (B*K, N, C+2D)
        else:
            x = a
        h, _ = self.lstm(x)                                                       # (B*K or B, N, 2 * hidden)
        out = self.head(h).view(b, -1, n, self.per_pass, self.parts, spec.shape[-2])  # (B, K or 1, N, 1 or K, parts, F)
        out = out.permute(0, 1, 3, 4, 5, 2).flatten(1, 2)                              # (B, K, parts, F, N)
        if self.mask == "complex":
            return spec, bounded_complex_mask(out[:, :, 0], out[:, :, 1])
        return spec, torch.sigmoid(out[:, :, 0]).to(spec.dtype)

    def forward(self, mixture: Tensor, frames: Tensor | None = None) -> Tensor:
        spec, masks = self.masks(mixture, frames)
        return istft(masks * spec[:, None], mixture.shape[-1], self.n_fft, self.hop)


def compressed_spectrogram_loss(estimates: Tensor, sources: Tensor, power: float = POWER) -> Tensor:
    """(B, K, time) -> (B, K): the paper's loss, mean squared error between power-law-compressed
    complex spectrograms (|S|^p e^{i angle S}), so quiet parts count almost as much as loud ones."""
    def squash(wave: Tensor) -> Tensor:
        spec = stft(wave)
        return spec * (compress(spec, power) / spec.abs().clamp_min(EPS))
    return (squash(estimates) - squash(sources)).abs().pow(2).mean(dim=(-2, -1))


def separation_loss(model: nn.Module, batch: dict[str, Tensor], loss: str = "si-sdr") -> tuple[Tensor, dict]:
    """`fit`'s loss: negative SI-SDR (loss="si-sdr") or the compressed-spectrogram loss
    (loss="spectrogram"); with faces in the order of the faces, without them under PIT."""
    faces = getattr(model, "faces", True)
    estimates = model(batch["mixture"], batch["frames"] if faces else None)
    sources = batch["sources"]
    if not faces:  # reorder the estimates to their best assignment first
        _, order = pit_si_sdr(estimates.detach(), sources)
        estimates = torch.gather(estimates, 1, order[..., None].expand_as(estimates))
    if loss == "si-sdr":
        score = si_sdr(estimates, sources)
        return -score.mean(), {"si_sdr": score.mean().item()}
    if loss == "spectrogram":
        return compressed_spectrogram_loss(estimates, sources, getattr(model, "power", POWER)).mean(), {}
    raise ValueError(f"loss must be 'si-sdr' or 'spectrogram', not {loss!r}")


# --- separating without training: the ideal mask and the mouth alone -----------------------

def ideal_ratio_mask(sources: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """(B, K, time) sources -> (B, K, F, N) IRM_k = sqrt(|S_k|^2 / sum_j |S_j|^2): the best
    magnitude mask that knows the answer (an upper bound, not a baseline)."""
    power = stft(sources, n_fft, hop).abs().pow(2)
    return (power / power.sum(1, keepdim=True).clamp_min(EPS)).sqrt()


def ideal_complex_mask(sources: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """(B, K, time) -> (B, K, F, N) S_k / X: unbounded, it rebuilds each source exactly."""
    spec = stft(sources, n_fft, hop)
    mixture = spec.sum(1, keepdim=True)
    return spec / torch.where(mixture.abs() > EPS, mixture, torch.full_like(mixture, EPS))


def mouth_masks(opening: Tensor, n_frames: int, power: float = 2.0, quiet_db: float = 30.0,
                hop: int = HOP, video_hop: int = 320) -> Tensor:
    """(B, K, T) openings in [0, 1] -> (B, K, 1, n_frames) masks from the mouths alone, no training.

    Each opening is read back as a level (0 is `quiet_db` below 1), and each speaker gets its share
    of amplitude ** power in every frame (power 2: a Wiener-like share of energy), the same at all
    frequencies: a mouth says when someone speaks, not at which pitch."""
    amplitude = 10 ** (quiet_db * (opening - 1) / 20)
    weight = amplitude.pow(power)
    share = weight / weight.sum(1, keepdim=True).clamp_min(EPS)
    return to_audio_frames(share, n_frames, hop, video_hop)[:, :, None]


def apply_masks(mixture: Tensor, masks: Tensor, n_fft: int = N_FFT, hop: int = HOP) -> Tensor:
    """(B, time) mixture, (B, K, F or 1, N) masks -> (B, K, time) estimates."""
    spec = stft(mixture, n_fft, hop)[:, None]
    return istft(masks * spec, mixture.shape[-1], n_fft, hop)


# --- evaluation ----------------------------------------------------------------------------

def score_mixtures(separate: Callable[[dict[str, Tensor]], Tensor], loader: Iterable[dict[str, Tensor]],
                   device: torch.device | str = "cpu") -> np.ndarray:
    """SI-SDRi (dB) of every mixture in `loader`, (n,), for `separate(batch) -> (B, K, time)`
    estimates in the order of `batch["sources"]` (no permutation search)."""
    found = []
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            found.append(si_sdr_improvement(separate(batch), batch["sources"], batch["mixture"]).cpu())
    return torch.cat(found).numpy()


def model_separator(model: nn.Module, swap_faces: bool = False, pit: bool = False
                    ) -> Callable[[dict[str, Tensor]], Tensor]:
    """`separate(batch)` for `score_mixtures`: the model's estimates in the sources' order.

    swap_faces feeds each speaker's mouth in the other's place (the outputs then follow the
    faces, not the voices, if the model uses them); pit reorders the outputs to their best
    assignment, which an audio-only model needs and a model led by faces must not get."""
    def separate(batch: dict[str, Tensor]) -> Tensor:
        model.eval()
        frames = batch["frames"].flip(1) if swap_faces else batch["frames"]
        estimates = model(batch["mixture"], frames if getattr(model, "faces", True) else None)
        if pit:
            _, order = pit_si_sdr(estimates, batch["sources"])
            estimates = torch.gather(estimates, 1, order[..., None].expand_as(estimates))
        return estimates
    return separate

