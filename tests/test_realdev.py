"""The real-photo dev set (`lightmark data realdev`): the source table, dlib's wrapper, the writer and the CLI.

The writer's real path needs the [real] extra (dlib-bin, face-recognition-models, scikit-image), which
`make setup` installs, so CI runs it; without the extra those tests skip and say so.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from lightmark.cli.main import main
from lightmark.data import dlib68
from lightmark.data.formats import open_source
from lightmark.data.realdev import LABELS_NOTE, PHOTOS, RealPhoto, build_dev_set, locate, sources_markdown
from lightmark.errors import ConfigError
from lightmark.metrics import nme

DOCS = Path(__file__).resolve().parents[1] / "docs" / "data.md"
ASTRONAUT = next(p for p in PHOTOS if p.path.endswith("astronaut.png"))
NOT_INSTALLED = RealPhoto("no-such-package-lightmark", "x/face.png", "none", "https://example.invalid", "nothing")


needs_dlib = pytest.mark.skipif(not dlib68.real_extra_installed(),
                                reason=f"the [real] extra is not installed; {dlib68.INSTALL_HINT}")


def test_every_source_names_its_licence_and_the_docs_list_them_all():
    keys = [p.key for p in PHOTOS]
    assert len(set(keys)) == len(keys)
    for photo in PHOTOS:
        assert photo.licence and photo.shows and photo.licence_url.startswith("https://"), photo
    assert sources_markdown() in DOCS.read_text(), "docs/data.md's table of sources differs from PHOTOS"


def test_a_package_that_is_not_installed_is_not_located():
    assert locate(NOT_INSTALLED) is None


def test_without_dlib_both_commands_exit_2_with_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    for argv in (["data", "realdev", "--out", str(tmp_path / "d")], ["data", "realism", "--n", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install 'lightmark[real]'" in err, err
    assert not (tmp_path / "d").exists()


def test_without_the_model_package_the_error_names_it(monkeypatch):
    monkeypatch.setattr(dlib68.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="face-recognition-models.*lightmark\\[real\\]"):
        dlib68.predictor_path()


def test_bad_sizes_exit_2(tmp_path, capsys):
    assert main(["data", "realdev", "--out", str(tmp_path / "d"), "--size", "30"]) == 2
    assert "--size" in capsys.readouterr().err


@needs_dlib
def test_the_writer_labels_crops_and_records_a_real_face(tmp_path, dlib_faces):
    if locate(ASTRONAUT) is None:
        pytest.skip("scikit-image (part of the [real] extra) is not installed")
    out = tmp_path / "dev"
    summary = build_dev_set(out, dlib_faces, 128, photos=[ASTRONAUT, NOT_INSTALLED])
    assert summary["n"] == 1 and summary["faces_per_source"] == {ASTRONAUT.key: 1}
    assert summary["missing"] == [{"package": NOT_INSTALLED.dist, "file": NOT_INSTALLED.path}]
    names, points = pickle.loads((out / "annot.pkl").read_bytes())
    assert names == [f"{ASTRONAUT.key}-0.png"] and points.shape == (1, 68, 2) and points.dtype == np.float32
    # The crop convention of every uncropped-photo reader: a square 1.5 times the points' longer side.
    lo, hi = points[0].min(axis=0), points[0].max(axis=0)
    assert (hi - lo).max() == pytest.approx(128 / 1.5, abs=1.0)
    np.testing.assert_allclose((lo + hi) / 2 + 0.5, [64, 64], atol=1.0)
    # Eyes above the mouth, right eye (36) on the image's left: the 68 points are in iBUG order.
    assert points[0, 36, 0] < points[0, 45, 0] and points[0, 36:48, 1].mean() < points[0, 48:68, 1].mean()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["labels"] == LABELS_NOTE and meta["missing"] == summary["missing"]
    record = meta["samples"][0]
    assert record["package"] == "scikit-image" and record["file"] == ASTRONAUT.path
    assert record["licence"] == ASTRONAUT.licence and record["licence_url"] == ASTRONAUT.licence_url
    left, top, right, bottom = record["detection_box"]
    raw = np.asarray(record["points_in_photo"])
    assert left < raw[36, 0] < raw[45, 0] < right and top < raw[27, 1] < bottom  # points inside the box
    # The crop matrix maps the photo's points onto the written ones.
    matrix = np.asarray(record["crop_matrix"])
    np.testing.assert_allclose(raw @ matrix[:, :2].T + matrix[:, 2], points[0], atol=0.05)
    # Every reader opens it, and dlib run again on the written crop lands on the stored labels.
    sample = open_source(out, "auto", 128)[0]
    assert sample.image.shape == (128, 128, 3)
    found = dlib_faces.detect(sample.image)
    assert found, "dlib finds no face in its own crop"
    again = dlib_faces.points(sample.image, found[0].box)
    assert float(nme(again[None], points, "inter_ocular")[0]) < 5.0


@needs_dlib
def test_the_cli_writes_the_dev_set_of_the_installed_packages(tmp_path, capsys):
    assert main(["data", "realdev", "--out", str(tmp_path / "dev"), "--size", "64", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    names, points = pickle.loads((tmp_path / "dev" / "annot.pkl").read_bytes())
    assert len(names) == summary["n"] == sum(summary["faces_per_source"].values()) >= 1
    assert points.shape == (len(names), 68, 2)
    assert all((tmp_path / "dev" / name).is_file() for name in names)
    installed = {p.key for p in PHOTOS if locate(p) is not None}
    assert set(summary["faces_per_source"]) == installed
    assert len(summary["missing"]) == len(PHOTOS) - len(installed)
