"""Real dataset formats: challenge annot.pkl, iBUG .pts, image folders; every bad input names its file."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from lightmark.cli.main import main
from lightmark.data.formats import (
    ChallengeSource,
    ImageFolderSource,
    PtsSource,
    detect_format,
    open_source,
    parse_pts,
    write_challenge_annotations,
)
from lightmark.errors import DataError

N = 68


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _points(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, (N, 2)).astype(np.float32)


@pytest.fixture
def challenge(tmp_path: Path) -> tuple[Path, list[str], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    names = [f"img_{i}.png" for i in range(4)]
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in names]
    points = np.stack([_points(rng, 5, 58) for _ in names])
    for name, image in zip(names, images):
        _write_image(tmp_path / name, image)
    write_challenge_annotations(tmp_path / "annot.pkl", names, points)
    return tmp_path, names, points, images


# -- challenge layout -------------------------------------------------------------------------------
def test_challenge_round_trip_is_identical(challenge):
    root, names, points, images = challenge
    source = ChallengeSource(root)
    assert len(source) == 4 and source.names == names and source.n_dropped == 0
    for i in range(4):
        sample = source[i]
        assert sample.name == names[i]
        np.testing.assert_array_equal(sample.points, points[i])  # float32 in, float32 out, bit-exact
        np.testing.assert_array_equal(sample.image, images[i])  # PNG is lossless; RGB order kept
    assert source.validate() == {"n": 4, "n_dropped": 0, "n_outside": 0}
    assert detect_format(root) == "challenge"
    via_open = open_source(root / "annot.pkl", input_size=64)
    np.testing.assert_array_equal(via_open[2].points, points[2])


def test_challenge_resizes_to_the_input_size_with_pixel_centres(challenge):
    root, _, points, _ = challenge
    sample = ChallengeSource(root, input_size=32)[1]
    assert sample.image.shape == (32, 32, 3)
    np.testing.assert_allclose(sample.points, (points[1] + 0.5) / 2 - 0.5, atol=1e-5)


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"names": [], "points": []}, "expected a tuple"),
        ((["a.png"], np.zeros((1, N, 2)), "extra"), "of length 3"),
        (("a.png", np.zeros((1, N, 2))), "names must be a list"),
        (([3], np.zeros((1, N, 2))), "index 0: file name"),
        ((["a.png"], np.zeros((1, 67, 2))), "shape (N, 68, 2)"),
        ((["a.png"], np.zeros((N, 2))), "shape (N, 68, 2)"),
        ((["a.png", "b.png"], np.zeros((1, N, 2))), "2 names but 1 point sets"),
        ((["a.png"], [["x"] * 2] * N), "not a float array"),
    ],
)
def test_malformed_pickles_name_the_file(tmp_path, payload, message):
    _dump(tmp_path / "annot.pkl", payload)
    with pytest.raises(DataError) as info:
        ChallengeSource(tmp_path)
    assert str(tmp_path / "annot.pkl") in str(info.value) and message in str(info.value)


def test_non_finite_points_name_the_index(tmp_path):
    points = np.zeros((5, N, 2), np.float32)
    points[3, 10, 1] = np.nan
    points[4, 0, 0] = np.inf
    _dump(tmp_path / "annot.pkl", ([f"{i}.png" for i in range(5)], points))
    with pytest.raises(DataError, match=r"index 3 \(3\.png\): NaN or infinite.*2 samples"):
        ChallengeSource(tmp_path)


def test_missing_pickle_and_garbage_pickle(tmp_path):
    with pytest.raises(DataError, match="annotation file is missing"):
        ChallengeSource(tmp_path)
    (tmp_path / "annot.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"annot\.pkl: not a readable pickle"):
        ChallengeSource(tmp_path)


def test_missing_and_unreadable_images_raise_lazily_naming_the_file(challenge):
    root, names, _, _ = challenge
    (root / names[1]).unlink()
    (root / names[2]).write_bytes(b"\x89PNG garbage")
    source = ChallengeSource(root)  # annotations are fine: opening succeeds
    assert source[0].image.shape == (64, 64, 3)
    with pytest.raises(DataError, match=rf"{names[1]}: image file is missing"):
        source[1]
    with pytest.raises(DataError, match=rf"{names[2]}: cannot decode image"):
        source[2]
    with pytest.raises(DataError, match=names[1]):
        source.validate()


def test_outside_points_keep_or_drop_with_a_count(challenge, caplog):
    root, names, points, _ = challenge
    points = points.copy()
    points[1, 5] = [70.0, 10.0]  # beyond the 64 px image
    points[3, 0] = [-3.0, 10.0]
    write_challenge_annotations(root / "annot.pkl", names, points)
    kept = ChallengeSource(root, outside="keep")
    assert len(kept) == 4 and kept.n_dropped == 0
    assert kept.validate()["n_outside"] == 2
    with caplog.at_level(logging.WARNING, logger="lightmark.data.formats"):
        dropped = ChallengeSource(root, outside="drop")
    assert dropped.n_dropped == 2 and dropped.names == [names[0], names[2]]
    np.testing.assert_array_equal(dropped[1].points, points[2])
    assert "dropped 2 of 4" in caplog.text
    with pytest.raises(DataError, match="outside must be one of"):
        ChallengeSource(root, outside="clip")


# -- .pts -------------------------------------------------------------------------------------------
def _pts_text(points_1based: np.ndarray, n_header: int | None = None) -> str:
    n = len(points_1based) if n_header is None else n_header
    rows = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points_1based)
    return f"version: 1\nn_points:  {n}\n{{\n{rows}\n}}\n"


def test_pts_parsing_shifts_one_based_coordinates(tmp_path):
    one_based = np.arange(N * 2, dtype=np.float64).reshape(N, 2) + 1.0
    one_based[0] = [1.0, 1.0]  # the first pixel's centre in iBUG files
    path = tmp_path / "a.pts"
    path.write_text(_pts_text(one_based))
    parsed = parse_pts(path)
    assert parsed.dtype == np.float32 and parsed.shape == (N, 2)
    np.testing.assert_allclose(parsed[0], [0.0, 0.0])
    np.testing.assert_allclose(parsed, one_based - 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (lambda p: _pts_text(p[:67]), "expected 68 points, header says 67, file has 67"),
        (lambda p: _pts_text(p[:67], n_header=68), "header says 68, file has 67"),
        (lambda p: _pts_text(p).replace("{", ""), "no '{' ... '}' block"),
        (lambda p: _pts_text(p).replace("n_points:  68", "points 68"), "no n_points header"),
        (lambda p: _pts_text(p).replace("n_points:  68", "n_points: many"), "malformed n_points"),
        (lambda p: _pts_text(p).replace("1.000 1.000", "1.0 abc"), "malformed coordinate line"),
        (lambda p: _pts_text(p).replace("1.000 1.000", "1.0 2.0 3.0"), "two numbers"),
        (lambda p: _pts_text(p).replace("1.000 1.000", "nan 1.0"), "NaN or infinite"),
    ],
)
def test_malformed_pts_files_name_the_file(tmp_path, text, message):
    points = np.ones((N, 2))
    path = tmp_path / "face.pts"
    path.write_text(text(points))
    with pytest.raises(DataError) as info:
        parse_pts(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_pts_source_crops_around_the_face_and_keeps_points_on_the_pixels(tmp_path):
    rng = np.random.default_rng(1)
    h, w = 200, 300
    points = np.c_[rng.uniform(120, 200, N), rng.uniform(60, 120, N)].astype(np.float32)
    image = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for channel, k in enumerate((0, 30, 60)):  # three Gaussian blobs at known points
        x, y = points[k]
        image[..., channel] = (255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2))).astype(np.uint8)
    _write_image(tmp_path / "sub" / "face.png", image)
    (tmp_path / "sub" / "face.pts").write_text(_pts_text(points + 1.0))
    source = PtsSource(tmp_path, input_size=64, margin=0.25)
    assert source.names == ["sub/face.png"] and detect_format(tmp_path) == "pts"
    sample = source[0]
    assert sample.image.shape == (64, 64, 3)
    lo, hi = sample.points.min(0), sample.points.max(0)
    np.testing.assert_allclose((lo + hi) / 2, [31.5, 31.5], atol=1e-3)  # box centred
    np.testing.assert_allclose((hi - lo).max(), 64 / 1.5, atol=1e-3)  # longer side / (1 + 2 * margin)
    for channel, k in enumerate((0, 30, 60)):
        weights = sample.image[..., channel].astype(float)
        weights[weights < 40] = 0
        gy, gx = np.mgrid[0:64, 0:64]
        found = np.array([(weights * gx).sum(), (weights * gy).sum()]) / weights.sum()
        np.testing.assert_allclose(found, sample.points[k], atol=0.35)


def test_pts_source_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no .pts files"):
        PtsSource(tmp_path, 64)
    (tmp_path / "lonely.pts").write_text(_pts_text(np.ones((N, 2)) * 5))
    with pytest.raises(DataError, match=r"lonely\.pts: no image beside it"):
        PtsSource(tmp_path, 64)
    (tmp_path / "lonely.png").write_bytes(b"garbage")
    source = PtsSource(tmp_path, 64)
    with pytest.raises(DataError, match=r"lonely\.png: cannot decode image"):
        source[0]


def test_pts_outside_policy(tmp_path):
    for name, shift in (("in", 10.0), ("out", 60.0)):
        _write_image(tmp_path / f"{name}.png", np.zeros((50, 50, 3), np.uint8))
        pts = np.c_[np.linspace(0, 20, N), np.linspace(0, 20, N)] + shift
        (tmp_path / f"{name}.pts").write_text(_pts_text(pts + 1.0))
    assert len(PtsSource(tmp_path, 32)) == 2
    dropped = PtsSource(tmp_path, 32, outside="drop")
    assert dropped.names == ["in.png"] and dropped.n_dropped == 1


def test_large_images_are_shrunk_with_area_averaging(tmp_path):
    # A 1-px checkerboard averages to grey when shrunk properly; plain bilinear warping would alias.
    board = ((np.indices((800, 800)).sum(0) % 2) * 255).astype(np.uint8)
    _write_image(tmp_path / "big.png", np.repeat(board[..., None], 3, axis=2))
    pts = np.c_[np.linspace(100, 700, N), np.linspace(100, 700, N)]
    (tmp_path / "big.pts").write_text(_pts_text(pts + 1.0))
    sample = PtsSource(tmp_path, 32, margin=0.0)[0]  # box edges = outermost point centres
    centre = sample.image[8:24, 8:24].astype(float)
    assert abs(centre.mean() - 127.5) < 10 and centre.std() < 20
    np.testing.assert_allclose(sample.points[[0, -1]], [[-0.5, -0.5], [31.5, 31.5]], atol=0.05)


# -- image folders and detection ----------------------------------------------------------------------
def test_image_folder_source_resizes_and_remembers_the_size(tmp_path):
    _write_image(tmp_path / "b" / "x.jpg", np.full((40, 80, 3), 90, np.uint8))
    _write_image(tmp_path / "a.png", np.full((20, 20, 3), 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path, input_size=16)
    assert isinstance(source, ImageFolderSource) and source.names == ["a.png", "b/x.jpg"]
    sample = source[1]
    assert sample.image.shape == (16, 16, 3) and sample.meta["original_size"] == (80, 40)
    assert np.isnan(sample.points).all()
    single = ImageFolderSource([tmp_path / "a.png"], 16)
    assert len(single) == 1
    with pytest.raises(DataError, match=r"missing\.png: image file is missing"):
        ImageFolderSource([tmp_path / "missing.png"], 16)


def test_open_source_rejects_what_it_cannot_read(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        open_source(tmp_path / "nope", input_size=32)
    with pytest.raises(DataError, match="no annot.pkl, .pts files or images"):
        open_source(tmp_path, input_size=32)
    with pytest.raises(DataError, match="unknown data format"):
        open_source(tmp_path, "csv", input_size=32)


def test_data_synth_output_loads_back_identically(tmp_path):
    """The challenge folder written by `lightmark data synth` reads back bit-exactly."""
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--n", "3", "--size", "64", "--seed", "7"]) == 0
    with open(out / "annot.pkl", "rb") as handle:
        names, points = pickle.load(handle)
    source = open_source(out, input_size=64)
    assert isinstance(source, ChallengeSource) and source.names == list(names)
    for i in range(3):
        sample = source[i]
        assert sample.image.shape == (64, 64, 3)
        np.testing.assert_array_equal(sample.points, np.asarray(points[i], dtype=np.float32))
