"""Audio-visual speech separation helpers (mmcourse.referencing.separation)."""
import itertools
import math

import pytest
import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from mmcourse.referencing import separation as S

T = 4000


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_si_sdr_on_a_hand_made_case():
    s = torch.zeros(1000)
    s[::2], s[1::2] = 1.0, -1.0                                    # zero mean
    n = torch.zeros(1000)
    n[::4], n[1::4], n[2::4], n[3::4] = 1.0, 1.0, -1.0, -1.0       # zero mean, orthogonal to s
    estimate = 3.0 * (s + 0.1 * n)                                 # 20 dB above the noise, rescaled
    assert float(s @ n) == 0
    assert S.si_sdr(estimate, s).item() == pytest.approx(20.0, abs=1e-4)
    assert S.si_sdr(s, s).item() > 70                              # only EPS limits a perfect estimate


def test_si_sdr_matches_torchmetrics_and_ignores_scale():
    ref, est = noise(3, 2, T), noise(3, 2, T, seed=1) + noise(3, 2, T)
    ours = S.si_sdr(est, ref)
    assert ours.shape == (3, 2)
    assert torch.allclose(ours, scale_invariant_signal_distortion_ratio(est, ref, zero_mean=True), atol=1e-4)
    assert torch.allclose(S.si_sdr(0.01 * est + 0.5, ref), ours, atol=1e-3)
    with pytest.raises(ValueError, match="shape"):
        S.si_sdr(est, ref[..., :-1])


def test_si_sdr_improvement_of_the_mixture_is_zero():
    sources = noise(4, 2, T)
    mixture = sources.sum(1)
    assert torch.allclose(S.si_sdr_improvement(mixture[:, None].expand_as(sources), sources, mixture),
                          torch.zeros(4), atol=1e-5)
    assert torch.all(S.si_sdr_improvement(sources, sources, mixture) > 40)


def test_pit_matches_a_brute_force_permutation_loop():
    for k in (2, 3):
        sources = noise(5, k, 2000)
        estimates = sources[:, torch.randperm(k, generator=torch.Generator().manual_seed(k))] + 0.5 * noise(5, k, 2000, seed=2)
        best, order = S.pit_si_sdr(estimates, sources)
        brute = torch.stack([torch.stack([S.si_sdr(estimates[:, list(p)][:, j], sources[:, j]) for j in range(k)]).mean(0)
                             for p in itertools.permutations(range(k))])          # (k!, B)
        assert torch.allclose(best, brute.max(0).values, atol=1e-4)
        reordered = torch.gather(estimates, 1, order[..., None].expand_as(estimates))
        assert torch.allclose(S.si_sdr(reordered, sources).mean(1), best, atol=1e-4)


def test_stft_round_trip_and_shapes():
    wave = noise(2, 3, T)
    spec = S.stft(wave)
    assert spec.shape == (2, 3, S.N_FFT // 2 + 1, T // S.HOP + 1) and spec.is_complex()
    assert torch.allclose(S.istft(spec, T), wave, atol=1e-5)


def test_the_ideal_complex_mask_rebuilds_each_source():
    sources = noise(2, 2, T)
    mixture = sources.sum(1)
    estimates = S.apply_masks(mixture, S.ideal_complex_mask(sources))
    assert torch.allclose(estimates, sources, atol=1e-4)


def test_the_ideal_ratio_mask_is_a_bounded_upper_bound():
    sources = noise(3, 2, T)
    mask = S.ideal_ratio_mask(sources)
    assert mask.min() >= 0 and mask.max() <= 1 + 1e-6
    assert torch.allclose(mask.pow(2).sum(1), torch.ones_like(mask[:, 0]), atol=1e-5)
    gain = S.si_sdr_improvement(S.apply_masks(sources.sum(1), mask), sources, sources.sum(1))
    assert torch.all(gain > 2)                                     # white noises overlap in every bin


def test_the_bounded_complex_mask_stays_below_one_and_keeps_the_direction():
    real, imag = noise(1000) * 5, noise(1000, seed=1) * 5
    mask = S.bounded_complex_mask(real, imag)
    assert mask.abs().max() <= 1 + 1e-6                            # tanh rounds to 1.0 in float32 far out
    z = torch.complex(real, imag)
    assert torch.allclose(torch.angle(mask), torch.angle(z), atol=1e-5)
    assert S.bounded_complex_mask(torch.tensor(math.atanh(0.5)), torch.tensor(0.0)).real == pytest.approx(0.5)
    assert S.bounded_complex_mask(torch.zeros(1), torch.zeros(1)).abs().item() == 0


def test_video_frames_are_interpolated_at_each_stft_frame_time():
    video = torch.arange(50.0)                                     # frame t centred on sample 320 t + 160
    up = S.to_audio_frames(video, T // S.HOP + 1 + 100)            # STFT frame n centred on sample 128 n
    n = torch.arange(up.shape[-1])
    expected = ((n * 128 - 160) / 320).clamp(0, 49)
    assert torch.allclose(up, expected, atol=1e-5)
    step = torch.zeros(50)
    step[10:] = 1                                                  # from 0.4 s on
    up = S.to_audio_frames(step, 126)
    # Frame 10 is centred on 0.42 s; STFT frames 23, 24, 27 on 0.368, 0.384, 0.432 s.
    assert up[23] == 0 and up[24] == pytest.approx(0.1, abs=1e-5) and up[27] == 1


def test_mouth_masks_share_each_frame_between_the_speakers():
    opening = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]])   # (B, K, T)
    masks = S.mouth_masks(opening, 7, hop=160, video_hop=320)
    assert masks.shape == (1, 2, 1, 7)
    assert torch.allclose(masks.sum(1), torch.ones(1, 1, 7))
    assert masks[0, 0, 0, 0] > 0.99 and masks[0, 1, 0, 0] < 0.01
    assert torch.allclose(masks[0, :, 0, -1], torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("mask", ["complex", "magnitude"])
@pytest.mark.parametrize("faces", [True, False])
def test_separator_shapes_and_starting_point(mask, faces):
    torch.manual_seed(0)
    model = S.Separator(faces=faces, mask=mask, channels=8, visual_dim=4, hidden=8)
    mixture = noise(2, T)
    frames = torch.randint(0, 255, (2, 2, T // 320, 16, 24), dtype=torch.uint8)
    out = model(mixture, frames if faces else None)
    assert out.shape == (2, 2, T)
    _, masks = model.masks(mixture, frames if faces else None)
    assert masks.shape == (2, 2, S.N_FFT // 2 + 1, T // S.HOP + 1)
    assert masks.abs().max() <= 1
    if faces:
        with pytest.raises(ValueError, match="one mouth stream per speaker"):
            model(mixture)


def test_separation_loss_follows_the_faces_or_searches_the_permutation():
    torch.manual_seed(0)
    batch = {"mixture": noise(2, T), "sources": noise(2, 2, T, seed=1),
             "frames": torch.randint(0, 255, (2, 2, T // 320, 16, 24), dtype=torch.uint8)}
    for faces in (True, False):
        model = S.Separator(faces=faces, channels=8, visual_dim=4, hidden=8)
        loss, logs = S.separation_loss(model, batch)
        loss.backward()
        assert loss.item() == pytest.approx(-logs["si_sdr"])
        assert all(p.grad is not None for p in model.parameters())
        spec_loss, _ = S.separation_loss(model, batch, loss="spectrogram")
        assert spec_loss.item() > 0
    with pytest.raises(ValueError, match="loss"):
        S.separation_loss(model, batch, loss="l1")


def test_swapping_the_faces_swaps_the_outputs_of_a_separator_that_follows_them():
    class FollowsFaces(torch.nn.Module):
        faces = True

        def forward(self, mixture, frames):                        # speaker k gets source frames[:, k, 0, 0, 0]
            return torch.stack([batch["sources"][torch.arange(2), frames[:, k, 0, 0, 0].long()] for k in range(2)], 1)

    frames = torch.zeros(2, 2, 3, 1, 1, dtype=torch.uint8)
    frames[:, 1] = 1
    batch = {"mixture": noise(2, T), "sources": noise(2, 2, T, seed=1), "frames": frames}
    batch["mixture"] = batch["sources"].sum(1)
    right = S.score_mixtures(S.model_separator(FollowsFaces()), [batch])
    wrong = S.score_mixtures(S.model_separator(FollowsFaces(), swap_faces=True), [batch])
    assert (right > 30).all() and (wrong < 0).all()


def test_helpers_create_tensors_on_their_inputs_device():
    x = torch.empty(2, 3, 40, device="meta")
    assert S.to_audio_frames(x, 9).device.type == "meta"
    assert S.mouth_masks(torch.empty(2, 2, 5, device="meta"), 9).device.type == "meta"
    assert S.si_sdr(x, x).device.type == "meta"
    assert S.bounded_complex_mask(x, x).device.type == "meta"
    assert S.compress(torch.empty(3, 4, dtype=torch.complex64, device="meta")).device.type == "meta"


def test_helpers_keep_float64():
    wave = noise(2, T).double()
    assert S.stft(wave).dtype == torch.complex128
    assert S.istft(S.stft(wave), T).dtype == torch.float64
    assert S.to_audio_frames(torch.zeros(2, 5, dtype=torch.float64), 9).dtype == torch.float64
