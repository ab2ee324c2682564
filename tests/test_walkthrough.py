"""From search to phone, at the smoke protocol, through the CLI entry point in-process: the commands
docs/ walk a user through, in order.

1. `lightmark search ... --json`: its summary names the best checkpoint (`best_checkpoint`);
2. `lightmark data synth`: a small challenge-layout folder, standing in for the user's data;
3. `lightmark train SPEC --set train_samples=0 --data DIR`: the winner's spec retrained, longer, on all
   of that data;
4. `lightmark export CKPT --format onnx --dtype int8 --decode`: the file that ships (verified);
5. `lightmark predict MODEL.onnx crop.png`: points on a photo's face crop (scikit-image's astronaut).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lightmark.cli.main import main
from lightmark.heatmaps.codecs import get_codec

EXTRA = "needs the export extra: pip install -e '.[export]'"
FACE = (slice(20, 230), slice(120, 330))  # rows, columns of the astronaut photo (512 x 512): her face


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[dict, str]:
    """One command with --json: its summary, and what it told the user on stderr."""
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def _astronaut_face(path: Path) -> Path | None:
    """scikit-image's astronaut photo cropped to her face, as a PNG; None without scikit-image."""
    try:
        from skimage import data  # the [real] extra; only this step needs it
    except ImportError:
        return None
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(data.astronaut()[FACE]), cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.slow
def test_from_search_to_phone(tmp_path, capsys, monkeypatch):
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name, reason=EXTRA)
    monkeypatch.delenv("LIGHTMARK_SEARCH_RUNNER", raising=False)  # the real trainer
    monkeypatch.delenv("LIGHTMARK_SEARCH_SIZER", raising=False)

    # 1. search; the summary names the winner's checkpoint (JSON and the human summary alike)
    search, told = _run(capsys, "search", "--protocol", "smoke", "--budget-mb", "1", "--n-trials", "2",
                        "--stacks", "1", "--depth", "2", "--channels", "16,24", "--set", "train_samples=200",
                        "--set", "epochs=2", "--out", str(tmp_path / "search"), "--no-report")
    best = Path(search["best_checkpoint"])
    assert best.is_file() and best.name == "best.pt" and best.is_relative_to(tmp_path.resolve() / "search")
    assert f"best checkpoint (export or retrain it): {best}" in told
    spec = search["best_spec"]

    # 2. a dataset on disk, in the challenge layout
    data = tmp_path / "data"
    written, _ = _run(capsys, "data", "synth", "--out", str(data), "--n", "40", "--size", "64")
    assert written["written"] == 40 and (data / "annot.pkl").is_file()

    # 3. the winner's spec retrained longer, on all of the data (train_samples=0: no cap)
    retrain = tmp_path / "retrain"
    trained, _ = _run(capsys, "train", spec, "--protocol", "smoke", "--set", "epochs=3", "--set", "train_samples=0",
                      "--data", str(data), "--out", str(retrain), "--no-progress")
    assert trained["spec"] == spec and trained["epochs_done"] == 3
    config = json.loads((retrain / "config.json").read_text())
    assert config["protocol"]["train_samples"] == 0 and config["protocol"]["data"] == str(data.resolve())
    checkpoint = Path(trained["checkpoints"]["best"])
    assert checkpoint == retrain / "best.pt" and checkpoint.is_file()

    # 4. int8 ONNX with the decode inside, verified against the checkpoint on held-out faces
    model = tmp_path / "model.onnx"
    exported, _ = _run(capsys, "export", str(checkpoint), "--format", "onnx", "--dtype", "int8", "--decode",
                       "--out", str(model))
    assert exported["passed"] and exported["dtype"] == "int8" and exported["output"] == "points"
    assert model.is_file()

    # 5. points on a photo's face crop
    crop = _astronaut_face(tmp_path / "crop.png")
    if crop is None:
        pytest.skip("step 5 needs scikit-image (the [real] extra) for its astronaut photo")
    preds = tmp_path / "preds"
    predicted, _ = _run(capsys, "predict", str(model), str(crop), "--out", str(preds))
    assert predicted["n_images"] == 1 and predicted["spec"] == spec
    for name in ("points.json", "points.csv", "solution.txt", "drawn/crop.png"):
        assert (preds / name).is_file(), name
    (image,) = json.loads((preds / "points.json").read_text())["images"]
    points, width, height = np.asarray(image["points"]), image["width"], image["height"]
    assert points.shape == (68, 2) and (width, height) == (210, 210)
    # Inside the image: a smoke-trained model's points may sit past an edge by at most the decoder's
    # reach (its sub-pixel step beyond the best heatmap cell), never anywhere else.
    codec = get_codec(config["protocol"]["codec"], trained["input_size"])
    reach = (getattr(codec, "max_step", 1.0) * codec.stride + 0.5) * width / trained["input_size"]
    assert np.isfinite(points).all()
    assert (points >= -0.5 - reach).all() and (points <= np.array([width, height]) - 0.5 + reach).all()
    assert ((points >= -0.5) & (points <= np.array([width, height]) - 0.5)).all(axis=1).mean() > 0.5
