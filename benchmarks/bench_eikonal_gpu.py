"""Benchmark: one ventricular activation and a batch of 100 on the 1 mm phantom's ventricles
(265k nodes, default sinus-rhythm roots, fast endocardial layer), side by side in one run on the
GPU machine: the batched PyTorch solver on the GPU, the Numba solver on that machine's CPU (all
cores and 2 threads) and scipy's Dijkstra; errors of each against the factored solver on the same
ventricles refined 1:8 (every edge halved, 2.1 M nodes).

Two steps, because the GPU machine has PyTorch, Numba and SciPy but not the imaging stack:
  here:       python benchmarks/bench_eikonal_gpu.py --prepare DIR   (DIR: a twin folder, e.g. demo/twin)
              writes .gpu/ventricles.npz (mesh, fibres, depth regions, roots, refined reference)
  on the GPU: PYTHONPATH=src python benchmarks/bench_eikonal_gpu.py  (one line per figure, JSON to $OUT)

Measured 2026-11-26 on the NVIDIA H200 machine (16 CPU cores), one run, errors over nodes > 3 mm
from the roots against the 1:8 refined reference:
  gpu_torch  single 0.054 s, batch of 100 3.34 s (first call 25.5 s: compilation)  max 8.5 %, mean 0.61 %
  cpu_numba  single 0.89 s, batch of 100 8.7 s (16 threads) / 48.7 s (2 threads)    max 4.5 %, mean 0.53 %
  dijkstra   single 3.3 s (edge weights + scipy csgraph)                             max 40.9 %, mean 8.2 %
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from peers import dijkstra_times, rel_errors  # noqa: E402

DATA = Path(os.environ.get("EIKONAL_DATA", ".gpu/ventricles.npz"))
BATCH = 100


def prepare(twin_dir: str) -> None:
    from cardiotwin.electrophysiology.eikonal import EikonalSolver
    from cardiotwin.electrophysiology.parameters import EpParameters
    from cardiotwin.meshing.refine import refine_uniform
    from cardiotwin.twin import ForwardModel, Twin
    from cardiotwin.types import TetMesh

    model = ForwardModel(Twin.load(twin_dir)).model
    v, p = model.ventricles, EpParameters()
    nodes, delays = model.root_nodes(p)
    src, start = v.local(nodes), delays - delays.min()
    vel = model._ventricular_velocities(p)
    mesh = v.solver.mesh
    fp, fc, parent = refine_uniform(mesh.points, mesh.cells)
    t0 = time.perf_counter()
    fine = EikonalSolver(TetMesh(fp, fc)).solve(v.fibres[parent], vel, src, start, None, v.regions[parent])
    print(f"reference: {len(fp)} nodes, {len(fc)} tets, factored solve {time.perf_counter() - t0:.1f} s")
    DATA.parent.mkdir(exist_ok=True)
    np.savez_compressed(DATA, points=mesh.points, cells=mesh.cells.astype(np.int32), fibres=v.fibres,
                        regions=v.regions.astype(np.int32), sources=src, starts=start, vel=vel,
                        ref_fine=fine[: mesh.n_points], ref_nodes=len(fp))
    print(f"wrote {DATA}: {mesh.n_points} nodes")


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run() -> None:
    import numba
    import torch

    from cardiotwin.electrophysiology.eikonal import EikonalSolver
    from cardiotwin.electrophysiology.eikonal_torch import TorchEikonal
    from cardiotwin.types import TetMesh

    d = np.load(DATA)
    pts, cells, fib, reg = d["points"], d["cells"], d["fibres"], d["regions"]
    src, st, vel1, ref = d["sources"], d["starts"], d["vel"], d["ref_fine"]
    dist = np.min(np.linalg.norm(pts[:, None] - pts[src][None], axis=2), axis=1)
    mask = (dist > 3.0) & np.isfinite(ref) & (ref > 5.0)
    rng = np.random.default_rng(0)
    vel_b = vel1[None] * rng.uniform(0.75, 1.25, size=(BATCH, 1, 1))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    res = {"device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", "cpu_cores": os.cpu_count(), "nodes": int(len(pts)),
           "cells": int(len(cells)), "reference": f"factored Numba solver on the mesh refined 1:8 ({int(d['ref_nodes'])} nodes)"}

    def report(name: str, t: np.ndarray, **figures) -> None:
        err = rel_errors(t, ref, mask)
        res[name] = {**figures, **err}
        line = " ".join(f"{k}={v:.3f}" for k, v in figures.items())
        print(f"{name} {line} max_rel_err={err['max_rel'] * 100:.2f}% mean_rel_err={err['mean_rel'] * 100:.2f}% "
              f"mean_abs_err_ms={err['mean_abs_ms']:.3f}", flush=True)

    # GPU (PyTorch Jacobi FIM, plain local solver)
    te = TorchEikonal(pts, cells, fib, reg, device=dev)
    _, first = timed(lambda: (te.solve_batch(vel1[None], [src], [st]), sync()))
    (gpu, _), t_gpu = timed(lambda: (te.solve_batch(vel1[None], [src], [st]), sync())[0], 3)
    chunk = 50
    te.solve_batch(vel_b[:chunk], [src] * chunk, [st] * chunk)  # compile for the batch shape
    sync()

    def gpu_batch():
        for s in range(0, BATCH, chunk):
            te.solve_batch(vel_b[s:s + chunk], [src] * chunk, [st] * chunk)
        sync()

    _, t_gpu_b = timed(gpu_batch)
    report("gpu_torch", gpu[0], single_s=t_gpu, batch100_s=t_gpu_b, first_call_compile_s=first)

    # CPU (Numba, factored), this machine's cores
    solver = EikonalSolver(TetMesh(pts, cells))
    solver.solve(fib, vel1, src, st, None, reg)  # JIT compile
    solver.solve_batch(fib, vel_b[:2], [src] * 2, [st] * 2, None, reg)
    cpu, t_cpu = timed(lambda: solver.solve(fib, vel1, src, st, None, reg), 3)
    figures = {"single_s": t_cpu}
    for threads in (numba.config.NUMBA_NUM_THREADS, 2):
        numba.set_num_threads(threads)
        _, t_b = timed(lambda: solver.solve_batch(fib, vel_b, [src] * BATCH, [st] * BATCH, None, reg))
        figures[f"batch100_s_{threads}threads"] = t_b
    report("cpu_numba", cpu, **figures)

    # scipy Dijkstra on the mesh edges (weights included: they depend on the parameters)
    dij, t_dij = timed(lambda: dijkstra_times(pts, cells, fib, vel1, src, st, reg), 2)
    report("dijkstra", dij, single_s=t_dij)

    Path(os.environ.get("OUT", "benchmarks/results")).mkdir(parents=True, exist_ok=True)
    (Path(os.environ.get("OUT", "benchmarks/results")) / "eikonal_gpu.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--prepare":
        prepare(sys.argv[2])
    else:
        run()
