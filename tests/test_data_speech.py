"""espeak-ng synthesis: audio, caching, parameters, errors."""
import shutil

import numpy as np
import pytest
import torch

from mmcourse.data import speech
from mmcourse.data.speech import list_variants, list_voices, synthesize, synthesize_many

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (sudo apt-get install espeak-ng)")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    return tmp_path


def cached_files(cache):
    return sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())


def median_f0(wave: torch.Tensor, sr: int, fmin: float = 60, fmax: float = 400) -> float:
    """Median fundamental frequency over voiced 40 ms frames (normalised autocorrelation peak)."""
    x, n = wave.numpy(), int(0.04 * sr)
    lo, hi = int(sr / fmax), int(sr / fmin)
    f0s = []
    for start in range(0, len(x) - n - hi, n // 2):
        frame = x[start:start + n + hi]
        if np.sqrt((frame ** 2).mean()) < 0.05:
            continue  # silence or a consonant
        a = frame[:n]
        r = [a @ frame[lag:lag + n] / (np.linalg.norm(a) * np.linalg.norm(frame[lag:lag + n]) + 1e-9)
             for lag in range(lo, hi)]
        if max(r) > 0.7:
            f0s.append(sr / (lo + int(np.argmax(r))))
    assert len(f0s) >= 5, "too few voiced frames to estimate pitch"
    return float(np.median(f0s))


@needs_espeak
def test_synthesize_returns_audible_float_audio():
    wave, sr = synthesize("a duck to the left of two apples")
    assert sr == 22050
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert 1.0 < len(wave) / sr < 4.0
    assert wave.abs().max() <= 1.0
    assert wave.pow(2).mean().sqrt() > 0.02  # not silence


@needs_espeak
def test_cache_hit_returns_identical_samples_and_writes_nothing(cache):
    first, _ = synthesize("an apple", pitch=60)
    files = cached_files(cache)
    assert len(files) == 1 and files[0].parent.name == "speech" and files[0].suffix == ".wav"
    mtime = (cache / files[0]).stat().st_mtime_ns
    second, _ = synthesize("an apple", pitch=60)
    assert torch.equal(first, second)
    assert cached_files(cache) == files
    assert (cache / files[0]).stat().st_mtime_ns == mtime


@needs_espeak
def test_parameters_change_the_audio(cache):
    low, sr = synthesize("a duck and an apple", pitch=20)
    high, _ = synthesize("a duck and an apple", pitch=80)
    assert median_f0(high, sr) > 1.25 * median_f0(low, sr)
    slow, _ = synthesize("a duck and an apple", speed=100)
    fast, _ = synthesize("a duck and an apple", speed=300)
    assert len(slow) > 2 * len(fast)
    plain, _ = synthesize("a duck and an apple")
    variant, _ = synthesize("a duck and an apple", variant="f1")
    assert not torch.equal(plain, variant)
    assert len(cached_files(cache)) == 6


@needs_espeak
def test_non_ascii_text():
    french, sr = synthesize("Un canard à côté d'une pomme, ça y est.", voice="fr")
    assert sr == 22050 and french.pow(2).mean().sqrt() > 0.02
    russian, _ = synthesize("утка и яблоко", voice="ru")
    assert len(russian) / sr > 0.5


@needs_espeak
def test_text_is_never_read_as_an_option():
    wave, sr = synthesize("-p 99 hello")
    assert len(wave) / sr > 0.5


@needs_espeak
def test_voices_and_variants_are_listed():
    voices, variants = list_voices(), list_variants()
    assert {"en", "en-us", "fr", "de", "ru"} <= set(voices)
    assert {"f1", "m1", "klatt"} <= set(variants)


@needs_espeak
@pytest.mark.parametrize("kwargs, message", [
    ({"text": ""}, "non-empty string"),
    ({"text": "   "}, "non-empty string"),
    ({"pitch": 100}, r"pitch=100 must be an integer in \[0, 99\]"),
    ({"pitch": -1}, "pitch=-1"),
    ({"pitch": 50.5}, "pitch=50.5"),
    ({"speed": 60}, r"speed=60 must be an integer in \[80, 450\]"),
    ({"amplitude": 300}, "amplitude=300"),
    ({"voice": "klingon"}, "unknown espeak-ng voice 'klingon'"),
    ({"variant": "nobody"}, "unknown espeak-ng variant 'nobody'"),
    ({"variant": "ALEX"}, "did you mean 'Alex'"),
])
def test_bad_arguments_give_clear_errors(kwargs, message, cache):
    args = {"text": "hello", **kwargs}
    with pytest.raises(ValueError, match=message):
        synthesize(**args)
    assert cached_files(cache) == []


def test_missing_binary_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no espeak-ng on PATH
    with pytest.raises(FileNotFoundError, match="sudo apt-get install espeak-ng"):
        speech.espeak_path()
    with pytest.raises(FileNotFoundError, match="espeak-ng was not found"):
        synthesize("hello")


@needs_espeak
def test_synthesize_many_matches_single_calls():
    items = ["a cat", {"text": "a dog", "pitch": 70}, {"text": "un chien", "voice": "fr"}]
    results = synthesize_many(items, progress=False)
    assert len(results) == 3
    assert torch.equal(results[0][0], synthesize("a cat")[0])
    assert torch.equal(results[1][0], synthesize("a dog", pitch=70)[0])
    assert torch.equal(results[2][0], synthesize("un chien", voice="fr")[0])


@needs_espeak
def test_speak_returns_the_wav_that_synthesize_caches(cache):
    from mmcourse.data.audio_io import load_audio
    wav = speech.speak("seven", voice="en", pitch=40, speed=160, variant="m3")
    assert isinstance(wav, bytes) and wav[:4] == b"RIFF" and cached_files(cache) == []
    spoken, sr = load_audio(wav)
    cached, cached_sr = synthesize("seven", voice="en", pitch=40, speed=160, variant="m3")
    assert sr == cached_sr and torch.equal(spoken, cached)
