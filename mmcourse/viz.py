"""Figures and players for notebooks: image grids, heatmaps, waveforms, spectrograms, audio, source.

One rule for every helper here: a helper that makes a figure returns that `Figure`, built
without pyplot, so it is shown exactly once: as the value of the cell, or with
`display(fig)`. Given an existing `ax`, a helper draws into it and returns that Axes.
"""
from __future__ import annotations

import inspect
import math
import textwrap
from typing import Callable, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6, 4),
               **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A pyplot-free Figure and its [nrows, ncols] array of Axes (shown once, when displayed)."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)


def to_image_array(image) -> np.ndarray:
    """PIL image, HxW(xC) array or CxHxW tensor -> HxWxC (or HxW) float array in [0, 1]."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB")) / 255.0
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3, 4):
            image = image.permute(1, 2, 0)  # CxHxW -> HxWxC
        image = image.numpy()
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"cannot show an image of shape {array.shape}: expected HxW, HxWx3/4 or 3xHxW")
    if array.max(initial=0) > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def show_images(images: Sequence, titles: Sequence[str] | None = None, ncols: int = 6,
                size: float = 2.0, cmap: str | None = None, suptitle: str | None = None) -> Figure:
    """A grid of images with optional titles (wrapped to the cell width) -> Figure."""
    if len(images) == 0:
        raise ValueError("show_images got no images")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4 * bool(titles)))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(to_image_array(images[i]), cmap=cmap)
            if titles is not None:
                ax.set_title(_wrap(str(titles[i]), int(size * 9)), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, max(width, 8))[:3])


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Axes, Figure | None]:
    """The Axes to draw into, and the new Figure to return when the caller gave none."""
    if ax is not None:
        return ax, None
    fig, axes = new_figure(figsize=figsize)
    return axes[0, 0], fig


def overlay_heatmap(image, heat, ax: Axes | None = None, alpha: float = 0.5,
                    cmap: str = "jet", title: str | None = None) -> Axes | Figure:
    """Draw `heat` (any HxW grid, e.g. 7x7 attention) stretched over `image`."""
    picture = to_image_array(image)
    heat = heat.detach().float().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat, float)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (HxW), got shape {heat.shape}")
    ax, fig = _axes(ax, (3, 3))
    h, w = picture.shape[:2]
    ax.imshow(picture)
    ax.imshow(heat, cmap=cmap, alpha=alpha, extent=(0, w, h, 0), interpolation="bilinear")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return fig or ax


def _as_1d(wave) -> np.ndarray:
    wave = wave.detach().float().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, float)
    wave = np.squeeze(wave)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {wave.shape}; average the channels first")
    return wave


def plot_waveform(wave, sample_rate: int, ax: Axes | None = None,
                  title: str | None = None) -> Axes | Figure:
    """Amplitude against time in seconds."""
    wave = _as_1d(wave)
    ax, fig = _axes(ax, (8, 2))
    ax.plot(np.arange(len(wave)) / sample_rate, wave, linewidth=0.6)
    ax.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, len(wave) / sample_rate))
    if title:
        ax.set_title(title)
    return fig or ax


def plot_spectrogram(spec, sample_rate: int, hop_length: int, ax: Axes | None = None,
                     y_axis: str = "linear", title: str | None = None, cmap: str = "magma",
                     colorbar: bool = True, unit: str = "dB") -> Axes | Figure:
    """Show a [freq, time] spectrogram. y_axis: 'linear' (Hz up to Nyquist), 'mel' (band index) or 'coef'."""
    spec = spec.detach().float().cpu().numpy() if isinstance(spec, torch.Tensor) else np.asarray(spec, float)
    if spec.ndim != 2:
        raise ValueError(f"spectrogram must be 2-D [freq, time], got shape {spec.shape}")
    ax, fig = _axes(ax, (8, 3))
    seconds = spec.shape[1] * hop_length / sample_rate
    top = {"linear": sample_rate / 2, "mel": spec.shape[0], "coef": spec.shape[0]}.get(y_axis)
    if top is None:
        raise ValueError(f"y_axis must be 'linear', 'mel' or 'coef', not {y_axis!r}")
    image = ax.imshow(spec, origin="lower", aspect="auto", cmap=cmap, extent=(0, seconds, 0, top))
    ax.set(xlabel="time (s)",
           ylabel={"linear": "frequency (Hz)", "mel": "mel band", "coef": "coefficient"}[y_axis])
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=unit, pad=0.01)
    if title:
        ax.set_title(title)
    return fig or ax


def audio_player(wave, sample_rate: int):
    """An inline player (IPython.display.Audio), normalised so quiet clips are audible."""
    from IPython.display import Audio
    return Audio(_as_1d(wave), rate=int(sample_rate), normalize=True)


def figure_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of a Figure, for an `ipywidgets.Image` updated in place; a pyplot figure is closed."""
    import io

    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def frame_strip(frames, every: int = 2, count: int = 12) -> np.ndarray:
    """(T, H, W) uint8 video frames -> one (H, count * (W + 1)) image of every `every`-th frame,
    a white column between them."""
    picked = np.asarray(frames, dtype=np.uint8)[::every][:count]
    gap = np.full((picked.shape[1], 1), 255, np.uint8)
    return np.concatenate([np.concatenate([f, gap], 1) for f in picked], 1)


def frames_gif(frames, fps: int = 25, scale: int = 6) -> bytes:
    """An animated GIF (bytes) of (T, H, W) uint8 video frames at `fps`, each pixel `scale` wide."""
    import io
    pictures = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
                for f in np.asarray(frames, dtype=np.uint8)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=round(1000 / fps), loop=0)
    return buffer.getvalue()


def few_shot_curves(scores: dict[str, dict[int, Sequence[float]]], chance: float,
                    ylabel: str = "accuracy") -> Figure:
    """Few-shot accuracy against labels per class: one line per contender (`scores[name][shots]`
    holds one accuracy per episode), the mean with a band of one standard deviation."""
    fig, axes = new_figure(figsize=(5.5, 3.4))
    ax = axes[0, 0]
    for name, by_shots in scores.items():
        shots = sorted(by_shots)
        mean = np.array([np.mean(by_shots[k]) for k in shots])
        sd = np.array([np.std(by_shots[k]) for k in shots])
        ax.plot(shots, mean, marker="o", label=name)
        ax.fill_between(shots, mean - sd, mean + sd, alpha=0.2)
    ax.axhline(chance, color="gray", ls="--", label="chance")
    ax.set_xticks(sorted({k for by_shots in scores.values() for k in by_shots}))
    ax.set(xlabel="labelled examples per class", ylabel=ylabel)
    ax.legend(fontsize=8)
    return fig


def group_bars(values: dict[str, float], chance: float | None = None, title: str = "",
               ylabel: str = "accuracy") -> Figure:
    """One bar per group (a speaker, a language), sorted, with a chance line."""
    fig, axes = new_figure(figsize=(max(4.0, 0.32 * len(values)), 3.0))
    ax = axes[0, 0]
    names = sorted(values, key=values.get, reverse=True)
    ax.bar(range(len(names)), [values[n] for n in names], color="tab:blue")
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", label="chance")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    return fig


def filter_responses(filters: dict[str, torch.Tensor], sample_rate: int, n_fft: int = 256) -> Figure:
    """The magnitude responses of a waveform network's first-layer filters, one panel per
    network (`filters[name]`: conv weights [C, 1, K]): one row per filter, sorted by the
    frequency it passes best, in dB below its own peak. Learned band-pass filters show as a
    bright diagonal; random ones as noise across all frequencies."""
    fig, axes = new_figure(1, len(filters), figsize=(4.2 * len(filters), 3.2))
    for ax, (name, weight) in zip(axes[0], filters.items()):
        w = weight.detach().float().cpu().reshape(weight.shape[0], -1)               # [C, K]
        response = torch.fft.rfft(w, n=n_fft).abs()                                 # [C, n_fft // 2 + 1]
        db = 20 * torch.log10(response / response.amax(1, keepdim=True).clamp_min(1e-12) + 1e-6)
        db = db[response.argmax(1).argsort()]
        ax.imshow(db.clamp_min(-30).numpy(), aspect="auto", origin="lower", cmap="magma",
                  extent=(0, sample_rate / 2000, 0, len(db)))
        ax.set(title=name, xlabel="frequency (kHz)", ylabel="filter (sorted by its peak)")
    return fig


def show_source(fn: Callable):
    """Display a function's or class's source as highlighted Markdown in a notebook."""
    from IPython.display import Markdown
    return Markdown(f"```python\n{inspect.getsource(fn).rstrip()}\n```")


def plot_embedding_2d(points, labels: Sequence[str], ax: Axes | None = None,
                      title: str | None = None, annotate: Sequence[str] | None = None) -> Axes | Figure:
    """Scatter 2-D points coloured by label (e.g. a PCA/t-SNE map of a joint space)."""
    points = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected points of shape [N, 2], got {points.shape}; reduce to 2-D first")
    if len(labels) != len(points):
        raise ValueError(f"{len(points)} points but {len(labels)} labels")
    ax, fig = _axes(ax, (6, 5))
    names = sorted(set(labels))
    colours = matplotlib.colormaps["tab20"].resampled(max(len(names), 1))
    for k, name in enumerate(names):
        idx = [i for i, lab in enumerate(labels) if lab == name]
        ax.scatter(points[idx, 0], points[idx, 1], s=14, color=colours(k), label=name)
    if annotate is not None:
        for (x, y), text in zip(points, annotate):
            if text:
                ax.annotate(text, (x, y), fontsize=7)
    ax.legend(fontsize=7, markerscale=1.2, loc="best", ncol=1 + len(names) // 12)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig or ax


def three_kinds_figure() -> Figure:
    """The lecture's three kinds of multi-modal method as boxes and arrows (notebook 01)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    image, text, out = "#f6c9a0", "#a9cdea", "#c8e6b0"

    def box(ax, xy, label, colour):
        ax.add_patch(FancyBboxPatch((xy[0] - 0.16, xy[1] - 0.09), 0.32, 0.18, boxstyle="round,pad=0.02",
                                    facecolor=colour, edgecolor="0.3"))
        ax.text(*xy, label, ha="center", va="center", fontsize=9)

    def arrow(ax, a, b, style="-|>"):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, color="0.25", lw=1.2))

    fig, axes = new_figure(1, 3, figsize=(12, 3.1))
    matching, translating, referencing = axes[0]
    for ax, title in zip(axes[0], ["Matching", "Translating", "Referencing (reasoning)"]):
        ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
        ax.axis("off")
    box(matching, (0.2, 0.75), "image", image)
    box(matching, (0.2, 0.25), "tags / text", text)
    box(matching, (0.78, 0.5), "joint space\ncompare", out)
    arrow(matching, (0.37, 0.72), (0.6, 0.55))
    arrow(matching, (0.37, 0.28), (0.6, 0.45))
    box(translating, (0.2, 0.5), "image", image)
    box(translating, (0.8, 0.5), "sentence", text)
    arrow(translating, (0.37, 0.5), (0.63, 0.5))
    translating.text(0.5, 0.6, "generate", ha="center", fontsize=8)
    box(referencing, (0.2, 0.75), "image", image)
    box(referencing, (0.2, 0.25), "question", text)
    box(referencing, (0.8, 0.25), "answer", out)
    arrow(referencing, (0.37, 0.25), (0.63, 0.25))
    arrow(referencing, (0.3, 0.65), (0.3, 0.35), "<|-|>")
    referencing.text(0.33, 0.5, "attend /\nconsult", fontsize=8)
    return fig
