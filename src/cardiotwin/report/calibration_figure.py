"""Picture of a calibration: the measured median beat and the calibrated twin's beat on ECG paper."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.calibration.optimise import CalibrationResult
from cardiotwin.report.ecg_plot import plot_12_lead
from cardiotwin.types import TWELVE_LEADS, Ecg


def plot_fit(result: CalibrationResult, path: str | os.PathLike) -> Path:
    """PNG of measured vs simulated 12 leads, the per-lead QRS correlation in the title (absent leads
    drawn flat)."""
    measured = result.measured
    rows = np.zeros((12, measured.n_samples))
    for k, lead in enumerate(TWELVE_LEADS):
        if lead in measured.leads:
            rows[k] = measured.lead(lead)
    corr = result.correlations("QRS")
    cells = [f"{l} {corr[l]:.2f}" if l in corr else f"{l} --" for l in TWELVE_LEADS]
    title = (f"calibrated ({result.method}): median QRS correlation {result.median_correlation('QRS'):.3f}\n"
             f"QRS r per lead: {'  '.join(cells[:6])}\n{'  '.join(cells[6:])}")
    if result.excluded_leads:
        title += "\nexcluded (drawn flat): " + ", ".join(result.excluded_leads)
    return plot_12_lead(Ecg(rows, measured.fs, TWELVE_LEADS), path, overlay=result.fitted, title=title,
                        labels=("measured median beat", "calibrated twin"))
