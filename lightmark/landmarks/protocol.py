"""Protocols: how big a run is (data, input size, schedule, seeds), as frozen, printable configs.

`smoke` is for tests (seconds, 64 px), `quick` for CPUs (minutes, 128 px), `paper` for a GPU (384 px,
the write-up's schedule). Any field can be overridden from the CLI (`key=value`) or a TOML file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lightmark.errors import ConfigError
from lightmark.layouts import LAYOUTS


@dataclass(frozen=True)
class AugmentConfig:
    """The paper's six augmentations, each switchable; probabilities and ranges per transform."""

    flip: bool = True
    flip_p: float = 0.5
    rotate: bool = True
    rotate_limit_deg: float = 30.0
    rotate_p: float = 0.5
    color_jitter: bool = True
    color_jitter_p: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.05
    pad: bool = True
    pad_p: float = 0.3
    pad_max_fraction: float = 0.15  # pad up to this fraction of the side, then resize back
    blur: bool = True
    blur_p: float = 0.2
    blur_sigma_max: float = 1.5
    erase: bool = False  # the paper's Table 5 ablation switches this
    erase_p: float = 0.5
    erase_max_fraction: float = 0.3  # of the face box side


@dataclass(frozen=True)
class Protocol:
    """Everything that decides a training + evaluation run besides the architecture."""

    name: str
    input_size: int
    epochs: int
    batch_size: int
    train_samples: int  # synthetic: faces 0..n-1 of the train seed; real data: cap (0 = all)
    val_samples: int  # synthetic: held-out faces from a different seed; real: cap (0 = all)
    lr: float = 1e-4
    warmup: float = 2000  # steps when schedule_unit == "steps", else a fraction of all steps
    milestones: tuple[float, ...] = (80_000, 120_000)
    milestone_lrs: tuple[float, ...] = (5e-5, 2e-5)
    schedule_unit: str = "steps"  # "steps" (absolute, the paper) or "fraction" (of the run)
    weight_decay: float = 1e-6
    grad_clip: float = 5.0
    codec: str = "subpixel"  # plain | offset | subpixel
    loss: str = "weighted_mse"  # mse | weighted_mse | awing
    loss_weight: float = 10.0  # W in the weight map W*M + 1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0  # model init, data order, augmentation
    data: str | None = None  # None: embedded synthetic faces; else a dataset path
    data_format: str = "auto"  # auto | synthetic | challenge | pts | wflw | cofw | facesynthetics
    val_data: str | None = None  # real data: a separate held-out set; None: split val_fraction
    val_fraction: float = 0.1
    num_workers: int = 0
    amp: bool = True  # CUDA only: bf16 where supported, else fp16 with a scaler
    channels_last: bool = True  # CUDA only
    eval_every: int = 1  # epochs
    # Added with the layouts; `to_dict` leaves them out at their defaults so the candidate keys,
    # caches and checkpoints of every earlier protocol stay what they were.
    layout: str = "auto"  # auto: the data's own (synthetic faces: ibug68); else a lightmark.layouts name
    image_root: str | None = None  # where a WFLW list's image paths start (None: the list's folder)

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % 4:
            raise ConfigError(f"input_size must be a positive multiple of 4, got {self.input_size}")
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.schedule_unit not in ("steps", "fraction"):
            raise ConfigError(f"schedule_unit must be 'steps' or 'fraction', got {self.schedule_unit!r}")
        if len(self.milestones) != len(self.milestone_lrs):
            raise ConfigError("milestones and milestone_lrs must have the same length")
        if self.codec not in ("plain", "offset", "subpixel"):
            raise ConfigError(f"codec must be plain, offset or subpixel, got {self.codec!r}")
        if self.loss not in ("mse", "weighted_mse", "awing"):
            raise ConfigError(f"loss must be mse, weighted_mse or awing, got {self.loss!r}")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be auto or one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, default in _OMITTED_AT_DEFAULT.items():
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Protocol":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown protocol key(s): {', '.join(sorted(unknown))}")
        aug = data.get("augment", {})
        if isinstance(aug, dict):
            data["augment"] = _build(AugmentConfig, aug, "augment.")
        for key in ("milestones", "milestone_lrs"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def canonical_json(self) -> str:
        """Stable text used in candidate hashes: same protocol, same text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def override(self, updates: dict[str, Any]) -> "Protocol":
        """Apply `{"epochs": 3, "augment.erase": True}`-style updates (values already typed)."""
        merged = dataclasses.asdict(self)
        for dotted, value in updates.items():
            target, keys = merged, dotted.split(".")
            for key in keys[:-1]:
                if not isinstance(target.get(key), dict):
                    raise ConfigError(f"unknown protocol key {dotted!r}")
                target = target[key]
            if keys[-1] not in target:
                raise ConfigError(f"unknown protocol key {dotted!r}")
            target[keys[-1]] = value
        return Protocol.from_dict(merged)

    def override_from_strings(self, items: list[str]) -> "Protocol":
        """CLI form: `--set epochs=3 --set augment.erase=true`; values parsed as TOML literals."""
        import tomllib

        updates: dict[str, Any] = {}
        for item in items:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value")
            key, raw = item.split("=", 1)
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw  # bare strings
            updates[key.strip()] = value
        return self.override(updates)

    def override_from_toml(self, path: Path) -> "Protocol":
        import tomllib

        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such protocol file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        try:
            return self.override(flat)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


_OMITTED_AT_DEFAULT: dict[str, Any] = {"layout": "auto", "image_root": None}


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown protocol key(s): {', '.join(prefix + k for k in sorted(unknown))}")
    return cls(**data)


PROTOCOLS: dict[str, Protocol] = {
    "smoke": Protocol(
        name="smoke", input_size=64, epochs=2, batch_size=8, train_samples=32, val_samples=16,
        lr=1e-3, warmup=0.1, milestones=(0.6, 0.85), milestone_lrs=(5e-4, 2e-4),
        schedule_unit="fraction",
    ),
    "quick": Protocol(
        name="quick", input_size=128, epochs=5, batch_size=16, train_samples=1600, val_samples=200,
        lr=1e-3, warmup=0.05, milestones=(0.6, 0.85), milestone_lrs=(5e-4, 2e-4),
        schedule_unit="fraction",
    ),
    # the tabular benchmark's (`lightmark bench tabulate`): every architecture of a ~100-spec space,
    # a minute each on one core, evaluated every epoch so the table holds learning curves
    "tabular": Protocol(
        name="tabular", input_size=64, epochs=8, batch_size=16, train_samples=960, val_samples=200,
        lr=1e-3, warmup=0.05, milestones=(0.6, 0.85), milestone_lrs=(5e-4, 2e-4),
        schedule_unit="fraction",
    ),
    "paper": Protocol(
        name="paper", input_size=384, epochs=20, batch_size=8, train_samples=20_000,
        val_samples=1_000, lr=1e-4, warmup=2000, milestones=(80_000, 120_000),
        milestone_lrs=(5e-5, 2e-5), schedule_unit="steps", num_workers=4,
    ),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}") from None


def with_name(protocol: Protocol, name: str) -> Protocol:
    return replace(protocol, name=name)
