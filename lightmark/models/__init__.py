"""models stage of lightmark: the paper's stacked-hourglass family (see DESIGN.md, docs/models.md)."""

from lightmark.models.hourglass import StackedHourglass, build_model
from lightmark.models.spec import ModelSpec

__all__ = ["ModelSpec", "StackedHourglass", "build_model"]
