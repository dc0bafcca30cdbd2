"""Clinical ECG measurements of a median beat: intervals, QTc, frontal QRS axis, wave amplitudes.

These are the scalar targets a calibration can report (and fit) next to the waveform itself:

* intervals from the multi-lead fiducials of :func:`cardiotwin.ecg.signal.delineate` (global
  measurements, earliest onset to latest offset across leads, as recommended by the AHA/ACCF/HRS
  standardisation statement, Rautaharju et al. 2009, part IV);
* QTc by Bazett (1920), QT/RR^(1/2), and Fridericia (1920), QT/RR^(1/3), with RR in seconds (the
  median RR of the record);
* the frontal QRS axis from the net QRS areas of the limb leads: the frontal-plane vector whose
  projections on the hexaxial lead axes (I 0°, II 60°, III 120°, aVR -150°, aVL -30°, aVF 90°; the
  augmented leads scaled by sqrt(3)/2) best match the measured areas in the least-squares sense.
  With leads I and aVF alone this is atan2(2 aVF / sqrt(3), I);
* per-lead Q, R, S and T amplitudes and the ST level at J + 60 ms, each relative to the PQ-junction
  (isoelectric) level.

Amplitudes are in mV, times in ms, areas in mV·ms, angles in degrees in (-180, 180].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cardiotwin.errors import InputError
from cardiotwin.ecg.signal import Beat, Fiducials, delineate

_HEXAXIAL_DEG = {"I": 0.0, "II": 60.0, "III": 120.0, "aVR": -150.0, "aVL": -30.0, "aVF": 90.0}
_AUGMENTED = {"aVR", "aVL", "aVF"}
JOIN_MS = 10.0  # how much of each end of a beat sets its level where simulated_beat_features joins the tiles


def frontal_axis(net: dict[str, float]) -> float | None:
    """Frontal-plane axis (degrees) of per-lead net values (area or amplitude) of the limb leads.

    Least-squares over the limb leads present; ``None`` when fewer than two limb leads (or two
    collinear ones) are available or the vector vanishes.
    """
    leads = [lead for lead in _HEXAXIAL_DEG if lead in net]
    if len(leads) < 2:
        return None
    ang = np.deg2rad([_HEXAXIAL_DEG[lead] for lead in leads])
    scale = np.array([np.sqrt(3) / 2 if lead in _AUGMENTED else 1.0 for lead in leads])
    basis = scale[:, None] * np.column_stack([np.cos(ang), np.sin(ang)])
    if np.linalg.matrix_rank(basis) < 2:
        return None
    vec, *_ = np.linalg.lstsq(basis, np.array([net[lead] for lead in leads]), rcond=None)
    if np.hypot(*vec) == 0:
        return None
    return float(np.rad2deg(np.arctan2(vec[1], vec[0])))


def features(beat: Beat, fiducials: Fiducials | None = None) -> dict[str, Any]:
    """Heart rate, intervals (QRS, QT, QTc, PR, P, T peak from the QRS onset), frontal QRS axis and
    per-lead amplitudes.

    ``fiducials`` default to ``beat.fiducials`` (set by :func:`~cardiotwin.ecg.signal.preprocess`)
    or are computed. PR and P duration are ``None`` when the beat has no P wave.
    """
    fid = fiducials if fiducials is not None else (beat.fiducials or delineate(beat))
    ecg = beat.ecg
    fs = ecg.fs
    n = ecg.n_samples

    def smp(ms: float) -> int:
        return int(round(ms * fs / 1000.0))

    if not (0 <= fid.qrs_on_ms < fid.qrs_off_ms <= fid.t_end_ms <= ecg.duration_ms):
        raise InputError(
            f"fiducials do not fit this beat ({ecg.duration_ms:.0f} ms): QRS {fid.qrs_on_ms:.0f}-"
            f"{fid.qrs_off_ms:.0f} ms, T end {fid.t_end_ms:.0f} ms; pass the fiducials delineated on it"
        )
    rr_ms = beat.rr_median_ms
    rr_s = rr_ms / 1000.0
    qrs_ms = fid.qrs_off_ms - fid.qrs_on_ms
    qt_ms = fid.t_end_ms - fid.qrs_on_ms

    q_on, q_off = smp(fid.qrs_on_ms), min(n - 1, smp(fid.qrs_off_ms))
    pq = slice(max(0, q_on - smp(20)), max(1, q_on - smp(5)))
    x = ecg.signals - ecg.signals[:, pq].mean(axis=1, keepdims=True)
    qrs = x[:, q_on:q_off + 1]
    area = 0.5 * (qrs[:, 1:] + qrs[:, :-1]).sum(axis=1) * (1000.0 / fs)  # trapezoid rule, mV·ms

    r_idx = np.argmax(qrs, axis=1)
    r_amp = np.maximum(qrs.max(axis=1), 0.0)
    has_r = r_amp > 0
    before = np.where(np.arange(qrs.shape[1])[None] <= r_idx[:, None], qrs, np.inf)
    after = np.where(np.arange(qrs.shape[1])[None] >= r_idx[:, None], qrs, np.inf)
    q_amp = np.where(has_r, np.maximum(-before.min(axis=1), 0.0), 0.0)
    s_amp = np.where(has_r, np.maximum(-after.min(axis=1), 0.0), np.maximum(-qrs.min(axis=1), 0.0))
    t_amp = x[:, min(n - 1, smp(fid.t_peak_ms))]
    j60 = smp(fid.qrs_off_ms + 60.0)
    st = x[:, j60] if j60 < n else np.full(len(ecg.leads), np.nan)

    net = dict(zip(ecg.leads, area.tolist()))
    per_lead = lambda v: {lead: float(a) for lead, a in zip(ecg.leads, v)}  # noqa: E731
    return {
        "heart_rate_bpm": beat.heart_rate_bpm,
        "rr_ms": rr_ms,
        "irregular_rhythm": beat.irregular_rhythm,
        "has_p": fid.has_p,
        "p_ms": (fid.p_off_ms - fid.p_on_ms) if fid.has_p else None,
        "pr_ms": (fid.qrs_on_ms - fid.p_on_ms) if fid.has_p else None,
        "qrs_ms": qrs_ms,
        "qt_ms": qt_ms,
        "t_peak_ms": fid.t_peak_ms - fid.qrs_on_ms,
        "qtc_bazett_ms": qt_ms / np.sqrt(rr_s) if rr_s > 0 else float("nan"),
        "qtc_fridericia_ms": qt_ms / np.cbrt(rr_s) if rr_s > 0 else float("nan"),
        "qrs_axis_deg": frontal_axis(net),
        "qrs_area_mVms": per_lead(area),
        "q_amplitude_mV": per_lead(q_amp),
        "r_amplitude_mV": per_lead(r_amp),
        "s_amplitude_mV": per_lead(s_amp),
        "t_amplitude_mV": per_lead(t_amp),
        "st_j60_mV": per_lead(st),
    }


def simulated_beat_features(ecg, r_ms: float, repeats: int = 5, fiducials: Fiducials | None = None) -> dict[str, Any]:
    """:func:`features` of one simulated beat, measured as a patient's would be: the beat repeated
    ``repeats`` times as a rhythm (its duration is the RR interval), cleaned, averaged and
    delineated, with the R peak known (``r_ms``, e.g. the time of largest QRS power; a detector can
    take a twin's steep T waves for R waves). The beat's ends are first levelled by a linear ramp
    (``JOIN_MS`` at each end), so the tiles join without a step. ``fiducials`` (on ``ecg``'s time
    axis) replace the delineation of the repeated beat: a patient's median beat is best measured
    with the fiducials delineated on the whole record (on ptb_s0273lre the repeated median beat's
    T end was found 300 ms late, in the stretch where the window's end meets the next tile)."""
    from cardiotwin.ecg.signal import beat_from_r_peaks
    from cardiotwin.types import Ecg

    n = ecg.n_samples
    x = np.asarray(ecg.signals, dtype=float)
    # the beat's two ends join in the tiled rhythm: a step there (the ends' levels differ by the
    # wander a median beat keeps, or an unfinished T) is a spike after cleaning that the P search
    # takes for a wave, so the ends are levelled by a linear ramp first
    edge = max(1, int(round(JOIN_MS * ecg.fs / 1000.0)))
    step = x[:, -edge:].mean(axis=1) - x[:, :edge].mean(axis=1)
    x = x - step[:, None] * np.linspace(0.0, 1.0, n)[None]
    peaks = int(round(r_ms * ecg.fs / 1000.0)) + n * np.arange(repeats)
    beat = beat_from_r_peaks(Ecg(np.tile(x, repeats), ecg.fs, ecg.leads), peaks)
    if fiducials is None:
        return features(beat)
    shift = beat.r_ms - r_ms  # the repeated beat's axis against ecg's
    moved = {k: None if v is None else v + shift for k, v in fiducials.as_dict().items() if k != "note"}
    return features(beat, Fiducials(**moved, note=fiducials.note))
