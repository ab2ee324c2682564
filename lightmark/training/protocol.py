"""Protocols: how big a run is (data, input size, schedule, seeds), as frozen, printable configs.

`smoke` is for tests (seconds, 64 px), `quick` for CPUs (minutes, 128 px), `paper` for a GPU (384 px,
the write-up's schedule). Any field can be overridden from the CLI (`key=value`) or a TOML file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lightmark.data.formats import FORMATS
from lightmark.errors import ConfigError
from lightmark.heatmaps.codecs import CODEC_NAMES
from lightmark.heatmaps.losses import ACCEPTED_LOSS_NAMES
from lightmark.layouts import LAYOUTS


# -- field rules: type and range of every field, checked whenever a protocol is built -------------
@dataclass(frozen=True)
class _Rule:
    """What one field allows: `kind` is its type, `ok` its range, `allowed` says both in words."""

    kind: str  # int | float | bool | str | str? (str or None) | floats (a sequence of numbers)
    allowed: str
    ok: Callable[[Any], bool] = lambda value: True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


_TYPE_OK: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "float": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "str?": lambda v: v is None or isinstance(v, str),
    "floats": lambda v: isinstance(v, (tuple, list)) and all(_is_number(x) for x in v),
}


def _int(low: int, what: str = "") -> _Rule:
    return _Rule("int", f"an integer >= {low}{what}", lambda v: v >= low)


def _float(low: float, *, above: bool = False, high: float | None = None, high_open: bool = False,
           what: str = "a number") -> _Rule:
    """A finite number in [low, high] (`above`: low excluded; `high_open`: high excluded)."""
    if high is None:
        allowed = f"{what} {'>' if above else '>='} {low:g}"
    else:
        allowed = f"{what} in {'(' if above else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def ok(v: float) -> bool:
        if v < low or (above and v == low):
            return False
        return high is None or v < high or (not high_open and v == high)

    return _Rule("float", allowed, ok)


def _choice(names: tuple[str, ...] | Any, what: str = "one of") -> _Rule:
    return _Rule("str", f"{what} {', '.join(names)}", lambda v: v in names)


_PROBABILITY = _float(0.0, high=1.0, what="a probability")
_BOOL = _Rule("bool", "true or false")
_NON_NEGATIVE = _float(0.0)

_AUGMENT_RULES: dict[str, _Rule] = {
    "flip": _BOOL, "flip_p": _PROBABILITY,
    "rotate": _BOOL, "rotate_limit_deg": _float(0.0, high=180.0, what="degrees"), "rotate_p": _PROBABILITY,
    "color_jitter": _BOOL, "color_jitter_p": _PROBABILITY,
    "brightness": _NON_NEGATIVE, "contrast": _NON_NEGATIVE, "saturation": _NON_NEGATIVE,
    "hue": _float(0.0, high=0.5),  # albumentations' ColorJitter takes hue in [0, 0.5]
    "pad": _BOOL, "pad_p": _PROBABILITY, "pad_max_fraction": _float(0.0, high=1.0, what="a fraction"),
    "blur": _BOOL, "blur_p": _PROBABILITY, "blur_sigma_max": _float(0.0, above=True),
    "erase": _BOOL, "erase_p": _PROBABILITY,
    "erase_max_fraction": _float(0.0, above=True, high=1.0, what="a fraction"),
}

_PROTOCOL_RULES: dict[str, _Rule] = {
    "name": _Rule("str", "a non-empty name", lambda v: bool(v.strip())),
    "input_size": _Rule("int", "a multiple of 4, at least 20 (heatmaps of 5 cells or more)",
                        lambda v: v >= 20 and v % 4 == 0),
    "epochs": _int(1),
    "batch_size": _int(1),
    "train_samples": _int(0, " (0: all)"),
    "val_samples": _int(0, " (0: all)"),
    "lr": _float(0.0, above=True),
    "warmup": _NON_NEGATIVE,
    "milestones": _Rule("floats", "a list of numbers >= 0", lambda v: all(x >= 0 for x in v)),
    "milestone_lrs": _Rule("floats", "a list of numbers > 0", lambda v: all(x > 0 for x in v)),
    "schedule_unit": _choice(("steps", "fraction")),
    "weight_decay": _NON_NEGATIVE,
    "grad_clip": _float(0.0, what="a number (0: off)"),
    "codec": _choice(CODEC_NAMES),  # the codec registry's names
    "loss": _choice(ACCEPTED_LOSS_NAMES),  # the loss registry's names and aliases
    "loss_weight": _NON_NEGATIVE,
    "seed": _int(0),
    "data": _Rule("str?", "a dataset path (or absent: the synthetic faces)"),
    "data_format": _choice(("synthetic", *FORMATS)),
    "val_data": _Rule("str?", "a dataset path (or absent: split val_fraction off the data)"),
    "val_fraction": _float(0.0, above=True, high=1.0, high_open=True, what="a fraction"),
    "num_workers": _int(0),
    "amp": _BOOL,
    "channels_last": _BOOL,
    "eval_every": _int(1, " (epochs)"),
    "layout": _choice(("auto", *LAYOUTS)),
    "image_root": _Rule("str?", "a folder path (or absent: the list's folder)"),
}


def _check_fields(obj: Any, rules: dict[str, _Rule], prefix: str) -> None:
    """Raise ConfigError naming the first field whose value breaks its rule (type, then range).

    Lists become tuples (a frozen config must hash); no other value is converted, so a preset's
    canonical JSON (and the candidate keys hashed from it) stays what it was."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        if not (_TYPE_OK[rule.kind](value) and rule.ok(value)):
            raise ConfigError(f"protocol field {prefix}{name}={value!r} is not allowed: must be {rule.allowed}")
        if isinstance(value, list):
            object.__setattr__(obj, name, tuple(value))


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

    def __post_init__(self) -> None:
        _check_fields(self, _AUGMENT_RULES, "augment.")


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
        if not isinstance(self.augment, AugmentConfig):
            raise ConfigError(f"protocol field augment={self.augment!r} is not allowed: must be a table of "
                              "augment.* fields")
        _check_fields(self, _PROTOCOL_RULES, "")
        if len(self.milestones) != len(self.milestone_lrs):
            raise ConfigError(f"protocol fields milestones={list(self.milestones)} and "
                              f"milestone_lrs={list(self.milestone_lrs)} must have the same length")
        if self.schedule_unit == "fraction":
            for key in ("warmup", "milestones"):
                value = getattr(self, key)
                if any(x > 1 for x in (value if isinstance(value, tuple) else (value,))):
                    raise ConfigError(f"protocol field {key}={value!r} is not allowed: with "
                                      "schedule_unit='fraction' it must be a fraction of the run in [0, 1]")

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, default in _OMITTED_AT_DEFAULT.items():
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
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

    def override(self, updates: dict[str, Any]) -> Protocol:
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

    def override_from_strings(self, items: list[str]) -> Protocol:
        """CLI form: `--set epochs=3 --set augment.erase=true`; values parsed as TOML literals."""
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

    def override_from_toml(self, path: Path) -> Protocol:
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
