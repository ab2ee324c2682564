"""Silence third-party chatter (fvcore, thop, the ONNX exporters, ONNX Runtime's quantiser)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """These libraries warn per traced branch, log per layer and print at import: inside this block
    warnings and log records below ERROR are dropped and stdout is swallowed, so stderr keeps our
    one-line messages and stdout stays clean for --json. Errors still show."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
