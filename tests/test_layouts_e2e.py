"""Any layout end to end: train, evaluate, predict and a two-trial search on a 98-point WFLW list
and a 29-point COFW .mat (smoke protocol, 64 px); a spec of the wrong point count stops with exit 2."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from layout_fixtures import write_cofw, write_wflw

from lightmark.benchmarks.suites import plan_candidates, resolve_tables, roundtrip_nme
from lightmark.cli.main import main
from lightmark.search.storage import choose_storage, open_storage
from lightmark.training.dataset import data_layout
from lightmark.training.protocol import get_protocol

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wflw(tmp_path_factory):
    root = tmp_path_factory.mktemp("wflw")
    path, _ = write_wflw(root, n=24)
    return path


@pytest.fixture(scope="module")
def cofw(tmp_path_factory):
    path = tmp_path_factory.mktemp("cofw") / "COFW_train.mat"
    write_cofw(path, n=24)
    return path


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("fixture,k,layout", [("wflw", 98, "wflw98"), ("cofw", 29, "cofw29")])
def test_train_evaluate_predict_on_another_layout(request, tmp_path, capsys, fixture, k, layout):
    data = request.getfixturevalue(fixture)
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", f"s1-d2-c16-k{k}", "--protocol", "smoke", "--data", str(data), "--out", str(run),
                 "--device", "cpu", "--no-progress", "--json"]) == 0
    trained = _json(capsys)
    assert trained["spec"] == f"s1-d2-c16-k{k}" and trained["last"]["nme_inter_ocular_pct"] > 0
    assert json.loads((run / "config.json").read_text())["protocol"]["data"] == str(data)

    assert main(["evaluate", str(run / "best.pt"), "--data", str(data), "--out", str(tmp_path / "eval"),
                 "--device", "cpu", "--json"]) == 0
    ev = _json(capsys)
    assert ev["layout"] == layout and ev["n_images"] == 24 and len(ev["per_landmark_nme_image_pct"]) == k
    assert ev["metrics"]["nme_inter_pupil_pct"] > 0 and ev["metrics"]["failure_rate_10_pct"] >= 0
    assert np.mean(ev["per_landmark_nme_image_pct"]) == pytest.approx(ev["metrics"]["nme_image_pct"], rel=1e-3)
    if layout == "wflw98":  # WFLW's attribute flags: NME per subset
        by = ev["nme_inter_ocular_by_attribute"]
        assert by["pose"]["n_images"] == 12 and by["occlusion"]["n_images"] == 8 and by["blur"]["n_images"] == 0
        assert set(ev["per_part_nme_image_pct"]) >= {"jaw", "pupils"}

    images = data.parent / "images" if layout == "wflw98" else None
    if images is not None:
        assert main(["predict", str(run / "best.pt"), str(images), "--out", str(tmp_path / "pred"),
                     "--device", "cpu", "--no-draw", "--json"]) == 0
        capsys.readouterr()
        first = (tmp_path / "pred" / "solution.txt").read_text().splitlines()[0].split()
        assert len(first) == 1 + 2 * k
        payload = json.loads((tmp_path / "pred" / "points.json").read_text())
        assert np.asarray(payload["images"][0]["points"]).shape == (k, 2)


@pytest.mark.parametrize("fixture,k", [("wflw", 98), ("cofw", 29)])
def test_a_68_point_spec_on_other_data_exits_2_naming_both_counts(request, tmp_path, capsys, fixture, k):
    data = request.getfixturevalue(fixture)
    capsys.readouterr()
    assert main(["train", "s1-d2-c16", "--protocol", "smoke", "--data", str(data), "--out", str(tmp_path / "r"),
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"predicts 68 points but {data} has {k}" in err and f"-k{k}" in err and "Traceback" not in err


@pytest.mark.parametrize("fixture,k", [("wflw", 98), ("cofw", 29)])
def test_two_trial_search_on_another_layout(request, tmp_path, capsys, fixture, k):
    data = request.getfixturevalue(fixture)
    out = tmp_path / "search"
    capsys.readouterr()
    code = main(["search", "--protocol", "smoke", "--data", str(data), "--stacks", "1", "--depth", "2",
                 "--channels", "16,24", "--attention", "none", "--coordconv", "false", "--sampler", "grid",
                 "--n-trials", "2", "--budget-mb", "5", "--out", str(out), "--no-report", "--device", "cpu",
                 "--json"])
    assert code == 0
    summary = _json(capsys)
    assert summary["trials"] == 2


    study = optuna.load_study(study_name="lightmark-smoke", storage=open_storage(choose_storage(None, out)))
    specs = sorted(t.user_attrs["spec"] for t in study.trials)
    assert specs == [f"s1-d2-c16-k{k}", f"s1-d2-c24-k{k}"]
    assert all(t.user_attrs.get("status") == "complete" for t in study.trials)


def test_ablation_rows_and_table3_round_trip_follow_the_datas_layout(wflw):
    protocol = get_protocol("smoke").override({"data": str(wflw)})
    assert data_layout(protocol).name == "wflw98"
    plan = plan_candidates(resolve_tables("table4"), protocol, 1, data_layout(protocol).n_points)
    assert plan and all(c.spec.n_landmarks == 98 and str(c.spec).endswith("-k98") for c in plan)
    trips = roundtrip_nme(protocol, ("plain", "subpixel"))
    assert trips["subpixel"]["nme_inter_ocular_pct"] < trips["plain"]["nme_inter_ocular_pct"]
    assert trips["plain"]["n_images"] == 2  # the 10 % validation split of 24
