"""Benchmark: ECG preprocessing accuracy (synthetic ground truth) and figures on the real records.

1. Synthetic 12-lead ECGs with known fiducials (the dipole model of tests/test_ecg_signal.py) at
   250/500/1000 Hz over several seeds: error of every fiducial (ms) -- and, when NeuroKit2 is
   importable, the same errors for NeuroKit2's wavelet delineator (Martinez et al. 2004) on lead II,
   the usual peer.
2. Real records in ../shared/data: beats, heart rate, QRS, QT, QTc, PR, axis, P present; the
   stability of QRS/QT/PR over the eleven 10 s segments of PTB s0273lre (one patient, so the
   spread is the method's); with NeuroKit2, its lead-II QRS/QT/PR beside ours and the agreement of
   its R peaks with ours (F1 within 50 ms).

Run: ``python benchmarks/bench_ecg_signal.py`` (about 30 s). Prints one line per figure and writes
benchmarks/results/ecg_signal.json.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.io as sio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_ecg_signal import _expected_beat_times, _truth_rel_r, synthetic  # noqa: E402

from cardiotwin.ecg.features import features  # noqa: E402
from cardiotwin.ecg.signal import preprocess  # noqa: E402
from cardiotwin.io import read_ecg, write_json_atomic  # noqa: E402
from cardiotwin.types import TWELVE_LEADS, Ecg  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FIDUCIALS = ("p_on", "p_off", "qrs_on", "qrs_off", "t_peak", "t_end")

try:  # the peer, optional
    warnings.filterwarnings("ignore")
    import neurokit2 as nk
except ImportError:  # pragma: no cover - depends on the environment
    nk = None


def _nk_lead_ii(ecg: Ecg) -> dict[str, np.ndarray] | None:
    """NeuroKit2 R peaks and DWT delineation of lead II (samples), or None when it fails."""
    x = nk.ecg_clean(ecg.lead("II"), sampling_rate=int(ecg.fs))
    try:
        _, info = nk.ecg_peaks(x, sampling_rate=int(ecg.fs))
        _, waves = nk.ecg_delineate(x, info["ECG_R_Peaks"], sampling_rate=int(ecg.fs), method="dwt")
    except Exception:  # noqa: BLE001 - the peer's failures are reported, not raised
        return None
    out = {k: np.asarray(v, dtype=float) for k, v in waves.items()}
    out["R"] = np.asarray(info["ECG_R_Peaks"], dtype=float)
    return out


def synthetic_accuracy(seeds: range) -> dict:
    ours = {k: [] for k in FIDUCIALS}
    peer = {k: [] for k in FIDUCIALS}
    af_p = []
    peer_map = {"p_on": "ECG_P_Onsets", "p_off": "ECG_P_Offsets", "qrs_on": "ECG_R_Onsets",
                "qrs_off": "ECG_R_Offsets", "t_peak": "ECG_T_Peaks", "t_end": "ECG_T_Offsets"}
    for fs in (250.0, 500.0, 1000.0):
        for seed in seeds:
            noisy, _, centres, kinds = synthetic(fs=fs, seed=seed)
            beat = preprocess(noisy)
            want = _expected_beat_times(beat, centres)
            for k in FIDUCIALS:
                got = getattr(beat.fiducials, f"{k}_ms")
                ours[k].append(np.nan if got is None else got - want[k])
            if nk is not None:
                w = _nk_lead_ii(noisy)
                truth = _truth_rel_r()
                for k, key in peer_map.items():
                    if w is None:
                        peer[k].append(np.nan)
                        continue
                    errs = []
                    for c, kind in zip(centres, kinds):
                        if kind != "sinus":
                            continue
                        true_ms = c + truth[k]
                        marks = w[key][np.isfinite(w[key])] / fs * 1000.0
                        if len(marks):
                            nearest = marks[np.argmin(np.abs(marks - true_ms))]
                            errs.append(nearest - true_ms if abs(nearest - true_ms) < 150 else np.nan)
                    peer[k].append(float(np.nanmedian(errs)) if errs else np.nan)
            af = preprocess(synthetic(fs=fs, seed=seed, af=True, ectopic_at=-1)[0])
            af_p.append(af.fiducials.has_p)
    summary = {}
    for name, table in (("cardiotwin", ours), ("neurokit2_dwt_leadII", peer if nk is not None else None)):
        if table is None:
            continue
        summary[name] = {k: {"mean_ms": float(np.nanmean(v)), "max_abs_ms": float(np.nanmax(np.abs(v))),
                             "missing": int(np.isnan(v).sum())} for k, v in table.items()}
        for k, v in summary[name].items():
            print(f"synthetic {name} {k}: mean_err={v['mean_ms']:+.1f} ms max_abs_err={v['max_abs_ms']:.1f} ms "
                  f"missing={v['missing']}/{len(table[k])}")
    summary["af_p_reported"] = int(np.sum(af_p))
    print(f"synthetic AF: P wave reported in {int(np.sum(af_p))}/{len(af_p)} records (should be 0)")
    return summary


def _measure(name: str, ecg: Ecg) -> dict:
    start = time.perf_counter()
    beat = preprocess(ecg)
    seconds = time.perf_counter() - start
    f = features(beat)
    row = {
        "record": name, "duration_s": ecg.duration_ms / 1000, "fs": ecg.fs, "beats": len(beat.r_peaks),
        "used": beat.n_used, "rejected": beat.rejected, "irregular": beat.irregular_rhythm,
        "median_corr": float(np.median(beat.correlation)), "hr_bpm": f["heart_rate_bpm"],
        "qrs_ms": f["qrs_ms"], "qt_ms": f["qt_ms"], "qtc_bazett_ms": f["qtc_bazett_ms"],
        "qtc_fridericia_ms": f["qtc_fridericia_ms"], "pr_ms": f["pr_ms"], "axis_deg": f["qrs_axis_deg"],
        "has_p": f["has_p"], "seconds": seconds,
    }
    pr = "none" if row["pr_ms"] is None else f"{row['pr_ms']:.0f}"
    print(f"real {name}: beats={row['beats']} used={row['used']} HR={row['hr_bpm']:.0f} bpm "
          f"QRS={row['qrs_ms']:.0f} QT={row['qt_ms']:.0f} QTcB={row['qtc_bazett_ms']:.0f} "
          f"QTcF={row['qtc_fridericia_ms']:.0f} PR={pr} axis={row['axis_deg']:.0f} P={row['has_p']} "
          f"median_corr={row['median_corr']:.3f} time={seconds:.2f}s")
    if nk is not None:
        w = _nk_lead_ii(ecg.select(["I", "II"]) if "II" in ecg.leads else ecg)
        if w is not None:
            qrs = np.nanmedian(w["ECG_R_Offsets"] - w["ECG_R_Onsets"]) / ecg.fs * 1000
            qt = np.nanmedian(w["ECG_T_Offsets"] - w["ECG_R_Onsets"]) / ecg.fs * 1000
            prn = np.nanmedian(w["ECG_R_Onsets"] - w["ECG_P_Onsets"]) / ecg.fs * 1000
            ours_r = beat.r_peaks
            tol = 0.05 * ecg.fs
            hit = sum(np.any(np.abs(ours_r - r) <= tol) for r in w["R"])
            f1 = 2 * hit / (len(w["R"]) + len(ours_r))
            row["neurokit2"] = {"qrs_ms": qrs, "qt_ms": qt, "pr_ms": prn, "r_peak_f1": f1}
            print(f"  neurokit2 lead II {name}: QRS={qrs:.0f} QT={qt:.0f} PR={prn:.0f} R-peak F1 vs ours={f1:.3f}")
    return row


def real_records() -> dict:
    if not DATA.is_dir():
        print(f"real data not found at {DATA}; skipped")
        return {}
    rows = [
        _measure("ptb_s0010_re", read_ecg(DATA / "ecg_ptbdb_s0010_re" / "s0010_re")),
        _measure("chapman_JS00001", read_ecg(DATA / "ecg_chapman_JS00001" / "JS00001.hea")),
    ]
    d = np.load(DATA / "ecg_ptbdb_10subjects_tseal" / "ecg_ptbdb_10subjects.npz")
    for i, label in enumerate(d["labels"]):
        ecg = Ecg(d["ecg_mV"][i], float(d["fs_hz"]), tuple(str(x) for x in d["leads"]))
        rows.append(_measure(f"ptb10_{i}_{label}", ecg))
    x = sio.loadmat(DATA / "ecg_ptbdb_s0273lre" / "s0273lre_signal.mat")["signal"]
    rows.append(_measure("ptb_s0273lre_full", Ecg(x.T, 1000.0, TWELVE_LEADS)))
    segments = []
    for start in range(0, x.shape[0] - 9999, 10000):
        beat = preprocess(Ecg(x[start:start + 10000].T, 1000.0, TWELVE_LEADS))
        segments.append(features(beat))
    stab = {}
    for key in ("qrs_ms", "qt_ms", "pr_ms", "heart_rate_bpm"):
        v = np.array([s[key] for s in segments], dtype=float)
        stab[key] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)), "n": int(np.isfinite(v).sum())}
        print(f"real s0273lre 10 s segments {key}: mean={stab[key]['mean']:.1f} sd={stab[key]['sd']:.1f} "
              f"n={stab[key]['n']}")
    return {"records": rows, "s0273lre_segments": stab}


def main() -> None:
    print(f"peer: {'neurokit2 ' + nk.__version__ if nk is not None else 'neurokit2 not installed (peer columns skipped)'}")
    results = {"synthetic": synthetic_accuracy(range(5)), "real": real_records()}
    out = write_json_atomic(Path(__file__).parent / "results" / "ecg_signal.json", results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
