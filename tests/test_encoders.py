"""The shared encoders: shapes, packed sequences, clear errors, and no tensor left on the CPU."""
import pytest
import torch
import torchaudio

from PIL import Image

from mmcourse.encoders import ImageCNN, SpectrogramCNN, TextEncoder, WaveformCNN, image_batch, log_mel_frontend


def test_image_batch_resizes_into_unit_range():
    images = [Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGBA", (32, 32), (0, 0, 255, 255))]
    x = image_batch(images, 32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    assert x[0, 0].eq(1).all() and x[1, 2].eq(1).all() and x[:, 1].eq(0).all()


def test_image_batch_needs_images():
    with pytest.raises(ValueError, match="no images"):
        image_batch([], 32)


def test_image_cnn_halves_the_grid_per_block_and_pools_to_its_channels():
    cnn = ImageCNN(width=4, depth=3, out_dim=10)
    images = torch.randn(2, 3, 32, 48)
    assert cnn.feature_map(images).shape == (2, 16, 4, 6) and cnn.channels == 16
    assert torch.allclose(cnn.pooled(images), cnn.feature_map(images).mean(dim=(2, 3)))
    assert cnn(images).shape == (2, 10) and cnn.out_dim == 10
    assert ImageCNN(width=4, depth=5).channels == 32  # doubling stops at 8 * width


@pytest.mark.parametrize("bad, message", [(torch.randn(3, 32, 32), r"images \[B, 3, H, W\]"),
                                          (torch.randn(1, 4, 32, 32), r"RGBA images need \.convert")])
def test_image_cnn_names_a_wrong_shape(bad, message):
    with pytest.raises(ValueError, match=message):
        ImageCNN(width=4, depth=2)(bad)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_text_encoder_ignores_padding(rnn, bidirectional):
    torch.manual_seed(0)
    enc = TextEncoder(vocab_size=20, embed_dim=8, hidden=6, rnn=rnn, bidirectional=bidirectional).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0], [4, 4, 4, 4, 4]])
    states, vector = enc(padded, torch.tensor([3, 5]))
    alone_states, alone_vector = enc(short)
    assert states.shape == (2, 5, enc.out_dim) and vector.shape == (2, enc.out_dim)
    assert enc.out_dim == 6 * (2 if bidirectional else 1)
    # The padded text gets exactly what it gets alone: the final state of its own last token.
    assert torch.allclose(vector[0], alone_vector[0], atol=1e-6)
    assert torch.allclose(states[0, :3], alone_states[0], atol=1e-6)
    assert torch.all(states[0, 3:] == 0)


def test_text_encoder_names_bad_input():
    enc = TextEncoder(vocab_size=10, embed_dim=4, hidden=4)
    with pytest.raises(ValueError, match=r"token ids \[B, L\]"):
        enc(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="integer token ids"):
        enc(torch.rand(2, 3))
    with pytest.raises(ValueError, match="lengths must give 1..3 tokens"):
        enc(torch.tensor([[1, 2, 3]]), torch.tensor([4]))
    with pytest.raises(ValueError, match="rnn must be 'gru' or 'lstm'"):
        TextEncoder(10, rnn="transformer")


def test_waveform_cnn_returns_every_layers_map_and_pools_one():
    cnn = WaveformCNN(width=4, out_dim=7)
    maps = cnn.feature_maps(torch.randn(2, 4000))
    assert [m.shape[1] for m in maps] == cnn.channels == [4, 8, 16, 32, 32]
    assert all(a.shape[-1] > b.shape[-1] for a, b in zip(maps, maps[1:]))  # time shrinks per layer
    assert cnn.pooled(torch.randn(2, 4000), layer=2).shape == (2, 16)
    assert cnn(torch.randn(2, 4000)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"waveforms \[B, T\]"):
        cnn(torch.randn(2, 1, 4000))


def test_log_mel_frontend_matches_torchaudio_with_the_same_settings():
    wave = torch.randn(2, 16000)
    ours = log_mel_frontend(16000, n_mels=40)(wave)
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=512, win_length=400, hop_length=160, n_mels=40,
                                               window_fn=torch.hamming_window)(wave)
    assert ours.shape == (2, 40, 101)
    assert torch.allclose(ours, torchaudio.functional.amplitude_to_DB(mel, 10.0, 1e-10, 0.0, 80.0), atol=1e-4)


def test_spectrogram_cnn_reads_a_log_mel_image():
    cnn = SpectrogramCNN(16000, width=4, depth=2, out_dim=5, n_mels=32)
    wave = torch.randn(3, 8000)
    assert cnn.spectrogram(wave).shape == (3, 1, 32, 51)
    assert cnn.feature_map(wave).shape == (3, 8, 8, 12)
    assert cnn(wave).shape == (3, 5)


# The meta device stands in for a GPU: a constant created on the CPU inside forward breaks here.
# (Build on the CPU, then move; a CPU tensor meeting a meta one can silently give a CPU result,
# so the tests assert the output's device.)

@pytest.mark.parametrize("make, data", [
    (lambda: ImageCNN(width=4, depth=2, out_dim=3), lambda: torch.randn(2, 3, 16, 16)),
    (lambda: WaveformCNN(width=4, out_dim=3), lambda: torch.randn(2, 4000)),
    (lambda: SpectrogramCNN(16000, width=4, depth=2, out_dim=3), lambda: torch.randn(2, 4000)),
])
def test_encoders_run_on_the_device_of_their_input(make, data):
    model = make().to("meta")
    out = model(data().to("meta"))
    assert out.device.type == "meta" and out.shape == (2, 3)


def test_text_encoder_runs_on_the_device_of_its_ids():
    enc = TextEncoder(vocab_size=10, embed_dim=4, hidden=4, bidirectional=True).to("meta")
    states, vector = enc(torch.zeros(2, 5, dtype=torch.long, device="meta"))
    assert states.device.type == vector.device.type == "meta" and vector.shape == (2, 8)
