import threading
import time

import pytest
from datasets import Dataset, DatasetDict

import mmcourse.files
from mmcourse.data.cache import cached_dataset, dataset_cache_path, recipe_fingerprint


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    return tmp_path


def test_builds_once_then_reads_the_cache(private_cache):
    calls = []

    def build():
        calls.append(1)
        return DatasetDict(train=Dataset.from_dict({"x": [1, 2]}), test=Dataset.from_dict({"x": [3]}))

    first = cached_dataset("toy", build, recipe=(2,))
    again = cached_dataset("toy", build, recipe=(2,))
    assert len(calls) == 1
    assert first["train"]["x"] == again["train"]["x"] == [1, 2] and again["test"]["x"] == [3]
    assert dataset_cache_path("toy", (2,)) == private_cache / "datasets" / f"toy-{recipe_fingerprint((2,))}"
    assert dataset_cache_path("toy", (2,)).is_dir()
    cached_dataset("toy", build, recipe=(3,))  # a new recipe is a new cache ...
    assert len(calls) == 2
    assert not dataset_cache_path("toy", (2,)).exists()  # ... and the old one is gone


def derive_v1(x):
    return x + 1


def derive_v2(x):
    return x + 2


def test_the_fingerprint_follows_the_code_that_derives_columns():
    # Editing a function in the recipe changes the cache key: no version to bump by hand.
    assert recipe_fingerprint([derive_v1]) != recipe_fingerprint([derive_v2])
    assert recipe_fingerprint([derive_v1, 64]) != recipe_fingerprint([derive_v1, 32])
    assert recipe_fingerprint([derive_v1]) == recipe_fingerprint([derive_v1])


def test_a_reader_never_sees_the_swap_window(monkeypatch):
    """Replacing a cache directory takes two renames; a reader arriving in between must wait."""
    cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    real_replace = mmcourse.files.os.replace
    calls, moved_aside = [], threading.Event()

    def slow_replace(src, dst):  # hold the window open: old moved aside, new not yet in place
        real_replace(src, dst)
        if str(dst).endswith(".old"):
            moved_aside.set()
            time.sleep(0.5)

    monkeypatch.setattr(mmcourse.files.os, "replace", slow_replace)
    writer = threading.Thread(target=cached_dataset, args=("toy", lambda: Dataset.from_dict({"x": [2]})),
                              kwargs={"rebuild": True})
    writer.start()
    assert moved_aside.wait(10)
    seen = cached_dataset("toy", lambda: calls.append(1) or Dataset.from_dict({"x": [3]}))["x"]
    writer.join()
    assert seen == [2] and not calls  # waited for the writer, then read its result; built nothing


def test_rebuild_replaces_the_cache():
    cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    assert cached_dataset("toy", lambda: Dataset.from_dict({"x": [7, 8]}), rebuild=True)["x"] == [7, 8]
    assert cached_dataset("toy", lambda: pytest.fail("rebuilt"))["x"] == [7, 8]


def test_a_failed_build_leaves_no_cache(private_cache):
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_dataset("toy", broken)
    assert not dataset_cache_path("toy").exists()
    assert not any((private_cache / "datasets").glob("toy*"))  # no temporary folder left either


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="returned list, expected a datasets.Dataset"):
        cached_dataset("toy", lambda: [1, 2])
    with pytest.raises(ValueError, match="becomes a folder name"):
        cached_dataset("../escape", lambda: Dataset.from_dict({"x": [1]}))


def test_a_damaged_cache_says_how_to_fix_it():
    cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    for f in dataset_cache_path("toy").iterdir():
        f.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="delete that folder or pass rebuild=True"):
        cached_dataset("toy", lambda: Dataset.from_dict({"x": [1]}))
    assert cached_dataset("toy", lambda: Dataset.from_dict({"x": [5]}), rebuild=True)["x"] == [5]


def test_model_cache_path_follows_array_content_and_settings():
    import numpy as np
    import torch

    from mmcourse.data.cache import model_cache_path

    data = np.arange(2000, dtype=np.float32)          # long enough for numpy's repr to elide the middle
    changed = data.copy()
    changed[1000] += 1
    path = model_cache_path("net", (data, 3))
    assert path.parent.name == "models" and path.suffix == ".pt" and path.name.startswith("net-")
    assert path == model_cache_path("net", (data.copy(), 3)) == model_cache_path("net", (torch.from_numpy(data), 3))
    assert len({path, model_cache_path("net", (changed, 3)), model_cache_path("net", (data, 4)),
                model_cache_path("net", (data.astype(np.float64), 3))}) == 4
    with pytest.raises(ValueError, match="file name"):
        model_cache_path("a/b", ())
