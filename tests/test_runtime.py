import pytest
import torch

from mmcourse import runtime


def test_same_seed_same_numbers():
    runtime.seed_everything(3)
    a = torch.randn(5), __import__("numpy").random.rand(3), __import__("random").random()
    runtime.seed_everything(3)
    b = torch.randn(5), __import__("numpy").random.rand(3), __import__("random").random()
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_device_override_and_env(monkeypatch):
    assert runtime.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("MMCOURSE_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.pick_device("cuda")


def test_profile_follows_device_and_override(monkeypatch):
    monkeypatch.delenv("MMCOURSE_PROFILE", raising=False)
    assert runtime.pick_profile(torch.device("cpu")).name == "cpu"
    assert runtime.pick_profile(torch.device("cuda")).name == "gpu"
    gpu = runtime.pick_profile(torch.device("cpu"), "gpu")
    assert gpu.pick(cpu=1, gpu=8) == 8
    assert runtime.Profile("cpu").pick(cpu=1, gpu=8) == 1
    with pytest.raises(ValueError, match="unknown profile"):
        runtime.pick_profile(torch.device("cpu"), "tpu")


def test_paths_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "b"))
    assert runtime.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert runtime.build_dir() == tmp_path / "b" and (tmp_path / "b").is_dir()


def test_setup_prints_its_choices(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    rt = runtime.setup(seed=7, device="cpu")
    out = capsys.readouterr().out
    assert rt.seed == 7 and rt.device.type == "cpu"
    assert "seed=7" in out and "device=cpu" in out and str(tmp_path) in out


def test_describe_says_how_openmp_threads_wait(monkeypatch, tmp_path):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "b"))
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert "OMP_WAIT_POLICY=PASSIVE" in runtime.setup(seed=0, device="cpu", verbose=False).describe()
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert "OMP_WAIT_POLICY=unset (spinning)" in runtime.setup(seed=0, device="cpu", verbose=False).describe()


def test_cpu_runs_sum_repeated_indices_in_a_fixed_order(monkeypatch, tmp_path):
    # x[idx] with repeated indices backpropagates through an accumulating index_put; on several
    # CPU threads that is only reproducible in deterministic mode, which setup() turns on.
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "b"))
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        runtime.setup(seed=0, device="cpu", verbose=False)
        assert torch.are_deterministic_algorithms_enabled()
        idx = torch.randint(0, 50, (200_000,), generator=torch.Generator().manual_seed(0))
        weights = torch.rand(200_000, 16, generator=torch.Generator().manual_seed(2))
        grads = []
        for _ in range(5):
            x = torch.rand(50, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
            (x[idx] * weights).sum().backward()
            grads.append(x.grad)
        assert all(torch.equal(grads[0], g) for g in grads[1:])
    finally:
        torch.use_deterministic_algorithms(before)
