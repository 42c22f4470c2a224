"""The results contract (COURSE.md section 6): one JSON file per notebook, one course report.

A notebook collects metrics in a `Results`, each with the bar it must reach (or None for a
number shown for information), writes them, then checks every bar:

    results = Results("01_image_tagging", device=rt.device)
    results.add("recall@5 image->tag", 0.62, chance=0.08, baseline=0.21, bar=0.40)
    results.add("temperature", 0.05)                 # recorded, not asserted
    results.claim("the joint space beats the image-blind baseline",
                  "recall@5 image->tag", ">", "recall@5 blind")
    results.write()
    results.check()                                  # raises BarNotMet if a bar is missed

A claim is a take-away that compares two things. It is computed on this run, counted over the
notebook's committed reference runs (`mmcourse.references`: seeds 0-2), recorded in the
results file, and worded by code: "on 2 of 3 reference seeds" where it does not always hold.
`results.say(...)` renders prose with this run's numbers and the reference ranges in it, so
the text a student reads cannot disagree with the outputs above it.

A bar follows the course's rules (COURSE.md sections 6 and 7): it is at least twice its chance
level, and a metric with a bar must also beat its baseline. `add` refuses a bar below twice
chance, so a bar can never be set where guessing would pass it.
"""
from __future__ import annotations

import json
import math
import operator
import platform
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from mmcourse.files import atomic_write_text
from mmcourse.references import Reference, load_reference
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



def bootstrap_interval(values, statistic=np.mean, seed: int = 0, n: int = 1000,
                       level: float = 0.9) -> tuple[float, float]:
    """A percentile bootstrap interval of `statistic(values)`: the items (scenes, mixtures, ...)
    resampled with replacement `n` times."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values)
    found = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    return float(np.quantile(found, (1 - level) / 2)), float(np.quantile(found, (1 + level) / 2))


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


COMPARISONS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}


@dataclass
class Claim:
    """A take-away that compares two numbers: `left op right`, each a metric name or a number.

    `margin` asks for a clear win: "a > b" with margin 0.05 holds only if a > b + 0.05.
    """

    text: str
    left: str | float
    op: str
    right: str | float
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            raise ValueError(f"claim {self.text!r}: comparison {self.op!r} is not one of {sorted(COMPARISONS)}")

    def side(self, metrics: dict[str, float], which: str | float) -> float:
        if isinstance(which, str):
            if which not in metrics:
                raise KeyError(f"claim {self.text!r} compares {which!r}, which is not a recorded metric: "
                               f"add it with results.add(...) before the claim")
            return metrics[which]
        return float(which)

    def holds(self, metrics: dict[str, float]) -> bool:
        a, b = self.side(metrics, self.left), self.side(metrics, self.right)
        shift = self.margin if self.op.startswith(">") else -self.margin
        return bool(COMPARISONS[self.op](a, b + shift))


@dataclass
class Results:
    """Metrics of one notebook run; the clock starts when it is created."""

    notebook: str
    device: str = "cpu"
    metrics: dict[str, Metric] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    reference: Reference | None = None

    def __post_init__(self) -> None:
        self.device = str(self.device)
        if self.reference is None:
            self.reference = load_reference(self.notebook)

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

    def values(self) -> dict[str, float]:
        return {name: m.value for name, m in self.metrics.items()}

    def claim(self, text: str, left: str | float, op: str, right: str | float,
              margin: float = 0.0) -> Claim:
        """Record a take-away comparing two metrics (or a metric and a number), print whether it
        holds on this run and on how many reference runs."""
        claim = Claim(text, left, op, right, float(margin))
        claim.holds(self.values())  # fails now, with the missing metric's name, not at the end
        self.claims = [c for c in self.claims if c.text != text] + [claim]
        print(self.claim_sentence(claim))
        return claim

    def claim_sentence(self, claim: Claim) -> str:
        """The claim as a student reads it: worded by what this run and the reference runs found."""
        values = self.values()
        a, b = claim.side(values, claim.left), claim.side(values, claim.right)
        here = "holds on this run" if claim.holds(values) else "does NOT hold on this run"
        shift = claim.margin if claim.op.startswith(">") else -claim.margin
        op = claim.op if claim.holds(values) else f"is not {claim.op}"
        numbers = f"{_fmt(a)} {op} {_fmt(b)}" + (f" {'+' if shift > 0 else '−'} {_fmt(abs(shift))}"
                                                 if shift else "")
        return f"{claim.text[:1].upper()}{claim.text[1:]}: {here} ({numbers}){self._reference_support(claim)}."

    def _reference_support(self, claim: Claim) -> str:
        if self.reference is None:
            return "; no reference runs yet"
        held, checked = self.reference.claim_count(claim)
        if not checked:
            return "; the reference runs did not measure what it compares"
        if held == checked:
            return f" and on all {checked} reference runs"
        some = "none" if held == 0 else f"only {held}"
        return f"; it holds on {some} of the {checked} reference runs ({self.reference.describe()})"

    def span(self, metric: str) -> str:
        """The metric's reference range in words, e.g. '0.41-0.47 over seeds 0-2, AVX512 kernels'."""
        found = self.reference.span(metric) if self.reference else None
        if found is None:
            return "not measured on the reference runs yet"
        low, high = found
        values = f"{_fmt(low)}" if _fmt(low) == _fmt(high) else f"{_fmt(low)}-{_fmt(high)}"
        return f"{values} over {self.reference.describe()}"

    def say(self, template: str):
        """Markdown with numbers from this run filled in, for take-aways and comparisons.

        `{name}` is this run's value of a recorded metric, `{name|ref}` its reference range,
        `{name|pct}` the value as a percentage, `{claim:text}` a recorded claim's sentence.
        """
        from IPython.display import Markdown

        return Markdown(self.render(template))

    def render(self, template: str) -> str:
        values = self.values()
        claims = {c.text: c for c in self.claims}

        def fill(match: re.Match) -> str:
            key, form = match.group(1).strip(), (match.group(2) or "").strip()
            if key.startswith("claim:"):
                text = key[len("claim:"):].strip()
                if text not in claims:
                    raise KeyError(f"no claim {text!r} recorded: add it with results.claim(...) first")
                return self.claim_sentence(claims[text])
            if key not in values:
                raise KeyError(f"{key!r} is not a recorded metric; recorded: {sorted(values)}")
            if form == "ref":
                return self.span(key)
            if form == "pct":
                return f"{100 * values[key]:.0f}%"
            if form:
                raise ValueError(f"unknown format {form!r} in {{{key}|{form}}}: use ref or pct")
            return _fmt(values[key])

        return re.sub(r"\{([^{}|]+)(?:\|([^{}]*))?\}", fill, template)

    def takeaways(self):
        """Every recorded claim as a Markdown list, worded by this run and the reference runs."""
        from IPython.display import Markdown

        if not self.claims:
            raise ValueError("no claims recorded: state each take-away with results.claim(...)")
        return Markdown("\n".join(f"- {self.claim_sentence(c)}" for c in self.claims))

    def to_dict(self) -> dict:
        values = self.values()
        return {
            "notebook": self.notebook,
            "seconds": round(time.perf_counter() - self.started, 2),
            "device": self.device,
            "environment": environment(),
            "metrics": {k: vars(m).copy() for k, m in self.metrics.items()},
            "claims": [{**vars(c), "holds": c.holds(values)} for c in self.claims],
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
        """The metrics as a markdown table: this run, the reference range, bar, chance, baseline."""
        rows = ["| metric | this run | reference runs | bar | chance | baseline |",
                "|---|---|---|---|---|---|"]
        for name, m in self.metrics.items():
            arrow = "↑" if m.higher_is_better else "↓"
            found = self.reference.span(name) if self.reference else None
            ref = "–" if found is None else f"{_fmt(found[0])} – {_fmt(found[1])}"
            rows.append(f"| {name} {arrow} | {_fmt(m.value)} | {ref} | {_fmt(m.bar)} | {_fmt(m.chance)} "
                        f"| {_fmt(m.baseline)} |")
        if self.reference is not None:
            rows.append(f"\nReference runs: {self.reference.describe()}, from "
                        f"`python -m mmcourse.references {self.notebook[:2]}`.")
        return "\n".join(rows)

    def _repr_markdown_(self) -> str:
        return self.table()


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    # Tiny non-zero values (e.g. parity errors of 1e-7) would print as 0.000.
    return f"{x:.2e}" if 0 < abs(x) < 1e-3 else f"{x:.3f}"


def _margin(m: dict) -> str:
    if m["bar"] is None:
        return ""
    room = m["value"] - m["bar"] if m["higher_is_better"] else m["bar"] - m["value"]
    return f", margin {room:+.3g}"


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
             "asserts (the maximum for ↓ metrics), – where the number is shown for information. "
             "The margin is how far the value clears its bar.", "",
             "| notebook | seconds | peak MB | device | metric: value (bar; chance, baseline) |",
             "|---|---|---|---|---|"]
    for stem in stems:
        data = found.get(stem)
        if data is None:
            lines.append(f"| {stem} | – | – | – | not run |")
            continue
        cells = "<br>".join(
            f"{name} {'↑' if m['higher_is_better'] else '↓'}: {_fmt(m['value'])} "
            f"({_fmt(m['bar'])}; {_fmt(m['chance'])}, {_fmt(m['baseline'])}){_margin(m)}"
            for name, m in data["metrics"].items()) or "no metrics"
        claims = data.get("claims", [])
        if claims:
            cells += f"<br>claims holding on this run: {sum(c['holds'] for c in claims)} of {len(claims)}"
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
