"""Face sources: anything that yields `FaceSample`s by index and says its `layout`.

`FaceSource` is the interface every reader (challenge `annot.pkl`, `.pts` folders, WFLW, COFW, Face
Synthetics, image folders) and the synthetic generator meet; the training data path, evaluation and
export take any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lightmark.data.sample import FaceSample
from lightmark.data.synth import SynthFaces
from lightmark.errors import ConfigError
from lightmark.layouts import DEFAULT_LAYOUT, Layout


@runtime_checkable
class FaceSource(Protocol):
    """A sized, indexable collection of faces in one layout. Readers may also offer `names` (one per
    sample), `attributes` (per-sample flags, e.g. WFLW's) and `n_dropped` (faces skipped on reading)."""

    layout: Layout

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> FaceSample: ...


class SyntheticSource:
    """Faces 0..n-1 of `SynthFaces(size, seed)`, rendered on demand.

    `cache=True` keeps every rendered sample in memory (the training set is fixed, so each face is
    rendered once per process). The cache is not pickled: each DataLoader worker fills its own.
    """

    def __init__(self, size: int, seed: int, n: int, *, cache: bool = False) -> None:
        if n < 0:
            raise ConfigError(f"number of synthetic samples must be >= 0, got {n}")
        self.size, self.seed, self.n = int(size), int(seed), int(n)
        self.generator = SynthFaces(size=self.size, seed=self.seed)
        self._cache: list[FaceSample | None] | None = [None] * self.n if cache else None
        self.n_dropped = 0
        self.layout: Layout = DEFAULT_LAYOUT  # the generator draws the iBUG 68 points

    @property
    def names(self) -> list[str]:
        return [f"synth-s{self.seed}-{i:06d}" for i in range(self.n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> FaceSample:
        if not 0 <= index < self.n:
            raise IndexError(index)
        if self._cache is not None:
            sample = self._cache[index]
            if sample is None:
                sample = self._cache[index] = self.generator.render(index)
            return sample
        return self.generator.render(index)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for worker processes without the rendered cache (each worker fills its own)."""
        state = dict(self.__dict__)
        if state["_cache"] is not None:
            state["_cache"] = [None] * self.n
        return state


class SubsetSource:
    """A fixed selection of another source's samples (val split, caps)."""

    def __init__(self, source: FaceSource, indices: Sequence[int]) -> None:
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.n_dropped = getattr(source, "n_dropped", 0)
        self.layout: Layout = source.layout

    @property
    def attributes(self) -> dict[str, np.ndarray] | None:
        """The source's per-sample attribute flags (WFLW's), restricted to this subset."""
        flags = getattr(self.source, "attributes", None)
        return None if flags is None else {k: v[self.indices] for k, v in flags.items()}

    @property
    def names(self) -> list[str]:
        names = self.source.names
        return [names[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> FaceSample:
        return self.source[int(self.indices[index])]
