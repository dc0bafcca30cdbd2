"""Files of a calibration: the calibrated parameters, the fit summary and the two beats."""

from __future__ import annotations

import os
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.calibration.optimise import CalibrationResult
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.io.ecg import write_ecg_csv
from cardiotwin.io.parameters import write_parameters


def write_calibration(result: CalibrationResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``parameters.json`` (calibrated θ), ``calibration.json`` (fits, per-lead correlations, timings,
    history, notes), ``fitted_ecg.csv`` (simulated 12 leads on the measured beat's axis, at the beat's
    one scale: :meth:`~cardiotwin.calibration.optimise.CalibrationResult.scaled`) and
    ``measured_beat.csv``, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {"parameters": write_parameters(result.params, out / F.PARAMETERS),
            "summary": write_json_atomic(out / F.CALIBRATION, {**result.summary(), "history": result.history}),
            "fitted_ecg": write_ecg_csv(result.scaled(), out / F.FITTED_ECG),
            "measured_beat": write_ecg_csv(result.measured, out / F.MEASURED_BEAT)}
