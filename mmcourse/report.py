"""The results contract (COURSE.md section 6): one JSON file per notebook, one course report.

A notebook collects metrics in a `Results`, writes them, then asserts its minimum bars:

    results = Results("01_image_tagging", device=rt.device)
    results.add("recall@5 image->tag", 0.62, chance=0.08, baseline=0.21)
    results.write()
    results.require("recall@5 image->tag", at_least=0.40)
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from mmcourse.files import atomic_write_text
from mmcourse.runtime import build_dir


@dataclass
class Metric:
    value: float
    chance: float | None = None
    baseline: float | None = None
    higher_is_better: bool = True


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
            baseline: float | None = None, higher_is_better: bool = True) -> None:
        self.metrics[name] = Metric(_number(name, "value", value), _number(name, "chance", chance),
                                    _number(name, "baseline", baseline), bool(higher_is_better))

    def to_dict(self) -> dict:
        return {
            "notebook": self.notebook,
            "seconds": round(time.perf_counter() - self.started, 2),
            "device": self.device,
            "metrics": {k: vars(m).copy() for k, m in self.metrics.items()},
        }

    def write(self, directory: str | Path | None = None) -> Path:
        """Write `<build>/metrics/<notebook>.json` atomically and return its path."""
        out = Path(directory) if directory else build_dir() / "metrics"
        path = out / f"{self.notebook}.json"
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def require(self, name: str, at_least: float | None = None, at_most: float | None = None) -> None:
        """Assert a minimum bar, with a message that says what was reached."""
        if name not in self.metrics:
            raise KeyError(f"no metric {name!r}; recorded: {sorted(self.metrics)}")
        value = self.metrics[name].value
        if at_least is not None:
            assert value >= at_least, f"{name} = {value:.4f}, below its bar of {at_least}"
        if at_most is not None:
            assert value <= at_most, f"{name} = {value:.4f}, above its bar of {at_most}"

    def table(self) -> str:
        """The metrics as a markdown table (value, chance, baseline)."""
        rows = ["| metric | value | chance | baseline |", "|---|---|---|---|"]
        for name, m in self.metrics.items():
            arrow = "↑" if m.higher_is_better else "↓"
            rows.append(f"| {name} {arrow} | {_fmt(m.value)} | {_fmt(m.chance)} | {_fmt(m.baseline)} |")
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
        missing = {"value", "chance", "baseline", "higher_is_better"} - set(m)
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
             "| notebook | seconds | peak MB | device | metric: value (chance, baseline) |",
             "|---|---|---|---|---|"]
    for stem in stems:
        data = found.get(stem)
        if data is None:
            lines.append(f"| {stem} | – | – | – | not run |")
            continue
        cells = "<br>".join(
            f"{name}: {_fmt(m['value'])} ({_fmt(m['chance'])}, {_fmt(m['baseline'])})"
            for name, m in data["metrics"].items()) or "no metrics"
        peak = f"{peak_mb[stem]:.0f}" if stem in peak_mb else "–"
        lines.append(f"| {stem} | {data['seconds']:.1f} | {peak} | {data['device']} | {cells} |")
    if not stems:
        lines.append("| (no notebooks yet) | – | – | – | – |")
    return "\n".join(lines) + "\n"
