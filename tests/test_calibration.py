"""Calibration: objective, search spaces, CMA-ES, bad input (fast, no twin), then the phantom twin
(parameter recovery with a small budget, the full QRS-T-P chain and its files, AF and a real ECG)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cardiotwin.calibration import Mismatch, SearchSpace, Target, calibrate
from cardiotwin.calibration.objective import BEAT
from cardiotwin.pipeline.calibration_folder import write_result
from cardiotwin.calibration.optimise import cmaes
from cardiotwin.ecg.signal import Fiducials, preprocess
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import InputError, InvalidParameterError, InvalidSignalError, MissingLeadsError
from cardiotwin.io import read_ecg
from cardiotwin.types import TWELVE_LEADS, Ecg

FS = 1000.0


def _waves(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """12 leads of a QRS-like biphasic complex (40-120 ms) and a T wave (300-420 ms)."""
    a, b, c = rng.normal(0, 1, (3, 12, 1))
    qrs = a * np.exp(-0.5 * ((t - 70) / 8) ** 2) + b * np.exp(-0.5 * ((t - 90) / 10) ** 2)
    return qrs + 0.3 * c * np.exp(-0.5 * ((t - 360) / 40) ** 2)


@pytest.fixture
def target() -> Target:
    t = np.arange(600.0)
    fid = Fiducials(qrs_on_ms=50.0, r_ms=70.0, qrs_off_ms=120.0, t_peak_ms=360.0, t_end_ms=450.0)
    return Target(_waves(t, np.random.default_rng(0)), FS, TWELVE_LEADS, fid)


def _segment(target: Target, mis: Mismatch, shift_ms: float = 0.0) -> np.ndarray:
    """The target's own signal cut as a simulation segment with onset at 0, delayed by ``shift_ms``."""
    t = target.qrs_on_ms + mis.span_ms[0] + np.arange(mis.n_samples) - shift_ms
    return np.stack([np.interp(t, np.arange(target.signals.shape[1]), row) for row in target.signals])[None]


# ------------------------------------------------------------------------------ objective


def test_mismatch_alignment_gain_and_correlation(target):
    mis = Mismatch(target, "QRS", max_lag_ms=10.0)
    exact = mis(_segment(target, mis))
    assert exact.loss[0] < 1e-6 and np.allclose(exact.correlation, 1.0) and abs(exact.lag_ms[0]) < 1e-9
    # a simulation 4 ms late is re-aligned by the lag search (to the sample)
    late = mis(_segment(target, mis, 4.0))
    assert late.lag_ms[0] == pytest.approx(4.0) and late.loss[0] < 1e-6
    # global gain: a 2.5x larger simulation fits exactly with gain 0.4; without gain it does not
    scaled = 2.5 * _segment(target, mis)
    fit = mis(scaled)
    assert fit.nrmse[0] < 1e-6 and np.allclose(fit.gain, 0.4)
    assert Mismatch(target, "QRS", gain="none")(scaled).nrmse[0] == pytest.approx(1.5, rel=1e-6)
    # per-lead gain absorbs per-lead scales, global gain does not
    seg = _segment(target, mis) * np.linspace(0.5, 2.0, 12)[None, :, None]
    assert Mismatch(target, "QRS", gain="lead")(seg).nrmse[0] < 1e-6
    assert mis(seg).nrmse[0] > 0.1
    # per-lead gains normalise the RMSE lead by lead: an inverted lead (gain 0, residual = the lead)
    # costs sqrt(1/12) whether it is the smallest or the largest lead; with one gain it does not
    energy = (target.signals**2).sum(axis=1)
    lead_mis = Mismatch(target, "QRS", gain="lead")
    costs = []
    for k in (int(np.argmin(energy)), int(np.argmax(energy))):
        seg = _segment(target, lead_mis)
        seg[0, k] *= -1
        costs.append((lead_mis(seg, lag_ms=0.0).nrmse[0], mis(seg, lag_ms=0.0).nrmse[0]))
    assert costs[0][0] == pytest.approx(np.sqrt(1 / 12), rel=1e-3) and costs[1][0] == pytest.approx(np.sqrt(1 / 12), rel=1e-3)
    assert costs[1][1] > 2 * costs[0][1]
    # an inverted lead: correlation -1; a flat simulated lead: correlation 0 (no NaN)
    seg = _segment(target, mis)
    seg[0, 3] *= -1
    seg[0, 5] = 0.0
    fit = mis(seg)
    assert fit.correlation[0, 3] == pytest.approx(-1.0) and fit.correlation[0, 5] == 0.0
    assert np.isfinite(fit.loss).all()
    # a batch: fits are per element
    batch = np.concatenate([_segment(target, mis), 3 * _segment(target, mis, -6.0)])
    fit = mis(batch)
    assert fit.lag_ms.tolist() == pytest.approx([0.0, -6.0]) and np.allclose(fit.gain[1], 1 / 3)


def test_mismatch_lead_in_admits_a_slow_start_and_compares_it(target):
    """A simulation whose onset precedes the delineated onset by 30 ms (a slow start the delineator
    missed) fits exactly only with a lead-in; what it puts before the delineated onset is compared."""
    seg = _segment(target, Mismatch(target, "QRS", lead_in_ms=40.0), 30.0)
    plain = Mismatch(target, "QRS")  # lag within +-10 ms: cannot reach 30 ms
    mis = Mismatch(target, "QRS", lead_in_ms=40.0)
    assert mis.lead_in_ms == pytest.approx(40.0) and mis.lag_range == (-10, 50)
    fit = mis(seg)
    assert fit.lag_ms[0] == pytest.approx(30.0) and fit.loss[0] < 1e-6
    assert plain(_segment(target, plain, 30.0)).loss[0] > 0.3
    # a spurious early deflection (sim 5-15 ms, measured -25..-15 ms: isoelectric there) costs
    junk = seg.copy()
    t = mis.span_ms[0] + np.arange(mis.n_samples)
    junk[0] += 0.5 * np.exp(-0.5 * ((t - 10.0) / 3.0) ** 2)[None]
    assert mis(junk).loss[0] > 0.05
    # the lead-in stops at the P wave's peak
    fid = Fiducials(qrs_on_ms=50.0, r_ms=70.0, qrs_off_ms=120.0, t_peak_ms=360.0, t_end_ms=450.0,
                    p_on_ms=5.0, p_peak_ms=35.0, p_off_ms=45.0)
    with_p = Target(target.signals, FS, TWELVE_LEADS, fid)
    assert Mismatch(with_p, "QRS", lead_in_ms=40.0).lead_in_ms == pytest.approx(15.0)
    with pytest.raises(InvalidParameterError, match="lead_in_ms"):
        Mismatch(target, "QRS", lead_in_ms=-1.0)


def test_one_scale_for_the_beat(target):
    """The T window at the QRS's gain: a simulation whose T wave is 3x the patient's (QRS right) fits
    the T window perfectly with a gain of its own (which would hide the error) and is penalised at
    the beat's fixed gain; the whole-beat window spans QRS onset (no P) to T end."""
    qrs_mis = Mismatch(target, "QRS", gain="lead", max_lag_ms=0.0)
    t_free = Mismatch(target, "T", gain="lead", max_lag_ms=0.0)
    seg_qrs = _segment(target, qrs_mis)
    beat_gain = qrs_mis(seg_qrs).gain[0]
    assert np.allclose(beat_gain, 1.0)
    t_fixed = Mismatch(target, "T", gain="lead", max_lag_ms=0.0, fixed_gain=beat_gain)
    tall_t = 3.0 * _segment(target, t_free)
    assert t_free(tall_t).nrmse[0] < 1e-6  # its own gain 1/3 absorbs the error
    assert t_fixed(tall_t).nrmse[0] == pytest.approx(2.0, rel=1e-6)  # |3m - m| / |m| per lead
    assert np.allclose(t_fixed(tall_t).gain, beat_gain)
    assert target.window_ms(BEAT) == (target.qrs_on_ms, target.fiducials.t_end_ms)
    with pytest.raises(InvalidParameterError, match="fixed_gain"):
        Mismatch(target, "T", fixed_gain=np.ones(5))
    with pytest.raises(InvalidParameterError, match="fixed_gain"):
        Mismatch(target, "T", fixed_gain=-np.ones(12))


def test_mismatch_fixed_lag_and_windows(target):
    mis = Mismatch(target, "T", max_lag_ms=5.0)
    seg = _segment(target, mis, 3.0)
    assert mis(seg, lag_ms=3.0).loss[0] < 1e-6
    assert mis(seg, lag_ms=0.0).loss[0] > mis(seg, lag_ms=3.0).loss[0]
    with pytest.raises(InvalidSignalError, match="no P wave"):
        Mismatch(target, "P")
    with pytest.raises(InvalidParameterError):
        Mismatch(target, "QRS", gain="lead-wise")
    with pytest.raises(InvalidParameterError):
        Mismatch(target, "ST")
    with pytest.raises(InvalidParameterError, match="segments"):
        mis(np.zeros((1, 12, 3)))


@pytest.mark.parametrize("gain", ["global", "lead", "none"])
def test_mismatch_residuals_reproduce_the_loss(target, gain):
    """The least-squares form of the mismatch used by the Levenberg-Marquardt refinement is exact:
    at a fixed lag, |r_corr|^2 + w_rmse |r_rmse| equals the loss, and |r_corr|^2 the correlation term
    (1 - r = |u - v|^2 / 2 for centred unit vectors), to rounding (1e-10)."""
    mis = Mismatch(target, "QRS", gain=gain, corr_weight=0.7, rmse_weight=1.3, lead_in_ms=20.0)
    rng = np.random.default_rng(3)
    sims = _segment(target, mis, 3.0) * rng.uniform(0.3, 2.0, (4, 12, 1)) + rng.normal(0, 0.1, (4, 12, mis.n_samples))
    for lag in (-5.0, 0.0, 7.0):
        fit = mis(sims, lag_ms=lag)
        r_c, r_r = mis.residuals(sims, lag)
        assert r_c.shape == r_r.shape == (4, 12 * mis.n)
        loss = (r_c**2).sum(axis=1) + 1.3 * np.linalg.norm(r_r, axis=1)
        np.testing.assert_allclose(loss, fit.loss, rtol=0, atol=1e-10)
        np.testing.assert_allclose((r_c**2).sum(axis=1), 0.7 * (1 - fit.correlation).mean(axis=1), atol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(r_r, axis=1), fit.nrmse, atol=1e-10)
    with pytest.raises(InvalidParameterError, match="segments"):
        mis.residuals(np.zeros((1, 12, 3)), 0.0)


def test_target_needs_leads_and_fiducials(target):
    from cardiotwin.ecg.signal import Beat

    beat = Beat(Ecg(target.signals[:3], FS, TWELVE_LEADS[:3]), 70, np.array([70]), np.array([True]), {},
                np.array([]), np.array([1.0]), target.signals[None, :3], fiducials=target.fiducials)
    with pytest.raises(MissingLeadsError, match="only 3 usable"):
        Target.from_beat(beat)
    assert Target.from_beat(beat, min_leads=3).leads == ("I", "II", "III")
    with pytest.raises(InvalidSignalError, match="no fiducials"):
        Target.from_beat(Beat(beat.ecg, 70, beat.r_peaks, beat.used, {}, beat.rr_ms, beat.correlation, beat.beats))
    with pytest.raises(InputError):
        Target.from_ecg("record.hea")


# ------------------------------------------------------------------------------ search space, optimiser


def test_search_space_round_trip_and_repair():
    space = SearchSpace.for_stage("QRS")
    assert space.ndim == 4 + 4 * 2 + 3  # velocities, root (z, phi), delays except the reference root
    x = space.sample(np.random.default_rng(1), 50)
    for xi in x[:10]:
        p = space.to_params(xi)
        assert np.allclose(space.to_unit(p), xi, atol=1e-12)
        assert [r.delay_ms for r in p.roots if r.name == "lv_septal_central"] == [0.0]
    v = space.values(x)
    assert np.all(v[:, 1] <= v[:, 0])  # sampled cv_transverse <= cv_fibre
    bad = np.full(space.ndim, 0.5)
    bad[0], bad[1] = 0.0, 1.0  # cv_fibre at its minimum, cv_transverse at its maximum
    p = space.to_params(bad)
    assert p.cv_transverse == p.cv_fibre == 0.35
    assert SearchSpace.for_stage("T").names == ("apd_mean", "apd_transmural", "apd_apicobasal", "apd_rv",
                                                "apd_apicobasal_mid", "apd_septal", "apd_anterior",
                                                "ap_repolarisation_ms", "apd_coupling")
    with pytest.raises(InvalidParameterError):
        SearchSpace.for_stage("ST")


def test_cmaes_converges_deterministically_within_budget():
    opt = np.array([0.2, 0.7, 0.4, 0.9])

    def loss(x):
        return ((x - opt) ** 2).sum(axis=1)

    a = cmaes(loss, np.full(4, 0.5), 0.3, 600, seed=3)
    b = cmaes(loss, np.full(4, 0.5), 0.3, 600, seed=3)
    assert np.array_equal(a.x, b.x) and a.loss == b.loss
    assert a.n_evals <= 600 and a.loss < 1e-6 and np.abs(a.x - opt).max() < 2e-3
    c = cmaes(loss, np.full(4, 0.5), 0.3, 40, seed=3)
    assert c.n_evals <= 40 and c.stop  # stopped by its budget
    with pytest.raises(InvalidParameterError):
        cmaes(loss, np.full(4, 0.5), 0.3, 1, seed=0)


def test_multistart_escapes_the_default_basin():
    """Two basins: a broad one around the default point (minimum 0.3) and a deeper one near a
    corner (minimum 0). One CMA-ES run from the default with a local step stays in the broad basin;
    the Sobol design + local searches find the deep one, deterministically."""
    from cardiotwin.calibration.optimise import _multistart

    deep = np.array([0.15, 0.85, 0.15, 0.85])

    def loss(x):
        return np.minimum(0.3 + ((x - 0.5) ** 2).sum(axis=1), 4.0 * ((x - deep) ** 2).sum(axis=1))

    x0 = np.full(4, 0.5)
    single = cmaes(loss, x0, 0.12, 600, seed=0)
    assert single.loss > 0.29
    runs = [_multistart(loss, x0, 600, 0, 3, [], 0.0) for _ in range(2)]
    assert runs[0].loss < 0.005 and np.abs(runs[0].x - deep).max() < 0.05  # vs 0.3 in the broad basin
    assert np.array_equal(runs[0].x, runs[1].x) and runs[0].n_evals <= 600


class _TwoWaveModel:
    """A QRS 'model' with an analytic answer: the target's two Gaussian waves whose centres, first
    width and second amplitude depend on three unit-cube parameters, coupled; what the lag and the
    global gain leave (the centres' distance, the width, the amplitude ratio) fixes all three, so
    X_TRUE, where it reproduces the target exactly, is the only optimum."""

    X_TRUE = np.array([0.4, 0.6, 0.5])

    def __init__(self, target: Target, mis: Mismatch):
        self.mis, self.target = mis, target
        self.counts = {"coarse": 0, "fine": 0}
        rng = np.random.default_rng(0)  # the amplitudes of _waves for the target fixture's seed
        self.a, self.b, self.c = rng.normal(0, 1, (3, 12, 1))
        self.t = target.qrs_on_ms + mis.span_ms[0] + np.arange(mis.n_samples)

    def segments(self, xs: np.ndarray, fidelity: str) -> np.ndarray:
        self.counts[fidelity] += len(xs)
        out = []
        for x in xs:
            dx = x - self.X_TRUE
            c1, c2 = 70 + 20 * dx[0], 90 + 12 * dx[1]
            w1 = 8 * np.exp(0.8 * dx[2] + 0.5 * dx[1])
            b = self.b * (1 + 0.8 * dx[0] + 0.4 * dx[2])
            t = self.t
            out.append(self.a * np.exp(-0.5 * ((t - c1) / w1) ** 2) + b * np.exp(-0.5 * ((t - c2) / 10) ** 2)
                       + 0.3 * self.c * np.exp(-0.5 * ((t - 360) / 40) ** 2))
        return np.asarray(out)


def test_levenberg_marquardt_recovers_an_analytic_optimum(target):
    """Levenberg-Marquardt on the residual form of the mismatch finds the exact optimum of a smooth
    coupled problem from a start 0.15-0.2 away in every dimension (loss 0.3): to 0.01 in the unit
    cube and loss < 1e-3 within its budget of evaluations, its trace of losses never rising; ``free`` holds the other dimensions;
    a budget below one iteration and an unknown fidelity are refused."""
    from cardiotwin.calibration.refine import levenberg_marquardt

    mis = Mismatch(target, "QRS", max_lag_ms=10.0)
    prob = _TwoWaveModel(target, mis)
    assert mis(prob.segments(prob.X_TRUE[None], "fine")).loss[0] < 1e-6  # the model reproduces the target
    x0 = prob.X_TRUE + np.array([0.15, -0.2, 0.2])
    history: list = []
    x, f, n = levenberg_marquardt(prob, x0, 80, history=history)
    print("analytic Levenberg-Marquardt:", history[-1], "x - x_true", x - prob.X_TRUE)
    assert history[-1]["loss_before"] > 0.1 and f < 1e-3 and np.abs(x - prob.X_TRUE).max() < 0.01
    assert n <= 80 and prob.counts["fine"] == n + 1 and history[-1]["solves"] == n
    trace = np.asarray(history[-1]["trace"])  # (time, loss) at the start and after each iteration
    assert len(trace) == history[-1]["iterations"] + 1 and trace[0, 1] == history[-1]["loss_before"]
    assert trace[-1, 1] == f and np.all(np.diff(trace, axis=0) <= [np.inf, 0.0]) and np.all(np.diff(trace[:, 0]) >= 0)
    held = prob.X_TRUE + np.array([0.15, -0.2, 0.0])
    x, f, _ = levenberg_marquardt(prob, held, 60, free=[0, 1])
    assert x[2] == held[2] and np.abs(x - prob.X_TRUE).max() < 0.01
    with pytest.raises(InvalidParameterError, match="budget"):
        levenberg_marquardt(prob, x0, 5)
    with pytest.raises(InvalidParameterError, match="fidelity"):
        levenberg_marquardt(prob, x0, 60, fidelity="medium")


def test_root_and_refinement_options_are_checked(target):
    for bad in (-1, 1):
        with pytest.raises(InvalidParameterError, match="root_sites"):
            calibrate(None, target, root_sites=bad)
        with pytest.raises(InvalidParameterError, match="fine_root_sites"):
            calibrate(None, target, fine_root_sites=bad)
    with pytest.raises(InvalidParameterError, match="fine_budget must be 0 .* at least 20"):
        calibrate(None, target, fine_budget=10)


# ------------------------------------------------------------------------------ bad input (no twin)


def test_bad_records_are_rejected_before_any_simulation():
    rng = np.random.default_rng(0)
    short = Ecg(rng.normal(0, 0.1, (12, 1500)), 1000.0, TWELVE_LEADS)
    with pytest.raises(InvalidSignalError, match="at least 2 s"):
        calibrate(None, short)
    three = Ecg(rng.normal(0, 0.1, (3, 10000)), 1000.0, ("V1", "V2", "V3"))
    with pytest.raises(MissingLeadsError):
        calibrate(None, three)
    with pytest.raises(InvalidParameterError, match="method"):
        calibrate(None, short, method="simplex")
    with pytest.raises(InvalidParameterError, match="stages"):
        calibrate(None, short, stages=("QRS", "ST"))
    with pytest.raises(InvalidParameterError, match="budget"):
        calibrate(None, short, budget=3)


def test_calibration_config_is_frozen_hashable_and_fingerprinted():
    """Equal settings give equal hashes and stage digests whatever their order; a changed setting or
    an unknown key is seen; the config round-trips through a dict (a config.toml)."""
    from cardiotwin.calibration import CalibrationConfig
    from cardiotwin.pipeline.stage import config_digest

    a = CalibrationConfig.from_dict({"budget": 600, "stages": ["QRS", "T"], "gain": "lead"})
    b = CalibrationConfig(gain="lead", stages=("QRS", "T"), budget=600)
    assert a == b and hash(a) == hash(b) and config_digest(a.as_dict()) == config_digest(b.as_dict())
    assert config_digest(a.replace(t_budget=301).as_dict()) != config_digest(a.as_dict())
    assert CalibrationConfig.from_dict(a.as_dict()) == a
    with pytest.raises(InvalidParameterError, match="unknown calibration settings"):
        a.replace(budjet=10)
    with pytest.raises(InvalidParameterError, match="gain"):
        CalibrationConfig(gain="per-lead")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.budget = 5


def test_flat_lead_is_skipped_and_af_has_no_p(shared_data):
    ecg = read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re").select(TWELVE_LEADS)
    sig = ecg.signals[:, :10000].copy()
    sig[TWELVE_LEADS.index("V3")] = 0.0
    tgt = Target.from_ecg(Ecg(sig, ecg.fs, TWELVE_LEADS))
    assert "V3" not in tgt.leads and "flat" in tgt.excluded_leads["V3"] and len(tgt.leads) == 11
    assert tgt.has_p
    af = Target.from_ecg(read_ecg(shared_data / "ecg_chapman_JS00001" / "JS00001.hea"))
    assert not af.has_p and af.irregular_rhythm
    with pytest.raises(InvalidSignalError):
        af.window_ms("P")


# ------------------------------------------------------------------------------ the phantom twin


@pytest.fixture(scope="module")
def model(calibration_model):
    return calibration_model


def test_coarse_model_transfers_activation(model):
    """The 2 mm model interpolated onto the 1 mm nodes: measured 2.2-3.8 ms MAE for default and
    fast-endocardium parameters (94 ms total activation); bound 5 ms and 5 % of the total."""
    ps = [EpParameters(), EpParameters(cv_endo=3.0, endo_depth_mm=1.0)]
    fine = model.ventricular(ps, "fine")
    coarse = model.ventricular(ps, "coarse")
    assert model.coarse.n_points < model.vent_nodes.size / 4
    mae = np.abs(fine - coarse).mean(axis=1)
    print("coarse - fine activation MAE (ms)", mae, "total", fine.max(1))
    assert np.all(mae < 5.0), mae
    assert np.all(np.abs(fine.max(1) - coarse.max(1)) < 0.05 * fine.max(1))


def test_calibration_and_simulation_share_one_forward_model(model):
    """The calibration's split solves (atria, ventricles from 0, shifted by the onset) give the
    activation times of :class:`~cardiotwin.twin.ForwardModel`, and its batched segments the
    12-lead ECG that ``cardiotwin ecg`` draws, to rounding (1e-6 ms; 1e-7 mV: the RT smoothing is a
    CG solve to a relative residual of 1e-8, so the two paths' RT agree to ~1e-5 ms)."""
    from cardiotwin.twin import ForwardModel

    p = EpParameters(cv_endo=2.5, apd_coupling=0.4, rt_smoothing_mm=3.0)
    sim = ForwardModel(model.twin).simulate(p, fs=1000.0, duration_ms=400.0)
    atrial, v_start = model.atrial([p])
    at = model.assemble(atrial, v_start, model.ventricular([p]))[0]
    assert np.allclose(np.where(np.isfinite(at), at + v_start[0], -1.0),
                       np.where(np.isfinite(sim.activation), sim.activation, -1.0), atol=1e-6)
    seg = model.segments(at[None], p, TWELVE_LEADS, 1000.0, (-v_start[0], 400.0 - v_start[0]))[0]
    assert seg.shape == sim.ecg.signals.shape
    np.testing.assert_allclose(seg, sim.ecg.signals, atol=1e-7)


def _quiet_beat_fit(model, truth: EpParameters, seed: int):
    """A nearly noise-free synthetic beat of ``truth`` and its QRS fit at the truth: the target, the
    truth's ventricular activation, the QRS lag (ms), the beat's per-lead gains and the counters."""
    from cardiotwin.calibration.optimise import _QrsProblem
    from cardiotwin.calibration.synthetic import synthetic_beat

    beat, _ = synthetic_beat(model, truth, np.random.default_rng(seed), noise_mv=0.005, emg_mv=0.0,
                             powerline_mv=0.0, wander_mv=0.0)
    target = Target.from_beat(beat)
    counts = {"coarse": 0, "fine": 0, "atrial": 0, "ecg": 0}
    vent = model.ventricular([truth])[0]
    qrs = _QrsProblem(model, target, SearchSpace.for_stage("QRS", truth), truth, Mismatch(target, "QRS"), counts)
    fit = qrs.fit(vent[None])
    return target, vent, float(fit.lag_ms[0]), fit.gain[0], counts


def test_p_stage_reads_the_av_delay_off_the_p_wave_shift(model):
    """The ventricles are silent over the P window, so the AV delay only moves the atrial ECG in
    time and the P stage reads it off the lag of each candidate (``_PProblem``). On a synthetic beat
    made with a 140 ms AV delay, a low sinus site and a slowed Bachmann's bundle, the candidate with
    the truth's atria but the default 100 ms gets 140 ms back to within 2 samples (2 ms at 1 kHz;
    the median beat and the delineated QRS onset move by a sample or so) and the truth's loss; the
    default site and routes score worse."""
    from cardiotwin.calibration.optimise import _PProblem

    truth = EpParameters(av_delay=140.0, sinus_site=0.4, bachmann_delay_ms=20.0)
    target, vent, lag, gain, counts = _quiet_beat_fit(model, truth, 2)
    prob = _PProblem(model, target, truth, vent, lag, "lead", gain, None, counts)
    loss, av = prob.fit([truth, truth.with_values(av_delay=100.0), truth.with_values(sinus_site=0.0, bachmann_delay_ms=0.0)])
    print("P stage av", av, "loss", loss)
    assert av[0] == pytest.approx(140.0, abs=2.0) and av[1] == pytest.approx(140.0, abs=2.0)
    assert loss[1] == pytest.approx(loss[0], abs=0.02)
    assert loss[2] > loss[0] + 0.05


def test_p_stage_interval_terms_measure_the_p_wave_as_the_delineator_does(model):
    """The P stage adds the P onset (PR) and P duration errors to the P window's mismatch, each
    bounded on the simulated leads as the delineator bounds the patient's. On a synthetic beat the
    truth's own atria (its AV delay) are within 10 ms on both (the noisy record's delineation
    against the clean simulation: each term under a quarter of FEATURE_WEIGHT); atria conducting
    twice as fast make a P wave tens of ms too short, and each ms of lag moves the onset by 1 ms."""
    from cardiotwin.calibration.optimise import FEATURE_SCALE_MS, FEATURE_WEIGHT, _PProblem

    truth = EpParameters(av_delay=140.0, cv_atrial_fibre=0.6, cv_atrial_transverse=0.3)
    target, vent, lag, gain, counts = _quiet_beat_fit(model, truth, 3)
    prob = _PProblem(model, target, truth, vent, lag, "lead", gain, None, counts)
    fast = truth.with_values(cv_atrial_fibre=1.2, cv_atrial_transverse=0.6)
    ps = [truth, fast]
    cost = prob._cost(prob.segments(ps), np.array([p.av_delay for p in ps]))
    at_lag = cost(np.array([lag, lag + 10.0]))
    print("interval terms at the QRS lag and 10 ms on", at_lag)
    assert at_lag[0, 0] < 0.5 * FEATURE_WEIGHT
    assert at_lag[1, 0] > FEATURE_WEIGHT
    # 10 ms of lag: the onset term grows as ((e + 10) / scale)^2 - (e / scale)^2 with |e| <= 10 ms
    grow = (at_lag[0, 1] - at_lag[0, 0]) / FEATURE_WEIGHT * FEATURE_SCALE_MS**2
    assert 0.0 <= grow <= 400.0


def test_t_stage_interval_terms_find_the_patients_qt(model):
    """The T stage adds the T peak time and QT errors to the ST-T window's mismatch, the T wave
    bounded on the simulated leads as the delineator bounds the patient's. On a synthetic beat the
    truth's repolarisation is within 10 ms on both (under a quarter of FEATURE_WEIGHT each); a mean
    APD 60 ms longer moves both by tens of ms (the terms grow past FEATURE_WEIGHT)."""
    from cardiotwin.calibration.optimise import FEATURE_WEIGHT, _TProblem

    truth = EpParameters(apd_mean=280.0)
    target, vent, lag, gain, counts = _quiet_beat_fit(model, truth, 4)
    mis = Mismatch(target, "T", gain="lead", max_lag_ms=abs(lag) + 1.0, fixed_gain=gain)
    atrial, v_start = model.atrial([truth])
    at = model.assemble(atrial, v_start, vent[None])
    space = SearchSpace.for_stage("T", truth)
    prob = _TProblem(space, truth, mis, at, model.repolarisation.for_activation(at[0]), model, target, None, counts,
                     lag, gain)
    xs = np.array([space.to_unit(truth), space.to_unit(truth.with_values(apd_mean=340.0))])
    pen = prob.penalty(prob.segments(xs))
    print("T interval terms (truth, APD + 60 ms)", pen)
    assert pen[0] < 0.5 * FEATURE_WEIGHT
    assert pen[1] > FEATURE_WEIGHT


@pytest.fixture(scope="module")
def recovery(model):
    from cardiotwin.calibration.synthetic import synthetic_beat

    rng = np.random.default_rng(1)
    space = SearchSpace.for_stage("QRS")
    truth = space.to_params(space.sample(rng, 1)[0])
    beat, route = synthetic_beat(model, truth, rng)
    result = calibrate(model.twin, beat, budget=600, seed=1, model=model, mapping_rounds=1, t_budget=120,
                       p_budget=32, root_sites=4)
    return truth, beat, route, result


@pytest.mark.slow
def test_parameter_recovery_small_budget(model, recovery):
    """(slow: ~2.5 min with its fixture; bench_calibration.py measures recovery at full budget) Hidden QRS parameters (seed 1), noisy record, 600 coarse evaluations + 1 mapping round. The
    benchmark (1200 evaluations + a 1 mm refinement, several seeds) asks median r >= 0.95, AT MAE < 5 ms,
    roots within 10 mm; with this budget the bounds are looser: median QRS r >= 0.92, AT MAE < 8 ms
    (measured 0.960 and 4.9 ms; 360 evaluations gave 0.885 and 10.3 ms), and the activation must be
    closer to the truth than the uncalibrated defaults' (12.8 ms)."""
    from cardiotwin.calibration import recovery_errors

    truth, beat, route, result = recovery
    err = recovery_errors(model, truth, result.params)
    print("recovery", route, result.median_correlation("QRS"), err, result.timings, result.n_simulations)
    assert result.median_correlation("QRS") >= 0.92
    assert err["at_mae_ms"] < 8.0
    t_true, t_default = model.ventricular([truth, SearchSpace.for_stage("QRS").base], "fine")
    default_mae = float(np.mean(np.abs(t_true - t_default)))  # as recovery_errors takes it
    print("default parameters: AT MAE", default_mae)
    assert err["at_mae_ms"] < default_mae
    sites = next(h for h in result.history if h["stage"] == "QRS root sites (coarse)")
    assert result.n_simulations["coarse"] <= 600 + 4 + sum(sites["candidates"]) + 2
    assert result.n_simulations["fine"] <= 6


@pytest.mark.parametrize("fidelity", ["coarse", "fine"])
def test_single_root_fields_superpose_to_the_joint_solve(model, fidelity):
    """The identity the root-site search rests on: the activation from several roots with delays
    is the pointwise minimum of the single-root activations shifted by their delays (eikonal
    solutions are distances from the nearest source). On the discrete coarse model the two differ
    only where fronts meet, where the joint solve's local updates combine two fronts and come out
    earlier (a monotone scheme: never later): measured on the 2 mm model 99th percentile 0.31 ms,
    max 2.6 ms at a few collision nodes (1 mm: 0.10 ms, 2.3 ms); bounds for both models: never
    later, 99th percentile < 0.5 ms, > 0.5 ms at < 2 % of nodes."""
    p = EpParameters()
    delays = np.array([r.delay_ms for r in p.roots])
    if fidelity == "coarse":
        nodes = model.coarse.snap([r.ventricle for r in p.roots], model.root_positions(p))
        solve = model.coarse.solve
    else:
        nodes = model.model.root_nodes(p)[0]

        def solve(params, roots):
            return model.model.ventricular_batch(params, roots, head_wave=False)
    joint = solve([p], [(nodes, delays)])[0]
    single = solve([p] * len(nodes), [(np.array([n]), np.zeros(1)) for n in nodes])
    superposed = (single + delays[:, None]).min(axis=0) - delays.min()
    d = joint - superposed
    print("joint - superposed ms: min", d.min(), "99th percentile |d|", np.percentile(np.abs(d), 99))
    assert d.max() < 1e-3  # the iterative solver's tolerance (measured 3e-5 ms on the 1 mm model)
    assert np.percentile(np.abs(d), 99) < 0.5 and np.mean(np.abs(d) > 0.5) < 0.02


def _root_site_problem(model, space, truth):
    """The QRS problem of a noisy synthetic ECG of ``truth``, the coarse model space-mapped at the truth."""
    from cardiotwin.calibration.objective import LEAD_IN_MS
    from cardiotwin.calibration.optimise import _QrsProblem
    from cardiotwin.calibration.synthetic import synthetic_beat

    beat, _ = synthetic_beat(model, truth, np.random.default_rng(5))
    target = Target.from_beat(beat)
    prob = _QrsProblem(model, target, space, space.base, Mismatch(target, "QRS", lead_in_ms=LEAD_IN_MS),
                       {"coarse": 0, "fine": 0, "atrial": 0, "ecg": 0})
    prob.correction = model.ventricular([truth], "fine")[0] - model.ventricular([truth], "coarse")[0]
    return prob


@pytest.mark.parametrize("fidelity", ["coarse", pytest.param("fine", marks=pytest.mark.slow)])
def test_root_site_search_moves_a_displaced_root_back(model, fidelity):
    """Noisy synthetic ECG of parameters whose anterior root sits on a node of the 4 x 4 candidate
    grid; the search starts with that root in the opposite corner of its box (38 mm away) and a
    wrong delay, the coarse model space-mapped at the truth (or the 1 mm model: slow, ~70 fine
    solves). It must put the root back within 5 mm and its delay within 4 ms, reach the truth's
    loss (within 5 %: another root may trade a grid step for the noise; from a -6 ms start the
    septal root moved 11 mm on the 1 mm model at an equal loss) and leave the velocities alone.
    Measured: every root back to 0 mm on both models (1 mm: 74 s)."""
    from dataclasses import replace as dc_replace

    from cardiotwin.calibration.root_sites import root_site_search

    space = SearchSpace.for_stage("QRS")
    base = space.base
    names = [r.name for r in base.roots]
    k = names.index("lv_anterior_paraseptal")
    true_root = dc_replace(base.roots[k], apicobasal=0.75, rotational=0.5, delay_ms=4.0)  # a grid point
    truth = base.with_values(roots=tuple(true_root if j == k else r for j, r in enumerate(base.roots)))
    prob = _root_site_problem(model, space, truth)
    moved = dc_replace(true_root, apicobasal=0.45, rotational=1.2, delay_ms=-4.0)  # the true 4 ms is a step away
    start = truth.with_values(roots=tuple(moved if j == k else r for j, r in enumerate(truth.roots)))
    x0 = space.to_unit(start)
    history: list = []
    x, f, n = root_site_search(prob, x0, n_grid=4, cycles=2, history=history, fidelity=fidelity)
    found = space.to_params(x, base)
    d = np.linalg.norm(model.root_positions(found) - model.root_positions(truth), axis=1)
    print("root-site search:", history[-1], "distances mm", d.round(1),
          "start", np.linalg.norm(model.root_positions(start)[k] - model.root_positions(truth)[k]).round(1))
    truth_loss = float(prob.loss(fidelity)(space.to_unit(truth)[None])[0])
    assert history[-1]["kept"] and f < history[-1]["loss_before"] and f <= 1.05 * truth_loss
    assert d[k] < 5.0 and abs(found.roots[k].delay_ms - 4.0) <= 4.0
    assert np.array_equal(x[:4], x0[:4])
    assert n == sum(history[-1]["candidates"]) + 2
    with pytest.raises(InvalidParameterError, match="n_grid"):
        root_site_search(prob, x0, n_grid=1)
    with pytest.raises(InvalidParameterError, match="fidelity"):
        root_site_search(prob, x0, fidelity="medium")


@pytest.mark.slow
def test_root_site_search_moves_the_reference_root_before_the_others(model):
    """(slow: ~45 s) The reference (septal) root displaced to the far corner of its box and the other roots
    firing 10 ms earlier relative to it than in the truth (so the septal front excites only ~16 %
    of the nodes first). Its delay is 0 by definition, so only a delay below the others' (a lead
    step, the reference delay moving as an exact shift of all the others) brings the combination
    back. Coarse model, space-mapped at the truth, 4 x 4 grids. The septal root must come back
    within 5 mm, the delays relative to it within 4 ms (one step), the loss within 5 % of the
    truth's. Measured: exact (0 mm, 0 ms, the truth's loss); the search before lead steps left
    the septal root 6.6 mm off, the others 10 ms early and the loss at 3x the truth's."""
    from dataclasses import replace as dc_replace

    from cardiotwin.calibration import recovery_errors
    from cardiotwin.calibration.root_sites import root_site_search

    space = SearchSpace.for_stage("QRS")
    base = space.base
    names = [r.name for r in base.roots]
    k = names.index("lv_septal_central")
    truth = base.with_values(roots=tuple(dc_replace(r, apicobasal=5 / 12, rotational=0.15) if j == k else r
                                         for j, r in enumerate(base.roots)))  # a grid point
    prob = _root_site_problem(model, space, truth)
    start = truth.with_values(roots=tuple(dc_replace(r, apicobasal=0.75, rotational=-0.45) if j == k
                                          else dc_replace(r, delay_ms=r.delay_ms - 10.0)
                                          for j, r in enumerate(truth.roots)))
    share = recovery_errors(model, truth, start)["estimate_root_influence"]["lv_septal_central"]
    assert share < 0.25  # mostly overrun at the start
    history: list = []
    x, f, _ = root_site_search(prob, space.to_unit(start), n_grid=4, cycles=3, history=history)
    found = space.to_params(x, base)
    d = np.linalg.norm(model.root_positions(found) - model.root_positions(truth), axis=1)
    delays = np.array([r.delay_ms for r in found.roots])
    print("reference root before the others:", history[-1], "start share", round(share, 3),
          "distances mm", d.round(1), "delays", delays)
    truth_loss = float(prob.loss("coarse")(space.to_unit(truth)[None])[0])
    assert d[k] < 5.0 and found.roots[k].delay_ms == 0.0
    assert np.abs(delays - np.array([r.delay_ms for r in truth.roots])).max() <= 4.0
    assert f <= 1.05 * truth_loss


def test_synthetic_beat_falls_back_when_the_detector_takes_t_waves(model, monkeypatch):
    """A detection with the right number of beats but every one on the T wave (~230 ms late; the
    phantom's steep T waves did this on recovery seed 4) is a failed detection: the synthetic
    record's known R peaks are used instead, and the beat's QRS is where the simulation put it."""
    from dataclasses import replace as dc_replace

    import cardiotwin.calibration.synthetic as syn

    detect = syn.preprocess
    monkeypatch.setattr(syn, "preprocess", lambda ecg, **kw: dc_replace(detect(ecg, **kw), r_peaks=detect(ecg, **kw).r_peaks + 230))
    beat, route = syn.synthetic_beat(model, EpParameters(), np.random.default_rng(0))
    assert route == "known_r_peaks"
    assert beat.fiducials.qrs_off_ms - beat.fiducials.qrs_on_ms < 150.0


def test_overrun_root_is_not_effective(model):
    """A root placed on another root's site but firing 15 ms later never excites anything first:
    removing it changes no activation time, so it is flagged not effective (its site is not
    recoverable from the ECG); the root it hides behind is effective."""
    from dataclasses import replace as dc_replace

    from cardiotwin.calibration import recovery_errors

    base = SearchSpace.for_stage("QRS").base
    roots = {r.name: r for r in base.roots}
    septal = roots["lv_septal_central"]
    hidden = dc_replace(roots["lv_anterior_paraseptal"], apicobasal=septal.apicobasal,
                        rotational=septal.rotational, delay_ms=septal.delay_ms + 15.0)
    truth = base.with_values(roots=tuple(hidden if r.name == hidden.name else r for r in base.roots))
    err = recovery_errors(model, truth, truth)
    assert err["root_influence"]["lv_anterior_paraseptal"] == 0.0
    assert not err["root_effective"]["lv_anterior_paraseptal"]
    assert err["root_effective"]["lv_septal_central"] and err["root_influence"]["lv_septal_central"] > 0.05
    assert err["at_mae_ms"] == 0.0 and err["max_effective_root_distance_mm"] == 0.0
    assert err["max_matched_root_distance_mm"] == 0.0 and "lv_anterior_paraseptal" not in err["root_distance_matched_mm"]
    assert all(v == 0.0 for v in err["root_site_effect_ms"].values())  # nothing moved, nothing changes


def test_swapped_roots_match_by_site_not_by_name(model):
    """Two roots exchanging sites and delays give the same activation: paired by name they are far
    apart, matched to the nearest effective estimated root they are recovered exactly."""
    from dataclasses import replace as dc_replace

    from cardiotwin.calibration import recovery_errors

    base = SearchSpace.for_stage("QRS").base
    roots = {r.name: r for r in base.roots}
    ant, post = roots["lv_anterior_paraseptal"], roots["lv_posterior_paraseptal"]
    moved = {ant.name: dc_replace(ant, apicobasal=post.apicobasal, rotational=post.rotational, delay_ms=post.delay_ms),
             post.name: dc_replace(post, apicobasal=ant.apicobasal, rotational=ant.rotational, delay_ms=ant.delay_ms)}
    swapped = base.with_values(roots=tuple(moved.get(r.name, r) for r in base.roots))
    err = recovery_errors(model, base, swapped)
    assert err["at_mae_ms"] < 1e-6  # the same activation up to round-off
    assert min(err["root_distance_mm"][ant.name], err["root_distance_mm"][post.name]) > 20.0
    assert err["max_matched_root_distance_mm"] == 0.0
    # one root at a time moved to its same-name estimate: the unmoved roots change nothing, the
    # anterior root on the posterior site (with its own, earlier delay) changes the activation
    effect = err["root_site_effect_ms"]
    assert effect["lv_septal_central"] == 0.0 and effect["rv_moderator_band"] == 0.0
    assert effect[ant.name] > 0.5 and effect[post.name] > 0.5


@pytest.mark.slow
def test_full_chain_writes_result(recovery, tmp_path):
    """(slow: shares the recovery fixture above) Every stage's fit and the written result files."""
    _, beat, _, result = recovery
    assert result.stages[0] == "QRS" and "T" in result.stages
    assert ("P" in result.stages) == beat.fiducials.has_p
    assert set(result.fits) >= {"QRS", "T"}
    # the T stage fits the T window (APD parameters only change T): r in the T window is high
    assert result.median_correlation("T") > 0.8
    assert result.fitted.leads == TWELVE_LEADS and result.fitted.n_samples == beat.ecg.n_samples
    paths = write_result(result, tmp_path)
    assert {p.name for p in paths.values()} == {"parameters.json", "calibration.json", "fitted_ecg.csv",
                                                 "measured_beat.csv", "overlay.png"}
    summary = json.loads((tmp_path / "calibration.json").read_text())
    assert set(summary["per_lead_correlation"]["QRS"]) == set(TWELVE_LEADS)
    assert summary["history"] and summary["n_simulations"]["coarse"] > 0
    from cardiotwin.io.parameters import read_parameters

    assert read_parameters(tmp_path / "parameters.json") == result.params
    back = read_ecg(tmp_path / "fitted_ecg.csv")
    assert np.allclose(back.signals, result.fitted.signals, atol=1e-5)


@pytest.mark.slow
def test_atrial_fibrillation_calibrates_qrs_and_t_only(model, shared_data):
    """(slow: ~55 s) AF: no P stage; with the heart's rotation fitted too, the rotated lead fields carry through the
    T stage and the fitted ECG (its QRS fit is the one the rotation search reached)."""
    beat = preprocess(read_ecg(shared_data / "ecg_chapman_JS00001" / "JS00001.hea"))
    result = calibrate(model.twin, beat, budget=24, seed=0, model=model, mapping_rounds=0, t_budget=16,
                       pose=True, pose_budget=16)
    assert result.stages == ("QRS", "T") and "P" not in result.fits
    assert any("no P wave" in n for n in result.notes) and any("irregular" in n for n in result.notes)
    assert result.fitted.fs == 500.0
    rotation = [h for h in result.history if h["stage"] == "QRS heart rotation" and "loss_after" in h]
    assert len(rotation) == 1 and rotation[0]["loss_after"] <= rotation[0]["loss_before"]
    if result.rotation_deg is not None:  # the pass found a better orientation
        assert result.summary()["heart_rotation_deg"] == result.rotation_deg.tolist()
        assert abs(float(result.fits["QRS"].loss[0]) - rotation[0]["loss_after"]) < 0.05
    with pytest.raises(InvalidParameterError, match="pose_budget"):
        calibrate(model.twin, beat, budget=24, model=model, pose=True, pose_budget=4)


@pytest.mark.slow
def test_real_ecg_small_budget(model, shared_data):
    """(slow: ~60 s) PTB s0010_re (inferolateral MI) on the phantom's anatomy (not the patient's): preprocessing
    finds beats and fiducials, and a small QRS calibration (240 coarse evaluations; measured median
    r 0.71) beats the uncalibrated defaults and reaches a median QRS r >= 0.65 (the benchmark, with
    a larger budget, reports each record against the 0.85 target)."""
    from cardiotwin.calibration.objective import Mismatch
    from cardiotwin.calibration.optimise import _QrsProblem

    ecg = read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re").select(TWELVE_LEADS)
    beat = preprocess(Ecg(ecg.signals[:, :10000], ecg.fs, ecg.leads))
    assert beat.n_used >= 5 and beat.fiducials.has_p
    result = calibrate(model.twin, beat, budget=240, seed=0, model=model, mapping_rounds=1, stages=("QRS",))
    target = Target.from_beat(beat)
    space = SearchSpace.for_stage("QRS")
    prob = _QrsProblem(model, target, space, space.base, Mismatch(target), {"coarse": 0, "fine": 0, "atrial": 0, "ecg": 0})
    default = float(np.median(prob.fit(model.ventricular([space.base], "fine")).correlation))
    print("s0010_re", result.median_correlation("QRS"), "default", default, result.correlations("QRS"))
    assert result.median_correlation("QRS") >= 0.65
    assert result.median_correlation("QRS") > default


@pytest.mark.slow
def test_hidden_repolarisation_is_recovered(model):
    """(slow: ~1 min; bench_calibration.py --hidden-seeds runs five draws of T and P) Hidden repolarisation
    (coupling, 3 mm smoothing, regional APD terms, a slow phase 3) on the true activation of a noisy
    synthetic record; the T stage starts from the default repolarisation (RT MAE 33 ms, Spearman 0.59).
    Measured: T r 0.966, RT MAE 2.9 ms, Spearman 0.973 (CMA-ES alone, before the Levenberg-Marquardt
    polish: 0.68 / 31.7 ms / 0.73). Bounds: T r >= 0.95 (the record is noisy), RT MAE < 10 ms,
    Spearman r >= 0.85 (Camps et al. 2025 report r 0.63 +- 0.11 from the ECG alone)."""
    from cardiotwin.calibration import repolarisation_errors
    from cardiotwin.calibration.synthetic import synthetic_beat

    truth = EpParameters(apd_mean=330.0, apd_transmural=40.0, apd_apicobasal=10.0, apd_septal=20.0,
                         apd_anterior=-15.0, apd_coupling=0.7, rt_smoothing_mm=3.0, ap_repolarisation_ms=60.0)
    beat, _ = synthetic_beat(model, truth, np.random.default_rng(3))
    t_defaults = {n: getattr(EpParameters(), n) for n in SearchSpace.for_stage("T").names}
    start = truth.with_values(**t_defaults, rt_smoothing_mm=0.0)
    result = calibrate(model.twin, beat, stages=("T",), base=start, model=model, t_budget=480, seed=0)
    err = repolarisation_errors(model, truth, result.params)
    before = repolarisation_errors(model, truth, start)
    print("repolarisation recovery", result.median_correlation("T"), err, before, result.params)
    assert result.median_correlation("T") >= 0.95
    assert err["rt_mae_ms"] < 10.0 and before["rt_mae_ms"] > 30.0
    assert err["rt_spearman"] >= 0.85
