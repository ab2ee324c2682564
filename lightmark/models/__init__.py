"""Networks: blocks (HPM, SE, CA, CoordConv), the stacked hourglass, ModelSpec and the registry of named presets
(docs/architecture.md, docs/models.md)."""

from lightmark.models.hourglass import StackedHourglass, build_model
from lightmark.models.spec import ModelSpec

__all__ = ["ModelSpec", "StackedHourglass", "build_model"]
