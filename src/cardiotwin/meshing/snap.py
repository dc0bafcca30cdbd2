"""Snapping mesh boundary nodes onto the true surface of a label-map structure.

A coarse element whose centroid is inside a structure only approximates its surface with a
sawtooth of element size. Each boundary node is moved onto the zero level set of the structure's
signed distance field (Newton steps x <- x - phi(x) grad(phi)/|grad(phi)|^2 on the trilinearly
interpolated field), with the move shortened or undone where it would spoil an adjacent element
(dihedral below ``min_dihedral`` or inversion). This is the surface projection step of lattice
meshers such as isosurface stuffing (Labelle & Shewchuk 2007, ACM Trans Graph 26:57).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiotwin.meshing.quality import min_dihedral_and_volume, undo_bad_moves
from cardiotwin.types import LabelImage, tet_signed_volumes


def signed_distance(mask: np.ndarray, spacing, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (mm, negative inside) of a mask sampled every ``step`` voxels, and its gradient."""
    sub = mask[::step, ::step, ::step]
    sp = np.asarray(spacing, dtype=float) * step
    phi = (ndimage.distance_transform_edt(~sub, sampling=sp) - ndimage.distance_transform_edt(sub, sampling=sp))
    phi = ndimage.gaussian_filter(phi.astype(np.float32), 0.7)  # remove the voxel staircase of the field
    grad = np.stack(np.gradient(phi, *sp), axis=0)
    return phi, grad


def snap_nodes(points: np.ndarray, cells: np.ndarray, nodes: np.ndarray, labels: LabelImage, mask: np.ndarray,
               step: int = 2, iterations: int = 3, min_dihedral: float = 8.0, max_move_mm: float | None = None) -> dict:
    """Move ``nodes`` (in place) onto the surface of ``mask`` (a boolean array on ``labels``' grid)."""
    if len(nodes) == 0:
        return {"snapped": 0, "kept": 0}
    phi, grad = signed_distance(mask, labels.spacing, step)
    watch = cells[np.isin(cells, nodes).any(axis=1)]
    sign = np.sign(tet_signed_volumes(points, watch))
    origin = points[nodes].copy()
    for _ in range(iterations):
        idx = labels.physical_to_index(points[nodes]) / step
        coords = idx.T
        value = ndimage.map_coordinates(phi, coords, order=1, mode="nearest")
        g = np.stack([ndimage.map_coordinates(grad[k], coords, order=1, mode="nearest") for k in range(3)], axis=1)
        g = g @ labels.direction.T  # index-aligned gradient -> physical frame
        move = -(value / np.maximum((g * g).sum(axis=1), 1e-6))[:, None] * g
        if max_move_mm is not None:
            total = points[nodes] + move - origin
            length = np.linalg.norm(total, axis=1)
            scale = np.minimum(1.0, max_move_mm / np.maximum(length, 1e-12))
            move = origin + total * scale[:, None] - points[nodes]
        before = points[nodes].copy()
        factor = np.ones(len(nodes))
        for _attempt in range(5):
            points[nodes] = before + factor[:, None] * move
            dihedral, volume = min_dihedral_and_volume(points, watch)
            bad = (np.sign(volume) != sign) | (dihedral < min_dihedral)
            if not bad.any():
                break
            culprit = np.isin(nodes, watch[bad])
            factor[culprit] *= 0.5
        points[nodes] = before + factor[:, None] * move
        whole = points.copy()  # nodes still spoiling an element after four halvings stay put
        whole[nodes] = before
        undo_bad_moves(points, whole, watch, sign, min_dihedral)
    idx = labels.physical_to_index(points[nodes]) / step
    residual = np.abs(ndimage.map_coordinates(phi, idx.T, order=1, mode="nearest"))
    return {"snapped": int(len(nodes)), "median_residual_mm": float(np.median(residual)),
            "p95_residual_mm": float(np.percentile(residual, 95))}
