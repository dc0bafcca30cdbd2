"""Rasterise solids into a label map and grow walls of given thickness around blood pools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from cardiotwin.phantom.shapes import Grid, union_bbox


@dataclass(frozen=True)
class Paint:
    """Paint ``label``/``tissue`` inside the union of ``solids`` over voxels whose label is in
    ``overwrite`` (``None``: over anything)."""

    solids: Sequence
    label: int
    tissue: int
    overwrite: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Wall:
    """A wall of ``label`` grown outward from the voxels of ``pools`` into empty (label 0) voxels.

    ``thickness(x, y, z)`` gives the local thickness in mm (a smooth field, so that the wall is not
    a constant-offset copy of its pool); ``solids`` bound the pool, to limit the distance transform.
    Pool voxels closer than the wall thickness to a ``keep_apart`` label are emptied first, so two
    lumens that touch get walls between them instead of merging.
    """

    label: int
    tissue: int
    pools: tuple[int, ...]
    thickness: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    max_thickness: float
    solids: Sequence
    keep_apart: tuple[int, ...] = ()


def paint(labels: np.ndarray, tissue: np.ndarray, grid: Grid, op: Paint) -> None:
    for solid in op.solids:
        win = grid.window(*solid.bbox())
        inside = solid.inside(grid, win)
        region = labels[win]
        if op.overwrite is not None:
            inside = inside & np.isin(region, op.overwrite)
        region[inside] = op.label
        tissue[win][inside] = op.tissue


def grow_walls(labels: np.ndarray, tissue: np.ndarray, grid: Grid, walls: Sequence[Wall]) -> None:
    """Grow all walls at once; a voxel claimed by several goes to the one it is relatively closest to
    (smallest distance / local thickness)."""
    spacing = grid.spacing
    pad = np.asarray(spacing) * 2
    windows = []
    for wall in walls:
        lo, hi = union_bbox(wall.solids)
        windows.append(grid.window(lo - wall.max_thickness - pad, hi + wall.max_thickness + pad))
    for wall, win in zip(walls, windows):
        region = labels[win]
        foreign = np.isin(region, wall.keep_apart)
        if foreign.any():
            near = ndimage.distance_transform_edt(~foreign, sampling=spacing) <= wall.thickness(*grid.coords(win))
            region[near & np.isin(region, wall.pools)] = 0
    claims = []
    for wall, win in zip(walls, windows):
        region = labels[win]
        dist = ndimage.distance_transform_edt(~np.isin(region, wall.pools), sampling=spacing)
        ratio = dist / wall.thickness(*grid.coords(win))
        ratio[(dist == 0) | (region != 0)] = np.inf
        claims.append((win, ratio, wall))
    lo = [min(c[0][k].start for c in claims) for k in range(3)]
    hi = [max(c[0][k].stop for c in claims) for k in range(3)]
    roi = tuple(slice(a, b) for a, b in zip(lo, hi))
    best = np.full([b - a for a, b in zip(lo, hi)], np.inf, dtype=np.float32)
    owner = np.full(best.shape, -1, dtype=np.int16)
    for index, (win, ratio, _) in enumerate(claims):
        local = tuple(slice(w.start - r.start, w.stop - r.start) for w, r in zip(win, roi))
        better = ratio < best[local]
        best[local][better] = ratio[better]
        owner[local][better] = index
    won = best <= 1.0
    for index, (_, _, wall) in enumerate(claims):
        mine = won & (owner == index)
        labels[roi][mine] = wall.label
        tissue[roi][mine] = wall.tissue
