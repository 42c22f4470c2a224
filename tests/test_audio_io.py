import io
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Audio, Dataset, Features

from mmcourse.data.audio_io import load_audio

SR = 8000
BLACKBIRD = Path("/usr/share/tuxpaint/stamps/animals/birds/blackbird.ogg")


def wav_bytes(samples: np.ndarray, sr: int = SR) -> bytes:
    """16-bit PCM WAV; `samples` is (time,) or (time, channels) in [-1, 1]."""
    samples = samples[:, None] if samples.ndim == 1 else samples
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(samples.shape[1])
        f.setsampwidth(2)
        f.setframerate(sr)
        f.writeframes((samples * 32767).round().astype("<i2").tobytes())
    return buf.getvalue()


def sine(freq: float, seconds: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.5 * np.sin(2 * np.pi * freq * t)


def test_path_and_bytes_give_the_samples_written(tmp_path):
    x = sine(440)
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(x))
    for source in (path, str(path), path.read_bytes()):
        wave_, sr = load_audio(source)
        assert sr == SR and wave_.dtype == torch.float32 and wave_.shape == (len(x),)
        np.testing.assert_allclose(wave_.numpy(), x, atol=1.5 / 32768)


def test_stereo_is_averaged_or_kept(tmp_path):
    left, right = sine(440), sine(660)
    data = wav_bytes(np.stack([left, right], axis=1))
    mono, _ = load_audio(data)
    np.testing.assert_allclose(mono.numpy(), (left + right) / 2, atol=1.5 / 32768)
    both, _ = load_audio(data, mono=False)
    assert both.shape == (2, len(left))
    np.testing.assert_allclose(both[1].numpy(), right, atol=1.5 / 32768)


def test_resampling_keeps_the_pitch():
    wave_, sr = load_audio(wav_bytes(sine(440, seconds=1.0)), sample_rate=16000)
    assert sr == 16000 and wave_.shape == (16000,)
    peak_hz = np.argmax(np.abs(np.fft.rfft(wave_.numpy()))) * sr / len(wave_)
    assert abs(peak_hz - 440) <= 1


def test_datasets_audio_values_and_dicts(tmp_path):
    x = sine(330)
    path = tmp_path / "b.wav"
    path.write_bytes(wav_bytes(x))
    ds = Dataset.from_dict({"audio": [str(path)]}, features=Features({"audio": Audio()}))
    decoded, sr = load_audio(ds[0]["audio"])  # datasets 5.x: a torchcodec AudioDecoder
    assert sr == SR
    np.testing.assert_allclose(decoded.numpy(), x, atol=1.5 / 32768)
    raw = ds.cast_column("audio", Audio(decode=False))[0]["audio"]
    assert torch.equal(load_audio(raw)[0], decoded)
    from_array, sr = load_audio({"array": x, "sampling_rate": SR})
    assert sr == SR
    np.testing.assert_allclose(from_array.numpy(), x, atol=1e-6)


def test_output_is_clamped_to_full_scale():
    loud, _ = load_audio({"array": np.array([0.0, 1.3, -2.0]), "sampling_rate": SR})
    assert loud.tolist() == [0.0, 1.0, -1.0]


def test_empty_file_and_bytes_are_named(tmp_path):
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty audio file .*empty\.ogg"):
        load_audio(empty)
    with pytest.raises(ValueError, match="empty audio file"):
        load_audio(b"")
    with pytest.raises(ValueError, match=r"empty audio file x\.ogg"):
        load_audio({"bytes": b"", "path": "x.ogg"})  # an Audio(decode=False) value
    with pytest.raises(ValueError, match="empty audio file .*no samples"):
        load_audio(wav_bytes(np.zeros(0)))  # a valid header and no frames


def test_corrupt_file_says_what_and_suggests_ffmpeg(tmp_path):
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"cannot decode .*bad\.ogg: .+; is ffmpeg installed\? "
                                         r"\(sudo apt-get install ffmpeg\)"):
        load_audio(bad)


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(TypeError, match="cannot read audio from a int"):
        load_audio(3)
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        load_audio(wav_bytes(sine(440)), sample_rate=0)
    with pytest.raises(ValueError, match="neither 'bytes' nor 'path'"):
        load_audio({"bytes": None, "path": None})


@pytest.mark.skipif(not BLACKBIRD.exists(), reason="tuxpaint-stamps-default not installed")
def test_real_tuxpaint_ogg():
    wave_, sr = load_audio(BLACKBIRD)
    assert sr == 44100 and wave_.ndim == 1
    assert 7.0 < len(wave_) / sr < 9.0  # the file's header says 7.9 s
    assert wave_.abs().max() <= 1.0 and wave_.abs().max() > 0.5  # Vorbis overshoots; clamped
