"""Test-wide settings: no network from albumentations, headless matplotlib."""

from __future__ import annotations

import os

import pytest

from lightmark.data import dlib68

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def dlib_faces():
    """dlib's detector and 68-point predictor, loaded once for the tests that need them."""
    if not dlib68.real_extra_installed():
        pytest.skip(f"the [real] extra is not installed; {dlib68.INSTALL_HINT}")
    return dlib68.DlibFaces()
