"""The mismatch between simulated beats and a patient's median beat, window by window.

The patient's record is reduced to one median beat with fiducials by
:func:`cardiotwin.ecg.signal.preprocess`; the model is compared with it over the QRS complex, the
ST-T segment (QRS offset to T end) and, when the record has one, the P wave, following the
ECG-based calibration of sinus-rhythm eikonal models by Gillette et al. 2021 (Med Image Anal
71:102080) and Camps et al. 2021 (Med Image Anal 71:102047; 2024), who fit QRS morphology
lead by lead.

**Alignment.** Measured and simulated beats have no common clock. The QRS onset of the measured
beat (``Fiducials.qrs_on_ms``, from the multi-lead spatial velocity) is put on the simulated
ventricular onset (the earliest ventricular activation time, which is exact in the model). The
delineator marks the onset where the spatial velocity leaves the noise, a few ms after the first
myocardium is excited, and that bias depends on the noise; so the simulated beat may in addition
slide by a common lag of at most ``max_lag_ms`` (default 10 ms), the same for all leads, chosen to
minimise the mismatch. The lag found on the QRS is then kept for the T and P windows, so the whole
beat shares one time axis (the PR interval and QT are fitted, not aligned away).

A QRS that starts slowly (one early root node exciting a small region for 20-40 ms before the rest
of the septum) has a first part of so low amplitude that no threshold separates it from the noise:
the delineated onset is then late by tens of ms, never early by as much. ``lead_in_ms`` handles that
asymmetric bias: the compared window starts ``lead_in_ms`` before the delineated onset (not before
the P wave's peak: the P offset itself is found late when the P wave runs into a slow QRS start,
the two bumps merging on the RMS curve, and the simulated beat has its P wave too) and the
simulated onset may precede the delineated one by up to ``max_lag_ms + lead_in_ms``. Whatever the
model puts before the delineated onset is thus compared with what the record has there
(near-isoelectric, or the slow start itself), so an early model onset is allowed only when the
record's lead-in agrees with it; with ``lead_in_ms = 0`` the window is the
delineated QRS and the lag symmetric. The reported per-lead QRS correlations are always taken over
the delineated QRS.

**Amplitude: one beat, one scale.** Absolute amplitudes depend on the heart's size and position in
the torso, the torso's conductivities and the electrode positions, none of which the twin knows
exactly for a patient (and not at all when the anatomy is not the patient's). The simulated leads
are therefore scaled by a least-squares gain before the RMSE is taken, and that scale belongs to
the beat, not to a wave: it is fitted on the QRS (the largest, best-delineated wave) and then
passed as ``fixed_gain`` to the T and P windows, so the twin's T/QRS and P/QRS amplitude ratios
must be the patient's (a wave with its own gain would hide a T wave three times too tall).
``gain="lead"`` (default) gives every lead its own non-negative gain (the lead amplitudes need not
be the patient's: the RMSE is normalised lead by lead, so a small limb lead weighs as much as a
large precordial one, as in the correlation term); ``gain="global"`` uses one gain for all leads,
which keeps the relative amplitudes of the leads (the direction of the heart vector, the R-wave
progression) as information; ``gain="none"`` compares millivolts.

**Mismatch.** Over a window with leads l = 1..L (the leads present in the beat; absent or flat
leads were excluded by ``preprocess`` and are skipped):

    r_l    = Pearson correlation of simulated and measured lead l
    NRMSE  = sqrt( sum_l |g_l s_l - m_l|^2 / sum_l |m_l|^2 )        (global or no gain)
    NRMSE  = sqrt( mean_l |g_l s_l - m_l|^2 / |m_l|^2 )              (per-lead gains)
    loss   = w_corr * mean_l (1 - r_l) + w_rmse * NRMSE

Correlation measures morphology lead by lead and is blind to amplitude; the normalised RMSE with
the gain penalises wrong relative amplitudes and residual offsets. Everything is vectorised over a
batch of simulations and all lags at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cardiotwin.ecg.signal import Beat, Fiducials, preprocess
from cardiotwin.errors import InputError, InvalidParameterError, InvalidSignalError, MissingLeadsError
from cardiotwin.types import TWELVE_LEADS, Ecg

__all__ = ["WINDOWS", "BEAT", "LEAD_IN_MS", "Target", "WindowFit", "Mismatch", "pearson"]

WINDOWS = ("QRS", "T", "P")
T_TAIL_MS = 80.0
"""The T window runs on past the delineated T end by this much of the isoelectric TP segment: the
patient is flat there, so a twin's T wave that ends too late (or is pushed out of the window to
shrink its mismatch) is compared with that flat line instead of escaping the comparison."""
BEAT = "beat"
"""The whole compared beat, P onset (QRS onset without a P wave) to T end: the window of the
reported whole-beat NRMSE at the beat's one scale."""
GAINS = ("global", "lead", "none")
LEAD_IN_MS = 40.0
"""Lead-in of the calibration's QRS window (see the module docstring): a root may fire up to 30 ms
(:data:`~cardiotwin.calibration.space.DELAY_RANGE_MS`) before the rest, and 40 ms covers that start
plus the delineator's usual few ms."""
MIN_LEADS = 6
"""Fewest usable leads a calibration accepts by default (below it, the heart's dipole is seen from
too few directions for root nodes to be identifiable)."""


@dataclass(frozen=True, eq=False)
class Target:
    """The measured median beat as the calibration sees it: the usable standard leads, the
    fiducials, and what was left out and why."""

    signals: np.ndarray  # (L, n) mV, isoelectric line at 0
    fs: float
    leads: tuple[str, ...]
    fiducials: Fiducials
    excluded_leads: dict[str, str] = field(default_factory=dict)
    irregular_rhythm: bool = False

    @classmethod
    def from_beat(cls, beat: Beat, min_leads: int = MIN_LEADS) -> "Target":
        """The standard leads of a preprocessed beat; raises :class:`MissingLeadsError` when fewer
        than ``min_leads`` remain and :class:`InvalidSignalError` without fiducials."""
        if not isinstance(beat, Beat):
            raise InputError(f"expected a cardiotwin Beat (from preprocess), got {type(beat).__name__}")
        if beat.fiducials is None:
            raise InvalidSignalError("the beat has no fiducials: make it with cardiotwin.ecg.signal.preprocess")
        leads = tuple(l for l in TWELVE_LEADS if l in beat.ecg.leads)
        excluded = dict(beat.excluded_leads)
        excluded.update({l: "absent from the beat" for l in TWELVE_LEADS if l not in leads and l not in excluded})
        if len(leads) < min_leads:
            raise MissingLeadsError(
                f"only {len(leads)} usable standard lead(s) {list(leads)} (min_leads={min_leads}); excluded: "
                + "; ".join(f"{k}: {v}" for k, v in excluded.items())
                + ". Root nodes are not identifiable from so few projections; pass min_leads to accept it"
            )
        fid = beat.fiducials
        if not (0.0 <= fid.qrs_on_ms < fid.qrs_off_ms < fid.t_end_ms <= beat.ecg.duration_ms):
            raise InvalidSignalError(f"inconsistent fiducials {fid.as_dict()} for a {beat.ecg.duration_ms:.0f} ms beat")
        return cls(beat.ecg.select(leads).signals, beat.ecg.fs, leads, fid, excluded, beat.irregular_rhythm)

    @classmethod
    def from_ecg(cls, ecg: Ecg | Beat, min_leads: int = MIN_LEADS, **preprocess_kwargs) -> "Target":
        """Preprocess a record (or take a ready beat) and keep its standard leads."""
        if isinstance(ecg, Beat):
            return cls.from_beat(ecg, min_leads)
        if not isinstance(ecg, Ecg):
            raise InputError(f"expected a cardiotwin Ecg or Beat, got {type(ecg).__name__}")
        preprocess_kwargs.setdefault("min_leads", min_leads)
        return cls.from_beat(preprocess(ecg, **preprocess_kwargs), min_leads)

    @property
    def has_p(self) -> bool:
        return self.fiducials.has_p

    @property
    def qrs_on_ms(self) -> float:
        return float(self.fiducials.qrs_on_ms)

    def window_ms(self, name: str) -> tuple[float, float]:
        """(start, stop) of a window in ms on the beat's axis."""
        if name == BEAT:
            fid = self.fiducials
            return float(fid.p_on_ms if fid.has_p else fid.qrs_on_ms), float(fid.t_end_ms)
        if name not in WINDOWS:
            raise InvalidParameterError(f"unknown window {name!r}; choose from {WINDOWS + (BEAT,)}")
        win = self.fiducials.windows[name]
        if win is None:
            raise InvalidSignalError(f"the beat has no {name} wave ({self.fiducials.note or 'not found'})")
        if name == "T":  # and the isoelectric stretch after it, where the twin must be flat too
            return float(win[0]), float(min(win[1] + T_TAIL_MS, self.signals.shape[1] * 1000.0 / self.fs))
        return float(win[0]), float(win[1])

    def beat_ecg(self) -> Ecg:
        return Ecg(self.signals, self.fs, self.leads)


def pearson(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis`` (0 where either signal is constant)."""
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    num = (a * b).sum(axis=axis)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


@dataclass(frozen=True)
class WindowFit:
    """Mismatch of b simulated beats over one window."""

    window: str
    leads: tuple[str, ...]
    loss: np.ndarray  # (b,)
    correlation: np.ndarray  # (b, L)
    nrmse: np.ndarray  # (b,)
    gain: np.ndarray  # (b, L)
    lag_ms: np.ndarray  # (b,)

    def per_lead(self, k: int = 0) -> dict[str, float]:
        return {l: float(c) for l, c in zip(self.leads, self.correlation[k])}


class Mismatch:
    """Mismatch of simulated beats with the target over one window (see the module docstring).

    Simulations are passed as segments ``(b, L, n)`` in the target's leads, sampled at the target's
    rate, whose sample 0 lies at ``span_ms[0]`` after the simulated ventricular onset; simulate
    ``[onset + span_ms[0], onset + span_ms[1])``. A positive lag means the simulated onset precedes
    the delineated one; lags range over ``[-max_lag_ms, max_lag_ms + lead_in]`` where ``lead_in`` is
    ``lead_in_ms`` cut to the room before the window (beat start, or the P peak for the QRS).
    """

    def __init__(self, target: Target, window: str = "QRS", *, gain: str = "global", max_lag_ms: float = 10.0,
                 lead_in_ms: float = 0.0, corr_weight: float = 1.0, rmse_weight: float = 1.0,
                 fixed_gain: np.ndarray | None = None):
        if gain not in GAINS:
            raise InvalidParameterError(f"gain must be one of {GAINS}, got {gain!r}")
        if fixed_gain is not None:
            fixed_gain = np.asarray(fixed_gain, dtype=np.float64)
            if fixed_gain.shape != (len(target.leads),) or not np.all(np.isfinite(fixed_gain)) or np.any(fixed_gain < 0):
                raise InvalidParameterError(f"fixed_gain must be {len(target.leads)} finite gains >= 0 (one per lead "
                                            f"of the target), got {fixed_gain}")
        self.fixed_gain = fixed_gain
        if not (np.isfinite(max_lag_ms) and 0.0 <= max_lag_ms <= 100.0):
            raise InvalidParameterError(f"max_lag_ms must lie in [0, 100] ms, got {max_lag_ms}")
        if not (np.isfinite(lead_in_ms) and 0.0 <= lead_in_ms <= 100.0):
            raise InvalidParameterError(f"lead_in_ms must lie in [0, 100] ms, got {lead_in_ms}")
        if corr_weight < 0 or rmse_weight < 0 or corr_weight + rmse_weight <= 0:
            raise InvalidParameterError("corr_weight and rmse_weight must be >= 0 and not both 0")
        self.target, self.window, self.gain = target, window, gain
        self.corr_weight, self.rmse_weight = float(corr_weight), float(rmse_weight)
        fs = target.fs
        w0, w1 = target.window_ms(window)
        i0, i1 = int(round(w0 * fs / 1000.0)), int(round(w1 * fs / 1000.0))
        i1 = min(max(i1, i0 + 3), target.signals.shape[1])
        floor = 0
        if window == "QRS" and target.fiducials.p_peak_ms is not None:
            floor = int(round(target.fiducials.p_peak_ms * fs / 1000.0))
        lead = int(np.clip(round(lead_in_ms * fs / 1000.0), 0, max(i0 - floor, 0)))
        self.lead_in_ms = lead / fs * 1000.0
        i0 -= lead
        self.measured = target.signals[:, i0:i1]
        self.n = self.measured.shape[1]
        self.max_lag = int(round(max_lag_ms * fs / 1000.0))
        self.lag_range = (-self.max_lag, self.max_lag + lead)  # samples
        q = int(round(target.qrs_on_ms * fs / 1000.0))
        self.offset = i0 - q  # window start relative to the QRS onset (samples)
        self._first_sample = i0  # the window's first sample on the measured beat
        lo = (self.offset + self.lag_range[0]) / fs * 1000.0
        hi = (self.offset + self.n + self.lag_range[1]) / fs * 1000.0
        self.span_ms = (lo, hi)
        m = self.measured
        self._mc = m - m.mean(axis=1, keepdims=True)
        self._mm = (m * m).sum(axis=1)  # (L,)
        self._mc_norm = np.sqrt((self._mc**2).sum(axis=1))

    def measured_ms(self, sample: np.ndarray, lag_ms: np.ndarray) -> np.ndarray:
        """Time (ms, on the measured beat's axis) that simulated segment sample ``sample`` takes at
        lag ``lag_ms`` (broadcast together): the segment is compared from sample lag - lag_range[0]."""
        fs = self.target.fs
        lag = np.clip(np.round(np.asarray(lag_ms) * fs / 1000.0), *self.lag_range)
        return (self._first_sample + np.asarray(sample) - (lag - self.lag_range[0])) * 1000.0 / fs

    def segment_sample(self, ms: float, lag_ms: float) -> int:
        """The simulated segment's sample that lies at ``ms`` on the measured axis at lag ``lag_ms``
        (the inverse of :meth:`measured_ms`)."""
        fs = self.target.fs
        lag = int(np.clip(round(lag_ms * fs / 1000.0), *self.lag_range))
        return int(round(ms * fs / 1000.0)) - self._first_sample + lag - self.lag_range[0]

    @property
    def n_samples(self) -> int:
        """Samples a simulated segment must have."""
        return self.n + self.lag_range[1] - self.lag_range[0]

    def _segments(self, sims: np.ndarray) -> np.ndarray:
        """Simulated segments as (b, L, >= n_samples) float64, or a clear error."""
        s = np.asarray(sims, dtype=np.float64)
        if s.ndim == 2:
            s = s[None]
        L = len(self.target.leads)
        if s.ndim != 3 or s.shape[1] != L or s.shape[2] < self.n_samples:
            raise InvalidParameterError(f"simulated segments must be (b, {L}, >= {self.n_samples}), got {s.shape}")
        return s

    def _gains(self, sxm: np.ndarray, sxx: np.ndarray) -> np.ndarray:
        """Least-squares amplitude gains, shaped like ``sxm`` (leads on axis 1), from the products
        sum(s m) and sum(s s) of each simulated lead with the measured one and with itself; the
        ``fixed_gain`` of the beat where one was given (the scale set on the QRS, kept for P and T)."""
        if self.fixed_gain is not None:
            shape = (1, len(self.fixed_gain)) + (1,) * (sxm.ndim - 2)
            return np.broadcast_to(self.fixed_gain.reshape(shape), sxm.shape)
        if self.gain == "global":
            g = np.maximum(sxm.sum(axis=1, keepdims=True), 0.0) / np.maximum(sxx.sum(axis=1, keepdims=True), 1e-300)
            return np.broadcast_to(g, sxm.shape)
        if self.gain == "lead":
            return np.maximum(sxm, 0.0) / np.maximum(sxx, 1e-300)
        return np.ones_like(sxm)

    def __call__(self, sims: np.ndarray, lag_ms: float | np.ndarray | None = None,
                 lag_cost: Callable[[np.ndarray], np.ndarray] | None = None) -> WindowFit:
        """Fit of simulated segments ``(b, L, n_samples)``; ``lag_ms`` fixes the lag (else searched).
        ``lag_cost`` maps the candidate lags (K,) in ms to a cost (b, K) added to the loss before the
        best lag is chosen (e.g. an interval feature that the lag moves, :mod:`.optimise`'s P stage)."""
        s = self._segments(sims)
        b = s.shape[0]
        fs = self.target.fs
        lag_lo, lag_hi = self.lag_range
        if lag_ms is None:
            lags = np.arange(lag_lo, lag_hi + 1)
        else:
            lag_arr = np.broadcast_to(np.asarray(lag_ms, dtype=float), (b,))
            lags = np.unique(np.clip(np.round(lag_arr * fs / 1000.0).astype(int), lag_lo, lag_hi))
        views = sliding_window_view(s[:, :, : self.n_samples], self.n, axis=2)[:, :, lags - lag_lo]  # (b,L,K,n)
        sxm = np.einsum("blkn,ln->blk", views, self.measured)
        sxx = np.einsum("blkn,blkn->blk", views, views)
        ssum = views.sum(axis=3)
        # Pearson: cov = sum(s m_c) since m_c has zero mean
        cov = np.einsum("blkn,ln->blk", views, self._mc)
        var_s = np.maximum(sxx - ssum**2 / self.n, 0.0)
        den = np.sqrt(var_s) * self._mc_norm[None, :, None]
        corr = np.where(den > 1e-300, cov / np.where(den > 1e-300, den, 1.0), 0.0)
        mm = self._mm[None, :, None]
        g = self._gains(sxm, sxx)
        resid = np.maximum(g * g * sxx - 2.0 * g * sxm + mm, 0.0)  # (b, L, K)
        if self.gain == "lead":  # amplitudes are free per lead: each lead's shape counts alike
            nrmse = np.sqrt((resid / np.maximum(mm, 1e-300)).mean(axis=1))
        else:
            nrmse = np.sqrt(resid.sum(axis=1) / max(float(self._mm.sum()), 1e-300))
        loss = self.corr_weight * (1.0 - corr).mean(axis=1) + self.rmse_weight * nrmse  # (b, K)
        if lag_cost is not None:
            loss = loss + np.broadcast_to(lag_cost(lags / fs * 1000.0), loss.shape)
        if lag_ms is None:
            best = np.argmin(loss, axis=1)
        else:
            best = np.searchsorted(lags, np.clip(np.round(lag_arr * fs / 1000.0).astype(int), lag_lo, lag_hi))
        rows = np.arange(b)
        return WindowFit(self.window, self.target.leads, loss[rows, best], corr[rows, :, best], nrmse[rows, best],
                         np.ascontiguousarray(g[rows, :, best]), lags[best] / fs * 1000.0)

    def residuals(self, sims: np.ndarray, lag_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """The mismatch at a fixed lag as residual vectors ``(r_corr, r_rmse)``, each (b, L * n),
        with ``loss = |r_corr|^2 + rmse_weight * |r_rmse|`` (for least-squares refinement,
        :mod:`.refine`). Per lead, ``1 - r = |u - v|^2 / 2`` for the centred, unit-norm simulated
        and measured signals u, v, so ``r_corr = sqrt(corr_weight / 2L) (u - v)``; ``r_rmse`` is the
        gain-scaled difference normalised as in the NRMSE."""
        s = self._segments(sims)
        L = s.shape[1]
        k = int(np.clip(round(lag_ms * self.target.fs / 1000.0), *self.lag_range)) - self.lag_range[0]
        s = s[:, :, k:k + self.n]
        m = self.measured
        sxm, sxx = (s * m).sum(axis=2), (s * s).sum(axis=2)  # (b, L)
        g = self._gains(sxm, sxx)
        if self.gain == "lead":
            norm = np.sqrt(L * np.maximum(self._mm, 1e-300))
        else:
            norm = np.full(L, np.sqrt(max(float(self._mm.sum()), 1e-300)))
        r_rmse = (g[:, :, None] * s - m[None]) / norm[None, :, None]
        u = s - s.mean(axis=2, keepdims=True)
        un = np.linalg.norm(u, axis=2, keepdims=True)
        u = np.where(un > 0, u / np.where(un > 0, un, 1.0), 0.0)
        v = self._mc / np.maximum(self._mc_norm, 1e-300)[:, None]
        r_corr = np.sqrt(self.corr_weight / (2.0 * L)) * (u - v[None])
        b = len(s)
        return r_corr.reshape(b, -1), r_rmse.reshape(b, -1)
