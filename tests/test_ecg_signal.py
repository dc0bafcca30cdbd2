"""Tests of patient-ECG preprocessing (cardiotwin.ecg.signal) and measurements (cardiotwin.ecg.features).

Ground truth comes from a synthetic 12-lead ECG built from a dipole model: every wave (P, Q, R, S,
T) is a tapered Gaussian time course (exactly zero outside known onset/offset) along a fixed
heart-vector direction, projected on the 12 lead vectors (limb leads obey Einthoven/Goldberger).
Baseline wander, powerline hum, white noise and one premature ventricular beat are added.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from cardiotwin.ecg.features import features, frontal_axis
from cardiotwin.ecg.signal import (
    Beat,
    Fiducials,
    clean,
    delineate,
    detect_r_peaks,
    find_flat_leads,
    median_beat,
    pq_level,
    powerline_frequency,
    preprocess,
    wave_bounds,
)
from cardiotwin.errors import CardiotwinError, InputError, InvalidSignalError, MissingLeadsError
from cardiotwin.io import read_ecg
from cardiotwin.types import TWELVE_LEADS, Ecg

# ----------------------------------------------------------------------------- synthetic ECG model

K_TAPER = 2.2  # waves are cut (to exactly zero) at centre -/+ 2.2 sigma: that is the true on/offset


def _direction(frontal_deg: float, anterior: float) -> np.ndarray:
    a = np.deg2rad(frontal_deg)
    v = np.array([np.cos(a), np.sin(a), anterior])  # x = patient left, y = inferior, z = anterior
    return v / np.linalg.norm(v)


def _lead_matrix() -> np.ndarray:
    lead_i, lead_ii, lead_iii = (np.array([np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a)), 0.0]) for a in (0, 60, 120))
    rows = {"I": lead_i, "II": lead_ii, "III": lead_iii, "aVR": -(lead_i + lead_ii) / 2,
            "aVL": (lead_i - lead_iii) / 2, "aVF": (lead_ii + lead_iii) / 2}
    for name, ang in zip(("V1", "V2", "V3", "V4", "V5", "V6"), (115, 94, 77, 61, 30, 0)):
        rows[name] = 1.6 * np.array([np.cos(np.deg2rad(ang)), 0.15, np.sin(np.deg2rad(ang))])
    return np.array([rows[lead] for lead in TWELVE_LEADS])


LEADS = _lead_matrix()

# (wave, centre relative to R in ms, amplitude mV, sigma before, sigma after, heart-vector direction)
SINUS = [
    ("P", -160.0, 0.18, 22.0, 22.0, _direction(55, 0.2)),
    ("Q", -26.0, 0.25, 7.0, 7.0, _direction(-160, 0.6)),
    ("R", 0.0, 1.6, 9.0, 9.0, _direction(50, -0.3)),
    ("S", 26.0, 0.5, 8.0, 8.0, _direction(-120, -0.6)),
    ("T", 250.0, 0.35, 55.0, 35.0, _direction(40, 0.4)),
]
PVC = [("R", 0.0, 2.0, 30.0, 30.0, _direction(-80, 0.7)), ("T", 280.0, 0.5, 60.0, 40.0, _direction(100, -0.7))]
BEFORE_MS = 350.0  # preprocess default window before R


def _wave(t: np.ndarray, centre: float, amp: float, s_left: float, s_right: float) -> np.ndarray:
    edge = np.exp(-K_TAPER**2 / 2)
    sigma = np.where(t < centre, s_left, s_right)
    g = (np.exp(-0.5 * ((t - centre) / sigma) ** 2) - edge) / (1 - edge)
    return amp * np.where((t >= centre - K_TAPER * s_left) & (t <= centre + K_TAPER * s_right), g, 0.0)


def _truth_rel_r() -> dict[str, float]:
    on = {w: c - K_TAPER * sl for w, c, a, sl, sr, d in SINUS}
    off = {w: c + K_TAPER * sr for w, c, a, sl, sr, d in SINUS}
    return {"p_on": on["P"], "p_off": off["P"], "qrs_on": min(on[w] for w in "QRS"),
            "qrs_off": max(off[w] for w in "QRS"), "t_peak": 250.0, "t_end": off["T"]}


def _beat_signal(t: np.ndarray, waves, skip=()) -> np.ndarray:
    return sum(np.outer(LEADS @ d, _wave(t, c, a, sl, sr)) for w, c, a, sl, sr, d in waves if w not in skip)


def synthetic(fs=500.0, seconds=10.0, rr=830.0, seed=0, ectopic_at=5, hum_hz=50.0, hum_mv=0.1,
              noise_mv=0.02, wander_mv=0.4, af=False):
    """(noisy Ecg, noise-free Ecg, R times in ms, kinds) of a synthetic 12-lead record."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs * 1000.0
    clean_sig = np.zeros((12, n))
    centres, kinds = [], []
    c, i = 400.0, 0
    while c < seconds * 1000 - 300:
        kind = "pvc" if i == ectopic_at else "sinus"
        clean_sig += _beat_signal(t - c, PVC if kind == "pvc" else SINUS, skip=("P",) if af else ())
        centres.append(c)
        kinds.append(kind)
        step = rng.uniform(0.55, 0.9) * rr if af else rr + rng.normal(0, 15)
        if not af and i + 1 == ectopic_at:
            step = 0.6 * rr  # premature ventricular beat ...
        elif not af and i == ectopic_at:
            step = 1.4 * rr  # ... and its compensatory pause
        c += step
        i += 1
    noisy = clean_sig.copy()
    if af:  # fibrillatory waves: 5-8 Hz, drifting phase, strongest in V1 and the inferior leads
        f_wave = np.zeros(n)
        for f0 in rng.uniform(5, 8, 4):
            f_wave += 0.03 * np.sin(2 * np.pi * f0 * t / 1000 + np.cumsum(rng.normal(0, 0.05, n)))
        noisy += np.outer(LEADS @ _direction(100, 0.6), f_wave)
    ts = t / 1000.0
    wander = wander_mv * (np.sin(2 * np.pi * 0.25 * ts + 0.3) + 0.5 * np.sin(2 * np.pi * 0.07 * ts))
    noisy += wander[None] * rng.uniform(0.5, 1.5, (12, 1))
    if hum_hz:
        noisy += hum_mv * np.sin(2 * np.pi * hum_hz * ts + rng.uniform(0, 2 * np.pi, (12, 1)))
    noisy += rng.normal(0, noise_mv, noisy.shape)
    return Ecg(noisy, fs, TWELVE_LEADS), Ecg(clean_sig, fs, TWELVE_LEADS), np.array(centres), kinds


def _expected_beat_times(beat: Beat, centres_ms: np.ndarray) -> dict[str, float]:
    """True fiducials on the beat's time axis: truth relative to each used beat's R, averaged."""
    fs = beat.ecg.fs
    used_ms = beat.r_peaks[beat.used] / fs * 1000.0
    nearest = centres_ms[np.abs(centres_ms[None] - used_ms[:, None]).argmin(axis=1)]
    shift = float(np.mean(nearest - used_ms))  # how far the detected R sits from the R-wave centre
    return {k: v + beat.r_ms + shift for k, v in _truth_rel_r().items()}


@pytest.fixture(scope="module")
def sinus500():
    return synthetic(fs=500.0)


# ---------------------------------------------------------------------------------------- filters


def test_clean_removes_wander_hum_noise_without_shifting(sinus500):
    noisy, truth, _, _ = sinus500
    assert powerline_frequency(noisy) == 50.0
    out = clean(noisy)
    assert out.leads == noisy.leads and out.fs == noisy.fs and out.n_samples == noisy.n_samples
    inner = slice(500, -500)  # filter edge transients (1 s) are not judged
    err = out.signals[:, inner] - truth.signals[:, inner]
    err -= err.mean(axis=1, keepdims=True)  # the high-pass removes the ECG's mean (DC) level too
    before = noisy.signals[:, inner] - truth.signals[:, inner]
    before -= before.mean(axis=1, keepdims=True)
    # 0.4 mV wander + 0.1 mV hum + 20 uV noise -> residual dominated by the white noise below
    # 150 Hz (~20 uV) and the 0.5 Hz high-pass slightly reshaping slow waves: 40 uV RMS
    assert np.sqrt(np.mean(err**2)) < 0.04
    assert np.sqrt(np.mean(err**2)) < 0.15 * np.sqrt(np.mean(before**2))
    # zero phase: the cross-correlation with the truth peaks at lag 0 in every lead
    for lead in range(12):
        a, b = out.signals[lead, inner], truth.signals[lead, inner]
        lags = np.arange(-5, 6)
        xc = [np.dot(np.roll(a, k), b) for k in lags]
        assert lags[int(np.argmax(xc))] == 0


def test_powerline_detection_50_60_none():
    assert powerline_frequency(synthetic(hum_hz=60.0, seed=1)[0]) == 60.0
    assert powerline_frequency(synthetic(hum_hz=None, seed=2)[0]) is None
    # 60 Hz hum is removed by the auto-detected notch: power at 60 Hz drops by > 20 dB
    noisy = synthetic(hum_hz=60.0, hum_mv=0.3, seed=1)[0]
    out = clean(noisy)

    def line_power(ecg: Ecg) -> float:
        spec = np.abs(np.fft.rfft(ecg.signals[:, 500:-500], axis=1)) ** 2
        f = np.fft.rfftfreq(ecg.n_samples - 1000, 1 / ecg.fs)
        return float(spec[:, np.abs(f - 60) < 0.3].sum())

    assert line_power(out) < 0.01 * line_power(noisy)


# ------------------------------------------------------------------------------------- R peaks


@pytest.mark.parametrize("fs", [250.0, 500.0, 1000.0])
def test_r_peaks_match_truth(fs):
    noisy, _, centres, kinds = synthetic(fs=fs, seed=3)
    r = detect_r_peaks(noisy)  # on the raw record: the detector has its own band-pass
    assert len(r) == len(centres)  # every beat once, no T wave or noise counted
    # sinus R peaks land on the R wave (its apex is within a few ms of the R-component centre)
    err = r / fs * 1000.0 - centres
    sinus = np.array(kinds) == "sinus"
    assert np.abs(err[sinus]).max() <= 8.0


# ---------------------------------------------------------------------------------- median beat


def test_median_beat_rejects_ectopic(sinus500):
    noisy, truth, centres, kinds = sinus500
    ecg = clean(noisy)
    r = detect_r_peaks(ecg)
    pvc = int(np.argmin(np.abs(r / ecg.fs * 1000.0 - centres[kinds.index("pvc")])))
    beat = median_beat(ecg, r)
    assert not beat.used[pvc]
    assert beat.rejected["rr"] >= 1 and not beat.irregular_rhythm
    assert beat.n_used + beat.n_rejected == len(r) and beat.n_used >= 7
    assert beat.beats.shape == (beat.n_used, 12, beat.ecg.n_samples)
    assert np.all(beat.correlation > 0.98)
    # with the RR test switched off, the morphology test alone rejects the PVC
    beat2 = median_beat(ecg, r, rr_tolerance=10.0)
    assert not beat2.used[pvc] and beat2.rejected["morphology"] >= 1
    # the median beat equals the noise-free beat: noise 20 uV / sqrt(n) plus filter effects
    i0 = int(r[beat.used][2]) - beat.r_index
    ref = truth.signals[:, i0:i0 + beat.ecg.n_samples]
    ref = ref - np.median(ref - beat.ecg.signals, axis=1, keepdims=True)
    assert np.sqrt(np.mean((beat.ecg.signals - ref) ** 2)) < 0.03


# --------------------------------------------------------------------------------- delineation


@pytest.mark.parametrize("fs", [250.0, 500.0, 1000.0])
def test_fiducials_recovered(fs):
    noisy, _, centres, _ = synthetic(fs=fs, seed=4)
    beat = preprocess(noisy)
    fid = beat.fiducials
    want = _expected_beat_times(beat, centres)
    # tolerances: QRS boundaries 10 ms (two samples at 250 Hz plus the threshold bias on the
    # tapered waves), T peak 10 ms, T end 20 ms (flat end of a slow wave), P 15 ms (small wave)
    assert fid.qrs_on_ms == pytest.approx(want["qrs_on"], abs=10.0)
    assert fid.qrs_off_ms == pytest.approx(want["qrs_off"], abs=10.0)
    assert fid.t_peak_ms == pytest.approx(want["t_peak"], abs=10.0)
    assert fid.t_end_ms == pytest.approx(want["t_end"], abs=20.0)
    assert fid.has_p
    assert fid.p_on_ms == pytest.approx(want["p_on"], abs=15.0)
    assert fid.p_off_ms == pytest.approx(want["p_off"], abs=15.0)
    assert fid.p_on_ms < fid.p_peak_ms < fid.p_off_ms < fid.qrs_on_ms < fid.r_ms < fid.qrs_off_ms
    assert fid.windows["QRS"] == (fid.qrs_on_ms, fid.qrs_off_ms)
    assert fid.windows["T"] == (fid.qrs_off_ms, fid.t_end_ms)


def test_heavy_noise_still_delineated():
    noisy, _, centres, _ = synthetic(seed=5, noise_mv=0.06, hum_mv=0.3, wander_mv=1.0)
    beat = preprocess(noisy)
    want = _expected_beat_times(beat, centres)
    fid = beat.fiducials
    assert fid.qrs_on_ms == pytest.approx(want["qrs_on"], abs=10.0)
    assert fid.qrs_off_ms == pytest.approx(want["qrs_off"], abs=10.0)
    assert fid.t_end_ms == pytest.approx(want["t_end"], abs=20.0)


def test_artefact_beats_are_rejected():
    noisy, _, centres, _ = synthetic(seed=1)
    sig = noisy.signals.copy()
    i = int(0.9 * noisy.fs)
    sig[:, i:i + int(0.05 * noisy.fs)] += 8.0  # an 8 mV, 50 ms electrode-pop artefact in every lead
    beat = preprocess(Ecg(sig, noisy.fs, noisy.leads))
    windows = np.stack([beat.r_peaks - beat.r_index, beat.r_peaks - beat.r_index + beat.ecg.n_samples], 1)
    hit = (windows[:, 0] <= i) & (windows[:, 1] > i)
    assert hit.any() and not np.any(beat.used & hit)  # no beat containing the artefact is used
    want = _expected_beat_times(beat, centres)
    assert beat.fiducials.qrs_on_ms == pytest.approx(want["qrs_on"], abs=10.0)
    assert beat.fiducials.t_end_ms == pytest.approx(want["t_end"], abs=20.0)


@pytest.mark.parametrize("seed", [6, 7])
def test_atrial_fibrillation_has_no_p(seed):
    noisy, _, centres, _ = synthetic(fs=1000.0, seed=seed, af=True, ectopic_at=-1)
    beat = preprocess(noisy)
    assert beat.irregular_rhythm
    fid = beat.fiducials
    assert not fid.has_p and fid.p_on_ms is None and fid.windows["P"] is None
    assert "no P wave" in fid.note
    want = _expected_beat_times(beat, centres)
    assert fid.qrs_on_ms == pytest.approx(want["qrs_on"], abs=10.0)
    assert fid.qrs_off_ms == pytest.approx(want["qrs_off"], abs=10.0)
    assert features(beat)["pr_ms"] is None


# ----------------------------------------------------------------------------------- features


def test_features_match_truth(sinus500):
    noisy, truth, centres, _ = sinus500
    beat = preprocess(noisy)
    f = features(beat)
    # true frontal axis: direction of the net QRS area vector of the dipole model
    t = np.arange(-100.0, 100.0, 0.1)
    area = sum(a * d * _wave(t, c, 1.0, sl, sr).sum() * 0.1 for w, c, a, sl, sr, d in SINUS if w in "QRS")
    true_axis = np.rad2deg(np.arctan2(area[1], area[0]))
    assert f["qrs_axis_deg"] == pytest.approx(true_axis, abs=5.0)  # QRS window error -> few degrees
    tr = _truth_rel_r()
    assert f["qrs_ms"] == pytest.approx(tr["qrs_off"] - tr["qrs_on"], abs=15.0)  # two boundaries
    assert f["qt_ms"] == pytest.approx(tr["t_end"] - tr["qrs_on"], abs=25.0)
    assert f["pr_ms"] == pytest.approx(tr["qrs_on"] - tr["p_on"], abs=20.0)
    assert f["heart_rate_bpm"] == pytest.approx(60000.0 / np.mean(np.diff(centres)), rel=0.01)
    rr_s = f["rr_ms"] / 1000.0
    assert f["qtc_bazett_ms"] == pytest.approx(f["qt_ms"] / np.sqrt(rr_s))
    assert f["qtc_fridericia_ms"] == pytest.approx(f["qt_ms"] / rr_s ** (1 / 3))
    # R and S amplitudes against the noise-free beat: 30 uV for noise in the median of ~8 beats
    # and the 150 Hz low-pass shaving the sharpest peaks
    tq = np.arange(-60.0, 60.0, 0.1)
    qrs = _beat_signal(tq, SINUS, skip=("P", "T"))
    for k, lead in enumerate(TWELVE_LEADS):
        r_idx = int(np.argmax(qrs[k]))
        true_r = max(qrs[k].max(), 0.0)
        true_s = max(-qrs[k, r_idx:].min(), 0.0) if true_r > 0 else max(-qrs[k].min(), 0.0)
        assert f["r_amplitude_mV"][lead] == pytest.approx(true_r, abs=0.03 + 0.03 * true_r), lead
        assert f["s_amplitude_mV"][lead] == pytest.approx(true_s, abs=0.03 + 0.03 * true_s), lead


def test_frontal_axis_geometry():
    # a pure vector at angle a projects on I as cos(a) and on aVF as sqrt(3)/2 sin(a)
    for a in (-90.0, -30.0, 0.0, 45.0, 60.0, 120.0, 179.0):
        r = np.deg2rad(a)
        assert frontal_axis({"I": np.cos(r), "aVF": np.sqrt(3) / 2 * np.sin(r)}) == pytest.approx(a, abs=1e-9)
        six = {"I": np.cos(r), "II": np.cos(r - np.pi / 3), "III": np.cos(r - 2 * np.pi / 3)}
        assert frontal_axis(six) == pytest.approx(a, abs=1e-9)
    assert frontal_axis({"I": 1.0}) is None


# ---------------------------------------------------------------------------- leads and errors


def test_flat_and_absent_leads_are_excluded(sinus500):
    noisy = sinus500[0]
    sig = noisy.signals.copy()
    sig[TWELVE_LEADS.index("V3")] = 0.0  # disconnected channel
    flat = Ecg(sig, noisy.fs, noisy.leads)
    assert list(find_flat_leads(clean(flat))) == ["V3"]
    beat = preprocess(flat.select([lead for lead in TWELVE_LEADS if lead != "V5"]))
    assert "V3" not in beat.ecg.leads and "V5" not in beat.ecg.leads and len(beat.ecg.leads) == 10
    assert "flat" in beat.excluded_leads["V3"] and "absent" in beat.excluded_leads["V5"]
    assert beat.fiducials is not None and beat.derived_leads == ()


def test_absent_limb_leads_are_derived(sinus500):
    noisy = sinus500[0]
    eight = noisy.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    beat = preprocess(eight)
    assert beat.ecg.leads == TWELVE_LEADS
    assert set(beat.derived_leads) == {"III", "aVR", "aVL", "aVF"} and not beat.excluded_leads
    one, two = beat.ecg.lead("I"), beat.ecg.lead("II")
    # derived from the median I and II: Einthoven and Goldberger hold exactly
    np.testing.assert_allclose(beat.ecg.lead("III"), two - one, atol=1e-12)
    np.testing.assert_allclose(beat.ecg.lead("aVF"), two - one / 2, atol=1e-12)
    assert beat.beats.shape[1] == 12


def test_too_few_leads(sinus500):
    three = sinus500[0].select(["I", "II", "V2"])
    with pytest.raises(MissingLeadsError, match="min_leads"):
        preprocess(three, leads=["I", "II", "V2"])
    # documented degradation: allowed with min_leads, QRS still found (looser: fewer projections)
    beat = preprocess(three, leads=["I", "II", "V2"], min_leads=3)
    assert beat.ecg.leads == ("I", "II", "V2")
    want = _expected_beat_times(beat, sinus500[2])
    assert beat.fiducials.qrs_on_ms == pytest.approx(want["qrs_on"], abs=15.0)
    with pytest.raises(MissingLeadsError, match="none of the requested"):
        preprocess(sinus500[0].select(["V1", "V2"]), leads=["I", "II"])


def test_all_leads_flat():
    flat = Ecg(np.zeros((12, 5000)), 500.0, TWELVE_LEADS)
    with pytest.raises(MissingLeadsError, match="flat"):
        preprocess(flat)


def test_record_too_short(sinus500):
    short = Ecg(sinus500[0].signals[:, :900], 500.0, TWELVE_LEADS)  # 1.8 s
    with pytest.raises(InvalidSignalError, match="at least 2 s"):
        preprocess(short)


def test_too_few_beats():
    # 2.6 s at 45 bpm: two beats only
    noisy = synthetic(seconds=2.6, rr=1330.0, ectopic_at=-1, seed=7)[0]
    with pytest.raises(InvalidSignalError, match="at least 3"):
        preprocess(noisy)


def test_noise_only_record():
    rng = np.random.default_rng(8)
    with pytest.raises(InvalidSignalError, match="usable beat"):
        preprocess(Ecg(rng.normal(0, 0.05, (12, 5000)), 500.0, TWELVE_LEADS))


def test_bad_arguments(sinus500):
    ecg = sinus500[0]
    with pytest.raises(InputError, match="powerline_hz"):
        clean(ecg, powerline_hz=55)
    with pytest.raises(InputError, match="r_peaks"):
        median_beat(ecg, np.array([10, 5, 20000]))
    with pytest.raises(InputError, match="r_peaks"):
        median_beat(ecg, np.array([1.5, 2.5]))
    with pytest.raises(InputError, match="too short to delineate"):
        delineate(median_beat(clean(ecg), detect_r_peaks(ecg), before_ms=100.0))
    beat = preprocess(ecg)
    bad = Fiducials(qrs_on_ms=500.0, r_ms=350.0, qrs_off_ms=400.0, t_peak_ms=600.0, t_end_ms=700.0)
    with pytest.raises(InputError, match="fiducials"):
        features(beat, bad)
    assert issubclass(InvalidSignalError, CardiotwinError)


# ----------------------------------------------------------------------------------- real data


def test_real_ptb_s0010(shared_data):
    ecg = read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re")  # 15 leads; the 12 are used
    beat = preprocess(ecg)
    assert beat.ecg.leads == TWELVE_LEADS and not beat.excluded_leads
    f = features(beat)
    # sinus ~80 bpm over 38.4 s: beats found = duration / RR (+-1 for the partial ends)
    assert 70 < f["heart_rate_bpm"] < 95
    assert abs(len(beat.r_peaks) - ecg.duration_ms / f["rr_ms"]) <= 1.5
    assert beat.n_used >= len(beat.r_peaks) - 3
    assert np.median(beat.correlation) > 0.98 and beat.correlation.min() > 0.9
    assert 80 <= f["qrs_ms"] <= 160  # measured 129 ms (wide QRS: an R' in V1)
    assert 340 <= f["qt_ms"] <= 520
    assert f["has_p"] and 120 <= f["pr_ms"] <= 220


def test_real_chapman_af_rbbb(shared_data):
    beat = preprocess(read_ecg(shared_data / "ecg_chapman_JS00001" / "JS00001.hea"))
    f = features(beat)
    assert not f["has_p"] and beat.fiducials.p_on_ms is None  # atrial fibrillation
    assert beat.irregular_rhythm
    assert f["qrs_ms"] >= 110  # right bundle branch block (measured 118 ms)
    assert 95 < f["heart_rate_bpm"] < 130


def test_real_ptb_10_subjects(shared_data):
    d = np.load(shared_data / "ecg_ptbdb_10subjects_tseal" / "ecg_ptbdb_10subjects.npz")
    qrs = []
    for i in range(len(d["labels"])):
        ecg = Ecg(d["ecg_mV"][i], float(d["fs_hz"]), tuple(str(x) for x in d["leads"]))
        beat = preprocess(ecg)
        f = features(beat)
        assert beat.n_used >= 5 and np.median(beat.correlation) > 0.95
        assert 40 < f["heart_rate_bpm"] < 110
        assert 60 <= f["qrs_ms"] <= 130 and 300 <= f["qt_ms"] <= 520
        assert f["has_p"]  # all ten are in sinus rhythm
        qrs.append(f["qrs_ms"])
    print("PTB 10 subjects, QRS ms:", qrs)  # measured 78-101 ms


def test_real_ptb_s0273lre_segment(shared_data):
    x = sio.loadmat(shared_data / "ecg_ptbdb_s0273lre" / "s0273lre_signal.mat")["signal"]
    beat = preprocess(Ecg(x[:10000].T, 1000.0, TWELVE_LEADS))
    f = features(beat)
    assert 95 < f["heart_rate_bpm"] < 115 and 70 <= f["qrs_ms"] <= 120 and f["has_p"]


def test_real_ptb_s0010_sampling_rate_invariance(shared_data):
    from scipy.signal import resample_poly

    ecg = read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re").select(TWELVE_LEADS)
    ref = features(preprocess(ecg))
    low = features(preprocess(Ecg(resample_poly(ecg.signals, 1, 4, axis=1), 250.0, ecg.leads)))
    # the same heart at 250 Hz: intervals agree within 10 ms (2.5 samples; measured 0-7 ms),
    # the axis within 2 degrees
    for key in ("qrs_ms", "qt_ms", "pr_ms"):
        assert low[key] == pytest.approx(ref[key], abs=10.0), key
    assert low["qrs_axis_deg"] == pytest.approx(ref["qrs_axis_deg"], abs=2.0)


def test_simulated_beat_features_remeasure_a_real_median_beat(shared_data):
    """``simulated_beat_features`` (the beat tiled as a rhythm, cleaned, delineated) measures the real
    s0010 median beat as its own preprocessing did: PR within 10 ms (IEC 60601-2-25's PR tolerance;
    measured 6), QRS and QT within 5 ms. Before the tiles' joins were levelled, the step where the
    beat's end met its start was taken for the P wave's rise and no P was found."""
    from cardiotwin.ecg.features import simulated_beat_features

    beat = preprocess(read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re").select(TWELVE_LEADS))
    fid = beat.fiducials
    f = simulated_beat_features(beat.ecg, fid.r_ms)
    assert f["has_p"] and f["pr_ms"] == pytest.approx(fid.qrs_on_ms - fid.p_on_ms, abs=10.0)
    assert f["qrs_ms"] == pytest.approx(fid.qrs_off_ms - fid.qrs_on_ms, abs=5.0)
    assert f["qt_ms"] == pytest.approx(fid.t_end_ms - fid.qrs_on_ms, abs=5.0)
    # the record's own fiducials, moved onto the repeated beat's axis: its intervals exactly, and the
    # amplitudes of the record's own features: the repeated beat is the beat cleaned once more, whose
    # baseline filter moves the R peaks by <= 0.03 mV and the slow T waves by <= 0.07 mV (measured)
    own = simulated_beat_features(beat.ecg, fid.r_ms, fiducials=fid)
    assert own["pr_ms"] == fid.qrs_on_ms - fid.p_on_ms and own["p_ms"] == fid.p_off_ms - fid.p_on_ms
    assert own["qt_ms"] == fid.t_end_ms - fid.qrs_on_ms and own["t_peak_ms"] == fid.t_peak_ms - fid.qrs_on_ms
    record = features(beat)
    for key, tol in (("r_amplitude_mV", 0.03), ("t_amplitude_mV", 0.08)):
        for lead, amp in own[key].items():
            assert amp == pytest.approx(record[key][lead], abs=tol)


def test_isoelectric_level_comes_from_the_flat_pr_segment_not_a_slow_qrs_start():
    """A beat with a flat PR segment at a known level, then a slow 30 ms QRS start (a ramp to
    0.15 mV) that the delineation missed (onset at the ramp's end): the level must be the PR
    segment's (to the noise, 0.01 mV), where a fixed window 5-20 ms before the onset would read
    the ramp (> 0.05 mV off)."""
    fs, n = 1000.0, 700
    t = np.arange(n, dtype=float)
    rng = np.random.default_rng(3)
    level = np.array([0.2, -0.1, 0.05])[:, None]
    x = np.repeat(level, n, axis=1)
    x += np.array([0.12, 0.08, -0.1])[:, None] * np.exp(-0.5 * ((t - 160.0) / 20.0) ** 2)  # P wave at 160 ms
    ramp = np.clip((t - 270.0) / 30.0, 0.0, 1.0) * (t < 300)
    x += np.array([0.15, -0.15, 0.1])[:, None] * ramp  # slow start 270-300 ms
    x[:, 300:380] += np.array([1.0, -0.8, 0.6])[:, None] * np.sin(np.pi * (t[300:380] - 300) / 80.0)
    x += rng.normal(0.0, 0.005, x.shape)
    fid = Fiducials(qrs_on_ms=300.0, r_ms=340.0, qrs_off_ms=380.0, t_peak_ms=550.0, t_end_ms=650.0,
                    p_on_ms=110.0, p_peak_ms=160.0, p_off_ms=215.0)
    got = pq_level(x, fid, fs)
    assert got.shape == (3, 1)
    assert np.abs(got - level).max() < 0.01
    fixed = x[:, 280:295].mean(axis=1, keepdims=True)
    assert np.abs(fixed - level).max() > 0.05
    no_p = Fiducials(qrs_on_ms=300.0, r_ms=340.0, qrs_off_ms=380.0, t_peak_ms=550.0, t_end_ms=650.0)
    assert np.abs(pq_level(x, no_p, fs) - level).max() < 0.01


def test_wave_bounds_of_a_raised_cosine_bump():
    """A sin^2 bump of w ms on a flat line is bounded by the trapezium method inside its support
    and within 5 % of w of its ends (the bump's tails are flat to second order), at 1 and 0.5 kHz."""
    for w in (60, 100, 140):
        x = np.zeros(500)
        x[150:151 + w] = 0.1 * np.sin(np.pi * np.arange(w + 1) / w) ** 2
        for step, fs in ((1, 1000.0), (2, 500.0)):
            on, peak, off = (v * step for v in wave_bounds(x[::step], fs))
            assert peak == pytest.approx(150 + w / 2, abs=step)
            assert 150 <= on <= 150 + 0.05 * w + step and 150 + w - 0.05 * w - step <= off <= 150 + w
