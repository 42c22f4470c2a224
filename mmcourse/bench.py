"""Benchmarks behind the numbers in README's "Measured speed and memory".

    python -m mmcourse.bench views            # augmented views per second, 0 and 2 DataLoader workers
    python -m mmcourse.bench busy             # notebook 01's training alone and beside 1 and 3 busy processes

Timings are printed, not asserted: they depend on the machine and on whatever else runs on it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

# A competitor: another user's PyTorch job, with PyTorch's default (spinning) OpenMP waits.
BUSY_LOOP = "import torch\nx = torch.rand(700, 700)\nwhile True:\n    x = (x @ x).tanh()\n"


def views_per_second(workers: int, size: int, copies: int, batches: int = 30, batch_size: int = 64) -> float:
    """Training views of notebook 01 (stamp on a random background) made per second."""
    from mmcourse import tagging
    from mmcourse.data.tuxpaint import load_stamps
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
    from mmcourse import tagging

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("what", choices=["views", "busy"])
    args = parser.parse_args(argv)
    if args.what == "views":
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
