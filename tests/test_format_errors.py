"""The readers' error branches: every malformed WFLW list, COFW .mat, .pts folder of mixed point counts
and Face Synthetics folder raises a DataError naming the file (and the line, row or index where the
reader knows it), and the CLI prints it as one line with exit 2. Bad files are written in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from layout_fixtures import faces, resample, wflw_line, write_facesynthetics, write_image, write_wflw

from lightmark.cli.main import main
from lightmark.data.formats import PtsSource, open_source
from lightmark.data.public_formats import CofwSource, FaceSyntheticsSource, WflwSource
from lightmark.data.writers import pts_text
from lightmark.errors import DataError
from lightmark.layouts import COFW29, IBUG68, WFLW98


def _raises(make, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        make()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _cli_error(capsys, path, *fragments: str, image_root=None) -> None:
    """`lightmark data preview --data PATH`: exit 2, one line naming the file, no traceback."""
    capsys.readouterr()
    out = path.parent / f"{path.name}-preview.png"
    argv = ["data", "preview", "--data", str(path), "--out", str(out)]
    if image_root is not None:
        argv += ["--image-root", str(image_root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.exists()


# -- WFLW lists ------------------------------------------------------------------------------------------
def _wflw_with_line(tmp_path, number: int, edit) -> str:
    """A 3-line WFLW list whose line `number` (1-based) is edited: edit(fields) -> fields."""
    path, _ = write_wflw(tmp_path, n=3)
    lines = path.read_text().splitlines()
    lines[number - 1] = " ".join(edit(lines[number - 1].split()))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit, fragment", [
    (lambda f: ["abc", *f[1:]], "not a number"),  # a coordinate
    (lambda f: [*f[:196], "x", *f[197:]], "not a number"),  # the box
    (lambda f: [*f[:200], "1.5", *f[201:]], "not a number"),  # a flag that is no integer
    (lambda f: ["nan", *f[1:]], "NaN or infinite coordinates"),
    (lambda f: [*f[:199], "inf", *f[200:]], "NaN or infinite coordinates"),  # the box counts too
    (lambda f: [*f[:200], "2", *f[201:]], "attribute flags must be 0 or 1, got [2, 0, 0, 0, 0, 0]"),
])
def test_a_bad_wflw_line_names_the_list_and_the_line(tmp_path, capsys, edit, fragment):
    path = _wflw_with_line(tmp_path, 2, edit)
    _raises(lambda: WflwSource(path, 64), f"{path}: line 2: ", fragment)
    _cli_error(capsys, path, "list_98pt.txt: line 2: ", fragment)


def test_the_first_bad_wflw_line_is_reported_with_blank_lines_counted(tmp_path):
    path, points = write_wflw(tmp_path, n=2)
    good = path.read_text().splitlines()
    bad = wflw_line(points[0], "images/000.png", flags=(0, 0, 0, 0, 0, 3))
    path.write_text("\n".join([good[0], "", bad, good[1], bad]) + "\n")
    _raises(lambda: WflwSource(path, 64), f"{path}: line 3: attribute flags must be 0 or 1")


def test_an_empty_unreadable_or_missing_wflw_list_names_the_file(tmp_path):
    empty = tmp_path / "list_98pt_empty.txt"
    empty.write_text("\n  \n\n")
    _raises(lambda: WflwSource(empty, 64), f"{empty}: the WFLW list has no lines")
    binary = tmp_path / "list_98pt_binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    _raises(lambda: WflwSource(binary, 64), f"{binary}: cannot read the WFLW list")
    missing = tmp_path / "list_98pt_missing.txt"
    _raises(lambda: WflwSource(missing, 64), f"{missing}: cannot read the WFLW list")


def test_a_wflw_image_missing_names_the_line_and_the_image_root(tmp_path, capsys):
    path, _ = write_wflw(tmp_path, n=3)
    (tmp_path / "images" / "002.png").unlink()
    _raises(lambda: WflwSource(path, 64), f"{path}: line 3: image ", "002.png is missing",
            f"--image-root {tmp_path}")
    _cli_error(capsys, path, "line 3: image", "002.png is missing")


# -- COFW .mat files -------------------------------------------------------------------------------------
def _cells(*images: np.ndarray) -> np.ndarray:
    cells = np.empty((len(images), 1), dtype=object)
    for i, image in enumerate(images):
        cells[i, 0] = image
    return cells


def _phis(n: int, k: int = COFW29.n_points, flags: bool = True) -> np.ndarray:
    rng = np.random.default_rng(0)
    xy = rng.uniform(10, 50, (n, 2 * k))
    return np.concatenate([xy, np.zeros((n, k))], axis=1) if flags else xy


def test_cofw_counts_that_disagree_name_both_arrays(tmp_path, capsys):
    path = tmp_path / "COFW_test.mat"
    grey = np.zeros((64, 64), np.uint8)
    scipy.io.savemat(str(path), {"IsT": _cells(grey, grey, grey), "phisT": _phis(2)})
    _raises(lambda: CofwSource(path, 64), f"{path}: 3 images in IsT but 2 rows in phisT")
    _cli_error(capsys, path, "COFW_test.mat: 3 images in IsT but 2 rows in phisT")


def test_cofw_non_finite_points_name_the_row(tmp_path):
    path = tmp_path / "COFW_train.mat"
    phis = _phis(3)
    phis[2, 5] = np.nan
    grey = np.zeros((64, 64), np.uint8)
    scipy.io.savemat(str(path), {"IsTr": _cells(grey, grey, grey), "phisTr": phis})
    _raises(lambda: CofwSource(path, 64), f"{path}: phisTr row 2: NaN or infinite coordinates")


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 2), np.uint8)],
                         ids=["four channels", "two channels"])
def test_cofw_image_of_the_wrong_shape_names_the_index(tmp_path, bad):
    path = tmp_path / "mine.mat"
    ok = np.zeros((64, 64, 3), np.uint8)
    scipy.io.savemat(str(path), {"images": _cells(ok, bad, ok), "points": _phis(3, flags=False)})
    _raises(lambda: CofwSource(path, 64), f"{path}: images index 1: expected an H x W (grey) or H x W x 3 image",
            f"got shape {bad.shape}")


def test_cofw_points_without_flags_are_read_and_other_widths_refused(tmp_path):
    path = tmp_path / "mine.mat"
    ok = np.zeros((64, 64), np.uint8)
    scipy.io.savemat(str(path), {"images": _cells(ok, ok), "points": _phis(2, flags=False)})
    source = CofwSource(path, 64)
    assert len(source) == 2 and source.occluded is None  # 2 x 29 columns: no occlusion flags
    scipy.io.savemat(str(path), {"images": _cells(ok, ok), "points": _phis(2, k=28)})
    _raises(lambda: CofwSource(path, 64), f"{path}: points must be N x 87", "got shape (2, 84)")


def test_cofw_missing_and_matlab_v73_files_name_the_file(tmp_path, capsys):
    missing = tmp_path / "COFW_missing.mat"
    _raises(lambda: CofwSource(missing, 64), f"{missing}: COFW .mat file is missing")
    v73 = tmp_path / "COFW_v73.mat"  # MATLAB's v7.3 header (HDF5 inside): version 0x0200
    v73.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
                    + b"\0" * 384)
    _raises(lambda: CofwSource(v73, 64), f"{v73}: a MATLAB v7.3 (HDF5) file", "save(..., '-v7')")
    _cli_error(capsys, v73, "COFW_v73.mat: a MATLAB v7.3 (HDF5) file")


# -- .pts folders ----------------------------------------------------------------------------------------
def _pts_folder(root, counts: dict[str, int]) -> None:
    """One image + .pts per name, with that many points (1-based coordinates inside the image)."""
    face = faces(1, 64)[0]
    for name, k in counts.items():
        write_image(root / f"{name}.png", face.image)
        (root / f"{name}.pts").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.pts").write_text(pts_text(resample(face.points, k)))


@pytest.mark.parametrize("other", [WFLW98, COFW29], ids=["wflw98", "cofw29"])
def test_a_pts_folder_of_mixed_point_counts_names_both_files(tmp_path, capsys, other):
    _pts_folder(tmp_path, {"a": IBUG68.n_points, "b": IBUG68.n_points, "c": other.n_points})
    first, odd = tmp_path / "a.pts", tmp_path / "c.pts"
    _raises(lambda: PtsSource(tmp_path, 64), f"{odd}: {other.n_points} points, but {first} has 68")
    _raises(lambda: open_source(tmp_path, "auto", 64), f"{odd}: {other.n_points} points")
    _cli_error(capsys, tmp_path, f"c.pts: {other.n_points} points, but ")


def test_mixed_point_counts_are_found_in_sub_folders_too(tmp_path):
    _pts_folder(tmp_path, {"set1/face": COFW29.n_points, "set2/face": IBUG68.n_points})
    _raises(lambda: PtsSource(tmp_path, 64),
            f"{tmp_path / 'set2' / 'face.pts'}: 68 points, but {tmp_path / 'set1' / 'face.pts'} has 29")


# -- Face Synthetics (more of the same kind) ---------------------------------------------------------------
def test_face_synthetics_errors_name_the_file(tmp_path):
    write_facesynthetics(tmp_path, n=2)
    (tmp_path / "000001.png").unlink()
    _raises(lambda: FaceSyntheticsSource(tmp_path, 64), f"{tmp_path / '000001_ldmks.txt'}: no image 000001.png")
    write_facesynthetics(tmp_path, n=2)
    ldmks = tmp_path / "000000_ldmks.txt"
    ldmks.write_text(ldmks.read_text().replace(ldmks.read_text().split()[0], "inf", 1))
    _raises(lambda: FaceSyntheticsSource(tmp_path, 64), f"{ldmks}: NaN or infinite coordinates")
    (tmp_path / "empty").mkdir()
    _raises(lambda: FaceSyntheticsSource(tmp_path / "empty", 64), "empty: no *_ldmks.txt files found")
