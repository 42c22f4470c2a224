import json
import subprocess
import sys

import pytest

from mmcourse.references import Reference
from mmcourse.report import BarNotMet, Results, course_report, load_results


def test_results_file_follows_the_contract(tmp_path):
    r = Results("01_demo", device="cpu")
    r.add("recall@5", 0.6, chance=0.1, baseline=0.2, bar=0.4)
    r.add("loss", 0.3, higher_is_better=False)
    path = r.write(tmp_path)
    data = json.loads(path.read_text())
    assert path.name == "01_demo.json"
    assert data["notebook"] == "01_demo" and data["device"] == "cpu" and data["seconds"] >= 0
    assert data["metrics"]["recall@5"] == {"value": 0.6, "chance": 0.1, "baseline": 0.2, "bar": 0.4,
                                           "higher_is_better": True}
    assert data["metrics"]["loss"]["bar"] is None and not data["metrics"]["loss"]["higher_is_better"]
    assert load_results(path) == data


def test_check_passes_when_every_bar_and_baseline_is_met(capsys):
    r = Results("x")
    r.add("acc", 0.5, chance=0.25, baseline=0.4, bar=0.5)
    r.add("error", 1e-6, bar=1e-4, higher_is_better=False)
    r.add("shown only", 0.01, chance=0.25, baseline=0.9)  # no bar: never asserted
    r.check()
    assert "all 2 bars met" in capsys.readouterr().out


@pytest.mark.parametrize("value, baseline, message", [
    (0.55, None, "acc = 0.55, below its bar of 0.6"),
    (0.70, 0.70, "acc = 0.7 does not beat its baseline 0.7"),
    (0.70, 0.80, "does not beat its baseline 0.8"),
])
def test_check_names_a_missed_bar_or_baseline(value, baseline, message):
    r = Results("x")
    r.add("acc", value, chance=0.25, baseline=baseline, bar=0.6)
    with pytest.raises(BarNotMet, match=message):
        r.check()


def test_lower_is_better_bars_are_maxima():
    r = Results("x")
    r.add("error", 2e-4, baseline=1e-3, bar=1e-4, higher_is_better=False)
    with pytest.raises(BarNotMet, match="above its bar"):
        r.check()


def test_check_survives_python_optimise_mode():
    # `assert` statements vanish under `python -O`; the bar check must not.
    code = ("from mmcourse.report import Results, BarNotMet\n"
            "r = Results('x'); r.add('acc', 0.1, bar=0.5)\n"
            "try:\n    r.check()\nexcept BarNotMet:\n    print('caught')\n")
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "caught"


def test_a_bar_below_twice_chance_is_refused():
    with pytest.raises(ValueError, match="below twice its chance"):
        Results("x").add("acc", 0.9, chance=0.3, bar=0.5)


def test_non_finite_metrics_are_rejected():
    with pytest.raises(ValueError, match="not a finite number"):
        Results("x").add("acc", float("nan"))


def test_malformed_results_file_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"notebook": "bad", "seconds": 1, "device": "cpu",
                               "metrics": {"acc": {"value": 1, "chance": None, "baseline": None,
                                                   "higher_is_better": True}}}))
    with pytest.raises(ValueError, match=r"lacks \['bar'\]"):
        load_results(bad)


def test_course_report_has_one_row_per_notebook(tmp_path):
    r = Results("01_a", device="cpu")
    r.add("acc", 0.75, chance=0.25, baseline=0.5, bar=0.6)
    r.add("loss", 0.1, higher_is_better=False)
    r.write(tmp_path)
    report = course_report(tmp_path, ["01_a", "02_b"])
    assert "| 01_a |" in report and "acc ↑: 0.750 (0.600; 0.250, 0.500)" in report
    assert "loss ↓: 0.100 (–; –, –)" in report
    assert "| 02_b | – | – | – | not run |" in report
    assert "no notebooks yet" in course_report(tmp_path / "none", [])


def test_tiny_errors_are_not_rounded_to_zero(tmp_path):
    r = Results("01_a")
    r.add("stft error", 8.8e-8, higher_is_better=False)
    r.add("exact", 0.0)
    assert "8.80e-08" in r.table() and "| exact ↑ | 0.000 | – |" in r.table()


def test_results_record_the_libraries_and_processor_they_were_measured_with(tmp_path):
    import numpy
    import torch

    data = json.loads(Results("01_a").write(tmp_path).read_text())
    env = data["environment"]
    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["processor"] and "not installed" not in env.values()


def test_course_report_says_where_its_numbers_were_measured(tmp_path):
    for stem, cpu in (("01_a", "cpu A"), ("02_b", "cpu B"), ("03_c", "cpu A")):
        Results(stem).write(tmp_path)
        path = tmp_path / f"{stem}.json"
        data = json.loads(path.read_text())
        data["environment"] = {"processor": cpu, "torch": "2.0"}
        path.write_text(json.dumps(data))
    lines = course_report(tmp_path).splitlines()
    measured = lines[lines.index("Measured with:") + 1:]
    assert measured == ["- processor cpu A, torch 2.0 (01_a, 03_c)", "- processor cpu B, torch 2.0 (02_b)"]


def test_course_report_reads_results_written_before_environments_were_recorded(tmp_path):
    path = Results("01_a").write(tmp_path)
    data = json.loads(path.read_text())
    del data["environment"]
    path.write_text(json.dumps(data))
    assert "Measured with" not in course_report(tmp_path)


# ---------------------------------------------------------------- claims and reference runs

def _reference(accs: list[float], blind: float = 0.5) -> Reference:
    return Reference("x", [{"seed": i, "kernels": "AVX512", "environment": {},
                            "metrics": {"acc": a, "blind acc": blind}} for i, a in enumerate(accs)])


def test_a_claim_is_computed_on_this_run_and_recorded(tmp_path, capsys):
    r = Results("x", reference=_reference([0.8, 0.82, 0.79]))
    r.add("acc", 0.8)
    r.add("blind acc", 0.5)
    r.claim("fused beats blind", "acc", ">", "blind acc", margin=0.1)
    out = capsys.readouterr().out
    assert "Fused beats blind: holds on this run (0.800 > 0.500 + 0.100) and on all 3 reference runs." in out
    data = json.loads(r.write(tmp_path).read_text())
    assert data["claims"] == [{"text": "fused beats blind", "left": "acc", "op": ">", "right": "blind acc",
                               "margin": 0.1, "holds": True}]


def test_a_claim_that_fails_says_so_and_a_partial_one_counts_its_seeds():
    r = Results("x", reference=_reference([0.8, 0.55, 0.79]))
    r.add("acc", 0.55)
    r.add("blind acc", 0.5)
    claim = r.claim("fused beats blind", "acc", ">", "blind acc", margin=0.1)
    sentence = r.claim_sentence(claim)
    assert "does NOT hold on this run (0.550 is not > 0.500 + 0.100)" in sentence
    assert "it holds on only 2 of the 3 reference runs (seeds 0-2, AVX512 kernels)" in sentence


def test_margins_point_the_right_way_for_lower_is_better():
    r = Results("x", reference=None)
    r.add("error", 0.10)
    assert r.claim("error below 0.2 by 0.05", "error", "<", 0.2, margin=0.05).holds(r.values())
    assert not r.claim("error below 0.12 by 0.05", "error", "<", 0.12, margin=0.05).holds(r.values())


def test_a_claim_on_an_unrecorded_metric_fails_at_once():
    r = Results("x", reference=None)
    r.add("acc", 0.5)
    with pytest.raises(KeyError, match="compares 'blind', which is not a recorded metric"):
        r.claim("beats blind", "acc", ">", "blind")
    with pytest.raises(ValueError, match="comparison '=>'"):
        r.claim("bad", "acc", "=>", 0.1)


def test_prose_is_rendered_from_this_run_and_the_reference_range():
    r = Results("x", reference=_reference([0.8, 0.82, 0.79]))
    r.add("acc", 0.812)
    r.add("blind acc", 0.5)
    r.claim("fused beats blind", "acc", ">", "blind acc")
    text = r.render("Fused {acc} ({acc|pct}); seeds: {acc|ref}. {claim: fused beats blind}")
    assert text.startswith("Fused 0.812 (81%); seeds: 0.790-0.820 over seeds 0-2, AVX512 kernels. "
                           "Fused beats blind: holds on this run")
    with pytest.raises(KeyError, match="'accuracy' is not a recorded metric"):
        r.render("{accuracy}")
    with pytest.raises(ValueError, match="unknown format"):
        r.render("{acc|percent}")
    assert "- Fused beats blind: holds" in r.takeaways().data


def test_without_reference_runs_the_text_says_so():
    r = Results("x", reference=None)
    r.add("acc", 0.8)
    assert r.render("{acc|ref}") == "not measured on the reference runs yet"
    assert "no reference runs yet" in r.claim_sentence(r.claim("above half", "acc", ">", 0.5))
    with pytest.raises(ValueError, match="no claims recorded"):
        Results("y", reference=None).takeaways()


def test_course_report_shows_each_bar_margin_and_claims(tmp_path):
    r = Results("01_demo", reference=None)
    r.add("acc", 0.61, chance=0.1, bar=0.5)
    r.add("error", 0.02, bar=0.05, higher_is_better=False)
    r.claim("above chance", "acc", ">", 0.1)
    r.write(tmp_path)
    report = course_report(tmp_path)
    assert "acc ↑: 0.610 (0.500; 0.100, –), margin +0.11" in report
    assert "error ↓: 0.020 (0.050; –, –), margin +0.03" in report
    assert "claims holding on this run: 1 of 1" in report


def test_bootstrap_interval_of_a_mean_and_of_any_statistic():
    import numpy as np

    from mmcourse.report import bootstrap_interval
    values = np.array([0.0] * 50 + [1.0] * 50)
    low, high = bootstrap_interval(values, seed=0)
    assert 0.35 < low < 0.5 < high < 0.65
    assert bootstrap_interval(values, seed=0) == bootstrap_interval(values, seed=0)      # seeded
    assert bootstrap_interval(np.full(20, 3.0), np.median) == (3.0, 3.0)               # no spread, no width
