"""Read audio from a file, raw bytes or a `datasets` Audio value into one float tensor.

Decoding is torchcodec's job (it wraps ffmpeg); resampling is torchaudio's. This module only
turns the many shapes a sound arrives in into `(waveform, sample_rate)` and gives clear errors.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
import torchaudio

FFMPEG_HINT = "is ffmpeg installed? (sudo apt-get install ffmpeg)"


def load_audio(source: Any, sample_rate: int | None = None,
               mono: bool = True) -> tuple[torch.Tensor, int]:
    """Decode `source` and return `(waveform, sample_rate)`.

    `source` is a file path, the file's bytes, a torchcodec `AudioDecoder` (what a row of a
    datasets 5.x `Audio` column holds), or a dict from an `Audio(decode=False)` column
    (`{"bytes": ..., "path": ...}`) or an older datasets version (`{"array", "sampling_rate"}`).
    The waveform is float32 in [-1, 1]: shape (time,) when `mono` (channels averaged), else
    (channels, time). With `sample_rate` the waveform is resampled to that rate.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    name = _describe(source)
    wave, sr = _decode(source, name)  # (channels, time)
    if wave.shape[-1] == 0:
        raise ValueError(f"empty audio file {name}: it decodes to no samples")
    if mono:
        wave = wave.mean(dim=0)
    if sample_rate is not None and sample_rate != sr:
        wave = torchaudio.functional.resample(wave, orig_freq=sr, new_freq=sample_rate)
        sr = sample_rate
    # Lossy codecs (Vorbis, MP3) and resampling overshoot full scale slightly.
    return wave.clamp(-1.0, 1.0).to(torch.float32).contiguous(), int(sr)


def _decode(source: Any, name: str) -> tuple[torch.Tensor, int]:
    """(channels, time) float32 tensor and its sample rate, from any supported source."""
    if isinstance(source, dict):
        if source.get("array") is not None:
            wave = torch.as_tensor(source["array"], dtype=torch.float32)
            return (wave if wave.ndim == 2 else wave.reshape(1, -1)), int(source["sampling_rate"])
        source = source["bytes"] if source.get("bytes") is not None else source.get("path")
        if source is None:
            raise ValueError("audio dict has neither 'bytes' nor 'path' nor 'array': nothing to decode")
    decoder_cls = _decoder_class()
    if isinstance(source, decoder_cls):
        decoder = source
    else:
        source = _readable(source, name)
        try:
            decoder = decoder_cls(source)
        except Exception as err:
            raise ValueError(f"cannot decode {name}: {_reason(err)}; {FFMPEG_HINT}") from err
    try:
        samples = decoder.get_all_samples()
    except Exception as err:
        if "No audio frames" in str(err):  # a valid header with nothing after it
            raise ValueError(f"empty audio file {name}: it decodes to no samples") from err
        raise ValueError(f"cannot decode {name}: {_reason(err)}; {FFMPEG_HINT}") from err
    return samples.data.to(torch.float32), int(samples.sample_rate)


def _decoder_class():
    try:
        from torchcodec.decoders import AudioDecoder
    except Exception as err:  # torchcodec loads ffmpeg's libraries on import
        raise RuntimeError(f"cannot load the audio decoder (torchcodec): {_reason(err)}; "
                           f"{FFMPEG_HINT}") from err
    return AudioDecoder


def _readable(source: Any, name: str) -> str | bytes:
    """`source` as a path string or bytes for the decoder, after checking it is not empty."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ValueError(f"empty audio file {name}")
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"audio file {path} does not exist")
        if path.stat().st_size == 0:
            raise ValueError(f"empty audio file {path}")
        return str(path)
    raise TypeError(f"cannot read audio from a {type(source).__name__}: pass a path, bytes, "
                    "a torchcodec AudioDecoder or a datasets Audio value")


def _describe(source: Any) -> str:
    """How error messages name the source: its path where known, else its size or type."""
    if isinstance(source, dict):
        return str(source["path"]) if source.get("path") else _describe(source.get("bytes"))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"<{type(source).__name__}>"


def _reason(err: Exception) -> str:
    # torchcodec prefixes its messages with a C++ source location; keep the readable part.
    return re.sub(r"^.*?\.cpp:\d+, ", "", str(err))
