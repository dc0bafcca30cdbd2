"""The phantom twin's 12-lead ECG with default parameters (issue 6 physiology), and the CLI."""

import numpy as np
import pytest
from typer.testing import CliRunner

from cardiotwin.ecg.signal import preprocess
from cardiotwin.types import Ecg
from cardiotwin.twin import ForwardModel


@pytest.fixture(scope="module")
def ecg(phantom_twin):
    _, twin, _ = phantom_twin
    return ForwardModel(twin).simulate(duration_ms=1000.0).ecg


def window(ecg, lo, hi):
    t = ecg.time_ms
    return (t >= lo) & (t < hi)


def test_qrs_axis_progression_and_t_waves(ecg, phantom_twin):
    _, twin, _ = phantom_twin
    sim = ForwardModel(twin).simulate(with_ecg=False)
    start = sim.summary["ventricular_start_ms"]
    qrs = window(ecg, start - 5, start + sim.summary["ventricular_activation_ms"] + 15)
    t_wave = window(ecg, start + 150, ecg.duration_ms)
    net = {l: float(ecg.lead(l)[qrs].sum()) for l in ecg.leads}  # QRS area (mV ms)
    axis = np.degrees(np.arctan2(net["aVF"], net["I"]))
    assert -30.0 <= axis <= 90.0, f"frontal QRS axis {axis:.0f} deg"
    # R-wave progression: R/S < 1 in V1, > 1 in V6, transition in between
    rs = {l: ecg.lead(l)[qrs].max() / max(-ecg.lead(l)[qrs].min(), 1e-6) for l in ("V1", "V2", "V3", "V4", "V5", "V6")}
    assert rs["V1"] < 1.0 < rs["V6"] and rs["V5"] > 1.0
    assert ecg.lead("V6")[qrs].max() > ecg.lead("V1")[qrs].max()
    # T concordant with the QRS in I, II, V5, V6 (signed areas)
    for lead in ("I", "II", "V5", "V6"):
        assert np.sign(net[lead]) == np.sign(ecg.lead(lead)[t_wave].sum()), lead
    # the QRS duration measured on the simulated rhythm (the beat repeated at 1000 ms) is 70-110 ms,
    # by the same delineation that measures patients' ECGs
    rhythm = Ecg(np.tile(ecg.signals, 5), ecg.fs, ecg.leads)
    fid = preprocess(rhythm).fiducials
    assert 70.0 <= fid.qrs_off_ms - fid.qrs_on_ms <= 110.0, fid


def test_ecg_cli_writes_ecg_files(phantom_twin, tmp_path):
    from cardiotwin.cli import app

    folder, _, _ = phantom_twin
    result = CliRunner().invoke(app, ["ecg", "--twin", str(folder), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {"ecg.csv", "ecg.hea", "ecg.dat", "ecg.png", "heart_ep.vtu", "ep_summary.json"} <= {p.name for p in tmp_path.iterdir()}


def test_a_slower_phase_3_gives_a_wider_lower_t_wave(phantom_twin):
    """The AP shape parameter of θ reaches the ECG: a 10-90 % phase-3 fall time of 80 ms instead of
    30 ms spreads each node's repolarisation current over more time, so the T wave (RMS over the 12
    leads, 150 ms after the ventricular onset on) is lower and wider (measured 0.52 -> 0.35 mV, 71 -> 102
    ms above half its peak; bounds 10 % and 20 %); the activation is unchanged."""
    _, twin, _ = phantom_twin
    from cardiotwin.electrophysiology.parameters import EpParameters

    fm = ForwardModel(twin)
    sims = fm.simulate_batch([EpParameters(), EpParameters(ap_repolarisation_ms=80.0)], duration_ms=800.0)
    assert np.array_equal(sims[0].activation, sims[1].activation)
    start = sims[0].summary["ventricular_start_ms"]
    rms = [np.sqrt((s.ecg.signals[:, window(s.ecg, start + 150, 800.0)] ** 2).mean(axis=0)) for s in sims]
    widths = [np.count_nonzero(r > 0.5 * r.max()) for r in rms]
    print("T RMS peak mV", [r.max() for r in rms], "width above half peak (samples)", widths)
    assert rms[1].max() < 0.9 * rms[0].max()
    assert widths[1] > 1.2 * widths[0]
