"""Benchmark: universal coordinates and rule-based fibres on the 1 mm phantom's four-chamber heart.

The heart mesh is built with ``heart_mesh`` on ``generate_phantom(0)`` (1 mm; its build time is
reported but not part of the figure), then timed: ventricular coordinates (UVC + LDRB Laplace
fields: transmural pair, apex-to-base, its linearisation, outflow field), LDRB fibres, atrial
coordinates (UAC) and atrial fibres. Target: coordinates + fibres under 60 s on 2 cores.

Accuracy figures printed with the times: the LV free-wall helix angle at mid-ventricle against the
prescription alpha(T) = 60 - 120 T per transmural bin (see :func:`lv_free_wall_helix` for the
frame); orthonormality of (fibre, sheet, sheet_normal); the correlation of the apicobasal coordinate
with height along the long axis.

Optional side by side with the ``ldrb`` package (Finsberg's FEniCS implementation of Bayer et al.
2012) on the LV ellipsoid of the tests: ``--ldrb-python /usr/bin/python3`` names an interpreter that
has legacy FEniCS (dolfin) and ldrb installed; the mesh and markers go through a temporary .npz.

Usage: ``python benchmarks/bench_fibres.py [--spacing 1.0] [--ldrb-python PY]``. Prints one line per
figure and writes benchmarks/results/fibres.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import atrial_coordinates, ventricular_coordinates
from cardiotwin.anatomy.fibres import atrial_fibres, helix_angle, ldrb_fibres
from cardiotwin.anatomy.landmarks import find_landmarks
from cardiotwin.anatomy.mesh import heart_mesh
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.phantom import generate_phantom

RESULTS = Path(__file__).resolve().parent / "results" / "fibres.json"


def line(name: str, value, unit: str = "", **extra) -> None:
    more = "  ".join(f"{k}={v}" for k, v in extra.items())
    print(f"{name:<44s} {value!s:>12s} {unit:<4s} {more}")


def lv_free_wall_helix(mesh, vc, fibre, landmarks) -> dict:
    """Mean helix angle of the LV lateral free wall (0.25 < Z < 0.75, |phi| > 2.3) per transmural bin
    against the prescription alpha(T) = 60 - 120 T.

    The helix angle is the angle from the local circumferential direction c = l x t in the plane
    tangent to the wall, with l the local apex-to-base direction: Bayer et al. 2012 (Ann Biomed Eng
    40:2243) define the prescription in the frame of the apicobasal Laplace gradient, so l is the
    recovered gradient of ``laplace_apicobasal`` (the streamline direction of the UVC apicobasal
    coordinate); t is the outward normal of the nearest LV endocardial faces (smoothed over 3 mm),
    independent of the transmural Laplace fields. One straight long axis (the ``lv_long_axis``
    landmark) is the local longitudinal direction only in an LV of revolution about it: in a curved
    or oblique LV its projection onto the wall carries a circumferential part that shifts every bin
    by the same angle. That shift is reported on its own per bin as ``long_axis_shift_deg`` (helix
    against the landmark axis minus helix against l).
    """
    from scipy.spatial import cKDTree

    dom, local, b = vc.domains["ventricles"]
    lv = mesh.tags[dom.cells] == lab.label("lv_myocardium")
    T = dom.cell_mean(local["uvc_transmural"])[lv]
    Z = dom.cell_mean(local["uvc_apicobasal"])[lv]
    phi = dom.cell_mean(local["uvc_rotational"])[lv]
    cells = dom.cells[lv]
    centres = mesh.points[mesh.cells[cells]].mean(axis=1)
    faces = b.faces[b.mask("lv_endocardium")]
    p = mesh.points[faces]
    normal = -np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    tree = cKDTree(p.mean(axis=1))
    smooth = np.array([normal[j].mean(axis=0) for j in tree.query_ball_point(p.mean(axis=1), 3.0)])
    t = smooth[tree.query(centres)[1]]
    h = helix_angle(fibre[cells], dom.recovered_gradient(local["laplace_apicobasal"])[lv], t)
    shift = helix_angle(fibre[cells], np.broadcast_to(np.asarray(landmarks["lv_long_axis"], float), t.shape), t) - h
    shift = 90.0 - np.mod(90.0 - shift, 180.0)
    sel = (Z > 0.25) & (Z < 0.75) & (np.abs(phi) > 2.3)
    out = {}
    for name, (lo, hi) in {"endo": (0, 0.15), "mid": (0.4, 0.6), "epi": (0.85, 1.0)}.items():
        k = sel & (T >= lo) & (T < hi)
        out[name] = {"cells": int(k.sum()), "helix_deg": round(float(h[k].mean()), 2),
                     "prescribed_deg": round(float((60 - 120 * T[k]).mean()), 2),
                     "mean_difference_deg": round(float((h[k] - (60 - 120 * T[k])).mean()), 2),
                     "long_axis_shift_deg": round(float(shift[k].mean()), 2)}
    return out


def ldrb_side_by_side(python: str) -> dict:
    """Our LDRB and the ldrb package on the same LV ellipsoid (helix profile, time, agreement)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from heart_cases import lv_ellipsoid, spheroid_normal

    from cardiotwin.anatomy.surfaces import classify_boundary

    labels, mesh, landmarks = lv_ellipsoid()
    lv = mesh.tags == lab.label("lv_myocardium")
    start = time.perf_counter()
    vc = ventricular_coordinates(mesh, labels, landmarks)
    f_ours = ldrb_fibres(mesh, vc)[0][lv]
    ours_s = time.perf_counter() - start
    b = classify_boundary(mesh, labels, "ventricles")
    nodes, tets = np.unique(mesh.cells[lv], return_inverse=True)
    tets = tets.reshape(-1, 4)
    local = np.full(mesh.n_points, -1)
    local[nodes] = np.arange(len(nodes))
    marker = {"mitral_valve": 1, "lv_endocardium": 2, "epicardium": 3}
    facets = np.vstack([local[b.faces[b.mask(n)]] for n in marker])
    values = np.concatenate([np.full(int(b.mask(n).sum()), v) for n, v in marker.items()])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lv.npz"
        np.savez(src, points=mesh.points[nodes], tets=tets, facets=facets, values=values)
        script = Path(tmp) / "run_ldrb.py"
        script.write_text(_LDRB_SCRIPT)
        res = subprocess.run([python, str(script), str(src)], capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            return {"error": res.stderr[-2000:]}
        out = np.load(Path(tmp) / "lv_out.npz")
        f_ldrb, ldrb_s = out["fiber"], float(out["seconds"])
    centres = mesh.points[mesh.cells[lv]].mean(axis=1)
    t = spheroid_normal(centres)
    z = np.tile([0.0, 0.0, 1.0], (len(centres), 1))
    dom, local_f, _ = vc.domains["ventricles"]
    T = dom.cell_mean(local_f["uvc_transmural"])
    Z = dom.cell_mean(local_f["uvc_apicobasal"])
    sel = (Z > 0.2) & (Z < 0.8)
    prof = {}
    for name, fibre in (("cardiotwin", f_ours), ("ldrb", f_ldrb)):
        h = helix_angle(fibre, z, t)
        prof[name] = {k: round(float(h[sel & (T >= lo) & (T < hi)].mean()), 2)
                      for k, (lo, hi) in {"endo": (0, 0.15), "mid": (0.4, 0.6), "epi": (0.85, 1.0)}.items()}
    angle = np.degrees(np.arccos(np.clip(np.abs(np.einsum("ij,ij->i", f_ours, f_ldrb)), 0, 1)))
    return {"cells": int(lv.sum()), "cardiotwin_s": round(ours_s, 3), "ldrb_s": round(ldrb_s, 3),
            "helix_profile_deg": prof, "angle_between_deg": {"mean": round(float(angle[sel].mean()), 2),
                                                              "median": round(float(np.median(angle[sel])), 2)}}


_LDRB_SCRIPT = r'''
import sys, time
import numpy as np
import dolfin, ldrb
data = np.load(sys.argv[1])
pts, tets, facets, values = data["points"], data["tets"], data["facets"], data["values"]
mesh = dolfin.Mesh()
ed = dolfin.MeshEditor()
ed.open(mesh, "tetrahedron", 3, 3)
ed.init_vertices(len(pts)); ed.init_cells(len(tets))
for i, p in enumerate(pts): ed.add_vertex(i, p)
for i, c in enumerate(tets): ed.add_cell(i, c)
ed.close()
mesh.init(2, 0)
ffun = dolfin.MeshFunction("size_t", mesh, 2, 0)
lookup = {tuple(sorted(f)): v for f, v in zip(facets.tolist(), values.tolist())}
for facet in dolfin.facets(mesh):
    key = tuple(sorted(facet.entities(0).tolist()))
    if key in lookup: ffun[facet] = lookup[key]
start = time.perf_counter()
fiber, sheet, normal = ldrb.dolfin_ldrb(mesh=mesh, fiber_space="DG_0", ffun=ffun,
                                        markers={"base": 1, "lv": 2, "epi": 3},
                                        alpha_endo_lv=60, alpha_epi_lv=-60, beta_endo_lv=-65, beta_epi_lv=25)
seconds = time.perf_counter() - start
f = fiber.vector().get_local().reshape(-1, 3)
dm = fiber.function_space().dofmap()
order = np.array([dm.cell_dofs(i)[0] // 3 for i in range(mesh.num_cells())])
np.savez(sys.argv[1].replace(".npz", "_out.npz"), fiber=f[order], seconds=seconds)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spacing", type=float, default=1.0, help="phantom voxel and mesh edge (mm)")
    parser.add_argument("--ldrb-python", default=None, help="python with dolfin + ldrb for the side by side")
    args = parser.parse_args()
    results: dict = {"spacing_mm": args.spacing, "cpus": __import__("os").cpu_count()}

    start = time.perf_counter()
    phantom = generate_phantom(0, spacing=args.spacing)
    landmarks = find_landmarks(phantom.labels)
    mesh = heart_mesh(phantom.labels, edge_mm=args.spacing).mesh
    build = time.perf_counter() - start
    line("phantom + heart mesh (not timed below)", f"{build:.1f}", "s", nodes=mesh.n_points, tets=mesh.n_cells)
    results["mesh"] = {"nodes": mesh.n_points, "tets": mesh.n_cells, "build_s": round(build, 2)}

    timings = {}
    t0 = time.perf_counter()
    vc = ventricular_coordinates(mesh, phantom.labels, landmarks)
    timings["ventricular_coordinates_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fibre, sheet, normal, region = ldrb_fibres(mesh, vc)
    timings["ldrb_fibres_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ac = atrial_coordinates(mesh, phantom.labels, landmarks)
    timings["atrial_coordinates_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    af = atrial_fibres(mesh, ac, landmarks)
    timings["atrial_fibres_s"] = time.perf_counter() - t0
    total = sum(timings.values())
    rep = vc.report["ventricles"]
    line("ventricular coordinates (UVC + Laplace)", f"{timings['ventricular_coordinates_s']:.2f}", "s",
         nodes=rep["nodes"], tets=rep["cells"])
    for name, s in rep["solves"].items():
        line(f"  solve {name}", f"{s['seconds']:.2f}", "s", iterations=s["iterations"], method=s["method"])
    line("LDRB fibres (ventricles)", f"{timings['ldrb_fibres_s']:.2f}", "s")
    for side in ("la", "ra"):
        r = ac.report[side]
        its = {k: v["iterations"] for k, v in r["solves"].items()}
        line(f"atrial coordinates {side.upper()}", f"{r['seconds']:.2f}", "s", nodes=r["nodes"], iterations=its)
    line("atrial fibres", f"{timings['atrial_fibres_s']:.2f}", "s")
    line("TOTAL coordinates + fibres (target < 60 s)", f"{total:.2f}", "s", nodes=mesh.n_points)
    results["timings_s"] = {k: round(v, 3) for k, v in timings.items()} | {"total_s": round(total, 3)}
    results["ventricles"] = rep
    results["atria"] = ac.report

    cells = vc.domains["ventricles"][0].cells
    orth = max(float(np.abs(np.einsum("ij,ij->i", fibre[cells], sheet[cells])).max()),
               float(np.abs(np.linalg.norm(fibre[cells], axis=1) - 1).max()),
               float(np.abs(normal[cells] - np.cross(fibre[cells], sheet[cells])).max()))
    line("orthonormality error (ventricles)", f"{orth:.1e}")
    helix = lv_free_wall_helix(mesh, vc, fibre, landmarks)
    for name, h in helix.items():
        line(f"LV free-wall helix {name}", f"{h['helix_deg']:.1f}", "deg", prescribed=h["prescribed_deg"],
             difference=h["mean_difference_deg"], long_axis_shift=h["long_axis_shift_deg"], cells=h["cells"])
    dom, local, _ = vc.domains["ventricles"]
    lvn = local["uvc_transventricular"] < 0
    height = (dom.points[lvn] - np.asarray(landmarks["lv_apex_epicardium"])) @ np.asarray(landmarks["lv_long_axis"])
    corr = float(np.corrcoef(local["uvc_apicobasal"][lvn], height)[0, 1])
    line("corr(apicobasal, height along LV axis)", f"{corr:.4f}")
    regions = {int(k): int(v) for k, v in zip(*np.unique(af[3][af[3] >= 0], return_counts=True))}
    line("atrial fibre regions (cells per code)", str(len(regions)), "", regions=regions)
    results["accuracy"] = {"orthonormality_error": orth, "lv_free_wall_helix": helix,
                           "apicobasal_height_correlation": round(corr, 5), "atrial_regions": regions}

    if args.ldrb_python:
        side = ldrb_side_by_side(args.ldrb_python)
        results["ldrb_side_by_side"] = side
        if "error" in side:
            line("ldrb side by side", "failed", "", error=side["error"].splitlines()[-1] if side["error"] else "")
        else:
            line("LV ellipsoid: cardiotwin UVC+LDRB", f"{side['cardiotwin_s']:.2f}", "s", cells=side["cells"],
                 helix=side["helix_profile_deg"]["cardiotwin"])
            line("LV ellipsoid: ldrb package", f"{side['ldrb_s']:.2f}", "s", helix=side["helix_profile_deg"]["ldrb"])
            line("angle between the two fibre fields", f"{side['angle_between_deg']['mean']:.1f}", "deg",
                 median=side["angle_between_deg"]["median"])
    write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
