"""MACs (multiply-accumulates) of one forward pass, counted by fvcore and thop and compared.

fvcore's "flops" and thop's counts are both multiply-accumulates. They agree on convolutions
and differ in BatchNorm (fvcore: 1 per element, thop: 2 per element with affine) and in small
elementwise ops; `count_macs` reports both, their relative difference, and the work of the ops
fvcore skips (counted here as output elements, so it cannot hide real work).
"""

from __future__ import annotations

import collections
import copy
import functools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from lightmark.benchmarks.size import as_spec
from lightmark.models.specs import AnySpec, build_network
from lightmark.quiet import quiet_libraries

with quiet_libraries():  # both print and warn at import time; keep stdout clean for --json
    import thop
    from fvcore.nn import FlopCountAnalysis

MACS_DISAGREEMENT = 0.02  # flag fvcore vs thop beyond 2 %

# Ops fvcore has no formula for that our networks use. They are elementwise (or pooling / shape) ops,
# i.e. O(output elements) work: we count their output elements separately so the report shows how
# much work fvcore's total leaves out instead of silently dropping it.
_FVCORE_EXTRA_OPS = (
    "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sigmoid", "aten::hardswish",
    "aten::relu", "aten::relu_", "aten::max_pool2d", "aten::linspace", "aten::div", "aten::sub",
    "aten::clamp", "aten::hardtanh",
)


@dataclass(frozen=True)
class MacCount:
    """MACs (multiply-accumulates; FLOPs = 2 x MACs) of one forward pass at batch 1."""

    input_size: int
    fvcore: int  # fvcore's own total (ops it skips are not included)
    thop: int
    conv: int  # analytic: sum over convolutions of output elements x (in/groups x k x k)
    rel_diff: float  # |fvcore - thop| / max(fvcore, thop)
    flagged: bool  # rel_diff > 2 %
    fvcore_by_op: dict = field(default_factory=dict)
    fvcore_skipped_ops: dict = field(default_factory=dict)  # op -> calls fvcore has no formula for
    fvcore_skipped_elements: int = 0  # output elements of those ops (their work, ~1 op each)
    fvcore_skipped_pct: float = 0.0  # skipped elements as a percentage of fvcore's MACs

    def to_dict(self) -> dict:
        return asdict(self)


class _ConvMacs:
    """Our own count of convolution MACs (output elements x in/groups x kh x kw), via forward hooks."""

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, nn.Conv2d)]

    def _hook(self, module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        self.total += output.numel() * (module.in_channels // module.groups) * k

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def count_macs(model_or_spec: nn.Module | AnySpec | str, input_size: int) -> MacCount:
    """fvcore and thop MACs for one [1, C, N, N] input, compared honestly (see MacCount)."""
    if isinstance(model_or_spec, nn.Module):
        model = model_or_spec
        in_channels = getattr(getattr(model, "spec", None), "in_channels", 3)
    else:
        spec = as_spec(model_or_spec)
        spec.check_input_size(input_size)
        model = build_network(spec)
        in_channels = spec.in_channels
    model = copy.deepcopy(model).float().cpu().eval()  # thop adds buffers; never touch the caller's
    example = torch.zeros(1, in_channels, input_size, input_size)

    skipped_calls: collections.Counter = collections.Counter()
    skipped_elements = 0

    def elementwise(inputs, outputs, *, op: str) -> int:
        nonlocal skipped_elements
        skipped_calls[op] += 1
        numel = 1
        for dim in outputs[0].type().sizes() or []:
            numel *= dim
        skipped_elements += numel
        return 0  # kept out of fvcore's total: reported separately

    with quiet_libraries(), torch.no_grad():
        analysis = FlopCountAnalysis(model, example)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        for op in _FVCORE_EXTRA_OPS:
            analysis.set_op_handle(op, functools.partial(elementwise, op=op))
        fvcore_total = int(analysis.total())
        by_op = {k: int(v) for k, v in analysis.by_operator().items() if v}
        still_unsupported = dict(analysis.unsupported_ops())
        thop_model = copy.deepcopy(model)
        conv_counter = _ConvMacs(thop_model)  # shares thop's forward pass
        thop_total, _ = thop.profile(thop_model, inputs=(example,), verbose=False)
        conv_counter.remove()
    thop_total = int(thop_total)
    skipped = dict(sorted(skipped_calls.items()))
    skipped.update(still_unsupported)
    rel = abs(fvcore_total - thop_total) / max(fvcore_total, thop_total, 1)
    return MacCount(
        input_size=input_size,
        fvcore=fvcore_total,
        thop=thop_total,
        conv=conv_counter.total,
        rel_diff=rel,
        flagged=rel > MACS_DISAGREEMENT,
        fvcore_by_op=by_op,
        fvcore_skipped_ops=skipped,
        fvcore_skipped_elements=skipped_elements,
        fvcore_skipped_pct=100.0 * skipped_elements / max(fvcore_total, 1),
    )

