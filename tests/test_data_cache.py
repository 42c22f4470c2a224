import pytest
from datasets import Dataset, DatasetDict

from mmcourse.data.cache import cached_dataset, dataset_cache_path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    return tmp_path


def test_builds_once_then_reads_the_cache(private_cache):
    calls = []

    def build():
        calls.append(1)
        return DatasetDict(train=Dataset.from_dict({"x": [1, 2]}), test=Dataset.from_dict({"x": [3]}))

    first = cached_dataset("toy", build, version=2)
    again = cached_dataset("toy", build, version=2)
    assert len(calls) == 1
    assert first["train"]["x"] == again["train"]["x"] == [1, 2] and again["test"]["x"] == [3]
    assert dataset_cache_path("toy", 2) == private_cache / "datasets" / "toy-v2"
    assert dataset_cache_path("toy", 2).is_dir()
    cached_dataset("toy", build, version=3)  # a new version is a new cache
    assert len(calls) == 2


def test_rebuild_replaces_the_cache():
    cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    assert cached_dataset("toy", lambda: Dataset.from_dict({"x": [7, 8]}), rebuild=True)["x"] == [7, 8]
    assert cached_dataset("toy", lambda: pytest.fail("rebuilt"))["x"] == [7, 8]


def test_a_failed_build_leaves_no_cache(private_cache):
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_dataset("toy", broken)
    assert not dataset_cache_path("toy", 1).exists()
    assert not any((private_cache / "datasets").glob("*"))  # no temporary folder left either


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="returned list, expected a datasets.Dataset"):
        cached_dataset("toy", lambda: [1, 2])
    with pytest.raises(ValueError, match="becomes a folder name"):
        cached_dataset("../escape", lambda: Dataset.from_dict({"x": [1]}))
    with pytest.raises(ValueError, match="version"):
        dataset_cache_path("toy", "1/2")


def test_a_damaged_cache_says_how_to_fix_it():
    cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    for f in dataset_cache_path("toy", 1).iterdir():
        f.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="delete that folder or pass rebuild=True"):
        cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    assert cached_dataset("toy", lambda: Dataset.from_dict({"x": [5]}), rebuild=True)["x"] == [5]
