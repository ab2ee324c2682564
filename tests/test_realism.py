"""The realism measure (`lightmark data realism`): which faces count, the numbers, and the CLI contract.

The parts that need dlib skip without the [real] extra (make setup installs it, so CI runs them)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightmark.cli.main import main
from lightmark.data.dlib68 import Detection
from lightmark.data.images import read_image
from lightmark.data.realdev import PHOTOS, build_dev_set, locate
from lightmark.data.realism import FaceCheck, check_face, is_frontal, match_detection, measure_realism, summarise
from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.errors import ConfigError


def test_near_frontal_means_small_yaw_and_pitch_and_no_occluder():
    assert is_frontal({"yaw": 19.9, "pitch": -19.9, "occluder": "none"})
    assert not is_frontal({"yaw": 20.0, "pitch": 0.0, "occluder": "none"})
    assert not is_frontal({"yaw": 0.0, "pitch": -25.0, "occluder": "none"})
    assert not is_frontal({"yaw": 0.0, "pitch": 0.0, "occluder": "hand"})


def test_only_a_detection_centred_on_the_labelled_face_counts():
    points = np.array([[40, 40], [60, 40], [50, 70]], np.float32)
    background = Detection((0, 0, 10, 10), 2.0)
    face = Detection((35, 35, 65, 75), 0.5)
    assert match_detection([background, face], points) is face
    assert match_detection([background], points) is None


def test_the_summary_counts_and_rates():
    def check(frontal, detected, error):
        return FaceCheck(0, frontal, detected, error, 1.0 if detected else None, 0.0, 0.0, "none")

    checks = [check(True, True, 4.0), check(True, False, None), check(True, True, 8.0), check(False, True, 12.0),
              check(False, False, None)]
    summary = summarise(checks)
    assert (summary["n"], summary["n_frontal"], summary["n_detected_frontal"], summary["n_detected"]) == (5, 3, 2, 3)
    assert summary["detection_rate_frontal"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["detection_rate_all"] == pytest.approx(0.6)
    assert summary["nme_vs_labels_inter_ocular_pct"] == 8.0  # median of every found face
    assert summary["nme_vs_labels_inter_ocular_mean_pct"] == 8.0
    assert summary["nme_vs_labels_inter_ocular_frontal_pct"] == 6.0
    empty = summarise([check(False, False, None)])
    assert empty["detection_rate_frontal"] is None and empty["nme_vs_labels_inter_ocular_pct"] is None


def test_a_real_face_labelled_by_dlib_is_found_at_zero_error(tmp_path, dlib_faces):
    astronaut = next(p for p in PHOTOS if p.path.endswith("astronaut.png"))
    if locate(astronaut) is None:
        pytest.skip("scikit-image (part of the [real] extra) is not installed")
    build_dev_set(tmp_path, dlib_faces, 192, photos=[astronaut])
    record = json.loads((tmp_path / "meta.json").read_text())["samples"][0]
    image = read_image(tmp_path / record["name"])
    again = dlib_faces.points(image, dlib_faces.detect(image)[0].box)
    sample = FaceSample(image=image, points=again, meta={"yaw": 0.0, "pitch": 0.0, "occluder": "none"})
    result = check_face(dlib_faces, sample, 0)
    assert result.detected and result.frontal and result.nme_inter_ocular_pct == pytest.approx(0.0, abs=1e-6)


def test_the_measure_on_a_handful_of_synthetic_faces(dlib_faces):
    summary, checks = measure_realism(dlib_faces, 6, size=160, seed=3)
    generator = SynthFaces(size=160, seed=3)
    frontal = [is_frontal(generator.render(i).meta) for i in range(6)]
    assert [c.frontal for c in checks] == frontal and summary["n_frontal"] == sum(frontal)
    assert summary["n"] == 6 and summary["n_detected"] == sum(c.detected for c in checks)
    for c in checks:
        assert (c.nme_inter_ocular_pct is not None) == c.detected
        if c.detected:
            assert 0.0 <= c.nme_inter_ocular_pct < 100.0
    assert summary["size"] == 160 and summary["seed"] == 3 and summary["upsample"] == dlib_faces.upsample
    with pytest.raises(ConfigError, match="--n"):
        measure_realism(dlib_faces, 0)


def test_the_cli_prints_the_contract_keys(tmp_path, capsys, dlib_faces):
    out = tmp_path / "faces.json"
    assert main(["data", "realism", "--n", "3", "--size", "96", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("detection_rate_frontal", "n_frontal", "nme_vs_labels_inter_ocular_pct", "n", "detection_rate_all"):
        assert key in summary
    assert summary["n"] == 3 and len(json.loads(out.read_text())["faces"]) == 3


def test_the_cli_rejects_bad_counts(capsys):
    assert main(["data", "realism", "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err


def test_dlib_finds_nine_in_ten_near_frontal_synthetic_faces(dlib_faces):
    """The realism target of generator v2 (issue 17), kept as a regression test at 128 px (1.5 s):
    v1 was at about 50 %, v2 measured 96 % (53 of 55) on these faces."""
    summary, _ = measure_realism(dlib_faces, 200, size=128, seed=0)
    assert summary["n_frontal"] >= 40
    assert summary["detection_rate_frontal"] >= 0.9, summary
