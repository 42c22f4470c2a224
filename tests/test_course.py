import json

import nbformat
import pytest

from mmcourse import course


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_notebooks_are_found_in_course_order(tmp_path):
    for name in ("10_x.ipynb", "02_b.ipynb", "01_a.ipynb", "scratch.ipynb"):
        _notebook(tmp_path / name, "1")
    assert [p.name for p in course.find_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_x.ipynb"]
    assert [p.name for p in course.find_notebooks(tmp_path, ["02", "10"])] == ["02_b.ipynb", "10_x.ipynb"]


def test_course_run_writes_report_and_flags_failures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "build"))
    books = tmp_path / "nb"
    books.mkdir()
    _notebook(books / "01_ok.ipynb",
              "from mmcourse.report import Results\n"
              "r = Results('01_ok', device='cpu'); r.add('acc', 0.9, chance=0.5); r.write()")
    _notebook(books / "02_broken.ipynb", "raise ValueError('model did not reach its bar')")
    stale = tmp_path / "build" / "metrics" / "02_broken.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"stale": True}))

    assert course.run_course(books) == 1
    report = (tmp_path / "build" / "report.md").read_text()
    assert "acc ↑: 0.900 (–; 0.500, –)" in report
    peak = float(report.split("| 01_ok |")[1].split("|")[1])  # the kernel's own peak memory
    assert 20 < peak < 4000
    assert "| 02_broken | – | – | – | not run |" in report and "Failed: 02_broken" in report
    assert not stale.exists()
    executed = nbformat.read(tmp_path / "build" / "notebooks" / "02_broken.ipynb", as_version=4)
    assert "model did not reach its bar" in json.dumps(executed.cells[0].outputs)


def test_empty_course_says_so_and_succeeds(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "build"))
    assert course.main(["--notebooks", str(tmp_path)]) == 0
    assert "No notebooks" in capsys.readouterr().out


def test_an_error_without_a_message_is_reported_not_a_crash(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMCOURSE_BUILD", str(tmp_path / "build"))
    books = tmp_path / "nb"
    books.mkdir()
    _notebook(books / "01_x.ipynb", "1")

    def silent_failure(*args, **kwargs):
        raise TimeoutError()  # e.g. a kernel that died without a word

    monkeypatch.setattr(course, "execute_notebook", silent_failure)
    assert course.run_course(books) == 1
    assert "FAILED: TimeoutError" in capsys.readouterr().out
