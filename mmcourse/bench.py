"""Benchmarks behind the numbers in README's "Measured speed and memory".

    python -m mmcourse.bench views            # augmented views per second, 0 and 2 DataLoader workers
    python -m mmcourse.bench busy             # notebook 01's training alone and beside 1 and 3 busy processes
    python -m mmcourse.bench gpu --steps 30   # every notebook's model on the GPU: speed, memory, finite losses
    python -m mmcourse.bench gpu --device cpu --steps 4 --tiny   # the same checks, tiny, on the CPU

Timings are printed, not asserted: they depend on the machine and on whatever else runs on it.
`gpu` also checks what the CPU cannot: that every loss stays finite in float32 and under bf16
autocast, and that no parameter, module output or loss leaves the device; it exits with 1 if not.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from mmcourse import training
from mmcourse.runtime import pick_device, seed_everything
from mmcourse.training import History

# A competitor: another user's PyTorch job, with PyTorch's default (spinning) OpenMP waits.
BUSY_LOOP = "import torch\nx = torch.rand(700, 700)\nwhile True:\n    x = (x @ x).tanh()\n"


def views_per_second(workers: int, size: int, copies: int, batches: int = 30, batch_size: int = 64) -> float:
    """Training views of notebook 01 (stamp on a random background) made per second."""
    from mmcourse.data.tuxpaint import load_stamps
    from mmcourse.matching import tagging
    from mmcourse.training import make_loader

    stamps = load_stamps().select_columns(["image"]).select(range(400))
    prepared = tagging.prepare_stamps(stamps["image"], size)
    data = tagging.StampViews(prepared, torch.zeros(len(prepared), 1, dtype=torch.bool), size=size, copies=copies)
    loader = make_loader(data, batch_size, shuffle=True, num_workers=workers)
    made, start = 0, None
    for i, (images, _) in enumerate(loader):
        if i == 2:  # leave out the workers' start-up
            start, made = time.perf_counter(), 0
        made += len(images)
        if i == batches + 2:
            break
    return made / (time.perf_counter() - start)


def training_seconds(steps: int = 60, size: int = 48, width: int = 16, batch_size: int = 64) -> float:
    """Wall time of `steps` training steps of notebook 01's part A (cpu profile sizes, fixed data)."""
    from mmcourse.matching import tagging

    torch.manual_seed(0)
    model = tagging.JointEmbedding(num_tags=80, dim=64, width=width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    images, tags = torch.rand(batch_size, 3, size, size), torch.rand(batch_size, 80) < 0.05
    tags[:, 0] = True  # every image has a tag
    start = time.perf_counter()
    for _ in range(steps):
        loss, _ = tagging.clip_step(model, (images, tags))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def busy_seconds(competitors: int, wait_policy: str) -> float:
    """`training_seconds()` in a fresh process with `wait_policy`, while `competitors` busy processes run."""
    # OMP_WAIT_POLICY is read when PyTorch loads its OpenMP runtime, so each run is a new process.
    others = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env={**os.environ, "OMP_WAIT_POLICY": "ACTIVE"})
              for _ in range(competitors)]
    try:
        time.sleep(1.0 if competitors else 0.0)  # let the competitors start
        run = subprocess.run([sys.executable, "-c", "from mmcourse.bench import training_seconds as t; print(t())"],
                             env={**os.environ, "OMP_WAIT_POLICY": wait_policy}, check=True,
                             capture_output=True, text=True)
        return float(run.stdout.split()[-1])
    finally:
        for p in others:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- gpu: every notebook's model on one device
# Each workload builds a notebook's model at its gpu-profile sizes (or tiny ones) and a random batch of
# the shape that notebook's loader gives; the data itself (Tux Paint, 230 MB) does not travel.


@dataclass
class Workload:
    """One notebook model: the module, a batch as its loader gives it, and the loss `fit` gets."""

    model: nn.Module
    batch: Any
    loss_fn: Callable
    lr: float = 3e-3
    grad_clip: float | None = None
    weight_decay: float = 1e-2


def _tags(n: int, num_tags: int) -> Tensor:  # multi-hot [n, T] with at least one tag per row
    tags = torch.rand(n, num_tags) < 3 / num_tags
    tags[torch.arange(n), torch.randint(num_tags, (n,))] = True
    return tags


def _token_ids(n: int, max_len: int, vocab_size: int, min_len: int = 1) -> tuple[Tensor, Tensor]:
    """Word ids [n, max_len] (ids from 4 on: past the special tokens, padded with 0) and lengths [n]."""
    lengths = torch.randint(min_len, max_len + 1, (n,))
    ids = torch.randint(4, vocab_size, (n, max_len))
    return ids * (torch.arange(max_len) < lengths[:, None]), lengths


def _probs(n: int, k: int) -> Tensor:  # a teacher's soft targets [n, k]
    return torch.randn(n, k).softmax(-1)


def gpu_workloads(tiny: bool = False) -> dict[str, Callable[[], Workload]]:
    """{name: builder} for each notebook's trained model; class and vocabulary counts are those of
    the notebooks' data (cpu-profile runs), layer sizes those of `rt.profile.pick(gpu=...)`."""
    from mmcourse.data.recipes import DISH_NAMES
    from mmcourse.encoders import ImageCNN
    from mmcourse.matching import recipes, soundnet, tagging
    from mmcourse.referencing import localization, vqa
    from mmcourse.translating import captioning, text_to_image

    def pick(gpu, small):
        return small if tiny else gpu

    size, width = pick(64, 16), pick(48, 4)  # 01-03: image side and first-layer channels
    b = pick(64, 8)                            # the notebooks' batch of 64 (02, 03: 128; 05: 256 images)

    def joint_embedding():
        images, tags = torch.rand(b, 3, size, size), _tags(b, 105)           # notebook 01: 105 tags
        return Workload(tagging.JointEmbedding(105, dim=64, width=width), (images, tags), tagging.clip_step)

    def devise():
        encoder = ImageCNN(width, depth=4, out_dim=64)
        model = tagging.DeViSE(torch.randn(105, 384), encoder)                # MiniLM's 384-d tag vectors
        return Workload(model, (torch.rand(b, 3, size, size), _tags(b, 105)), tagging.devise_step)

    def im2recipe():
        n = 2 * b
        ingredients, n_ingredients = _token_ids(n, 12, 74, min_len=3)         # 74 ingredient tokens
        words, n_words = _token_ids(n * 8, 16, 322, min_len=3)                # 322 words, 8 steps of <= 16
        n_steps = torch.randint(1, 9, (n,))
        real = torch.arange(8) < n_steps[:, None]                             # [n, 8] steps that exist
        n_words = n_words.view(n, 8) * real
        steps = words.view(n, 8, 16) * real[:, :, None]
        batch = {"image": torch.rand(n, 3, size, size), "ingredients": ingredients, "n_ingredients": n_ingredients,
                 "steps": steps, "n_steps": n_steps, "n_words": n_words, "label": torch.randint(len(DISH_NAMES), (n,))}
        hidden = pick(256, 16)
        model = recipes.Im2Recipe(74, 322, len(DISH_NAMES), dim=hidden, width=width, hidden=hidden)
        return Workload(model, batch, functools.partial(recipes.im2recipe_step, semantic_weight=0.1))

    def scene_tagger():
        batch = {"image": torch.rand(2 * b, 3, size, size), "tags": _tags(2 * b, 24)}
        return Workload(captioning.SceneTagger(24, width=width), batch, captioning.tagger_step)

    def caption_batch(channels: int) -> dict[str, Tensor]:
        ids, lengths = _token_ids(2 * b, 14, 56, min_len=5)                  # 56 words, captions <= 13 + <eos>
        inputs = torch.cat([torch.full((2 * b, 1), 2), ids[:, :-1]], 1)     # <bos> + words
        return {"features": torch.randn(2 * b, (size // 8) ** 2, channels).relu(), "inputs": inputs, "targets": ids}

    def show_attend_tell():
        channels = ImageCNN(width, depth=3).channels
        model = captioning.ShowAttendTell(channels, 56, pick(256, 8), pick(512, 16))
        return Workload(model, caption_batch(channels), functools.partial(captioning.caption_step, penalty=0.01),
                        grad_clip=5.0)

    def show_and_tell():
        channels = ImageCNN(width, depth=3).channels
        model = captioning.ShowAndTell(channels, 56, pick(256, 8), pick(512, 16))
        return Workload(model, caption_batch(channels), captioning.caption_step, grad_clip=5.0)

    def judge():
        images = torch.rand(b, 3, size, size) * 2 - 1
        blurred = images.mean(1, keepdim=True).expand_as(images)               # a stand-in for the blurred copies
        batch = (images, torch.randint(8, (b,)), torch.randint(3, (b,)), blurred)
        return Workload(text_to_image.Judge(width=pick(16, 4), depth=3), batch, text_to_image.judge_step)

    def tag_cnn():
        targets, known = _tags(b, 11).float(), torch.rand(b, 11) < 0.9      # 8 colours + 3 shapes
        batch = (torch.randint(256, (b, 3, size, size), dtype=torch.uint8), targets, known)
        return Workload(vqa.TagCNN(11, pick(32, 4)), batch, vqa.tag_step)

    def vqa_model():
        images, per_image, distinct = 4 * b, 10, pick(300, 12)               # easy-VQA: ~10 questions per image
        ids, lengths = _token_ids(distinct, 9, 31, min_len=4)                # 31 tokens
        batch = {"images": torch.randn(images, 8 * pick(32, 4)).relu(), "ids": ids, "lengths": lengths,
                 "image_of": torch.arange(images).repeat_interleave(per_image),
                 "question_of": torch.randint(distinct, (images * per_image,)),
                 "answers": torch.randint(13, (images * per_image,))}
        model = vqa.VQAModel(31, 13, "product", image_dim=8 * pick(32, 4))
        return Workload(model, batch, vqa.vqa_step, lr=1e-2)

    scene, sr, channels = pick(96, 32), pick(16000, 4000), pick(32, 4)     # 07 and 10

    def teacher():
        labels = torch.stack([torch.randint(-1, 34, (b,)), torch.randint(16, (b,))], 1)  # 34 families, 16 categories
        return Workload(soundnet.Teacher(34, 16, width=channels), (torch.rand(b, 3, scene, scene), labels),
                        soundnet.teacher_step)

    def student():
        waves = torch.randn(b, 2 * sr) * 0.1                                  # two-second clips
        return Workload(soundnet.Student(34, 16, width=channels), (waves, _probs(b, 34), _probs(b, 16)),
                        soundnet.distill_step)

    def localizer():
        model = localization.SoundLocalizer(sr, width=pick(32, 4))
        grid = (scene // model.visual.stride, scene // model.visual.stride)
        masks = torch.rand(b, scene, scene) < 0.2
        batch = (torch.rand(b, 3, scene, scene), torch.randn(b, sr) * 0.1,
                 localization.mask_to_grid(masks, grid), torch.arange(b) < b // 2)
        return Workload(model, batch, localization.localization_step("semi"))

    return {"01 JointEmbedding / clip_step": joint_embedding, "01 DeViSE / devise_step": devise,
            "02 Im2Recipe / im2recipe_step": im2recipe, "03 SceneTagger / tagger_step": scene_tagger,
            "03 ShowAndTell / caption_step": show_and_tell, "03 ShowAttendTell / caption_step": show_attend_tell,
            "04 Judge / judge_step": judge, "05 TagCNN / tag_step": tag_cnn, "05 VQAModel / vqa_step": vqa_model,
            "07 Teacher / teacher_step": teacher, "07 Student / distill_step": student,
            "10 SoundLocalizer / step('semi')": localizer}


def _tensors(x: Any) -> Iterator[Tensor]:
    """Every tensor in a (nested) output: tensors, tuples, lists, dicts, packed sequences."""
    if isinstance(x, PackedSequence):  # its batch_sizes live on the CPU by design: not checked
        yield from _tensors((x.data, x.sorted_indices, x.unsorted_indices))
    elif isinstance(x, Tensor):
        yield x
    elif isinstance(x, Mapping):
        for v in x.values():
            yield from _tensors(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)


def off_device(work: Workload, device: torch.device, dtype: torch.dtype | None) -> list[str]:
    """Parameters, buffers, module outputs and the loss that are not on `device` (one forward pass)."""
    model = work.model
    found = [f"parameter {n}" for n, p in model.named_parameters() if p.device.type != device.type]
    found += [f"buffer {n}" for n, b in model.named_buffers() if b.device.type != device.type]
    outputs = []
    hook = nn.modules.module.register_module_forward_hook(lambda m, _, out: outputs.append((type(m).__name__, out)))
    try:
        # autocast refuses some devices (meta) even when disabled: enter it only to use it
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss, _ = training.split_loss(work.loss_fn(model, work.batch))
    finally:
        hook.remove()
    found += [f"output of {name}" for name, out in outputs for t in _tensors(out) if t.device.type != device.type]
    return found + (["loss"] if loss.device.type != device.type else [])


def _precision(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(work: Workload, steps: int, device: torch.device, amp: str | bool, warmup: int = 2) -> dict:
    """`steps` AdamW steps on the workload's fixed batch; the first `warmup` are left out of the timing.

    Each step is `fit`'s own step (`training.train_step`): the same autocast, finite-loss check,
    gradient scaler and clipping as `fit`, with every step's loss.
    """
    dtype = training.amp_dtype(amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    work.model.to(device).train()
    work.batch = training.to_device(work.batch, device)
    params = [p for p in work.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=work.lr, weight_decay=work.weight_decay)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        try:
            loss, _ = training.train_step(work.model, work.batch, work.loss_fn, optimizer, scaler, dtype,
                                          work.grad_clip)
        except FloatingPointError:  # fit's own check: the loss was nan or inf
            losses.append(math.nan)
            break
        losses.append(loss)
    _sync(device)
    seconds = time.perf_counter() - start
    timed = max(len(losses) - warmup, 0)
    return {"precision": _precision(dtype),
            "steps/s": timed / seconds if timed else math.nan,
            "samples/s": timed * training.samples_in(work.batch) / seconds if timed else math.nan,
            "peak MiB": torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else math.nan,
            "first loss": losses[0], "last loss": losses[-1], "finite": all(map(math.isfinite, losses)),
            "off device": off_device(work, device, dtype)}


def gan_steps(steps: int, device: torch.device, amp: str | bool, tiny: bool = False, warmup: int = 2) -> dict:
    """Notebook 04's GAN through its own loop `train_gan` (two Adam optimisers, so not `fit`):
    `warmup` steps, then `steps - warmup` timed. Under amp the whole loop runs in autocast."""
    from mmcourse.translating import text_to_image

    size, width, n = (16, 4, 32) if tiny else (64, 64, 1024)
    generator = text_to_image.Generator(384, width=width, size=size)
    discriminator = text_to_image.Discriminator(384, width=width, size=size)
    data = (torch.rand(n, 3, size, size) * 2 - 1, torch.randint(168, (n, 4)), torch.randn(168, 384),
            torch.randint(24, (168,)))                          # 168 captions, 24 colour x shape pairs
    dtype = training.amp_dtype(amp, device)
    batch = 8 if tiny else 64
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    logs, seconds = [], math.nan
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        for part in (warmup, steps - warmup):
            _sync(device)
            start = time.perf_counter()
            logs += text_to_image.train_gan(generator, discriminator, *data, steps=part, batch_size=batch,
                                            mode_seeking=0.1, device=device, log_every=1, progress=False)
            _sync(device)
            seconds = time.perf_counter() - start
    losses = [log["d_loss"] + log["g_loss"] for log in logs]
    both = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    found = [f"parameter {n}" for n, p in both.named_parameters() if p.device.type != device.type]
    with torch.no_grad():
        fake = generator(torch.randn(2, generator.noise_dim, device=device), data[2][:2].to(device))
        found += ["generator output"] * (fake.device.type != device.type)
    return {"precision": _precision(dtype),
            "steps/s": (steps - warmup) / seconds, "samples/s": (steps - warmup) * batch / seconds,
            "peak MiB": torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else math.nan,
            "first loss": losses[0], "last loss": losses[-1], "finite": all(map(math.isfinite, losses)),
            "off device": found}


def features_per_second(device: torch.device, clips: int = 20, seconds: float = 3.0) -> tuple[float, list[str]]:
    """Notebook 06 trains no network (a scikit-learn probe on pooled MFCCs): its torch part is
    `clip_features`, timed here on random clips, with a check that its outputs stay on `device`."""
    from mmcourse.audio import language_id

    waves = torch.randn(clips, int(seconds * language_id.SAMPLE_RATE), device=device) * 0.1
    language_id.clip_features(waves[0], language_id.SAMPLE_RATE)  # warm-up
    _sync(device)
    start = time.perf_counter()
    out = [t for wave in waves for t in language_id.clip_features(wave, language_id.SAMPLE_RATE)]
    _sync(device)
    return clips / (time.perf_counter() - start), ["clip_features output"] * any(t.device != waves.device for t in out)


def fit_seconds(device: torch.device, epochs: int = 3, samples: int = 1024,
                tiny: bool = False) -> tuple[float, History]:
    """Wall time of one `fit` call (notebook 01's JointEmbedding, validation every epoch, default amp)."""
    from mmcourse.matching import tagging

    size, width, batch = (16, 4, 8) if tiny else (64, 48, 64)
    data = torch.utils.data.TensorDataset(torch.rand(samples, 3, size, size), _tags(samples, 105))
    model = tagging.JointEmbedding(105, dim=64, width=width)
    start = time.perf_counter()
    history = training.fit(model, training.make_loader(data, batch, shuffle=True, drop_last=True), tagging.clip_step,
                           epochs=epochs, lr=3e-3, device=device, progress=False,
                           val_loader=training.make_loader(data, 4 * batch))
    _sync(device)
    return time.perf_counter() - start, history


def passed(row: dict) -> bool:
    """A row of `gpu_report` is good when it ran, every loss was finite and nothing left the device."""
    return "error" not in row and row["finite"] and not row["off device"]


def _format(row: dict) -> str:
    if "error" in row:
        return f"{row['model']:40} {row['precision']:5} FAILED: {row['error']}"
    peak = "-" if math.isnan(row["peak MiB"]) else f"{row['peak MiB']:.0f}"  # no CUDA, no peak
    off = "yes" if not row["off device"] else "NO: " + ", ".join(row["off device"][:3])
    return (f"{row['model']:40} {row['precision']:5} {row['steps/s']:8.1f} {row['samples/s']:10,.0f} "
            f"{peak:>9} {row['first loss']:10.4f} "
            f"{row['last loss']:10.4f} {'yes' if row['finite'] else 'NO':6} {off}")


def gpu_report(steps: int = 30, device: str | None = None, tiny: bool = False, seed: int = 0) -> list[dict]:
    """Train every notebook's model for `steps` steps in fp32 and (on CUDA, as `fit` does) under bf16
    autocast, print one row each, then notebook 06's features and one `fit` call; return the rows."""
    device = pick_device(device)
    precisions = (False, "bf16") if device.type == "cuda" else (False,)  # fit uses amp on CUDA only
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device {device} ({name}), torch {torch.__version__}, {steps} steps per model (2 warm-up)", flush=True)
    print(f"{'model / loss':40} {'prec':5} {'steps/s':>8} {'samples/s':>10} {'peak MiB':>9} "
          f"{'first loss':>10} {'last loss':>10} finite on-device", flush=True)
    runs = [(label, functools.partial(train_steps, steps=steps, device=device), builder)
            for label, builder in gpu_workloads(tiny).items()]
    runs.insert(6, ("04 Generator+Discriminator / train_gan", None, None))
    rows = []
    for label, run, builder in runs:
        for amp in precisions:
            seed_everything(seed)
            try:
                row = run(builder(), amp=amp) if run else gan_steps(steps, device, amp, tiny)
            except Exception as e:  # report and go on: one broken model should not hide the others
                row = {"precision": "bf16" if amp else "fp32", "error": f"{type(e).__name__}: {e}"}
            rows.append({"model": label, **row})
            print(_format(rows[-1]), flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    seed_everything(seed)
    rate, found = features_per_second(device, clips=4 if tiny else 20)
    rows.append({"model": "06 clip_features", "precision": "fp32", "clips/s": rate, "finite": True,
                 "off device": found})
    print(f"06 clip_features (no trained network): {rate:,.1f} three-second clips/s; "
          f"on device: {'yes' if not found else 'NO'}", flush=True)
    seed_everything(seed)
    samples = 32 if tiny else 1024
    seconds, history = fit_seconds(device, epochs=2 if tiny else 3, samples=samples, tiny=tiny)
    losses = history["train_loss"] + history["val_loss"]
    rows.append({"model": "fit", "precision": "amp default", "seconds": seconds, "first loss": losses[0],
                 "last loss": history["train_loss"][-1], "finite": all(map(math.isfinite, losses)), "off device": []})
    print(f"fit (01 JointEmbedding, {len(history)} epochs of {samples} samples, "
          f"validation each, amp default): {seconds:.1f} s; "
          f"train_loss {losses[0]:.4f} -> {rows[-1]['last loss']:.4f}; "
          f"finite: {'yes' if rows[-1]['finite'] else 'NO'}", flush=True)
    print("all checks passed" if all(map(passed, rows)) else "SOME CHECKS FAILED", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("what", choices=["views", "busy", "gpu"])
    parser.add_argument("--steps", type=int, default=30, help="gpu: training steps per model (2 are warm-up)")
    parser.add_argument("--device", default=None, help="gpu: cuda, cpu, ... (default: the best there is)")
    parser.add_argument("--tiny", action="store_true", help="gpu: tiny sizes, for a quick run on a CPU")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "gpu":
        if args.steps < 3:
            parser.error("--steps must be at least 3: two warm-up steps and one timed")
        if not all(map(passed, gpu_report(args.steps, args.device, args.tiny, args.seed))):
            sys.exit(1)
    elif args.what == "views":
        for profile, size, copies in (("cpu", 48, 3), ("gpu", 64, 4)):
            for workers in (0, 2):
                rate = views_per_second(workers, size, copies)
                print(f"{profile} profile ({size} px): {workers} workers -> {rate:,.0f} views/s", flush=True)
    else:
        print(f"{os.cpu_count()} cores, {torch.get_num_threads()} PyTorch threads; competitors run PyTorch "
              "with spinning OpenMP waits", flush=True)
        for policy in ("PASSIVE", "ACTIVE"):
            for competitors in (0, 1, 3):
                seconds = busy_seconds(competitors, policy)
                print(f"OMP_WAIT_POLICY={policy}: 60 training steps of notebook 01 beside {competitors} busy "
                      f"processes: {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
