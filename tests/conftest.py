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


@pytest.fixture(scope="session")
def phantom_case(tmp_path_factory):
    """A complete `cardiotwin run` case folder (2 mm phantom seed 1, a real PTB record, a reduced
    QRS-only calibration), built once per session (about 80 s on 2 cores): (folder, config, ecg, runs)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real public data not found at {SHARED_DATA} (present in CI, absent on fresh machines)")
    from cardiotwin.calibration.config import CalibrationConfig
    from cardiotwin.pipeline.run import RunConfig, run_case

    fast = CalibrationConfig(budget=8, stages=("QRS",), mapping_rounds=0, root_sites=0, coarse_edge_mm=None)
    config = RunConfig(phantom_spacing_mm=2.0, edge_mm=2.0, calibration=fast)
    ecg = SHARED_DATA / "ecg_ptbdb_s0010_re" / "s0010_re.hea"
    case = tmp_path_factory.mktemp("run") / "case"
    runs = run_case(case, phantom=1, ecg=ecg, config=config)
    return case, config, ecg, runs
