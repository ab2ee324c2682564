"""Real dataset formats read from paths the user gives (challenge `annot.pkl`, iBUG `.pts`)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from lightmark.atomic import write_bytes_atomic


def write_challenge_annotations(path: Path, names: Sequence[str], points: np.ndarray) -> None:
    """The challenge layout: a pickled tuple (list of file names, float array (N, 68, 2) pixels)."""
    array = np.asarray(points, dtype=np.float32)
    write_bytes_atomic(path, pickle.dumps((list(names), array), protocol=4))
