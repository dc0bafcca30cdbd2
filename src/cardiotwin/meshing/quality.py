"""Element quality: dihedral angles, radius ratio, and a mesh quality report (Numba kernels)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from cardiotwin.meshing.topology import unique_edges

_FACES = np.array([(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)])  # face f opposite vertex f
_EDGE_PAIRS = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
_OPPOSITE = np.array([(2, 3), (1, 3), (1, 2), (0, 3), (0, 2), (0, 1)])  # faces meeting at each edge


@njit(cache=True)
def _tet(points, cell, dihedral, want_all):
    """Fill ``dihedral`` (6 angles, degrees) and return (signed volume, 3 r_in / r_circ)."""
    p = np.empty((4, 3))
    for i in range(4):
        for k in range(3):
            p[i, k] = points[cell[i], k]
    n = np.empty((4, 3))
    area = 0.0
    for f in range(4):
        a, b, c = _FACES[f, 0], _FACES[f, 1], _FACES[f, 2]
        u0, u1, u2 = p[b, 0] - p[a, 0], p[b, 1] - p[a, 1], p[b, 2] - p[a, 2]
        v0, v1, v2 = p[c, 0] - p[a, 0], p[c, 1] - p[a, 1], p[c, 2] - p[a, 2]
        x, y, z = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
        w = (p[f, 0] - p[a, 0]) * x + (p[f, 1] - p[a, 1]) * y + (p[f, 2] - p[a, 2]) * z
        norm = np.sqrt(x * x + y * y + z * z)
        area += 0.5 * norm
        s = (-1.0 if w > 0 else 1.0) / (norm + 1e-300)  # outward unit normal
        n[f, 0], n[f, 1], n[f, 2] = s * x, s * y, s * z
    for e in range(6):
        i, j = _OPPOSITE[e, 0], _OPPOSITE[e, 1]
        c = -(n[i, 0] * n[j, 0] + n[i, 1] * n[j, 1] + n[i, 2] * n[j, 2])
        dihedral[e] = np.degrees(np.arccos(min(1.0, max(-1.0, c))))
    d0 = p[1] - p[0]
    d1 = p[2] - p[0]
    d2 = p[3] - p[0]
    vol = (d0[0] * (d1[1] * d2[2] - d1[2] * d2[1]) - d0[1] * (d1[0] * d2[2] - d1[2] * d2[0])
           + d0[2] * (d1[0] * d2[1] - d1[1] * d2[0])) / 6.0
    if not want_all:
        return vol, 0.0
    # circumradius from products of opposite edges: R = sqrt(s(s-aA)(s-bB)(s-cC)) / (6V)
    le = np.empty(6)
    for e in range(6):
        i, j = _EDGE_PAIRS[e, 0], _EDGE_PAIRS[e, 1]
        le[e] = np.sqrt((p[i, 0] - p[j, 0]) ** 2 + (p[i, 1] - p[j, 1]) ** 2 + (p[i, 2] - p[j, 2]) ** 2)
    aa, bb, cc = le[0] * le[5], le[1] * le[4], le[2] * le[3]
    s = 0.5 * (aa + bb + cc)
    prod = max(s * (s - aa) * (s - bb) * (s - cc), 0.0)
    av = abs(vol)
    if av <= 0.0:
        return vol, 0.0
    r_in = 3.0 * av / area
    r_circ = np.sqrt(prod) / (6.0 * av)
    return vol, min(1.0, 3.0 * r_in / max(r_circ, 1e-300))


@njit(parallel=True, cache=True)
def _metrics(points, cells, dihedral, volume, ratio, want_all):
    for t in prange(cells.shape[0]):
        volume[t], ratio[t] = _tet(points, cells[t], dihedral[t], want_all)


def tet_metrics(points: np.ndarray, cells: np.ndarray, ratio: bool = True):
    """(dihedral angles (m, 6) in degrees, signed volumes (m,), radius ratios (m,) or None)."""
    m = len(cells)
    dih, vol, rr = np.empty((m, 6)), np.empty(m), np.empty(m)
    _metrics(np.ascontiguousarray(points, dtype=np.float64), np.ascontiguousarray(cells, dtype=np.int64),
             dih, vol, rr, ratio)
    return dih, vol, (rr if ratio else None)


def dihedral_angles(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The 6 interior dihedral angles (degrees) of each tetrahedron: (m, 6)."""
    return tet_metrics(points, cells, ratio=False)[0]


def min_dihedral_and_volume(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest dihedral angle (degrees) and signed volume of each tetrahedron."""
    dih, vol, _ = tet_metrics(points, cells, ratio=False)
    return dih.min(axis=1), vol


def undo_bad_moves(points: np.ndarray, start: np.ndarray, cells: np.ndarray, sign: np.ndarray,
                   min_dihedral: float) -> int:
    """Move nodes back to ``start`` until no element of ``cells`` is inverted (orientation differs
    from ``sign``) or has a dihedral angle below ``min_dihedral`` -- unless it already was at
    ``start``. Returns the number of nodes moved back. Terminates: every round moves at least one
    node back, and the start state is accepted."""
    undone = 0
    while True:
        dihedral, volume = min_dihedral_and_volume(points, cells)
        bad = (np.sign(volume) != sign) | (dihedral < min_dihedral)
        if not bad.any():
            return undone
        nodes = np.unique(cells[bad])
        nodes = nodes[np.any(points[nodes] != start[nodes], axis=1)]
        if len(nodes) == 0:
            return undone
        points[nodes] = start[nodes]
        undone += len(nodes)


def radius_ratio(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """3 r_in / r_circ: 1 for the regular tetrahedron, 0 for a degenerate one."""
    return tet_metrics(points, cells)[2]


def quality_report(points: np.ndarray, cells: np.ndarray) -> dict:
    """Counts, edge lengths, dihedral angles, radius-ratio histogram, inverted/zero-volume tets."""
    dih, vol, rr = tet_metrics(points, cells)
    e = unique_edges(cells)
    edges = np.linalg.norm(points[e[:, 0]] - points[e[:, 1]], axis=1)
    hist, bins = np.histogram(rr, bins=np.linspace(0, 1, 11))
    return {
        "nodes": int(len(np.unique(cells))),
        "tets": int(len(cells)),
        "edge_mm": {"min": float(edges.min()), "mean": float(edges.mean()), "max": float(edges.max())},
        "dihedral_deg": {"min": float(dih.min()), "median": float(np.median(dih)), "max": float(dih.max())},
        "radius_ratio": {"min": float(rr.min()), "median": float(np.median(rr)),
                         "histogram": {f"{bins[i]:.1f}-{bins[i + 1]:.1f}": int(h) for i, h in enumerate(hist)}},
        "inverted": int((vol < 0).sum()),
        "zero_volume": int((np.abs(vol) <= 1e-12).sum()),
    }
