import numpy as np
import pytest

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidSignalError, MissingLeadsError
from cardiotwin.io import read_ecg, write_ecg_csv, write_ecg_wfdb
from cardiotwin.types import TWELVE_LEADS, Ecg


def synthetic_ecg(fs=500.0, seconds=2.0) -> Ecg:
    t = np.arange(int(fs * seconds)) / fs
    rng = np.random.default_rng(1)
    sig = np.array([a * np.sin(2 * np.pi * (1.2 * t + ph)) for a, ph in rng.uniform(0.1, 2.0, (8, 2))])
    independent = Ecg(sig, fs, ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"))
    return independent.twelve_lead()  # limb leads consistent with Einthoven and Goldberger


def test_csv_roundtrip(tmp_path):
    ecg = synthetic_ecg()
    back = read_ecg(write_ecg_csv(ecg, tmp_path / "ecg.csv"))
    assert back.leads == ecg.leads and back.fs == pytest.approx(ecg.fs)
    np.testing.assert_allclose(back.signals, ecg.signals, rtol=1e-5, atol=1e-6)


def test_wfdb_roundtrip(tmp_path):
    ecg = synthetic_ecg()
    header = write_ecg_wfdb(ecg, tmp_path / "rec")
    assert header.name == "rec.hea" and (tmp_path / "rec.dat").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    back = read_ecg(header)
    assert back.leads == ecg.leads and back.fs == ecg.fs
    # 16-bit quantisation: wfdb picks the gain from each lead's range
    span = np.ptp(ecg.signals, axis=1, keepdims=True)
    assert np.all(np.abs(back.signals - ecg.signals) <= span / 2**15 + 1e-9)


def test_real_ptb_record(shared_data, tmp_path):
    ecg = read_ecg(shared_data / "ecg_ptbdb_s0010_re" / "s0010_re", require=TWELVE_LEADS)
    assert ecg.fs == 1000 and ecg.n_samples == 38400
    assert ecg.leads[:12] == TWELVE_LEADS and ecg.leads[12:] == ("vx", "vy", "vz")
    # recorded leads obey Einthoven's law up to the quantisation of the three leads (2 LSB, gain 2000 adu/mV)
    residual = ecg.lead("III") - (ecg.lead("II") - ecg.lead("I"))
    assert np.abs(residual).max() <= 2.0 / 2000 + 1e-9
    back = read_ecg(write_ecg_wfdb(ecg.twelve_lead(), tmp_path / "ptb"))
    np.testing.assert_allclose(back.signals, ecg.twelve_lead().signals, atol=1e-3)


def test_real_chapman_record(shared_data):
    ecg = read_ecg(shared_data / "ecg_chapman_JS00001" / "JS00001.hea")
    assert ecg.fs == 500 and ecg.n_samples == 5000 and ecg.leads == TWELVE_LEADS
    assert 0.05 < np.abs(ecg.signals).max() < 10.0  # mV, not adu


def test_bad_ecg_files(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="not found"):
        read_ecg(tmp_path / "nothing")
    ecg = synthetic_ecg()
    path = write_ecg_csv(ecg, tmp_path / "ecg.csv")
    text = path.read_text().splitlines()
    cells = text[5].split(",")
    cells[3] = "nan"
    text[5] = ",".join(cells)
    (tmp_path / "nan.csv").write_text("\n".join(text))
    with pytest.raises(InvalidSignalError, match="NaN"):
        read_ecg(tmp_path / "nan.csv")
    eight = ecg.select(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])
    write_ecg_csv(eight, tmp_path / "eight.csv")
    with pytest.raises(MissingLeadsError, match="III"):
        read_ecg(tmp_path / "eight.csv", require=TWELVE_LEADS)
    full = read_ecg(tmp_path / "eight.csv").twelve_lead()
    np.testing.assert_allclose(full.signals, ecg.signals, atol=1e-5)
    (tmp_path / "notime.csv").write_text("I,II\n0.1,0.2\n0.2,0.3\n")
    with pytest.raises(InvalidSignalError, match="sampling rate"):
        read_ecg(tmp_path / "notime.csv")
    assert read_ecg(tmp_path / "notime.csv", fs=250).fs == 250
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(CorruptFileError):
        read_ecg(tmp_path / "bad.hea")


def test_missing_samples_in_wfdb_are_reported(tmp_path):
    import wfdb

    sig = np.zeros((200, 2), dtype=np.int16)
    sig[50, 1] = -32768  # WFDB's "no sample" value for format 16
    wfdb.wrsamp("gap", fs=100, units=["mV", "mV"], sig_name=["I", "II"], d_signal=sig, fmt=["16", "16"],
                adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(tmp_path))
    with pytest.raises(InvalidSignalError, match="lead II, t = 500.0 ms"):
        read_ecg(tmp_path / "gap")
