"""User-facing errors.

Every mistake a user can cause (bad path, bad spec, bad annotation, impossible budget) raises a
`LightmarkError` whose message names the file or field. The CLI prints it as one line and exits
non-zero; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LightmarkError(Exception):
    """An error caused by user input; the message must name the offending file or field."""

    exit_code = 2  # the command's exit status when this error stops it


class ResumableError(LightmarkError):
    """The run was stopped by its surroundings, not by its input: the study's storage stayed unreachable
    past the retry bound, or the disk filled up. Everything finished is kept (the study, the candidate
    cache, the previous checkpoint and files), and the same command resumes once the cause is gone."""

    exit_code = 3


class StorageUnavailableError(ResumableError):
    """The study's database could not be reached within the retry bound (names the URL, never its password)."""


class DiskFullError(ResumableError):
    """No space left while writing a file (names it); the previous version of the file is intact."""


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
