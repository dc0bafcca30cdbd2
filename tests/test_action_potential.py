"""The parametric action potential: rest before AT, peak, plateau, APD90 = RT - AT, decomposition."""

from __future__ import annotations

import numpy as np
import pytest

from cardiotwin.electrophysiology.action_potential import PARAMETER_RANGES, ApShape, apd
from cardiotwin.errors import InvalidFieldError, InvalidParameterError

SHAPES = [
    ApShape(),
    ApShape(upstroke_ms=0.5, spike_decay_ms=2.0, repolarisation_ms=20.0),
    ApShape(v_rest_mv=-90.0, amplitude_mv=120.0, upstroke_ms=2.0, plateau_fraction=0.75, repolarisation_ms=40.0),
    ApShape(plateau_fraction=1.0, repolarisation_ms=60.0),
]
DT = 0.01  # ms: fine sampling for measurements; linear interpolation error ~ DT^2 V'' << tolerances


def _trace(shape: ApShape, at: float, rt: float, t_end: float = 900.0):
    t = np.arange(-50.0, t_end, DT)
    return t, shape.voltage(t, at, rt)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("apd_ms", [180.0, 300.0, 420.0])
def test_rest_peak_and_return_to_rest(shape, apd_ms):
    at = 12.3
    rt = at + apd_ms
    t, v = _trace(shape, at, rt)
    # before AT the voltage is exactly at rest: f is 0 for tau <= 0 and g is exactly 0 before
    # phase 3 starts (< 100 ms before RT for these shapes)
    assert np.all(v[t <= at] == shape.v_rest_mv)
    # the peak is V_rest + amplitude, reached at AT + upstroke (the spike decays only after it)
    ipk = int(np.argmax(v))
    assert v[ipk] == pytest.approx(shape.v_rest_mv + shape.amplitude_mv, abs=1e-6)
    assert abs(t[ipk] - (at + shape.upstroke_ms)) <= DT
    # the plateau just before phase 3 is V_rest + plateau_fraction * amplitude (spike decayed to
    # exp(-10) for these APDs)
    t_plateau = rt + shape.g_support[0]
    assert t_plateau > at + shape.upstroke_ms + 10 * shape.spike_decay_ms
    v_pl = float(shape.voltage(t_plateau, at, rt))
    assert v_pl == pytest.approx(shape.v_rest_mv + shape.plateau_mv, abs=1e-4 * shape.plateau_mv)
    # back to rest (to rounding) once g has reached its final value
    late = t >= rt + shape.g_support[1]
    assert late.any()
    np.testing.assert_allclose(v[late], shape.v_rest_mv, atol=1e-9)
    # repolarisation is monotone: non-increasing from the peak on
    assert np.all(np.diff(v[ipk:]) <= 1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("apd_ms", [180.0, 300.0, 420.0])
def test_rt_is_the_apd90_point(shape, apd_ms):
    at, rt = 5.0, 5.0 + apd_ms
    # by construction the voltage at RT is 90 % repolarised (spike long decayed for APD >= 180 ms)
    v_rt = float(shape.voltage(rt, at, rt))
    assert v_rt == pytest.approx(shape.v_rest_mv + 0.1 * shape.amplitude_mv, abs=1e-9)
    # measured APD90 starts at the upstroke's 10 % crossing, which lies within the first half of
    # the quintic upstroke (0.24 upstroke_ms): RT - AT - APD90 is in [0, upstroke_ms / 2]
    t, v = _trace(shape, at, rt)
    measured = apd(t, v, 0.9)
    assert 0.0 <= (rt - at) - measured <= shape.upstroke_ms / 2 + 2 * DT


@pytest.mark.parametrize("shape", SHAPES)
def test_repolarisation_width(shape):
    # repolarisation_ms is the 10 %-90 % fall time of phase 3 (plateau to rest)
    at, rt = 0.0, 300.0
    t, v = _trace(shape, at, rt, 600.0)
    seg = t > 150.0
    t, v = t[seg], v[seg]
    hi = shape.v_rest_mv + 0.9 * shape.plateau_mv
    lo = shape.v_rest_mv + 0.1 * shape.plateau_mv
    t_hi = np.interp(-hi, -v, t)  # v decreasing on this segment
    t_lo = np.interp(-lo, -v, t)
    assert t_lo - t_hi == pytest.approx(shape.repolarisation_ms, abs=1e-3)  # DT^2-accurate interpolation


@pytest.mark.parametrize("shape", SHAPES)
def test_decomposition_and_supports(shape):
    rng = np.random.default_rng(0)
    t = rng.uniform(-100, 700, 2000)
    at = rng.uniform(0, 100, 2000)
    rt = at + rng.uniform(150, 400, 2000)
    f = shape.upstroke_plateau(t - at)
    g = shape.repolarisation(t - rt)
    np.testing.assert_allclose(shape.voltage(t, at, rt), shape.v_rest_mv + f + g, rtol=0, atol=1e-12)
    assert np.all(g <= 0) and np.all(g >= shape.g_inf)
    assert np.all(f >= 0) and np.all(f <= shape.amplitude_mv + 1e-12)
    # outside their supports f and g are exactly constant: what makes the fast ECG exact
    f0, f1 = shape.f_support
    g0, g1 = shape.g_support
    assert np.all(shape.upstroke_plateau(np.array([-5.0, f0])) == 0.0)
    assert np.all(shape.upstroke_plateau(np.array([f1, f1 + 1, 1e4])) == shape.f_inf)
    assert np.all(shape.repolarisation(np.array([g0 - 1, g0])) == 0.0)
    assert np.all(shape.repolarisation(np.array([g1, g1 + 3, 1e4])) == shape.g_inf)
    assert shape.f_inf + shape.g_inf == 0.0  # back to rest


def test_never_activated_and_never_repolarised():
    shape = ApShape()
    t = np.linspace(0, 800, 81)
    np.testing.assert_array_equal(shape.voltage(t, np.inf, 300.0), shape.v_rest_mv)
    np.testing.assert_array_equal(shape.voltage(t, np.inf, np.inf), shape.v_rest_mv)
    stuck = shape.voltage(t, 10.0, np.inf)
    assert np.all(stuck[t > 200] == shape.v_rest_mv + shape.plateau_mv)


def test_bad_times_raise():
    shape = ApShape()
    with pytest.raises(InvalidFieldError, match="NaN"):
        shape.voltage(np.arange(3.0), np.array([0.0, np.nan]), np.array([200.0, 200.0]))
    with pytest.raises(InvalidFieldError, match="-inf"):
        shape.voltage(0.0, -np.inf, 200.0)
    with pytest.raises(InvalidFieldError, match="before they activate"):
        shape.voltage(0.0, np.array([10.0, 50.0]), np.array([300.0, 40.0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"upstroke_ms": 0.0015},  # seconds instead of ms
        {"amplitude_mv": 0.1},  # volts instead of mV
        {"v_rest_mv": 85.0},
        {"plateau_fraction": 1.5},
        {"repolarisation_ms": float("nan")},
        {"spike_decay_ms": "fast"},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(InvalidParameterError, match=next(iter(kwargs))):
        ApShape(**kwargs)


def test_ranges_cover_defaults():
    for name, (lo, hi) in PARAMETER_RANGES.items():
        assert lo <= getattr(ApShape(), name) <= hi


def test_apd_rejects_flat_trace():
    with pytest.raises(InvalidFieldError):
        apd(np.arange(10.0), np.zeros(10))
