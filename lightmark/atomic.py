"""Atomic file writes (temp file in the same directory + fsync + rename).

A crash mid-write leaves the previous file intact, never half a file: checkpoints, records,
CSV tables and reports all go through here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_with(path: Path | str, writer: Callable[[IO[bytes]], Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        writer(handle)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    write_with(path, lambda handle: handle.write(data))


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def json_safe(value: Any) -> Any:
    """Strict JSON values: NaN/inf become null (json.dumps would write invalid `NaN`), paths strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path | str, data: Any) -> None:
    text = json.dumps(json_safe(data), indent=2, sort_keys=True, default=str, allow_nan=False)
    write_text_atomic(path, text + "\n")
