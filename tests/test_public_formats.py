"""The public datasets' own formats: WFLW lists, COFW .mat, Face Synthetics; detection, conversion,
and every malformed input stopping with exit 2 and a message naming the file and what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from layout_fixtures import faces, resample, write_cofw, write_facesynthetics, write_image, write_wflw

from lightmark.cli.main import main
from lightmark.data.formats import (
    ChallengeSource,
    LayoutView,
    PtsSource,
    detect_format,
    open_source,
    write_challenge_annotations,
)
from lightmark.data.public_formats import (
    WFLW_ATTRIBUTES,
    CofwSource,
    FaceSyntheticsSource,
    WflwSource,
)
from lightmark.data.writers import pts_text
from lightmark.errors import DataError
from lightmark.layouts import COFW29, FACESYNTHETICS70, IBUG68, WFLW98


def _error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    return capsys.readouterr().err


def test_wflw_list_reads_points_attributes_and_resolves_image_root(tmp_path):
    path, points = write_wflw(tmp_path, n=6)
    assert detect_format(path) == "wflw"
    source = open_source(path, "auto", 64)
    assert isinstance(source, WflwSource) and source.layout is WFLW98 and len(source) == 6
    np.testing.assert_allclose(source.raw_points[2], points[2], atol=1e-3)
    sample = source[0]
    assert sample.points.shape == (98, 2) and sample.image.shape == (64, 64, 3)
    assert sample.meta["attributes"] == {"pose": True, "expression": False, "illumination": False,
                                         "make_up": False, "occlusion": True, "blur": False}
    assert set(source.attributes) == set(WFLW_ATTRIBUTES)
    np.testing.assert_array_equal(source.attributes["pose"], [True, False] * 3)
    assert source.names[0] == "images/000.png"
    # the list elsewhere: paths resolve against --image-root
    moved = tmp_path / "lists" / "list.txt"
    moved.parent.mkdir()
    moved.write_text(path.read_text())
    with pytest.raises(DataError, match=r"list\.txt: line 1: image .*000\.png is missing"):
        WflwSource(moved, 64)
    assert len(open_source(moved, "auto", 64, image_root=tmp_path)) == 6


def test_wflw_line_with_the_wrong_number_of_fields_names_file_and_line(tmp_path, capsys):
    path, _ = write_wflw(tmp_path, n=3)
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[1:])  # one coordinate short
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"list_98pt\.txt: line 2: expected 207 fields .* got 206"):
        WflwSource(path, 64)
    err = _error(capsys, ["train", "s1-d2-c16-k98", "--protocol", "smoke", "--data", str(path),
                          "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"])
    assert "list_98pt.txt: line 2: expected 207 fields" in err and "Traceback" not in err


def test_cofw_mat_reads_original_and_fallback_names(tmp_path):
    path = tmp_path / "COFW_test.mat"
    points = write_cofw(path, n=5)
    assert detect_format(path) == "cofw"
    source = open_source(path, "auto", 64)
    assert isinstance(source, CofwSource) and source.layout is COFW29 and len(source) == 5
    np.testing.assert_allclose(source.raw_points[3], points[3], atol=1e-6)  # 1-based in the file
    sample = source[1]
    assert sample.image.shape == (64, 64, 3) and sample.points.shape == (29, 2)
    assert sample.occluded is not None and np.flatnonzero(sample.occluded).tolist() == [1]
    fallback = tmp_path / "mine.mat"
    write_cofw(fallback, n=3, names=("images", "points"), grey=False)
    assert len(CofwSource(fallback, 64)) == 3


def test_cofw_mat_without_the_arrays_names_file_and_arrays(tmp_path, capsys):
    path = tmp_path / "COFW_train.mat"
    scipy.io.savemat(str(path), {"IsTr": np.zeros((2, 1), dtype=object), "bboxes": np.zeros((2, 4))})
    with pytest.raises(DataError, match=r"COFW_train\.mat: missing the image and point arrays "
                                        r"\(expected IsT and phisT; IsTr and phisTr; images and points; "
                                        r"found IsTr, bboxes\)"):
        CofwSource(path, 64)
    err = _error(capsys, ["train", "s1-d2-c16-k29", "--protocol", "smoke", "--data", str(path),
                          "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"])
    assert "COFW_train.mat: missing the image and point arrays" in err
    bad = tmp_path / "bad.mat"
    cells = np.empty((2, 1), dtype=object)
    cells[0, 0] = cells[1, 0] = np.zeros((8, 8), np.uint8)
    scipy.io.savemat(str(bad), {"IsT": cells, "phisT": np.zeros((2, 50))})
    with pytest.raises(DataError, match=r"bad\.mat: phisT must be N x 87"):
        CofwSource(bad, 64)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match=r"junk\.mat: not a readable \.mat file"):
        CofwSource(tmp_path / "junk.mat", 64)


def test_face_synthetics_reads_70_points_and_drops_the_pupils_as_ibug68(tmp_path):
    points = write_facesynthetics(tmp_path, n=4)
    assert detect_format(tmp_path) == "facesynthetics"
    source = open_source(tmp_path, "auto", 32)
    assert isinstance(source, FaceSyntheticsSource) and source.layout is FACESYNTHETICS70
    sample = source[2]
    expected = (points[2] + 0.5) * 0.5 - 0.5  # 64 -> 32 px, pixel centres
    np.testing.assert_allclose(sample.points, expected, atol=1e-3)
    as68 = open_source(tmp_path, "auto", 32, layout="ibug68")
    assert isinstance(as68, LayoutView) and as68.layout is IBUG68
    np.testing.assert_allclose(as68[2].points, expected[:68], atol=1e-3)
    with pytest.raises(DataError, match=r"facesynthetics70 \(70 points\) cannot be read as wflw98"):
        open_source(tmp_path, "auto", 32, layout="wflw98")


def test_ldmks_with_the_wrong_number_of_rows_names_the_file(tmp_path, capsys):
    write_facesynthetics(tmp_path, n=2)
    bad = tmp_path / "000001_ldmks.txt"
    bad.write_text("".join(bad.read_text().splitlines(keepends=True)[:69]))
    with pytest.raises(DataError, match=r"000001_ldmks\.txt: expected 70 rows 'x y', got 69"):
        FaceSyntheticsSource(tmp_path, 32)
    err = _error(capsys, ["train", "s1-d2-c16-k70", "--protocol", "smoke", "--data", str(tmp_path),
                          "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"])
    assert "000001_ldmks.txt: expected 70 rows 'x y', got 69" in err
    bad.write_text("1 2\n" * 69 + "1 oops\n")
    with pytest.raises(DataError, match=r"000001_ldmks\.txt: line 70: expected two numbers"):
        FaceSyntheticsSource(tmp_path, 32)


@pytest.mark.parametrize("to", ["challenge", "pts"])
def test_data_convert_writes_what_the_readers_read_back(tmp_path, capsys, to):
    path, _ = write_wflw(tmp_path / "wflw", n=4)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["data", "convert", str(path), "--to", to, "--size", "48", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 4 and summary["layout"] == "wflw98" and summary["n_points"] == 98
    source = open_source(path, "auto", 48)
    back = ChallengeSource(out) if to == "challenge" else PtsSource(out, 48, margin=0.0)
    assert back.layout is WFLW98 and len(back) == 4
    if to == "challenge":
        np.testing.assert_allclose(back[1].points, source[1].points, atol=1e-4)
        np.testing.assert_array_equal(back[1].image, source[1].image)
    else:  # .pts keeps the points (3 decimals) in the written images' pixels
        np.testing.assert_allclose(back.raw_points[1], source[1].points, atol=2e-3)


def test_data_convert_face_synthetics_as_ibug68(tmp_path, capsys):
    write_facesynthetics(tmp_path / "fs", n=2)
    out = tmp_path / "out"
    assert main(["data", "convert", str(tmp_path / "fs"), "--to", "challenge", "--layout", "ibug68",
                 "--size", "32", "--out", str(out)]) == 0
    assert ChallengeSource(out).layout is IBUG68


def test_pts_and_challenge_files_of_other_layouts_read_with_their_layout(tmp_path):
    face = faces(1)[0]
    write_image(tmp_path / "a" / "f.png", face.image)
    p29 = resample(face.points, 29)
    (tmp_path / "a" / "f.pts").write_text(pts_text(p29))
    assert PtsSource(tmp_path / "a", 64).layout is COFW29
    write_image(tmp_path / "b" / "f.png", face.image)
    write_challenge_annotations(tmp_path / "b" / "annot.pkl", ["f.png"], resample(face.points, 19)[None])
    assert ChallengeSource(tmp_path / "b").layout.name == "aflw19"
