import json

import pytest

from mmcourse.report import Results, course_report, load_results


def test_results_file_follows_the_contract(tmp_path):
    r = Results("01_demo", device="cpu")
    r.add("recall@5", 0.6, chance=0.1, baseline=0.2)
    r.add("loss", 0.3, higher_is_better=False)
    path = r.write(tmp_path)
    data = json.loads(path.read_text())
    assert path.name == "01_demo.json"
    assert data["notebook"] == "01_demo" and data["device"] == "cpu" and data["seconds"] >= 0
    assert data["metrics"]["recall@5"] == {"value": 0.6, "chance": 0.1, "baseline": 0.2,
                                           "higher_is_better": True}
    assert data["metrics"]["loss"]["chance"] is None and not data["metrics"]["loss"]["higher_is_better"]
    assert load_results(path) == data


def test_require_enforces_bars_with_a_clear_message():
    r = Results("x")
    r.add("acc", 0.5, chance=0.25)
    r.require("acc", at_least=0.5)
    with pytest.raises(AssertionError, match="acc = 0.5000, below its bar of 0.6"):
        r.require("acc", at_least=0.6)
    with pytest.raises(AssertionError, match="above its bar"):
        r.require("acc", at_most=0.4)
    with pytest.raises(KeyError, match="no metric"):
        r.require("bleu", at_least=0.1)


def test_non_finite_metrics_are_rejected():
    with pytest.raises(ValueError, match="not a finite number"):
        Results("x").add("acc", float("nan"))


def test_malformed_results_file_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"notebook": "bad", "seconds": 1, "device": "cpu",
                               "metrics": {"acc": {"value": 1}}}))
    with pytest.raises(ValueError, match="lacks"):
        load_results(bad)


def test_course_report_has_one_row_per_notebook(tmp_path):
    r = Results("01_a", device="cpu")
    r.add("acc", 0.75, chance=0.25, baseline=0.5)
    r.write(tmp_path)
    report = course_report(tmp_path, ["01_a", "02_b"])
    assert "| 01_a |" in report and "acc: 0.750 (0.250, 0.500)" in report
    assert "| 02_b | – | – | – | not run |" in report
    assert "no notebooks yet" in course_report(tmp_path / "none", [])


def test_tiny_errors_are_not_rounded_to_zero(tmp_path):
    r = Results("01_a")
    r.add("stft error", 8.8e-8, higher_is_better=False)
    r.add("exact", 0.0)
    assert "8.80e-08" in r.table() and "| exact ↑ | 0.000 |" in r.table()
