"""Rasterise solids into a label map (painter's algorithm with per-structure overwrite rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cardiotwin.phantom.shapes import Grid


@dataclass(frozen=True)
class Paint:
    """Paint ``label``/``tissue`` inside the union of ``solids`` over voxels whose label is in
    ``overwrite`` (``None``: over anything)."""

    solids: Sequence
    label: int
    tissue: int
    overwrite: tuple[int, ...] | None = None


def paint(labels: np.ndarray, tissue: np.ndarray, grid: Grid, op: Paint) -> None:
    for solid in op.solids:
        win = grid.window(*solid.bbox())
        inside = solid.inside(grid, win)
        region = labels[win]
        if op.overwrite is not None:
            inside = inside & np.isin(region, op.overwrite)
        region[inside] = op.label
        tissue[win][inside] = op.tissue
