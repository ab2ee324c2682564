"""Our MobileNetV2/V3 and ShuffleNetV2 reproduce the published architectures (torchvision's param counts to
the unit, the papers' multiply-adds), and their feature mode, the heatmap head and the wrapped net behave."""

from __future__ import annotations

import io

import pytest
import torch

from lightmark.device import intra_op_threads
from lightmark.errors import SpecError
from lightmark.models.backbone_net import BackboneHeatmapNet, make_divisible
from lightmark.models.dense_head import HeatmapHead
from lightmark.models.mobilenetv2 import MobileNetV2
from lightmark.models.mobilenetv3 import MobileNetV3
from lightmark.models.shufflenetv2 import ShuffleNetV2

# name -> (constructor, torchvision's num_params, the paper's MACs in millions at 224x224)
PUBLISHED = {
    "mobilenet_v3_large": (lambda **kw: MobileNetV3("large", **kw), 5_483_032, 219),
    "mobilenet_v3_small": (lambda **kw: MobileNetV3("small", **kw), 2_542_856, 56),
    "shufflenet_v2_x0_5": (lambda **kw: ShuffleNetV2(0.5, **kw), 1_366_792, 41),
    "shufflenet_v2_x1_0": (lambda **kw: ShuffleNetV2(1.0, **kw), 2_278_604, 146),
    "shufflenet_v2_x1_5": (lambda **kw: ShuffleNetV2(1.5, **kw), 3_503_624, 299),
    "shufflenet_v2_x2_0": (lambda **kw: ShuffleNetV2(2.0, **kw), 7_393_996, 591),
    "mobilenet_v2": (lambda **kw: MobileNetV2(**kw), 3_504_872, 300),
}
# family -> (constructor, feature channels at width 1.0)
FAMILIES = {
    "mobilenet_v3_large": (PUBLISHED["mobilenet_v3_large"][0], (16, 24, 40, 112, 160)),
    "mobilenet_v3_small": (PUBLISHED["mobilenet_v3_small"][0], (16, 16, 24, 48, 96)),
    "shufflenet_v2_x1_0": (PUBLISHED["shufflenet_v2_x1_0"][0], (24, 24, 116, 232, 464)),
    "mobilenet_v2": (PUBLISHED["mobilenet_v2"][0], (16, 24, 32, 96, 320)),
}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on the loaded shared test VM two are up to 100x slower for these small convs."""
    with intra_op_threads(1):
        yield


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", PUBLISHED)
def test_classification_models_have_torchvisions_exact_param_counts(name):
    build, params, _ = PUBLISHED[name]
    assert n_params(build(num_classes=1000)) == params


@pytest.mark.parametrize("name", PUBLISHED)  # fvcore traces each at 224x224: 0.2-0.4 s apiece on one thread
def test_multiply_adds_match_the_papers(name):
    from fvcore.nn import FlopCountAnalysis

    build, _, paper_macs = PUBLISHED[name]
    model = build(num_classes=1000).eval()
    count = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    count.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = count.by_operator()
    # fvcore counts one multiply-add as one flop; the papers count convs and linears (BN folds into the conv)
    macs = (by_op["conv"] + by_op["linear"]) / 1e6
    assert macs == pytest.approx(paper_macs, rel=0.05)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("size", [64, 128])
def test_feature_mode_returns_one_map_per_stride(name, size):
    build, channels = FAMILIES[name]
    model = build().eval()
    assert model.feature_strides == (2, 4, 8, 16, 32)
    assert model.feature_channels == channels
    with torch.no_grad():
        features = model.forward_features(torch.zeros(2, 3, size, size))
    expected = [(2, c, size // s, size // s) for c, s in zip(channels, model.feature_strides)]
    assert [tuple(f.shape) for f in features] == expected


@pytest.mark.parametrize("name", FAMILIES)
def test_feature_mode_drops_the_classifiers_last_conv(name):
    build, _ = FAMILIES[name]
    model = build()
    assert model.classifier is None
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert n_params(model) < n_params(build(num_classes=1000)) - 1000 * 1000  # more than the last linear went


@pytest.mark.parametrize("name", FAMILIES)
def test_out_stride_truncates_the_network(name):
    build, channels = FAMILIES[name]
    sizes = {}
    for out_stride in (8, 16, 32):
        model = build(out_stride=out_stride).eval()
        n = out_stride.bit_length() - 1  # strides 2 .. out_stride
        assert model.feature_strides == (2, 4, 8, 16, 32)[:n]
        assert model.feature_channels == channels[:n]
        with torch.no_grad():
            features = model.forward_features(torch.zeros(1, 3, 64, 64))
        assert features[-1].shape[-1] == 64 // out_stride and len(features) == n
        sizes[out_stride] = n_params(model)
    assert sizes[8] < sizes[16] < sizes[32]


def test_widths_scale_channels_like_torchvisions_width_mult():
    assert [make_divisible(v) for v in (8, 12, 16 * 0.35, 40 * 0.75, 1280 * 1.4)] == [8, 16, 8, 32, 1792]
    assert MobileNetV3("large", width=0.5).feature_channels == (8, 16, 24, 56, 80)
    assert MobileNetV2(width=0.75).feature_channels == (16, 24, 24, 72, 240)
    assert MobileNetV3("small", in_channels=1).stages[0][0][0].in_channels == 1


@pytest.mark.parametrize("width", [0.75, 3.0, 0.0])
def test_shufflenet_rejects_unpublished_widths(width):
    with pytest.raises(SpecError, match="width"):
        ShuffleNetV2(width)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: MobileNetV3("medium"), "variant"),
        (lambda: MobileNetV2(width=-1.0), "width"),
        (lambda: MobileNetV3(out_stride=4), "out_stride"),
        (lambda: MobileNetV2(num_classes=10, out_stride=16), "num_classes"),
        (lambda: BackboneHeatmapNet(MobileNetV2(num_classes=10), 16, 5), "backbone"),
        (lambda: HeatmapHead((16, 24), (2, 8), 16, 5), "feature_strides"),
    ],
)
def test_bad_arguments_name_the_field(build, field):
    with pytest.raises(SpecError, match=field):
        build()


def test_head_gives_stride_4_heatmaps():
    backbone = ShuffleNetV2(0.5, out_stride=16).eval()
    head = HeatmapHead(backbone.feature_channels, backbone.feature_strides, head_channels=16, n_landmarks=68).eval()
    with torch.no_grad():
        heatmaps = head(backbone.forward_features(torch.zeros(2, 3, 64, 64)))
    assert heatmaps.shape == (2, 68, 16, 16)
    assert len(head.lateral) == 3 and len(head.smooth) == 2  # strides 4, 8, 16; stride 2 unused


@pytest.mark.parametrize("size", [64, 100])  # 100: not a multiple of the deepest stride
def test_backbone_heatmap_net_returns_one_stack(size):
    net = BackboneHeatmapNet(MobileNetV3("small", width=0.5, out_stride=16), head_channels=32, n_landmarks=68)
    out = net.eval()(torch.zeros(2, 3, size, size))
    assert isinstance(out, list) and len(out) == 1
    assert out[0].shape == (2, 68, size // 4, size // 4)
    assert n_params(net) == 66_548


@pytest.fixture
def tiny_net() -> BackboneHeatmapNet:
    torch.manual_seed(0)
    return BackboneHeatmapNet(ShuffleNetV2(0.5, out_stride=8), head_channels=8, n_landmarks=5).eval()


def test_state_dict_round_trips(tiny_net):
    buffer = io.BytesIO()
    torch.save(tiny_net.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    other = BackboneHeatmapNet(ShuffleNetV2(0.5, out_stride=8), head_channels=8, n_landmarks=5).eval()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x)[0], tiny_net(x)[0], rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.9+ calls the TorchScript exporter legacy
@pytest.mark.parametrize("build", [lambda: MobileNetV3("small", width=0.25, out_stride=8),
                                   lambda: ShuffleNetV2(0.5, out_stride=8)])
def test_exports_to_onnx_and_traces(build):
    pytest.importorskip("onnx", reason="the export extra is not installed (pip install -e '.[export]')")
    import onnx

    net = BackboneHeatmapNet(build(), head_channels=8, n_landmarks=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(net, (x,), strict=False)
        torch.testing.assert_close(traced(x)[0], net(x)[0])
        buffer = io.BytesIO()
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["heatmaps"], dynamic_axes={"image": {0: "batch"}, "heatmaps": {0: "batch"}})
    graph = onnx.load_from_string(buffer.getvalue()).graph
    assert [o.name for o in graph.output] == ["heatmaps"]
    assert "If" not in {node.op_type for node in graph.node}  # no data-dependent control flow
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    batch = torch.randn(2, 3, 64, 64)  # another batch size than traced: the shuffle's sizes stayed symbolic
    with torch.no_grad():
        expected = net(batch)[0].numpy()
    (got,) = session.run(None, {"image": batch.numpy()})
    assert got.shape == expected.shape and abs(got - expected).max() < 1e-4
