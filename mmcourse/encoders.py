"""The encoders every notebook shares: images, token sequences, waveforms and spectrograms.

Each turns one modality into vectors; the notebooks' own modules only add what is specific
to their task (a loss, a decoder, an attention). All are small on purpose, sized by a
`width` so the gpu profile can make them bigger without code changes.

    image_batch      PIL images -> the float [N, 3, S, S] tensor ImageCNN reads
    ImageCNN         images [B, 3, H, W] -> feature map [B, C, h, w] or one vector [B, D]
    TextEncoder      token ids [B, L] -> per-token states [B, L, D] and one vector [B, D]
    WaveformCNN      raw waveform [B, T] -> 1-D feature maps per layer, or one vector [B, D]
    SpectrogramCNN   waveform [B, T] -> log-mel [B, 1, M, F] -> ImageCNN -> [B, D]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchaudio
from PIL import Image
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _check_shape(name: str, x: Tensor, dims: int, what: str) -> None:
    if x.dim() != dims:
        raise ValueError(f"{name} expects {what}, got a tensor of shape {tuple(x.shape)}")


# ---------------------------------------------------------------- images

def image_batch(images: Sequence[Image.Image], size: int) -> Tensor:
    """PIL images -> float [N, 3, size, size] in [0, 1] (resized with a box filter when needed)."""
    if len(images) == 0:
        raise ValueError("image_batch got no images")
    arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BOX)
                         if im.size != (size, size) else im.convert("RGB")) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


class ImageCNN(nn.Module):
    """`depth` conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool), each halving the image.

    `feature_map` keeps the spatial grid (what attention in 03 and localisation in 10 look
    at); `forward` averages it into one vector and, with `out_dim`, projects it linearly.
    Channels double per block from `width`, up to 8 * width.
    """

    def __init__(self, width: int = 32, depth: int = 4, out_dim: int | None = None, in_channels: int = 3):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"ImageCNN needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
        chans = [in_channels] + [width * 2 ** min(i, 3) for i in range(depth)]
        blocks = []
        for c_in, c_out in zip(chans, chans[1:]):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.blocks = nn.Sequential(*blocks)
        self.channels = chans[-1]  # C of the feature map
        self.head = nn.Linear(self.channels, out_dim) if out_dim else nn.Identity()
        self.out_dim = out_dim or self.channels
        self.in_channels = in_channels

    def feature_map(self, images: Tensor) -> Tensor:  # [B, in, H, W] -> [B, C, H / 2^depth, W / 2^depth]
        _check_shape("ImageCNN", images, 4, f"images [B, {self.in_channels}, H, W]")
        if images.shape[1] != self.in_channels:
            raise ValueError(f"ImageCNN expects {self.in_channels} channels, got images of shape "
                             f"{tuple(images.shape)}; RGBA images need .convert('RGB') first")
        return self.blocks(images)

    def pooled(self, images: Tensor) -> Tensor:  # [B, in, H, W] -> [B, C]
        return self.feature_map(images).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:  # [B, in, H, W] -> [B, out_dim]
        return self.head(self.pooled(images))


# ---------------------------------------------------------------- token sequences

class TextEncoder(nn.Module):
    """Word embeddings read by a GRU or LSTM; padded positions are skipped (packed sequences).

    Returns (states [B, L, D], vector [B, D]) with D = hidden (x2 when bidirectional): the
    state at every token, and the last layer's final state (both directions concatenated).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden: int = 128, rnn: str = "gru",
                 bidirectional: bool = False, num_layers: int = 1, dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        cells = {"gru": nn.GRU, "lstm": nn.LSTM}
        if rnn not in cells:
            raise ValueError(f"rnn must be 'gru' or 'lstm', got {rnn!r}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = cells[rnn](embed_dim, hidden, num_layers=num_layers, batch_first=True,
                              bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _check_shape("TextEncoder", ids, 2, "token ids [B, L]")
        if ids.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"TextEncoder expects integer token ids, got {ids.dtype}")
        x = self.embedding(ids)                                    # [B, L, E]
        if lengths is None:
            states, last = self.rnn(x)
        else:
            if lengths.shape != ids.shape[:1] or int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]:
                raise ValueError(f"lengths must give 1..{ids.shape[1]} tokens for each of the {ids.shape[0]} "
                                 f"texts; got {lengths.tolist()}")
            # pack_padded_sequence wants the lengths on the CPU, whatever the device of the ids.
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            states, last = self.rnn(packed)
            states, _ = pad_packed_sequence(states, batch_first=True, total_length=ids.shape[1])
        h = last[0] if isinstance(last, tuple) else last           # LSTM gives (h, c); [layers * dirs, B, H]
        directions = 2 if self.rnn.bidirectional else 1
        vector = torch.cat(list(h[-directions:]), dim=-1)          # [B, D]
        return states, vector


# ---------------------------------------------------------------- sound

# (kernel, stride, max-pool) per layer: SoundNet's shape (Aytar et al., 2016) cut to five layers.
SOUNDNET_SMALL = ((32, 2, 4), (16, 2, 4), (8, 2, 1), (8, 2, 1), (4, 2, 2))


class WaveformCNN(nn.Module):
    """A 1-D CNN on the raw waveform, as SoundNet: no Fourier transform, the filters are learned.

    Layer i is conv(kernel, stride) -> BatchNorm -> ReLU -> max-pool, with `width * 2^i`
    channels (up to 8 * width). `feature_maps` returns every layer's output [B, C_i, T_i];
    `pooled(wave, layer)` averages one layer over time (features to transfer);
    `forward` pools the last layer and, with `out_dim`, projects it.
    """

    def __init__(self, width: int = 16, layers: Sequence[tuple[int, int, int]] = SOUNDNET_SMALL,
                 out_dim: int | None = None):
        super().__init__()
        chans = [1] + [width * 2 ** min(i, 3) for i in range(len(layers))]
        self.layers = nn.ModuleList()
        for (kernel, stride, pool), c_in, c_out in zip(layers, chans, chans[1:]):
            block = [nn.Conv1d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
                     nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]
            if pool > 1:
                block.append(nn.MaxPool1d(pool, ceil_mode=True))
            self.layers.append(nn.Sequential(*block))
        self.channels = chans[1:]
        self.head = nn.Linear(chans[-1], out_dim) if out_dim else nn.Identity()
        self.out_dim = out_dim or chans[-1]

    def feature_maps(self, wave: Tensor) -> list[Tensor]:  # [B, T] -> [[B, C_i, T_i] per layer]
        _check_shape("WaveformCNN", wave, 2, "waveforms [B, T] (mono)")
        x, maps = wave[:, None, :], []
        for layer in self.layers:
            x = layer(x)
            maps.append(x)
        return maps

    def pooled(self, wave: Tensor, layer: int = -1) -> Tensor:  # [B, T] -> [B, C_layer]
        return self.feature_maps(wave)[layer].mean(dim=-1)

    def forward(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, out_dim]
        return self.head(self.pooled(wave))


def log_mel_frontend(sample_rate: int, n_mels: int = 64, win_ms: float = 25.0,
                     hop_ms: float = 10.0) -> nn.Module:
    """Waveform [B, T] -> log-mel in dB [B, n_mels, F], with torchaudio (notebook 06 wrote it by hand)."""
    win = round(sample_rate * win_ms / 1000)
    n_fft = 1 << (win - 1).bit_length()
    return nn.Sequential(
        torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, win_length=win,
                                             hop_length=round(sample_rate * hop_ms / 1000), n_mels=n_mels,
                                             window_fn=torch.hamming_window),
        torchaudio.transforms.AmplitudeToDB("power", top_db=80.0))


class SpectrogramCNN(nn.Module):
    """A waveform turned into a spectrogram by `frontend` (default: log-mel), read as a
    one-channel image by an `ImageCNN`. Input statistics are normalised by a BatchNorm."""

    def __init__(self, sample_rate: int, width: int = 16, depth: int = 4, out_dim: int | None = None,
                 n_mels: int = 64, frontend: nn.Module | None = None):
        super().__init__()
        self.frontend = frontend if frontend is not None else log_mel_frontend(sample_rate, n_mels)
        self.norm = nn.BatchNorm2d(1)
        self.cnn = ImageCNN(width, depth, out_dim, in_channels=1)
        self.out_dim = self.cnn.out_dim

    def spectrogram(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, 1, M, F]
        _check_shape("SpectrogramCNN", wave, 2, "waveforms [B, T] (mono)")
        return self.norm(self.frontend(wave)[:, None])

    def feature_map(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, C, M', F']
        return self.cnn.feature_map(self.spectrogram(wave))

    def forward(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, out_dim]
        return self.cnn(self.spectrogram(wave))
