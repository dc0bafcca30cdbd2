"""Point location in a tetrahedral mesh and barycentric interpolation between meshes.

Candidate elements come from a k-d tree of element centroids (scipy.spatial.cKDTree); the
containing element is the candidate whose barycentric coordinates are all >= -tol. Points outside
the mesh get element -1 (or, with ``clamp``, the nearest candidate's clipped coordinates).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _barycentric(points: np.ndarray, cells: np.ndarray, cand: np.ndarray, q: np.ndarray) -> np.ndarray:
    p = points[cells[cand]]  # (..., 4, 3)
    t = np.stack([p[..., 1, :] - p[..., 0, :], p[..., 2, :] - p[..., 0, :], p[..., 3, :] - p[..., 0, :]], axis=-1)
    lam = np.linalg.solve(t, (q - p[..., 0, :])[..., None])[..., 0]
    return np.concatenate([1.0 - lam.sum(axis=-1, keepdims=True), lam], axis=-1)


def locate(points: np.ndarray, cells: np.ndarray, queries: np.ndarray, k: int = 16, tol: float = 1e-9,
           clamp: bool = False, tree: cKDTree | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Containing element (m,) and barycentric coordinates (m, 4) of each query point."""
    q = np.atleast_2d(np.asarray(queries, dtype=float))
    tree = tree or cKDTree(points[cells].mean(axis=1))
    k = min(k, len(cells))
    _, cand = tree.query(q, k=k)
    cand = cand.reshape(len(q), k)
    bary = _barycentric(points, cells, cand, q[:, None, :])
    worst = bary.min(axis=2)
    best = np.argmax(worst, axis=1)
    rows = np.arange(len(q))
    element = cand[rows, best]
    coords = bary[rows, best]
    outside = worst[rows, best] < -tol
    if clamp:
        coords = np.clip(coords, 0.0, None)
        coords /= coords.sum(axis=1, keepdims=True)
    else:
        element = np.where(outside, -1, element)
    return element, coords


def interpolate(points: np.ndarray, cells: np.ndarray, values: np.ndarray, queries: np.ndarray,
                clamp: bool = True) -> np.ndarray:
    """P1 interpolation of nodal ``values`` (n, ...) at ``queries``; NaN outside unless ``clamp``."""
    element, coords = locate(points, cells, queries, clamp=clamp)
    vals = np.asarray(values, dtype=float)
    out = np.einsum("mk,mk...->m...", coords, vals[cells[np.maximum(element, 0)]])
    if not clamp:
        out[element < 0] = np.nan
    return out
