"""Evaluation: run a model over a loader, decode heatmaps with the protocol's codec, and compute NME
in every normalisation from the same per-image numbers (means, failure rates, CED, per landmark).

Images arrive as uint8 and are normalised on the device (`prepare_images`), the same way in training,
evaluation and prediction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightmark import metrics
from lightmark.data.formats import open_source
from lightmark.device import Precision, autocast, resolve_device
from lightmark.heatmaps.codecs import Codec, get_codec
from lightmark.layouts import Layout
from lightmark.training.checkpoint import load_model
from lightmark.training.dataset import LandmarkDataset, build_loaders, check_points, make_loader

# Per-channel normalisation of uint8 RGB: x / 255 -> zero mean, unit-ish spread.
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.25, 0.25, 0.25)


def prepare_images(images: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 [B,3,H,W] (any device) -> normalised float32 on `device` (non-blocking copy)."""
    x = images.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x = x.float().div_(255.0)
    mean = torch.tensor(IMAGE_MEAN, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(IMAGE_STD, device=device, dtype=x.dtype).view(1, -1, 1, 1)
    return x.sub_(mean).div_(std)


def eval_batch_size(protocol: Any) -> int:
    """Evaluation needs no gradients, so it uses bigger batches than training (fewer, larger ops ran
    about twice as fast on a loaded 2-core CPU): 64 images at 128 px, scaled down with the pixel count,
    never below the training batch."""
    return max(int(protocol.batch_size), int(64 * (128 / protocol.input_size) ** 2))


@dataclass
class EvalResult:
    """Numbers from one pass over a loader. Units: NME in percent; per-image arrays keep them all."""

    summary: dict[str, float]  # metrics.summarise keys (nme_image_pct, nme_inter_ocular_pct, ...)
    per_image: dict[str, np.ndarray]  # normalisation -> (N,) NME %
    per_landmark_image_pct: np.ndarray  # (K,) NME % of image side per landmark
    pred: np.ndarray  # (N, K, 2) input pixels
    gt: np.ndarray  # (N, K, 2) input pixels
    indices: np.ndarray  # (N,) dataset indices
    image_size: int
    seconds: float
    baseline: dict[str, float] | None = None  # mean-shape baseline (same keys as summary)
    extra: dict[str, Any] = field(default_factory=dict)
    per_part_image_pct: dict[str, float] = field(default_factory=dict)  # face part -> NME % of image side
    names: list[str] = field(default_factory=list)  # the dataset's name of each image, by dataset index

    def name_of(self, row: int) -> str:
        """The image of result row `row` by name (its dataset index where the source has no names)."""
        index = int(self.indices[row])
        return self.names[index] if index < len(self.names) else f"#{index}"

    def worst_faces(self, k: int = 3, normalisation: str = "inter_ocular") -> list[dict[str, Any]]:
        """The `k` images with the largest NME, worst first: a mean over a few dozen faces hides the
        face a model gets wrong, and on photos that face is what users notice."""
        values = self.per_image[normalisation]
        order = np.argsort(-values, kind="stable")[:k]
        return [{"name": self.name_of(int(i)), f"nme_{normalisation}_pct": float(values[i])} for i in order]

    def face_spread(self, normalisation: str = "inter_ocular") -> dict[str, Any]:
        """Median and worst image beside the mean (keys as in `FACE_SPREAD_KEYS`, plus `worst_face`)."""
        values = self.per_image[normalisation]
        worst = self.worst_faces(1, normalisation)[0]
        return {f"median_nme_{normalisation}_pct": float(np.median(values)),
                f"worst_nme_{normalisation}_pct": float(values.max()), "worst_face": worst["name"]}


@torch.no_grad()
def predict_points(
    model: torch.nn.Module,
    images: torch.Tensor,
    codec: Codec,
    device: torch.device,
    precision: Precision | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 images [B,3,H,W] -> points [B,K,2] in input pixels (float32, on `device`)."""
    x = prepare_images(images, device, channels_last)
    if precision is not None:
        with autocast(device, precision):
            outputs = model(x)
    else:
        outputs = model(x)
    heatmaps = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
    return codec.decode(heatmaps.float().contiguous())


def evaluate_model(
    model: torch.nn.Module,
    loader: Iterable[dict],
    codec: Codec,
    device: torch.device | str,
    *,
    precision: Precision | None = None,
    channels_last: bool = False,
    mean_shape: np.ndarray | None = None,
    image_size: int | None = None,
    layout: Layout | None = None,
) -> EvalResult:
    """Decode every batch with `codec`, then compute all metrics from the stacked per-image errors.

    Batches are `LandmarkDataset`'s: "image" (uint8), "points" and "index" (the dataset index).

    `mean_shape` (K,2 input px), when given, adds the baseline that predicts it for every image.
    `layout` names the eye points of the inter-ocular/inter-pupil NME and the face parts (None:
    the registered layout with K points)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    preds, gts, idxs = [], [], []
    try:
        for batch in loader:
            pred = predict_points(model, batch["image"], codec, device, precision, channels_last)
            preds.append(pred.float().cpu())
            gts.append(batch["points"].float().cpu())
            idxs.append(batch["index"].cpu())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("evaluation loader yielded no batches")
    pred_t, gt_t = torch.cat(preds), torch.cat(gts)
    size = int(image_size or batch["image"].shape[-1])
    result = EvalResult(
        summary=_summarise(pred_t, gt_t, size, layout),
        per_image={n: metrics.nme(pred_t, gt_t, n, size, layout).numpy() for n in metrics.NORMALISATIONS},
        per_landmark_image_pct=_per_landmark(pred_t, gt_t, size),
        pred=pred_t.numpy(),
        gt=gt_t.numpy(),
        indices=torch.cat(idxs).numpy(),
        image_size=size,
        seconds=time.perf_counter() - start,
        per_part_image_pct=metrics.per_part_nme(pred_t, gt_t, "image", size, layout),
    )
    if mean_shape is not None:
        result.baseline = mean_shape_baseline(mean_shape, gt_t, size, layout)
        mean_pred = torch.as_tensor(np.asarray(mean_shape, np.float32)).unsqueeze(0).expand_as(gt_t).contiguous()
        result.extra["baseline_per_image_inter_ocular"] = metrics.nme(mean_pred, gt_t, "inter_ocular", size,
                                                                      layout).numpy()
    return result


def mean_shape_baseline(mean_shape: np.ndarray | torch.Tensor, gt: torch.Tensor, image_size: int,
                        layout: Layout | None = None) -> dict:
    """Metrics of predicting the average training shape for every image (the floor to beat)."""
    gt = torch.as_tensor(gt, dtype=torch.float32)
    pred = torch.as_tensor(np.asarray(mean_shape, np.float32)).unsqueeze(0).expand_as(gt).contiguous()
    return _summarise(pred, gt, image_size, layout)


def _summarise(pred: torch.Tensor, gt: torch.Tensor, size: int,
               layout: Layout | None = None) -> dict[str, float]:
    out = metrics.summarise(pred, gt, size, layout)
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in out.items()}


def _per_landmark(pred: torch.Tensor, gt: torch.Tensor, size: int) -> np.ndarray:
    return np.asarray(metrics.per_landmark_nme(pred, gt, "image", size).cpu(), dtype=np.float64)


def evaluate_checkpoint(path: Any, data: Any = None, device: str = "auto", batch_size: int | None = None,
                        image_root: Any = None):
    """Load a checkpoint and evaluate it on its protocol's held-out faces, or on every sample of the
    dataset at `data` (a WFLW list's images under `image_root`). Returns (EvalResult with baseline
    when the checkpoint stores the training mean shape, and per-attribute NME where the data has
    attribute flags; info dict: spec, protocol, checkpoint epoch, data description, layout)."""
    dev = resolve_device(device)
    model, spec, protocol, state = load_model(path, dev)
    codec = get_codec(protocol.codec, protocol.input_size)
    batch = int(batch_size or eval_batch_size(protocol))
    if data is not None:
        source = open_source(Path(data), "auto", protocol.input_size, layout=protocol.layout,
                             image_root=image_root)
        dataset = LandmarkDataset(source, None, seed=protocol.seed, input_size=protocol.input_size)
        loader = make_loader(dataset, batch_size=batch, shuffle=False, seed=protocol.seed)
        described = f"{data} ({len(dataset)} images)"
    else:
        val_set = build_loaders(protocol)[1].dataset
        loader = make_loader(val_set, batch_size=batch, shuffle=False, seed=protocol.seed,
                             num_workers=protocol.num_workers)
        described = (f"protocol {protocol.name} validation set ({len(loader.dataset)} images"
                     + (", held-out synthetic faces)" if protocol.data is None else ")"))
    layout = loader.dataset.layout
    check_points(spec.n_landmarks, layout, protocol if data is None else replace(protocol, data=str(data)),
                 f"checkpoint {path} (spec {spec})")
    mean_shape = state.get("mean_shape")
    result = evaluate_model(model, loader, codec, dev,
                            mean_shape=None if mean_shape is None else mean_shape.numpy(),
                            image_size=protocol.input_size, layout=layout)
    result.names = [str(n) for n in getattr(loader.dataset.source, "names", [])]
    attributes = getattr(loader.dataset.source, "attributes", None)
    if attributes:
        masks = {name: flags[result.indices] for name, flags in attributes.items()}
        result.extra["nme_inter_ocular_by_attribute"] = metrics.subset_nme(result.per_image["inter_ocular"], masks)
    info = {"checkpoint": str(path), "spec": str(spec), "protocol": protocol.name,
            "input_size": protocol.input_size, "codec": protocol.codec, "epoch": int(state.get("epoch", 0)),
            "data": described, "layout": layout.name}
    return result, info
