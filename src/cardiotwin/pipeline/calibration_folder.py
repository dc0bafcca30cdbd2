"""The calibration folder of one patient: its files (:mod:`cardiotwin.io.calibration`), its picture
and, given the twin, the calibrated twin's beat."""

from __future__ import annotations

import os
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.calibration.optimise import CalibrationResult
from cardiotwin.io.calibration import write_calibration
from cardiotwin.twin import Twin


def write_result(result: CalibrationResult, out_dir: str | os.PathLike, twin: Twin | None = None) -> dict[str, Path]:
    """:func:`~cardiotwin.io.calibration.write_calibration`, ``overlay.png``
    (:func:`cardiotwin.report.calibration_figure.plot_fit`) and, with ``twin``, the beat it simulates
    with the calibrated parameters (``heart_ep.vtu`` with activation, repolarisation and APD, and
    ``ep_summary.json``: :func:`~cardiotwin.io.simulation.write_simulation`) to open in ParaView."""
    from cardiotwin.report.calibration_figure import plot_fit

    paths = write_calibration(result, out_dir)
    paths["overlay"] = plot_fit(result, Path(out_dir) / F.OVERLAY)
    if twin is not None:
        from cardiotwin.io.simulation import write_simulation
        from cardiotwin.twin import simulate

        paths.update({f"beat_{k}": v for k, v in write_simulation(twin, simulate(twin, result.params), out_dir).items()})
    return paths
