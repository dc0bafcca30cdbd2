"""Torso of the phantom: body outline, subcutaneous fat, chest wall, ribs, sternum, spine,
diaphragm, liver and the two lungs around the mediastinum.

Cross-sections are ellipses (x: left-right, y: anterior-posterior), or superellipses
(|x/A|^n + |y/B|^n = 1) when a real body's flatter chest is fitted (:mod:`cardiotwin.anatomy.torso_fit`). Quantities that depend on
(x, y) only are computed once on a 2-D slice and compared with z-profiles, so the whole torso
costs a handful of boolean passes over the volume.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiotwin.labels import LABELS as L
from cardiotwin.phantom.params import PhantomParams
from cardiotwin.phantom.shapes import Grid
from cardiotwin.phantom.tissue import Tissue

CHEST_WALL = 16.0  # muscle + ribs between the fat layer and the pleura (mm)
RIB_PITCH = 26.0  # cranio-caudal distance between ribs (mm)
SPINE_RADIUS = 19.0  # vertebral body (mm)
LUNG_CLEARANCE_MM = 5.0  # lungs stay clear of the heart (pericardium, epicardial fat)
LUNG_SPLIT_MM = 5.0  # lung voxels left of this x (from the torso axis) are the left lung


def superellipse_radius(x: np.ndarray, y: np.ndarray, a: float, b: float, n: float = 2.0) -> np.ndarray:
    """(|x/a|^n + |y/b|^n)^(1/n): 1 on the cross-section's outline, < 1 inside."""
    return (np.abs(x / a) ** n + np.abs(y / b) ** n) ** (1.0 / n)


def spine_center(p: PhantomParams) -> tuple[float, float]:
    """(x, y) of the vertebral-body axis: midline, ~50 mm in front of the posterior skin."""
    return 0.0, p.torso_semi_ap - p.fat_thickness - 52.0


def paint_torso(labels: np.ndarray, tissue: np.ndarray, grid: Grid, p: PhantomParams, z_bottom: float,
                z_diaphragm: float, heart_window: tuple[slice, slice, slice], heart: np.ndarray) -> None:
    """Paint body, spine and lungs into the voxels the heart and vessels left empty."""
    x2, y2 = grid.x[:, None], grid.y[None, :]
    z = grid.z
    z_top = z_bottom + p.torso_height
    in_z = (z >= z_bottom) & (z <= z_top)
    A, B = p.torso_semi_lr, p.torso_semi_ap
    n = p.torso_exponent
    rho = superellipse_radius(x2, y2, A, B, n)
    depth = (1.0 - rho) * min(A, B)  # approx. distance below the skin (mm), 2-D

    free = labels == 0
    body = (rho <= 1.0)[:, :, None] & in_z[None, None, :]
    labels[body & free] = L["torso"]
    tissue[body & free] = Tissue.FAT
    tissue[body & free & (depth > p.fat_thickness)[:, :, None]] = Tissue.MUSCLE

    # spine: vertebral bodies (marrow inside cortical bone) with discs, and the posterior arch
    sx, sy = spine_center(p)
    r2 = (x2 - sx) ** 2 + (y2 - sy) ** 2
    vertebra = r2 <= SPINE_RADIUS**2
    arch = (np.abs(x2 - sx) <= 24.0) & (y2 > sy + SPINE_RADIUS - 4) & (y2 <= sy + SPINE_RADIUS + 26.0)
    canal = (x2 - sx) ** 2 + (y2 - sy - SPINE_RADIUS - 9.0) ** 2 <= 8.0**2
    spine = ((vertebra | (arch & ~canal))[:, :, None] & in_z[None, None, :]) & free
    labels[spine] = L["spine"]
    tissue[spine] = Tissue.BONE
    disc = ((z - z_bottom) % 30.0) < 6.0
    tissue[spine & (r2 <= (SPINE_RADIUS - 3) ** 2)[:, :, None]] = Tissue.MARROW
    tissue[spine & vertebra[:, :, None] & disc[None, None, :]] = Tissue.MUSCLE

    # ribs slope down anteriorly and stop short of the sternum; the sternum is a midline plate
    wall = (depth > p.fat_thickness + 2.0) & (depth < p.fat_thickness + 10.0)
    anterior = np.clip(-y2 / np.sqrt(x2**2 + y2**2 + 1e-9), 0.0, 1.0)
    ii, jj = np.nonzero(wall & (np.abs(x2) > 28.0))
    phase = (z[None, :] - z_top + 40.0 + 30.0 * anterior[ii, jj][:, None]) % RIB_PITCH
    rib = (phase < 9.0) & (z[None, :] > z_diaphragm - 70.0) & (z[None, :] < z_top - 20.0)
    ri, rk = np.nonzero(rib)
    keep = labels[ii[ri], jj[ri], rk] == L["torso"]
    tissue[ii[ri][keep], jj[ri][keep], rk[keep]] = Tissue.BONE
    sternum = (wall & (np.abs(x2) < 17.0) & (y2 < 0))[:, :, None] & ((z > z_diaphragm - 30) & (z < z_top - 25))
    tissue[sternum & (labels == L["torso"])] = Tissue.BONE

    # diaphragm domes (the right one higher, over the liver) and the liver below the right dome
    dome_l = z_diaphragm + 8.0 - 55.0 * (((x2 - 80.0) / 120.0) ** 2 + (y2 / 130.0) ** 2)
    dome_r = z_diaphragm + 24.0 - 55.0 * (((x2 + 80.0) / 120.0) ** 2 + (y2 / 130.0) ** 2)
    dome = np.where(x2 > 0, dome_l, dome_r)
    below = z[None, None, :] < dome[:, :, None]
    liver = below & (z[None, None, :] > dome[:, :, None] - 150.0) & (x2 < 50.0)[:, :, None]
    liver &= (depth > p.fat_thickness + 8.0)[:, :, None] & (tissue == Tissue.MUSCLE) & (labels == L["torso"])
    tissue[liver] = Tissue.LIVER

    # lungs: the pleural cavity (narrowing to the apices) minus mediastinum, spine, heart + 5 mm
    taper_start = z_top - 90.0
    taper2 = np.clip(1.0 - (np.clip(z - taper_start, 0.0, None) / (z_top - 10.0 - taper_start)) ** 2, 0.0, 1.0)
    inset = p.fat_thickness + CHEST_WALL
    cav_r2 = superellipse_radius(x2, y2, A - inset, B - inset, n) ** 2
    mediastinum = (np.abs(x2 - 5.0) < 22.0) | (r2 < (SPINE_RADIUS + 12.0) ** 2)
    lungs = ((cav_r2[:, :, None] <= taper2[None, None, :]) & ~below & ~mediastinum[:, :, None]
             & (labels == L["torso"]) & (z < z_top - 12.0)[None, None, :])
    near_heart = ndimage.distance_transform_edt(~heart, sampling=grid.spacing) <= LUNG_CLEARANCE_MM
    lungs[heart_window] &= ~near_heart
    labels[lungs & (x2 > LUNG_SPLIT_MM)[:, :, None]] = L["lung_left"]
    labels[lungs & (x2 <= LUNG_SPLIT_MM)[:, :, None]] = L["lung_right"]
    tissue[lungs] = Tissue.LUNG
