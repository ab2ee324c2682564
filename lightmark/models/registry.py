"""Named presets: the twelve architectures of the paper's Tables 1 and 2, the challenge's other
families at sizes near their entries, and small ones for CPU work.

`resolve(text)` turns what a user types (a preset name or a spec string) into a spec and the input
size to use by default.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from lightmark.errors import SpecError
from lightmark.models.backbone_spec import BACKBONES
from lightmark.models.spec import ModelSpec
from lightmark.models.specs import AnySpec, family_of, parse_spec
from lightmark.paper import paper_row, spec_text

PAPER_INPUT_SIZE = 384
DEFAULT_INPUT_SIZE = PAPER_INPUT_SIZE  # for a bare spec string


@dataclass(frozen=True)
class Preset:
    """A named architecture with the input size it is meant for and, for the paper's rows, its numbers.

    paper_size_mb: the paper's model size (MiB of the saved fp32 state_dict); paper_nme: its test NME
    (percent, normalised by the 384-pixel image size, the challenge's metric).
    """

    name: str
    spec: AnySpec
    input_size: int
    description: str
    paper_size_mb: float | None = None
    paper_nme: float | None = None
    paper: tuple[int, int] | None = None  # (table, row) of paper_tables.csv, for the paper's rows

    @property
    def family(self) -> str:
        return family_of(self.spec)


def _paper(name: str, table: int, row: int, description: str) -> Preset:
    """A preset for one row of the paper's Tables 1-2: spec, size and NME come from paper_tables.csv."""
    line = paper_row(table, row)
    return Preset(name, ModelSpec.parse(spec_text(line)), PAPER_INPUT_SIZE, description,
                  line.model_size_mb, line.test_nme, paper=(table, row))


_ALL: tuple[Preset, ...] = (
    # Table 1: basic structure (n_stacks, depth, channels); MSE, offset kernel, no erasing.
    _paper("paper-t1-s1-d2-c256", 1, 1, "Table 1 row 1 (1,2,256)"),
    _paper("paper-t1-s1-d4-c128", 1, 2, "Table 1 row 2 (1,4,128)"),
    _paper("paper-t1-s2-d4-c128", 1, 3, "Table 1 row 3 (2,4,128)"),
    _paper("paper-t1-s2-d5-c128", 1, 4, "Table 1 row 4 (2,5,128)"),
    _paper("paper-t1-s3-d3-c128", 1, 5, "Table 1 row 5 (3,3,128)"),
    _paper("paper-t1-s4-d2-c128", 1, 6, "Table 1 row 6 (4,2,128)"),
    # Table 2: attention and CoordConv on (2,4,128); its baseline duplicates Table 1 row 3.
    _paper("paper-t2-none", 2, 1, "Table 2 row 1: no extra structure"),
    _paper("paper-t2-se", 2, 2, "Table 2 row 2: SE attention"),
    _paper("paper-t2-ca", 2, 3, "Table 2 row 3: coordinate attention"),
    _paper("paper-t2-cc", 2, 4, "Table 2 row 4: CoordConv"),
    _paper("paper-t2-se-cc", 2, 5, "Table 2 row 5: SE + CoordConv"),
    _paper("paper-t2-ca-cc", 2, 6, "Table 2 row 6: CA + CoordConv (the paper's model)"),
    # Small presets for CPU work and tests.
    Preset("tiny", ModelSpec.parse("s1-d2-c32"), 64, "tests and smoke runs (seconds on CPU)"),
    Preset("cpu-small", ModelSpec.parse("s1-d3-c64"), 128, "quick protocol on 2 CPU cores"),
    Preset("cpu-small-ca-cc", ModelSpec.parse("s1-d3-c64-ca-cc"), 128, "cpu-small with CA + CoordConv"),
    Preset("cpu-medium", ModelSpec.parse("s2-d4-c64-ca-cc"), 256, "paper's structure at half width, 256 px"),
    # The challenge's other entries (sizes and NME from their own READMEs, their own recipes: not
    # comparable with each other): each family here at a size near the entry's, with lightmark's
    # stride-4 heatmap head, so one protocol can compare them (`lightmark report challenge`).
    Preset("challenge-mnv3-small", parse_spec("mnv3s-w1.0-o32-h128"), PAPER_INPUT_SIZE,
           "MobileNetV3-small at full width, near the entry's 4 MB (it reported NME 2.68 %)"),
    Preset("challenge-mnv3-large", parse_spec("mnv3l-w0.8-o32-h128"), PAPER_INPUT_SIZE,
           "MobileNetV3-large at width 0.8, near the entry's 7.4 MB (full width is 11.1 MiB here; "
           "it reported 2.45 %)"),
    Preset("challenge-shufflenetv2", parse_spec("snv2-w1.5-o32-h256"), PAPER_INPUT_SIZE,
           "ShuffleNetV2 1.5x, the published width nearest below the entry's 11 MB (2.0x is 13.5 MiB "
           "here; it reported 2.48 %)"),
    Preset("challenge-mnv2", parse_spec("mnv2-w1.3-o32-h128"), PAPER_INPUT_SIZE,
           "MobileNetV2 (PFLD's backbone) near PFLD's 13 MB, a heatmap head in place of PFLD's "
           "regression head (PFLD reported 2.92 %)"),
    # Small members of each family for CPU work and tests (64 px, like `tiny`).
    Preset("mnv3s-tiny", parse_spec("mnv3s-w0.5-o16-h32"), 64, "MobileNetV3-small, half width, to stride 16"),
    Preset("snv2-tiny", parse_spec("snv2-w0.5-o16-h32"), 64, "ShuffleNetV2 0.5x to stride 16"),
    Preset("mnv2-tiny", parse_spec("mnv2-w0.35-o16-h32"), 64, "MobileNetV2 0.35x to stride 16"),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in _ALL}

_LOOKS_LIKE_SPEC = re.compile(rf"^(s\d|({'|'.join(BACKBONES)})-)")


def paper_presets(table: int | None = None) -> list[Preset]:
    """The presets of the paper's rows, in table order: all twelve of Tables 1 and 2, or one table's."""
    return [p for p in PRESETS.values() if p.paper is not None and table in (None, p.paper[0])]


def resolve(text: str) -> tuple[AnySpec, int]:
    """A preset name or a spec string -> (spec, default input size).

    Spec strings get the paper's input size (384). Unknown names raise SpecError listing close matches.
    """
    text = text.strip()
    if text in PRESETS:
        preset = PRESETS[text]
        return preset.spec, preset.input_size
    if _LOOKS_LIKE_SPEC.match(text):
        return parse_spec(text), DEFAULT_INPUT_SIZE  # its SpecError names the field
    close = difflib.get_close_matches(text, list(PRESETS), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise SpecError(
        f"unknown model {text!r}: not a preset name and not a spec string like 's2-d4-c128-ca-cc' or "
        f"'mnv3s-w0.5-o16-h32'{hint} "
        "(`lightmark models` lists the presets)"
    )
