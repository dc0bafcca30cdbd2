"""Mesh topology: unique faces with their owning cells, edges, node adjacency."""

from __future__ import annotations

import numpy as np
from scipy import sparse

FACES = np.array([(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)])  # face f is opposite vertex f
EDGES = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])


def _keys(sorted_triples: np.ndarray, n_nodes: int) -> np.ndarray:
    if n_nodes >= 1 << 21:
        base = np.int64(n_nodes)
        return (sorted_triples[:, 0] * base + sorted_triples[:, 1]) * base + sorted_triples[:, 2]
    t = sorted_triples.astype(np.int64)
    return t[:, 0] << 42 | t[:, 1] << 21 | t[:, 2]


def unique_faces(cells: np.ndarray, n_nodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unique triangular faces and the (up to two) cells owning each: (faces (F, 3), owners (F, 2)).

    ``owners[:, 1] == -1`` marks boundary faces. ``faces`` keep the vertex order of their first owner.
    """
    n_nodes = int(cells.max()) + 1 if n_nodes is None else n_nodes
    tri = cells[:, FACES].reshape(-1, 3)
    if n_nodes >= 1 << 21 and n_nodes ** 3 >= 1 << 62:
        raise ValueError("mesh too large for 64-bit face keys")
    keys = _keys(np.sort(tri, axis=1), n_nodes)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    count = np.diff(np.r_[start, len(k)])
    if count.max() > 2:
        raise ValueError(f"non-manifold mesh: a face is shared by {count.max()} tetrahedra")
    first = order[start]
    owners = np.full((len(start), 2), -1, dtype=np.int64)
    owners[:, 0] = first // 4
    two = count == 2
    owners[two, 1] = order[start[two] + 1] // 4
    return tri[first], owners


def unique_edges(cells: np.ndarray) -> np.ndarray:
    """Unique edges (E, 2), each sorted."""
    e = np.sort(cells[:, EDGES].reshape(-1, 2), axis=1).astype(np.int64)
    key = e[:, 0] << 32 | e[:, 1]
    _, idx = np.unique(key, return_index=True)
    return e[idx]


def adjacency(edges: np.ndarray, n_nodes: int) -> sparse.csr_matrix:
    """Symmetric node adjacency (1 per edge)."""
    ones = np.ones(len(edges))
    a = sparse.coo_matrix((ones, (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    a = (a + a.T).tocsr()
    a.data[:] = 1.0
    return a


def _edge_keys(cells: np.ndarray) -> np.ndarray:
    e = np.sort(cells[:, EDGES], axis=2).astype(np.int64)
    return e[..., 0] << 32 | e[..., 1]


def boundary_edge_use(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique edge keys of a triangle set and how many triangles use each (2 = manifold, closed)."""
    e = np.sort(np.vstack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [0, 2]]]), axis=1).astype(np.int64)
    return np.unique(e[:, 0] << 32 | e[:, 1], return_counts=True)


def fill_to_manifold(cells: np.ndarray, inside: np.ndarray, max_rounds: int = 20) -> np.ndarray:
    """Grow a subset of cells until its boundary surface is edge-manifold (every boundary edge in
    exactly two boundary triangles): cells around a pinched edge are added to the subset."""
    inside = inside.copy()
    faces, owners = unique_faces(cells)
    keys = _edge_keys(cells)
    for _ in range(max_rounds):
        in0 = inside[owners[:, 0]]
        in1 = np.where(owners[:, 1] >= 0, inside[np.maximum(owners[:, 1], 0)], False)
        edge, use = boundary_edge_use(faces[in0 != in1])
        pinched = edge[use > 2]
        if len(pinched) == 0:
            return inside
        inside |= np.isin(keys, pinched).any(axis=1)
    return inside
