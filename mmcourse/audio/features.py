"""From waveform to MFCC, written out by hand (notebook 06).

Each step is a few lines so it can be read next to the lecture:

    waveform [T] -> frames [F, N] -> x window -> FFT [K, F] -> |.|^2 -> mel filterbank [M, F]
                 -> dB (log-mel) [M, F] -> DCT -> MFCC [C, F]

with T samples, F frames, N = n_fft samples per frame, K = n_fft // 2 + 1 frequency bins,
M mel bands and C cepstral coefficients. Layouts follow `torch.stft` and `torchaudio`
(frequency first, time last) and tests/test_audio_features.py checks every step against
them. Production code uses `torchaudio.transforms` (same numbers, faster); this module is
for reading and changing. Waveforms may carry leading batch dimensions: `[..., T]`.

Every function builds its constants (window, filterbank, DCT basis) on the device and in the
dtype of the waveform it is given, so the same code runs on a GPU; integer waveforms (raw
int16 PCM) and waveforms with NaN or infinite samples are refused with a clear error.
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
import torch.nn.functional as F

Window = Union[str, torch.Tensor]


# ---------------------------------------------------------------- framing and windows

def check_waveform(x: torch.Tensor) -> torch.Tensor:
    """`x` if it is a floating-point tensor of finite samples, else a ValueError saying what to do."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a waveform tensor [..., T], got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"the waveform is {x.dtype}; convert it to float first, e.g. int16 PCM with "
                         "`x.float() / 32768` (load_audio already returns float32 in [-1, 1])")
    if x.device.type != "meta":  # a meta tensor has no values to check
        bad = (~torch.isfinite(x)).sum().item()
        if bad:
            raise ValueError(f"the waveform has {bad} NaN or infinite samples, which would spread to every "
                             "frame they touch; clean it first, e.g. torch.nan_to_num(x)")
    return x


def _positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"{name} must be a positive number of samples, got {value!r}")


def frame_signal(x: torch.Tensor, frame_length: int, hop_length: int, center: bool = True,
                 pad_mode: str = "reflect") -> torch.Tensor:
    """Cut `x` [..., T] into overlapping frames [..., n_frames, frame_length].

    With `center=True` the signal is padded by half a frame on both sides (as `torch.stft`
    does), so frame t is centred on sample t * hop_length.
    """
    _positive(frame_length=frame_length, hop_length=hop_length)
    check_waveform(x)
    if center:
        pad = frame_length // 2
        if pad_mode == "reflect" and x.shape[-1] <= pad:
            raise ValueError(f"signal of {x.shape[-1]} samples is too short to reflect-pad by {pad}; "
                             "use a shorter frame_length or pad_mode='constant'")
        flat = x.reshape(-1, 1, x.shape[-1])  # F.pad's reflect mode wants [batch, channel, time]
        x = F.pad(flat, (pad, pad), mode=pad_mode).reshape(*x.shape[:-1], -1)
    if x.shape[-1] < frame_length:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than one frame ({frame_length}); "
                         "use a shorter frame_length or center=True")
    return x.unfold(-1, frame_length, hop_length)  # a view: frames share memory with x


def hamming_window(n: int, periodic: bool = True, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """w[k] = 0.54 - 0.46 cos(2 pi k / N): a raised cosine that stays at 0.08 at the edges.

    `periodic=True` (N = n) is the version for spectral analysis, as `torch.hamming_window`;
    `periodic=False` (N = n - 1) is the symmetric one used for filter design.
    """
    _positive(n=n)
    if n == 1:
        return torch.ones(1, dtype=dtype, device=device)
    k = torch.arange(n, dtype=dtype, device=device)
    N = n if periodic else n - 1
    return 0.54 - 0.46 * torch.cos(2 * math.pi * k / N)


_WINDOWS: dict[str, Callable[..., torch.Tensor]] = {
    "hamming": hamming_window,
    "hann": torch.hann_window,
    "rectangular": torch.ones,
}


def get_window(window: Window, win_length: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """A window tensor [win_length] from a name ('hamming', 'hann', 'rectangular') or a tensor."""
    if isinstance(window, torch.Tensor):
        if window.shape != (win_length,):
            raise ValueError(f"window has shape {tuple(window.shape)}, expected ({win_length},)")
        return window.to(device=device, dtype=dtype)
    if window not in _WINDOWS:
        raise ValueError(f"unknown window {window!r}: use one of {sorted(_WINDOWS)} or pass a tensor")
    return _WINDOWS[window](win_length, dtype=dtype, device=device)


# ---------------------------------------------------------------- STFT and spectrograms

def stft(x: torch.Tensor, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window: Window = "hamming", center: bool = True, pad_mode: str = "reflect") -> torch.Tensor:
    """Short-time Fourier transform: complex [..., n_fft // 2 + 1, n_frames].

    Same numbers and layout as `torch.stft(..., return_complex=True)`: frames of n_fft
    samples, a window of win_length samples centred in each frame, one real FFT per frame.
    """
    hop_length = n_fft // 4 if hop_length is None else hop_length
    win_length = n_fft if win_length is None else win_length
    _positive(n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) cannot exceed n_fft ({n_fft})")
    w = get_window(window, win_length, dtype=check_waveform(x).dtype, device=x.device)
    left = (n_fft - win_length) // 2
    w = F.pad(w, (left, n_fft - win_length - left))           # [n_fft], zeros outside the window
    frames = frame_signal(x, n_fft, hop_length, center, pad_mode)  # [..., n_frames, n_fft]
    spec = torch.fft.rfft(frames * w, dim=-1)                 # [..., n_frames, n_fft // 2 + 1]
    return spec.transpose(-1, -2)                             # frequency first, like torch.stft


def power_spectrogram(x: torch.Tensor, n_fft: int, hop_length: int | None = None,
                      win_length: int | None = None, window: Window = "hamming",
                      power: float = 2.0, center: bool = True) -> torch.Tensor:
    """|STFT|^power [..., n_fft // 2 + 1, n_frames]: power=1 magnitude, power=2 power."""
    return stft(x, n_fft, hop_length, win_length, window, center).abs().pow(power)


def amplitude_to_db(x: torch.Tensor, stype: str = "power", ref: float = 1.0, amin: float = 1e-10,
                    top_db: float | None = 80.0) -> torch.Tensor:
    """Decibels relative to `ref`: 10 log10(x / ref) for power, 20 log10(x / ref) for magnitude.

    `amin` keeps log10 away from zero; `top_db` floors every spectrogram [..., freq, time] at
    its own maximum minus top_db, so silence does not dominate the colour scale.
    """
    if stype not in ("power", "magnitude"):
        raise ValueError(f"stype must be 'power' or 'magnitude', not {stype!r}")
    multiplier = 10.0 if stype == "power" else 20.0
    db = multiplier * (torch.log10(x.clamp(min=amin)) - math.log10(max(ref, amin)))
    if top_db is not None:
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - top_db)
    return db


# ---------------------------------------------------------------- the mel scale

def _float_tensor(x: torch.Tensor | float) -> torch.Tensor:
    # A tensor keeps its device and floating dtype; a Python number becomes float32.
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.float()
    return torch.as_tensor(x, dtype=torch.float32)


def hz_to_mel(f: torch.Tensor | float, mel_scale: str = "htk") -> torch.Tensor:
    """Hertz -> mel. 'htk': 2595 log10(1 + f / 700); 'slaney': linear below 1 kHz, log above."""
    f = _float_tensor(f)
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    if mel_scale == "slaney":
        linear = 3.0 * f / 200.0                                   # 15 mel at 1 kHz
        log = 15.0 + torch.log(f.clamp(min=1e-10) / 1000.0) * 27.0 / math.log(6.4)
        return torch.where(f >= 1000.0, log, linear)
    raise ValueError(f"mel_scale must be 'htk' or 'slaney', not {mel_scale!r}")


def mel_to_hz(m: torch.Tensor | float, mel_scale: str = "htk") -> torch.Tensor:
    """Mel -> hertz, the inverse of `hz_to_mel`."""
    m = _float_tensor(m)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if mel_scale == "slaney":
        linear = 200.0 * m / 3.0
        log = 1000.0 * torch.exp((m - 15.0) * math.log(6.4) / 27.0)
        return torch.where(m >= 15.0, log, linear)
    raise ValueError(f"mel_scale must be 'htk' or 'slaney', not {mel_scale!r}")


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                   mel_scale: str = "htk", norm: str | None = None, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Triangular filters [n_freqs, n_mels], evenly spaced on the mel scale.

    Filter m rises from 0 at edge m to 1 at edge m + 1 and falls back to 0 at edge m + 2,
    where the n_mels + 2 edges are equally spaced in mel between f_min and f_max. Same
    matrix as `torchaudio.functional.melscale_fbanks`; `norm='slaney'` scales each
    triangle to unit area so wide high-frequency bands do not carry more energy.
    """
    if f_max > sample_rate / 2:
        raise ValueError(f"f_max ({f_max} Hz) is above the Nyquist frequency ({sample_rate / 2} Hz)")
    if not 0 <= f_min < f_max:
        raise ValueError(f"need 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
    _positive(n_freqs=n_freqs, n_mels=n_mels)
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=dtype, device=device)  # [n_freqs] bin centres
    # The mel bounds in the filterbank's dtype (at least float32, as before): float32 bounds put a
    # float64 filterbank up to 4e-6 off. Computed on the CPU, where .tolist() costs no device sync.
    bounds = torch.tensor([f_min, f_max], dtype=torch.promote_types(dtype, torch.float32))
    m_min, m_max = hz_to_mel(bounds, mel_scale).tolist()
    mels = torch.linspace(m_min, m_max, n_mels + 2, dtype=dtype, device=device)
    edges = mel_to_hz(mels, mel_scale)                                 # [n_mels + 2] in Hz
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]                   # [n_mels] each
    rising = (freqs[:, None] - lo) / (mid - lo)                        # [n_freqs, n_mels]
    falling = (hi - freqs[:, None]) / (hi - mid)
    fb = torch.minimum(rising, falling).clamp(min=0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (hi - lo))
    elif norm is not None:
        raise ValueError(f"norm must be None or 'slaney', not {norm!r}")
    return fb


def log_mel(x: torch.Tensor, sample_rate: int, n_fft: int = 512, hop_length: int | None = None,
            win_length: int | None = None, n_mels: int = 40, f_min: float = 0.0,
            f_max: float | None = None, window: Window = "hamming",
            top_db: float | None = 80.0) -> torch.Tensor:
    """Log-mel spectrogram in dB [..., n_mels, n_frames]: power spectrogram -> mel bands -> dB."""
    power = power_spectrogram(x, n_fft, hop_length, win_length, window)    # [..., K, frames]
    fb = mel_filterbank(n_fft // 2 + 1, f_min, sample_rate / 2 if f_max is None else f_max, n_mels,
                        sample_rate, dtype=power.dtype, device=power.device)   # [K, n_mels]
    mel = (power.transpose(-1, -2) @ fb).transpose(-1, -2)                   # [..., n_mels, frames]
    return amplitude_to_db(mel, "power", top_db=top_db)


# ---------------------------------------------------------------- cepstra

def dct_matrix(n_mfcc: int, n_mels: int, norm: str | None = "ortho", dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """DCT-II basis [n_mels, n_mfcc]: column k is cos(pi k (n + 0.5) / n_mels).

    `log_mel.T @ dct_matrix` keeps the first n_mfcc cosines, i.e. the smooth outline
    (the envelope) of each frame's log-mel spectrum. 'ortho' makes the basis orthonormal.
    """
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
    n = torch.arange(n_mels, dtype=dtype, device=device)[:, None]   # [n_mels, 1]
    k = torch.arange(n_mfcc, dtype=dtype, device=device)[None, :]   # [1, n_mfcc]
    basis = torch.cos(math.pi / n_mels * (n + 0.5) * k)             # [n_mels, n_mfcc]
    if norm is None:
        return 2.0 * basis
    if norm != "ortho":
        raise ValueError(f"norm must be 'ortho' or None, not {norm!r}")
    scale = torch.full((n_mfcc,), math.sqrt(2.0 / n_mels), dtype=dtype, device=device)
    scale[0] = math.sqrt(1.0 / n_mels)
    return basis * scale


def mfcc(x: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_fft: int = 512,
         hop_length: int | None = None, win_length: int | None = None, n_mels: int = 40,
         f_min: float = 0.0, f_max: float | None = None, window: Window = "hamming",
         top_db: float | None = 80.0) -> torch.Tensor:
    """Mel-frequency cepstral coefficients [..., n_mfcc, n_frames]: the DCT of the log-mel."""
    lm = log_mel(x, sample_rate, n_fft, hop_length, win_length, n_mels, f_min, f_max, window, top_db)
    basis = dct_matrix(n_mfcc, n_mels, dtype=lm.dtype, device=lm.device)         # [n_mels, n_mfcc]
    return (lm.transpose(-1, -2) @ basis).transpose(-1, -2)


def frame_lengths(sample_rate: int, win_ms: float = 25.0, hop_ms: float = 10.0) -> tuple[int, int, int]:
    """(n_fft, win_length, hop_length) in samples for windows and hops given in milliseconds.

    25 ms every 10 ms is the usual choice for speech: short enough that the vocal tract barely
    moves inside a frame. n_fft is the next power of two (the window is zero-padded to it).
    """
    win_length = max(1, round(sample_rate * win_ms / 1000))
    hop_length = max(1, round(sample_rate * hop_ms / 1000))
    return 1 << (win_length - 1).bit_length(), win_length, hop_length


def pooled_mfcc(x: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_mels: int = 40,
                win_ms: float = 25.0, hop_ms: float = 10.0, f_max: float = 8000.0) -> torch.Tensor:
    """One fixed-size vector per clip [..., 2 * n_mfcc]: mean and std of each MFCC over time.

    Frames are set in milliseconds (`frame_lengths`) so any sample rate gives comparable
    features. Clips of any length map to the same size, which is what a linear classifier needs.
    """
    n_fft, win_length, hop_length = frame_lengths(sample_rate, win_ms, hop_ms)
    c = mfcc(x, sample_rate, n_mfcc, n_fft, hop_length, win_length, n_mels,
             f_max=min(f_max, sample_rate / 2))                          # [..., n_mfcc, frames]
    return torch.cat([c.mean(dim=-1), c.std(dim=-1)], dim=-1)


def waveform_stats(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Summary statistics of the raw samples [..., 7], the no-Fourier baseline for `pooled_mfcc`.

    mean, std, skewness, kurtosis and peak of the sample values, zero crossings per second
    (a crude pitch/brightness cue) and the duration in seconds.
    """
    check_waveform(x)
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, correction=0, keepdim=True).clamp(min=1e-8)
    z = (x - mean) / std
    crossings = (torch.sign(x[..., 1:]) != torch.sign(x[..., :-1])).float().mean(dim=-1) * sample_rate
    duration = torch.full_like(crossings, x.shape[-1] / sample_rate)
    return torch.stack([mean[..., 0], std[..., 0], z.pow(3).mean(dim=-1), z.pow(4).mean(dim=-1),
                        x.abs().amax(dim=-1), crossings, duration], dim=-1)
