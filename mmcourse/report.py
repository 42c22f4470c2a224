"""The results contract (COURSE.md section 6): one JSON file per notebook, one course report.

A notebook collects metrics in a `Results`, each with the bar it must reach (or None for a
number shown for information), writes them, then checks every bar:

    results = Results("01_image_tagging", device=rt.device)
    results.add("recall@5 image->tag", 0.62, chance=0.08, baseline=0.21, bar=0.40)
    results.add("temperature", 0.05)                 # recorded, not asserted
    results.write()
    results.check()                                  # raises BarNotMet if a bar is missed

A bar follows the course's rules (COURSE.md sections 6 and 7): it is at least twice its chance
level, and a metric with a bar must also beat its baseline. `add` refuses a bar below twice
chance, so a bar can never be set where guessing would pass it.
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from mmcourse.files import atomic_write_text
from mmcourse.runtime import build_dir


# The libraries whose kernels and defaults decide a trained model's numbers.
VERSIONED = ("torchaudio", "numpy", "scikit-learn", "pillow", "datasets")


def environment() -> dict[str, str]:
    """Where a run's numbers came from: Python, the key libraries' versions and the processor.

    A seed repeats its numbers exactly only on one processor with one set of libraries; another
    CPU or a newer PyTorch runs other floating-point kernels and trained numbers move a little.
    """
    # torch's own version string names its build (+cpu, +cu130), which the package metadata omits;
    # the CPU capability (AVX2, AVX512) is the instruction set its kernels were dispatched to.
    found = {"python": platform.python_version(), "processor": _processor(),
             "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


class BarNotMet(AssertionError):
    """A metric missed its bar. Raised explicitly, so `python -O` cannot skip the check."""


@dataclass
class Metric:
    value: float
    chance: float | None = None
    baseline: float | None = None
    bar: float | None = None  # the asserted minimum (maximum when lower is better), or None
    higher_is_better: bool = True

    def problems(self, name: str) -> list[str]:
        """Why this metric fails its bar or its baseline (empty when it passes or has no bar)."""
        if self.bar is None:
            return []
        better = (lambda a, b: a >= b) if self.higher_is_better else (lambda a, b: a <= b)
        word = "below" if self.higher_is_better else "above"
        found = []
        if not better(self.value, self.bar):
            found.append(f"{name} = {self.value:.4g}, {word} its bar of {self.bar:.4g}")
        if self.baseline is not None and (self.value == self.baseline
                                          or not better(self.value, self.baseline)):
            found.append(f"{name} = {self.value:.4g} does not beat its baseline {self.baseline:.4g}")
        return found


def _number(name: str, what: str, x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"metric {name!r}: {what} is {x}, not a finite number")
    return x


@dataclass
class Results:
    """Metrics of one notebook run; the clock starts when it is created."""

    notebook: str
    device: str = "cpu"
    metrics: dict[str, Metric] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.device = str(self.device)

    def add(self, name: str, value: float, chance: float | None = None,
            baseline: float | None = None, bar: float | None = None,
            higher_is_better: bool = True) -> None:
        """Record a metric. `bar` is what `check` asserts: a minimum, or a maximum when
        `higher_is_better=False`; None records the number for information only."""
        metric = Metric(_number(name, "value", value), _number(name, "chance", chance),
                        _number(name, "baseline", baseline), _number(name, "bar", bar),
                        bool(higher_is_better))
        if metric.bar is not None and metric.chance is not None and metric.higher_is_better \
                and metric.bar < 2 * metric.chance:
            raise ValueError(f"metric {name!r}: a bar of {metric.bar:.4g} is below twice its chance "
                             f"level ({metric.chance:.4g}); a bar must be at least {2 * metric.chance:.4g}")
        self.metrics[name] = metric

    def to_dict(self) -> dict:
        return {
            "notebook": self.notebook,
            "seconds": round(time.perf_counter() - self.started, 2),
            "device": self.device,
            "environment": environment(),
            "metrics": {k: vars(m).copy() for k, m in self.metrics.items()},
        }

    def write(self, directory: str | Path | None = None) -> Path:
        """Write `<build>/metrics/<notebook>.json` atomically and return its path."""
        out = Path(directory) if directory else build_dir() / "metrics"
        path = out / f"{self.notebook}.json"
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def check(self) -> None:
        """Raise BarNotMet naming every metric that misses its bar or does not beat its baseline."""
        problems = [p for name, m in self.metrics.items() for p in m.problems(name)]
        if problems:
            raise BarNotMet("; ".join(problems))
        print(f"all {sum(m.bar is not None for m in self.metrics.values())} bars met")

    def table(self) -> str:
        """The metrics as a markdown table (value, bar, chance, baseline)."""
        rows = ["| metric | value | bar | chance | baseline |", "|---|---|---|---|---|"]
        for name, m in self.metrics.items():
            arrow = "↑" if m.higher_is_better else "↓"
            rows.append(f"| {name} {arrow} | {_fmt(m.value)} | {_fmt(m.bar)} | {_fmt(m.chance)} "
                        f"| {_fmt(m.baseline)} |")
        return "\n".join(rows)

    def _repr_markdown_(self) -> str:
        return self.table()


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    # Tiny non-zero values (e.g. parity errors of 1e-7) would print as 0.000.
    return f"{x:.2e}" if 0 < abs(x) < 1e-3 else f"{x:.3f}"


def load_results(path: str | Path) -> dict:
    """Read one results file and check it follows the contract."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("notebook", "seconds", "device", "metrics"):
        if key not in data:
            raise ValueError(f"{path}: results file has no {key!r} field")
    for name, m in data["metrics"].items():
        missing = {"value", "chance", "baseline", "bar", "higher_is_better"} - set(m)
        if missing:
            raise ValueError(f"{path}: metric {name!r} lacks {sorted(missing)}")
    return data


def course_report(metrics_dir: str | Path, notebooks: list[str] | None = None,
                  peak_mb: dict[str, float] | None = None) -> str:
    """One markdown table, one row per notebook: run time, peak memory, device and its metrics.

    `notebooks` lists the stems expected; one without a results file shows as 'not run'.
    `peak_mb` gives each notebook's peak memory where it was measured.
    """
    peak_mb = peak_mb or {}
    found = {}
    for path in sorted(Path(metrics_dir).glob("*.json")):
        data = load_results(path)
        found[data["notebook"]] = data
    stems = notebooks if notebooks is not None else sorted(found)
    lines = ["# Course report", "",
             "Each metric reads `value (bar; chance, baseline)`; a bar is the minimum the notebook "
             "asserts (the maximum for ↓ metrics), – where the number is shown for information.", "",
             "| notebook | seconds | peak MB | device | metric: value (bar; chance, baseline) |",
             "|---|---|---|---|---|"]
    for stem in stems:
        data = found.get(stem)
        if data is None:
            lines.append(f"| {stem} | – | – | – | not run |")
            continue
        cells = "<br>".join(
            f"{name} {'↑' if m['higher_is_better'] else '↓'}: {_fmt(m['value'])} "
            f"({_fmt(m['bar'])}; {_fmt(m['chance'])}, {_fmt(m['baseline'])})"
            for name, m in data["metrics"].items()) or "no metrics"
        peak = f"{peak_mb[stem]:.0f}" if stem in peak_mb else "–"
        lines.append(f"| {stem} | {data['seconds']:.1f} | {peak} | {data['device']} | {cells} |")
    if not stems:
        lines.append("| (no notebooks yet) | – | – | – | – |")
    lines += _environment_lines({stem: found[stem].get("environment") for stem in stems if stem in found})
    return "\n".join(lines) + "\n"


def _environment_lines(environments: dict[str, dict | None]) -> list[str]:
    # One line per distinct environment: numbers from two machines are not comparable digit for digit.
    groups: dict[str, list[str]] = {}
    for stem, env in environments.items():
        if env:
            groups.setdefault(", ".join(f"{k} {v}" for k, v in env.items()), []).append(stem)
    if not groups:
        return []
    lines = ["", "Measured with:"]
    for described, stems in groups.items():
        lines.append(f"- {described}" + (f" ({', '.join(stems)})" if len(groups) > 1 else ""))
    return lines
