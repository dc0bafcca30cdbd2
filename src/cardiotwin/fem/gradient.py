"""Gradients of P1 fields on tetrahedra: exact per-cell gradients and recovered nodal gradients.

A P1 field is linear on each tetrahedron, so its gradient there is the constant
sum_a u_a grad(lambda_a) (exact for fields that are linear in space). Nodal gradients are the
volume-weighted average of the adjacent cells' gradients, the simple averaging recovery of
Zienkiewicz & Zhu (1992, Int J Numer Methods Eng 33:1331), which reproduces linear fields exactly
and is what LDRB fibre construction uses to carry Laplace-solution gradients to the nodes
(Bayer et al. 2012, Ann Biomed Eng 40:2243).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cardiotwin.errors import InvalidSystemError
from cardiotwin.fem.assembly import _shape_of, check_mesh

__all__ = ["cell_gradients", "nodal_gradients"]


def _field(u: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise InvalidSystemError(f"the nodal field must have shape ({n},) or ({n}, k), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidSystemError(f"the nodal field has {int((~np.isfinite(arr)).sum())} NaN/inf values")
    return arr


def cell_gradients(
    points: np.ndarray,
    cells: np.ndarray,
    u: np.ndarray,
    *,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Gradient of a P1 field in every cell: (m, 3) for ``u`` (n,), (m, k, 3) for ``u`` (n, k).

    Units: units of ``u`` per mm. ``shape``: precomputed :func:`shape_gradients` output.
    """
    pts, cel = check_mesh(points, cells)
    f = _field(u, len(pts))
    grads = _shape_of(pts, cel, shape)[0]
    if f.ndim == 1:
        return np.einsum("mad,ma->md", grads, f[cel])
    return np.einsum("mad,mak->mkd", grads, f[cel])


def nodal_gradients(
    points: np.ndarray,
    cells: np.ndarray,
    u: np.ndarray,
    *,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Volume-weighted average of the adjacent cells' gradients at every node: (n, 3) or (n, k, 3).

    Nodes that belong to no cell get NaN.
    """
    pts, cel = check_mesh(points, cells)
    shp = _shape_of(pts, cel, shape)
    g = cell_gradients(pts, cel, u, shape=shp)
    vol = shp[1]
    m, n = len(cel), len(pts)
    # node-by-cell incidence weighted by cell volume: one sparse product sums every field at once
    inc = sp.csr_matrix((np.repeat(vol, 4), (cel.ravel(), np.repeat(np.arange(m), 4))), shape=(n, m))
    total = np.asarray(inc.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (inc @ g.reshape(m, -1)) / total[:, None]
    out[total == 0] = np.nan
    return out.reshape((n,) + g.shape[1:])
