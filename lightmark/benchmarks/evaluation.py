"""Evaluating a run's candidates: the best ones on the held-out faces (the inference behind a report's CED
curves and prediction grid; reports only draw what this returns), and every one on a test set given
with `--test-data` (e.g. the real-photo dev set), whose NME the tables show beside the held-out NME."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightmark.benchmarks.record import Record, Status
from lightmark.benchmarks.runner import candidate_dir_of
from lightmark.training.checkpoint import checkpoint_spec_protocol, load_checkpoint
from lightmark.training.dataset import build_loaders
from lightmark.training.evaluate import EvalResult, evaluate_checkpoint

CHECKPOINT_NAMES = ("last.pt", "best.pt")  # what a candidate's folder keeps, in order of preference


@dataclass(frozen=True)
class BestCheckpoints:
    chosen: list[tuple[Record, Path]]  # the best completed candidates with a checkpoint, best first
    passed_over: int  # better candidates whose checkpoint is not in the run directory


@dataclass(frozen=True)
class Evaluated:
    record: Record
    checkpoint: Path
    result: EvalResult
    info: dict


@dataclass(frozen=True)
class DatasetNme:
    """NME of a run's candidates on one dataset, by candidate key: {key: {"nme_image_pct": ...,
    "nme_inter_ocular_pct": ..., "median_nme_inter_ocular_pct": ..., "worst_nme_inter_ocular_pct": ...,
    "worst_face": NAME}} (percent; image side = the candidate's input size)."""

    data: str
    n_images: int
    by_key: dict[str, dict[str, Any]]
    without_checkpoint: int  # complete candidates whose checkpoint is not in the run directory

    def describe(self) -> str:
        return (f"{self.data} ({self.n_images} images), every complete candidate's checkpoint evaluated on it "
                "after training; mean over seeds")


DATASET_NME_KEYS = ("nme_image_pct", "nme_inter_ocular_pct")
# beside the mean, the median and the worst face (inter-ocular) and that face's name: on a few dozen photos
# one bad face can hide in a good mean
FACE_SPREAD_KEYS = ("median_nme_inter_ocular_pct", "worst_nme_inter_ocular_pct")
WORST_FACE = "worst_face"


def checkpoint_of(record: Record, run_dir: Path) -> Path | None:
    """The candidate's checkpoint in the run directory (last.pt, else best.pt), or None."""
    folder = candidate_dir_of(run_dir, record.key)
    return next((folder / n for n in CHECKPOINT_NAMES if (folder / n).exists()), None)


def dataset_nme(records: Sequence[Record], run_dir: Path, data: Path | str, device: str = "cpu") -> DatasetNme:
    """Evaluate every complete candidate that has a checkpoint on the dataset at `data` (any format
    `open_source` reads; images resized to each candidate's input size)."""
    by_key: dict[str, dict[str, float]] = {}
    missing = n_images = 0
    for record in records:
        if record.status != Status.COMPLETE or record.key in by_key:
            continue
        ckpt = checkpoint_of(record, run_dir)
        if ckpt is None:
            missing += 1
            continue
        result, _ = evaluate_checkpoint(ckpt, data=data, device=device)
        by_key[record.key] = {**{k: float(result.summary[k]) for k in DATASET_NME_KEYS},
                              **result.face_spread("inter_ocular")}
        n_images = len(result.gt)
    return DatasetNme(str(data), n_images, by_key, missing)


def best_checkpoints(records: Sequence[Record], run_dir: Path, n_best: int,
                     metric: str = "nme_image_pct") -> BestCheckpoints:
    """The `n_best` completed candidates with the lowest `metric` that still have a checkpoint."""
    done = sorted((r for r in records if r.status == Status.COMPLETE and getattr(r, metric) is not None),
                  key=lambda r: getattr(r, metric))
    chosen: list[tuple[Record, Path]] = []
    passed_over = 0
    for record in done:
        ckpt = checkpoint_of(record, run_dir)
        if ckpt is not None:
            chosen.append((record, ckpt))
        else:
            passed_over += 1
        if len(chosen) >= n_best:
            break
    return BestCheckpoints(chosen, passed_over)


def evaluate_best(chosen: Sequence[tuple[Record, Path]], device: str = "cpu") -> list[Evaluated]:
    """Each checkpoint evaluated on its protocol's held-out faces."""
    out = []
    for record, ckpt in chosen:
        result, info = evaluate_checkpoint(ckpt, device=device)
        out.append(Evaluated(record, ckpt, result, info))
    return out


def prediction_sample(evaluated: Evaluated, want: int = 8) -> tuple[np.ndarray, list[int]]:
    """The first `want` held-out images of the checkpoint's protocol and, for each, its row in the
    evaluation result (images whose result is missing are left out)."""
    _, protocol = checkpoint_spec_protocol(load_checkpoint(evaluated.checkpoint))
    loader = build_loaders(protocol)[1]
    images, idx = [], []
    for batch in loader:
        images.append(batch["image"].numpy())
        idx.append(np.asarray(batch["index"]))
        if sum(len(i) for i in idx) >= want:
            break
    if not images:
        return np.zeros((0,)), []
    images_np = np.concatenate(images)[:want]
    indices = np.concatenate(idx)[:want]
    where = {int(i): n for n, i in enumerate(evaluated.result.indices)}
    keep = [n for n, i in enumerate(indices) if int(i) in where]
    return images_np[keep], [where[int(indices[n])] for n in keep]
