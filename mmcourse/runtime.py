"""Run-time choices every notebook makes in its first cell: seed, device, profile, paths."""
from __future__ import annotations

import os
import platform
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def item_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's global RNG, for a Dataset's `__getitem__`.

    Data made on the fly (augmented views, composed scenes, mixtures) should draw from this
    rather than from a generator stored on the dataset: torch's RNG is what `fit` saves in
    its checkpoints (so a resumed run sees the same data) and what DataLoader seeds
    differently in each worker (so two workers never make the same item).
    """
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def pick_device(override: str | None = None) -> torch.device:
    """CUDA if present, else Apple MPS, else CPU; `override` or $MMCOURSE_DEVICE wins."""
    choice = override or os.environ.get("MMCOURSE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for but CUDA is not available; "
                               "unset MMCOURSE_DEVICE or use 'cpu'")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {choice!r} was asked for but MPS is not available; "
                               "unset MMCOURSE_DEVICE or use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Profile:
    """How big to make things. 'cpu' fits a laptop in minutes; 'gpu' trains properly.

    Notebooks ask `profile.pick(cpu=..., gpu=...)` for every size, so one cell shows both.
    """

    name: str  # "cpu" or "gpu"

    def pick(self, cpu: Any, gpu: Any) -> Any:
        return gpu if self.name == "gpu" else cpu


def pick_profile(device: torch.device, override: str | None = None) -> Profile:
    """'gpu' on CUDA, else 'cpu'; `override` or $MMCOURSE_PROFILE wins."""
    name = override or os.environ.get("MMCOURSE_PROFILE") or ("gpu" if device.type == "cuda" else "cpu")
    if name not in ("cpu", "gpu"):
        raise ValueError(f"unknown profile {name!r}: use 'cpu' or 'gpu' (MMCOURSE_PROFILE)")
    return Profile(name)


def _dir_from_env(var: str, default: Path) -> Path:
    path = Path(os.environ.get(var) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _default_home(sub: str) -> Path:
    # Inside a checkout caches live in the repo's ignored folders; a plain install uses ~/.cache.
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / sub
    return Path.home() / ".cache" / "mmcourse" / sub.strip(".")


def cache_dir() -> Path:
    """Where generated datasets and audio are cached ($MMCOURSE_CACHE, default `.cache/`)."""
    return _dir_from_env("MMCOURSE_CACHE", _default_home(".cache"))


def build_dir() -> Path:
    """Where metrics, executed notebooks and the course report go ($MMCOURSE_BUILD, default `build/`)."""
    return _dir_from_env("MMCOURSE_BUILD", _default_home("build"))


@dataclass(frozen=True)
class Runtime:
    seed: int
    device: torch.device
    profile: Profile
    cache: Path
    build: Path

    def describe(self) -> str:
        threads = torch.get_num_threads()
        # How idle OpenMP threads wait decides how a busy machine slows us down (README, "Measured speed").
        wait = os.environ.get("OMP_WAIT_POLICY", "unset (spinning)")
        return (f"seed={self.seed}  device={self.device}  profile={self.profile.name}  "
                f"torch={torch.__version__}  threads={threads}  OMP_WAIT_POLICY={wait}  "
                f"python={platform.python_version()}\n"
                f"cache={self.cache}\nbuild={self.build}")


def setup(seed: int = 0, device: str | None = None, profile: str | None = None,
          verbose: bool = True) -> Runtime:
    """The one call a notebook's first cell makes: seed everything, choose device and profile."""
    seed_everything(seed)
    dev = pick_device(device)
    if dev.type == "cpu":
        # Summing gradients into repeated indices (x[idx] with duplicates, as when a batch gathers
        # one question vector per image) uses unordered atomic adds on several CPU threads, so two
        # runs differ in the last bits and then drift apart. Deterministic mode adds in order.
        torch.use_deterministic_algorithms(True, warn_only=True)
    rt = Runtime(seed=seed, device=dev, profile=pick_profile(dev, profile),
                 cache=cache_dir(), build=build_dir())
    if verbose:
        print(rt.describe())
    return rt


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch on one CPU thread inside the block, as before it after.

    On one short recording at a time, waking a second thread costs more than it saves: a channel
    mean took 18 ms with 2 threads and 0.2 ms with 1 on the 2-core build machine under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
