"""Two-speaker mixtures of real voices, each voice with a drawn talking mouth (notebook 11).

The sources are the Tux Paint spoken descriptions (`load_spoken_descriptions`): real people,
each language read by one or a few of them, so two languages make two different voices. Each
recording is decoded once to mono at 8 kHz, cut to its loudest 2 s and given a mouth stream at
25 frames/s, then cached. The columns (`SOURCE_FEATURES`) are what a user with AVSpeech- or
VoxCeleb-style clips fills instead:

- `wave` (SAMPLES,) float32 and `sample_rate`: one speaker alone;
- `frames` (FRAMES, MOUTH_HEIGHT, MOUTH_WIDTH) uint8: the per-frame visual stream, grey mouth
  crops (any face crop or per-frame lip embedding works with another visual encoder);
- `speaker` (here the language), `lang`, `stamp_id`, `audio_sha` (the decoded-content hash,
  for leak-free splits).

The mouth's opening follows the voice's smoothed loudness, made imperfect on purpose (a lag,
jitter, extra smoothing, noise, a random face size and shade) so that it stands in for lips
rather than copying the answer. `Mixtures` draws mixtures on the fly: two clips of different
speakers, a random relative gain, the sum normalised.

    sources = load_sources()                                   # a datasets.Dataset, cached
    parts = source_splits(sources, unseen=("be", "el", "da"), unseen_validation=("lt", "nl", "en"), seed=0)
    train = Mixtures(parts["train"])                           # a torch Dataset of random mixtures
"""
from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Array3D, Audio, Dataset, DatasetDict, Features, List, Value, concatenate_datasets
from tqdm.auto import tqdm

from mmcourse.data import audio_io, splits, tuxpaint
from mmcourse.data.audio_io import load_audio
from mmcourse.data.cache import cached_dataset
from mmcourse.data.sound_scenes import array_column
from mmcourse.data.splits import split_by_group
from mmcourse.runtime import item_rng, one_thread

SAMPLE_RATE = 8000          # Hz: speech below 4 kHz is enough to tell two voices apart
SECONDS = 2.0               # length of every source clip
SAMPLES = int(SAMPLE_RATE * SECONDS)
FPS = 25                    # video frames per second, as in AVSpeech
HOP = SAMPLE_RATE // FPS    # audio samples per video frame (320)
FRAMES = SAMPLES // HOP     # 50
MOUTH_HEIGHT, MOUTH_WIDTH = 16, 24
QUIET_DB = 30.0             # the mouth is closed at this many dB below the clip's loudest frame

# How imperfect the drawn mouth is (each clip draws its own from these ranges).
MAX_LAG = 2                 # frames (80 ms) the mouth runs ahead of or behind the voice
JITTER = 0.4                # standard deviation of each frame's timing, in frames
SMOOTH = 5                  # frames of extra moving-average smoothing (200 ms)
NOISE = 0.25                # standard deviation of the opening's noise (opening is 0..1)

SOURCE_FEATURES = Features({
    "wave": List(Value("float32")),              # (SAMPLES,) one voice, mono, peak 1
    "sample_rate": Value("int32"),               # SAMPLE_RATE
    "frames": Array3D((FRAMES, MOUTH_HEIGHT, MOUTH_WIDTH), "uint8"),  # the mouth, 25 frames/s
    "opening": List(Value("float32")),           # (FRAMES,) the drawn opening, 0..1 (for plots)
    "speaker": Value("string"),                  # who speaks: the language here
    "lang": Value("string"),
    "stamp_id": Value("string"),
    "audio_sha": Value("string"),                # decoded-content hash (mmcourse.data.splits.audio_hash)
})

RECIPE = (sys.modules[__name__], *tuxpaint.RECIPE, audio_io, splits.audio_hash, array_column)


def load_sources(rebuild: bool = False) -> Dataset:
    """Every distinct spoken description as a 2 s, 8 kHz clip with its mouth stream (cached).

    Rows share no recording: Tux Paint ships one recording under several names, and only the
    first row of each decoded-content hash (`audio_sha`) is kept."""
    return cached_dataset("speech-sources", _build_sources, RECIPE, rebuild)


def _build_sources() -> Dataset:
    spoken = tuxpaint.load_spoken_descriptions()
    meta, seen = [], set()
    # Filled in place, trimmed at the end: lists of per-clip arrays would be copied once more.
    waves = np.zeros((len(spoken), SAMPLES), np.float32)
    openings = np.zeros((len(spoken), FRAMES), np.float32)
    frames = np.zeros((len(spoken), FRAMES, MOUTH_HEIGHT, MOUTH_WIDTH), np.uint8)
    audio = spoken.cast_column("audio", Audio(decode=False))  # paths: load_audio decodes and resamples
    with one_thread():  # one short clip at a time
        for row in tqdm(audio, desc="decoding voices to 8 kHz", unit="clip"):
            if row["audio_sha"] in seen:
                continue
            seen.add(row["audio_sha"])
            wave, _ = load_audio(row["audio"], SAMPLE_RATE)
            wave = loudest_window(wave, SAMPLES, HOP)
            peak = wave.abs().max()
            if peak <= 0:  # digital silence has no voice to separate
                continue
            wave = wave / peak
            rng = np.random.default_rng(int(row["audio_sha"], 16) % 2**32)  # the same mouth every build
            opening = mouth_opening(wave, rng)
            n = len(meta)
            waves[n], openings[n], frames[n] = wave.numpy(), opening.numpy(), draw_mouths(opening, rng).numpy()
            meta.append({"sample_rate": SAMPLE_RATE, "speaker": row["lang"], "lang": row["lang"],
                         "stamp_id": row["stamp_id"], "audio_sha": row["audio_sha"]})
    print(f"{len(meta)} distinct recordings of {len(spoken)} spoken descriptions, "
          f"{SECONDS:g} s at {SAMPLE_RATE} Hz, mouths at {FPS} frames/s")
    # Columns built from arrays: a list of rows of NumPy arrays cost 7.3 GB here on its way to Arrow.
    n = len(meta)
    rest = Dataset.from_dict({**{k: [m[k] for m in meta] for k in meta[0]}, "frames": frames[:n]},
                             features=Features({k: v for k, v in SOURCE_FEATURES.items() if k not in ("wave", "opening")}))
    columns = [rest, array_column(waves[:n], "wave"), array_column(openings[:n], "opening")]
    return concatenate_datasets(columns, axis=1).select_columns(list(SOURCE_FEATURES)).cast(SOURCE_FEATURES)


def loudest_window(wave: torch.Tensor, length: int, step: int) -> torch.Tensor:
    """The `length` samples of `wave` (time,) with the most energy, starting on a multiple of
    `step` (so video frames stay aligned); shorter waves are zero-padded at the end."""
    if wave.ndim != 1:
        raise ValueError(f"loudest_window needs a mono wave (time,), got shape {tuple(wave.shape)}")
    if len(wave) <= length:
        return F.pad(wave, (0, length - len(wave)))
    energy = torch.cat([wave.new_zeros(1), (wave.double() ** 2).cumsum(0)])
    starts = torch.arange(0, len(wave) - length + 1, step, device=wave.device)
    best = starts[(energy[starts + length] - energy[starts]).argmax()]
    return wave[best:best + length]


def frame_loudness(wave: torch.Tensor, hop: int = HOP) -> torch.Tensor:
    """(..., time) -> (..., time // hop): each video frame's loudness in dB (RMS of its samples)."""
    frames = wave[..., : wave.shape[-1] // hop * hop].unflatten(-1, (-1, hop))
    return 10 * torch.log10(frames.pow(2).mean(-1) + 1e-10)


def mouth_opening(wave: torch.Tensor, rng: np.random.Generator, lag: int | None = None,
                  jitter: float = JITTER, smooth: int = SMOOTH, noise: float = NOISE) -> torch.Tensor:
    """(time,) voice -> (frames,) mouth opening in [0, 1] at FPS, imperfect on purpose.

    The opening rises linearly from 0 (QUIET_DB below the loudest frame) to 1 (the loudest), then:
    shifted by `lag` frames (random in -MAX_LAG..MAX_LAG when None; positive: the mouth is late),
    each frame read at a jittered time, smoothed over `smooth` frames, and noised. With
    jitter = smooth = noise = 0 and lag = 0 it is the clean loudness."""
    loud = frame_loudness(wave).double()                               # (frames,) dB
    clean = ((loud - loud.max() + QUIET_DB) / QUIET_DB).clamp(0, 1).numpy()
    n = len(clean)
    lag = int(rng.integers(-MAX_LAG, MAX_LAG + 1)) if lag is None else lag
    times = np.arange(n) - lag + rng.normal(0.0, jitter, n) * (jitter > 0)
    opening = np.interp(times, np.arange(n), clean)                    # edges hold their value
    if smooth > 1:
        opening = np.convolve(np.pad(opening, (smooth // 2, (smooth - 1) // 2), mode="edge"),
                              np.ones(smooth) / smooth, mode="valid")
    opening = opening + rng.normal(0.0, noise, n) * (noise > 0)
    return torch.from_numpy(opening.clip(0, 1)).float().to(wave.device)


def draw_mouths(opening: torch.Tensor, rng: np.random.Generator | None = None,
                height: int = MOUTH_HEIGHT, width: int = MOUTH_WIDTH) -> torch.Tensor:
    """(frames,) opening in [0, 1] -> (frames, height, width) uint8 grey mouth crops.

    Skin-grey around a dark elliptic opening whose height follows `opening` (a thin line when
    closed), with soft edges. `rng` draws a face of its own (mouth width, position, shades),
    as different people and crops would give; without it every face is the same."""
    width_share, dx, dy, skin, dark = 0.38, 0.0, 0.0, 180.0, 40.0
    if rng is not None:
        width_share, dx, dy = rng.uniform(0.3, 0.45), rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.0)
        skin, dark = rng.uniform(150, 210), rng.uniform(20, 70)
    y = torch.arange(height, dtype=torch.float32, device=opening.device) - (height - 1) / 2 - dy
    x = torch.arange(width, dtype=torch.float32, device=opening.device) - (width - 1) / 2 - dx
    half_h = (0.5 + opening.float() * 0.38 * height)[:, None, None]  # (frames, 1, 1) half-height
    half_w = width_share * width
    r = (x[None, None] / half_w) ** 2 + (y[None, :, None] / half_h) ** 2  # (frames, H, W), 1 on the edge
    inside = torch.sigmoid((1 - r) * 6)                                  # soft edge
    image = skin + (dark - skin) * inside
    return image.round().clamp(0, 255).to(torch.uint8)


def read_opening(frames: torch.Tensor) -> torch.Tensor:
    """(..., frames, H, W) uint8 mouth crops -> (..., frames) opening in [0, 1], from the pixels only.

    The share of dark pixels, rescaled per clip so its quietest frame is 0 and its widest 1:
    what a sound-blind reader of the mouth sees (the mouth-only baseline)."""
    x = frames.float() / 255
    low = x.amin(dim=(-2, -1), keepdim=True).amin(dim=-3, keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True).amax(dim=-3, keepdim=True)
    dark = ((high - x) / (high - low).clamp_min(1e-6)).mean(dim=(-2, -1))  # (..., frames)
    lo, hi = dark.amin(-1, keepdim=True), dark.amax(-1, keepdim=True)
    return (dark - lo) / (hi - lo).clamp_min(1e-6)


def source_splits(sources: Dataset, unseen: tuple[str, ...], unseen_validation: tuple[str, ...] = (),
                  seed: int = 0, test_fraction: float = 0.15, val_fraction: float = 0.1) -> DatasetDict:
    """train / validation / test (seen voices) by recording, plus test_unseen: every recording
    of the `unseen` speakers, and validation_unseen: every recording of the `unseen_validation`
    speakers (new voices to choose settings on without touching the test). None of the held-out
    speakers appears in another part."""
    have = sorted(sources.unique("speaker"))
    for name, group in (("unseen", unseen), ("unseen_validation", unseen_validation)):
        if name == "unseen_validation" and not group:
            continue
        missing = set(group) - set(have)
        if missing:
            raise ValueError(f"no recordings of speakers {sorted(missing)}; have {have}")
        if len(group) < 2:
            raise ValueError(f"a mixture of unseen voices needs at least two speakers in {name}, got {group}")
    if set(unseen) & set(unseen_validation):
        raise ValueError(f"speakers {sorted(set(unseen) & set(unseen_validation))} are in both unseen and "
                         "unseen_validation: the test's new voices must be new to the validation too")
    parts = split_by_group(sources, "audio_sha", test_fraction=test_fraction, val_fraction=val_fraction,
                           seed=seed, link_columns=["audio_sha"], holdout=[*unseen, *unseen_validation],
                           holdout_column="speaker")
    held = parts.pop("heldout")
    for_validation = np.isin(held["speaker"], list(unseen_validation))
    parts["test_unseen"] = held.select(np.flatnonzero(~for_validation))
    if unseen_validation:
        parts["validation_unseen"] = held.select(np.flatnonzero(for_validation))
    for name in ("train", "validation", "test"):
        if len(set(parts[name]["speaker"])) < 2:
            raise ValueError(f"the {name} part has fewer than two speakers: no mixture can be made")
    return parts


def mix(sources: torch.Tensor, gains_db: torch.Tensor, peak: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., K, time) sources at equal RMS, then scaled by `gains_db` (..., K) -> (mixture (..., time),
    scaled sources (..., K, time)), both rescaled together so the mixture's peak is `peak`."""
    rms = sources.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
    scaled = sources / rms * 10 ** (gains_db[..., None] / 20)
    mixture = scaled.sum(-2)
    scale = peak / mixture.abs().amax(-1, keepdim=True).clamp_min(1e-8)
    return mixture * scale, scaled * scale[..., None, :]


class Mixtures(torch.utils.data.Dataset):
    """`length` mixtures of `n_speakers` clips of different speakers from `sources` (a split).

    An item is {"mixture": (SAMPLES,), "sources": (K, SAMPLES), "frames": (K, FRAMES, H, W) uint8},
    the k-th mouth belonging to the k-th source. Each source's gain is uniform in +-`gain_db` / 2
    (at equal RMS first), so two sources differ by at most `gain_db`.
    With `seed` the items are fixed (validation, test); without it each item is new, drawn from
    torch's RNG (`mmcourse.runtime.item_rng`), so `fit` sees fresh mixtures every epoch.
    """

    def __init__(self, sources: Dataset, length: int = 1000, n_speakers: int = 2,
                 gain_db: float = 5.0, seed: int | None = None):
        speakers = np.asarray(sources["speaker"])
        if len(set(speakers)) < n_speakers:
            raise ValueError(f"{n_speakers} speakers per mixture, but the sources hold only "
                             f"{len(set(speakers))}: {sorted(set(speakers))}")
        # In memory once: indexing the Arrow table per item would cost more than the training step.
        table = sources.with_format("torch", columns=["wave", "frames"])[:]
        self.waves, self.frames = table["wave"], table["frames"]   # (N, SAMPLES), (N, FRAMES, H, W)
        self.speakers, self.length, self.n_speakers = speakers, length, n_speakers
        self.gain_db, self.seed = gain_db, seed

    def __len__(self) -> int:
        return self.length

    def draw(self, rng: np.random.Generator) -> tuple[list[int], torch.Tensor]:
        """Clip indices of `n_speakers` different speakers and their gains in dB (K,)."""
        picked: list[int] = []
        while len(picked) < self.n_speakers:
            i = int(rng.integers(len(self.speakers)))
            if self.speakers[i] not in {self.speakers[j] for j in picked}:
                picked.append(i)
        gains = torch.from_numpy(rng.uniform(-self.gain_db / 2, self.gain_db / 2, self.n_speakers)).float()
        return picked, gains

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(f"mixture {i} of {self.length}")
        rng = item_rng() if self.seed is None else np.random.default_rng((self.seed, i))
        picked, gains = self.draw(rng)
        mixture, sources = mix(self.waves[picked], gains)
        return {"mixture": mixture, "sources": sources, "frames": self.frames[picked]}
