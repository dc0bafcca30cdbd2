"""Synthetic patient ECGs for parameter-recovery tests: a twin's own simulated beat with hidden
parameters, repeated at a fixed RR, with realistic measurement noise and baseline wander, so that
it goes through the same preprocessing (:func:`cardiotwin.ecg.signal.preprocess`) as a patient's
record.

Noise model (amplitudes typical of resting 12-lead recordings; Clifford et al. 2006, "Advanced
Methods and Tools for ECG Data Analysis", ch. 3; the MIT-BIH Noise Stress Test Database): white
noise of ``noise_mv`` RMS, EMG-like band-limited noise, a 50 Hz powerline component, and baseline
wander as a sum of a respiratory (0.25 Hz) and a slower (0.05-0.1 Hz) sinusoid of ``wander_mv``,
all independent per lead.

:func:`synthetic_beat` runs :func:`~cardiotwin.ecg.signal.preprocess` on the noisy record. The
simulated T waves of the phantom are large and steep (T/QRS slope ratio near 1 in V2-V4, where
real ECGs have about 0.3), so Pan-Tompkins' T-wave discrimination inside ``preprocess`` sometimes
counts T waves as beats (or takes every T wave for the R peak: as many beats, each a T wave,
~230 ms late) and the median beat fails; the R peaks of a synthetic record are known, so
the same chain (clean, median beat, delineation, isoelectric reference) is then run from them and
``Beat``-level results say which route was taken.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from cardiotwin.ecg.signal import Beat, beat_from_r_peaks, preprocess
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import InvalidParameterError, InvalidSignalError
from cardiotwin.types import TWELVE_LEADS, Ecg

__all__ = ["simulated_record", "add_noise", "synthetic_beat"]

MAX_R_OFFSET_MS = 40.0
"""Median distance of the detected R peaks from the known ones above which the detection failed."""


def simulated_record(model, params: EpParameters, *, rr_ms: float = 900.0, duration_s: float = 10.0,
                     fs: float = 1000.0, with_peaks: bool = False,
                     rotation_deg=None) -> Ecg | tuple[Ecg, np.ndarray]:
    """A clean ``duration_s`` record of the twin's beat with ``params`` repeated every ``rr_ms``
    (``model``: a :class:`~cardiotwin.calibration.optimise.CalibrationModel`); with ``with_peaks``
    also the R-peak samples (maximum spatial magnitude of each QRS). ``rotation_deg``: the heart
    rotated in its torso (:mod:`.pose`) for a patient whose heart lies otherwise than the twin's."""
    if rr_ms < 500.0 or duration_s < 0.5:
        raise InvalidParameterError("rr_ms must be >= 500 ms and duration_s >= 0.5 s")
    atrial, v_start = model.atrial([params])
    vent = model.ventricular([params], "fine")
    at = model.assemble(atrial, v_start, vent)  # 0 = ventricular onset
    t0 = -float(v_start[0]) - 100.0  # 100 ms before the sinus node fires
    w12 = None if rotation_deg is None else model.rotation.weights12(rotation_deg)
    beat = model.segments(at, params, TWELVE_LEADS, fs, (t0, t0 + rr_ms), w12)[0]
    n = int(round(duration_s * fs))
    reps = int(np.ceil(n / beat.shape[1]))
    ecg = Ecg(np.tile(beat, reps)[:, :n], fs, TWELVE_LEADS)
    if not with_peaks:
        return ecg
    onset = int(round(-t0 * fs / 1000.0))
    qrs = np.sqrt((beat[:, onset:onset + int(0.12 * fs)] ** 2).sum(axis=0))
    r = onset + int(np.argmax(qrs)) + np.arange(reps) * beat.shape[1]
    return ecg, r[r < n]


def add_noise(ecg: Ecg, rng: np.random.Generator, *, noise_mv: float = 0.02, emg_mv: float = 0.01,
              powerline_mv: float = 0.01, wander_mv: float = 0.15) -> Ecg:
    """The record with independent per-lead noise and baseline wander (see the module docstring)."""
    L, n = ecg.signals.shape
    t = np.arange(n) / ecg.fs
    x = ecg.signals + noise_mv * rng.standard_normal((L, n))
    emg = rng.standard_normal((L, n))
    sos = sps.butter(2, [20.0, min(150.0, 0.45 * ecg.fs)], btype="bandpass", fs=ecg.fs, output="sos")
    emg = sps.sosfiltfilt(sos, emg, axis=1)
    x += emg_mv * emg / max(float(emg.std()), 1e-12)
    x += powerline_mv * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi, (L, 1)))
    f_resp = rng.uniform(0.2, 0.33)
    f_slow = rng.uniform(0.05, 0.1)
    x += wander_mv * (np.sin(2 * np.pi * f_resp * t + rng.uniform(0, 2 * np.pi, (L, 1)))
                      + 0.7 * np.sin(2 * np.pi * f_slow * t + rng.uniform(0, 2 * np.pi, (L, 1))))
    return Ecg(x, ecg.fs, ecg.leads)


def synthetic_beat(model, params: EpParameters, rng: np.random.Generator, *, rr_ms: float = 900.0,
                   duration_s: float = 10.0, fs: float = 1000.0, rotation_deg=None, **noise) -> tuple[Beat, str]:
    """The preprocessed median beat of a noisy synthetic record, and the route: ``"preprocess"``
    (the clinical chain, R peaks detected) or ``"known_r_peaks"`` (detector failed, see above)."""
    ecg, peaks = simulated_record(model, params, rr_ms=rr_ms, duration_s=duration_s, fs=fs, with_peaks=True,
                                  rotation_deg=rotation_deg)
    noisy = add_noise(ecg, rng, **noise)
    try:
        beat = preprocess(noisy)
        off = np.abs(beat.r_peaks[:, None] - np.asarray(peaks)[None]).min(axis=1) if len(beat.r_peaks) else [np.inf]
        if abs(len(beat.r_peaks) - len(peaks)) <= 1 and np.median(off) <= MAX_R_OFFSET_MS * fs / 1000.0:
            return beat, "preprocess"
    except InvalidSignalError:
        pass
    return beat_from_r_peaks(noisy, peaks), "known_r_peaks"
