"""Test-wide settings (no network from albumentations, headless matplotlib) and the fixtures that are
expensive enough to share across test files: build them once per session, use them read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightmark.data import dlib68
from lightmark.models.spec import ModelSpec
from lightmark.training.protocol import get_protocol
from lightmark.training.trainer import TrainResult, train

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def dlib_faces():
    """dlib's detector and 68-point predictor, loaded once for the tests that need them."""
    if not dlib68.real_extra_installed():
        pytest.skip(f"the [real] extra is not installed; {dlib68.INSTALL_HINT}")
    return dlib68.DlibFaces()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, TrainResult]:
    """s1-d2-c16 trained once under the smoke protocol (default threads, like the CLI): its folder
    (best.pt, last.pt, log.jsonl, config.json) and the trainer's result. The trainer, CLI
    (evaluate, predict) and export tests share it; none may write into the folder."""
    out = tmp_path_factory.mktemp("smoke-run")
    return out, train(ModelSpec.parse("s1-d2-c16"), get_protocol("smoke"), out, device="cpu", progress=False)
