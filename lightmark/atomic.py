"""Atomic file writes (temp file in the same directory + fsync + rename).

A crash mid-write leaves the previous file intact, never half a file: checkpoints, records,
CSV tables and reports all go through here. A full disk (ENOSPC, or a quota: EDQUOT) is a
`DiskFullError` naming the file; the temporary file is removed and the previous file stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from lightmark.errors import DiskFullError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise _disk_full(exc, path) from None
        raise
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
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise _disk_full(exc, path) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def _disk_full(exc: OSError, path: Path) -> DiskFullError:
    """ENOSPC/EDQUOT as a one-line error naming the file."""
    kept = "the previous version is intact" if path.exists() else "nothing was written"
    return DiskFullError(f"{path}: no space left on the device ({os.strerror(exc.errno)}) while writing it; "
                         f"{kept}. Free some space and run the same command again: it resumes")


class _WatchedFile:
    """A binary file that remembers the OSError of a failed write: torch.save reports a full disk as a
    RuntimeError ("unexpected pos ...") and drops the OSError that says why."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:  # tell, seek, ...: the file's own
        return getattr(self.handle, name)


def write_with(path: Path | str, writer: Callable[[IO[bytes]], Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        watched = _WatchedFile(handle)
        try:
            writer(watched)  # type: ignore[arg-type]
        except Exception:
            if watched.error is not None:
                raise watched.error from None  # the write that failed, whatever the writer made of it
            raise


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    write_with(path, lambda handle: handle.write(data))


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def append_line(path: Path | str, line: str) -> None:
    """Append one line (a log entry); on a full disk the file is cut back to its previous end, so no
    half line is left, and a DiskFullError names it."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # unbuffered: no retry at close
    try:
        end = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise _disk_full(exc, path) from None
    finally:
        os.close(fd)


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
