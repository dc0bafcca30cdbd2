"""Picture of a calibration: the measured median beat and the calibrated twin's beat on ECG paper."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.calibration.optimise import CalibrationResult
from cardiotwin.report.ecg_plot import plot_12_lead
from cardiotwin.types import TWELVE_LEADS, Ecg


def plot_fit(result: CalibrationResult, path: str | os.PathLike) -> Path:
    """PNG of measured vs simulated 12 leads, the twin at the beat's one scale (a gain per lead set on
    the QRS, shared by P and T), the per-lead QRS correlation in the title (absent leads drawn flat)."""
    measured = result.measured
    rows = np.zeros((12, measured.n_samples))
    for k, lead in enumerate(TWELVE_LEADS):
        if lead in measured.leads:
            rows[k] = measured.lead(lead)
    corr = result.correlations("QRS")
    cells = [f"{l} {corr[l]:.2f}" if l in corr else f"{l} --" for l in TWELVE_LEADS]
    waves = "  ".join(f"{w} {result.median_correlation(w):.2f}" for w in ("QRS", "T", "P") if w in result.fits)
    title = (f"calibrated ({result.method}): median r {waves}; whole-beat NRMSE {result.fits['beat'].nrmse[0]:.2f}; "
             f"native gain {result.global_gain:.2f}\n"
             f"QRS r per lead: {'  '.join(cells[:6])}\n{'  '.join(cells[6:])}")
    if result.excluded_leads:
        title += "\nexcluded (drawn flat): " + ", ".join(result.excluded_leads)
    return plot_12_lead(Ecg(rows, measured.fs, TWELVE_LEADS), path, overlay=result.scaled(), title=title,
                        labels=("measured median beat", "calibrated twin"))
