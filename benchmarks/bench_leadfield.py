"""Benchmark: torso lead fields of the 1 mm phantom and one 12-lead ECG after precomputation.

Pipeline: phantom (1 mm) -> build_anatomy (walls, landmarks, heart mesh, graded torso mesh; timed
but not part of the lead-field figure) -> the 10 standard electrodes on the skin -> torso lead
fields (9 AMG-CG solves sharing one hierarchy, RL reference) -> projection onto the heart mesh
(w = -K_i Z) -> one 12-lead ECG by ecg_fast + twelve_lead. Activation is a stand-in for the
eikonal model: the distance from the LV and RV endocardial apices at 0.6 mm/ms; RT = AT + 280 ms
shortened by half the AT delay (upright T waves).

Targets (issue 6, 2 cores): lead fields under 2 min, one ECG under 20 ms.
Prints one line per figure and writes benchmarks/results/leadfield.json.

    python benchmarks/bench_leadfield.py [seed]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from cardiotwin.anatomy.build import build_anatomy
from cardiotwin.ecg.leadfield import LeadFields, heart_weights, torso_lead_fields
from cardiotwin.ecg.leads import skin_surface, standard_electrodes
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.phantom import generate_phantom

FS, DURATION_MS, CV_MM_PER_MS = 1000.0, 600.0, 0.6


def main(seed: int = 0) -> None:
    t0 = time.perf_counter()
    ph = generate_phantom(seed, 1.0)
    anatomy = build_anatomy(ph.labels)
    anatomy_s = time.perf_counter() - t0
    torso, heart = anatomy.torso.mesh, anatomy.heart.mesh
    print(f"anatomy (phantom + walls + meshes, not part of the figure): {anatomy_s:.1f} s; torso {torso.n_points} nodes "
          f"{torso.n_cells} tets; heart {heart.n_points} nodes {heart.n_cells} tets")

    t = time.perf_counter()
    skin = skin_surface(torso)
    electrodes = standard_electrodes(torso, anatomy.landmarks, skin=skin)
    place_s = time.perf_counter() - t
    print(f"electrode placement: {place_s:.2f} s ({len(skin.faces)} skin faces)")

    t = time.perf_counter()
    fields = torso_lead_fields(torso, electrodes)
    torso_s = time.perf_counter() - t
    w, hinfo = heart_weights(fields, torso, heart)
    total_s = time.perf_counter() - t
    lf = LeadFields(fields.names, fields.positions, w, fields.reference, {"torso": fields.info, "heart": hinfo})
    info = fields.info
    print(f"torso lead fields: {torso_s:.1f} s, {info['torso_nodes']} nodes, {info['solves']} solves, "
          f"max {info['iterations_max']} AMG-CG iterations, residual {info['relative_residual_max']:.1e}")
    print(f"heart projection: {total_s - torso_s:.1f} s ({hinfo['heart_nodes']} heart nodes, "
          f"{hinfo['heart_nodes_in_torso_voids']} in torso voids)")
    print(f"lead fields total: {total_s:.1f} s (target < 120 s)")

    lm = anatomy.landmarks
    sites = np.array([lm["lv_apex_endocardium"], lm["rv_apex"]])
    at = np.min(np.linalg.norm(heart.points[:, None, :] - sites[None], axis=2), axis=1) / CV_MM_PER_MS
    rt = at + 280.0 - 0.5 * (at - at.min())
    lf.ecg(at, rt, fs=FS, duration_ms=DURATION_MS)  # warm-up: compiles, builds the FFT grid
    times = []
    for _ in range(21):
        t = time.perf_counter()
        ecg = lf.ecg(at, rt, fs=FS, duration_ms=DURATION_MS)
        times.append(time.perf_counter() - t)
    ecg_ms = float(np.median(times)) * 1e3
    print(f"one 12-lead ECG ({heart.n_points} nodes, {FS:g} Hz, {DURATION_MS:g} ms): {ecg_ms:.1f} ms median (target < 20 ms)")
    qrs = slice(0, int(round((at.max() + 20.0) * FS / 1000.0)))
    amp = {lead: round(float(np.ptp(sig[qrs])), 3) for lead, sig in zip(ecg.leads, ecg.signals)}
    print("QRS peak-to-peak mV: " + " ".join(f"{k}={v:.2f}" for k, v in amp.items()))

    result = {
        "seed": seed, "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "anatomy_s": round(anatomy_s, 2), "placement_s": round(place_s, 3),
        "torso_nodes": info["torso_nodes"], "torso_cells": info["torso_cells"], "heart_nodes": hinfo["heart_nodes"],
        "solves": info["solves"], "iterations_max": info["iterations_max"],
        "relative_residual_max": info["relative_residual_max"],
        "torso_lead_fields_s": round(torso_s, 2), "heart_projection_s": round(total_s - torso_s, 2),
        "lead_fields_total_s": round(total_s, 2), "ecg_ms_median": round(ecg_ms, 2),
        "qrs_peak_to_peak_mv": amp, "electrodes_mm": electrodes.as_dict(),
        "electrode_rules": dict(zip(electrodes.names, electrodes.rules)),
    }
    out = write_json_atomic(Path(__file__).parent / "results" / "leadfield.json", result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
