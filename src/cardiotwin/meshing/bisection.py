"""Graded tetrahedral meshes by newest-vertex bisection of a Kuhn lattice.

Each tetrahedron (x0, x1, x2, x3) with tag k is bisected at the midpoint z of its refinement edge
(x0, xk) into (x0, ..., x(k-1), z, x(k+1), ..., x3) and (x1, ..., xk, z, x(k+1), ..., x3), both with
tag k-1 (3 after 1) (Maubach 1995, SIAM J Sci Comput 16:210; equivalently Kossaczky 1994). Started
from Kuhn simplices ordered along their cube diagonal with tag 3, every descendant is similar to one
of three shapes, so the quality of the initial lattice is kept at every level, and iterating
"bisect every element that has a hanging node" terminates with a conforming mesh (Stevenson 2008,
Math Comp 77:227). Three bisections halve the edge lengths.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _edge_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo.astype(np.int64) << 32 | hi.astype(np.int64)


class _Midpoints:
    """A growing sorted table edge-key -> midpoint node id."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.ids = np.zeros(0, dtype=np.int64)

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        keys = np.concatenate([self.keys, keys])
        ids = np.concatenate([self.ids, ids])
        order = np.argsort(keys, kind="stable")
        self.keys, self.ids = keys[order], ids[order]

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Midpoint id of each key, or -1."""
        if len(self.keys) == 0:
            return np.full(keys.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, self.ids[pos], -1)


_EDGES = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])


def _bisect(points: list[np.ndarray], cells: np.ndarray, tags: np.ndarray, gen: np.ndarray, mark: np.ndarray,
            mids: _Midpoints, n_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Bisect the marked elements once (vectorised); returns the new arrays and point count."""
    sel = np.flatnonzero(mark)
    c, k = cells[sel], tags[sel]
    a, b = c[:, 0], c[np.arange(len(sel)), k]
    keys = _edge_key(a, b)
    z = mids.find(keys)
    new = z < 0
    if new.any():
        uniq, inverse = np.unique(keys[new], return_inverse=True)
        first = np.zeros(len(uniq), dtype=np.int64)
        first[inverse] = np.flatnonzero(new)
        ids = n_points + np.arange(len(uniq))
        coords = points[0]
        points[0] = np.vstack([coords, 0.5 * (coords[a[first]] + coords[b[first]])])
        mids.add(uniq, ids)
        z[new] = ids[inverse]
        n_points += len(uniq)
    child1 = c.copy()
    child1[np.arange(len(sel)), k] = z
    child2 = np.empty_like(c)
    for kk in (1, 2, 3):  # T2 = (x1, ..., xk, z, x(k+1), ..., x3)
        rows = k == kk
        child2[rows, :kk] = c[rows, 1:kk + 1]
        child2[rows, kk] = z[rows]
        child2[rows, kk + 1:] = c[rows, kk + 1:]
    new_tag = np.where(k > 1, k - 1, 3)
    keep = ~mark
    cells = np.vstack([cells[keep], child1, child2])
    tags = np.concatenate([tags[keep], new_tag, new_tag])
    g = gen[sel] + 1
    gen = np.concatenate([gen[keep], g, g])
    return cells, tags, gen, n_points


def _hanging(cells: np.ndarray, mids: _Midpoints) -> np.ndarray:
    """Elements with a bisected edge (a hanging node)."""
    if len(mids.keys) == 0:
        return np.zeros(len(cells), dtype=bool)
    keys = _edge_key(cells[:, _EDGES[:, 0]], cells[:, _EDGES[:, 1]])
    return (mids.find(keys) >= 0).any(axis=1)


def refine_to_size(points: np.ndarray, cells: np.ndarray, base_size: float,
                   target: Callable[[np.ndarray], np.ndarray], max_levels: int = 30):
    """Bisect a path-ordered Kuhn mesh until every element is no larger than ``target(centroid)``.

    An element ``g`` bisections below its Kuhn root of cube size ``base_size`` has size
    ``base_size * 2**(-g/3)``. Returns (points, cells, generation); cells keep the bisection order
    (orient them afterwards).
    """
    pts = [np.asarray(points, dtype=float)]
    cells = np.asarray(cells, dtype=np.int64)
    tags = np.full(len(cells), 3, dtype=np.int8)
    gen = np.zeros(len(cells), dtype=np.int16)
    mids = _Midpoints()
    n_points = len(pts[0])
    for _ in range(max_levels):
        size = base_size * 2.0 ** (-gen / 3.0)
        mark = size > target(pts[0][cells].mean(axis=1)) * (1 + 1e-9)
        if not mark.any():
            break
        cells, tags, gen, n_points = _bisect(pts, cells, tags, gen, mark, mids, n_points)
        while True:  # conforming closure
            hang = _hanging(cells, mids)
            if not hang.any():
                break
            cells, tags, gen, n_points = _bisect(pts, cells, tags, gen, hang, mids, n_points)
    return pts[0], cells, gen
