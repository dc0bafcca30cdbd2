"""Patient-ECG preprocessing: filtering, R-peak detection, median beat and multi-lead delineation.

The calibration fits simulated beats to *one* representative patient beat, compared over its P,
QRS and T windows. This module turns a recorded 12-lead ECG (typically 10 s at 250-1000 Hz) into
that beat:

1. :func:`clean` -- zero-phase filtering so no fiducial moves: baseline-wander high-pass (0.5 Hz,
   within the 0.67 Hz allowed for bidirectional filters by the AHA/ACCF/HRS recommendations,
   Kligfield et al. 2007), a powerline notch at 50 or 60 Hz (detected from the spectrum) and a
   150 Hz low-pass (kept below Nyquist).
2. :func:`detect_r_peaks` -- Pan & Tompkins (IEEE TBME 1985) applied to the spatial velocity of all
   leads: 5-15 Hz band-pass, derivative, squared and summed over leads, 150 ms moving-window
   integration, and the adaptive dual thresholds with T-wave discrimination and search-back; each
   detection is then moved to the extremum of a reference lead (the true R peak).
3. :func:`median_beat` -- beats are aligned by multi-lead cross-correlation and averaged by the
   sample-wise median after rejecting premature/ectopic beats (RR outliers, unless the rhythm is
   irregular, e.g. atrial fibrillation) and beats that correlate poorly with the template.
4. :func:`delineate` -- fiducials from all leads jointly: QRS onset/offset from the spatial
   velocity with a noise-adaptive threshold (as in vectorcardiographic delineators, e.g. Laguna et
   al., Comput Biomed Res 1994), the T end from the root-mean-square curve with the area indicator
   of Zhang et al. (IEEE TBME 53:2544, 2006) and the P boundaries with the trapezium area of
   Vázquez-Seisdedos et al. (2011). A P wave is reported only when the median beat has one *and*
   the individual beats agree on it (atrial fibrillation gives neither).
5. :func:`preprocess` chains them, excluding flat/absent leads and deriving absent limb leads from
   I and II when possible.

Times are in ms on the beat's own axis (0 = first sample of the window); potentials in mV.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy import signal as sps

from cardiotwin.errors import InputError, InvalidSignalError, MissingLeadsError
from cardiotwin.types import TWELVE_LEADS, Ecg, canonical_lead_name

MIN_DURATION_S = 2.0
"""Shortest record :func:`preprocess` accepts: a median beat needs several beats."""
MIN_BEATS = 3
"""Fewest beats a median beat is built from."""
FLAT_LEAD_MV = 0.03
"""A cleaned lead whose robust peak-to-peak amplitude is below this (mV) counts as flat."""

P_MIN_CORR = 0.75
"""A P wave is reported only if the beats' P segments correlate with the median's at least this much
(median over beats; and three quarters of the beats above 0.5)."""
NOISY_BEAT_MV = 0.05
"""A beat is rejected as noisy only if its RMS residual from the template exceeds this (mV) as well."""

PQ_WINDOW_MS = 16.0
"""Length of the PR-segment stretch the isoelectric level is averaged over (:func:`pq_level`)."""

_LIMB_DERIVABLE = ("III", "aVR", "aVL", "aVF")



# ------------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Fiducials:
    """Wave boundaries of a beat, in ms on the beat's time axis (0 = window start).

    ``p_on_ms``/``p_peak_ms``/``p_off_ms`` are ``None`` when no P wave was found (atrial
    fibrillation or flutter, junctional rhythm, or a P wave too small to be trusted); ``note`` then
    says so. ``t_peak_ms`` is the peak of the multi-lead RMS T wave.
    """

    qrs_on_ms: float
    r_ms: float
    qrs_off_ms: float
    t_peak_ms: float
    t_end_ms: float
    p_on_ms: float | None = None
    p_peak_ms: float | None = None
    p_off_ms: float | None = None
    note: str = ""

    @property
    def has_p(self) -> bool:
        return self.p_on_ms is not None

    @property
    def windows(self) -> dict[str, tuple[float, float] | None]:
        """The comparison windows for calibration: P (or ``None``), QRS, and ST-T (J point to T end)."""
        p = (self.p_on_ms, self.p_off_ms) if self.has_p else None
        return {"P": p, "QRS": (self.qrs_on_ms, self.qrs_off_ms), "T": (self.qrs_off_ms, self.t_end_ms)}

    def as_dict(self) -> dict[str, float | None | str]:
        return {
            "p_on_ms": self.p_on_ms, "p_peak_ms": self.p_peak_ms, "p_off_ms": self.p_off_ms,
            "qrs_on_ms": self.qrs_on_ms, "r_ms": self.r_ms, "qrs_off_ms": self.qrs_off_ms,
            "t_peak_ms": self.t_peak_ms, "t_end_ms": self.t_end_ms, "note": self.note,
        }


@dataclass(frozen=True, eq=False)
class Beat:
    """A representative (median) beat of a record and how it was obtained.

    ``ecg`` holds the beat (time 0 = window start); the R peak is sample ``r_index``. For every
    detected beat of the record, ``r_peaks`` gives its (aligned) R-peak sample and ``used`` whether
    it entered the median; ``rejected`` counts the others by reason (``edge``: window runs off the
    record, ``rr``: premature or after a pause, ``morphology``: low correlation with the template,
    ``noise``: residual far above the other beats'). ``beats`` are the aligned beats that were used
    (n_used, n_leads, n_samples) and ``correlation`` their correlation with the median over the
    QRS-T part of the window. ``excluded_leads`` maps requested leads that are not in the beat to
    the reason; ``derived_leads`` were computed from I and II (Einthoven/Goldberger).
    """

    ecg: Ecg
    r_index: int
    r_peaks: np.ndarray
    used: np.ndarray
    rejected: dict[str, int]
    rr_ms: np.ndarray
    correlation: np.ndarray
    beats: np.ndarray
    irregular_rhythm: bool = False
    excluded_leads: dict[str, str] = field(default_factory=dict)
    derived_leads: tuple[str, ...] = ()
    fiducials: Fiducials | None = None

    @property
    def n_used(self) -> int:
        return int(np.count_nonzero(self.used))

    @property
    def n_rejected(self) -> int:
        return int(len(self.used) - self.n_used)

    @property
    def r_ms(self) -> float:
        return self.r_index / self.ecg.fs * 1000.0

    @property
    def time_ms(self) -> np.ndarray:
        return self.ecg.time_ms

    @property
    def rr_median_ms(self) -> float:
        """Median RR interval of the record (ms); the RR used for QTc."""
        return float(np.median(self.rr_ms)) if len(self.rr_ms) else float("nan")

    @property
    def heart_rate_bpm(self) -> float:
        """Mean heart rate over the detected beats (60000 / mean RR)."""
        return 60000.0 / float(np.mean(self.rr_ms)) if len(self.rr_ms) else float("nan")


# ---------------------------------------------------------------------------------------- filters


def powerline_frequency(ecg: Ecg, min_ratio: float = 10.0) -> float | None:
    """50.0 or 60.0 when the spectrum shows mains interference, else ``None``.

    The summed Welch spectrum of all leads at each candidate (±1 Hz) is compared with its
    neighbourhood (2-6 Hz away); the candidate must stand ``min_ratio`` times (10 dB) above it.
    """
    fs = ecg.fs
    candidates = [f0 for f0 in (50.0, 60.0) if f0 + 7.0 < fs / 2]
    if not candidates:
        return None
    ratios = {f0: _line_ratio(ecg.signals, fs, f0) for f0 in candidates}
    best = max(ratios, key=ratios.get)
    return best if ratios[best] >= min_ratio else None


def _line_ratio(x: np.ndarray, fs: float, f0: float) -> float:
    nper = int(min(x.shape[1], round(4 * fs)))  # 0.25 Hz bins
    freqs, psd = sps.welch(x - x.mean(axis=1, keepdims=True), fs=fs, nperseg=nper, axis=1)
    psd = psd.sum(axis=0)
    off = np.abs(freqs - f0)
    peak = psd[off <= 1.0].max(initial=0.0)
    ref = np.median(psd[(off >= 2.0) & (off <= 6.0)]) if np.any((off >= 2.0) & (off <= 6.0)) else 0.0
    return float(peak / ref) if ref > 0 else (float("inf") if peak > 0 else 0.0)


def clean(
    ecg: Ecg,
    powerline_hz: float | None = None,
    *,
    highpass_hz: float = 0.5,
    lowpass_hz: float = 150.0,
) -> Ecg:
    """Zero-phase filtered copy of ``ecg``: baseline removal, powerline notch, low-pass.

    ``powerline_hz`` is 50, 60, or ``None`` to detect it from the spectrum (no notch when no line
    is found). Harmonics below the low-pass cut-off are notched too when they stand out. The
    low-pass cut-off is capped at 0.4 fs (100 Hz at 250 Hz sampling). All filters run forward and
    backward (``sosfiltfilt``/``filtfilt``), so waves keep their timing.
    """
    fs = ecg.fs
    if powerline_hz is not None and powerline_hz not in (50, 60):
        raise InputError(f"powerline_hz must be 50, 60 or None (auto-detect), got {powerline_hz!r}")
    if not 0 < highpass_hz < fs / 2:
        raise InputError(f"highpass_hz must lie in (0, {fs / 2:g}) Hz, got {highpass_hz}")
    n = ecg.n_samples
    if n < fs:  # the 0.5 Hz high-pass needs a few of its time constants to settle
        raise InvalidSignalError(
            f"record of {ecg.duration_ms:.0f} ms is too short to filter; give at least "
            f"{MIN_DURATION_S:g} s (10 s is the clinical standard)"
        )
    x = ecg.signals - np.median(ecg.signals, axis=1, keepdims=True)
    pad = int(min(n - 1, round(2 * fs)))
    hp = sps.butter(2, highpass_hz, btype="highpass", fs=fs, output="sos")
    x = sps.sosfiltfilt(hp, x, axis=1, padtype="odd", padlen=pad)

    cutoff = min(lowpass_hz, 0.4 * fs)
    line = powerline_hz if powerline_hz is not None else powerline_frequency(ecg)
    if line is not None and line < fs / 2 - 1:
        harmonic = 1
        while harmonic * line < fs / 2 - 1:
            f0 = harmonic * line
            if harmonic == 1 or (f0 < cutoff + 10 and _line_ratio(x, fs, f0) >= 10.0):
                b, a = sps.iirnotch(f0, Q=30.0, fs=fs)
                x = sps.filtfilt(b, a, x, axis=1, padtype="odd", padlen=pad)
            harmonic += 1
    lp = sps.butter(4, cutoff, btype="lowpass", fs=fs, output="sos")
    x = sps.sosfiltfilt(lp, x, axis=1, padtype="odd", padlen=pad)
    return Ecg(x, fs, ecg.leads)


def _lowpass(x: np.ndarray, fs: float, cutoff: float, order: int = 4) -> np.ndarray:
    cutoff = min(cutoff, 0.45 * fs)
    sos = sps.butter(order, cutoff, btype="lowpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1, padtype="odd", padlen=min(x.shape[-1] - 1, int(fs)))


# ------------------------------------------------------------------------------------ QRS detection


def detect_r_peaks(ecg: Ecg, *, refractory_ms: float = 200.0) -> np.ndarray:
    """Sample indices of the R peaks, from all leads jointly (Pan & Tompkins 1985).

    Works on raw or cleaned signals (its own 5-15 Hz band-pass removes baseline and hum). The
    detector runs on the moving-window integral of the squared spatial velocity; every accepted
    QRS is then placed on the extremum (of consistent polarity) of the lead with the largest QRS,
    within ±90 ms of the detection.
    """
    fs = ecg.fs
    if ecg.n_samples < 0.5 * fs:
        raise InvalidSignalError(f"record of {ecg.duration_ms:.0f} ms is too short to detect beats")
    x = ecg.signals
    pad = int(min(ecg.n_samples - 1, round(fs)))
    band = sps.butter(2, [5.0, min(15.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    y = sps.sosfiltfilt(band, x - x.mean(axis=1, keepdims=True), axis=1, padlen=pad)
    deriv = np.gradient(y, axis=1) * (fs / 1000.0)  # mV/ms
    energy = np.sum(deriv**2, axis=0)
    width = max(1, int(round(0.150 * fs)))
    mwi = np.convolve(energy, np.ones(width) / width, mode="same")  # centred: no delay
    if not np.any(mwi > 0):
        return np.zeros(0, dtype=np.int64)
    slope = np.sqrt(energy)
    refractory = max(1, int(round(refractory_ms * fs / 1000.0)))
    cand, _ = sps.find_peaks(mwi, distance=refractory)
    qrs = _pan_tompkins_decide(cand, mwi, slope, fs, refractory)
    if len(qrs) == 0:
        return np.zeros(0, dtype=np.int64)
    return _refine_r(x, fs, np.asarray(qrs), refractory)


def _pan_tompkins_decide(
    cand: np.ndarray, mwi: np.ndarray, slope: np.ndarray, fs: float, refractory: int
) -> list[int]:
    """Pan-Tompkins adaptive thresholds (signal/noise peak levels), T-wave test and search-back."""
    if len(cand) == 0:
        return []
    # initial signal/noise levels from the whole record's candidates (QRS make up the larger
    # ones), robust to a single artefact, where Pan & Tompkins learn from the first 2 s
    levels = np.sort(mwi[cand])[::-1]
    spki = float(np.median(levels[: max(1, int(0.3 * len(levels)))]))
    npki = float(np.median(levels[len(levels) // 2:]))
    half_slope = int(round(0.075 * fs))
    t_window = int(round(0.360 * fs))

    def max_slope(i: int) -> float:
        return float(slope[max(0, i - half_slope): i + half_slope + 1].max())

    qrs: list[int] = []
    qrs_slopes: list[float] = []
    rr: list[int] = []
    last_k = -1  # index in ``cand`` of the last accepted QRS
    for k, p in enumerate(cand):
        # search-back: no QRS for 1.66 mean RR -> take the largest candidate above the lower threshold
        if len(rr) >= 2 and qrs and p - qrs[-1] > 1.66 * np.mean(rr[-8:]):
            thr2 = 0.5 * (npki + 0.25 * (spki - npki))
            between = [j for j in range(last_k + 1, k) if cand[j] > qrs[-1] + refractory
                       and p - cand[j] > refractory]
            if between:
                j = max(between, key=lambda j: mwi[cand[j]])
                if mwi[cand[j]] > thr2:
                    last_k = j
                    rr.append(int(cand[j] - qrs[-1]))
                    qrs.append(int(cand[j]))
                    qrs_slopes.append(max_slope(int(cand[j])))
                    spki = 0.25 * mwi[cand[j]] + 0.75 * spki
        v = min(mwi[p], 3.0 * spki)  # bounded, so one artefact cannot lift the threshold for good
        thr1 = npki + 0.25 * (spki - npki)
        if v > thr1:
            s = max_slope(int(p))
            if qrs and p - qrs[-1] < t_window and s < 0.5 * qrs_slopes[-1]:
                npki = 0.125 * v + 0.875 * npki  # a T wave
                continue
            if qrs:
                rr.append(int(p - qrs[-1]))
            last_k = k
            qrs.append(int(p))
            qrs_slopes.append(s)
            spki = 0.125 * v + 0.875 * spki
        else:
            npki = 0.125 * v + 0.875 * npki
    return qrs


def _refine_r(x: np.ndarray, fs: float, qrs: np.ndarray, refractory: int) -> np.ndarray:
    """Move detections to the extremum of a reference lead (largest QRS, consistent polarity)."""
    n = x.shape[1]
    y = _bandpass_for_peaks(x, fs)
    half = int(round(0.090 * fs))
    offsets = np.arange(-half, half + 1)
    idx = np.clip(qrs[:, None] + offsets[None, :], 0, n - 1)  # (beats, window)
    seg = y[:, idx]  # (leads, beats, window)
    pos = np.median(seg.max(axis=2), axis=1)
    neg = np.median(-seg.min(axis=2), axis=1)
    lead = int(np.argmax(np.maximum(pos, neg)))
    polarity = 1.0 if pos[lead] >= neg[lead] else -1.0
    r = idx[np.arange(len(qrs)), np.argmax(polarity * seg[lead], axis=1)]
    r = np.unique(r)
    keep = [r[0]]
    for v in r[1:]:  # two detections of one complex collapse to the larger
        if v - keep[-1] < refractory:
            if polarity * y[lead, v] > polarity * y[lead, keep[-1]]:
                keep[-1] = v
        else:
            keep.append(v)
    return np.asarray(keep, dtype=np.int64)


def _bandpass_for_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    sos = sps.butter(2, [0.5, min(40.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x, axis=1, padlen=int(min(x.shape[1] - 1, round(fs))))


# ------------------------------------------------------------------------------------ median beat


def median_beat(
    ecg: Ecg,
    r_peaks: np.ndarray,
    before_ms: float = 350.0,
    after_ms: float = 600.0,
    *,
    min_corr: float = 0.9,
    rr_tolerance: float = 0.2,
    max_shift_ms: float = 10.0,
) -> Beat:
    """The sample-wise median of the aligned sinus beats of ``ecg`` (best on a cleaned record).

    Beats whose window [R - before_ms, R + after_ms] leaves the record are skipped. When the rhythm
    is regular, beats whose preceding RR differs from the median RR by more than ``rr_tolerance``
    (premature beats and beats after a pause), and beats whose window runs into a premature next
    beat, are rejected. The rhythm counts as irregular (e.g. atrial fibrillation; RR is then not
    used) when the median successive RR change exceeds 6 % of the median RR or more than a quarter
    of the beats would be rejected. The remaining beats are aligned to a first template by
    multi-lead cross-correlation of their QRS (R ± 100 ms, shifts up to ``max_shift_ms``), their
    per-lead level is matched to the template's, and beats whose QRS correlates below
    ``min_corr`` with the template, or whose residual over the QRS-T part is an outlier (median +
    5 MAD, and above both twice the median and ``NOISY_BEAT_MV``), are rejected before the final
    median. At least ``MIN_BEATS`` must remain (:class:`InvalidSignalError` otherwise).
    """
    fs = ecg.fs
    r = np.asarray(r_peaks)
    if r.ndim != 1 or not np.issubdtype(r.dtype, np.integer):
        raise InputError(f"r_peaks must be a 1-D array of sample indices, got {r.dtype} shape {r.shape}")
    if len(r) and (r.min() < 0 or r.max() >= ecg.n_samples or np.any(np.diff(r) <= 0)):
        raise InputError(
            f"r_peaks must be increasing sample indices within [0, {ecg.n_samples - 1}]; "
            "pass the output of detect_r_peaks on the same record"
        )
    if before_ms <= 0 or after_ms <= 0:
        raise InputError(f"before_ms and after_ms must be positive, got {before_ms}, {after_ms}")
    nb = int(round(before_ms * fs / 1000.0))
    na = int(round(after_ms * fs / 1000.0))
    shift = int(round(max_shift_ms * fs / 1000.0))
    rr_ms = np.diff(r) / fs * 1000.0
    rejected = {"edge": 0, "rr": 0, "morphology": 0, "noise": 0}

    fits = (r - nb - shift >= 0) & (r + na + shift < ecg.n_samples)
    rejected["edge"] = int(np.count_nonzero(~fits))
    ok = fits.copy()

    # RR screening (regular rhythms only)
    irregular = False
    if len(rr_ms) >= 2:
        med_rr = np.median(rr_ms)
        rr_pre = np.concatenate([[rr_ms[0]], rr_ms])  # first beat: judge by the following RR
        rr_post = np.concatenate([rr_ms, [rr_ms[-1]]])
        dev_pre = np.abs(rr_pre / med_rr - 1.0) > rr_tolerance
        premature_next = rr_post / med_rr < 1.0 - rr_tolerance  # window runs into an early beat
        flagged = dev_pre | (premature_next & (na / fs * 1000.0 > rr_post - 100.0))
        # irregular rhythm (e.g. atrial fibrillation): RR says nothing about ectopy there. Sinus
        # rhythm, even with respiratory arrhythmia, keeps the median successive RR change within a
        # few % (<= 4 % in the PTB records); the AF record JS00001 has 12 %.
        successive = np.median(np.abs(np.diff(rr_ms))) / med_rr
        irregular = bool(successive > 0.06 or np.mean(dev_pre) > 0.25)
        if not irregular:
            bad = ok & flagged
            rejected["rr"] = int(np.count_nonzero(bad))
            ok &= ~flagged
    candidates = np.flatnonzero(ok)
    _require_beats(len(candidates), len(r), rejected, ecg)

    offsets = np.arange(-nb, na + 1)
    rel = offsets / fs * 1000.0
    core_hi = after_ms if len(rr_ms) == 0 else min(after_ms, max(0.6 * float(np.median(rr_ms)), 250.0))
    qrs_mask = (rel >= -100.0) & (rel <= 100.0)
    core_mask = (rel >= -100.0) & (rel <= core_hi)

    def windows(centres: np.ndarray) -> np.ndarray:
        return ecg.signals[:, centres[:, None] + offsets[None, :]].transpose(1, 0, 2)  # (b, leads, s)

    # align to a first template by cross-correlation of the QRS region
    aligned = r.copy()
    template = np.median(windows(r[candidates]), axis=0)
    tq = template[:, qrs_mask]
    tq = tq - tq.mean(axis=1, keepdims=True)
    best = np.zeros(len(candidates), dtype=np.int64)
    best_score = np.full(len(candidates), -np.inf)
    for s in range(-shift, shift + 1):
        w = windows(r[candidates] + s)[:, :, qrs_mask]
        w = w - w.mean(axis=2, keepdims=True)
        score = np.einsum("bls,ls->b", w, tq) / (np.sqrt(np.einsum("bls,bls->b", w, w)) + 1e-12)
        better = score > best_score
        best[better], best_score[better] = s, score[better]
    aligned[candidates] = r[candidates] + best

    beats = windows(aligned[candidates])
    # remove each beat's per-lead level relative to the template (residual baseline wander, jumps)
    beats = beats - np.median(beats[:, :, core_mask] - template[None][:, :, core_mask], axis=2, keepdims=True)
    good = np.ones(len(candidates), dtype=bool)
    morph = noisy = np.zeros(len(candidates), dtype=bool)
    for it in range(2):  # template -> reject -> template from the kept beats -> reject
        template = np.median(beats[good], axis=0)
        corr_qrs = _corr(beats[:, :, qrs_mask], template[:, qrs_mask])
        new_morph = corr_qrs < min_corr
        resid = np.sqrt(np.mean((beats[:, :, core_mask] - template[None][:, :, core_mask]) ** 2, axis=(1, 2)))
        ref = resid[~new_morph] if np.any(~new_morph) else resid
        med_res = np.median(ref)
        mad = 1.4826 * np.median(np.abs(ref - med_res))
        new_noisy = (resid > med_res + 5.0 * mad) & (resid > max(2.0 * med_res, NOISY_BEAT_MV)) & ~new_morph
        if np.count_nonzero(~(new_morph | new_noisy)) < MIN_BEATS and it > 0:
            break  # keep the previous, still usable selection
        morph, noisy = new_morph, new_noisy
        good = ~(morph | noisy)
        if np.count_nonzero(good) < MIN_BEATS:
            break  # raised below
    rejected["morphology"] = int(np.count_nonzero(morph))
    rejected["noise"] = int(np.count_nonzero(noisy))
    ok[candidates] = good
    _require_beats(int(np.count_nonzero(ok)), len(r), rejected, ecg)

    used_beats = beats[ok[candidates]]
    median = np.median(used_beats, axis=0)
    correlation = _corr(used_beats[:, :, core_mask], median[:, core_mask])
    return Beat(
        ecg=Ecg(median, fs, ecg.leads),
        r_index=nb,
        r_peaks=aligned,
        used=ok,
        rejected=rejected,
        rr_ms=rr_ms,
        correlation=correlation,
        beats=used_beats,
        irregular_rhythm=irregular,
    )


def _corr(beats: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Correlation of each beat (b, leads, s) with the template (leads, s), leads concatenated.

    Each lead is referred to its own mean first, so baseline offsets between beats do not count.
    """
    b = (beats - beats.mean(axis=2, keepdims=True)).reshape(len(beats), -1)
    t = (template - template.mean(axis=1, keepdims=True)).reshape(-1)
    return (b @ t) / (np.linalg.norm(b, axis=1) * np.linalg.norm(t) + 1e-12)


def _require_beats(n_ok: int, n_total: int, rejected: dict[str, int], ecg: Ecg) -> None:
    if n_ok < MIN_BEATS:
        why = ", ".join(f"{k}: {v}" for k, v in rejected.items() if v) or "none rejected"
        raise InvalidSignalError(
            f"only {n_ok} usable beat(s) of {n_total} detected in {ecg.duration_ms / 1000:.1f} s "
            f"(rejected {why}); a median beat needs at least {MIN_BEATS}. Give a longer record "
            "(10 s is standard) or check the leads for noise"
        )


# ------------------------------------------------------------------------------------ delineation


def delineate(beat: Beat) -> Fiducials:
    """P, QRS and T fiducials of a median beat from all its leads jointly.

    QRS: the spatial velocity (SV, the norm of the lead derivatives after a 60 Hz low-pass) exceeds
    30 % of its peak over a "core" around R; the onset (offset) is the edge, nearest the core, of
    the first run of at least 10 ms before (after) it where SV stays under ``floor + 6 %`` of its
    range (floor: 10th percentile of SV over the beat). The run length keeps short dips inside the
    QRS (e.g. at a Q trough) from ending it. T: on the RMS over leads (each lead referred to its PQ
    junction level, 40 Hz low-pass) the T peak is the RMS maximum from J + 60 ms and the T end the
    maximum of Zhang et al.'s (2006) area indicator (area over a 128 ms window between the curve
    and the level at the candidate point), searched up to 60 ms before the next QRS. P: between the
    previous T end and the QRS, the RMS bump's onset and offset by the trapezium-area method
    (Vázquez-Seisdedos et al., BioMed Eng OnLine 10:77, 2011); reported only when the bump is at
    least 20 µV and the individual beats agree on it (median correlation with the median P at
    least ``P_MIN_CORR``), so atrial fibrillation's waves, which the median averages away, give none.
    """
    ecg = beat.ecg
    fs = ecg.fs
    n = ecg.n_samples
    r = beat.r_index
    to_ms = 1000.0 / fs

    def smp(ms: float) -> int:
        return int(round(ms * fs / 1000.0))

    if r < smp(150) or n - r < smp(300):
        raise InputError(
            f"beat window {-r * to_ms:.0f}..{(n - r) * to_ms:.0f} ms around R is too short to delineate: "
            "it needs at least 150 ms before R (300 ms to look for a P wave) and 300 ms after; "
            "use median_beat's defaults (350 ms before, 600 ms after)"
        )
    rr = beat.rr_median_ms if np.isfinite(beat.rr_median_ms) else 1000.0
    xs = _lowpass(ecg.signals, fs, 40.0)
    d = np.gradient(_lowpass(ecg.signals, fs, 60.0), axis=1) * (fs / 1000.0)
    sv = np.sqrt(np.sum(d**2, axis=0))

    # ---- QRS
    lo, hi = max(1, r - smp(120)), min(n - 2, r + smp(160))
    peak_idx = lo + int(np.argmax(sv[lo:hi]))
    peak = sv[peak_idx]
    floor = float(np.percentile(sv, 10))
    core = np.flatnonzero(sv[lo:hi] >= floor + 0.3 * (peak - floor)) + lo
    core_on, core_off = int(core[0]), int(core[-1])
    thr = floor + 0.06 * (peak - floor)
    run = max(2, smp(10))
    qrs_on = _quiet_edge(sv, thr, core_on, max(0, r - smp(250)), run, backward=True)
    qrs_off = _quiet_edge(sv, thr, core_off, min(n - 1, r + smp(250)), run, backward=False)

    # ---- T wave on the RMS of baseline-referred leads
    pq = slice(max(0, qrs_on - smp(20)), max(1, qrs_on - smp(5)))
    base = xs[:, pq].mean(axis=1, keepdims=True) if pq.stop > pq.start else xs[:, :1]
    rms = np.sqrt(np.mean((xs - base) ** 2, axis=0))
    next_qrs_on = qrs_on + smp(rr)
    t_lim = min(n - 1 - smp(5), next_qrs_on - smp(60))
    t_lo = qrs_off + smp(60)
    if t_lim - t_lo < smp(60):
        raise InvalidSignalError(
            f"cannot delineate the beat: QRS ends at {qrs_off * to_ms:.0f} ms and no room is left for a "
            f"T wave before {t_lim * to_ms:.0f} ms (window end or next beat); check the record (or "
            "after_ms of median_beat)"
        )
    t_peak, t_end = t_wave_bounds(rms, fs, t_lo, t_lim)

    # ---- P wave between the previous T end and the QRS
    fid = dict(
        qrs_on_ms=qrs_on * to_ms, r_ms=r * to_ms, qrs_off_ms=qrs_off * to_ms,
        t_peak_ms=t_peak * to_ms, t_end_ms=t_end * to_ms,
    )
    p = _find_p(beat, xs, base, qrs_on, t_end, rr, smp)
    if p is None:
        note = ("no P wave: none consistent across beats before the QRS (atrial fibrillation/flutter, "
                "junctional rhythm, or P too small to trust); the P window is left out")
        if beat.irregular_rhythm:
            note += "; the rhythm is irregular"
        return Fiducials(**fid, note=note)
    p_on, p_peak, p_off = p
    return Fiducials(**fid, p_on_ms=p_on * to_ms, p_peak_ms=p_peak * to_ms, p_off_ms=p_off * to_ms)


def _quiet_edge(sv: np.ndarray, thr: float, start: int, stop: int, run: int, backward: bool) -> int:
    """Walk from ``start`` towards ``stop`` to the first run of ``run`` samples with sv < thr.

    Returns the run's sample nearest the QRS (where the complex leaves the quiet segment).
    """
    step = -1 if backward else 1
    idx = np.arange(start, stop, step)
    if len(idx) == 0:
        return start
    below = sv[idx] < thr
    count = 0
    edge = None
    for k, b in enumerate(below):
        count = count + 1 if b else 0
        if count >= run:
            edge = k - run + 1
            break
    if edge is None:  # never quiet for long enough: the quietest point within ``run * 8`` samples
        near = idx[: 8 * run]
        return int(near[int(np.argmin(sv[near]))])
    return int(idx[edge])


def _trapezium_end(s: np.ndarray, ds: np.ndarray, peak: int, limit: int, min_span: int, span: int) -> int:
    """End of a positive wave peaking at ``peak`` by the trapezium area (Vázquez-Seisdedos 2011).

    From the steepest descent point tm after the peak (searched to ``min_span`` past the last
    half-maximum point, so a second hump does not fool it) to tr = tm + ``span`` (at most
    ``limit``), the end is the t maximising 0.5 (s[tm] - s[t]) (2 tr - t - tm).
    """
    if limit - peak < 3:
        return int(limit)
    seg = s[peak:limit + 1]
    half = peak + int(np.flatnonzero(seg >= 0.5 * s[peak])[-1])
    hi = min(limit, half + min_span)
    tm = peak + int(np.argmin(ds[peak:hi + 1]))
    tr = min(limit, tm + span)
    if tr - tm < 2:
        return int(tr)
    t = np.arange(tm, tr + 1)
    area = 0.5 * (s[tm] - s[t]) * (2 * tr - t - tm)
    return int(t[int(np.argmax(area))])


def _zhang_end(s: np.ndarray, peak: int, limit: int, window: int, smooth: int) -> int:
    """T end by Zhang et al.'s area indicator on a positive curve ``s`` (the RMS of the leads).

    For each candidate k in (peak, limit], A(k) = sum over the ``window`` samples up to k of
    (s[j] - level(k)), level(k) being s averaged over k +- ``smooth``; the end is argmax A.
    """
    k = np.arange(peak + 1, limit + 1)
    cs = np.concatenate([[0.0], np.cumsum(s)])
    lo = np.maximum(k - window + 1, 0)
    win_sum = cs[k + 1] - cs[lo]
    a0 = np.maximum(k - smooth, 0); a1 = np.minimum(k + smooth + 1, len(s))
    level = (cs[a1] - cs[a0]) / (a1 - a0)
    area = win_sum - (k + 1 - lo) * level
    return int(k[int(np.argmax(area))])


def _trapezium_start(s: np.ndarray, ds: np.ndarray, peak: int, limit: int, min_span: int, span: int) -> int:
    """Onset of a positive wave: the trapezium method on the time-reversed curve."""
    rev = s[::-1]
    n = len(s)
    end = _trapezium_end(rev, -ds[::-1], n - 1 - peak, n - 1 - limit, min_span, span)
    return n - 1 - end


def t_wave_bounds(rms: np.ndarray, fs: float, lo: int, limit: int) -> tuple[int, int]:
    """(peak, end) samples of the T wave on the RMS of baseline-referred leads ``rms``, searched in
    [lo, limit): the peak is the largest RMS there, the end Zhang et al.'s area indicator
    (:func:`_zhang_end`, 128 ms window), as :func:`delineate` bounds it."""
    smp = lambda ms: int(round(ms * fs / 1000.0))  # noqa: E731
    peak = lo + int(np.argmax(rms[lo:limit]))
    return peak, _zhang_end(rms, peak, limit, smp(128), smp(10))


def wave_bounds(rms: np.ndarray, fs: float) -> tuple[int, int, int]:
    """(onset, peak, offset) samples of the one wave on a positive curve ``rms`` (e.g. the RMS over
    leads of a simulated P wave), by the trapezium method that :func:`delineate` uses for the P
    wave (Vázquez-Seisdedos et al. 2011; same spans), so a simulated wave is bounded as a measured
    one is."""
    rms = np.asarray(rms, dtype=float)
    peak = int(np.argmax(rms))
    on, off = _p_edges(rms, peak, 0, len(rms) - 1, fs)
    return on, peak, off


def _p_edges(rms: np.ndarray, peak: int, lo: int, hi: int, fs: float) -> tuple[int, int]:
    """(onset, offset) samples of the P wave peaking at ``peak`` on ``rms``, searched in [lo, hi]:
    the trapezium method on both sides (20 ms past the half maximum, 80 ms spans)."""
    smp = lambda ms: int(round(ms * fs / 1000.0))  # noqa: E731
    drms = np.gradient(rms)
    return (_trapezium_start(rms, drms, peak, lo, smp(20), smp(80)),
            _trapezium_end(rms, drms, peak, hi, smp(20), smp(80)))


def _find_p(
    beat: Beat, xs: np.ndarray, base: np.ndarray, qrs_on: int, t_end: int, rr: float, smp
) -> tuple[int, int, int] | None:
    """(onset, peak, offset) samples of a P wave that is real and consistent across beats, else None."""
    fs = beat.ecg.fs
    hi = qrs_on - smp(10)
    # the P wave follows the previous beat's T end in (nearly) every beat: bound the search by a
    # short preceding RR (10th percentile), not the median, or an irregular rhythm lets the
    # previous T wave into the window
    prev = np.flatnonzero(beat.used)
    prev = prev[prev > 0]
    if len(prev):
        rr = min(rr, float(np.percentile(np.diff(beat.r_peaks)[prev - 1], 10)) / fs * 1000.0)
    lo = max(smp(10), t_end - smp(rr) + smp(40), qrs_on - smp(300))
    if hi - lo < smp(60):
        return None
    p_sig = _lowpass(xs, fs, 25.0) - base
    rms = np.sqrt(np.mean(p_sig**2, axis=0))
    seg = rms[lo:hi]
    floor = float(np.percentile(seg, 5))
    k = int(np.argmax(seg))
    peak = lo + k
    amp = seg[k] - floor
    # a P wave: a bump of at least 20 µV RMS that does not rise from the search edges
    if amp < 0.02 or k < smp(15) or k > len(seg) - 1 - smp(15):
        return None
    if min(seg[:k].min(), seg[k:].min()) > floor + 0.5 * amp:
        return None
    p_on, p_off = _p_edges(rms, peak, lo, hi, fs)
    if not (lo <= p_on < peak < p_off <= hi) or (p_off - p_on) < smp(40):
        return None
    # the individual beats must agree on it (AF fibrillatory waves average out and do not)
    if len(beat.beats) >= MIN_BEATS:
        region = slice(p_on, p_off + 1)
        med = beat.ecg.signals[:, region]
        ind = beat.beats[:, :, region]
        corr = _corr(ind, med)
        # real P waves (PTB, 12 records): median >= 0.9 and every beat > 0.5; synthetic AF: <= 0.66
        if np.median(corr) < P_MIN_CORR or np.mean(corr > 0.5) < 0.75:
            return None
    return p_on, peak, p_off


# ------------------------------------------------------------------------------------ preprocessing


def find_flat_leads(ecg: Ecg, min_amplitude_mv: float = FLAT_LEAD_MV) -> dict[str, str]:
    """Leads that carry no ECG: constant, or robust peak-to-peak below ``min_amplitude_mv``.

    Give a cleaned record (baseline wander and hum would otherwise hide a dead lead). The
    robust peak-to-peak is the 99.5th minus the 0.5th percentile.
    """
    x = ecg.signals
    lo, hi = np.percentile(x, [0.5, 99.5], axis=1)
    spread = hi - lo
    still = np.mean(np.diff(x, axis=1) == 0, axis=1)
    out = {}
    for lead, a, z in zip(ecg.leads, spread, still):
        if z > 0.9 or a < min_amplitude_mv:
            out[lead] = f"flat (robust peak-to-peak {a * 1000:.0f} µV < {min_amplitude_mv * 1000:.0f} µV)"
    return out


def pq_level(signals: np.ndarray, fid: Fiducials, fs: float) -> np.ndarray:
    """Per-lead isoelectric level (L, 1) of a median beat ``signals`` (L, n): the mean over the
    flattest ``PQ_WINDOW_MS`` stretch of the PR segment (smallest peak-to-peak range summed over
    leads), searched from halfway between the P peak and the P offset (60 ms before the QRS onset
    without a P wave) to 5 ms before the delineated QRS onset.

    The PQ junction is the conventional zero of the ECG (Kligfield et al. 2007, Circulation
    115:1306). A fixed window just before the delineated onset is not enough: a slow,
    low-amplitude QRS start (one root activating alone for tens of ms) lies below the delineation
    threshold, the onset is found late, and such a window sits on the slow start and shifts the
    whole lead by its amplitude (0.1-0.2 mV in V1/V2 of the demo)."""
    signals = np.asarray(signals, dtype=float)
    ms = fs / 1000.0
    width = max(2, int(round(PQ_WINDOW_MS * ms)))
    stop = max(width, int(round((fid.qrs_on_ms - 5.0) * ms)))
    if fid.has_p and fid.p_peak_ms is not None and fid.p_off_ms is not None:
        start_ms = 0.5 * (fid.p_peak_ms + fid.p_off_ms)
    else:
        start_ms = fid.qrs_on_ms - 60.0
    start = int(np.clip(round(start_ms * ms), 0, stop - width))
    seg = signals[:, start:stop]
    windows = np.lib.stride_tricks.sliding_window_view(seg, width, axis=1)  # (L, n_win, width)
    k = int(np.argmin(np.ptp(windows, axis=2).sum(axis=0)))
    return seg[:, k:k + width].mean(axis=1, keepdims=True)


def preprocess(
    ecg: Ecg,
    leads: Sequence[str] = TWELVE_LEADS,
    *,
    powerline_hz: float | None = None,
    min_leads: int = 6,
    before_ms: float = 350.0,
    after_ms: float = 600.0,
    min_corr: float = 0.9,
) -> Beat:
    """Record -> clean -> R peaks -> median beat -> fiducials, on the requested ``leads``.

    Requested leads that are absent or flat are left out of the beat and listed in
    ``Beat.excluded_leads`` (lead -> reason), so calibration can use the leads present; absent or
    flat limb leads III, aVR, aVL, aVF are computed from the median I and II when those are usable
    (listed in ``Beat.derived_leads``; they then obey Einthoven/Goldberger exactly). Leads not
    requested (e.g. PTB's Frank leads vx, vy, vz) are ignored. Each lead of the median beat is
    referred to its PQ-junction level (isoelectric line = 0 mV), the convention of simulated ECGs.

    Raises :class:`InvalidSignalError` for a record shorter than 2 s or with fewer than 3 usable
    beats, :class:`MissingLeadsError` when fewer than ``min_leads`` usable leads remain (lower
    ``min_leads`` to accept a degraded beat from, e.g., a 3-lead record: fiducials then rest on
    fewer projections of the heart's dipole, QRS onset/offset tend to move inwards and P may be
    missed).
    """
    if min_leads < 1:
        raise InputError(f"min_leads must be at least 1, got {min_leads}")
    if ecg.duration_ms < MIN_DURATION_S * 1000.0:
        raise InvalidSignalError(
            f"record is {ecg.duration_ms / 1000:.2f} s long; a median beat needs at least "
            f"{MIN_DURATION_S:g} s (10 s is the clinical standard)"
        )
    wanted = [canonical_lead_name(lead) for lead in leads]
    if len(set(wanted)) != len(wanted):
        raise InputError(f"duplicate leads requested: {list(leads)}")
    excluded: dict[str, str] = {}
    present = [lead for lead in wanted if lead in ecg.leads]
    for lead in wanted:
        if lead not in ecg.leads:
            excluded[lead] = "absent from the record"
    if not present:
        raise MissingLeadsError(
            f"none of the requested leads {wanted} is in the record (it has {list(ecg.leads)})"
        )
    filtered = clean(ecg.select(present), powerline_hz)
    flat = find_flat_leads(filtered)
    excluded.update(flat)
    good = [lead for lead in present if lead not in flat]

    derived: list[str] = []
    if {"I", "II"} <= set(good):
        derived = [lead for lead in _LIMB_DERIVABLE if lead in wanted and lead not in good]
    n_usable = len(good) + len(derived)
    if n_usable < min_leads:
        raise MissingLeadsError(
            f"only {n_usable} usable lead(s) {good + derived} (min_leads={min_leads}); excluded: "
            + "; ".join(f"{k}: {v}" for k, v in excluded.items())
            + ". Fix the recording, or pass min_leads to accept a beat from fewer leads"
        )
    filtered = filtered.select(good)
    r_peaks = detect_r_peaks(filtered)
    if len(r_peaks) < MIN_BEATS:
        raise InvalidSignalError(
            f"found {len(r_peaks)} beat(s) in {ecg.duration_ms / 1000:.1f} s; a median beat needs at "
            f"least {MIN_BEATS}. Give a longer record or check that the leads carry an ECG"
        )
    beat = median_beat(filtered, r_peaks, before_ms, after_ms, min_corr=min_corr)
    fid = delineate(beat)
    fs = beat.ecg.fs
    level = pq_level(beat.ecg.signals, fid, fs)
    median = beat.ecg.signals - level
    beats = beat.beats - level[None]
    if derived:
        # limb leads from the *median* I and II, so the beat obeys Einthoven/Goldberger exactly
        rows = dict(zip(good, median))
        per_beat = dict(zip(good, beats.transpose(1, 0, 2)))
        for table in (rows, per_beat):
            one, two = table["I"], table["II"]
            formulas = {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2, "aVF": two - one / 2}
            for lead in derived:
                table[lead] = formulas[lead]
        for lead in derived:
            excluded.pop(lead, None)
        good = [lead for lead in wanted if lead in rows]
        median = np.vstack([rows[lead] for lead in good])
        beats = np.stack([per_beat[lead] for lead in good], axis=1)
    beat = replace(
        beat,
        ecg=Ecg(median, fs, tuple(good)),
        beats=beats,
        excluded_leads=excluded,
        derived_leads=tuple(derived),
    )
    return replace(beat, fiducials=fid)


def beat_from_r_peaks(ecg: Ecg, r_peaks: np.ndarray) -> Beat:
    """:func:`preprocess` with known R peaks (a simulated record, where a detector may take steep T
    waves for R waves): clean, median beat, delineation, isoelectric (PR-segment) reference."""
    from dataclasses import replace

    beat = median_beat(clean(ecg), np.asarray(r_peaks, dtype=np.int64))
    fid = delineate(beat)
    fs = beat.ecg.fs
    level = pq_level(beat.ecg.signals, fid, fs)
    return replace(beat, ecg=Ecg(beat.ecg.signals - level, fs, beat.ecg.leads), beats=beat.beats - level[None],
                   fiducials=fid)
