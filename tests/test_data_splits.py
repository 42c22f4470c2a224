import pytest
from datasets import Dataset

from mmcourse.data.splits import split_by_group

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
    parts = split_by_group(ds, test_fraction=0.25, seed=0)
    assert set(parts) == {"train", "test"}
    assert len(parts["train"]) + len(parts["test"]) == len(ds)
    assert not groups_of(parts["train"]) & groups_of(parts["test"])
    assert len(groups_of(parts["test"])) == 10  # 25% of 40 groups, with all 3 rows each
    assert len(parts["test"]) == 30


def test_same_seed_same_split_other_seed_other_split():
    ds = grouped()
    a, b = split_by_group(ds, seed=3), split_by_group(ds, seed=3)
    assert a["test"]["id"] == b["test"]["id"] and a["train"]["id"] == b["train"]["id"]
    assert groups_of(split_by_group(ds, seed=4)["test"]) != groups_of(a["test"])


def test_split_does_not_depend_on_row_order():
    ds = grouped()
    shuffled = ds.shuffle(seed=1)
    assert groups_of(split_by_group(ds, seed=0)["test"]) == groups_of(split_by_group(shuffled, seed=0)["test"])


def test_holdout_whole_categories():
    ds = grouped()
    parts = split_by_group(ds, holdout=["vehicles", "plants"], seed=0)
    assert set(parts) == {"train", "test", "heldout"}
    assert set(parts["heldout"]["top_category"]) == {"vehicles", "plants"}
    assert len(parts["heldout"]) == len(ds) // 2
    for name in ("train", "test"):
        assert set(parts[name]["top_category"]) <= {"animals", "food"}
    assert len(parts["train"]) + len(parts["test"]) + len(parts["heldout"]) == len(ds)
    # A single value may be given as a string.
    assert split_by_group(ds, holdout="food")["heldout"]["top_category"] == ["food"] * 30


def test_group_touching_a_heldout_value_goes_wholly_to_heldout():
    rows = [{"id": "a", "top_category": "x"}, {"id": "a", "top_category": "y"},
            {"id": "b", "top_category": "y"}, {"id": "c", "top_category": "y"}]
    parts = split_by_group(Dataset.from_list(rows), holdout=["x"], test_fraction=0.5)
    assert parts["heldout"]["id"] == ["a", "a"]
    assert groups_of(parts["train"]) | groups_of(parts["test"]) == {"b", "c"}


def test_other_group_column():
    ds = Dataset.from_list([{"stamp_id": f"s{i % 5}", "lang": l} for i, l in enumerate("abcdefghij")])
    parts = split_by_group(ds, group_column="stamp_id", test_fraction=0.4)
    assert len(set(parts["test"]["stamp_id"])) == 2
    assert not set(parts["train"]["stamp_id"]) & set(parts["test"]["stamp_id"])


def test_bad_input_is_named():
    ds = grouped()
    with pytest.raises(ValueError, match="empty dataset"):
        split_by_group(ds.select([]))
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_group(ds, test_fraction=1.0)
    with pytest.raises(KeyError, match="'speaker' not in the dataset"):
        split_by_group(ds, group_column="speaker")
    with pytest.raises(KeyError, match="'colour' not in the dataset"):
        split_by_group(ds, holdout=["red"], holdout_column="colour")
    with pytest.raises(ValueError, match=r"\['boats'\] do not occur"):
        split_by_group(ds, holdout=["boats"])
    with pytest.raises(ValueError, match="at least 2 groups"):
        split_by_group(Dataset.from_list([{"id": "only"}, {"id": "only"}]))
