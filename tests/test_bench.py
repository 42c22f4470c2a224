"""The benchmark script behind README's speed table still runs (its numbers are printed, not tested)."""
import pytest
import torch

from mmcourse import bench


def test_training_workload_runs_and_is_timed():
    assert 0 < bench.training_seconds(steps=2, size=32, width=4, batch_size=8) < 60


def test_views_per_second_counts_views(tuxpaint):
    assert bench.views_per_second(workers=0, size=32, copies=1, batches=2, batch_size=8) > 0


def test_unknown_benchmark_is_refused():
    with pytest.raises(SystemExit):
        bench.main(["everything"])


def test_gpu_checks_run_on_the_cpu_and_losses_fall():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread waiting on a busy machine costs seconds
    try:
        rows = bench.gpu_report(steps=4, device="cpu", tiny=True)
    finally:
        torch.set_num_threads(threads)
    trained = [r for r in rows if "steps/s" in r]
    assert len(trained) == 13 and all(map(bench.passed, rows)), [r for r in rows if not bench.passed(r)]
    # Four AdamW steps on one fixed batch: every supervised loss must fall (the GAN's need not).
    falling = {r["model"]: r["last loss"] < r["first loss"] for r in trained if "train_gan" not in r["model"]}
    assert all(falling.values()), falling
    assert rows[-1]["model"] == "fit" and rows[-1]["last loss"] < rows[-1]["first loss"]


class _LeaksToCpu(torch.nn.Module):
    def forward(self, x):
        return x * 2, torch.zeros(1)  # made on the default CPU, whatever the device of x


def test_off_device_finds_a_tensor_made_on_the_cpu():
    work = bench.Workload(_LeaksToCpu(), torch.ones(3, device="meta"), lambda model, x: model(x)[0].sum())
    assert bench.off_device(work, torch.device("meta"), None) == ["output of _LeaksToCpu"]
    fine = bench.Workload(torch.nn.Linear(3, 2).to("meta"), torch.ones(4, 3, device="meta"),
                          lambda model, x: model(x).sum())
    assert bench.off_device(fine, torch.device("meta"), None) == []


def test_gpu_needs_a_timed_step():
    with pytest.raises(SystemExit):
        bench.main(["gpu", "--device", "cpu", "--steps", "2"])
