"""A picture of the atrial inflows: LA and RA blood pools with the pulmonary-vein and caval stumps
(found or placed by rule) and the ostium points, posterior and right views (``viz`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.voxels import window
from cardiotwin.report.mesh_figure import look_at, save_screenshot
from cardiotwin.report.slices import _COLOURS
from cardiotwin.types import LabelImage

_SHOWN = ("la_blood", "ra_blood", "lv_blood", "pulmonary_veins", "superior_vena_cava", "inferior_vena_cava")
_VIEWS = {"posterior": (0, 1, 0), "right": (-1, 0, 0)}


def _surface(labels: LabelImage, value: int, step: int):
    import pyvista as pv

    mask = labels.array[::step, ::step, ::step] == value
    if not mask.any():
        return None
    grid = pv.ImageData(dimensions=np.array(mask.shape) + 1, spacing=np.asarray(labels.spacing) * step)
    grid.cell_data["m"] = mask.ravel(order="F").astype(np.uint8)
    surf = grid.threshold(0.5).extract_surface(algorithm=None).smooth(n_iter=30)
    surf.points = np.asarray(labels.origin) + (surf.points - 0.5 * np.asarray(labels.spacing)) @ labels.direction.T
    return surf


def plot_inflows(labels: LabelImage, veins: dict, path: str | os.PathLike, title: str = "",
                 size=(1600, 800)) -> Path:
    """PNG of the atria and their venous inflows; ``veins`` is the walls report's ``veins`` entry."""
    import pyvista as pv

    atria = np.isin(labels.array, lab.labels_of(_SHOWN))
    win = window(atria, labels.shape, 4)
    crop = labels.crop(win)
    step = max(1, int(round(1.0 / min(labels.spacing))))
    surfaces = {n: _surface(crop, lab.label(n), step) for n in _SHOWN}
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=size)
    points = {k: np.asarray(v.get("ostium_mm", v.get("point_mm"))) for k, v in veins.items()
              if "ostium_mm" in v or "point_mm" in v}
    centre = np.mean([s.center for s in surfaces.values() if s is not None], axis=0)
    for col, (name, direction) in enumerate(_VIEWS.items()):
        plotter.subplot(0, col)
        for n, surf in surfaces.items():
            if surf is not None:
                plotter.add_mesh(surf, color=_COLOURS.get(n, "#cccccc"), opacity=0.35 if n == "lv_blood" else 1.0,
                                 smooth_shading=True)
        for k, p in points.items():
            plotter.add_mesh(pv.Sphere(radius=2.0, center=p), color="black")
        if points:
            plotter.add_point_labels(np.array(list(points.values())), list(points), font_size=14,
                                     always_visible=True, shape_opacity=0.4)
        plotter.add_text(f"{title} {name} view".strip(), font_size=12)
        look_at(plotter, centre, direction, 400.0)
    return save_screenshot(plotter, path)
