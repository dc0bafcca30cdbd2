"""The diagnostic features of the fitted beat against the patient's: intervals and amplitudes.

Correlation is blind to amplitude and forgiving of timing, so a cardiologist's reading of the fit is
reported alongside it: PR interval, P and QRS durations, QT interval, T-peak time (from the QRS
onset) and the R and T amplitudes of every lead, the fitted beat at the calibration's one scale.
The fitted beat is measured as a record would be
(:func:`~cardiotwin.ecg.features.simulated_beat_features`: the beat repeated as a steady rhythm
with its R peak known, cleaned, averaged and delineated); the patient's beat the same way, but
with the fiducials delineated on the whole record when they are given (the calibration gives
them: the repeated median beat of a record can be delineated worse than the record itself). Published tolerances for automatic interval
measurement (IEC 60601-2-25: mean error <= 10 ms for QRS duration and PR, <= 25 ms for QT) give the
acceptance of issue 24 its order: QRS within 10 ms, PR and QT within 20 ms.
"""

from __future__ import annotations

import numpy as np

from cardiotwin.ecg.features import simulated_beat_features
from cardiotwin.ecg.signal import Fiducials
from cardiotwin.errors import CardiotwinError
from cardiotwin.types import Ecg

__all__ = ["INTERVALS", "beat_feature_errors"]

INTERVALS = ("pr_ms", "p_ms", "qrs_ms", "qt_ms", "t_peak_ms")
AMPLITUDES = ("r_amplitude_mV", "t_amplitude_mV")


def _measure(ecg: Ecg, r_ms: float, fiducials: Fiducials | None = None) -> dict:
    f = simulated_beat_features(ecg, r_ms, fiducials=fiducials)
    return {k: f[k] for k in INTERVALS + AMPLITUDES}


def beat_feature_errors(measured: Ecg, fitted: Ecg, r_ms: float, measured_fiducials: Fiducials | None = None) -> dict:
    """Features of both beats (same leads, same time axis; ``r_ms``: the measured R peak) and the
    errors fitted - measured: intervals in ms (``None`` where either beat lacks the wave), per-lead
    R and T amplitudes in mV and their median absolute error. ``measured_fiducials``: the patient's
    own delineation (from the whole record) for the measured beat, else it is delineated as the
    fitted one is. A beat that cannot be delineated gives ``{"error": reason}`` instead of raising
    (the fit is still reported)."""
    try:
        m, s = _measure(measured, r_ms, measured_fiducials), _measure(fitted.select(measured.leads), r_ms)
    except CardiotwinError as exc:
        return {"error": f"the beats could not be delineated for features: {exc}"}
    err: dict = {}
    for k in INTERVALS:
        a, b = m.get(k), s.get(k)
        err[k] = None if a is None or b is None else float(b - a)
    for k in AMPLITUDES:
        per = {lead: float(s[k][lead] - m[k][lead]) for lead in m[k]}
        err[k] = per
        err[f"{k}_median_abs"] = float(np.median(np.abs(list(per.values()))))
    return {"measured": m, "fitted": s, "error": err}
