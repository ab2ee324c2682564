"""The trainer: a spec of any family + a Protocol -> a trained network, checkpoints and a JSONL log.

The paper's recipe: RMSprop with linear warm-up and step decay (`schedule.py`), weight decay on
conv/linear weights only, gradient clipping, all stacks supervised. Heatmaps are encoded in batches on
the training device by the protocol's codec; uint8 images are normalised there too. On CUDA it uses
mixed precision (bf16, else fp16 + GradScaler), channels_last, cudnn autotuning, pinned memory and
non-blocking copies; `precision="bf16"` runs the same autocast + channels_last path on the CPU.

Every evaluated epoch writes `last.pt` (and `best.pt` when the image-normalised NME improved)
atomically with everything a resume needs; data order and augmentation depend only on (seed, epoch,
index), so `resume=True` continues from the last finished epoch and ends with the same weights as an
uninterrupted run (on the CPU). A per-epoch `callback(epoch, metrics)` may raise (e.g. optuna's
TrialPruned): training stops after the checkpoint is written and the exception propagates.
"""

from __future__ import annotations

import json
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from lightmark.atomic import append_line, write_json_atomic
from lightmark.device import (
    Precision,
    autocast,
    configure_backend,
    describe,
    intra_op_threads,
    make_scaler,
    resolve_device,
    resolve_precision,
    use_channels_last,
)
from lightmark.errors import ConfigError, DataError, NonFiniteLossError, SpecError
from lightmark.heatmaps.codecs import get_codec
from lightmark.heatmaps.losses import get_loss
from lightmark.layouts import Layout
from lightmark.models.specs import AnySpec, build_network, spec_from_dict
from lightmark.training.checkpoint import load_checkpoint, make_state, restore_rng_state, save_checkpoint
from lightmark.training.dataset import build_loaders, check_points, make_loader, set_epoch
from lightmark.training.evaluate import EvalResult, eval_batch_size, evaluate_model, prepare_images
from lightmark.training.protocol import Protocol
from lightmark.training.schedule import build_scheduler

Callback = Callable[[int, dict], None]
LOG_NAME = "log.jsonl"
BEST_NAME = "best.pt"
LAST_NAME = "last.pt"
MEAN_SHAPE_SAMPLES = 5000  # the mean shape of this many training faces is plenty


@dataclass
class TrainResult:
    """What a run produced. `model` holds the LAST epoch's weights (best ones are in best.pt)."""

    model: nn.Module
    best_metrics: dict[str, Any]
    last_metrics: dict[str, Any]
    epochs_done: int
    train_seconds: float
    history: list[dict[str, Any]]
    out_dir: Path
    device: str = "cpu"
    precision: str = "fp32"
    best_epoch: int = 0
    baseline: dict[str, float] | None = None  # the mean-shape baseline on the validation faces
    global_step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST_NAME

    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST_NAME


# -- helpers -------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only; norms (BN, GN, LN), biases and the rest go free."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            is_weight = name == "weight" and isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))
            (decay if is_weight else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, protocol: Protocol) -> torch.optim.Optimizer:
    # foreach: one multi-tensor kernel per update instead of a Python loop over the ~200-400
    # parameters (torch defaults to it on CUDA only; it is faster on the CPU too, docs/training.md)
    return torch.optim.RMSprop(parameter_groups(model, protocol.weight_decay), lr=protocol.lr, foreach=True)


def mean_training_shape(loader: Any, limit: int = MEAN_SHAPE_SAMPLES) -> np.ndarray | None:
    """Average un-augmented training shape (K,2 input px) from the loader's source.

    Reads `source.points` when the source keeps all annotations, else renders/reads up to `limit`
    samples (for cached synthetic faces this also fills the cache the first epoch would fill)."""
    dataset = getattr(loader, "dataset", None)
    source = getattr(dataset, "source", None)
    if source is None:
        return None
    points = getattr(source, "points", None)
    if isinstance(points, (np.ndarray, torch.Tensor)) and np.ndim(points) == 3:
        return np.asarray(points, dtype=np.float64).mean(0).astype(np.float32)
    n = min(len(source), limit)
    if n == 0:
        return None
    total = None
    for i in range(n):
        p = np.asarray(source[i].points, dtype=np.float64)
        total = p if total is None else total + p
    return (total / n).astype(np.float32)


def _prefetch(iterable: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Produce batches in a background thread so augmentation (cv2/numpy, GIL released) overlaps
    the training step. Order and content are unchanged; stops cleanly if the consumer stops."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def worker() -> None:
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            buffer.put(exc)

    thread = threading.Thread(target=worker, name="lightmark-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


class _Bar:
    """A rich progress bar on stderr with loss, NME, images/s and ETA (or nothing)."""

    def __init__(self, enabled: bool, total: int, completed: int, title: str) -> None:
        self.progress = None
        if not enabled:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self.task = self.progress.add_task(title, total=total, completed=completed, info="")
        self.progress.start()

    def update(self, advance: int = 0, **fields: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=advance, **fields)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _append_jsonl(path: Path, entry: dict) -> None:
    append_line(path, json.dumps(entry, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _float(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


# -- the loop ------------------------------------------------------------------------------------
class Trainer:
    """One training run's state. `train()` is the function to call; this class keeps it readable."""

    def __init__(self, spec: AnySpec, protocol: Protocol, out_dir: Path | str, *, device: str = "auto",
                 precision: str = "auto", progress: bool = True, prefetch: bool = True,
                 loaders: tuple[Any, Any] | None = None) -> None:
        spec.check_input_size(protocol.input_size)
        self.spec, self.protocol = spec, protocol
        self.out_dir = Path(out_dir)
        self.device = resolve_device(device)
        self.precision: Precision = resolve_precision(precision, self.device, protocol.amp)
        self.channels_last = use_channels_last(self.device, self.precision, protocol.channels_last)
        self.progress_enabled = progress
        self.prefetch = prefetch
        configure_backend(self.device)

        seed_everything(protocol.seed)
        self.model = build_network(spec).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if loaders is None:
            loaders = build_loaders(protocol, pin_memory=self.device.type == "cuda")
        self.train_loader, self.val_loader = loaders
        self.layout: Layout | None = getattr(getattr(self.val_loader, "dataset", None), "layout", None)
        if self.layout is not None:
            check_points(spec.n_landmarks, self.layout, protocol, f"spec {spec}")
        if isinstance(self.val_loader, torch.utils.data.DataLoader) and \
                eval_batch_size(protocol) > (self.val_loader.batch_size or 0):
            self.val_loader = make_loader(self.val_loader.dataset, batch_size=eval_batch_size(protocol),
                                          shuffle=False, seed=protocol.seed, num_workers=protocol.num_workers,
                                          pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"train_samples={protocol.train_samples} gives no full batch of batch_size={protocol.batch_size}"
            )
        self.total_steps = self.steps_per_epoch * protocol.epochs
        self.optimizer = build_optimizer(self.model, protocol)
        self.scheduler, self.schedule = build_scheduler(self.optimizer, protocol, self.total_steps)
        self.scaler = make_scaler(self.device, self.precision)
        self.codec = get_codec(protocol.codec, protocol.input_size)
        self.loss_fn = get_loss(protocol.loss, weight=protocol.loss_weight)
        self.loss_uses_mask = protocol.loss != "mse"  # the weight map's dilation mask

        self.epoch = 0  # finished epochs
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.train_seconds = 0.0
        self.mean_shape: np.ndarray | None = None
        self.baseline: dict[str, float] | None = None

    # -- checkpoints -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return make_state(
            model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            epoch=self.epoch, global_step=self.global_step, history=self.history,
            spec=self.spec.to_dict(), protocol=self.protocol.to_dict(), mean_shape=self.mean_shape,
            best=self.best,
            extra={"train_seconds": self.train_seconds, "baseline": self.baseline,
                   "precision": self.precision.name, "device": describe(self.device)},
        )

    def resume_from(self, path: Path) -> None:
        state = load_checkpoint(path, map_location="cpu")
        try:  # compared as specs: a checkpoint saved before a field existed holds that field's default
            saved = spec_from_dict(dict(state["spec"]))
        except (SpecError, TypeError) as exc:
            raise DataError(f"{path}: the checkpoint's spec is unreadable ({exc})") from None
        if saved != self.spec:
            raise ConfigError(f"{path}: checkpoint is for spec {saved}, not {self.spec}; resume it as {saved}, "
                              f"or train {self.spec} into another --out")
        if Protocol.from_dict(state["protocol"]).to_dict() != self.protocol.to_dict():
            raise ConfigError(f"{path}: checkpoint was trained with a different protocol; "
                              "resume with the same protocol and overrides, or start a new --out")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = list(state["history"])
        self.best = dict(state.get("best") or {})
        extra = state.get("extra") or {}
        self.train_seconds = float(extra.get("train_seconds", 0.0))
        self.baseline = extra.get("baseline")
        if state.get("mean_shape") is not None:
            self.mean_shape = state["mean_shape"].numpy()
        restore_rng_state(state["rng"])

    # -- one epoch ---------------------------------------------------------------------------------
    def _train_epoch(self, bar: _Bar) -> dict[str, float]:
        set_epoch(self.train_loader, self.epoch)
        self.model.train()
        batches = _prefetch(self.train_loader) if self.prefetch else iter(self.train_loader)
        loss_sum, n_images, n_steps = 0.0, 0, 0
        start = time.perf_counter()
        for batch in batches:
            loss_value = self._step(batch)
            n = int(batch["image"].shape[0])
            loss_sum += loss_value
            n_images += n
            n_steps += 1
            elapsed = time.perf_counter() - start
            last_nme = self.history[-1].get("nme_image_pct") if self.history else None
            bar.update(advance=1, info=(
                f"loss {loss_sum / n_steps:.4g}  NME {'-' if last_nme is None else f'{last_nme:.2f}%'}  "
                f"{n_images / max(elapsed, 1e-9):.1f} img/s"))
        seconds = time.perf_counter() - start
        return {
            "train_loss": loss_sum / max(n_steps, 1),
            "train_images": n_images,
            "train_epoch_seconds": seconds,
            "images_per_s": n_images / max(seconds, 1e-9),
        }

    def _step(self, batch: dict) -> float:
        return self.optimise(*self.prepare(batch))

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """uint8 images and points from the loader -> normalised input, target heatmaps and (for the
        weighted losses) the weight map's dilation mask, on the device. Everything that depends on the
        target alone is made here, once per batch, not inside the optimiser step."""
        x = prepare_images(batch["image"], self.device, self.channels_last)
        points = batch["points"].to(self.device, non_blocking=True).float()
        with torch.no_grad():
            if self.loss_uses_mask:
                target, mask = self.codec.encode_with_mask(points)
            else:
                target, mask = self.codec.encode(points), None
        return x, target, mask

    def optimise(self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
        """One optimizer step (forward, loss, backward, clip, step, schedule); returns the loss."""
        with autocast(self.device, self.precision):
            outputs = self.model(x)
        loss = self.loss_fn(list(outputs), target, mask)
        value = float(loss.detach())
        if not math.isfinite(value):
            err = NonFiniteLossError(
                f"non-finite training loss ({value}) at step {self.global_step} (epoch {self.epoch + 1}); "
                f"lower --set lr=... or check the data"
            )
            err.step = self.global_step
            raise err
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.protocol.grad_clip and self.protocol.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.protocol.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.global_step += 1
        return value

    def evaluate(self) -> EvalResult:
        return evaluate_model(
            self.model, self.val_loader, self.codec, self.device, precision=self.precision,
            channels_last=self.channels_last, mean_shape=self.mean_shape,
            image_size=self.protocol.input_size, layout=self.layout,
        )

    # -- the run ----------------------------------------------------------------------------------
    def run(self, callback: Callback | None = None) -> TrainResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out_dir / "config.json", {
            "spec": str(self.spec), "spec_fields": self.spec.to_dict(), "protocol": self.protocol.to_dict(),
            "device": describe(self.device), "precision": self.precision.name,
            "channels_last": self.channels_last, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "schedule": {
                "lr": self.schedule.lr, "warmup_steps": self.schedule.warmup_steps,
                "milestones": list(self.schedule.milestones), "milestone_lrs": list(self.schedule.milestone_lrs)},
        })
        if self.mean_shape is None:
            self.mean_shape = mean_training_shape(self.train_loader)
        log_path = self.out_dir / LOG_NAME
        if self.epoch == 0:
            log_path.unlink(missing_ok=True)  # a fresh run: no lines from an earlier run in this folder
        bar = _Bar(self.progress_enabled, self.total_steps, self.global_step,
                   f"train {self.spec} [{self.protocol.name}]")
        try:
            while self.epoch < self.protocol.epochs:
                lr = self.optimizer.param_groups[0]["lr"]
                stats = self._train_epoch(bar)
                self.train_seconds += stats["train_epoch_seconds"]
                self.epoch += 1
                last_epoch = self.epoch == self.protocol.epochs
                evaluated = last_epoch or self.epoch % max(1, self.protocol.eval_every) == 0
                entry: dict[str, Any] = {"epoch": self.epoch, "global_step": self.global_step, "lr": lr,
                                         **stats, "train_seconds": self.train_seconds}
                if evaluated:
                    result = self.evaluate()
                    entry.update({k: _float(v) for k, v in result.summary.items()})
                    entry["eval_seconds"] = result.seconds
                    if result.baseline is not None:
                        self.baseline = result.baseline
                        entry["baseline_nme_image_pct"] = result.baseline.get("nme_image_pct")
                self.history.append(entry)
                is_best = evaluated and (
                    not self.best or entry["nme_image_pct"] < self.best.get("nme_image_pct", math.inf))
                if is_best:
                    self.best = dict(entry)
                state = self._state()
                save_checkpoint(self.out_dir / LAST_NAME, state)
                if is_best:
                    save_checkpoint(self.out_dir / BEST_NAME, state)
                _append_jsonl(log_path, entry)
                if evaluated and callback is not None:
                    callback(self.epoch, dict(entry))
        finally:
            bar.close()
        fallback = self.history[-1] if self.history else {}
        last = next((h for h in reversed(self.history) if "nme_image_pct" in h), fallback)
        return TrainResult(
            model=self.model, best_metrics=dict(self.best), last_metrics=dict(last), epochs_done=self.epoch,
            train_seconds=self.train_seconds, history=list(self.history), out_dir=self.out_dir,
            device=describe(self.device), precision=self.precision.name,
            best_epoch=int(self.best.get("epoch", 0)), baseline=self.baseline, global_step=self.global_step,
        )


def train(
    spec: AnySpec,
    protocol: Protocol,
    out_dir: Path | str,
    *,
    device: str = "auto",
    resume: bool = False,
    callback: Callback | None = None,
    progress: bool = True,
    precision: str = "auto",
    prefetch: bool = True,
    loaders: tuple[Any, Any] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train `spec` under `protocol`, writing config.json, log.jsonl, best.pt and last.pt to `out_dir`.

    `resume=True` continues from `out_dir/last.pt` when it exists (same spec and protocol required);
    a finished run returns at once. `callback(epoch, metrics)` runs after each evaluation (epochs
    counted from 1); whatever it raises propagates after the checkpoint is written. A NaN/inf loss
    raises NonFiniteLossError (with `.step`). `loaders` replaces build_loaders(protocol) (tests, bench).
    `threads` sets torch's CPU thread count for the run (None: unchanged).
    """
    with intra_op_threads(threads):
        trainer = Trainer(spec, protocol, out_dir, device=device, precision=precision, progress=progress,
                          prefetch=prefetch, loaders=loaders)
        last_path = Path(out_dir) / LAST_NAME
        if resume and last_path.exists():
            trainer.resume_from(last_path)
        return trainer.run(callback)
