"""Shared fixtures: the real public data beside the repository, and cached synthetic patients."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; tests using it skip on a machine without it (a fresh user checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public data not found at {SHARED_DATA} (present in CI, absent on fresh machines)")
    return SHARED_DATA


@lru_cache(maxsize=4)
def phantom(seed: int = 0, spacing: float = 1.0, modality: str = "ct"):
    """Phantoms are deterministic, so tests share them instead of regenerating."""
    from cardiotwin.phantom import generate_phantom

    return generate_phantom(seed=seed, spacing=spacing, modality=modality)


@pytest.fixture(scope="session")
def phantom_twin(tmp_path_factory):
    """The 1 mm phantom (seed 0) as a full twin folder: anatomy, fibres, conduction fields, lead
    fields. Built once per test session (about 2 minutes on 2 cores) and shared."""
    from cardiotwin.pipeline.twin_folder import build_twin

    folder = tmp_path_factory.mktemp("twin")
    ph = phantom(0, 1.0)
    twin, _ = build_twin(ph.labels, folder, opencarp=False)
    return folder, twin, ph


@pytest.fixture(scope="session")
def calibration_model(phantom_twin):
    """The phantom twin's calibration model with its 2 mm coarse ventricles, built once and shared by
    the calibration tests (optimiser and ML route)."""
    from cardiotwin.calibration import CalibrationModel

    _, twin, _ = phantom_twin
    cm = CalibrationModel(twin, coarse_edge_mm=2.0)
    cm.coarse
    return cm
