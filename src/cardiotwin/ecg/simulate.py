"""The ECG of an eikonal simulation through precomputed lead fields: direct, fast and batched.

With the lead field Z_l of electrode l (the potential there due to a unit current injected at x,
by reciprocity; computed once per torso in :mod:`cardiotwin.ecg.leadfield`) the extracellular
potential at the electrode is

    phi_l(t) = - int sigma_i grad V_m(x, t) . grad Z_l(x) dx

(Geselowitz 1989, IEEE Trans Biomed Eng 36:1215; Potse 2018, Front Physiol 9:370; Gillette et al.
2021, Med Image Anal 71:102080). With P1 elements on the heart mesh, phi_l(t) = w_l^T V_m(t) with
per-node weights w_l = -K_i Z_l (K_i the stiffness matrix with the intracellular conductivity),
precomputed once (:func:`leadfield_weights`). The simulators here take those weights as an
(L, n) array.

The transmembrane voltage is a template (:class:`~cardiotwin.electrophysiology.action_potential.
ApShape`) V_n(t) = V_rest + f(t - AT_n) + g(t - RT_n), so by linearity

    phi_l = V_rest sum_n w_ln + (sum_n w_ln delta(t - AT_n)) * f + (sum_n w_ln delta(t - RT_n)) * g.

:func:`ecg_direct` forms the nodes x samples voltage matrix (the reference, O(n T) per lead).
:func:`ecg_fast` bins the AT and RT impulses onto a time grid ``oversample`` times finer than the
output, splitting each weight linearly between the two neighbouring bins (sub-sample placement
with an O(step^2) error, exact for times on the grid), and convolves the two impulse trains with
the sampled f and g by FFT (in difference form, f and g being constant outside short supports):
O(n L + L S log S) for S fine samples instead of O(n L T). Impulses long before the window (where
f or g has already reached its final value) add a constant; impulses after it add nothing.
:func:`ecg_fast_batch` does the same for many parameter sets at once.

Nodes that never activate (AT = +inf) stay at rest (only V_rest sum w, which vanishes for true
lead-field weights since K_i 1 = 0); a node with finite AT and RT = +inf stays on its plateau.

:func:`twelve_lead` turns electrode potentials into the standard 12 leads: Einthoven's I, II, III,
Goldberger's augmented aVR, aVL, aVF, and V1-V6 against Wilson's central terminal
(WCT = (RA + LA + LL) / 3).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp
from numba import njit, prange

from cardiotwin.electrophysiology.action_potential import ApShape, check_times
from cardiotwin.errors import InvalidFieldError, InvalidParameterError, MissingLeadsError
from cardiotwin.types import TWELVE_LEADS, Ecg

__all__ = [
    "ELECTRODES",
    "time_axis",
    "leadfield_weights",
    "ecg_direct",
    "ecg_fast",
    "ecg_fast_batch",
    "lead_matrix",
    "twelve_lead",
]

#: the nine electrodes the 12-lead ECG needs (RL, the driven ground, is accepted and ignored)
ELECTRODES = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")

#: default fine grid: at least this many fine steps per upstroke (see :func:`ecg_fast`)
_STEPS_PER_UPSTROKE = 6.0
#: parameter sets binned and transformed together in ecg_fast_batch
_BATCH_CHUNK = 8


# ------------------------------------------------------------------------------------ checks


def _n_samples(fs: float, duration_ms: float, t0_ms: float) -> int:
    for name, value in (("fs", fs), ("duration_ms", duration_ms), ("t0_ms", t0_ms)):
        if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
            raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    if fs <= 0:
        raise InvalidParameterError(f"sampling rate fs must be positive (Hz), got {fs}")
    if duration_ms <= 0:
        raise InvalidParameterError(f"duration_ms must be positive (ms), got {duration_ms}")
    n = int(round(duration_ms * fs / 1000.0))
    if n < 2:
        raise InvalidParameterError(
            f"{duration_ms} ms at {fs} Hz gives {n} sample(s); an ECG needs at least 2 (units: ms and Hz)"
        )
    return n


def time_axis(fs: float, duration_ms: float, t0_ms: float = 0.0) -> np.ndarray:
    """Sample times (ms) of the simulated ECG: t0 + k 1000 / fs, k = 0 .. round(duration fs / 1000) - 1."""
    n = _n_samples(fs, duration_ms, t0_ms)
    return t0_ms + np.arange(n) * (1000.0 / fs)


def _check_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights as C-contiguous float64 (L, n), their row sums); raises on bad shape or values."""
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise InvalidFieldError(
            f"lead-field weights must be a non-empty (n_leads, n_nodes) array, got shape {np.shape(weights)}"
        )
    rowsum = w.sum(axis=1)  # needed for the resting term; non-finite iff a weight is (barring overflow)
    if not np.all(np.isfinite(rowsum)):
        bad = ~np.isfinite(w)
        raise InvalidFieldError(
            f"{int(bad.sum())} lead-field weights are NaN/inf (leads {np.flatnonzero(bad.any(1)).tolist()}); "
            "recompute the lead fields or their projection onto the heart"
        )
    return w, rowsum


def _check_times(
    at: np.ndarray, rt: np.ndarray, shape: tuple[int, ...], values: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Times as C-contiguous float64 of the expected shape; ``values``: also check NaN, rt < at
    (the fast path leaves that to the binning kernel, which checks it on the fly)."""
    at = np.ascontiguousarray(at, dtype=np.float64)
    rt = np.ascontiguousarray(rt, dtype=np.float64)
    for name, arr in (("activation times", at), ("repolarisation times", rt)):
        if arr.shape != shape:
            raise InvalidFieldError(
                f"{name} have shape {arr.shape}, expected {shape} (one per node of the weights' columns)"
            )
    if values:
        check_times(at, rt)
    return at, rt


def _report_bad_times(at: np.ndarray, rt: np.ndarray) -> None:
    check_times(at, rt)  # raises with the details
    raise InvalidFieldError("activation/repolarisation times are NaN, -inf or rt < at")  # pragma: no cover


def _check_shape(shape: ApShape) -> None:
    if not isinstance(shape, ApShape):
        raise InvalidParameterError(f"shape must be an ApShape, got {type(shape).__name__}")


# ------------------------------------------------------------------------------------ weights


def leadfield_weights(stiffness_i: sp.spmatrix | np.ndarray, lead_fields: np.ndarray) -> np.ndarray:
    """Per-node ECG weights w_l = -K_i Z_l (L, n) from the intracellular stiffness matrix K_i (n, n)
    (:func:`cardiotwin.fem.stiffness` with sigma_i) and lead fields Z (L, n) sampled at the heart's
    nodes. With sigma in S/m and Z in 1/(S/m mm) (mV per unit impressed current in the same units)
    the weights are dimensionless and phi_l = w_l . V_m is in mV."""
    z = np.asarray(lead_fields, dtype=np.float64)
    n = stiffness_i.shape[0]
    if stiffness_i.shape != (n, n):
        raise InvalidFieldError(f"stiffness matrix must be square, got {stiffness_i.shape}")
    if z.ndim == 1:
        z = z[None, :]
    if z.ndim != 2 or z.shape[1] != n:
        raise InvalidFieldError(f"lead fields must have shape (n_leads, {n}) (one value per heart node), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise InvalidFieldError(f"{int((~np.isfinite(z)).sum())} lead-field values are NaN/inf")
    return -np.ascontiguousarray((stiffness_i @ z.T).T)


# ------------------------------------------------------------------------------------ direct


def ecg_direct(
    weights: np.ndarray,
    at: np.ndarray,
    rt: np.ndarray,
    shape: ApShape,
    fs: float,
    duration_ms: float,
    t0_ms: float = 0.0,
    *,
    chunk_bytes: float = 16e6,
) -> np.ndarray:
    """Reference ECG (L, T) in mV: the voltage of every node at every sample, times the weights.

    ``weights`` (L, n); ``at``, ``rt`` (n,) in ms (+inf: never activated / never repolarised);
    ``fs`` in Hz; samples at :func:`time_axis`. Nodes are processed in chunks so that the voltage
    block stays under ``chunk_bytes``. O(n T) per lead: use :func:`ecg_fast` for real work.
    """
    _check_shape(shape)
    t = time_axis(fs, duration_ms, t0_ms)
    w, _ = _check_weights(weights)
    at, rt = _check_times(at, rt, (w.shape[1],))
    out = np.zeros((w.shape[0], len(t)))
    step = max(1, int(chunk_bytes // (8 * len(t))))
    for start in range(0, w.shape[1], step):  # chunks of nodes, each fully vectorised
        sl = slice(start, start + step)
        v = shape.voltage(t[None, :], at[sl, None], rt[sl, None])
        out += w[:, sl] @ v
    return out


# ------------------------------------------------------------------------------------ fast


class _Grid:
    """Fine time grid, impulse bins and the spectra of the sampled f and g for one (shape, timing).

    Impulses are binned at u_j = t0 - lead h + j h, j < n_bins; the output sample t0 + k h is
    sum_j c_j H((k + lead - j) h). Since f and g are constant outside their supports, the kernel
    is convolved in difference form, H = cumsum(D) with D = diff(H) of short support, so the FFT
    covers n_bins + |supp D| instead of twice the window: y = cumsum(c * D)."""

    def __init__(self, shape: ApShape, fs: float, n_out: int, oversample: int):
        self.m_over = oversample
        self.h = 1000.0 / fs / oversample  # fine step, ms
        self.n_fine = (n_out - 1) * oversample + 1
        f0, f1 = shape.f_support
        g0, g1 = shape.g_support
        lo, hi = min(f0, g0, 0.0), max(f1, g1, 0.0)
        self.lead = int(math.ceil(hi / self.h)) + 1  # bins before t0 (earlier impulses: constant)
        self.lag = int(math.ceil(-lo / self.h))  # kernel samples at negative lags (H = 0 before)
        self.n_bins = self.lead + self.n_fine + self.lag
        n_diff = self.lag + self.lead + 1  # D = 0 beyond: H constant for lags >= hi
        self.nfft = sfft.next_fast_len(self.n_bins + n_diff - 1, real=True)
        tau = (np.arange(n_diff) - self.lag) * self.h
        self.f_hat = sfft.rfft(np.diff(shape.upstroke_plateau(tau), prepend=0.0), self.nfft)
        self.g_hat = sfft.rfft(np.diff(shape.repolarisation(tau), prepend=0.0), self.nfft)
        self.f_inf, self.g_inf, self.v_rest = shape.f_inf, shape.g_inf, shape.v_rest_mv
        self.first = self.lead + self.lag  # index of t0 in the full convolution

    def finish(self, cf: np.ndarray, cg: np.ndarray, const: np.ndarray, rowsum: np.ndarray) -> np.ndarray:
        """ECG (..., L, T) from binned impulse trains (..., n_bins, L) and constants (..., L)."""
        spec = sfft.rfft(cf, self.nfft, axis=-2)
        spec *= self.f_hat[:, None]
        spec += sfft.rfft(cg, self.nfft, axis=-2) * self.g_hat[:, None]
        full = sfft.irfft(spec, self.nfft, axis=-2)[..., : self.first + self.n_fine, :]
        out = np.cumsum(full, axis=-2)[..., self.first :: self.m_over, :]
        return np.ascontiguousarray(np.swapaxes(out, -1, -2) + (const + self.v_rest * rowsum)[..., None])


@lru_cache(maxsize=16)
def _grid(shape: ApShape, fs: float, n_out: int, oversample: int) -> _Grid:
    return _Grid(shape, fs, n_out, oversample)


def _oversample(shape: ApShape, fs: float, oversample: int | None) -> int:
    if oversample is None:
        return max(1, int(math.ceil(_STEPS_PER_UPSTROKE * (1000.0 / fs) / shape.upstroke_ms)))
    if not isinstance(oversample, (int, np.integer)) or not 1 <= oversample <= 1000:
        raise InvalidParameterError(f"oversample must be an integer in [1, 1000], got {oversample!r}")
    return int(oversample)


@njit(cache=True)
def _bin(w, at, rt, u0, h, n_bins, f_inf, g_inf, cf, cg, const):  # pragma: no cover - compiled
    """Split each node's weights between the two fine bins around its AT (into cf) and RT (cg).

    Node-outer, lead-inner: each time is converted to a bin once, and the bins are stored
    (n_bins, L) so that the L leads of one impulse share a cache line or two. Impulses before the grid add their final value to ``const``;
    impulses after it are dropped (f and g are still zero in the window). Returns False at the
    first NaN/-inf time or rt < at (the caller then raises with a full report)."""
    n = w.shape[1]
    last = n_bins - 1
    for i in range(n):
        a = at[i]
        r = rt[i]
        if a != a or r != r or a == -np.inf or r == -np.inf:
            return False  # NaN or -inf: the caller reports it
        if a == np.inf:  # never activated: resting potential only
            continue
        if r < a:
            return False
        _deposit((a - u0) / h, last, w, i, f_inf, cf, const)
        if r == np.inf:  # never repolarised within any window: stays on the plateau
            continue
        _deposit((r - u0) / h, last, w, i, g_inf, cg, const)
    return True


@njit(cache=True, inline="always")
def _deposit(x, last, w, i, final, bins, const):  # pragma: no cover - compiled
    """Add node i's weights at fractional bin x: split between bins floor(x) and floor(x) + 1, or,
    before the grid, its final value ``final`` to ``const`` (after the grid: nothing yet)."""
    if x < 0.0:
        for l in range(w.shape[0]):
            const[l] += w[l, i] * final
    elif x < last:
        j = int(x)
        al = x - j
        be = 1.0 - al
        for l in range(w.shape[0]):
            wi = w[l, i]
            bins[j, l] += wi * be
            bins[j + 1, l] += wi * al


@njit(parallel=True, cache=True)
def _bin_batch(w, at, rt, u0, h, n_bins, f_inf, g_inf, cf, cg, const):  # pragma: no cover - compiled
    ok = np.ones(at.shape[0], np.bool_)
    for b in prange(at.shape[0]):
        ok[b] = _bin(w, at[b], rt[b], u0, h, n_bins, f_inf, g_inf, cf[b], cg[b], const[b])
    return ok


def ecg_fast(
    weights: np.ndarray,
    at: np.ndarray,
    rt: np.ndarray,
    shape: ApShape,
    fs: float,
    duration_ms: float,
    t0_ms: float = 0.0,
    *,
    oversample: int | None = None,
) -> np.ndarray:
    """ECG (L, T) in mV by impulse binning and FFT convolution; same arguments and samples as
    :func:`ecg_direct`.

    Exact (to rounding) when every AT and RT lies on the fine grid t0 + k 1000 / (fs oversample);
    otherwise each impulse is split linearly between its two neighbouring fine bins, an error
    O(step^2 f'') that only matters on the upstroke. ``oversample`` defaults to the smallest
    integer making the fine step at most a sixth of the upstroke duration (4 at 1 kHz with the
    default 1.5 ms upstroke: about 0.5 % RMS error against :func:`ecg_direct` for random times).
    """
    _check_shape(shape)
    n_out = _n_samples(fs, duration_ms, t0_ms)
    w, rowsum = _check_weights(weights)
    at, rt = _check_times(at, rt, (w.shape[1],), values=False)
    grid = _grid(shape, float(fs), n_out, _oversample(shape, fs, oversample))
    n_leads = w.shape[0]
    cf = np.zeros((grid.n_bins, n_leads))
    cg = np.zeros((grid.n_bins, n_leads))
    const = np.zeros(n_leads)
    u0 = t0_ms - grid.lead * grid.h
    if not _bin(w, at, rt, u0, grid.h, grid.n_bins, grid.f_inf, grid.g_inf, cf, cg, const):
        _report_bad_times(at, rt)
    return grid.finish(cf, cg, const, rowsum)


def ecg_fast_batch(
    weights: np.ndarray,
    at_batch: np.ndarray,
    rt_batch: np.ndarray,
    shape: ApShape,
    fs: float,
    duration_ms: float,
    t0_ms: float = 0.0,
    *,
    oversample: int | None = None,
) -> np.ndarray:
    """ECGs (b, L, T) of b parameter sets: ``at_batch``, ``rt_batch`` (b, n); otherwise as
    :func:`ecg_fast` (identical results, parameter sets binned in parallel, FFTs batched)."""
    _check_shape(shape)
    n_out = _n_samples(fs, duration_ms, t0_ms)
    w, rowsum = _check_weights(weights)
    at_batch = np.asarray(at_batch, dtype=np.float64)
    if at_batch.ndim != 2:
        raise InvalidFieldError(f"at_batch must have shape (batch, n_nodes), got {at_batch.shape}")
    at_batch, rt_batch = _check_times(at_batch, rt_batch, (at_batch.shape[0], w.shape[1]), values=False)
    grid = _grid(shape, float(fs), n_out, _oversample(shape, fs, oversample))
    b, n_leads = at_batch.shape[0], w.shape[0]
    u0 = t0_ms - grid.lead * grid.h
    out = np.empty((b, n_leads, n_out))
    for lo in range(0, b, _BATCH_CHUNK):  # chunks of parameter sets keep the bins in cache
        hi = min(b, lo + _BATCH_CHUNK)
        cf = np.zeros((hi - lo, grid.n_bins, n_leads))
        cg = np.zeros((hi - lo, grid.n_bins, n_leads))
        const = np.zeros((hi - lo, n_leads))
        ok = _bin_batch(w, at_batch[lo:hi], rt_batch[lo:hi], u0, grid.h, grid.n_bins, grid.f_inf, grid.g_inf,
                        cf, cg, const)
        if not ok.all():
            _report_bad_times(at_batch[lo:hi], rt_batch[lo:hi])
        out[lo:hi] = grid.finish(cf, cg, const, rowsum)
    return out


# ------------------------------------------------------------------------------------ 12 leads


def _electrode_index(names: Sequence[str], n_rows: int) -> dict[str, int]:
    names = [str(n).strip().upper() for n in names]
    if len(names) != n_rows:
        raise InvalidFieldError(f"{n_rows} electrode potential rows but {len(names)} names")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidFieldError(f"duplicate electrode names {dup}")
    missing = [e for e in ELECTRODES if e not in names]
    if missing:
        raise MissingLeadsError(
            f"the 12-lead ECG needs electrodes {list(ELECTRODES)}; missing {missing} (got {list(names)})"
        )
    return {e: names.index(e) for e in ELECTRODES}


def lead_matrix(names: Sequence[str]) -> np.ndarray:
    """The (12, E) matrix taking potentials of electrodes ``names`` (E,) to the 12 leads in
    :data:`~cardiotwin.types.TWELVE_LEADS` order. Fold it into the weights (``lead_matrix(names)
    @ weights``) to simulate the 12 leads directly."""
    idx = _electrode_index(names, len(names))
    mat = np.zeros((12, len(names)))
    ra, la, ll = idx["RA"], idx["LA"], idx["LL"]
    rows = {
        "I": {la: 1.0, ra: -1.0},
        "II": {ll: 1.0, ra: -1.0},
        "III": {ll: 1.0, la: -1.0},
        "aVR": {ra: 1.0, la: -0.5, ll: -0.5},  # = 3/2 (RA - WCT), Goldberger
        "aVL": {la: 1.0, ra: -0.5, ll: -0.5},
        "aVF": {ll: 1.0, ra: -0.5, la: -0.5},
    }
    for k, lead in enumerate(TWELVE_LEADS):
        if lead in rows:
            for col, val in rows[lead].items():
                mat[k, col] += val
        else:  # precordial: V_i - WCT
            mat[k, idx[lead.upper()]] += 1.0
            for col in (ra, la, ll):
                mat[k, col] -= 1.0 / 3.0
    return mat


def twelve_lead(electrode_potentials: np.ndarray, names: Sequence[str], fs: float) -> Ecg:
    """The standard 12-lead ECG (mV, standard order) from potentials (E, T) of electrodes
    ``names`` (RA, LA, LL, V1-V6 in any order and case; others such as RL are ignored) at ``fs`` Hz."""
    phi = np.asarray(electrode_potentials, dtype=np.float64)
    if phi.ndim != 2:
        raise InvalidFieldError(f"electrode potentials must be (n_electrodes, n_samples), got {phi.shape}")
    _electrode_index(names, phi.shape[0])
    return Ecg(lead_matrix(names) @ phi, fs, TWELVE_LEADS)
