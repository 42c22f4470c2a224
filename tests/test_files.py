import pytest

from mmcourse.files import atomic_path, atomic_write_text


def test_file_written_whole_and_no_temp_left(tmp_path):
    target = tmp_path / "out" / "a.txt"
    atomic_write_text(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failure_keeps_the_old_version(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_directory_replaced_whole_with_no_leftovers(tmp_path):
    # The two-rename window itself is covered, with a lock, in test_data_cache.
    target = tmp_path / "ds"
    for version in ("v1", "v2"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "data").write_text(version)
    assert (target / "data").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_writing_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(tmp_path / "x"):
            pass
    assert list(tmp_path.iterdir()) == []
