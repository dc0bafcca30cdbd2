"""Benchmark: calibration of the 1 mm phantom twin to 12-lead ECGs (issue 7).

1. **coarse-model transfer**: the 2 mm ventricular model vs the 1 mm one for random parameters
   (activation MAE in ms, QRS correlation between the two routes' ECGs);
2. **parameter recovery**: hidden QRS parameters drawn from the calibration box, their simulated
   10 s record with noise and baseline wander, preprocessed, then calibrated (QRS stage, CMA-ES,
   default budget): median per-lead QRS correlation (target >= 0.95), activation-time MAE against
   the hidden truth (target < 5 ms), root-node distances (target <= 10 mm; roots that excite under
   5 % of the nodes first, being overrun by the others, leave no trace in the ECG and are flagged,
   see ``recovery_errors``; distances by root name and matched by site to the nearest effective
   estimated root), wall time and forward simulations;
3. **optimiser vs ML**: the same targets calibrated from the amortised-inference network's estimate
   (``method="ml"``, a quarter of the budget), with the network's one-off cost (population +
   training) reported separately; both routes end with the same 1 mm Levenberg-Marquardt refinement (``--fine-budget``);
   at equal fit: per seed, the time each route took to reach the worse of the two final losses;
4. **hidden beat** (``--hidden-seeds``): hidden repolarisation and atria recovered by the T and P
   stages (RT map MAE and Spearman r, atrial activation MAE, pacemaker site, AV delay);
5. **real ECGs** (``../shared/data``; the anatomy is the phantom's, not the patient's): beats and
   fiducials found, and the median per-lead QRS correlation after calibration (target >= 0.85), with
   per-lead gains by default (``--real-gain``: the phantom's electrodes are not the patient's) and
   the heart's rotation in the torso fitted too (``--real-pose``, default; ``--no-real-pose`` without).

Prints one line per figure and writes benchmarks/results/calibration.json (after each section).

    python benchmarks/bench_calibration.py [--twin DIR] [--seeds 1 2 3] [--fine-budget 150] [--real-budget 600]
                                           [--real-gain lead] [--[no-]real-pose] [--root-sites 8] [--fine-root-sites 6] [--records NAME ...]
                                           [--hidden-seeds 1 2 3 4 5] [--skip-real] [--skip-ml] [--recovery-from EARLIER.json]

``--twin``: a twin folder (e.g. made by ``cardiotwin demo --out DIR``: DIR/twin); default: build the
seed-0 phantom twin into benchmarks/.cache/twin (about 2 min, reused afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cardiotwin.calibration import (REFINEMENT, CalibrationModel, SearchSpace, Target, atrial_errors, calibrate,
                                   recovery_errors, repolarisation_errors)
from cardiotwin.calibration.objective import LEAD_IN_MS, Mismatch, pearson
from cardiotwin.calibration.synthetic import synthetic_beat
from cardiotwin.ecg.signal import preprocess
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.io import read_ecg
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.pipeline.twin_folder import build_twin
from cardiotwin.twin import Twin
from cardiotwin.types import TWELVE_LEADS, Ecg

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "calibration.json"
DATA = HERE.parent.parent / "shared" / "data"


def load_or_build_twin(folder: Path) -> Twin:
    """The phantom twin cached in ``folder`` (built once with :func:`cardiotwin.pipeline.twin_folder.build_twin`)."""
    from cardiotwin.phantom import generate_phantom

    if (folder / "heart.vtu").exists() and (folder / "leadfields.npz").exists():
        return Twin.load(folder)
    return build_twin(generate_phantom(seed=0, spacing=1.0).labels, folder)[0]


def _save(out: dict, path: Path = RESULTS) -> None:
    out["load_average"] = list(os.getloadavg())
    write_json_atomic(path, out)


def transfer(cm: CalibrationModel, n: int = 6) -> dict:
    space = SearchSpace.for_stage("QRS")
    ps = [space.to_params(x) for x in space.sample(np.random.default_rng(100), n)]
    t = time.perf_counter()
    fine = cm.ventricular(ps, "fine")
    fine_s = (time.perf_counter() - t) / n
    t = time.perf_counter()
    coarse = cm.ventricular(ps, "coarse")
    coarse_s = (time.perf_counter() - t) / n
    atrial, v0 = cm.atrial([EpParameters()])
    segs = []
    for vent in (fine, coarse):
        at = cm.assemble(np.repeat(atrial, n, 0), np.repeat(v0, n), vent)
        segs.append(cm.segments(at, EpParameters(), TWELVE_LEADS, 1000.0, (0.0, 120.0)))
    r = pearson(segs[0], segs[1])  # (n, 12)
    mae = np.abs(fine - coarse).mean(axis=1)
    res = {"n": n, "coarse_nodes": cm.coarse.n_points, "fine_ventricular_nodes": int(cm.vent_nodes.size),
           "coarse_build_s": cm.coarse.build_s, "fine_solve_s_per_sim": fine_s, "coarse_solve_s_per_sim": coarse_s,
           "at_mae_ms": mae.tolist(), "at_mae_ms_mean": float(mae.mean()),
           "qrs_corr_fine_vs_coarse_median": float(np.median(r)), "qrs_corr_fine_vs_coarse_min": float(r.min())}
    print(f"coarse model: {cm.coarse.n_points} nodes vs {cm.vent_nodes.size} fine, built in {cm.coarse.build_s:.1f} s")
    print(f"eikonal per simulation (batched): fine {fine_s:.2f} s, coarse {coarse_s:.3f} s ({fine_s / coarse_s:.0f}x)")
    print(f"transfer error coarse -> 1 mm: activation MAE {mae.mean():.2f} ms (max over {n} draws {mae.max():.2f}); "
          f"QRS r fine vs coarse median {np.median(r):.3f}, min {r.min():.3f}")
    return res


def fine_loss_trace(stages: list[dict]) -> np.ndarray:
    """(seconds since the calibration's start, best 1 mm QRS loss so far) at each point a recovery's
    1 mm stages recorded: the fine check of the coarse candidates, the end of the 1 mm root-site
    search and each Levenberg-Marquardt iteration (its end only in results written before the
    iterations were traced, so times read from those are upper bounds)."""
    pts = []
    for h in stages:
        if h["stage"] == "QRS fine check":
            pts.append((h["time_s"], h["best_loss"]))
        elif h["stage"].endswith("(fine)"):
            pts += [tuple(p) for p in h.get("trace", [])] or [(h["time_s"], h["loss_after"])]
    pts = np.asarray(sorted(pts), dtype=float).reshape(-1, 2)
    pts[:, 1] = np.minimum.accumulate(pts[:, 1])
    return pts


def time_to_fit(trace: np.ndarray, loss: float) -> float:
    """First time (s since the calibration's start) a :func:`fine_loss_trace` was <= ``loss`` (NaN if never)."""
    hit = np.flatnonzero(trace[:, 1] <= loss * (1 + 1e-9))
    return float(trace[hit[0], 0]) if len(hit) else float("nan")


def equal_fit(cmaes: list[dict], ml: list[dict]) -> list[dict]:
    """Per seed, the time each route needed to reach the same fit: the worse of the two routes' final
    1 mm QRS losses, which both reached (issue 7: the ML route against the optimiser at equal fit)."""
    rows = []
    for c, m in zip(cmaes, ml):
        tc, tm = fine_loss_trace(c["qrs_stages"]), fine_loss_trace(m["qrs_stages"])
        level = float(max(tc[-1, 1], tm[-1, 1]))
        rows.append({"seed": c["seed"], "loss": level, "cmaes_s": time_to_fit(tc, level), "ml_s": time_to_fit(tm, level)})
    return rows


def recovery(cm: CalibrationModel, seed: int, method: str = "cmaes", emulator=None, budget=None,
             fine_budget: int = 0, root_sites: int = 8, fine_root_sites: int = 0) -> dict:
    space = SearchSpace.for_stage("QRS")
    rng = np.random.default_rng(seed)
    truth = space.to_params(space.sample(rng, 1)[0])
    beat, route = synthetic_beat(cm, truth, rng)
    target = Target.from_beat(beat)
    res = calibrate(cm.twin, target, method=method, budget=budget, seed=seed, stages=("QRS",), model=cm,
                    emulator=emulator, fine_budget=fine_budget, root_sites=root_sites,
                    fine_root_sites=fine_root_sites)
    err = recovery_errors(cm, truth, res.params)
    # loss of the truth itself under the same objective (the noise floor)
    mis = Mismatch(target, "QRS", lead_in_ms=LEAD_IN_MS)
    from cardiotwin.calibration.optimise import _QrsProblem

    counts = {"coarse": 0, "fine": 0, "atrial": 0, "ecg": 0}
    prob = _QrsProblem(cm, target, space, space.base, mis, counts)
    truth_fit = prob.fit(cm.ventricular([truth], "fine"))
    out = {"seed": seed, "method": method, "beat_route": route, "median_qrs_corr": res.median_correlation("QRS"),
           "per_lead_qrs_corr": res.correlations("QRS"), "qrs_loss": float(res.fits["QRS"].loss[0]),
           "truth_qrs_loss": float(truth_fit.loss[0]), "truth_median_qrs_corr": float(np.median(truth_fit.correlation)),
           **err, "qrs_time_s": res.timings.get("QRS"), "n_simulations": res.n_simulations, "lag_ms": res.lag_ms,
           "parameters": res.params.as_dict(), "truth_parameters": truth.as_dict(),
           "qrs_stages": [h for h in res.history if "loss_before" in h or h["stage"] == "QRS fine check"]}
    worst = max(err["root_distance_mm"].values())
    print(f"recovery seed {seed} ({method}): median QRS r {out['median_qrs_corr']:.3f} (truth {out['truth_median_qrs_corr']:.3f}), "
          f"AT MAE {err['at_mae_ms']:.2f} ms, roots max {worst:.1f} mm (effective roots max "
          f"{err['max_effective_root_distance_mm']:.1f} mm by name, {err['max_matched_root_distance_mm']:.1f} mm matched by site), QRS time {out['qrs_time_s']:.0f} s, sims {res.n_simulations}")
    print("  root distance mm (share of nodes the root excites first): " + ", ".join(
        f"{k} {v:.1f} ({err['root_influence'][k]:.2f})" for k, v in err["root_distance_mm"].items()))
    print("  activation MAE if only that root were misplaced as estimated, ms: " + ", ".join(
        f"{k} {v:.2f}" for k, v in err["root_site_effect_ms"].items()))
    return out


HIDDEN_NOISE = {"noise_mv": 0.01, "emg_mv": 0.005}
"""Noise of the hidden-beat records: half the recoveries' default, as the phantom's P waves (~0.1 mV,
as small as real ones) are not delineated under the default 0.02 mV white + 0.01 mV EMG noise."""


def hidden_beat(cm: CalibrationModel, seed: int) -> dict:
    """Hidden repolarisation and atria (T and P parameters drawn from their boxes, a smoothing length
    from [0, 6] mm) on the default activation, their noisy 10 s record (``HIDDEN_NOISE``), then the T and P stages from
    the defaults: per-wave r, the RT map's MAE and Spearman r (Camps et al. 2025 report r 0.63 +- 0.11),
    the atrial activation MAE, the pacemaker site's distance and the AV-delay error."""
    rng = np.random.default_rng(1000 + seed)
    truth = EpParameters()
    for stage in ("T", "P"):
        space = SearchSpace.for_stage(stage, truth)
        truth = space.to_params(space.sample(rng, 1)[0], truth)
    truth = truth.with_values(rt_smoothing_mm=float(rng.uniform(0.0, 6.0)), av_delay=float(rng.uniform(80.0, 160.0)))
    beat, _ = synthetic_beat(cm, truth, rng, **HIDDEN_NOISE)
    defaults = {n: getattr(EpParameters(), n) for st in ("T", "P") for n in SearchSpace.for_stage(st).names}
    start = truth.with_values(**defaults, rt_smoothing_mm=0.0, av_delay=EpParameters().av_delay)
    t = time.perf_counter()
    res = calibrate(cm.twin, beat, stages=("T", "P"), base=start, model=cm, seed=seed)
    out = {"seed": seed, "median_t_corr": res.median_correlation("T"),
           "median_p_corr": res.median_correlation("P") if "P" in res.fits else None,
           **repolarisation_errors(cm, truth, res.params), **atrial_errors(cm, truth, res.params),
           "before": {**repolarisation_errors(cm, truth, start), **atrial_errors(cm, truth, start)},
           "time_s": time.perf_counter() - t, "stage_time_s": res.timings,
           "truth_parameters": truth.as_dict(), "parameters": res.params.as_dict()}
    b = out["before"]
    print(f"hidden beat seed {seed}: median r T {out['median_t_corr']:.3f} P {out['median_p_corr'] or float('nan'):.3f}; "
          f"RT MAE {out['rt_mae_ms']:.1f} ms (from {b['rt_mae_ms']:.1f}), Spearman {out['rt_spearman']:.3f} "
          f"(from {b['rt_spearman']:.3f}); atrial AT MAE {out['atrial_at_mae_ms']:.1f} ms (from {b['atrial_at_mae_ms']:.1f}), "
          f"pacemaker site {out['sinus_site_distance_mm']:.1f} mm off (from {b['sinus_site_distance_mm']:.1f}), "
          f"AV delay {out['av_delay_error_ms']:+.1f} ms (from {b['av_delay_error_ms']:+.1f}); "
          f"T {res.timings.get('T', 0):.0f} s, P {res.timings.get('P', 0):.0f} s")
    return out


def real_records() -> list[tuple[str, Ecg]]:
    import scipy.io as sio

    recs = []
    if not DATA.is_dir():
        return recs
    recs.append(("ptb_s0010_re", read_ecg(DATA / "ecg_ptbdb_s0010_re" / "s0010_re").select(TWELVE_LEADS)))
    d = np.load(DATA / "ecg_ptbdb_10subjects_tseal" / "ecg_ptbdb_10subjects.npz")
    leads = [str(l) for l in d["leads"]]
    for k in range(d["ecg_mV"].shape[0]):
        ecg = Ecg(d["ecg_mV"][k], float(d["fs_hz"]), leads).select(TWELVE_LEADS)
        recs.append((f"ptb10_{k}_{d['labels'][k]}", ecg))
    x = sio.loadmat(DATA / "ecg_ptbdb_s0273lre" / "s0273lre_signal.mat")["signal"]
    recs.append(("ptb_s0273lre_first10s", Ecg(x[:10000].T, 1000.0, TWELVE_LEADS)))
    recs.append(("chapman_JS00001_af", read_ecg(DATA / "ecg_chapman_JS00001" / "JS00001.hea")))
    return recs


def real(cm: CalibrationModel, budget: int, gain: str, pose: bool, only: list[str] | None = None) -> list[dict]:
    rows = []
    for name, ecg in real_records():
        if only and not any(o in name for o in only):
            continue
        if ecg.duration_ms > 10000:
            ecg = Ecg(ecg.signals[:, :10000], ecg.fs, ecg.leads)
        try:
            beat = preprocess(ecg)
        except Exception as exc:  # report, do not stop the benchmark
            rows.append({"record": name, "error": f"{type(exc).__name__}: {exc}"})
            print(f"real {name}: preprocessing failed: {exc}")
            continue
        res = calibrate(cm.twin, beat, budget=budget, seed=0, stages=("QRS", "T", "P"), model=cm, mapping_rounds=1,
                        gain=gain, pose=pose)
        row = {"record": name, "beats_used": beat.n_used, "fiducials": beat.fiducials.as_dict(),
               "has_p": beat.fiducials.has_p, "stages": list(res.stages),
               "median_qrs_corr": res.median_correlation("QRS"), "per_lead_qrs_corr": res.correlations("QRS"),
               "qrs_loss": float(res.fits["QRS"].loss[0]), "median_t_corr": res.median_correlation("T"),
               "median_p_corr": res.median_correlation("P") if "P" in res.fits else None,
               "heart_rotation_deg": None if res.rotation_deg is None else res.rotation_deg.round(1).tolist(),
               "time_s": res.timings["total"], "stage_time_s": res.timings, "n_simulations": res.n_simulations,
               "beat_nrmse": float(res.fits["beat"].nrmse[0]), "gain_per_lead": res.gain,
               "global_gain": res.global_gain, "features": res.features}
        rows.append(row)
        f = beat.fiducials
        print(f"real {name}: {beat.n_used} beats, QRS {f.qrs_off_ms - f.qrs_on_ms:.0f} ms, P {'yes' if f.has_p else 'no'}; "
              f"median r QRS {row['median_qrs_corr']:.3f} T {row['median_t_corr']:.3f}"
              + (f" P {row['median_p_corr']:.3f}" if row["median_p_corr"] is not None else "")
              + (f", heart rotated {row['heart_rotation_deg']} deg" if pose else "") + f" ({row['time_s']:.0f} s)")
        err = res.features.get("error", {})
        ms = lambda k: "--" if err.get(k) is None else f"{err[k]:+.0f}"  # noqa: E731
        print(f"  one scale: whole-beat NRMSE {row['beat_nrmse']:.2f}, native global gain {row['global_gain']:.2f}, "
              f"gain per lead {min(res.gain.values()):.2f}-{max(res.gain.values()):.2f}; feature errors (fitted - "
              f"measured): PR {ms('pr_ms')} ms, P {ms('p_ms')} ms, QRS {ms('qrs_ms')} ms, QT {ms('qt_ms')} ms, "
              f"T peak {ms('t_peak_ms')} ms, R amplitude median |error| {err.get('r_amplitude_mV_median_abs', float('nan')):.2f} mV, "
              f"T amplitude {err.get('t_amplitude_mV_median_abs', float('nan')):.2f} mV")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--twin", type=Path, default=HERE / ".cache" / "twin")
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="recovery seeds (none: skip recovery)")
    ap.add_argument("--real-budget", type=int, default=600)
    ap.add_argument("--real-gain", default="lead", choices=["global", "lead"],
                    help="amplitude gain for the real records: the phantom's electrodes are not the patient's, so "
                         "per-lead gains (only shapes count) by default")
    ap.add_argument("--real-pose", action=argparse.BooleanOptionalAction, default=True,
                    help="fit the heart's rotation in the torso for the real records (the phantom's heart does not "
                         "lie as the patient's)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    ap.add_argument("--population", type=int, default=1500)
    ap.add_argument("--fine-budget", type=int, default=REFINEMENT["fine_budget"], help="1 mm solves of the Levenberg-Marquardt refinement of the recoveries")
    ap.add_argument("--fine-root-sites", type=int, default=REFINEMENT["fine_root_sites"],
                    help="grid points per axis of the 1 mm root-site search before the refinement (0: off)")
    ap.add_argument("--root-sites", type=int, default=8, help="grid points per axis of each root box in the root-site search (0: off)")
    ap.add_argument("--records", nargs="*", help="only the real records whose names contain one of these")
    ap.add_argument("--hidden-seeds", type=int, nargs="*", default=[],
                    help="hidden repolarisation + atria recoveries (T and P stages; none by default)")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-ml", action="store_true")
    ap.add_argument("--recovery-from", type=Path,
                    help="take the CMA-ES recoveries of --seeds from this earlier results file instead of rerunning them")
    args = ap.parse_args()
    out: dict = {"cores": os.cpu_count()}
    t = time.perf_counter()
    twin = load_or_build_twin(args.twin) if not (args.twin / "leadfields.npz").exists() else Twin.load(args.twin)
    cm = CalibrationModel(twin, coarse_edge_mm=2.0)
    cm.coarse
    out["model_build_s"] = time.perf_counter() - t
    out["transfer"] = transfer(cm)
    _save(out, args.out)
    if args.recovery_from:
        earlier = {r["seed"]: r for r in json.loads(args.recovery_from.read_text()).get("recovery", [])}
        missing = [s for s in args.seeds if s not in earlier]
        if missing:
            sys.exit(f"{args.recovery_from} has no recovery of seeds {missing}")
        out["recovery"] = [earlier[s] for s in args.seeds]
        out["recovery_from"] = str(args.recovery_from)
    else:
        out["recovery"] = [recovery(cm, s, fine_budget=args.fine_budget, root_sites=args.root_sites,
                                    fine_root_sites=args.fine_root_sites) for s in args.seeds]
    rec = out["recovery"]
    if not rec:
        args.skip_ml = True
    else:
        print(f"recovery over seeds {args.seeds}: median QRS r {[round(r['median_qrs_corr'], 3) for r in rec]}, "
              f"AT MAE {[round(r['at_mae_ms'], 2) for r in rec]} ms, QRS wall time mean "
              f"{np.mean([r['qrs_time_s'] for r in rec]):.0f} s, coarse sims {rec[0]['n_simulations']['coarse']}, "
              f"fine sims {rec[0]['n_simulations']['fine']}")
    _save(out, args.out)
    if not args.skip_ml:
        from cardiotwin.calibration.emulator import Emulator, torch_available
        from cardiotwin.pipeline.population import cached_population

        if torch_available():
            t = time.perf_counter()
            population = cached_population(cm, args.population, seed=0, cache_dir=HERE / ".cache")
            emu = Emulator.train(cm, seed=0, population=population)
            out["emulator"] = {"n_simulations": emu.n_simulations, "simulation_s": emu.simulation_s,
                               "training_s": emu.training_s, "total_s": time.perf_counter() - t,
                               "validation": emu.validation}
            print(f"emulator: {emu.n_simulations} coarse simulations ({emu.simulation_s:.0f} s, cached), training "
                  f"{emu.training_s:.0f} s; held-out unit-cube MAE {emu.validation['mae_unit']:.3f} "
                  f"(prior mean {emu.validation['mae_unit_prior_mean']:.3f})")
            out["recovery_ml"] = [recovery(cm, s, "ml", emu, fine_budget=args.fine_budget, fine_root_sites=args.fine_root_sites) for s in args.seeds]
            ml = out["recovery_ml"]
            out["optimiser_vs_ml"] = {
                "cmaes_qrs_time_s_mean": float(np.mean([r["qrs_time_s"] for r in rec])),
                "ml_qrs_time_s_mean": float(np.mean([r["qrs_time_s"] for r in ml])),
                "cmaes_median_r_mean": float(np.mean([r["median_qrs_corr"] for r in rec])),
                "ml_median_r_mean": float(np.mean([r["median_qrs_corr"] for r in ml])),
                "cmaes_at_mae_mean": float(np.mean([r["at_mae_ms"] for r in rec])),
                "ml_at_mae_mean": float(np.mean([r["at_mae_ms"] for r in ml])),
                "emulator_one_off_s": out["emulator"]["simulation_s"] + out["emulator"]["training_s"]}
            o = out["optimiser_vs_ml"]
            o["equal_fit"] = equal_fit(rec, ml)
            for e in o["equal_fit"]:
                print(f"equal fit seed {e['seed']}: QRS loss <= {e['loss']:.3f} reached by CMA-ES after {e['cmaes_s']:.0f} s, "
                      f"ML start after {e['ml_s']:.0f} s (the 1 mm stages' trace; {e['cmaes_s'] / e['ml_s']:.2f}x)")
            saved = o["cmaes_qrs_time_s_mean"] - o["ml_qrs_time_s_mean"]
            o["break_even_calibrations"] = float(o["emulator_one_off_s"] / saved) if saved > 0 else None
            print(f"optimiser vs ML (QRS): CMA-ES {o['cmaes_qrs_time_s_mean']:.0f} s, median r {o['cmaes_median_r_mean']:.3f}, "
                  f"AT MAE {o['cmaes_at_mae_mean']:.2f} ms | ML start {o['ml_qrs_time_s_mean']:.0f} s, median r "
                  f"{o['ml_median_r_mean']:.3f}, AT MAE {o['ml_at_mae_mean']:.2f} ms | one-off {o['emulator_one_off_s']:.0f} s, "
                  f"break-even after {o['break_even_calibrations'] or float('nan'):.1f} calibrations of this anatomy")
        else:
            print("emulator: skipped (PyTorch not installed; pip install torch==2.13.0)")
        _save(out, args.out)
    if args.hidden_seeds:
        out["hidden_beat"] = [hidden_beat(cm, s) for s in args.hidden_seeds]
        hb = out["hidden_beat"]
        print(f"hidden beat over seeds {args.hidden_seeds}: RT MAE {[round(r['rt_mae_ms'], 1) for r in hb]} ms, "
              f"Spearman {[round(r['rt_spearman'], 3) for r in hb]}, P r {[round(r['median_p_corr'] or 0, 3) for r in hb]}, "
              f"atrial AT MAE {[round(r['atrial_at_mae_ms'], 1) for r in hb]} ms")
        _save(out, args.out)
    if not args.skip_real:
        out["real"] = real(cm, args.real_budget, args.real_gain, args.real_pose, args.records)
        ok = [r for r in out["real"] if "median_qrs_corr" in r]
        print(f"real ECGs: {len(ok)}/{len(out['real'])} calibrated, median QRS r >= 0.85 in "
              f"{sum(r['median_qrs_corr'] >= 0.85 for r in ok)}")
        _save(out, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
