"""Two-speaker mixtures and drawn mouths (mmcourse.data.mixtures), on synthetic voices."""
import numpy as np
import pytest
import torch
from datasets import Dataset

from mmcourse.data import mixtures as M
from mmcourse.data.splits import assert_disjoint


def bursts(starts, length=M.SAMPLES, hop=M.HOP, frames=5, seed=0):
    """A noise 'voice' that speaks for `frames` video frames from each start frame, silent elsewhere."""
    rng = np.random.default_rng(seed)
    wave = np.zeros(length, np.float32)
    for s in starts:
        wave[s * hop:(s + frames) * hop] = rng.normal(0, 0.3, frames * hop)
    return torch.from_numpy(wave)


def sources(n_per_speaker=6, speakers=("a", "b", "c", "d")):
    rows = []
    for k, speaker in enumerate(speakers):
        for i in range(n_per_speaker):
            wave = bursts([5 + 3 * i, 30], seed=10 * k + i)
            opening = M.mouth_opening(wave, np.random.default_rng(i))
            rows.append({"wave": wave.numpy(), "sample_rate": M.SAMPLE_RATE,
                         "frames": M.draw_mouths(opening).numpy(), "opening": opening.numpy(),
                         "speaker": speaker, "lang": speaker, "stamp_id": f"s{i}", "audio_sha": f"{speaker}{i}"})
    return Dataset.from_list(rows, features=M.SOURCE_FEATURES)


def test_the_mouth_stream_runs_at_25_frames_per_second_and_follows_the_voice():
    assert (M.FPS, M.HOP, M.FRAMES) == (25, 320, 50)
    wave = bursts([10])                                            # speaks in frames 10-14 only
    clean = M.mouth_opening(wave, np.random.default_rng(0), lag=0, jitter=0, smooth=1, noise=0)
    assert clean.shape == (M.FRAMES,)
    assert torch.all(clean[10:15] > 0.8) and torch.all(clean[:10] == 0) and torch.all(clean[15:] == 0)


def test_the_lag_shifts_the_mouth_by_whole_frames():
    wave = bursts([10])
    late = M.mouth_opening(wave, np.random.default_rng(0), lag=2, jitter=0, smooth=1, noise=0)
    assert torch.all(late[12:17] > 0.8) and torch.all(late[:12] == 0) and torch.all(late[17:] == 0)


def test_the_imperfect_mouth_is_not_a_copy_of_the_loudness():
    wave = bursts([5, 20, 35])
    clean = M.mouth_opening(wave, np.random.default_rng(0), lag=0, jitter=0, smooth=1, noise=0)
    noisy = M.mouth_opening(wave, np.random.default_rng(1))
    assert 0.3 < np.corrcoef(clean, noisy)[0, 1] < 0.99
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_drawn_mouths_open_with_the_opening_and_read_back_in_order():
    opening = torch.tensor([0.0, 0.25, 0.5, 1.0])
    frames = M.draw_mouths(opening, np.random.default_rng(3))
    assert frames.shape == (4, M.MOUTH_HEIGHT, M.MOUTH_WIDTH) and frames.dtype == torch.uint8
    dark = (frames < 110).sum(dim=(1, 2))
    assert torch.all(dark[1:] > dark[:-1])
    read = M.read_opening(frames)
    assert read[0] == 0 and read[-1] == 1 and torch.all(read[1:] > read[:-1])


def test_loudest_window_keeps_frame_alignment_and_pads_short_clips():
    wave = torch.zeros(3 * M.SAMPLES)
    wave[M.SAMPLES + 500: M.SAMPLES + 900] = 1.0
    window = M.loudest_window(wave, M.SAMPLES, M.HOP)
    start = int(torch.nonzero(window)[0])
    assert (M.SAMPLES + 500 - start) % M.HOP == 0 and window.sum() == 400
    short = M.loudest_window(torch.ones(100), M.SAMPLES, M.HOP)
    assert short.shape == (M.SAMPLES,) and short[:100].sum() == 100 and short[100:].abs().sum() == 0
    with pytest.raises(ValueError, match="mono"):
        M.loudest_window(torch.zeros(2, 10), 5, 1)


def test_the_mixer_applies_the_relative_gain_and_normalises_the_sum():
    rng = np.random.default_rng(0)
    s = torch.from_numpy(rng.normal(0, 1, (2, 4000))).float() * torch.tensor([[3.0], [0.1]])
    mixture, scaled = M.mix(s, torch.tensor([2.0, -3.0]))
    rms = scaled.pow(2).mean(-1).sqrt()
    assert 20 * torch.log10(rms[0] / rms[1]) == pytest.approx(5.0, abs=1e-4)  # equal RMS, then +2 and -3 dB
    assert torch.allclose(mixture, scaled.sum(0), atol=1e-6)
    assert mixture.abs().max() == pytest.approx(0.9)


def test_mixtures_pair_different_speakers_with_their_own_mouths():
    ds = sources()
    mixtures = M.Mixtures(ds, length=40, seed=7)
    item = mixtures[3]
    assert item["mixture"].shape == (M.SAMPLES,) and item["sources"].shape == (2, M.SAMPLES)
    assert item["frames"].shape == (2, M.FRAMES, M.MOUTH_HEIGHT, M.MOUTH_WIDTH)
    assert torch.equal(mixtures[3]["mixture"], item["mixture"])     # fixed with a seed
    waves = torch.from_numpy(np.stack(ds["wave"]))
    for i in range(40):
        picked, gains = mixtures.draw(np.random.default_rng((7, i)))
        assert ds[picked[0]]["speaker"] != ds[picked[1]]["speaker"]
        assert gains.abs().max() <= 2.5
        got = mixtures[i]
        for k in range(2):  # the k-th mouth belongs to the k-th source
            assert torch.equal(got["frames"][k], torch.from_numpy(np.asarray(ds[picked[k]]["frames"])))
            cos = torch.nn.functional.cosine_similarity(got["sources"][k], waves[picked[k]], dim=0)
            assert cos == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(IndexError):
        mixtures[40]
    with pytest.raises(ValueError, match="speakers"):
        M.Mixtures(ds.filter(lambda r: r["speaker"] == "a"), 4)


def test_three_speaker_mixtures():
    item = M.Mixtures(sources(), length=2, n_speakers=3, seed=0)[0]
    assert item["sources"].shape == (3, M.SAMPLES) and item["frames"].shape[0] == 3


def test_unseen_speakers_are_held_out_and_recordings_never_shared():
    ds = sources(n_per_speaker=10)
    parts = M.source_splits(ds, unseen=("c", "d"), seed=0)
    assert set(parts) == {"train", "validation", "test", "test_unseen"}
    assert set(parts["test_unseen"]["speaker"]) == {"c", "d"}
    for name in ("train", "validation", "test"):
        assert not {"c", "d"} & set(parts[name]["speaker"])
    assert_disjoint(parts, ["audio_sha"])
    six = sources(n_per_speaker=10, speakers=("a", "b", "c", "d", "e", "f"))
    parts = M.source_splits(six, unseen=("c", "d"), unseen_validation=("e", "f"), seed=0)
    assert set(parts) == {"train", "validation", "test", "test_unseen", "validation_unseen"}
    assert set(parts["validation_unseen"]["speaker"]) == {"e", "f"}
    assert set(parts["test_unseen"]["speaker"]) == {"c", "d"}
    for name in ("train", "validation", "test"):
        assert set(parts[name]["speaker"]) == {"a", "b"}
    assert_disjoint(parts, ["audio_sha"])
    with pytest.raises(ValueError, match="in both"):
        M.source_splits(six, unseen=("c", "d"), unseen_validation=("d", "e"))
    with pytest.raises(ValueError, match="no recordings"):
        M.source_splits(ds, unseen=("x", "c"))
    with pytest.raises(ValueError, match="at least two"):
        M.source_splits(ds, unseen=("c",))
