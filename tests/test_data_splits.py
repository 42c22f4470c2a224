import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from mmcourse.data.splits import assert_disjoint, audio_hash, content_hash, linked_groups, split_by_group

CATEGORIES = ["animals", "food", "vehicles", "plants"]


def grouped(n_groups: int = 40, rows_per_group: int = 3) -> Dataset:
    """Rows of `n_groups` stamps, each repeated, each in one of four categories."""
    rows = [{"id": f"{CATEGORIES[g % 4]}/stamp{g}", "top_category": CATEGORIES[g % 4], "copy": r}
            for g in range(n_groups) for r in range(rows_per_group)]
    return Dataset.from_list(rows)


def groups_of(ds: Dataset) -> set:
    return set(ds["id"])


def test_every_row_once_and_no_group_in_two_splits():
    ds = grouped()
    parts = split_by_group(ds, test_fraction=0.25, val_fraction=0.1, seed=0)
    assert list(parts) == ["train", "validation", "test"]
    assert sum(len(p) for p in parts.values()) == len(ds)
    assert_disjoint(parts, ["id"])
    assert len(groups_of(parts["test"])) == 10  # 25% of 40 groups, with all 3 rows each
    assert len(groups_of(parts["validation"])) == 4
    assert len(parts["test"]) == 30


def test_same_seed_same_split_other_seed_other_split():
    ds = grouped()
    a, b = split_by_group(ds, seed=3), split_by_group(ds, seed=3)
    for name in a:
        assert a[name]["id"] == b[name]["id"]
    assert groups_of(split_by_group(ds, seed=4)["test"]) != groups_of(a["test"])


def test_split_does_not_depend_on_row_order():
    ds = grouped()
    shuffled = ds.shuffle(seed=1)
    for name in ("validation", "test"):
        assert groups_of(split_by_group(ds, seed=0)[name]) == groups_of(split_by_group(shuffled, seed=0)[name])


def test_holdout_whole_categories():
    ds = grouped()
    parts = split_by_group(ds, holdout=["vehicles", "plants"], seed=0)
    assert list(parts) == ["train", "validation", "test", "heldout"]
    assert set(parts["heldout"]["top_category"]) == {"vehicles", "plants"}
    assert len(parts["heldout"]) == len(ds) // 2
    for name in ("train", "validation", "test"):
        assert set(parts[name]["top_category"]) <= {"animals", "food"}
    assert sum(len(p) for p in parts.values()) == len(ds)
    # A single value may be given as a string.
    assert split_by_group(ds, holdout="food")["heldout"]["top_category"] == ["food"] * 30


def test_group_touching_a_heldout_value_goes_wholly_to_heldout():
    rows = [{"id": "a", "top_category": "x"}, {"id": "a", "top_category": "y"}] + \
           [{"id": g, "top_category": "y"} for g in "bcde"]
    parts = split_by_group(Dataset.from_list(rows), holdout=["x"], test_fraction=0.3)
    assert parts["heldout"]["id"] == ["a", "a"]
    assert set().union(*(groups_of(parts[n]) for n in ("train", "validation", "test"))) == set("bcde")


def test_groups_sharing_content_are_linked_through_chains():
    # a-b share an image, b-c a recording, so a, b, c are one component; d stands alone.
    ds = Dataset.from_list([
        {"id": "a", "image_sha": "i1", "audio_shas": ["s1"]},
        {"id": "b", "image_sha": "i1", "audio_shas": ["s2", "s3"]},
        {"id": "c", "image_sha": "i2", "audio_shas": ["s3"]},
        {"id": "d", "image_sha": "i3", "audio_shas": []},
        {"id": "e", "image_sha": None, "audio_shas": ["s4"]},
    ])
    comp = linked_groups(ds, "id", ["image_sha", "audio_shas"])
    assert comp["a"] == comp["b"] == comp["c"]
    assert len({comp["a"], comp["d"], comp["e"]}) == 3
    assert linked_groups(ds, "id")["a"] != linked_groups(ds, "id")["b"]  # without links: apart


def test_identical_recordings_never_straddle_a_split():
    # Eight stamps share one recording (as flower1..8_desc_fr.ogg do); by id alone they scatter.
    rows = [{"id": f"flower{i}", "audio_sha": "same"} for i in range(8)]
    rows += [{"id": f"other{i}", "audio_sha": f"own{i}"} for i in range(30)]
    ds = Dataset.from_list(rows)
    by_id = [split_by_group(ds, seed=s) for s in range(5)]
    assert any(_straddles(p, "audio_sha") for p in by_id)
    for seed in range(5):
        parts = split_by_group(ds, seed=seed, link_columns=["audio_sha"])
        assert_disjoint(parts, ["id", "audio_sha"])
        assert sum(parts[n]["id"].count("flower0") for n in parts) == 1


def _straddles(parts: DatasetDict, column: str) -> bool:
    try:
        assert_disjoint(parts, [column])
    except ValueError:
        return True
    return False


def test_assert_disjoint_names_the_shared_values():
    parts = {"train": Dataset.from_dict({"sha": ["x", "y"]}), "test": Dataset.from_dict({"sha": ["y"]})}
    with pytest.raises(ValueError, match=r"1 values of 'sha', e.g. \['y'\]"):
        assert_disjoint(parts, ["sha"])


def test_content_hash_is_stable_and_content_only():
    assert content_hash(b"abc") == content_hash(bytearray(b"abc")) == "a9993e364706816a"
    assert content_hash(b"abc") != content_hash(b"abd")
    with pytest.raises(TypeError, match="needs bytes"):
        content_hash("abc")


def test_audio_hash_is_of_the_samples_rate_and_channels():
    pcm = np.random.default_rng(0).integers(-32768, 32768, size=(2, 1000)) / 32768  # 16-bit samples
    sha = audio_hash(pcm, 16000)
    assert audio_hash(torch.tensor(pcm, dtype=torch.float32), 16000) == sha  # float32 and tensors too
    # Rounded to 16 bits: float noise from another decoder build does not split identical audio.
    assert audio_hash(pcm + 1e-7, 16000) == sha
    assert audio_hash(pcm + 1 / 32768, 16000) != sha  # one 16-bit step is a different sound
    assert audio_hash(pcm, 22050) != sha
    assert audio_hash(pcm.reshape(1, -1), 16000) != sha  # same numbers, one channel
    assert audio_hash(pcm[0], 16000) == audio_hash(pcm[:1], 16000)  # (time,) is one channel
    assert audio_hash(np.full(10, 2.0), 8000) == audio_hash(np.full(10, 1.0), 8000)  # clipped at full scale
    with pytest.raises(ValueError, match=r"\(time,\) or \(channels, time\)"):
        audio_hash(np.zeros((1, 2, 3)), 8000)
    with pytest.raises(ValueError, match="at least one sample"):
        audio_hash(np.zeros(0), 8000)


def test_other_group_column():
    ds = Dataset.from_list([{"stamp_id": f"s{i % 5}", "lang": l} for i, l in enumerate("abcdefghij")])
    parts = split_by_group(ds, group_column="stamp_id", test_fraction=0.4, val_fraction=0.2)
    assert len(set(parts["test"]["stamp_id"])) == 2 and len(set(parts["validation"]["stamp_id"])) == 1
    assert_disjoint(parts, ["stamp_id"])


def test_bad_input_is_named():
    ds = grouped()
    with pytest.raises(ValueError, match="empty dataset"):
        split_by_group(ds.select([]))
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_group(ds, test_fraction=1.0)
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_group(ds, val_fraction=0.0)
    with pytest.raises(ValueError, match="leaves nothing to train on"):
        split_by_group(ds, test_fraction=0.5, val_fraction=0.5)
    with pytest.raises(KeyError, match="'speaker' not in the dataset"):
        split_by_group(ds, group_column="speaker")
    with pytest.raises(KeyError, match="'sha' not in the dataset"):
        split_by_group(ds, link_columns=["sha"])
    with pytest.raises(KeyError, match="'colour' not in the dataset"):
        split_by_group(ds, holdout=["red"], holdout_column="colour")
    with pytest.raises(ValueError, match=r"\['boats'\] do not occur"):
        split_by_group(ds, holdout=["boats"])
    with pytest.raises(ValueError, match="at least 3 groups"):
        split_by_group(Dataset.from_list([{"id": "a"}, {"id": "b"}]))
