"""The calibration folder of one patient: its files (:mod:`cardiotwin.io.calibration`) and its picture."""

from __future__ import annotations

import os
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.calibration.optimise import CalibrationResult
from cardiotwin.io.calibration import write_calibration


def write_result(result: CalibrationResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """:func:`~cardiotwin.io.calibration.write_calibration` and ``overlay.png``
    (:func:`cardiotwin.report.calibration_figure.plot_fit`)."""
    from cardiotwin.report.calibration_figure import plot_fit

    paths = write_calibration(result, out_dir)
    paths["overlay"] = plot_fit(result, Path(out_dir) / F.OVERLAY)
    return paths
