"""The hand-written audio features agree with torch.stft and torchaudio.transforms."""
import math

import pytest
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from mmcourse.audio import features as af

SR = 16_000


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> None:
    """Equal to `tol`, relative to the reference's scale where that is large."""
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    scale = max(1.0, b.abs().max().item())
    err = (a - b).abs().max().item()
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol} x {scale:.3g}"


@pytest.fixture
def wave() -> torch.Tensor:
    """0.5 s of a chirp plus noise: energy moves across frequencies and every bin is non-zero."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(SR // 2) / SR
    chirp = torch.sin(2 * math.pi * (200 + 3000 * t) * t)
    return 0.5 * chirp + 0.05 * torch.randn(t.shape, generator=g)


# ---------------------------------------------------------------- framing and windows

def test_frame_signal_shapes_and_content():
    x = torch.arange(10.0)
    frames = af.frame_signal(x, frame_length=4, hop_length=3, center=False)
    assert frames.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    centred = af.frame_signal(x, frame_length=4, hop_length=2)  # reflect-padded by 2 each side
    assert centred.shape == (1 + 10 // 2, 4)
    assert centred[0].tolist() == [2, 1, 0, 1]       # frame 0 is centred on sample 0
    assert centred[1, 2].item() == 2                  # frame t is centred on sample t * hop


def test_frame_signal_keeps_batch_dims():
    x = torch.randn(3, 2, 100)
    frames = af.frame_signal(x, 20, 10)
    assert frames.shape == (3, 2, 11, 20)
    assert torch.equal(frames[1, 0], af.frame_signal(x[1, 0], 20, 10))


def test_frame_signal_rejects_short_signal():
    with pytest.raises(ValueError, match="shorter than one frame"):
        af.frame_signal(torch.zeros(5), 8, 4, center=False)
    with pytest.raises(ValueError, match="too short to reflect-pad"):
        af.frame_signal(torch.zeros(3), 8, 4)


@pytest.mark.parametrize("n", [1, 2, 7, 400, 512])
@pytest.mark.parametrize("periodic", [True, False])
def test_hamming_window_matches_torch(n, periodic):
    close(af.hamming_window(n, periodic), torch.hamming_window(n, periodic=periodic), 1e-6)


def test_get_window_names_and_errors():
    assert torch.equal(af.get_window("rectangular", 5), torch.ones(5))
    close(af.get_window("hann", 8), torch.hann_window(8), 1e-7)
    with pytest.raises(ValueError, match="unknown window 'hanning'"):
        af.get_window("hanning", 8)
    with pytest.raises(ValueError, match="expected \\(8,\\)"):
        af.get_window(torch.ones(4), 8)


# ---------------------------------------------------------------- STFT and spectrograms

@pytest.mark.parametrize("n_fft,hop,win,center", [(512, 128, None, True), (400, 160, 320, True),
                                                  (256, 100, 201, False)])
def test_stft_matches_torch_stft(wave, n_fft, hop, win, center):
    ours = af.stft(wave, n_fft, hop, win, window="hamming", center=center)
    ref = torch.stft(wave, n_fft, hop, win, window=torch.hamming_window(win or n_fft), center=center,
                     pad_mode="reflect", return_complex=True)
    assert ours.dtype == ref.dtype
    close(ours.real, ref.real)
    close(ours.imag, ref.imag)


def test_stft_batched_equals_one_by_one(wave):
    batch = torch.stack([wave, wave.flip(0)])
    out = af.stft(batch, 256, 64)
    assert out.shape == (2, 129, 1 + len(wave) // 64)
    close(out[1].abs(), af.stft(wave.flip(0), 256, 64).abs())


def test_stft_rejects_window_longer_than_fft(wave):
    with pytest.raises(ValueError, match="win_length .* cannot exceed n_fft"):
        af.stft(wave, 256, 64, win_length=300)


def test_stft_finds_a_pure_tone():
    n_fft = 512
    tone = torch.sin(2 * math.pi * 1000 * torch.arange(SR) / SR)
    spec = af.power_spectrogram(tone, n_fft, 256)
    peak_bin = spec.mean(dim=1).argmax().item()
    assert peak_bin == round(1000 * n_fft / SR)   # 1 kHz lands in bin f * n_fft / sr = 32


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_power_spectrogram_matches_torchaudio(wave, power):
    ref = T.Spectrogram(n_fft=400, win_length=320, hop_length=160, window_fn=torch.hamming_window,
                        power=power)(wave)
    close(af.power_spectrogram(wave, 400, 160, 320, power=power), ref)


@pytest.mark.parametrize("stype,top_db", [("power", None), ("power", 80.0), ("magnitude", 60.0)])
def test_amplitude_to_db_matches_torchaudio(wave, stype, top_db):
    spec = af.power_spectrogram(wave, 512, 128, power=2.0 if stype == "power" else 1.0)
    ref = T.AmplitudeToDB(stype=stype, top_db=top_db)(spec)
    ours = af.amplitude_to_db(spec, stype, top_db=top_db)
    close(ours, ref)
    if top_db is not None:
        assert ours.max() - ours.min() <= top_db + 1e-4


def test_amplitude_to_db_ref_and_stype():
    x = torch.tensor([[1.0, 10.0, 100.0]])
    assert af.amplitude_to_db(x, ref=10.0, top_db=None).tolist() == [[-10.0, 0.0, 10.0]]
    assert af.amplitude_to_db(x, "magnitude", top_db=None).tolist() == [[0.0, 20.0, 40.0]]
    with pytest.raises(ValueError, match="stype"):
        af.amplitude_to_db(x, "energy")


# ---------------------------------------------------------------- mel scale

@pytest.mark.parametrize("mel_scale", ["htk", "slaney"])
def test_mel_scale_round_trip_and_anchor(mel_scale):
    hz = torch.tensor([0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0])
    close(af.mel_to_hz(af.hz_to_mel(hz, mel_scale), mel_scale), hz, 1e-5)
    anchor = {"htk": 1000.0, "slaney": 15.0}[mel_scale]   # both scales pin 1 kHz
    assert af.hz_to_mel(1000.0, mel_scale).item() == pytest.approx(anchor, rel=1e-4)
    assert (af.hz_to_mel(hz, mel_scale).diff() > 0).all()


def test_mel_scale_rejects_unknown():
    with pytest.raises(ValueError, match="'htk' or 'slaney'"):
        af.hz_to_mel(100.0, "bark")


@pytest.mark.parametrize("n_freqs,f_min,f_max,n_mels,sr", [(201, 0.0, 8000.0, 40, 16000),
                                                           (257, 50.0, 7600.0, 64, 16000),
                                                           (1025, 0.0, 11025.0, 128, 22050)])
@pytest.mark.parametrize("mel_scale,norm", [("htk", None), ("slaney", None), ("slaney", "slaney")])
def test_mel_filterbank_matches_torchaudio(n_freqs, f_min, f_max, n_mels, sr, mel_scale, norm):
    ours = af.mel_filterbank(n_freqs, f_min, f_max, n_mels, sr, mel_scale, norm)
    ref = AF.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sr, norm=norm, mel_scale=mel_scale)
    close(ours, ref)


def _melscale_fbanks_float64(*args, **kwargs) -> torch.Tensor:
    # torchaudio's melscale_fbanks has no dtype argument: it works in the default dtype.
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return AF.melscale_fbanks(*args, **kwargs)
    finally:
        torch.set_default_dtype(default)


@pytest.mark.parametrize("n_freqs,f_min,f_max,n_mels,sr", [(201, 0.0, 8000.0, 40, 16000),
                                                           (257, 50.0, 7600.0, 64, 16000),
                                                           (1025, 0.0, 11025.0, 128, 22050)])
@pytest.mark.parametrize("mel_scale,norm", [("htk", None), ("slaney", None), ("slaney", "slaney")])
def test_mel_filterbank_in_float64_matches_torchaudio_in_float64(n_freqs, f_min, f_max, n_mels, sr, mel_scale,
                                                                 norm):
    # Edges built from float32 mel bounds were up to 4e-6 (relative) off; float64 ones agree to rounding.
    ours = af.mel_filterbank(n_freqs, f_min, f_max, n_mels, sr, mel_scale, norm, dtype=torch.float64)
    ref = _melscale_fbanks_float64(n_freqs, f_min, f_max, n_mels, sr, norm=norm, mel_scale=mel_scale)
    assert ours.dtype == ref.dtype == torch.float64
    scale = ref.abs().max().item()  # relative to the filters' height (~1e-3 with norm='slaney')
    assert (ours - ref).abs().max().item() <= 1e-12 * scale


def test_mel_filterbank_triangles():
    fb = af.mel_filterbank(257, 0.0, 8000.0, 40, SR)
    assert fb.min() >= 0 and fb.max() <= 1
    peaks = fb.argmax(dim=0)
    assert (peaks.diff() >= 0).all()                    # band centres rise with the band index
    assert (peaks.diff()[-10:] > peaks.diff()[:10].max()).all()  # and spread out at high Hz
    with pytest.raises(ValueError, match="Nyquist"):
        af.mel_filterbank(257, 0.0, 9000.0, 40, SR)


def test_melscale_of_our_spectrogram_matches_torchaudio(wave):
    power = af.power_spectrogram(wave, 512, 160)
    ref = T.MelScale(n_mels=40, sample_rate=SR, n_stft=257)(power)
    ours = (power.T @ af.mel_filterbank(257, 0.0, SR / 2, 40, SR)).T
    close(ours, ref)


def test_log_mel_matches_torchaudio(wave):
    kw = dict(sample_rate=SR, n_fft=512, win_length=400, hop_length=160, n_mels=40, f_min=20.0,
              f_max=7600.0)
    mel = T.MelSpectrogram(**kw, window_fn=torch.hamming_window)(wave)
    ref = T.AmplitudeToDB("power", top_db=80.0)(mel)
    close(af.log_mel(wave, **kw), ref)


# ---------------------------------------------------------------- cepstra

@pytest.mark.parametrize("norm", ["ortho", None])
def test_dct_matrix_matches_torchaudio(norm):
    close(af.dct_matrix(13, 40, norm), AF.create_dct(13, 40, norm), 1e-6)


def test_dct_ortho_is_orthonormal():
    d = af.dct_matrix(40, 40)
    close(d.T @ d, torch.eye(40), 1e-5)
    with pytest.raises(ValueError, match="cannot exceed n_mels"):
        af.dct_matrix(41, 40)


@pytest.mark.parametrize("n_mfcc,n_mels,n_fft,hop", [(13, 40, 512, 160), (20, 64, 1024, 256)])
def test_mfcc_matches_torchaudio(wave, n_mfcc, n_mels, n_fft, hop):
    ref = T.MFCC(sample_rate=SR, n_mfcc=n_mfcc,
                 melkwargs=dict(n_fft=n_fft, hop_length=hop, n_mels=n_mels,
                                window_fn=torch.hamming_window))(wave)
    close(af.mfcc(wave, SR, n_mfcc, n_fft, hop, n_mels=n_mels), ref)


def test_frame_lengths_in_milliseconds():
    assert af.frame_lengths(16_000) == (512, 400, 160)
    assert af.frame_lengths(44_100) == (2048, 1102, 441)
    assert af.frame_lengths(8_000, win_ms=32, hop_ms=8) == (256, 256, 64)  # a power of two stays


def test_pooled_mfcc_is_fixed_size_and_batched(wave):
    short, long = af.pooled_mfcc(wave[:4000], SR), af.pooled_mfcc(wave, SR)
    assert short.shape == long.shape == (40,)
    c = af.mfcc(wave, SR, n_fft=512, win_length=400, hop_length=160)  # 25 ms every 10 ms at 16 kHz
    close(long, torch.cat([c.mean(1), c.std(1)]))
    batch = af.pooled_mfcc(torch.stack([wave, 0.1 * wave]), SR, n_mfcc=13)
    assert batch.shape == (2, 26)
    close(batch[1], af.pooled_mfcc(0.1 * wave, SR, n_mfcc=13))


def test_pooled_mfcc_frames_follow_the_sample_rate(wave):
    """The same sound at 16 kHz and 44.1 kHz gives nearly the same shape: frames are set in ms.

    Only the mean of c0 (overall level) moves: longer windows in samples collect more energy.
    """
    up = AF.resample(wave, SR, 44_100)
    a, b = af.pooled_mfcc(wave, SR)[1:], af.pooled_mfcc(up, 44_100)[1:]
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99
    mismatched = af.pooled_mfcc(up, 16_000)[1:]   # wrong rate: frames 2.8x too short
    assert torch.nn.functional.cosine_similarity(a, mismatched, dim=0) < 0.99


def test_waveform_stats_on_known_signals():
    square = torch.tensor([1.0, -1.0] * 800)                   # 0.1 s at 16 kHz
    mean, std, skew, kurt, peak, zcr, dur = af.waveform_stats(square, SR).tolist()
    assert mean == pytest.approx(0.0) and std == pytest.approx(1.0, rel=1e-3)
    assert skew == pytest.approx(0.0, abs=1e-6) and kurt == pytest.approx(1.0, rel=1e-3)
    assert peak == 1.0 and dur == pytest.approx(0.1)
    assert zcr == pytest.approx(SR)                            # a sign change at every sample
    tone = torch.sin(2 * math.pi * 100 * torch.arange(SR) / SR + 0.1)
    assert af.waveform_stats(tone, SR)[5].item() == pytest.approx(200, abs=2)  # 2 crossings a cycle
    assert af.waveform_stats(torch.stack([tone, square.repeat(10)]), SR).shape == (2, 7)


# ---------------------------------------------------------------- devices, dtypes, bad input

@pytest.mark.parametrize("fn", [
    lambda x: af.stft(x, 256), lambda x: af.power_spectrogram(x, 256), lambda x: af.log_mel(x, 16000),
    lambda x: af.mfcc(x, 16000), lambda x: af.pooled_mfcc(x, 16000), lambda x: af.waveform_stats(x, 16000),
])
def test_every_feature_builds_its_constants_on_the_waveforms_device(fn):
    # The meta device stands in for a GPU: a window or filterbank left on the CPU breaks here.
    out = fn(torch.randn(2, 4000).to("meta"))
    assert out.device.type == "meta"


def test_float64_waveforms_stay_float64():
    wave = torch.randn(4000, dtype=torch.float64)
    assert af.log_mel(wave, 16000).dtype == torch.float64 and af.mfcc(wave, 16000).dtype == torch.float64


def test_integer_and_non_finite_waveforms_are_refused():
    with pytest.raises(ValueError, match=r"torch.int16; convert it to float"):
        af.stft(torch.zeros(4000, dtype=torch.int16), 256)
    wave = torch.randn(4000)
    wave[100] = float("nan")
    with pytest.raises(ValueError, match="1 NaN or infinite samples"):
        af.log_mel(wave, 16000)


@pytest.mark.parametrize("kwargs", [dict(hop_length=0), dict(win_length=0), dict(n_fft=0)])
def test_impossible_frame_sizes_are_errors_not_defaults(kwargs):
    with pytest.raises(ValueError, match="must be a positive number of samples"):
        af.stft(torch.randn(4000), **{"n_fft": 256, **kwargs})
