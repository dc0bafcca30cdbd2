"""Picture of a fibre field: ventricular helix angles and atrial bundles, as line glyphs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.anatomy.coordinates import Domain
from cardiotwin.anatomy.fibres import helix_angle
from cardiotwin.geometry import unit_vectors
from cardiotwin.errors import AnatomyError
from cardiotwin.report.mesh_figure import save_screenshot
from cardiotwin.types import TetMesh


def plot_fibres(mesh: TetMesh, path: str | os.PathLike, *, max_glyphs: int = 6000, size=(1800, 650),
                seed: int = 0) -> Path:
    """PNG of the fibre field: ventricular epicardial fibres (anterior view) and a long-axis cut
    through the wall, as short line glyphs coloured by helix angle, and the atria coloured by
    ``fibre_region``. Needs the fields of :func:`add_coordinates_and_fibres`."""
    import pyvista as pv

    for key in ("fibre", "fibre_region"):
        if key not in mesh.cell_data:
            raise AnatomyError(f"plot_fibres needs the cell field {key!r}; run add_coordinates_and_fibres first")
    for key in ("uvc_apicobasal", "uvc_transmural"):
        if key not in mesh.point_data:
            raise AnatomyError(f"plot_fibres needs the point field {key!r}; run add_coordinates_and_fibres first")
    rng = np.random.default_rng(seed)
    region = mesh.cell_data["fibre_region"]
    fib = mesh.cell_data["fibre"]
    centroid = mesh.points[mesh.cells].mean(axis=1)
    vent = np.flatnonzero(np.isin(region, [1, 2, 3, 4]))
    if not vent.size:
        raise AnatomyError("plot_fibres found no ventricular fibres (fibre_region 1-4)")
    dom = Domain.of(mesh, vent)
    ab = np.nan_to_num(mesh.point_data["uvc_apicobasal"][dom.nodes])
    rho = np.nan_to_num(mesh.point_data["uvc_transmural"][dom.nodes])
    # recovered gradients: cells with all four nodes on one surface still get the wall frame
    g_ab, g_rho = dom.recovered_gradient(ab), dom.recovered_gradient(rho)
    helix = helix_angle(fib[vent], g_ab, g_rho)
    rho_c = dom.cell_mean(rho)
    cells_v = mesh.cells[vent]

    def glyphs(sel: np.ndarray, scalars: np.ndarray, length: float):
        """Line glyphs of the fibres of cells ``sel`` (at most max_glyphs, chosen at random)."""
        if sel.size > max_glyphs:
            pick = rng.choice(sel.size, max_glyphs, replace=False)
            sel, scalars = sel[pick], scalars[pick]
        c = centroid[sel]
        d = fib[sel] * (0.5 * length)
        n = len(c)
        lines = np.column_stack([np.full(n, 2), np.arange(n), np.arange(n) + n]).ravel()
        poly = pv.PolyData(np.concatenate([c - d, c + d]), lines=lines)
        poly.cell_data["value"] = scalars
        return poly

    pv.OFF_SCREEN = True
    plotter = pv.Plotter(off_screen=True, shape=(1, 3), window_size=size)
    axis_dir = unit_vectors(np.nanmean(g_ab, axis=0)[None])[0]
    centre = centroid[vent].mean(axis=0)
    span = float(np.ptp(mesh.points[np.unique(cells_v)], axis=0).max())
    edge = float(np.median(np.linalg.norm(mesh.points[mesh.cells[:, 0]] - mesh.points[mesh.cells[:, 1]], axis=1)))
    length = 3.0 * edge
    # 1: epicardial fibres
    epi = np.flatnonzero(rho_c > 0.85)
    epi_poly = glyphs(vent[epi], helix[epi], length)
    plotter.subplot(0, 0)
    plotter.add_mesh(epi_poly, scalars="value", cmap="coolwarm", clim=(-90, 90), line_width=2,
                     scalar_bar_args={"title": "helix angle (deg)"})
    plotter.add_text("epicardial fibres (anterior)", font_size=10)
    plotter.camera.focal_point = centre
    plotter.camera.position = centre + 2.6 * span * np.array([0.0, -1.0, 0.0])
    plotter.camera.up = axis_dir
    # 2: long-axis slab through the wall
    ref = np.cross(axis_dir, [0.0, -1.0, 0.0])
    ref = unit_vectors(ref[None])[0] if np.linalg.norm(ref) > 1e-6 else np.array([1.0, 0.0, 0.0])
    slab = np.flatnonzero(np.abs((centroid[vent] - centre) @ ref) < 1.5 * edge)
    slab_poly = glyphs(vent[slab], helix[slab], length)
    plotter.subplot(0, 1)
    plotter.add_mesh(slab_poly, scalars="value", cmap="coolwarm", clim=(-90, 90), line_width=2, show_scalar_bar=False)
    plotter.add_text("long-axis cut: endo +60 -> epi -60", font_size=10)
    plotter.camera.focal_point = centre
    plotter.camera.position = centre + 2.6 * span * ref
    plotter.camera.up = axis_dir
    # 3: atria by region
    atr = np.flatnonzero(region >= 10)
    plotter.subplot(0, 2)
    if atr.size:
        a_poly = glyphs(atr, region[atr].astype(float), length)
        plotter.add_mesh(a_poly, scalars="value", cmap="tab20", clim=(9.5, 29.5), line_width=2,
                         scalar_bar_args={"title": "fibre_region"})
        a_centre = centroid[atr].mean(axis=0)
        plotter.camera.focal_point = a_centre
        plotter.camera.position = a_centre + 2.2 * span * np.array([0.0, 1.0, 0.3])
        plotter.camera.up = (0.0, 0.0, 1.0)
        plotter.add_text("atrial bundles (posterior view)", font_size=10)
    else:
        plotter.add_text("no atria", font_size=10)
    return save_screenshot(plotter, path)
