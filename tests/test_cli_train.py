"""CLI: train / evaluate / predict / protocols / bench train on the smoke protocol; one-line errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from lightmark.benchmarks.macs import count_macs
from lightmark.cli.main import main
from lightmark.data.constants import N_LANDMARKS
from lightmark.models.spec import ModelSpec


@pytest.fixture(scope="module")
def trained(smoke_run):
    """s1-d2-c16 trained under smoke, once per session (conftest.py); `lightmark train` itself is tested below."""
    return smoke_run[0]


def _json_out(capsys):
    return json.loads(capsys.readouterr().out)


def test_train_json_and_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "s1-d2-c16", "--protocol", "smoke", "--set", "epochs=1", "--out", str(out),
                 "--device", "cpu", "--no-progress", "--json"]) == 0
    data = _json_out(capsys)
    assert data["spec"] == "s1-d2-c16" and data["protocol"] == "smoke" and data["epochs_done"] == 1
    assert data["input_size"] == 64 and data["precision"] == "fp32" and data["device"] == "cpu"
    for key in ("nme_image_pct", "nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct"):
        assert data["last"][key] > 0
    assert data["mean_shape_baseline"]["nme_image_pct"] > 0
    for name in ("best.pt", "last.pt", "log.jsonl", "config.json"):
        assert (out / name).exists(), name


def test_evaluate_reports_every_normalisation_and_writes_files(trained, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["evaluate", str(trained / "best.pt"), "--out", str(out), "--device", "cpu", "--json"]) == 0
    data = _json_out(capsys)
    m = data["metrics"]
    for key in ("nme_image_pct", "nme_inter_ocular_pct", "nme_inter_pupil_pct", "nme_bbox_pct",
                "failure_rate_8_pct", "failure_rate_10_pct"):
        assert key in m
    assert 0 <= m["failure_rate_10_pct"] <= m["failure_rate_8_pct"] <= 100
    assert data["n_images"] == 16 and len(data["per_landmark_nme_image_pct"]) == N_LANDMARKS
    # per-landmark values average to the image-normalised NME
    assert np.mean(data["per_landmark_nme_image_pct"]) == pytest.approx(m["nme_image_pct"], rel=1e-3)
    assert data["mean_shape_baseline"]["nme_image_pct"] > 0
    for name in ("metrics.json", "per_image_nme.csv", "per_landmark_nme.csv", "ced.png"):
        assert (out / name).stat().st_size > 0, name
    assert cv2.imread(str(out / "ced.png")) is not None
    per_image = pd.read_csv(out / "per_image_nme.csv")
    assert len(per_image) == 16 and per_image["name"].nunique() == 16
    worst = per_image.sort_values("nme_inter_ocular_pct", ascending=False, kind="stable").head(5)
    assert [w["name"] for w in data["worst_faces"]] == worst["name"].tolist()  # the worst faces, named
    assert data["worst_faces"][0]["nme_inter_ocular_pct"] == pytest.approx(data["worst_nme_inter_ocular_pct"], abs=1e-4)
    assert data["median_nme_inter_ocular_pct"] == pytest.approx(per_image["nme_inter_ocular_pct"].median(), abs=1e-4)


def _write_faces(folder, n=3, size=64):
    from lightmark.data.synth import SynthFaces

    folder.mkdir()
    gen = SynthFaces(size=size, seed=7)
    for i in range(n):
        cv2.imwrite(str(folder / f"face{i}.png"), cv2.cvtColor(gen.render(i).image, cv2.COLOR_RGB2BGR))


def test_predict_writes_json_csv_solution_and_pngs(trained, tmp_path, capsys):
    images = tmp_path / "imgs"
    _write_faces(images)
    # face0 stretched 2x horizontally (nearest): resizing back to 64x64 restores face0 exactly, so its
    # points must be face0's mapped by the pixel-centre rule x' = (x + 0.5) * 2 - 0.5, y' = y
    wide = cv2.resize(cv2.imread(str(images / "face0.png")), (128, 64), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    out = tmp_path / "pred"
    capsys.readouterr()
    assert main(["predict", str(trained / "last.pt"), str(images), str(tmp_path / "wide.png"), "--out", str(out),
                 "--device", "cpu", "--json"]) == 0
    assert _json_out(capsys)["n_images"] == 4
    lines = (out / "solution.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["face0.png", "face1.png", "face2.png", "wide.png"]
    assert all(len(line.split()) == 1 + 2 * N_LANDMARKS for line in lines)
    payload = json.loads((out / "points.json").read_text())
    stretched = payload["images"][3]
    assert (stretched["width"], stretched["height"]) == (128, 64)
    pts = np.array(stretched["points"])
    assert pts.shape == (N_LANDMARKS, 2)
    face0 = np.array(payload["images"][0]["points"])
    expected = np.stack([(face0[:, 0] + 0.5) * 2.0 - 0.5, face0[:, 1]], axis=1)
    assert np.abs(pts - expected).max() < 0.01
    first = [float(v) for v in lines[0].split()[1:]]
    assert np.allclose(np.array(first).reshape(N_LANDMARKS, 2), face0, atol=1e-3)
    assert len((out / "points.csv").read_text().splitlines()) == 5
    assert sorted(p.name for p in (out / "drawn").iterdir()) == ["face0.png", "face1.png", "face2.png", "wide.png"]


def test_pixel_centre_mapping():
    from lightmark.deploy.predict import to_image_coords

    pts = np.array([[0.0, 0.0], [63.0, 31.5], [-0.5, -0.5]])
    mapped = to_image_coords(pts, width=128, height=32, input_size=64)
    assert np.allclose(mapped, [[0.5, -0.25], [126.5, 15.5], [-0.5, -0.5]])


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", "{tmp}/missing.pt"], "no such checkpoint"),
    (["evaluate", "{tmp}/corrupt.pt"], "corrupt.pt"),
    (["predict", "{ckpt}", "{tmp}/nothing.png"], "no such image"),
    (["predict", "{ckpt}", "{tmp}/bad.png"], "bad.png: cannot decode image"),
    (["train", "s1-d9-c16", "--protocol", "smoke", "--out", "{tmp}/x"], "depth 9"),
    (["train", "s1-d2-c16", "--protocol", "smoke", "--set", "nope=1", "--out", "{tmp}/x"], "nope"),
    (["train", "s1-d2-c16", "--protocol", "smoke", "--precision", "fp16", "--device", "cpu", "--out", "{tmp}/x"],
     "fp16"),
])
def test_user_errors_are_one_line_exit_2(trained, tmp_path, capsys, argv, needle):
    (tmp_path / "corrupt.pt").write_bytes(b"garbage")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    argv = [a.format(tmp=tmp_path, ckpt=trained / "last.pt") for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_protocols_lists_presets(capsys):
    assert main(["protocols", "--json"]) == 0
    data = _json_out(capsys)
    assert set(data) >= {"smoke", "quick", "paper"}
    assert data["paper"]["input_size"] == 384 and data["paper"]["schedule_unit"] == "steps"
    assert data["smoke"]["input_size"] == 64
    assert main(["protocols"]) == 0
    assert "quick" in capsys.readouterr().out


def test_bench_train_json(capsys):
    assert main(["bench", "train", "s1-d2-c16", "--protocol", "smoke", "--steps", "2", "--device", "cpu",
                 "--threads", "1", "--json"]) == 0
    data = _json_out(capsys)
    for key in ("model_step_images_per_s", "loop_images_per_s", "loop_over_step_ratio",
                "codec_encode_ms", "codec_decode_ms"):
        assert data[key] > 0, key
    # the loop's cost over the step, in percent: negative when the loop ran faster (noise), never missing
    assert data["slowdown_pct"] == pytest.approx(100 * (1 / data["loop_over_step_ratio"] - 1), abs=0.2)
    assert data["loop_over_step_ratio"] == pytest.approx(
        data["loop_images_per_s"] / data["model_step_images_per_s"])
    for key in ("bare_step_ms", "trainer_step_ms", "loop_ms"):
        assert data[key] > 0 and len(data[f"{key}_by_round"]) == data["rounds"]
    assert data["trainer_over_bare"] == pytest.approx(data["trainer_step_ms"] / data["bare_step_ms"])
    assert data["model_step_ms"] == data["trainer_step_ms"]
    # the FLOP rate: 6 x forward MACs per image (fvcore) x images/s, against a 2048^2 fp32 matmul
    assert data["forward_macs"] == count_macs(ModelSpec.parse("s1-d2-c16"), 64).fvcore
    assert data["peak_gflops"] > 0 and len(data["peak_gflops_by_round"]) == data["rounds"]
    step_gflops = 6 * data["forward_macs"] * data["model_step_images_per_s"] / 1e9
    assert data["trainer_step_gflops"] == pytest.approx(step_gflops)
    assert data["peak_fraction"] == pytest.approx(step_gflops / data["peak_gflops"])
    assert 0 < data["peak_fraction"] < 1  # a 16-channel net is nowhere near a large matmul's rate

