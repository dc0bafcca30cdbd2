"""Where the phantom's heart sits in its chest: behind the anterior chest wall, in front of the spine.

The heart offset and the chest depth are drawn independently (:func:`~cardiotwin.phantom.params.sample_params`),
so a large or anteriorly drawn heart could reach into the chest wall or the subcutaneous fat (found
at 0-5 mm below the skin on some seeds). That is anatomically impossible and electrically loud: the
precordial potentials grow roughly with the inverse square of the electrode-to-source distance, so
a heart under the skin gives V1-V4 several times their normal amplitudes.

In adults the anterior surface of the heart (RV free wall, apex) lies directly behind the sternum
and the left costal cartilages, touching the chest wall through the pericardium at the cardiac
notch (Moore, Dalley & Agur, *Clinically Oriented Anatomy*, 7th ed., 2014, ch. 1), and the LA lies
in front of the oesophagus and the descending aorta on the vertebral bodies. The placement keeps
both: the heart's most superficial voxel at least the fat layer plus the chest wall
(:data:`~cardiotwin.phantom.torso.CHEST_WALL`) plus :data:`ANTERIOR_GAP_MM` below the skin, and its
most posterior voxel :data:`POSTERIOR_GAP_MM` in front of the vertebral body. A heart that violates
the first moves posteriorly; when the chest is too shallow for both, the chest is made deeper (the
torso's semi-axis grows just enough, the patient is then a deeper-chested one), never the heart smaller.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import brentq

from cardiotwin import labels as lab
from cardiotwin.anatomy.walls import grow_walls
from cardiotwin.phantom.heart import HeartModel
from cardiotwin.phantom.params import PhantomParams, sample_params
from cardiotwin.phantom.raster import paint
from cardiotwin.phantom.shapes import Grid
from cardiotwin.phantom.torso import CHEST_WALL, SPINE_RADIUS, spine_center, superellipse_radius

ANTERIOR_GAP_MM = 2.0  # pericardium and retrosternal fat between the chest wall and the epicardium
POSTERIOR_GAP_MM = 10.0  # oesophagus between the LA and the vertebral body
PLACEMENT_SPACING_MM = 3.0  # grid on which the heart's extent is measured (placement is resolution-free)
MAX_SHIFT_MM = 80.0


def paint_heart(heart: HeartModel, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Labels and tissue classes of ``heart``'s solids and grown walls on ``grid``."""
    labels = np.zeros(grid.shape, dtype=np.int16)
    tissue = np.zeros(grid.shape, dtype=np.uint8)
    for op in heart.paints:
        paint(labels, tissue, grid, op)
    grow_walls(labels, grid.spacing, heart.walls, origin=(grid.x[0], grid.y[0], grid.z[0]),
               max_thickness_mm=heart.max_wall_mm)
    return labels, tissue


def heart_points(p: PhantomParams) -> np.ndarray:
    """Centres (k, 3) of the heart's voxels (chambers, walls, valves) at the drawn offset, on a
    :data:`PLACEMENT_SPACING_MM` grid."""
    base = np.array([p.heart_offset[0], p.heart_offset[1], 0.0])
    heart = HeartModel(p, base, spine_center_xy=spine_center(p), inferior_z=-160.0)
    s, half = PLACEMENT_SPACING_MM, 150.0
    grid = Grid(*[np.arange(c - half + s / 2, c + half, s) for c in base])
    labels, _ = paint_heart(heart, grid)
    idx = np.argwhere(np.isin(labels, lab.labels_of(lab.HEART)))
    return np.column_stack([grid.x[idx[:, 0]], grid.y[idx[:, 1]], grid.z[idx[:, 2]]])


def _anterior_depth(points: np.ndarray, p: PhantomParams, dy: float, semi_ap: float) -> float:
    """Least depth below the anterior skin (the torso painter's measure) of the points moved by ``dy``
    (the points in front of the torso axis; the posterior side is the spine's constraint)."""
    y = points[:, 1] + dy
    front = y < 0.0
    if not front.any():
        return np.inf
    rho = superellipse_radius(points[front, 0], y[front], p.torso_semi_lr, semi_ap, p.torso_exponent)
    return float(((1.0 - rho) * min(p.torso_semi_lr, semi_ap)).min())


def place_heart(p: PhantomParams) -> tuple[PhantomParams, dict]:
    """``p`` with the heart moved back (and the chest deepened where needed) so the heart lies inside
    the thorax, and a report of the change (mm)."""
    pts = heart_points(p)
    need = p.fat_thickness + CHEST_WALL + ANTERIOR_GAP_MM
    back = float(pts[:, 1].max())

    def dy_min(semi_ap: float) -> float:  # least posterior shift that clears the chest wall
        if _anterior_depth(pts, p, 0.0, semi_ap) >= need:
            return 0.0
        f = lambda dy: _anterior_depth(pts, p, dy, semi_ap) - need  # noqa: E731
        if f(MAX_SHIFT_MM) < 0:
            return np.inf
        return brentq(f, 0.0, MAX_SHIFT_MM, xtol=0.05)

    def dy_max(semi_ap: float) -> float:  # most posterior shift that keeps the oesophagus' room
        q = dataclasses.replace(p, torso_semi_ap=semi_ap)
        return spine_center(q)[1] - SPINE_RADIUS - POSTERIOR_GAP_MM - back

    semi_ap = p.torso_semi_ap
    before = _anterior_depth(pts, p, 0.0, semi_ap)
    if dy_min(semi_ap) > max(dy_max(semi_ap), 0.0):
        semi_ap = brentq(lambda b: max(dy_max(b), 0.0) - dy_min(b) if np.isfinite(dy_min(b)) else -1.0,
                         p.torso_semi_ap, p.torso_semi_ap + 2 * MAX_SHIFT_MM, xtol=0.05)
    dy = dy_min(semi_ap)
    placed = dataclasses.replace(p, torso_semi_ap=float(semi_ap),
                                 heart_offset=(p.heart_offset[0], p.heart_offset[1] + dy, p.heart_offset[2]))
    report = {"heart_moved_posterior_mm": round(dy, 2), "chest_deepened_mm": round(float(semi_ap - p.torso_semi_ap), 2),
              "anterior_depth_mm": {"drawn": round(before, 1), "placed": round(_anterior_depth(pts, p, dy, semi_ap), 1),
                                    "required": round(need, 1)}}
    return placed, report


def draw_patient(seed: int) -> PhantomParams:
    """Patient ``seed``'s shape: its draw (:func:`sample_params`) with the heart placed in the thorax."""
    return place_heart(sample_params(seed))[0]
