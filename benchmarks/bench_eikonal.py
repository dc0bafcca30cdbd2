"""Benchmark: anisotropic activation times on an LV-like shell at h = 1 mm, side by side with peers.

Geometry: a Kuhn lattice (1 mm) of the region between two ellipsoids (endocardium 28 x 28 x 65 mm,
epicardium 38 x 38 x 75 mm semi-axes), cut at a basal plane z = 15 mm: ~174k nodes, ~906k tets.
Fibres rotate transmurally from +60 deg (endocardium) to -60 deg (epicardium) about the wall
normal, measured from the circumferential direction; v = (0.6, 0.2, 0.2) mm/ms; five endocardial
node sources with start times 0-8 ms.

Compared, in the same run and on the same machine:
* cardiotwin.electrophysiology.eikonal (factored and plain local solver), one activation and a
  batch of 100 parameter sets (velocities and start times varied) in parallel;
* fim-python (Grandits; Fast Iterative Method with active list, NumPy CPU backend, float64);
* scipy.sparse.csgraph.dijkstra on the mesh edges (edge weight = metric length, min over cells).

Reference: the factored solver on the same shell refined to h = 0.5 mm (each cube split in 8, so
every 1 mm node is a 0.5 mm node); errors are relative, over nodes more than 3 mm from any source.

Usage: ``python benchmarks/bench_eikonal.py [mesh.vtu] [--no-fim] [--batch N]``. With a .vtu the
mesh's cell field ``fibres`` (or ``fibers``) is used (x axis otherwise) with five far-apart node
sources, and the reference is the factored solver on that mesh refined uniformly (every tetrahedron
split in 8, the original nodes kept). Prints one line per figure and writes benchmarks/results/eikonal.json
(eikonal_<mesh name>.json for a .vtu).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from cardiotwin.electrophysiology.eikonal import EikonalSolver, conduction_tensors
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.meshing.lattice import kuhn_lattice
from cardiotwin.types import TetMesh
from peers import dijkstra_times, rel_errors

ENDO = (28.0, 65.0)  # semi-axes (a = b, c) mm
EPI = (38.0, 75.0)
BASE_Z = 15.0
VEL = (0.6, 0.2, 0.2)
SOURCE_DIRS = [(-60.0, 0.0), (-20.0, 90.0), (-20.0, 200.0), (-40.0, 300.0), (0.0, 30.0)]  # (z mm, azimuth deg)
START_TIMES = np.array([0.0, 0.0, 5.0, 5.0, 8.0])


def shell_mask(h: float):
    a_o, c_o = EPI
    lo = np.array([-a_o - 1, -a_o - 1, -c_o - 1])
    n = np.ceil(np.array([2 * a_o + 2, 2 * a_o + 2, c_o + BASE_Z + 2]) / h).astype(int)
    g = [lo[k] + h * (np.arange(n[k]) + 0.5) for k in range(3)]
    x, y, z = np.meshgrid(*g, indexing="ij")
    inner = (x**2 + y**2) / ENDO[0] ** 2 + z**2 / ENDO[1] ** 2
    outer = (x**2 + y**2) / EPI[0] ** 2 + z**2 / EPI[1] ** 2
    return (inner > 1) & (outer <= 1) & (z <= BASE_Z), lo


def transmural(pts: np.ndarray) -> np.ndarray:
    """e in [0, 1]: the point lies on the ellipsoid with axes (1-e) ENDO + e EPI (bisection)."""
    lo, hi = np.zeros(len(pts)), np.ones(len(pts))
    r2, z2 = pts[:, 0] ** 2 + pts[:, 1] ** 2, pts[:, 2] ** 2
    for _ in range(30):
        e = 0.5 * (lo + hi)
        a = ENDO[0] + e * (EPI[0] - ENDO[0])
        c = ENDO[1] + e * (EPI[1] - ENDO[1])
        outside = r2 / a**2 + z2 / c**2 > 1
        lo = np.where(outside, e, lo)
        hi = np.where(outside, hi, e)
    return np.clip(0.5 * (lo + hi), 0, 1)


def rule_fibres(pts: np.ndarray) -> np.ndarray:
    """Fibre at each point: circumferential rotated by 60 - 120 e degrees towards the long axis."""
    e = transmural(pts)
    a = ENDO[0] + e * (EPI[0] - ENDO[0])
    c = ENDO[1] + e * (EPI[1] - ENDO[1])
    normal = np.stack([pts[:, 0] / a**2, pts[:, 1] / a**2, pts[:, 2] / c**2], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    circ = np.cross([0.0, 0.0, 1.0], normal)
    small = np.linalg.norm(circ, axis=1) < 1e-6
    circ[small] = [1.0, 0.0, 0.0]
    circ /= np.linalg.norm(circ, axis=1, keepdims=True)
    longi = np.cross(normal, circ)
    alpha = np.deg2rad(60.0 - 120.0 * e)
    return np.cos(alpha)[:, None] * circ + np.sin(alpha)[:, None] * longi


def lv_shell(h: float) -> tuple[TetMesh, np.ndarray]:
    keep, lo = shell_mask(1.0)
    if h != 1.0:  # refine the same cubes so coarse nodes are fine nodes
        k = int(round(1.0 / h))
        keep = np.kron(keep, np.ones((k, k, k), dtype=bool)).astype(bool)
    p, c, _ = kuhn_lattice(keep, (h, h, h), lo)
    mesh = TetMesh(p, c)
    return mesh, rule_fibres(p[c].mean(axis=1))


def source_nodes(points: np.ndarray) -> np.ndarray:
    out = []
    for z, az in SOURCE_DIRS:
        rho = ENDO[0] * np.sqrt(max(1 - (z / ENDO[1]) ** 2, 0.0))
        target = np.array([rho * np.cos(np.deg2rad(az)), rho * np.sin(np.deg2rad(az)), z])
        out.append(int(np.argmin(np.linalg.norm(points - target, axis=1))))
    return np.array(out)


def far_nodes(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(points)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def match_nodes(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Index in ``fine`` of each ``coarse`` point (they lie on a common 0.5 mm lattice)."""
    lo = np.minimum(coarse.min(0), fine.min(0))
    enc = lambda p: (np.round((p - lo) * 2).astype(np.int64) * [1, 1 << 20, 1 << 40]).sum(1)  # noqa: E731
    fk, ck = enc(fine), enc(coarse)
    order = np.argsort(fk)
    pos = order[np.searchsorted(fk, ck, sorter=order)]
    assert np.array_equal(fk[pos], ck), "coarse nodes must be nodes of the refined lattice"
    return pos


CPU_S: dict[str, float] = {}  # process CPU seconds of the last timed() call per label


def timed(fn, repeat: int = 1, label: str | None = None):
    """(result, best wall seconds); the best run's process CPU seconds go to CPU_S[label]."""
    best, out = np.inf, None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best = wall
            if label:
                CPU_S[label] = time.process_time() - cpu
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("vtu", nargs="?", help="optional tetrahedral mesh (.vtu) instead of the LV shell")
    ap.add_argument("--no-fim", action="store_true", help="skip fim-python")
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    res: dict = {"cpus": os.cpu_count(), "velocities_mm_per_ms": VEL}

    # warm the JIT caches on a tiny mesh so no timing below includes compilation
    from cardiotwin.meshing.lattice import box_mesh
    wp, wc = box_mesh((3, 3, 3))
    warm = EikonalSolver(TetMesh(wp, wc))
    warm.solve(np.tile([1.0, 0, 0], (len(wc), 1)), VEL, [0])
    warm.solve_batch(np.tile([1.0, 0, 0], (len(wc), 1)), np.tile(VEL, (2, 1)), [[0], [1]])

    if args.vtu:
        from cardiotwin.io.mesh import read_mesh

        mesh = read_mesh(args.vtu)
        fib = next((mesh.cell_data[k] for k in ("fibres", "fibers", "fibre", "fiber") if k in mesh.cell_data), None)
        fibres = np.tile([1.0, 0.0, 0.0], (mesh.n_cells, 1)) if fib is None else np.asarray(fib, float)[:, :3]
        sources = far_nodes(mesh.points, len(START_TIMES))
        res["mesh"] = str(args.vtu)
    else:
        (mesh, fibres), t_mesh = timed(lambda: lv_shell(1.0))
        sources = source_nodes(mesh.points)
        res["mesh"] = "LV-like ellipsoidal shell, Kuhn lattice h=1 mm"
        print(f"mesh nodes={mesh.n_points} tets={mesh.n_cells} build_s={t_mesh:.2f}")
    res.update(nodes=mesh.n_points, tets=mesh.n_cells, sources=sources.tolist(), start_times_ms=START_TIMES.tolist())
    d_src = np.min(np.linalg.norm(mesh.points[:, None] - mesh.points[sources][None], axis=2), axis=1)
    far = d_src > 3.0

    solver, t_setup = timed(lambda: EikonalSolver(mesh))
    print(f"cardiotwin setup_s={t_setup:.3f} (topology, once per mesh)")
    ours, t_ours = timed(lambda: solver.solve(fibres, VEL, sources, START_TIMES), repeat=3, label="ours")
    visits = float(solver.last_visits[0]) / mesh.n_points
    plain_solver = EikonalSolver(mesh, factored=False)
    plain, t_plain = timed(lambda: plain_solver.solve(fibres, VEL, sources, START_TIMES), repeat=3)
    print(f"cardiotwin solve_s={t_ours:.3f} cpu_s={CPU_S['ours']:.3f} (factored, best of 3) "
          f"visits_per_node={visits:.2f} load_avg={os.getloadavg()[0]:.2f}")
    print(f"cardiotwin_plain solve_s={t_plain:.3f} (Fu et al. local solver only, best of 3)")

    # batch of parameter sets: velocities and start times varied
    rng = np.random.default_rng(1)
    b = args.batch
    vf = rng.uniform(0.4, 0.8, b)
    ratio = rng.uniform(0.25, 0.5, b)
    vb = np.stack([vf, vf * ratio, vf * ratio], axis=1)
    starts_b = [START_TIMES + rng.uniform(0, 5, len(START_TIMES)) for _ in range(b)]
    _, t_batch = timed(lambda: solver.solve_batch(fibres, vb, [sources] * b, starts_b), label="batch")
    print(f"cardiotwin batch={b} solve_s={t_batch:.2f} per_activation_s={t_batch / b:.3f} "
          f"cpu_s_per_activation={CPU_S['batch'] / b:.3f} threads={numba.get_num_threads()} "
          f"load_avg={os.getloadavg()[0]:.2f}")
    res["cardiotwin"] = {"setup_s": t_setup, "solve_s": t_ours, "solve_cpu_s": CPU_S["ours"],
                         "visits_per_node": visits, "batch": b, "batch_s": t_batch,
                         "batch_cpu_s": CPU_S["batch"], "plain_solve_s": t_plain,
                         "load_avg_1min": os.getloadavg()[0]}

    dij, t_dij = timed(lambda: dijkstra_times(mesh.points, mesh.cells, fibres, VEL, sources, START_TIMES), repeat=2, label="dij")
    print(f"dijkstra solve_s={t_dij:.3f} cpu_s={CPU_S['dij']:.3f} (graph weights + scipy csgraph)")
    res["dijkstra"] = {"solve_s": t_dij, "solve_cpu_s": CPU_S["dij"]}

    fim = None
    if not args.no_fim:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import fimpy.solver  # noqa: F401
        except ImportError:
            print("fim-python not installed (pip install fim-python); skipping it")
            args.no_fim = True
    if not args.no_fim:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fimpy.solver import create_fim_solver

            tensors = conduction_tensors(fibres, VEL)
            fs, t_fim_setup = timed(lambda: create_fim_solver(mesh.points, mesh.cells, tensors, precision=np.float64,
                                                               device="cpu", use_active_list=True))
            fim, t_fim = timed(lambda: np.asarray(fs.comp_fim(sources, START_TIMES)), label="fim")
        print(f"fim-python setup_s={t_fim_setup:.2f} solve_s={t_fim:.2f} cpu_s={CPU_S['fim']:.2f} "
              "(active list, CPU, float64)")
        res["fim_python"] = {"setup_s": t_fim_setup, "solve_s": t_fim, "solve_cpu_s": CPU_S["fim"]}

    if args.vtu:  # reference: the same geometry uniformly refined (every tet in 8), factored solver
        from cardiotwin.meshing.refine import refine_uniform

        (fp, fc, parent), _ = timed(lambda: refine_uniform(mesh.points, mesh.cells))
        fine = TetMesh(fp, fc)
        fine_t, t_fine = timed(lambda: EikonalSolver(fine).solve(fibres[parent], VEL, sources, START_TIMES))
        ref, label = fine_t[: mesh.n_points], "cardiotwin factored on the mesh refined 1:8 (edges halved)"
        print(f"reference nodes={fine.n_points} solve_s={t_fine:.2f} ({label})")
        res["reference"] = {"label": label, "nodes": fine.n_points, "solve_s": t_fine}
    else:
        (fine, fine_f), _ = timed(lambda: lv_shell(0.5))
        fs_ = EikonalSolver(fine)
        idx = match_nodes(mesh.points, fine.points)
        fine_sources = idx[sources]
        fine_t, t_fine = timed(lambda: fs_.solve(fine_f, VEL, fine_sources, START_TIMES))
        ref, label = fine_t[idx], "cardiotwin factored at h=0.5 mm (refined lattice)"
        print(f"reference nodes={fine.n_points} solve_s={t_fine:.2f} ({label})")
        res["reference"] = {"label": label, "nodes": fine.n_points, "solve_s": t_fine}
    for name, t in [("cardiotwin", ours), ("cardiotwin_plain", plain), ("dijkstra", dij), ("fim_python", fim)]:
        if t is None:
            continue
        err = rel_errors(t, ref, far)
        print(f"{name} max_rel_err={err['max_rel'] * 100:.2f}% mean_rel_err={err['mean_rel'] * 100:.2f}% "
              f"mean_abs_err_ms={err['mean_abs_ms']:.3f} (vs {label}, nodes > 3 mm from sources)")
        res.setdefault(name, {}).update(err)
    if fim is not None:
        print(f"cardiotwin_plain vs fim-python max_abs_diff_ms={np.abs(plain - fim).max():.2e} (same discretisation)")
        res["plain_vs_fim_max_abs_ms"] = float(np.abs(plain - fim).max())
    name = f"eikonal_{Path(args.vtu).stem}.json" if args.vtu else "eikonal.json"
    out = Path(__file__).parent / "results" / name
    write_json_atomic(out, res)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
