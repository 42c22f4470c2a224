"""Notebook 06's experiment: which of six languages is a spoken description in?

Tux Paint's descriptions were recorded by a few volunteers per language, each with their own
voice and microphone, so a classifier that tells the six sets apart may be hearing the language,
the speakers or the equipment. Two things keep the experiment honest:

* every clip is brought to one format first (mono, 16 kHz, peak 1), so sample rate, channel
  count and recording level are no cue;
* a control set says the same sentences with espeak-ng, in the same six languages, with the
  synthetic speaker (variant, pitch, speed) drawn at random for every clip: there the language
  is the only thing that goes with the label.

    parts = language_splits(load_spoken_descriptions(LANGS), n_stamps=120, seed=0)
    x_mfcc, x_stats, y = featurise(parts["train"])
    synthetic = synthesize_parallel(parts["test"], seed=0)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from mmcourse.audio.features import pooled_mfcc, waveform_stats
from mmcourse.data.audio_io import load_audio
from mmcourse.data.speech import synthesize
from mmcourse.data.splits import split_by_group

LANGS = ("bg", "ca", "es", "fr", "ro", "ru")  # the six languages with ~750 recordings each
SAMPLE_RATE = 16000                           # every clip is resampled to this, mono
# espeak-ng speaker colourings drawn for the control: men's, women's and odd voices alike.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "f4", "klatt", "croak", "whisper")
PITCH, SPEED = (25, 75), (130, 210)           # ranges drawn for each synthetic clip
CS = (0.01, 0.1, 1.0, 10.0)                   # inverse regularisation strengths tried on validation


def language_splits(spoken: Dataset, n_stamps: int, seed: int, test_fraction: float = 0.4,
                    val_fraction: float = 0.2) -> DatasetDict:
    """Recordings of `n_stamps` stamps drawn with `seed`, split train/validation/test by stamp.

    Stamps that share a recording (Tux Paint ships identical files under several names) are
    linked through `audio_sha` and land in one split, so no recording is heard on two sides.
    """
    stamp_ids = sorted(set(spoken["stamp_id"]))
    if not 3 <= n_stamps <= len(stamp_ids):
        raise ValueError(f"n_stamps must be between 3 and {len(stamp_ids)} (the stamps described), got {n_stamps}")
    chosen = set(np.random.default_rng(seed).choice(stamp_ids, size=n_stamps, replace=False).tolist())
    subset = spoken.select([i for i, s in enumerate(spoken["stamp_id"]) if s in chosen])
    return split_by_group(subset, "stamp_id", test_fraction, val_fraction, seed, link_columns=["audio_sha"])


def clip_features(wave: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled MFCC [40], waveform statistics [7]) of one mono clip at SAMPLE_RATE, scaled to peak 1."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"bring clips to {SAMPLE_RATE} Hz first (load_audio(..., sample_rate={SAMPLE_RATE})), "
                         f"got {sample_rate} Hz")
    wave = wave / wave.abs().max().clamp(min=1e-8)  # peak 1: the recording level is no cue
    return pooled_mfcc(wave, sample_rate), waveform_stats(wave, sample_rate)


def featurise(clips: Sequence[tuple[torch.Tensor, int]] | Dataset,
              labels: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pooled MFCCs [N, 40], waveform statistics [N, 7], languages [N]) for human or synthetic clips.

    `clips` is a dataset of recordings (its `audio` is decoded to mono SAMPLE_RATE and its `lang`
    gives the labels) or a list of (waveform, sample rate) pairs with `labels`.
    """
    if isinstance(clips, Dataset):
        labels = clips["lang"]
        clips = (load_audio(audio, sample_rate=SAMPLE_RATE) for audio in clips["audio"])
    mfccs, stats = [], []
    for wave, sr in tqdm(clips, total=len(labels), desc="features", leave=False):
        m, s = clip_features(wave, sr)
        mfccs.append(m)
        stats.append(s)
    return torch.stack(mfccs).numpy(), torch.stack(stats).numpy(), np.asarray(labels)


def synthesize_parallel(recordings: Dataset, seed: int) -> tuple[list[tuple[torch.Tensor, int]], list[str]]:
    """espeak-ng saying what each recording says, in its language, with a random synthetic speaker.

    Only recordings whose text is in their own language (`text_lang == lang`) are said. The
    speaker of clip i (variant, pitch, speed) comes from the generator (seed, i), so the same
    seed always gives the same clips, and no speaker goes with one language.
    Returns ([(waveform at SAMPLE_RATE, SAMPLE_RATE)], [language]).
    """
    clips, labels = [], []
    rows = recordings.select_columns(["text", "lang", "text_lang"])
    for i, row in enumerate(tqdm(rows, desc="espeak-ng", leave=False)):
        if row["text_lang"] != row["lang"]:
            continue
        rng = np.random.default_rng([seed, i])
        wave, sr = synthesize(row["text"], voice=row["lang"], variant=str(rng.choice(VARIANTS)),
                              pitch=int(rng.integers(*PITCH)), speed=int(rng.integers(*SPEED)))
        clips.append((load_audio({"array": wave.numpy(), "sampling_rate": sr}, sample_rate=SAMPLE_RATE)))
        labels.append(row["lang"])
    return clips, labels


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
              cs: Sequence[float] = CS) -> tuple[Pipeline, float, dict[float, float]]:
    """Standardise, then multinomial logistic regression, with C chosen on the validation part.

    Returns (the chosen pipeline refit on train, its C, validation accuracy of every C).
    """
    probes, scores = {}, {}
    for c in cs:
        probes[c] = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(train_x, train_y)
        scores[c] = probes[c].score(val_x, val_y)
    best = max(cs, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    return probes[best], best, scores
