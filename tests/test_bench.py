"""The benchmark script behind README's speed table still runs (its numbers are printed, not tested)."""
import pytest

from mmcourse import bench


def test_training_workload_runs_and_is_timed():
    assert 0 < bench.training_seconds(steps=2, size=32, width=4, batch_size=8) < 60


def test_views_per_second_counts_views(tuxpaint):
    assert bench.views_per_second(workers=0, size=32, copies=1, batches=2, batch_size=8) > 0


def test_unknown_benchmark_is_refused():
    with pytest.raises(SystemExit):
        bench.main(["everything"])
