import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from mmcourse import viz


def test_to_image_array_accepts_pil_array_and_tensor():
    pil = Image.new("RGBA", (4, 3), (255, 0, 0, 128))
    assert viz.to_image_array(pil).shape == (3, 4, 4)
    chw = torch.rand(3, 5, 6)
    assert np.allclose(viz.to_image_array(chw), chw.permute(1, 2, 0).numpy())
    assert viz.to_image_array(np.full((2, 2, 3), 255, np.uint8)).max() == 1.0
    with pytest.raises(ValueError, match="cannot show an image of shape"):
        viz.to_image_array(np.zeros((2, 2, 5)))


def test_show_images_grid_and_title_mismatch():
    fig = viz.show_images([torch.rand(3, 8, 8)] * 5, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    plt.close(fig)
    with pytest.raises(ValueError, match="5 images but 2 titles"):
        viz.show_images([torch.rand(3, 8, 8)] * 5, titles=["a", "b"])
    with pytest.raises(ValueError, match="no images"):
        viz.show_images([])


def test_figures_are_returned_once_never_left_open_in_pyplot():
    # A figure left open in pyplot would be shown a second time at the end of the cell.
    plt.close("all")
    made = [viz.show_images([torch.rand(3, 8, 8)]), viz.overlay_heatmap(torch.rand(3, 8, 8), torch.rand(2, 2)),
            viz.plot_waveform(torch.rand(100), 100), viz.plot_spectrogram(torch.rand(4, 5), 100, 10),
            viz.plot_embedding_2d(np.random.rand(4, 2), list("abab")), viz.three_kinds_figure()]
    assert all(isinstance(f, Figure) for f in made)
    assert plt.get_fignums() == []
    fig, axes = viz.new_figure(1, 2)
    assert viz.plot_waveform(torch.rand(100), 100, ax=axes[0, 1]) is axes[0, 1]  # given an ax: that ax


def test_heatmap_and_spectrogram_check_shapes():
    ax = viz.overlay_heatmap(torch.rand(3, 32, 32), torch.rand(7, 7)).axes[0]
    assert len(ax.images) == 2
    with pytest.raises(ValueError, match="2-D"):
        viz.overlay_heatmap(torch.rand(3, 32, 32), torch.rand(7))
    ax = viz.plot_spectrogram(torch.rand(201, 50), sample_rate=16000, hop_length=160).axes[0]
    assert ax.images[0].get_extent()[1] == pytest.approx(0.5)  # 50 frames x 10 ms
    with pytest.raises(ValueError, match="y_axis"):
        viz.plot_spectrogram(torch.rand(4, 4), 16000, 160, y_axis="log")
    plt.close("all")


def test_waveform_player_and_source():
    wave = torch.sin(torch.linspace(0, 100, 8000))
    ax = viz.plot_waveform(wave, 8000).axes[0]
    assert ax.get_xlim()[1] == pytest.approx(1.0)
    assert viz.audio_player(wave, 8000).data[:4] == b"RIFF"
    with pytest.raises(ValueError, match="mono"):
        viz.audio_player(torch.rand(2, 100), 8000)
    assert "def show_source" in viz.show_source(viz.show_source).data
    plt.close("all")


def test_embedding_map_checks_input():
    ax = viz.plot_embedding_2d(np.random.rand(6, 2), list("aabbcc")).axes[0]
    assert len(ax.collections) == 3
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        viz.plot_embedding_2d(np.random.rand(6, 3), list("aabbcc"))
    plt.close("all")


def test_figure_png_frame_strip_and_frames_gif():
    import io

    fig, _ = viz.new_figure()
    png = viz.figure_png(fig, dpi=20)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    frames = np.stack([np.full((4, 3), v, np.uint8) for v in (0, 50, 100, 150, 200)])   # (T, H, W)
    strip = viz.frame_strip(frames, every=2, count=2)
    assert strip.shape == (4, 2 * (3 + 1))                        # frames 0 and 2, a gap after each
    assert (strip[:, :3] == 0).all() and (strip[:, 4:7] == 100).all() and (strip[:, 3] == 255).all()
    gif = Image.open(io.BytesIO(viz.frames_gif(frames, fps=25, scale=2)))
    assert gif.format == "GIF" and gif.n_frames == 5 and gif.size == (6, 8)
    assert gif.info["duration"] == 40                             # 1000 ms / 25 frames


def test_few_shot_curves_and_group_bars_draw_what_they_are_given():
    fig = viz.few_shot_curves({"a": {1: [0.2, 0.4], 3: [0.5, 0.5]}, "b": {1: [0.1], 3: [0.2]}}, chance=0.05)
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.lines[:2]] == [[pytest.approx(0.3), 0.5], [0.1, 0.2]]
    assert list(ax.get_xticks()) == [1, 3]
    bars = viz.group_bars({"x": 0.1, "y": 0.7, "z": 0.4}, chance=0.1, title="per speaker")
    heights = [p.get_height() for p in bars.axes[0].patches]
    assert heights == [0.7, 0.4, 0.1] and [t.get_text() for t in bars.axes[0].get_xticklabels()] == ["y", "z", "x"]


def test_filter_responses_sort_filters_by_the_frequency_they_pass():
    sr, k = 8000, 32
    t = torch.arange(k) / sr
    tones = torch.stack([torch.cos(2 * torch.pi * f * t) * torch.hann_window(k) for f in (3000, 500, 1500)])
    fig = viz.filter_responses({"tones": tones[:, None, :], "random": torch.randn(5, 1, k)}, sr)
    picture = fig.axes[0].images[0].get_array()
    assert picture.shape == (3, 129) and len(fig.axes[1].images) == 1
    peaks = np.asarray(picture).argmax(1)
    assert list(peaks) == sorted(peaks) and abs(peaks[0] * sr / 256 - 500) < 100
