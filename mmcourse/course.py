"""Run the whole course: execute every notebook headless, in order, then write the course report.

    python -m mmcourse.course            # all notebooks
    python -m mmcourse.course 01 06      # only those whose name starts with 01 or 06
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmcourse.files import atomic_path, atomic_write_text
from mmcourse.report import course_report
from mmcourse.runtime import REPO_ROOT, build_dir

KERNEL = "mmcourse"  # registered into the virtual environment by `make setup`
# Appended to each run, then removed: the kernel reports its own peak resident memory.
PEAK_PROBE = ("import resource, sys\n"
              "print('PEAK_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
              " / (2**20 if sys.platform == 'darwin' else 2**10))")


def find_notebooks(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks (NN_name.ipynb) in course order, optionally filtered by prefix."""
    books = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [p for p in books if any(p.name.startswith(o) for o in only)]
    return books


def execute_notebook(path: Path, out_dir: Path, timeout: int = 900,
                     kernel: str = KERNEL, allow_errors: bool = False) -> tuple[float, float]:
    """Execute one notebook in its own folder and write the executed copy to `out_dir`.

    `allow_errors` runs every cell even after one raised (the errors stay in the copy).
    Returns (seconds, peak resident memory of the kernel in MB).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        probe = nb.cells.pop()
        # Keep the executed copy even on failure: it shows the error in place.
        with atomic_path(out_dir / path.name) as tmp:
            nbformat.write(nb, tmp)
    seconds = time.perf_counter() - start
    printed = "".join(o.get("text", "") for o in probe.outputs)
    return seconds, float(printed.split()[-1])


def _last_line(err: Exception) -> str:
    """The error's type and the last line of its message (nbclient puts the cause last)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[-1][:300]}" if lines else type(err).__name__


def run_course(notebooks_dir: Path, only: list[str] | None = None, timeout: int = 900) -> int:
    """Execute the notebooks, write build/report.md; return the number of failed notebooks."""
    build = build_dir()
    books = find_notebooks(notebooks_dir, only)
    if not books:
        print(f"No notebooks in {notebooks_dir} yet: nothing to run.")
    failed, peaks = [], {}
    for i, path in enumerate(books, 1):
        stale = build / "metrics" / f"{path.stem}.json"
        stale.unlink(missing_ok=True)  # a failed run must not show an old result
        print(f"[{i}/{len(books)}] {path.name} ...", flush=True)
        try:
            seconds, peaks[path.stem] = execute_notebook(path, build / "notebooks", timeout)
            print(f"      done in {seconds:.0f} s, kernel peak memory {peaks[path.stem]:.0f} MB",
                  flush=True)
        except Exception as err:  # report every notebook, then fail at the end
            failed.append(path.stem)
            print(f"      FAILED: {_last_line(err)}", flush=True)
    report = course_report(build / "metrics", [p.stem for p in books], peaks)
    if failed:
        report += "\nFailed: " + ", ".join(failed) + " (executed copies show where).\n"
    path = atomic_write_text(build / "report.md", report)
    print(f"\n{report}\nReport: {path}\nExecuted notebooks: {build / 'notebooks'}")
    return len(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("only", nargs="*", help="notebook name prefixes to run (default: all)")
    parser.add_argument("--notebooks", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    return 1 if run_course(args.notebooks, args.only, args.timeout) else 0


if __name__ == "__main__":
    sys.exit(main())
