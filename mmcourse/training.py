"""The one training loop every notebook uses: plain PyTorch, written out so it can be read.

    history = fit(model, train_loader, loss_fn, epochs=10, val_loader=val_loader,
                  checkpoint=rt.cache / "ckpt" / "tagger.pt")
    history.plot()

`loss_fn(model, batch)` returns the loss, or `(loss, {"acc": 0.8})` to log more numbers.
The loop moves batches to the device, runs mixed precision on CUDA, clips gradients,
validates, stops early, and writes a checkpoint after every epoch so that running the same
cell again resumes (or skips training that is already done).

The same call trains on several GPUs when the script is started with
`torchrun --nproc_per_node=N script.py`: `fit` joins the process group, wraps the model in
DistributedDataParallel, and `make_loader` gives every process its own shard of the data.
Only rank 0 prints and writes checkpoints. The script ends with
`torch.distributed.destroy_process_group()` when `torch.distributed.is_initialized()`.

One rule keeps that correct: a loss calls the model (`model(batch)`), and the model's
`forward` returns everything the loss needs. Calling a method of the unwrapped model
instead (`unwrap(model).encode(...)`) bypasses DistributedDataParallel, whose forward is what
arranges for the gradients to be averaged across processes: each process would then drift
off with its own weights, silently.
"""
from __future__ import annotations

import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from mmcourse.files import atomic_path
from mmcourse.runtime import pick_device

LossFn = Callable[[nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"]
ValFn = Callable[[nn.Module, Iterable], Mapping[str, float]]

# Keys of an epoch record that are bookkeeping, not curves worth plotting.
_NOT_PLOTTED = ("epoch", "seconds", "lr")


# ---------------------------------------------------------------------------------------
# Devices and processes


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a (nested) dict / list / tuple to `device`; leave the rest alone."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(x, device) for x in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) as set by torchrun; (0, 0, 1) in a plain process."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True in a plain process and on rank 0 under torchrun: the one that prints and saves."""
    return _world()[0] == 0


def init_distributed(device: str | torch.device | None = None) -> torch.device:
    """Join the torchrun process group if there is one; return this process's device.

    In a plain process this is just `pick_device(device)`. Under torchrun each process takes
    GPU number LOCAL_RANK with NCCL, or the CPU with Gloo when there is no CUDA.
    """
    _, local_rank, world_size = _world()
    device = pick_device(str(device) if device is not None else None)
    if world_size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")  # Gloo moves CPU tensors only
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


class TensorRows(Dataset):
    """Rows of a dict of equally long tensors, as dicts: {"image": [3, S, S], "label": [], ...}."""

    def __init__(self, tensors: dict[str, Tensor]):
        sizes = {k: len(v) for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"all tensors need the same length, got {sizes}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0,
                collate_fn: Callable | None = None, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose order depends only on (seed, epoch), sharded across torchrun ranks.

    One process is a world of size one, so the same DistributedSampler serves both cases;
    `fit` calls `sampler.set_epoch(epoch)`, which is what makes a resumed run see the same
    batches as an uninterrupted one. drop_last drops the last short batch (and, across ranks,
    the few samples that do not divide evenly instead of repeating some to fill the shards).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rank, _, world_size = _world()
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                      num_workers=num_workers, drop_last=drop_last,
                      pin_memory=torch.cuda.is_available(),
                      persistent_workers=num_workers > 0)


def _distributed() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def _mean_across_ranks(sums: dict[str, float], count: int, device: torch.device) -> dict[str, float]:
    """sums / count, with sums and counts added over all processes first.

    Each process saw its own shard, whose last batch may be short: adding sums and counts
    weights every sample once, where averaging the processes' means would not.
    """
    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys] + [count], dtype=torch.float64, device=device)
    if _distributed():
        dist.all_reduce(t)
    return {k: v / t[-1].item() for k, v in zip(keys, t[:-1].tolist())}


def _sync_buffers(model: nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics).

    DistributedDataParallel averages gradients, so parameters agree, but each process updates
    its running statistics on its own shard; validation and the final model must not differ.
    """
    if _distributed():
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def all_gather_cat(x: Tensor) -> Tensor:
    """Concatenate `x` [n_rank, ...] from every process along dim 0 (rank order); `x` itself when alone.

    A ranking metric (Recall@K, median rank) computed on one process's shard would rank
    against a smaller gallery and look better than it is: a `val_fn` gathers first. Shards
    may differ in length by one.
    """
    if not _distributed():
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[:len(x)] = x
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[:int(n.item())] for piece, n in zip(pieces, sizes)])


# ---------------------------------------------------------------------------------------
# History


class History:
    """One dict per epoch: epoch, train_loss, train_<log>, val_<metric>, lr, seconds."""

    def __init__(self, records: Iterable[dict] | None = None) -> None:
        self.records: list[dict] = [dict(r) for r in records or []]

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def keys(self) -> list[str]:
        """Every key that appears in some epoch, in first-seen order."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    def __getitem__(self, key: str | int) -> list | dict:
        """`history["val_loss"]` is that curve (None where an epoch lacks it); `history[-1]` an epoch."""
        if isinstance(key, int):
            return self.records[key]
        if key not in self.keys():
            raise KeyError(f"no {key!r} in the history; it has {self.keys()}")
        return [r.get(key) for r in self.records]

    def best(self, metric: str = "val_loss", mode: str = "min") -> dict:
        """The record of the epoch where `metric` was lowest (mode='min') or highest ('max')."""
        _check_mode(mode)
        rows = [r for r in self.records if r.get(metric) is not None]
        if not rows:
            raise KeyError(f"no epoch recorded {metric!r}; the history has {self.keys()}")
        pick = min if mode == "min" else max
        return pick(rows, key=lambda r: r[metric])

    def plot(self):
        """A matplotlib Figure: all losses on one panel, one panel per other metric."""
        from matplotlib.figure import Figure  # not pyplot: a notebook shows the figure once

        if not self.records:
            raise ValueError("nothing to plot: the history has no epochs yet")
        panels: dict[str, list[str]] = {}
        for key in self.keys():
            if key in _NOT_PLOTTED:
                continue
            name = "loss" if key.endswith("loss") else key.removeprefix("train_").removeprefix("val_")
            panels.setdefault(name, []).append(key)
        fig = Figure(figsize=(4.5 * len(panels), 3.5), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        epochs = self["epoch"]
        for ax, (name, keys) in zip(axes, panels.items()):
            for key in keys:
                points = [(e, v) for e, v in zip(epochs, self[key]) if v is not None]
                ax.plot(*zip(*points), marker="o", markersize=3, label=key)
            ax.set_xlabel("epoch")
            ax.set_title(name)
            ax.legend()
        return fig

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.records[-1].items()
                         if k != "epoch" and isinstance(v, float)) if self.records else ""
        return f"History({len(self)} epochs{': ' + last if last else ''})"


def _check_mode(mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


# ---------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """Write `state` with torch.save, atomically: a crash leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`, refusing anything but tensors and data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, random bytes, pickled code: all "not ours"
        raise RuntimeError(f"checkpoint {path} is corrupt or not a mmcourse checkpoint "
                           f"({_first_line(e)}); "
                           "delete it and train again") from e
    if not isinstance(state, dict):
        raise RuntimeError(f"checkpoint {path} holds a {type(state).__name__}, not a dict of state; "
                           "delete it and train again")
    return state


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def _rng_state(device: torch.device) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------
# The loop


def split_loss(out: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """Check what loss_fn returned: a scalar tensor, or (scalar tensor, {name: number})."""
    loss, logs = out if isinstance(out, tuple) and len(out) == 2 else (out, {})
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a scalar tensor or (loss, logs), got {type(out).__name__}")
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar loss, got shape {tuple(loss.shape)}; "
                         "reduce it, e.g. with .mean()")
    if not isinstance(logs, Mapping):
        raise TypeError(f"the logs loss_fn returns must be a dict of numbers, got {type(logs).__name__}")
    return loss, {k: float(v) for k, v in logs.items()}


def amp_dtype(amp: bool | str | None, device: torch.device) -> torch.dtype | None:
    """None for full precision, else the autocast dtype: bf16 where the GPU has it, else fp16."""
    if amp is None:
        amp = device.type == "cuda"
    if amp not in (True, False, "bf16", "fp16"):
        raise ValueError(f"amp must be True, False, None, 'bf16' or 'fp16', got {amp!r}")
    if not amp:
        return None
    if device.type != "cuda":
        warnings.warn(f"mixed precision is used on CUDA only; training on {device} in float32")
        return None
    if amp == "fp16" or (amp is True and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def samples_in(batch: Any) -> int:
    """Samples in a batch: the length of its first tensor (1 if it holds none)."""
    if isinstance(batch, Tensor):
        return len(batch) if batch.dim() else 1
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        return next((samples_in(x) for x in batch if isinstance(x, (Tensor, Mapping, list, tuple))), 1)
    return 1


def train_step(model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, dtype: torch.dtype | None = None,
               grad_clip: float | None = None) -> tuple[float, dict[str, float]]:
    """One optimisation step of `fit` on a batch already on the model's device: the loss under
    autocast (`dtype`, None for full precision), backward through the scaler, optional clipping,
    the optimiser step. Returns the loss value and the logs; raises FloatingPointError, before
    touching the weights, if the loss is nan or infinite."""
    device_type = next(model.parameters()).device.type
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
        loss, logs = split_loss(loss_fn(model, batch))
    if not loss.requires_grad:
        raise ValueError("the loss does not require grad: did loss_fn detach it, or call "
                         "the model under torch.no_grad()?")
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(f"the loss became {value}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return value, logs


def _train_epoch(model, loader, loss_fn, optimizer, scaler, device, dtype, grad_clip, epoch, show):
    """One pass over `loader`; returns the mean loss and logs over all samples of all processes."""
    model.train()
    sums: dict[str, float] = {}
    n = samples = 0
    with tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not show) as batches:
        for batch in batches:
            try:
                value, logs = train_step(model, to_device(batch, device), loss_fn, optimizer, scaler, dtype, grad_clip)
            except FloatingPointError as error:
                raise FloatingPointError(f"{error} at batch {n} of epoch {epoch}; "
                                         "lower the learning rate or set grad_clip") from None
            n += 1
            size = samples_in(batch)
            samples += size
            for k, v in {"loss": value, **logs}.items():
                sums[k] = sums.get(k, 0.0) + v * size
            batches.set_postfix(loss=f"{sums['loss'] / samples:.4f}", refresh=False)
    if n == 0:
        raise ValueError("the training loader gave no batches: is the dataset empty, or "
                         "drop_last=True with fewer samples than one batch?")
    return {f"train_{k}": v for k, v in _mean_across_ranks(sums, samples, device).items()}


@torch.no_grad()
def _validate(model, loader, loss_fn, val_fn, device, dtype) -> dict[str, float]:
    """val_fn's metrics, or the mean of loss_fn (and its logs) over all validation samples;
    keys get 'val_'."""
    model.eval()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        if val_fn is not None:
            # A val_fn gathers across processes itself where it must (all_gather_cat); the mean
            # over processes then changes nothing, and otherwise keeps every rank's record (and
            # so its early-stopping decision) the same.
            metrics = _mean_across_ranks({k: float(v) for k, v in val_fn(unwrap(model), loader).items()},
                                         1, device)
        else:
            sums: dict[str, float] = {}
            samples = 0
            for batch in loader:
                loss, logs = split_loss(loss_fn(model, to_device(batch, device)))
                size = samples_in(batch)
                samples += size
                for k, v in {"loss": loss.item(), **logs}.items():
                    sums[k] = sums.get(k, 0.0) + v * size
            if samples == 0:
                raise ValueError("the validation loader gave no batches: is the dataset empty?")
            metrics = _mean_across_ranks(sums, samples, device)
    return {k if k.startswith("val_") else f"val_{k}": v for k, v in metrics.items()}


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn, *, epochs: int,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
        device: str | torch.device | None = None, val_loader: Iterable | None = None,
        val_fn: ValFn | None = None, grad_clip: float | None = None,
        amp: bool | str | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = True, patience: int | None = None, monitor: str = "val_loss",
        mode: str = "min", progress: bool = True, scheduler: Any = None) -> History:
    """Train `model` in place for `epochs` epochs and return its History.

    loss_fn(model, batch) -> loss | (loss, {name: number}); the batch is already on the device.
        Under torchrun the model is the DDP wrapper: call it (`model(...)`), never a method of
        `unwrap(model)`, which would skip the gradient averaging (see the module docstring).
    optimizer: default AdamW(lr=lr) over the trainable parameters.
    val_loader / val_fn: validate after each epoch. val_fn(model, loader) -> {name: number}
        (the plain model, in eval mode, under no_grad); without it, the mean of loss_fn and its
        logs over the samples. Keys are recorded with a 'val_' prefix. Under torchrun with a
        sharded val_loader, losses are averaged over all samples of all ranks, and a val_fn
        that ranks (Recall@K) must gather its vectors with `all_gather_cat` first.
    grad_clip: clip the gradients' total L2 norm to this before each step.
    amp: mixed precision; None means on for CUDA (bf16 where supported, else fp16 with a
        GradScaler); 'bf16' or 'fp16' to choose.
    checkpoint: file written after every epoch; with resume=True an existing one is loaded
        and training goes on from its epoch (a finished run trains no further).
    patience: stop after this many epochs without improving `monitor` ('min' or 'max' by
        `mode`); at the end the model gets the weights of its best epoch.
    scheduler: stepped once per epoch (with the monitored value for ReduceLROnPlateau).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    _check_mode(mode)
    if patience is not None and (val_loader is None or patience < 1):
        raise ValueError(f"early stopping needs val_loader and patience >= 1 (got patience={patience!r}"
                         f"{' and no val_loader' if val_loader is None else ''})")
    if val_fn is not None and val_loader is None:
        raise ValueError("val_fn was given without val_loader to run it on")

    device = init_distributed(device)
    distributed = dist.is_initialized() and dist.get_world_size() > 1
    main = is_main_process()
    model = unwrap(model).to(device)
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all requires_grad=False)")
        optimizer = torch.optim.AdamW(params, lr=lr)
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("the scheduler was built for another optimizer: pass that one as optimizer=")
    dtype = amp_dtype(amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    history = History()
    best = {"value": None, "epoch": None, "model": None, "bad_epochs": 0}
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise ValueError(f"checkpoint {checkpoint} does not fit this model and optimizer "
                             f"({_first_line(e)}); "
                             "delete it or pass resume=False to start over") from e
        if state["scaler"]:  # empty when saved without fp16
            scaler.load_state_dict(state["scaler"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        start, history, best = state["epoch"], History(state["history"]), state["best"]
        _set_rng_state(state["rng"], device)
        if main:
            print(f"resumed from {checkpoint} after epoch {start}")

    if distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if not isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
            warnings.warn("under torchrun the train loader should shard the data (use make_loader); "
                          "every rank is training on all of it")

    stopped = patience is not None and best["bad_epochs"] >= patience
    bar = tqdm(total=epochs, initial=min(start, epochs), desc="training", disable=not (progress and main))
    for epoch in range(start, epochs):
        if stopped:
            break
        tic = time.perf_counter()
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        record = _train_epoch(model, train_loader, loss_fn, optimizer, scaler, device, dtype,
                              grad_clip, epoch + 1, show=not bar.disable)
        _sync_buffers(model)
        if val_loader is not None:
            record.update(_validate(model, val_loader, loss_fn, val_fn, device, dtype))
        record = {"epoch": epoch + 1, **record, "lr": optimizer.param_groups[0]["lr"]}

        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if monitor not in record and (patience is not None or plateau):
            raise KeyError(f"early stopping and ReduceLROnPlateau watch {monitor!r}, but the epoch "
                           f"recorded only {sorted(record)}; pass monitor= one of those")
        if patience is not None:  # only early stopping needs the best weights kept aside
            if _improved(record[monitor], best["value"], mode):
                best = {"value": record[monitor], "epoch": epoch + 1, "model": _cpu_copy(model),
                        "bad_epochs": 0}
            else:
                best["bad_epochs"] += 1
            stopped = best["bad_epochs"] >= patience
        if plateau:
            scheduler.step(record[monitor])
        elif scheduler is not None:
            scheduler.step()

        record["seconds"] = round(time.perf_counter() - tic, 3)
        history.append(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in _NOT_PLOTTED}, refresh=False)
        bar.update()
        if checkpoint is not None and main:
            save_checkpoint(checkpoint, epoch=epoch + 1, model=unwrap(model).state_dict(),
                            optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            history=history.records, best=best, rng=_rng_state(device))
    bar.close()

    if patience is not None and best["model"] is not None:
        unwrap(model).load_state_dict(best["model"])  # rank 0's copy on every rank: buffers agree
        if main:
            how = f"stopped early after epoch {len(history)}" if stopped else "done"
            print(f"{how}; restored the weights of epoch {best['epoch']} ({monitor}={best['value']:.4g})")
    return history
