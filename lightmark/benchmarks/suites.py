"""The paper's five ablation tables as experiment suites: data, not code.

Each suite row says what to build (a ModelSpec, or nothing for a codec round trip), which protocol
fields it changes (codec, loss, erasing) and what the paper reported for it. The paper's numbers
are read from the packaged `paper_tables.csv` (never retyped), so a table can put them beside ours
unchanged. The suites are the paper's architectures; the protocol decides how expensive a run is.

The paper's Tables 1-4 were trained with plain MSE and the offset kernel and without erasing, so
those rows set `loss=mse`, `codec=offset`, `augment.erase=false`: the s2-d4-c128 baseline of
Tables 1-4 is then one candidate (one candidate key) and is trained once. The paper does not say
which architecture Table 5 used; we use its best Table 2 model, s2-d4-c128-ca-cc, with weighted
MSE and the offset kernel (its final setting) and say so in the table's caption.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from lightmark.benchmarks.record import candidate_key
from lightmark.errors import ConfigError, LightmarkError
from lightmark.heatmaps.codecs import get_codec
from lightmark.metrics import nme
from lightmark.models.registry import PRESETS
from lightmark.models.spec import DEFAULT_N_LANDMARKS, ModelSpec
from lightmark.models.specs import AnySpec
from lightmark.paper import paper_row
from lightmark.training.dataset import LandmarkDataset, build_sources
from lightmark.training.protocol import Protocol

TABLE_NAMES = ("table1", "table2", "table3", "table4", "table5")
EXTRA_SUITES = ("challenge",)  # ours, not the paper's: `ablate all` runs the paper's five
KINDS = ("train", "roundtrip")  # roundtrip: encode + decode ground truth with a codec, no model


@dataclass(frozen=True)
class SuiteRow:
    """One row of an ablation table: what to run, and the paper's numbers for it (if any)."""

    label: str  # unique inside the suite; the first column of the table
    config: tuple[tuple[str, str], ...]  # the paper's configuration columns, as shown
    kind: str = "train"  # train | roundtrip
    spec: AnySpec | None = None  # None for roundtrip rows
    overrides: tuple[tuple[str, Any], ...] = ()  # protocol fields: codec, loss, augment.erase
    group: str = ""  # rows are compared with the baseline of their group
    baseline: bool = False  # the row every other row of its group is compared with
    paper: tuple[int, int] | None = None  # (table, row) in paper_tables.csv; None: our extra row
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == "train") != (self.spec is not None):
            raise ValueError(f"row {self.label!r}: train rows need a spec, roundtrip rows none")

    @property
    def extra(self) -> bool:
        """Not in the paper: our addition (sub-pixel codec, Adaptive Wing)."""
        return self.paper is None

    @property
    def paper_size_mb(self) -> float | None:
        return paper_row(*self.paper).model_size_mb if self.paper else None

    @property
    def paper_nme_pct(self) -> float | None:
        return paper_row(*self.paper).test_nme if self.paper else None

    @property
    def codec(self) -> str | None:
        return dict(self.overrides).get("codec")

    def skip_reason(self, base: Protocol) -> str | None:
        """Why this row cannot run under `base` (e.g. depth 5 on a 64 px input), or None."""
        if self.spec is None:
            return None
        try:
            self.spec.check_input_size(base.input_size)
        except LightmarkError as exc:
            return f"skipped: {exc}"
        return None

    def protocol(self, base: Protocol, seed: int | None = None) -> Protocol:
        """The base protocol with this row's fields (and the seed) applied."""
        updates = dict(self.overrides)
        if seed is not None:
            updates["seed"] = seed
        return base.override(updates) if updates else base


@dataclass(frozen=True)
class Suite:
    name: str  # table1..table5
    title: str
    caption: str  # what the table shows and how it was configured (written into MD/LaTeX)
    config_columns: tuple[str, ...]
    rows: tuple[SuiteRow, ...]

    def __post_init__(self) -> None:
        labels = [row.label for row in self.rows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"{self.name}: duplicate row labels")
        for group in {row.group for row in self.rows}:
            if sum(row.baseline for row in self.rows if row.group == group) != 1:
                raise ValueError(f"{self.name}: group {group!r} needs exactly one baseline row")

    def baseline_of(self, row: SuiteRow) -> SuiteRow:
        return next(r for r in self.rows if r.group == row.group and r.baseline)

    @property
    def train_rows(self) -> tuple[SuiteRow, ...]:
        return tuple(r for r in self.rows if r.kind == "train")


# The paper's training setting for Tables 1-4 (and our choice for Table 5, see the module docstring).
PAPER_ABLATION = (("codec", "offset"), ("loss", "mse"), ("augment.erase", False))
FINAL_SETTING = (("codec", "offset"), ("loss", "weighted_mse"))
TABLE5_SPEC = ModelSpec.parse("s2-d4-c128-ca-cc")
BASE_SPEC = ModelSpec.parse("s2-d4-c128")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _attention_name(name: str) -> str:
    return {"none": "-", "se": "SE", "ca": "CA"}[name]


def _table1() -> Suite:
    rows = []
    for number in range(1, 7):
        p = paper_row(1, number)
        spec = ModelSpec(n_stacks=int(p.config["n_stacks"]), depth=int(p.config["depth"]),
                         channels=int(p.config["channels"]))
        rows.append(SuiteRow(
            label=str(spec), spec=spec, overrides=PAPER_ABLATION, paper=(1, number),
            config=(("Stacks", str(spec.n_stacks)), ("Depth", str(spec.depth)),
                    ("Channels", str(spec.channels))),
            baseline=spec == BASE_SPEC,
        ))
    return Suite(
        name="table1", title="Table 1: basic structure (stacks, depth, channels)",
        caption="Stacked-hourglass stacks / depth / channels, trained with plain MSE and the offset "
                "kernel, no erasing (the paper's setting). Baseline: s2-d4-c128, the paper's pick.",
        config_columns=("Stacks", "Depth", "Channels"), rows=tuple(rows),
    )


def _table2() -> Suite:
    rows = []
    for number in range(1, 7):
        p = paper_row(2, number)
        spec = ModelSpec(n_stacks=int(p.config["n_stacks"]), depth=int(p.config["depth"]),
                         channels=int(p.config["channels"]), attention=p.config["attention"],
                         coordconv=p.config["coordconv"] == "true")
        rows.append(SuiteRow(
            label=str(spec), spec=spec, overrides=PAPER_ABLATION, paper=(2, number),
            config=(("Attention", _attention_name(spec.attention)), ("CoordConv", _yes(spec.coordconv))),
            baseline=number == 1,
        ))
    return Suite(
        name="table2", title="Table 2: extra structure (SE, CA, CoordConv) on s2-d4-c128",
        caption="Attention blocks and CoordConv on s2-d4-c128, trained with plain MSE and the offset "
                "kernel, no erasing (the paper's setting). Baseline: no extra structure.",
        config_columns=("Attention", "CoordConv"), rows=tuple(rows),
    )


def _table3() -> Suite:
    def cfg(codec: str, task: str) -> tuple[tuple[str, str], ...]:
        kernel = {"plain": "plain", "offset": "with offset", "subpixel": "sub-pixel (ours)"}[codec]
        return (("Task", task), ("Kernel", kernel))

    base = (("loss", "mse"), ("augment.erase", False))
    rows = (
        SuiteRow(label="round trip, plain", kind="roundtrip", overrides=(("codec", "plain"),),
                 config=cfg("plain", "GT round trip"), group="roundtrip", baseline=True, paper=(3, 1),
                 note="encode + decode the ground truth, no model"),
        SuiteRow(label="round trip, offset", kind="roundtrip", overrides=(("codec", "offset"),),
                 config=cfg("offset", "GT round trip"), group="roundtrip", paper=(3, 2),
                 note="encode + decode the ground truth, no model"),
        SuiteRow(label="round trip, subpixel", kind="roundtrip", overrides=(("codec", "subpixel"),),
                 config=cfg("subpixel", "GT round trip"), group="roundtrip",
                 note="ours, not in the paper"),
        SuiteRow(label="s2-d4-c128, plain", spec=BASE_SPEC, overrides=(("codec", "plain"), *base),
                 config=cfg("plain", "prediction"), group="prediction", baseline=True, paper=(3, 3)),
        SuiteRow(label="s2-d4-c128, offset", spec=BASE_SPEC, overrides=(("codec", "offset"), *base),
                 config=cfg("offset", "prediction"), group="prediction", paper=(3, 4)),
        SuiteRow(label="s2-d4-c128, subpixel", spec=BASE_SPEC, overrides=(("codec", "subpixel"), *base),
                 config=cfg("subpixel", "prediction"), group="prediction", note="ours, not in the paper"),
    )
    return Suite(
        name="table3", title="Table 3: heatmap kernel (plain vs Gaussian with offset)",
        caption="Round trip: the held-out ground-truth points encoded to heatmaps and decoded again "
                "(no model), at the protocol's input size. Prediction: s2-d4-c128 trained with plain MSE "
                "and each codec, no erasing. Each half is compared with its plain-kernel row. The "
                "sub-pixel rows are ours (not in the paper).",
        config_columns=("Task", "Kernel"), rows=rows,
    )


def _table4() -> Suite:
    rows = (
        SuiteRow(label="MSE", spec=BASE_SPEC, overrides=PAPER_ABLATION, config=(("Loss", "MSE"),),
                 baseline=True, paper=(4, 1)),
        SuiteRow(label="weighted MSE", spec=BASE_SPEC,
                 overrides=(("codec", "offset"), ("loss", "weighted_mse"), ("augment.erase", False)),
                 config=(("Loss", "weighted MSE"),), paper=(4, 2)),
        SuiteRow(label="Adaptive Wing", spec=BASE_SPEC,
                 overrides=(("codec", "offset"), ("loss", "awing"), ("augment.erase", False)),
                 config=(("Loss", "Adaptive Wing (ours)"),), note="ours, not in the paper"),
    )
    return Suite(
        name="table4", title="Table 4: loss (MSE vs weighted MSE)",
        caption="s2-d4-c128 with the offset kernel, no erasing. The weighted MSE weighs heatmap pixels "
                "near the targets by W*M + 1 (the protocol's loss_weight). Adaptive Wing is ours, not "
                "in the paper.",
        config_columns=("Loss",), rows=rows,
    )


def _table5() -> Suite:
    rows = tuple(
        SuiteRow(label=f"{'with' if erase else 'without'} erasing", spec=TABLE5_SPEC,
                 overrides=(*FINAL_SETTING, ("augment.erase", erase)),
                 config=(("Erasing", _yes(erase)),), baseline=not erase, paper=(5, 2 if erase else 1))
        for erase in (False, True)
    )
    return Suite(
        name="table5", title="Table 5: random erasing augmentation",
        caption="The paper does not state the architecture of this table; we use s2-d4-c128-ca-cc (its "
                "best Table 2 model) with weighted MSE and the offset kernel. Erasing blanks a random "
                "patch inside the face box (protocol augment.erase_*).",
        config_columns=("Erasing",), rows=rows,
    )


# The challenge's other entries by their own READMEs (size in MB, test NME in % of 384 px, each with its
# own recipe): what each preset stands in for. Not the paper's numbers, so not in paper_tables.csv.
CHALLENGE_ENTRIES = (
    ("challenge-mnv3-small", "MobileNetV3-small", "4 MB, 2.68 %"),
    ("challenge-mnv3-large", "MobileNetV3-large", "7.4 MB, 2.45 %"),
    ("challenge-shufflenetv2", "ShuffleNetV2", "11 MB, 2.48 %"),
    ("challenge-mnv2", "MobileNetV2 (PFLD's backbone)", "13 MB, 2.92 % (PFLD)"),
)


def _challenge() -> Suite:
    hourglass = SuiteRow(label=str(TABLE5_SPEC), spec=TABLE5_SPEC, overrides=FINAL_SETTING, baseline=True,
                         paper=(5, 2), config=(("Family", "stacked hourglass (the write-up)"),
                                               ("Entry's own numbers", "12.2 MB, 2.02 %")))
    rows = [hourglass] + [
        SuiteRow(label=name, spec=PRESETS[name].spec, overrides=FINAL_SETTING,
                 config=(("Family", family), ("Entry's own numbers", reported)), note="not in the paper")
        for name, family, reported in CHALLENGE_ENTRIES]
    return Suite(
        name="challenge", title="The challenge's families under one protocol",
        caption="The write-up's best hourglass beside the challenge's other families, each at a size near "
                "its entry's, all trained under this one protocol (weighted MSE, the offset kernel) with "
                "lightmark's stride-4 heatmap head on the backbones. The entries' own numbers (their "
                "READMEs, their own recipes, 384 px, the real test set) are shown for reference, not "
                "compared: only the measured columns compare.",
        config_columns=("Family", "Entry's own numbers"), rows=tuple(rows),
    )


@lru_cache(maxsize=1)
def _suites() -> dict[str, Suite]:
    return {s.name: s for s in (_table1(), _table2(), _table3(), _table4(), _table5(), _challenge())}


def get_suite(name: str) -> Suite:
    try:
        return _suites()[name]
    except KeyError:
        raise ConfigError(f"unknown table {name!r}; choose from {', '.join((*TABLE_NAMES, *EXTRA_SUITES))} "
                          "or all") from None


def all_suites() -> list[Suite]:
    return [_suites()[name] for name in TABLE_NAMES]


def resolve_tables(name: str) -> list[Suite]:
    """`table2` -> [Table 2]; `all` -> all five."""
    return all_suites() if name == "all" else [get_suite(name)]


@dataclass(frozen=True)
class Candidate:
    """A (spec, protocol) to train, and every suite row x seed it stands for."""

    key: str
    spec: ModelSpec
    protocol: Protocol
    uses: tuple[tuple[str, str, int], ...] = field(default=())  # (suite, row label, seed)

    @property
    def label(self) -> str:
        return "; ".join(f"{suite}/{row}/seed{seed}" for suite, row, seed in self.uses)


def row_spec(row: SuiteRow, n_landmarks: int = DEFAULT_N_LANDMARKS) -> ModelSpec:
    """The row's architecture predicting `n_landmarks` points (the data's: 98 on WFLW)."""
    assert row.spec is not None
    return row.spec if row.spec.n_landmarks == n_landmarks else replace(row.spec, n_landmarks=n_landmarks)


def plan_candidates(suites: list[Suite], base: Protocol, seeds: int,
                    n_landmarks: int = DEFAULT_N_LANDMARKS) -> list[Candidate]:
    """Every train row x seed of `suites`, deduplicated by candidate key (first use first), seed by seed.

    Rows whose architecture cannot run at the protocol's input size (`SuiteRow.skip_reason`) are
    left out; the tables show them as skipped with the reason. Every row predicts `n_landmarks`
    points, the number the protocol's data has.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    order: list[str] = []
    found: dict[str, Candidate] = {}
    for seed in range(seeds):  # seed-major: an interrupted run has every row at one seed first
        for suite in suites:
            for row in suite.train_rows:
                if row.skip_reason(base):
                    continue
                protocol = row.protocol(base, seed)
                spec = row_spec(row, n_landmarks)
                key = candidate_key(spec, protocol)
                use = (suite.name, row.label, seed)
                if key in found:
                    old = found[key]
                    found[key] = Candidate(key, old.spec, old.protocol, (*old.uses, use))
                else:
                    order.append(key)
                    found[key] = Candidate(key, spec, protocol, (use,))
    return [found[key] for key in order]


def roundtrip_nme(protocol: Protocol, codecs: tuple[str, ...] = ("plain", "offset", "subpixel"),
                  batch: int = 64) -> dict[str, dict[str, float]]:
    """Table 3's left half: encode the held-out ground truth with each codec and decode it again.

    No model: the error is what the heatmap representation alone costs, on the same held-out
    points (and at the same input size) the prediction rows are evaluated on. Returns
    {codec: {"nme_image_pct", "nme_inter_ocular_pct", "n_images"}}.
    """
    _, val_source = build_sources(protocol)
    dataset = LandmarkDataset(val_source, None, seed=protocol.seed, input_size=protocol.input_size)
    points = torch.from_numpy(np.stack([np.asarray(dataset.sample(i).points, dtype=np.float32)
                                        for i in range(len(dataset))]))
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for name in codecs:
            codec = get_codec(name, protocol.input_size)
            decoded = torch.cat([codec.decode(codec.encode(chunk)) for chunk in points.split(batch)])
            out[name] = {
                "nme_image_pct": float(nme(decoded, points, "image", image_size=protocol.input_size).mean()),
                "nme_inter_ocular_pct": float(nme(decoded, points, "inter_ocular", layout=dataset.layout).mean()),
                "n_images": int(points.shape[0]),
            }
    return out
