"""Speech on demand with espeak-ng: text, voice, pitch and speed in, a waveform out.

espeak-ng is a formant synthesiser: robotic, but unlimited, offline and fast (about 10 ms
an utterance), with ~130 voices and ~100 variants to play the part of different speakers.
Each utterance is cached as a WAV file named by a hash of everything that shaped it, so a
second run reads it back instead of synthesising again.

    wave, sr = synthesize("a duck to the left of two apples", pitch=70)   # (T,) float32, 22050
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmcourse.data.audio_io import load_audio
from mmcourse.files import atomic_path
from mmcourse.runtime import cache_dir

PITCH_RANGE = (0, 99)
SPEED_RANGE = (80, 450)  # words per minute
AMPLITUDE_RANGE = (0, 200)
INSTALL_HINT = "install it with `sudo apt-get install espeak-ng` (macOS: `brew install espeak-ng`)"


def espeak_path() -> str:
    """The espeak-ng executable, or a FileNotFoundError that says how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise FileNotFoundError(f"espeak-ng was not found on PATH; {INSTALL_HINT}")
    return path


def _run_bytes(args: list[str], text: str | None = None) -> bytes:
    done = subprocess.run([espeak_path(), *args], input=None if text is None else text.encode("utf-8"),
                          capture_output=True, check=False)
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or stderr:  # espeak-ng reports a bad voice on stderr with exit code 0
        raise RuntimeError(f"espeak-ng {' '.join(args)} failed: {stderr or f'exit code {done.returncode}'}")
    return done.stdout


def _run(args: list[str], text: str | None = None) -> str:
    return _run_bytes(args, text).decode("utf-8", "replace")


@functools.lru_cache(maxsize=None)
def _voice_table(path: str, which: str) -> tuple[tuple[str, ...], ...]:
    """Rows of `espeak-ng --voices[=variant]`: (language, gender, name, file, other languages...)."""
    # Columns: Pty Language Age/Gender VoiceName File Other-Languages, e.g. "(en 10)(zh 5)".
    rows = []
    for line in _run([f"--voices={which}" if which else "--voices"]).splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            aliases = re.findall(r"\((\S+) \d+\)", line)
            rows.append((*fields[1:5], *aliases))
    return tuple(rows)


def list_voices() -> list[str]:
    """Voice (language) codes `synthesize` accepts: 'en', 'en-us', 'fr', 'fr-fr', ..."""
    codes = set()
    for language, _, _, _, *aliases in _voice_table(espeak_path(), ""):
        codes.add(language)
        codes.update(aliases)
    return sorted(codes)


def list_variants() -> list[str]:
    """Variant names (speaker colourings, case-sensitive): 'adam', 'Alex', 'f1', 'klatt', ..."""
    return sorted(row[3].split("/")[-1] for row in _voice_table(espeak_path(), "variant"))


@functools.lru_cache(maxsize=None)
def _version(path: str) -> str:
    return _run(["--version"]).split("Data at")[0].strip()


def _check(text: str, voice: str, pitch: int, speed: int, variant: str | None, amplitude: int) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text to speak must be a non-empty string, got {text!r}")
    for name, value, (low, high) in (("pitch", pitch, PITCH_RANGE), ("speed", speed, SPEED_RANGE),
                                     ("amplitude", amplitude, AMPLITUDE_RANGE)):
        if not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high}]")
    if voice not in list_voices():
        raise ValueError(f"unknown espeak-ng voice {voice!r}; see list_voices() (e.g. 'en', 'en-us', 'fr', 'de')")
    if variant is not None and variant not in list_variants():
        close = [v for v in list_variants() if v.lower() == str(variant).lower()]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown espeak-ng variant {variant!r}; {hint}see list_variants() (names are case-sensitive)")


def speech_cache_path(text: str, voice: str = "en", pitch: int = 50, speed: int = 175,
                      variant: str | None = None, amplitude: int = 100) -> Path:
    """Where `synthesize` keeps this utterance: cache_dir()/speech/<sha1 of params and espeak version>.wav."""
    params = {"text": text, "voice": voice, "pitch": int(pitch), "speed": int(speed), "variant": variant,
              "amplitude": int(amplitude), "espeak": _version(espeak_path())}
    key = hashlib.sha1(json.dumps(params, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    return cache_dir() / "speech" / f"{key}.wav"


def _voice_args(voice: str, pitch: int, speed: int, variant: str | None, amplitude: int) -> list[str]:
    # Text goes in on stdin (-b 1: UTF-8), so text starting with "-" is never read as an option.
    return ["-v", voice if variant is None else f"{voice}+{variant}", "-p", str(pitch), "-s", str(speed),
            "-a", str(amplitude), "-b", "1"]


def speak(text: str, voice: str = "en", pitch: int = 50, speed: int = 175, variant: str | None = None,
          amplitude: int = 100) -> bytes:
    """`synthesize` without the file cache, for callers that cache what they make themselves
    (a dataset of thousands of words): the WAV file's bytes, for `audio_io.load_audio`. Only
    the espeak-ng process runs here, so threads can run many at once (decoding in those threads
    too grew memory by about 0.16 MB a word)."""
    _check(text, voice, pitch, speed, variant, amplitude)
    return _run_bytes([*_voice_args(voice, pitch, speed, variant, amplitude), "--stdout"], text=text)


def synthesize(text: str, voice: str = "en", pitch: int = 50, speed: int = 175,
               variant: str | None = None, amplitude: int = 100) -> tuple[torch.Tensor, int]:
    """Speak `text`: (waveform (T,) float32 in [-1, 1), sample rate 22050). Cached on disk.

    voice: a code from list_voices(); variant: a speaker colouring from list_variants();
    pitch 0-99 (50 normal), speed 80-450 words per minute, amplitude 0-200 (100 normal).
    """
    _check(text, voice, pitch, speed, variant, amplitude)
    path = speech_cache_path(text, voice, pitch, speed, variant, amplitude)
    if not path.exists():
        with atomic_path(path) as tmp:
            _run([*_voice_args(voice, pitch, speed, variant, amplitude), "-w", str(tmp)], text=text)
    return load_audio(path)


def synthesize_many(items: Iterable[str | dict], progress: bool = True) -> list[tuple[torch.Tensor, int]]:
    """`synthesize` over many items: each a text, or a dict of its keyword arguments."""
    items = list(items)
    return [synthesize(item) if isinstance(item, str) else synthesize(**item)
            for item in tqdm(items, desc="espeak-ng", disable=not progress)]
