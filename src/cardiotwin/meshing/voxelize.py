"""Tetrahedral mesh -> label map: each voxel centre takes the tag of the element containing it."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cardiotwin.meshing.locate import locate
from cardiotwin.types import LabelImage, TetMesh


def voxelize(mesh: TetMesh, spacing_mm: float = 1.0, margin_mm: float = 3.0, chunk: int = 1_000_000) -> LabelImage:
    """An axis-aligned label map (LPS, isotropic ``spacing_mm``) of the mesh's region tags."""
    lo = mesh.points.min(axis=0) - margin_mm
    hi = mesh.points.max(axis=0) + margin_mm
    shape = np.ceil((hi - lo) / spacing_mm).astype(int)
    axes = [lo[k] + spacing_mm * (np.arange(shape[k]) + 0.5) for k in range(3)]
    out = np.zeros(shape, dtype=np.int16)
    tree = cKDTree(mesh.points[mesh.cells].mean(axis=1))
    flat = out.reshape(-1)
    total = int(np.prod(shape))
    for start in range(0, total, chunk):
        idx = np.arange(start, min(start + chunk, total))
        ijk = np.unravel_index(idx, shape)
        q = np.stack([axes[k][ijk[k]] for k in range(3)], axis=1)
        element, _ = locate(mesh.points, mesh.cells, q, k=8, tree=tree)
        hit = element >= 0
        flat[idx[hit]] = mesh.tags[element[hit]]
    origin = tuple(lo + 0.5 * spacing_mm)
    return LabelImage(out, (spacing_mm,) * 3, origin)
