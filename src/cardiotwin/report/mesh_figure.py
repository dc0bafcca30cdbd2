"""A picture of the anatomical twin: heart regions inside the translucent torso and lungs.

Rendered off-screen with PyVista/VTK (the ``viz`` extra); ParaView users open the ``.vtu`` files
directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.io.atomic import atomic_path
from cardiotwin.report.slices import _COLOURS
from cardiotwin.types import TetMesh

_VIEWS = {"anterior": ((0, -1, 0), (0, 0, 1)), "left": ((1, 0, 0), (0, 0, 1))}


def _grid(mesh: TetMesh, tags=None):
    import pyvista as pv

    keep = np.ones(mesh.n_cells, bool) if tags is None else np.isin(mesh.tags, tags)
    cells = np.hstack([np.full((keep.sum(), 1), 4), mesh.cells[keep]]).ravel()
    grid = pv.UnstructuredGrid(cells, np.full(keep.sum(), 10, dtype=np.uint8), mesh.points)
    grid.cell_data["tag"] = mesh.tags[keep]
    return grid


def look_at(plotter, centre, direction, distance: float, up=(0, 0, 1)) -> None:
    """Point the current subplot's camera at ``centre`` from ``distance`` mm along ``direction``."""
    plotter.camera.focal_point = centre
    plotter.camera.position = np.asarray(centre, float) + distance * np.asarray(direction, float)
    plotter.camera.up = up


def save_screenshot(plotter, path: str | os.PathLike) -> Path:
    """Write the plotter's picture atomically and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return target


def plot_meshes(heart: TetMesh, torso: TetMesh | None, path: str | os.PathLike, size=(1600, 800)) -> Path:
    """PNG with an anterior and a left view: heart regions coloured, torso skin and lungs translucent."""
    import pyvista as pv

    pv.OFF_SCREEN = True
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=size)
    centre = heart.points.mean(axis=0)
    heart_grid = _grid(heart)
    for col, (name, (direction, up)) in enumerate(_VIEWS.items()):
        plotter.subplot(0, col)
        for tag in np.unique(heart.tags):
            region = heart_grid.extract_cells(heart_grid.cell_data["tag"] == tag).extract_surface(algorithm=None)
            plotter.add_mesh(region, color=_COLOURS.get(lab.name(tag), "#cccccc"), smooth_shading=True)
        if torso is not None:
            skin = _grid(torso).extract_surface(algorithm=None)
            plotter.add_mesh(skin, color="#d9b38c", opacity=0.12)
            lungs = _grid(torso, lab.labels_of(lab.LUNGS)).extract_surface(algorithm=None)
            plotter.add_mesh(lungs, color="#6d8cc7", opacity=0.18)
        plotter.add_text(f"{name} view", font_size=12)
        distance = 900.0 if torso is not None else 350.0
        look_at(plotter, centre, direction, distance, up)
    return save_screenshot(plotter, path)


def plot_field(mesh: TetMesh, values: np.ndarray, path: str | os.PathLike, title: str,
               cmap: str = "jet_r", size=(1600, 700)) -> Path:
    """PNG of a nodal field (e.g. activation times) on the heart surface, anterior and posterior views."""
    import pyvista as pv

    grid = _grid(mesh)
    grid.point_data[title] = np.where(np.isfinite(values), values, np.nan)
    surface = grid.extract_surface(algorithm=None)
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=size)
    centre = mesh.points.mean(axis=0)
    for col, (name, direction) in enumerate((("anterior", (0, -1, 0)), ("posterior", (0, 1, 0)))):
        plotter.subplot(0, col)
        plotter.add_mesh(surface, scalars=title, cmap=cmap, nan_color="#bbbbbb", smooth_shading=True,
                         show_scalar_bar=col == 1, scalar_bar_args={"title": title})
        plotter.add_text(f"{name} view", font_size=12)
        look_at(plotter, centre, direction, 350.0)
    return save_screenshot(plotter, path)
