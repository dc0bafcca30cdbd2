"""Uniform (red) refinement of a tetrahedral mesh: every tetrahedron split into 8 through its edge
midpoints (Bey 1995, Computing 55:355), the inner octahedron cut along one diagonal. Used to make
fine reference solutions on the same geometry: the original nodes keep their indices."""

from __future__ import annotations

import numpy as np

from cardiotwin.meshing.topology import EDGES
from cardiotwin.types import tet_signed_volumes

# children in terms of local ids: 0-3 the vertices, 4-9 the midpoints of EDGES (01, 02, 03, 12, 13, 23)
_CHILDREN = np.array([
    (0, 4, 5, 6), (4, 1, 7, 8), (5, 7, 2, 9), (6, 8, 9, 3),  # corner tets
    (5, 8, 4, 7), (5, 8, 7, 9), (5, 8, 9, 6), (5, 8, 6, 4),  # the octahedron around the diagonal m02-m13
])


def refine_uniform(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, cells, parent): the first ``len(points)`` nodes are the original ones; ``parent`` gives
    each child's original cell (to carry cell fields); children are positively oriented."""
    e = np.sort(cells[:, EDGES], axis=2).astype(np.int64)  # (m, 6, 2)
    key = e[..., 0] << 32 | e[..., 1]
    uniq, inverse = np.unique(key.ravel(), return_inverse=True)
    mids = len(points) + inverse.reshape(-1, 6)
    pairs = np.stack([uniq >> 32, uniq & 0xFFFFFFFF], axis=1)
    new_points = np.vstack([points, 0.5 * (points[pairs[:, 0]] + points[pairs[:, 1]])])
    local = np.concatenate([cells, mids], axis=1)  # (m, 10)
    children = local[:, _CHILDREN].reshape(-1, 4)
    neg = tet_signed_volumes(new_points, children) < 0
    children[neg] = children[neg][:, [0, 2, 1, 3]]
    return new_points, children, np.repeat(np.arange(len(cells)), 8)
