"""`lightmark data synth` and `lightmark data preview` through the CLI entry point."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np

from lightmark.cli.main import main
from lightmark.data import synth as synth_mod
from lightmark.data.formats import open_source
from lightmark.data.synth import SynthFaces


def _synth(out, *extra):
    return main(["data", "synth", "--out", str(out), "--n", "6", "--size", "48", "--seed", "4", *extra])


def test_synth_writes_the_challenge_layout_that_loads_back(tmp_path, capsys):
    assert _synth(tmp_path / "d", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 6 and summary["skipped"] == 0
    root = tmp_path / "d"
    names, pts = pickle.loads((root / "annot.pkl").read_bytes())
    assert names == [f"{i:06d}.png" for i in range(6)]
    assert isinstance(pts, np.ndarray) and pts.dtype == np.float32 and pts.shape == (6, 68, 2)
    gen = SynthFaces(size=48, seed=4)
    for i, name in enumerate(names):
        sample = gen.render(i)
        np.testing.assert_array_equal(pts[i], sample.points)
        image = cv2.cvtColor(cv2.imread(str(root / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(image, sample.image)  # PNG is lossless
    meta = json.loads((root / "meta.json").read_text())
    assert meta["params"] == {"generator": "lightmark.synth", "size": 48, "seed": 4, "format": "png"}
    rec = meta["samples"][2]
    sample = gen.render(2)
    assert rec["name"] == names[2] and rec["yaw"] == sample.meta["yaw"]
    assert rec["occluded_points"] == np.flatnonzero(sample.occluded).tolist()
    assert rec["expression"] == sample.meta["expression"]
    assert not (root / ".synth-partial").exists()


def test_synth_loads_back_through_the_challenge_reader(tmp_path):
    assert _synth(tmp_path / "d") == 0
    source = open_source(tmp_path / "d", "auto", 48)
    gen = SynthFaces(size=48, seed=4)
    assert len(source) == 6
    for i in range(6):
        got, want = source[i], gen.render(i)
        np.testing.assert_array_equal(got.points, want.points)
        np.testing.assert_array_equal(got.image, want.image)


def test_two_runs_with_one_seed_give_identical_bytes(tmp_path):
    assert _synth(tmp_path / "a") == 0 and _synth(tmp_path / "b") == 0
    for name in ["annot.pkl", "meta.json", "000000.png", "000005.png"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert main(["data", "synth", "--out", str(tmp_path / "c"), "--n", "6", "--size", "48", "--seed", "5"]) == 0
    assert (tmp_path / "a" / "annot.pkl").read_bytes() != (tmp_path / "c" / "annot.pkl").read_bytes()


def test_rerun_skips_finished_images_and_redoes_missing_ones(tmp_path, capsys):
    root = tmp_path / "d"
    assert _synth(root) == 0
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    capsys.readouterr()
    (root / "000003.png").unlink()
    assert _synth(root, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 1 and summary["skipped"] == 5
    after = {p.name: p.read_bytes() for p in root.iterdir()}
    assert after == before


def test_interrupted_run_resumes_from_its_partial_records(tmp_path, capsys, monkeypatch):
    """An interruption after 3 images: the re-run renders only the rest, with the same result."""
    calls = {"n": 0}
    real = synth_mod.SynthFaces.render

    def flaky(self, index):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(synth_mod.SynthFaces, "render", flaky)
    assert _synth(tmp_path / "d") == 130
    assert not (tmp_path / "d" / "annot.pkl").exists()
    assert sorted(p.name for p in (tmp_path / "d").glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
    assert not list((tmp_path / "d").glob(".*.tmp"))  # no half-written files
    monkeypatch.setattr(synth_mod.SynthFaces, "render", real)
    capsys.readouterr()
    assert _synth(tmp_path / "d", "--json") == 0
    assert json.loads(capsys.readouterr().out)["written"] == 3
    assert _synth(tmp_path / "ref") == 0
    assert (tmp_path / "d" / "annot.pkl").read_bytes() == (tmp_path / "ref" / "annot.pkl").read_bytes()


def test_jpg_format(tmp_path):
    assert _synth(tmp_path / "d", "--format", "jpg") == 0
    names, _ = pickle.loads((tmp_path / "d" / "annot.pkl").read_bytes())
    assert names[0] == "000000.jpg" and cv2.imread(str(tmp_path / "d" / names[0])).shape == (48, 48, 3)


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--n", "0"]) == 2
    assert "--n" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "file"), "--n", "2"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["data", "preview", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "p.png")]) == 2
    assert "nope" in capsys.readouterr().err


def test_preview_of_synthetic_faces(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["data", "preview", "--n", "6", "--size", "64", "--cols", "3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 66 + 2, 3 * 66 + 2, 3)
    assert summary["n"] == 6 and summary["width_px"] == sheet.shape[1]
    # The tiles are the generator's faces (plus dots): most pixels agree with the plain render.
    face = SynthFaces(size=64, seed=0).render(0).image
    tile = cv2.cvtColor(sheet[2:66, 2:66], cv2.COLOR_BGR2RGB)
    assert (np.abs(tile.astype(int) - face).max(-1) == 0).mean() > 0.7


def test_preview_of_a_challenge_folder(tmp_path):
    assert _synth(tmp_path / "d") == 0
    out = tmp_path / "sheet.png"
    assert main(["data", "preview", "--data", str(tmp_path / "d"), "--n", "4", "--size", "48",
                 "--out", str(out)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 50 + 2, 2 * 50 + 2, 3)
