"""`lightmark export` (ONNX fp32/fp16/int8, TorchScript fp32/fp16), verified round trips, predict with an
.onnx file, profile's deployed sizes and ONNX Runtime latency, the search's --size-metric, user errors.

ONNX tests need the `export` extra (pip install -e '.[export]') and skip, saying so, without it.
"""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

import lightmark.search.budget as budget_module
from lightmark.benchmarks import deployed, size
from lightmark.benchmarks.deployed import _trained_like, deployed_size_bytes
from lightmark.cli.main import main
from lightmark.data.constants import N_LANDMARKS
from lightmark.data.synth import SynthFaces
from lightmark.deploy.export import export_model, load_onnx, load_torchscript, ort_session
from lightmark.heatmaps.codecs import get_codec
from lightmark.models.hourglass import build_model
from lightmark.models.spec import ModelSpec
from lightmark.reports.report import _budgets
from lightmark.search.budget import Budget
from lightmark.training.checkpoint import load_model
from lightmark.training.dataset import build_sources
from lightmark.training.evaluate import predict_points
from lightmark.training.protocol import get_protocol

EXTRA = "the export extra is not installed (pip install -e '.[export]')"


@pytest.fixture
def onnx_extra():
    pytest.importorskip("onnx", reason=EXTRA)
    pytest.importorskip("onnxscript", reason=EXTRA)
    return pytest.importorskip("onnxruntime", reason=EXTRA)


@pytest.fixture(scope="module")
def trained(smoke_run):
    """A tiny trained checkpoint (s1-d2-c16, smoke protocol), trained once per session (conftest.py)."""
    return smoke_run[0] / "best.pt"


def _export(capsys, ckpt, out, *extra):
    capsys.readouterr()
    code = main(["export", str(ckpt), "--out", str(out), "--threads", "1", "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _checkpoint_points(ckpt, images_uint8):
    model, _, protocol, _ = load_model(ckpt)
    codec = get_codec(protocol.codec, protocol.input_size)
    return predict_points(model, images_uint8, codec, torch.device("cpu")).numpy()


def _val_images(n=5):
    """The smoke protocol's first held-out faces, uint8 [n, 3, 64, 64]."""

    val = build_sources(get_protocol("smoke"))[1]
    return torch.from_numpy(np.stack([val[i].image.transpose(2, 0, 1) for i in range(n)])).contiguous()


# -- ONNX round trips --------------------------------------------------------------------------------------
def test_onnx_fp32_matches_the_checkpoint(onnx_extra, trained, tmp_path, capsys):
    import onnx

    out = tmp_path / "m.onnx"
    report = _export(capsys, trained, out, "--format", "onnx", "--dtype", "fp32")
    assert report["size_bytes"] == out.stat().st_size
    assert report["max_point_diff_px"] <= 0.01
    assert report["mean_point_diff_px"] <= report["max_point_diff_px"]
    assert report["nme_export_pct"] == pytest.approx(report["nme_checkpoint_pct"], abs=1e-3)
    assert report["n_faces"] == 16 and report["passed"] and report["output"] == "heatmaps"
    assert report["tolerance"]["max_point_diff_px"] == 0.01
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    meta = json.loads({p.key: p.value for p in model.metadata_props}["lightmark"])
    assert ((meta["spec"], meta["input_size"], meta["codec"], meta["output"])
            == ("s1-d2-c16", 64, "subpixel", "heatmaps"))
    # any batch size, and the checkpoint's points from the file's heatmaps (ONNX Runtime on its own)
    session = onnx_extra.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images = _val_images(5)
    heatmaps = session.run(None, {"image": images.float().numpy()})[0]
    assert heatmaps.shape == (5, N_LANDMARKS, 16, 16)
    one = session.run(None, {"image": images[:1].float().numpy()})[0]
    assert np.abs(one[0] - heatmaps[0]).max() < 1e-4

    points = get_codec("subpixel", 64).decode(torch.from_numpy(heatmaps)).numpy()
    assert np.abs(points - _checkpoint_points(trained, images)).max() <= 0.01


def test_onnx_fp16_and_int8_are_smaller_and_keep_the_nme(onnx_extra, trained, tmp_path, capsys):
    fp32 = _export(capsys, trained, tmp_path / "a.onnx", "--format", "onnx")
    fp16 = _export(capsys, trained, tmp_path / "b.onnx", "--format", "onnx", "--dtype", "fp16")
    int8 = _export(capsys, trained, tmp_path / "c.onnx", "--format", "onnx", "--dtype", "int8",
                   "--calibration-images", "16")
    assert fp16["size_bytes"] < 0.6 * fp32["size_bytes"]
    assert int8["size_bytes"] < 0.5 * fp32["size_bytes"]  # a 16-channel net: the graph is half the file
    assert int8["size_bytes"] < fp16["size_bytes"]
    assert abs(fp16["nme_change_pct"]) <= 1.0 and abs(int8["nme_change_pct"]) <= 5.0
    assert int8["calibration"]["images"] == 16 and "MinMax" in int8["calibration"]["method"]
    assert int8["nme_change_pct"] == pytest.approx(
        (int8["nme_export_pct"] - int8["nme_checkpoint_pct"]) / int8["nme_checkpoint_pct"] * 100)


def test_int8_file_is_at_most_0_3_of_fp32_and_size_needs_no_training(onnx_extra, trained, tmp_path, capsys):
    """The size bar on s1-d2-c32 (the acceptance check's architecture), exported untrained; and an
    untrained export has the trained one's size, which is what lets the search budget it."""

    fp32 = deployed_size_bytes("s1-d2-c32", "onnx", "fp32", 64)
    int8 = deployed_size_bytes("s1-d2-c32", "onnx", "int8", 64)
    assert int8 <= 0.3 * fp32
    for dtype, slack in (("fp32", 64), ("int8", 0.01)):
        trained_size = _export(capsys, trained, tmp_path / f"{dtype}.onnx", "--format", "onnx",
                               "--dtype", dtype)["size_bytes"]
        untrained = deployed_size_bytes("s1-d2-c16", "onnx", dtype, 64)
        limit = slack if slack >= 1 else slack * trained_size
        assert abs(untrained - trained_size) <= limit, (dtype, untrained, trained_size)


@pytest.mark.parametrize("spec", ["s2-d2-c16-ca-cc", "s1-d2-c16-se"])
def test_attention_coordconv_and_stacks_export(onnx_extra, spec, tmp_path):
    """CA's per-axis pools and CoordConv's grids export (rewritten), fp16 stores fp16 weights, and the
    folded BatchNorms keep the network's heatmaps (untrained weights, BN statistics drawn at random)."""

    model = _trained_like(build_model(spec), seed=3).eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        reference = model((images / 255 - 0.5) / 0.25)[-1].numpy()
    sizes = {}
    for dtype, atol in (("fp32", 1e-4), ("fp16", 0.05)):
        path = tmp_path / f"{dtype}.onnx"
        sizes[dtype] = export_model(model, path, fmt="onnx", dtype=dtype, input_size=64)
        heatmaps = ort_session(path, 1).run(None, {"image": images.numpy()})[0]
        assert np.abs(heatmaps - reference).max() <= atol * max(1.0, np.abs(reference).max()), dtype
    assert sizes["fp16"] < 0.6 * sizes["fp32"]


def test_decode_in_the_graph_returns_points(onnx_extra, trained, tmp_path, capsys):
    heat = tmp_path / "h.onnx"
    _export(capsys, trained, heat, "--format", "onnx", "--dtype", "int8")
    for dtype in ("fp32", "int8"):
        out = tmp_path / f"p_{dtype}.onnx"
        report = _export(capsys, trained, out, "--format", "onnx", "--dtype", dtype, "--decode")
        assert report["output"] == "points"
        session = onnx_extra.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["points"]
        images = _val_images(3)
        points = session.run(None, {"image": images.float().numpy()})[0]
        assert points.shape == (3, N_LANDMARKS, 2) and points.dtype == np.float32
        if dtype == "fp32":
            assert report["max_point_diff_px"] <= 0.01
            assert np.abs(points - _checkpoint_points(trained, images)).max() <= 0.01
        else:  # the same int8 network with the float32 decode appended: the points of its heatmaps
            assert np.abs(points - load_onnx(heat)(images).numpy()).max() <= 1e-3


def test_torchscript_fp32_and_fp16(trained, tmp_path, capsys):
    out = tmp_path / "m.pt"
    fp32 = _export(capsys, trained, out, "--format", "torchscript")
    assert fp32["max_point_diff_px"] <= 0.01 and fp32["size_bytes"] == out.stat().st_size
    loaded = load_torchscript(out)
    images = _val_images(4)
    assert np.abs(loaded(images).numpy() - _checkpoint_points(trained, images)).max() <= 0.01
    fp16 = _export(capsys, trained, tmp_path / "h.pt", "--format", "torchscript", "--dtype", "fp16", "--decode")
    assert fp16["output"] == "points" and abs(fp16["nme_change_pct"]) <= 1.0
    assert fp16["size_bytes"] < fp32["size_bytes"]


# -- predict with an exported file ---------------------------------------------------------------------------
def test_predict_accepts_an_onnx_file(onnx_extra, trained, tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    gen = SynthFaces(size=96, seed=7)  # not the network's input size: predict resizes and maps back
    for i in range(3):
        cv2.imwrite(str(images / f"face{i}.png"), cv2.cvtColor(gen.render(i).image, cv2.COLOR_RGB2BGR))
    model = tmp_path / "m.onnx"
    _export(capsys, trained, model, "--format", "onnx")
    points = {}
    for name, source in (("onnx", model), ("checkpoint", trained)):
        capsys.readouterr()
        assert main(["predict", str(source), str(images), "--out", str(tmp_path / name), "--no-draw",
                     "--device", "cpu", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["n_images"] == 3 and summary["input_size"] == 64 and summary["spec"] == "s1-d2-c16"
        payload = json.loads((tmp_path / name / "points.json").read_text())
        points[name] = np.array([image["points"] for image in payload["images"]])
    assert points["onnx"].shape == (3, N_LANDMARKS, 2)
    assert np.abs(points["onnx"] - points["checkpoint"]).max() <= 0.01 * 96 / 64 + 2e-3  # json rounds to 1e-3


# -- profile and the search budget ---------------------------------------------------------------------------
@pytest.mark.slow  # five exports and four timed runtimes: the fast tier checks the sizes alone below
def test_profile_reports_deployed_sizes_and_onnxruntime_latency(onnx_extra, capsys):
    capsys.readouterr()
    assert main(["profile", "s1-d2-c16", "--input-size", "64", "--threads", "1", "--batch-sizes", "1", "--deployed",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    deployed = result["deployed"]
    sizes = deployed["size_bytes"]
    assert set(sizes) == {"onnx_fp32", "onnx_fp16", "onnx_int8", "torchscript_fp32", "torchscript_fp16"}
    assert sizes["onnx_int8"] < sizes["onnx_fp16"] < sizes["onnx_fp32"]
    assert sizes["onnx_fp32"] == deployed_size_bytes("s1-d2-c16", "onnx", "fp32", 64)
    assert deployed["size_vs_state_dict"]["onnx_fp32"] == pytest.approx(sizes["onnx_fp32"] / result["size_bytes"])
    assert deployed["latency_threads"] == 1 and deployed["latency_batch_size"] == 1
    latency = deployed["latency_ms"]
    assert set(latency) == {"torch_eager_fp32", "onnxruntime_fp32", "onnxruntime_fp16", "onnxruntime_int8"}
    assert all(ms > 0 for ms in latency.values())
    for name, ratio in deployed["speedup_vs_eager"].items():
        assert ratio == pytest.approx(latency["torch_eager_fp32"] / latency[name])
    assert main(["profile", "s1-d2-c16", "--input-size", "64", "--no-latency", "--json"]) == 0
    assert "deployed" not in json.loads(capsys.readouterr().out)


def test_size_metric_budgets_the_exported_file(onnx_extra, tmp_path, monkeypatch):
    spec = ModelSpec.parse("s1-d2-c32")
    int8_mb = deployed.deployed_size_bytes(spec, "onnx", "int8", 64) / 2**20
    state_mb = size.size_mb(spec)
    limit = (int8_mb + state_mb) / 2  # the int8 file fits, the state_dict does not
    assert not Budget(size_mb=limit, input_size=64).fits(spec)
    cache = tmp_path / "sizes.json"
    budget = Budget(size_mb=limit, input_size=64, size_metric="onnx_int8", size_cache=str(cache))
    assert budget.fits(spec)
    check = budget.check(spec)
    assert check.feasible and check.size_metric == "onnx_int8"
    assert check.metric_size_mb == pytest.approx(int8_mb)
    assert check.size_mb == pytest.approx(state_mb)  # Records keep the write-up's size
    assert check.constraints["size_mb"] == pytest.approx(int8_mb - limit)
    assert budget.to_dict()["size_metric"] == "onnx_int8" and "onnx_int8 file" in budget.describe()
    # cached per spec: a new Budget (a resumed run, another worker) reads the file and exports nothing
    assert len(json.loads(cache.read_text())["sizes_mb"]) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(budget_module, "metric_size_mb", no_export)  # where the Budget looks it up
    again = Budget(size_mb=int8_mb / 2, input_size=64, size_metric="onnx_int8", size_cache=str(cache))
    assert again.metric_size_of(spec) == pytest.approx(int8_mb) and not again.fits(spec)


def test_search_size_metric_flag(onnx_extra, tmp_path, capsys):
    """An impossible onnx_fp16 budget stops the search before any training, naming the file's size."""
    capsys.readouterr()
    code = main(["search", "--protocol", "smoke", "--stacks", "1", "--depth", "2", "--channels", "16",
                 "--attention", "none", "--coordconv", "false", "--size-metric", "onnx_fp16",
                 "--budget-mb", "0.001", "--n-trials", "1", "--workers", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "onnx_fp16 file <= 0.001 MiB" in err and "Traceback" not in err

    assert f"{deployed_size_bytes('s1-d2-c16', 'onnx', 'fp16', 64) / 2**20:.3f} MiB" in err


# -- errors a user can cause ------------------------------------------------------------------------------
@pytest.mark.parametrize("case, needle", [
    ("text", "not a readable lightmark checkpoint"),
    ("dict", "not a lightmark checkpoint"),
    ("missing", "no such checkpoint"),
    ("under_a_file", "is a file, not a folder"),
    ("folder", "is a folder"),
    ("torchscript_int8", "int8 needs --format onnx"),
    ("tolerance", "outside its tolerance"),
])
def test_user_errors_are_one_line_exit_2(onnx_extra, trained, tmp_path, capsys, case, needle):
    ckpt, out, extra = trained, tmp_path / "m.onnx", ["--format", "onnx"]
    if case == "text":
        ckpt = tmp_path / "notes.pt"
        ckpt.write_text("not a checkpoint\n")
    elif case == "dict":
        ckpt = tmp_path / "weights.pt"
        torch.save({"weight": torch.zeros(3)}, ckpt)
    elif case == "missing":
        ckpt = tmp_path / "nothing.pt"
    elif case == "under_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "m.onnx"
    elif case == "folder":
        out = tmp_path
    elif case == "torchscript_int8":
        extra = ["--format", "torchscript", "--dtype", "int8"]
    elif case == "tolerance":
        extra = ["--format", "onnx", "--dtype", "int8", "--max-point-diff-px", "0"]
    capsys.readouterr()
    assert main(["export", str(ckpt), "--out", str(out), "--threads", "1", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err
    if case == "tolerance":
        assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written, no temp file left


def test_predict_rejects_an_onnx_file_that_lightmark_did_not_write(onnx_extra, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((64, 64, 3), np.uint8))
    capsys.readouterr()
    args = ["predict", str(tmp_path / "other.onnx"), str(tmp_path / "face.png"), "--out", str(tmp_path / "p")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "without lightmark metadata" in err


def test_onnx_without_the_extra_says_how_to_install_it(trained, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    capsys.readouterr()
    assert main(["export", str(trained), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install -e '.[export]'" in err and "onnxruntime" in err


def test_report_draws_no_state_dict_budget_line_for_an_exported_size_budget():
    def run(budget):
        return SimpleNamespace(studies=[SimpleNamespace(user_attrs={"budget": json.dumps(budget)})], pareto=None)

    assert _budgets(run({"size_mb": 2.0, "macs": 1e9, "size_metric": "state_dict"})) == {"size": 2.0, "macs": 1.0}
    assert _budgets(run({"size_mb": 2.0, "macs": 1e9, "size_metric": "onnx_int8"})) == {"macs": 1.0}
