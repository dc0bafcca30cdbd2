"""Benchmark: the fast lead-field ECG (impulse binning + FFT) against the direct nodes x samples
evaluation, on a ~200k-node ellipsoidal shell (1 mm Kuhn lattice) with 9 electrodes, 1 kHz, 600 ms.

Targets: ecg_fast >= 50x faster than ecg_direct, one ECG < 20 ms after precomputation, and the
batch time for 100 parameter sets. The weights are the infinite-medium pseudo-ECG weights (the
same -K_i Z form as torso lead fields); activation is an eikonal-like distance map from three
endocardial sites (0.7 mm/ms) and APD shortens with AT (upright T waves). Times are off-grid.
Prints one line per figure and writes benchmarks/results/ecg_simulate.json.

    python benchmarks/bench_ecg_simulate.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from cardiotwin.ecg.pseudo import pseudo_ecg_weights
from cardiotwin.ecg.simulate import ELECTRODES, ecg_direct, ecg_fast, ecg_fast_batch, twelve_lead
from cardiotwin.electrophysiology.action_potential import ApShape
from cardiotwin.meshing.lattice import kuhn_lattice
from cardiotwin.types import TetMesh

FS, DURATION_MS = 1000.0, 600.0
OUTER, INNER = np.array([50.0, 40.0, 40.0]), np.array([38.0, 28.0, 28.0])  # semi-axes, mm


def shell_mesh() -> TetMesh:
    lo = -OUTER - 1
    shape = np.ceil(2 * (OUTER + 1)).astype(int)
    centres = np.stack(np.meshgrid(*[np.arange(n) + 0.5 for n in shape], indexing="ij"), -1) + lo
    r_out = np.sum((centres / OUTER) ** 2, -1)
    r_in = np.sum((centres / INNER) ** 2, -1)
    pts, cells, _ = kuhn_lattice((r_out <= 1) & (r_in >= 1), (1.0, 1.0, 1.0), lo)
    return TetMesh(pts, cells)


def electrodes() -> np.ndarray:
    # LPS mm around the shell: limbs far away, precordial arc on the anterior (-y) chest at z = 0
    limbs = [[-250.0, -60.0, 250.0], [250.0, -60.0, 250.0], [80.0, -60.0, -450.0]]
    theta = np.deg2rad([-20.0, 5.0, 25.0, 45.0, 65.0, 90.0])  # from anterior (-y) towards the left (+x)
    chest = 110.0 * np.stack([np.sin(theta), -np.cos(theta), np.zeros(6)], axis=1)
    return np.vstack([limbs, chest])


def activation(points: np.ndarray, cv: float = 0.7, apd_shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    sites = np.array([[-30.0, -10.0, -20.0], [10.0, 25.0, 5.0], [30.0, -20.0, 10.0]])
    sites = sites / np.linalg.norm(sites / INNER, axis=1, keepdims=True)  # on the inner surface
    dist = np.min(np.linalg.norm(points[:, None, :] - sites[None], axis=-1), axis=1)
    at = dist / cv
    rt = at + 300.0 + apd_shift - 0.5 * (at - at.mean())
    return at, rt


def timed(fn, repeat: int) -> float:
    """Median wall time (s) of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    start = time.perf_counter()
    mesh = shell_mesh()
    mesh_s = time.perf_counter() - start
    shape = ApShape()
    start = time.perf_counter()
    weights = pseudo_ecg_weights(mesh, electrodes(), 0.2, 0.2)
    weights_s = time.perf_counter() - start
    at, rt = activation(mesh.points)
    n_leads, n = weights.shape
    print(f"mesh nodes={n} cells={mesh.n_cells} build_s={mesh_s:.2f} cpus={os.cpu_count()}")
    print(f"precompute pseudo-ECG weights leads={n_leads} s={weights_s:.2f}")
    print(f"activation at_range_ms=[{at.min():.1f}, {at.max():.1f}] rt_range_ms=[{rt.min():.1f}, {rt.max():.1f}]")

    args = (shape, FS, DURATION_MS)
    ecg_fast(weights, at, rt, *args)  # compile (or load the Numba cache) and build the kernels
    fast_s = timed(lambda: ecg_fast(weights, at, rt, *args), 30)
    fast = ecg_fast(weights, at, rt, *args)
    start = time.perf_counter()
    ref = ecg_direct(weights, at, rt, *args)
    direct_s = time.perf_counter() - start
    rms = np.sqrt(np.mean((fast - ref) ** 2, axis=1) / np.mean(ref**2, axis=1))
    at_grid, rt_grid = np.round(at), np.round(rt)
    exact = np.abs(ecg_fast(weights, at_grid, rt_grid, *args) - ecg_direct(weights, at_grid, rt_grid, *args)).max()
    exact_rel = exact / np.abs(ref).max()
    print(f"ecg_direct s={direct_s:.3f}")
    print(f"ecg_fast ms={fast_s * 1e3:.2f} (median of 30, after precomputation)")
    print(f"speedup fast_vs_direct={direct_s / fast_s:.0f}x")
    print(f"accuracy off_grid_rms_rel_max={rms.max():.2e} on_grid_max_rel={exact_rel:.1e}")

    rng = np.random.default_rng(0)
    batch = 100
    cv = rng.uniform(0.5, 0.9, batch)
    shift = rng.uniform(-40, 40, batch)
    at0 = at * 0.7  # distance in mm
    at_b = at0[None, :] / cv[:, None]
    rt_b = at_b + 300.0 + shift[:, None] - 0.5 * (at_b - at_b.mean(axis=1, keepdims=True))
    ecg_fast_batch(weights, at_b[:2], rt_b[:2], *args)  # compile
    start = time.perf_counter()
    out = ecg_fast_batch(weights, at_b, rt_b, *args)
    batch_s = time.perf_counter() - start
    check = np.abs(out[7] - ecg_fast(weights, at_b[7], rt_b[7], *args)).max() / np.abs(out[7]).max()
    print(f"ecg_fast_batch n={batch} s={batch_s:.3f} per_ecg_ms={batch_s / batch * 1e3:.2f} (batch == single: {check:.1e})")

    ecg = twelve_lead(fast, list(ELECTRODES), FS)
    amp = {lead: float(np.ptp(sig)) for lead, sig in zip(ecg.leads, ecg.signals)}
    print("pseudo-ECG peak-to-peak mV: " + " ".join(f"{k}={v:.2f}" for k, v in amp.items()))

    result = {
        "nodes": n,
        "cells": int(mesh.n_cells),
        "leads": n_leads,
        "fs_hz": FS,
        "duration_ms": DURATION_MS,
        "cpus": os.cpu_count(),
        "weights_precompute_s": weights_s,
        "ecg_direct_s": direct_s,
        "ecg_fast_ms": fast_s * 1e3,
        "speedup": direct_s / fast_s,
        "off_grid_rms_rel_max": float(rms.max()),
        "on_grid_max_rel": float(exact_rel),
        "batch_n": batch,
        "batch_s": batch_s,
        "batch_per_ecg_ms": batch_s / batch * 1e3,
        "pseudo_ecg_peak_to_peak_mv": amp,
    }
    out_path = Path(__file__).parent / "results" / "ecg_simulate.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
