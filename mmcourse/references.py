"""Reference runs: each notebook's numbers over seeds 0-2 (and a second set of CPU kernels).

A notebook's prose may only quote numbers its own run computed or numbers from here. One
command measures them and writes `notebooks/references/<notebook>.json`:

    python -m mmcourse.references 05                 # seeds 0, 1, 2 with this machine's kernels
    python -m mmcourse.references 05 --kernels native default   # and with ATen's plain C++ kernels
    python -m mmcourse.references                    # every notebook (long: about 3x `make course`)
    python -m mmcourse.references 05 --add           # add this machine's runs to the committed ones

Each run executes the whole notebook headless, exactly as `make course` does, with
$MMCOURSE_SEED set, and keeps its results file (metrics and claims). A kernel set other than
`native` runs with $ATEN_CPU_CAPABILITY set to it: `avx2` makes PyTorch dispatch to its AVX2
kernels on an AVX-512 machine, `default` to its plain C++ ones; other floating-point sums, the
same difference a student's laptop makes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmcourse.files import atomic_write_text
from mmcourse.runtime import REPO_ROOT

REFERENCE_DIR = REPO_ROOT / "notebooks" / "references"
SEEDS = (0, 1, 2)


@dataclass
class Reference:
    """The committed reference runs of one notebook."""

    notebook: str
    runs: list[dict]  # each: seed, kernels, environment, metrics {name: value}, bars, claims {text: holds}

    def values(self, metric: str) -> list[float]:
        """The metric's value in every reference run that recorded it."""
        return [run["metrics"][metric] for run in self.runs if metric in run["metrics"]]

    def span(self, metric: str) -> tuple[float, float] | None:
        """(lowest, highest) over the reference runs, or None if no run recorded the metric."""
        found = self.values(metric)
        return (min(found), max(found)) if found else None

    def bar_problems(self) -> list[str]:
        """Bars that another machine could miss: each must clear the worst reference run by
        more than the spread between the runs (seeds and kernel sets). A barred metric must also
        beat its baseline (`Results.check`), so its lead over the baseline, where the runs
        recorded one, must too."""
        found = []
        bars = {name: b for run in self.runs for name, b in run.get("bars", {}).items()}
        for name, b in bars.items():
            values = self.values(name)
            spread = max(values) - min(values)
            worst = min(values) if b["higher_is_better"] else max(values)
            room = worst - b["bar"] if b["higher_is_better"] else b["bar"] - worst
            if room <= spread:
                found.append(f"{self.notebook}: {name!r} bar {b['bar']:.4g} is {room:+.3g} from the worst "
                             f"reference run ({worst:.4g}), not more than the spread {spread:.3g}")
            sign = 1 if b["higher_is_better"] else -1
            leads = [sign * (run["metrics"][name] - run["bars"][name]["baseline"]) for run in self.runs
                     if run.get("bars", {}).get(name, {}).get("baseline") is not None]
            if leads and min(leads) <= max(leads) - min(leads):
                found.append(f"{self.notebook}: {name!r} leads its baseline by {min(leads):+.3g} on the worst "
                             f"reference run, not more than the spread of that lead {max(leads) - min(leads):.3g}")
        return found

    def claim_count(self, claim) -> tuple[int, int]:
        """(runs where a `report.Claim` holds, runs that measured what it compares).

        The comparison is recomputed on each run's recorded metrics, so a claim added or reworded
        after the reference runs is still counted on them."""
        names = [side for side in (claim.left, claim.right) if isinstance(side, str)]
        checked = [claim.holds(run["metrics"]) for run in self.runs
                   if all(name in run["metrics"] for name in names)]
        return sum(checked), len(checked)

    def describe(self) -> str:
        """Which runs these are, in words: 'seeds 0-2, AVX512 kernels'."""
        seeds = sorted({run["seed"] for run in self.runs})
        kernels = sorted({run["kernels"] for run in self.runs})
        if len(seeds) == 1:
            which = f"seed {seeds[0]}"
        elif seeds == list(range(seeds[0], seeds[-1] + 1)):
            which = f"seeds {seeds[0]}-{seeds[-1]}"
        else:
            which = "seeds " + ", ".join(map(str, seeds))
        return f"{which}, {' and '.join(kernels)} kernels"


def reference_path(notebook: str, directory: Path | None = None) -> Path:
    return (directory or REFERENCE_DIR) / f"{notebook}.json"


def load_reference(notebook: str, directory: Path | None = None) -> Reference | None:
    """The notebook's committed reference runs, or None where none were measured yet."""
    path = reference_path(notebook, directory)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("notebook") != notebook or not isinstance(data.get("runs"), list):
        raise ValueError(f"{path} is not a reference file for {notebook}: regenerate it with "
                         f"`python -m mmcourse.references {notebook[:2]}`")
    return Reference(notebook, data["runs"])


def _run_of(results_file: Path, seed: int, kernels: str) -> dict:
    data = json.loads(results_file.read_text(encoding="utf-8"))
    return {"seed": seed, "kernels": kernels, "seconds": data["seconds"],
            "environment": data.get("environment", {}),
            "metrics": {name: m["value"] for name, m in data["metrics"].items()},
            "bars": {name: {"bar": m["bar"], "higher_is_better": m["higher_is_better"], "baseline": m["baseline"]}
                     for name, m in data["metrics"].items() if m["bar"] is not None},
            "claims": {c["text"]: c["holds"] for c in data.get("claims", [])}}


def measure(notebook: Path, seeds: tuple[int, ...] = SEEDS, kernels: tuple[str, ...] = ("native",),
            timeout: int = 1800) -> dict:
    """Execute `notebook` once per seed and kernel set; return the reference file's content."""
    from mmcourse.course import execute_notebook

    runs = []
    for kernel in kernels:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="mmcourse-ref-") as tmp:
                env = {"MMCOURSE_SEED": str(seed), "MMCOURSE_BUILD": tmp}
                if kernel != "native":
                    env["ATEN_CPU_CAPABILITY"] = kernel
                print(f"  {notebook.stem}: seed {seed}, {kernel} kernels ...", flush=True)
                with _environ(env):
                    execute_notebook(notebook, Path(tmp), timeout=timeout)
                run = _run_of(Path(tmp) / "metrics" / f"{notebook.stem}.json", seed,
                              kernel if kernel != "native" else _native_capability())
                runs.append(run)
    return {"notebook": notebook.stem,
            "command": f"python -m mmcourse.references {notebook.stem[:2]}"
                       + (f" --kernels {' '.join(kernels)}" if kernels != ("native",) else ""),
            "runs": runs}


def merge(committed: Reference | None, measured: dict) -> dict:
    """`measured` plus the committed runs of kernel sets it did not measure (another machine's)."""
    if committed is None:
        return measured
    kernels = {run["kernels"] for run in measured["runs"]}
    kept = [run for run in committed.runs if run["kernels"] not in kernels]
    return {**measured, "runs": kept + measured["runs"]}


def _native_capability() -> str:
    import torch
    return torch.backends.cpu.get_cpu_capability()


class _environ:
    """Set environment variables for the kernels started inside the block, then restore them."""

    def __init__(self, values: dict[str, str]):
        self.values, self.saved = values, {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    from mmcourse.course import find_notebooks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook prefixes, e.g. 01 05 (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--kernels", nargs="+", default=["native"],
                        help="'native' (this machine's best) and/or ATEN_CPU_CAPABILITY values: avx2, default")
    parser.add_argument("--add", action="store_true",
                        help="keep the committed runs of other kernel sets (another machine's), replace the rest")
    args = parser.parse_args(argv)
    books = find_notebooks(REPO_ROOT / "notebooks", args.only)
    if not books:
        print(f"no notebook matches {args.only}", file=sys.stderr)
        return 2
    for book in books:
        content = measure(book, tuple(args.seeds), tuple(args.kernels))
        path = reference_path(book.stem)
        if args.add:
            content = merge(load_reference(book.stem), content)
        atomic_write_text(path, json.dumps(content, indent=1) + "\n")
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
