"""`lightmark data harden`: each hardening moves the points exactly with the pixels (or keeps them where
only the pixels change), the output is a readable challenge-layout set, the same input gives the same
bytes, and bad input is said with the flag."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from lightmark.cli.main import main
from lightmark.data.formats import ChallengeSource
from lightmark.data.harden import HARDENINGS, dark_glasses, grey_dim, hand_over_eye, low_res, roll
from lightmark.layouts import get_layout
from lightmark.models.hourglass import build_model
from lightmark.models.spec import ModelSpec
from lightmark.training.checkpoint import make_state, save_checkpoint
from lightmark.training.protocol import get_protocol

LAYOUT = get_layout("ibug68")


def _face(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A face-like set of 68 points in a textured image (a real crop's scale: eyes 40 px apart)."""
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (size, size, 3), dtype=np.uint8)
    points = np.zeros((68, 2), np.float32)
    points[:] = (size / 2, size * 0.7)
    for eye, x in zip(LAYOUT.eye_centres, (size / 2 - 20, size / 2 + 20)):
        angles = np.linspace(0, 2 * np.pi, len(eye), endpoint=False)
        points[list(eye)] = np.stack([x + 6 * np.cos(angles), size * 0.4 + 3 * np.sin(angles)], axis=1)
    return image, points


def test_roll_moves_a_landmark_with_its_pixel():
    image, points = _face()
    image[:] = 0
    x, y = (int(v) for v in points[36])
    image[y - 1:y + 2, x - 1:x + 2] = 255  # a bright dot where point 36 is
    out, moved = roll(image, points, LAYOUT)
    yy, xx = np.unravel_index(out[:, :, 0].argmax(), out.shape[:2])
    assert abs(xx - moved[36, 0]) <= 1.0 and abs(yy - moved[36, 1]) <= 1.0
    centre = np.array([(image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2])
    assert np.allclose(np.linalg.norm(moved - centre, axis=1), np.linalg.norm(points - centre, axis=1), atol=1e-3)
    assert not np.allclose(moved, points)


def test_dark_glasses_cover_the_eyes_and_nothing_far_from_them():
    image, points = _face()
    out, same = dark_glasses(image, points, LAYOUT)
    assert np.array_equal(same, points)
    for eye in LAYOUT.eye_centres:
        x, y = (int(round(v)) for v in points[list(eye)].mean(axis=0))
        assert out[y, x].max() < 30  # the lens is dark
    assert np.array_equal(out[-20:], image[-20:])  # the chin and below untouched


def test_a_hand_hides_one_eye_in_the_skins_colour_and_leaves_the_other():
    image, points = _face()
    points[:17] = np.stack([np.linspace(24, 104, 17), 60 + 40 * np.sin(np.linspace(0, np.pi, 17))], axis=1)
    face = image.copy()
    out, same = hand_over_eye(face, points, LAYOUT)
    assert np.array_equal(same, points) and np.array_equal(face, image)  # the input is not written to
    right, left = ([int(round(v)) for v in points[list(eye)].mean(axis=0)] for eye in LAYOUT.eye_centres)
    patch = out[right[1] - 3:right[1] + 4, right[0] - 3:right[0] + 4].astype(float)
    assert patch.std(axis=(0, 1)).max() < 3  # flat: the eye's texture is gone
    assert np.array_equal(out[left[1] - 2:left[1] + 3, left[0] - 2:left[0] + 3],
                          image[left[1] - 2:left[1] + 3, left[0] - 2:left[0] + 3])


def test_grey_dim_and_low_res_keep_the_points_and_change_what_they_say():
    image, points = _face()
    grey, same = grey_dim(image, points, LAYOUT)
    assert np.array_equal(same, points) and grey.shape == image.shape
    assert np.array_equal(grey[..., 0], grey[..., 1]) and grey.mean() < image.mean() * 0.8
    assert grey[:, :10].mean() > grey[:, -10:].mean()  # the light falls off to one side
    small, same = low_res(image, points, LAYOUT)
    assert np.array_equal(same, points) and small.shape == image.shape
    detail = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()  # noqa: E731
    assert detail(small) < detail(image) / 3


def _digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_the_cli_writes_every_face_under_every_hardening_deterministically(tmp_path, capsys):
    src = tmp_path / "faces"
    assert main(["data", "synth", "--out", str(src), "--n", "3", "--size", "96", "--seed", "3"]) == 0
    capsys.readouterr()
    out = tmp_path / "hard"
    assert main(["data", "harden", "--data", str(src), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["faces"] == 3 and summary["n"] == 3 * len(HARDENINGS)
    hard = ChallengeSource(out)
    original = ChallengeSource(src)
    assert len(hard) == 3 * len(HARDENINGS) and hard.validate()["n"] == len(hard)
    by_name = dict(zip(hard.names, hard.raw_points))
    first = original.names[0].rsplit(".", 1)[0]
    assert np.array_equal(by_name[f"{first}-dark-glasses.png"], original.raw_points[0])
    assert not np.allclose(by_name[f"{first}-roll40.png"], original.raw_points[0])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["hardenings"] == list(HARDENINGS) and meta["samples"][0]["source"] == original.names[0]
    again = tmp_path / "again"
    assert main(["data", "harden", "--data", str(src), "--out", str(again), "--hardening", "low-res"]) == 0
    assert len(ChallengeSource(again)) == 3
    assert main(["data", "harden", "--data", str(src), "--out", str(again)]) == 0
    assert _digest(again) == _digest(out)  # the same set gives the same bytes


@pytest.mark.parametrize("case, needle", [
    ("no-annot", "no annot.pkl there"),
    ("same", "the same folder as --data"),
])
def test_bad_input_is_said_with_the_flag(tmp_path, capsys, case, needle):
    src = tmp_path / "faces"
    src.mkdir()
    if case == "same":
        assert main(["data", "synth", "--out", str(src), "--n", "1", "--size", "64"]) == 0
    out = src if case == "same" else tmp_path / "out"
    capsys.readouterr()
    assert main(["data", "harden", "--data", str(src), "--out", str(out)]) == 2
    assert needle in capsys.readouterr().err


def test_evaluate_reports_each_hardening_and_the_worst_faces(tmp_path, capsys):
    src, hard = tmp_path / "faces", tmp_path / "hard"
    assert main(["data", "synth", "--out", str(src), "--n", "2", "--size", "96", "--seed", "3"]) == 0
    assert main(["data", "harden", "--data", str(src), "--out", str(hard)]) == 0
    spec, protocol = ModelSpec.parse("s1-d2-c16"), get_protocol("smoke")
    torch.manual_seed(0)
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, make_state(model=build_model(spec), optimizer=None, scheduler=None, scaler=None, epoch=1,
                                     global_step=1, history=[], spec=spec.to_dict(), protocol=protocol.to_dict()))
    capsys.readouterr()
    assert main(["evaluate", str(ckpt), "--data", str(hard), "--out", str(tmp_path / "eval"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by = data["nme_inter_ocular_by_attribute"]
    assert list(by) == list(HARDENINGS) and all(v["n_images"] == 2 for v in by.values())
    per_image = {w["name"]: w["nme_inter_ocular_pct"] for w in data["worst_faces"]}
    assert set(per_image) <= set(ChallengeSource(hard).names) and len(per_image) == 5
    assert max(per_image.values()) == pytest.approx(data["worst_nme_inter_ocular_pct"], abs=1e-4)
    assert main(["evaluate", str(ckpt), "--data", str(hard), "--out", str(tmp_path / "eval")]) == 0
    text = capsys.readouterr().out
    assert "worst faces" in text and "by subset: roll40" in text
