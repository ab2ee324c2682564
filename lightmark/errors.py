"""User-facing errors.

Every mistake a user can cause (bad path, bad spec, bad annotation, impossible budget) raises a
`LightmarkError` whose message names the file or field. The CLI prints it as one line and exits
non-zero; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LightmarkError(Exception):
    """An error caused by user input; the message must name the offending file or field."""


class SpecError(LightmarkError, ValueError):
    """An invalid model specification (names the field)."""


class DataError(LightmarkError):
    """Unreadable or malformed data (names the file, or the index inside a pickle)."""


class ConfigError(LightmarkError, ValueError):
    """An invalid protocol, search space or budget (names the key)."""


class NonFiniteLossError(LightmarkError, FloatingPointError):
    """Training produced a NaN or infinite loss; the run stops instead of wasting time."""


class ExportError(LightmarkError):
    """An exported model changed the points by more than its tolerance (names the file and numbers)."""
