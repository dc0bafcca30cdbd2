"""A parametric ventricular action-potential (AP) shape, split into an activation part and a
repolarisation part so that the ECG of a whole heart is two convolutions.

Eikonal-based ECG models do not solve membrane equations; they place a template AP at every node,
shifted to the node's activation time AT and ending at its repolarisation time RT (the
equivalent-double-layer template of van Oosterom 2001, J Electrocardiol 34 Suppl:217, and van Dam
et al. 2009, Ann Biomed Eng 37:1739, built from logistic functions; the templates of eikonal-ECG
digital twins, Gillette et al. 2021, Med Image Anal 71:102080, and Pezzuto et al. 2021,
Med Image Anal). Here the template is written as a *sum*

    V_n(t) = V_rest + f(t - AT_n) + g(t - RT_n)

with ``f`` (upstroke, spike and plateau) a function of the time since activation only and ``g``
(phase-3 repolarisation, ``g <= 0``) a function of the time since repolarisation only. Because the
ECG is linear in V_m, the sum makes the ECG of all nodes a weighted train of AT impulses convolved
with ``f`` plus a train of RT impulses convolved with ``g`` (see :mod:`cardiotwin.ecg.simulate`),
exactly, with no per-node loop over time.

Shape (all times in ms, potentials in mV, tau = time since AT, s = time since RT):

* upstroke: a quintic smoothstep u(tau) from 0 to 1 over ``upstroke_ms`` (C2, exactly 0 before
  AT, peak V_rest + amplitude exactly at AT + upstroke_ms);
* spike-to-plateau: after the peak the voltage relaxes exponentially (``spike_decay_ms``) to the
  plateau V_rest + plateau_fraction * amplitude;
* repolarisation: g(s) = -plateau_fraction * amplitude * S((s - s0) / W), S the same quintic
  smoothstep (a sigmoid like the logistic of van Dam et al., but with compact support), its
  window W set by ``repolarisation_ms`` (the 10 %-90 % fall time of phase 3 = 0.507 W) and its
  start s0 chosen so that the voltage is 90 % repolarised (V_rest + 0.1 amplitude) exactly at
  s = 0. Hence RT is the time of 90 % repolarisation and RT - AT the APD90 from the foot of the
  upstroke (exactly once the spike has decayed, for APD > upstroke_ms + 27.6 spike_decay_ms,
  140 ms by default). Phase 3 starts -s0 ms (44 ms by default) before RT; for APDs shorter than
  that the template is no longer at rest before AT.

The exponential tail of the spike is cut where it falls below ``TAIL`` (1e-12) of the amplitude,
so f is exactly constant after :attr:`ApShape.f_support` and g exactly 0 before and constant after
:attr:`ApShape.g_support`: the convolution kernels have finite support.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from cardiotwin.errors import InvalidFieldError, InvalidParameterError

__all__ = ["ApShape", "TAIL", "PARAMETER_RANGES", "apd", "check_times"]

TAIL = 1e-12
_LN_TAIL = math.log(1.0 / TAIL)  # ~27.6: exp(-27.6) = 1e-12


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """Quintic smoothstep: 0 for x <= 0, 1 for x >= 1, C2, S(1 - x) = 1 - S(x)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


@lru_cache(maxsize=64)
def _smoothstep_inverse(q: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisection to double precision; S is strictly increasing on (0, 1)
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _smoothstep(mid) < q else (lo, mid)
    return 0.5 * (lo + hi)


_S10 = _smoothstep_inverse(0.1)  # 0.2466: S rises from 10 % to 90 % over 1 - 2 * _S10 = 0.507 of its window

#: plausible range of each parameter (units in the name); values outside raise
#: :class:`InvalidParameterError` (this catches seconds-for-milliseconds and volts-for-millivolts)
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "v_rest_mv": (-100.0, -50.0),
    "amplitude_mv": (50.0, 150.0),
    "upstroke_ms": (0.1, 10.0),
    "spike_decay_ms": (0.2, 30.0),
    "plateau_fraction": (0.3, 1.0),
    "repolarisation_ms": (5.0, 150.0),
}


@dataclass(frozen=True)
class ApShape:
    """A phenomenological ventricular AP; RT - AT is its APD90.

    Parameters (defaults are a human ventricular AP; plausible ranges in :data:`PARAMETER_RANGES`):

    v_rest_mv : resting potential, -85 mV (range -100 to -50).
    amplitude_mv : peak minus rest, 100 mV (50-150): peak at +15 mV by default.
    upstroke_ms : 0-100 % duration of the upstroke (phase 0), 1.5 ms (0.1-10).
    spike_decay_ms : time constant of the fall from the peak to the plateau (phase 1), 5 ms (0.2-30).
    plateau_fraction : plateau height above rest as a fraction of the amplitude, 0.9 (0.3-1):
        plateau at +5 mV by default.
    repolarisation_ms : 10 %-90 % fall time of phase 3, 30 ms (5-150); sets the T-wave width
        together with the dispersion of RT.
    """

    v_rest_mv: float = -85.0
    amplitude_mv: float = 100.0
    upstroke_ms: float = 1.5
    spike_decay_ms: float = 5.0
    plateau_fraction: float = 0.9
    repolarisation_ms: float = 30.0

    def __post_init__(self) -> None:
        for fld in fields(self):
            value = getattr(self, fld.name)
            lo, hi = PARAMETER_RANGES[fld.name]
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"ApShape.{fld.name} must be a number, got {value!r}") from None
            if not (lo <= value <= hi):  # also rejects NaN
                raise InvalidParameterError(
                    f"ApShape.{fld.name} = {value} is outside its plausible range [{lo}, {hi}] "
                    "(units: mV and ms); check the units of the value you passed"
                )
            object.__setattr__(self, fld.name, value)

    # ------------------------------------------------------------------ derived constants

    @property
    def plateau_mv(self) -> float:
        """Plateau height above rest (mV): the total fall of g."""
        return self.plateau_fraction * self.amplitude_mv

    @property
    def repolarisation_window_ms(self) -> float:
        """Duration W (ms) of the whole phase-3 fall: 10 %-90 % fall time / 0.507."""
        return self.repolarisation_ms / (1.0 - 2.0 * _S10)

    @property
    def repolarisation_start_ms(self) -> float:
        """Start s0 of phase 3 relative to RT (ms, negative: before the APD90 point).

        At s = 0 the plateau must have fallen to 0.1 amplitude above rest, i.e. the smoothstep
        must equal q = 1 - 0.1 / plateau_fraction; so s0 = -W S^-1(q)."""
        q = 1.0 - 0.1 / self.plateau_fraction
        return -self.repolarisation_window_ms * _smoothstep_inverse(q)

    @property
    def f_support(self) -> tuple[float, float]:
        """(start, end) in ms after AT outside which f is constant (0 before, f_inf after)."""
        return 0.0, self.upstroke_ms + _LN_TAIL * self.spike_decay_ms

    @property
    def g_support(self) -> tuple[float, float]:
        """(start, end) in ms after RT outside which g is constant (0 before, g_inf after)."""
        s0 = self.repolarisation_start_ms
        return s0, s0 + self.repolarisation_window_ms

    @property
    def f_inf(self) -> float:
        """Value of f long after activation (mV): the plateau height above rest."""
        return self.plateau_mv

    @property
    def g_inf(self) -> float:
        """Value of g long after repolarisation (mV): minus the plateau height, back to rest."""
        return -self.plateau_mv

    # ------------------------------------------------------------------ the two parts

    def upstroke_plateau(self, tau: np.ndarray) -> np.ndarray:
        """f(tau): depolarisation above rest (mV) at ``tau`` ms after activation (0 for tau <= 0)."""
        tau = np.asarray(tau, dtype=np.float64)
        up = _smoothstep(tau / self.upstroke_ms)
        after = np.maximum(tau - self.upstroke_ms, 0.0) / self.spike_decay_ms
        spike = np.where(tau < self.f_support[1], np.exp(-np.minimum(after, _LN_TAIL)), 0.0)
        p = self.plateau_fraction
        return self.amplitude_mv * up * (p + (1.0 - p) * spike)

    def repolarisation(self, s: np.ndarray) -> np.ndarray:
        """g(s) <= 0: the repolarisation (mV) at ``s`` ms after the repolarisation time RT."""
        s = np.asarray(s, dtype=np.float64)
        s0, s1 = self.g_support
        step = _smoothstep((s - s0) / self.repolarisation_window_ms)
        step = np.where(s >= s1, 1.0, np.where(s <= s0, 0.0, step))  # exact at the ends despite rounding
        return -self.plateau_mv * step

    def voltage(self, t: np.ndarray, at: np.ndarray, rt: np.ndarray) -> np.ndarray:
        """Transmembrane voltage (mV) at times ``t`` of nodes activated at ``at`` and repolarised
        (APD90 point) at ``rt`` (ms); the three arrays broadcast against each other.

        ``at = +inf`` means never activated: the node stays at rest whatever ``rt`` says.
        ``rt = +inf`` with finite ``at`` means never repolarised (the node stays on its plateau).
        NaN or -inf times and ``rt < at`` raise :class:`InvalidFieldError`.
        """
        t = np.asarray(t, dtype=np.float64)
        at = np.asarray(at, dtype=np.float64)
        rt = np.asarray(rt, dtype=np.float64)
        check_times(at, rt)
        active = np.isfinite(at)
        repol = active & np.isfinite(rt)
        with np.errstate(invalid="ignore"):
            tau = np.where(active, t - np.where(active, at, 0.0), -1.0)
            s = np.where(repol, t - np.where(repol, rt, 0.0), -np.inf)
        g = np.where(repol, self.repolarisation(np.where(repol, s, 0.0)), 0.0)
        return self.v_rest_mv + self.upstroke_plateau(tau) + g


def check_times(at: np.ndarray, rt: np.ndarray) -> None:
    """Raise :class:`InvalidFieldError` unless activation/repolarisation times are usable:
    no NaN, no -inf, ``rt >= at`` wherever the node activates (``at`` finite)."""
    for name, arr in (("activation", at), ("repolarisation", rt)):
        bad = np.isnan(arr) | (arr == -np.inf)
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            raise InvalidFieldError(
                f"{int(bad.sum())} {name} times are NaN or -inf (first at flat index {first}); "
                "use +inf for nodes that never activate (or never repolarise), finite ms otherwise"
            )
    with np.errstate(invalid="ignore"):
        early = np.isfinite(at) & (rt < at)
    if early.any():
        first = int(np.flatnonzero(early.ravel())[0])
        a = float(np.broadcast_to(at, early.shape).ravel()[first])
        r = float(np.broadcast_to(rt, early.shape).ravel()[first])
        raise InvalidFieldError(
            f"{int(early.sum())} nodes repolarise before they activate (rt < at), e.g. flat index {first}: "
            f"at = {a:.3f} ms, rt = {r:.3f} ms; rt must be at + APD with APD >= 0"
        )


def apd(t: np.ndarray, v: np.ndarray, level: float = 0.9) -> float:
    """Measured action-potential duration (ms) of one sampled trace ``v(t)`` (mV).

    The threshold is V_rest + (1 - level) (V_peak - V_rest) with V_rest = v[0] and V_peak = max v;
    the APD is the time between its first upward crossing and the first downward crossing after the
    peak, both linearly interpolated. ``level=0.9`` gives APD90. Used to check templates and simulations.
    """
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape or len(t) < 3:
        raise InvalidFieldError(f"t and v must be 1-D arrays of equal length >= 3, got {t.shape} and {v.shape}")
    rest, ipk = v[0], int(np.argmax(v))
    thr = rest + (1.0 - level) * (v[ipk] - rest)
    up = np.flatnonzero((v[:-1] < thr) & (v[1:] >= thr))
    down = np.flatnonzero((v[:-1] >= thr) & (v[1:] < thr))
    down = down[down >= ipk]
    if len(up) == 0 or len(down) == 0:
        raise InvalidFieldError("the trace does not both rise above and fall back below the APD threshold")

    def cross(i: int) -> float:
        return float(t[i] + (thr - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i]))

    return cross(int(down[0])) - cross(int(up[0]))
