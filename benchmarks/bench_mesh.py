"""Benchmark: walls + heart mesh and torso mesh of the 1 mm phantom, side by side with VTK surface
nets + TetGen (the peer the issue measured; TetGen is AGPL, so it is a benchmark peer only).

Prints one line per figure and writes benchmarks/results/mesh.json. Targets (issue 3, 2 cores):
walls + heart mesh under 60 s, torso mesh under 60 s.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.landmarks import find_landmarks
from cardiotwin.anatomy.mesh import HEART_REGIONS, heart_mesh, torso_mesh
from cardiotwin.anatomy.walls import DEFAULT_VESSEL_LENGTHS_MM, build_walls
from cardiotwin.meshing.quality import quality_report
from cardiotwin.phantom import generate_phantom


def tetgen_peer(labels, regions, smoothing: bool) -> dict:
    """Multi-label surface nets (VTK) + TetGen (quality mode, one region seed per label)."""
    try:
        import pyvista as pv
        import tetgen
        import vtk
    except ImportError as exc:
        return {"skipped": f"peer not installed: {exc}"}
    from scipy import ndimage

    from cardiotwin.types import tet_signed_volumes

    start = time.perf_counter()
    values = lab.labels_of(regions)
    arr = np.where(np.isin(labels.array, values), labels.array, 0).astype(np.int16)
    grid = pv.ImageData(dimensions=arr.shape, spacing=labels.spacing, origin=labels.origin)
    grid.point_data["l"] = arr.ravel(order="F")
    nets = vtk.vtkSurfaceNets3D()
    nets.SetInputData(grid)
    nets.SetInputArrayToProcess(0, 0, 0, 0, "l")
    for i, v in enumerate(values):
        nets.SetValue(i, v)
    nets.SetOutputMeshTypeToTriangles()
    nets.SetSmoothing(smoothing)
    nets.Update()
    surf = pv.wrap(nets.GetOutput()).clean()
    tg = tetgen.TetGen(surf.points, surf.faces.reshape(-1, 4)[:, 1:])
    for v in values:  # one seed per region: its deepest voxel
        depth = ndimage.distance_transform_edt(arr == v)
        tg.add_region(int(v), labels.index_to_physical(np.array(np.unravel_index(np.argmax(depth), arr.shape), float)))
    try:
        nodes, elem, attrib, _ = tg.tetrahedralize(quality=True, minratio=1.5, mindihedral=10.0, regionattrib=True,
                                                   maxvolume=1.0)
    except RuntimeError as exc:  # TetGen cannot recover the smoothed multi-label surface
        return {"failed": str(exc), "smoothing": smoothing}
    elapsed = time.perf_counter() - start
    elem = elem.astype(np.int64)
    q = quality_report(nodes, elem)
    vol = np.abs(tet_signed_volumes(nodes, elem))
    tags = np.asarray(attrib).astype(int).ravel()
    ref = labels.volumes_ml()
    worst = max(abs(vol[tags == v].sum() / 1000 - ref[lab.name(v)]) / ref[lab.name(v)] for v in values)
    return {"smoothing": smoothing, "time_s": round(elapsed, 1), "nodes": q["nodes"], "tets": q["tets"],
            "min_dihedral": round(q["dihedral_deg"]["min"], 2), "inverted": q["inverted"],
            "worst_region_volume_error": round(worst, 4)}


def main(seed: int = 0) -> None:
    ph = generate_phantom(seed, 1.0)
    results: dict = {"seed": seed}
    start = time.perf_counter()
    walled, _ = build_walls(ph.labels, vessel_lengths_mm=DEFAULT_VESSEL_LENGTHS_MM)
    t_walls = time.perf_counter() - start
    start = time.perf_counter()
    find_landmarks(walled)
    t_landmarks = time.perf_counter() - start
    start = time.perf_counter()
    heart = heart_mesh(walled)
    t_heart = time.perf_counter() - start
    start = time.perf_counter()
    torso = torso_mesh(walled)
    t_torso = time.perf_counter() - start
    hq, tq = heart.report["quality"], torso.report["quality"]
    worst = max(abs(v["rel_error"]) for v in heart.report["volumes"].values())
    print(f"walls_s={t_walls:.1f} landmarks_s={t_landmarks:.1f} heart_mesh_s={t_heart:.1f} "
          f"walls_plus_heart_s={t_walls + t_heart:.1f} (target < 60)")
    print(f"heart nodes={hq['nodes']} tets={hq['tets']} min_dihedral={hq['dihedral_deg']['min']:.1f} "
          f"median_dihedral={hq['dihedral_deg']['median']:.1f} mean_edge_mm={hq['edge_mm']['mean']:.2f} "
          f"worst_region_volume_error={worst:.4f} inverted={hq['inverted']}")
    print(f"torso_mesh_s={t_torso:.1f} (target < 60) nodes={tq['nodes']} tets={tq['tets']} "
          f"min_dihedral={tq['dihedral_deg']['min']:.1f} skin_watertight={torso.report['skin']['watertight']}")
    results.update(walls_s=t_walls, landmarks_s=t_landmarks, heart_mesh_s=t_heart, torso_mesh_s=t_torso,
                   heart=heart.report, torso=torso.report)
    results["peer_surface_nets_tetgen"] = []
    for regions, smoothing in ((HEART_REGIONS, True), (lab.CHAMBER_WALLS, True), (lab.CHAMBER_WALLS, False)):
        peer = tetgen_peer(walled, regions, smoothing)
        peer["regions"] = "walls+valves" if regions == HEART_REGIONS else "walls"
        print("peer surface-nets+tetgen " + " ".join(f"{k}={v}" for k, v in peer.items()))
        results["peer_surface_nets_tetgen"].append(peer)
    out = Path(__file__).parent / "results" / "mesh.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
