"""Reference runs: the committed numbers over seeds 0-2 that notebooks quote beside their own."""
import json

import pytest

from mmcourse.report import Claim
from mmcourse.references import REFERENCE_DIR, Reference, _run_of, load_reference, merge, reference_path


def _run(seed, acc, bar=0.5, kernels="AVX512"):
    return {"seed": seed, "kernels": kernels, "environment": {}, "metrics": {"acc": acc},
            "bars": {"acc": {"bar": bar, "higher_is_better": True}}, "claims": {"beats blind": acc > 0.6}}


def test_describe_names_the_seeds_and_kernels():
    assert Reference("x", [_run(0, 0.7), _run(1, 0.8), _run(2, 0.75)]).describe() == "seeds 0-2, AVX512 kernels"
    both = Reference("x", [_run(0, 0.7), _run(0, 0.71, kernels="avx2")])
    assert both.describe() == "seed 0, AVX512 and avx2 kernels"
    assert Reference("x", [_run(0, 0.7), _run(2, 0.8)]).describe() == "seeds 0, 2, AVX512 kernels"


def test_span_and_claim_count():
    ref = Reference("x", [_run(0, 0.7), _run(1, 0.55), _run(2, 0.75)])
    assert ref.span("acc") == (0.55, 0.75) and ref.span("missing") is None
    assert ref.claim_count(Claim("beats blind", "acc", ">", 0.6)) == (2, 3)
    assert ref.claim_count(Claim("clearly beats blind", "acc", ">", 0.6, margin=0.1)) == (1, 3)
    assert ref.claim_count(Claim("beats an unmeasured metric", "acc", ">", "loss")) == (0, 0)


def test_a_lead_over_the_baseline_within_its_spread_is_reported():
    def run(seed, acc, baseline):
        found = _run(seed, acc, bar=0.2)
        found["bars"]["acc"]["baseline"] = baseline
        return found

    assert Reference("x", [run(0, 0.70, 0.5), run(1, 0.72, 0.5)]).bar_problems() == []   # lead 0.2, spread 0.02
    problems = Reference("x", [run(0, 0.70, 0.68), run(1, 0.75, 0.6)]).bar_problems()    # lead 0.02, spread 0.13
    assert len(problems) == 1 and "leads its baseline by +0.02" in problems[0]
    assert Reference("x", [_run(0, 0.7, bar=0.2), _run(1, 0.71, bar=0.2)]).bar_problems() == []  # none recorded


def test_adding_another_machine_keeps_its_runs_and_replaces_this_ones():
    committed = Reference("x", [_run(0, 0.7, kernels="AVX2"), _run(0, 0.6, kernels="AVX512")])
    measured = {"notebook": "x", "command": "c", "runs": [_run(0, 0.65, kernels="AVX512")]}
    runs = merge(committed, measured)["runs"]
    assert [(r["kernels"], r["metrics"]["acc"]) for r in runs] == [("AVX2", 0.7), ("AVX512", 0.65)]
    assert merge(None, measured) == measured


def test_a_bar_closer_to_the_worst_run_than_the_spread_is_reported():
    assert Reference("x", [_run(0, 0.70), _run(1, 0.72)]).bar_problems() == []  # room 0.20 > spread 0.02
    problems = Reference("x", [_run(0, 0.55), _run(1, 0.62)]).bar_problems()    # room 0.05 < spread 0.07
    assert problems and "'acc' bar 0.5" in problems[0]


def test_a_run_keeps_metrics_bars_and_claims(tmp_path):
    results = tmp_path / "x.json"
    results.write_text(json.dumps({"notebook": "x", "seconds": 3.0, "environment": {"torch": "2"},
                                   "metrics": {"acc": {"value": 0.7, "bar": 0.5, "higher_is_better": True,
                                                       "baseline": 0.4},
                                               "loss": {"value": 0.2, "bar": None, "higher_is_better": False}},
                                   "claims": [{"text": "beats blind", "holds": True}]}))
    run = _run_of(results, seed=1, kernels="AVX2")
    assert run["metrics"] == {"acc": 0.7, "loss": 0.2} and run["claims"] == {"beats blind": True}
    assert run["bars"] == {"acc": {"bar": 0.5, "higher_is_better": True, "baseline": 0.4}} and run["seed"] == 1


def test_a_reference_file_for_another_notebook_is_refused(tmp_path):
    reference_path("01_a", tmp_path).write_text(json.dumps({"notebook": "02_b", "runs": []}))
    with pytest.raises(ValueError, match="python -m mmcourse.references 01"):
        load_reference("01_a", tmp_path)
    assert load_reference("03_none", tmp_path) is None


COMMITTED = sorted(REFERENCE_DIR.glob("*.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_bars_survive_another_seed_and_kernel_set(path):
    ref = load_reference(path.stem)
    assert len({run["seed"] for run in ref.runs}) >= 3, f"{path.name}: measure seeds 0-2"
    assert not ref.bar_problems(), "; ".join(ref.bar_problems())


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_reference_matches_a_notebook(path):
    assert (REFERENCE_DIR.parent / f"{path.stem}.ipynb").exists(), f"{path.name} has no notebook"
