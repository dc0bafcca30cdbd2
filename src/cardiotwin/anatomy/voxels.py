"""Voxel-level helpers shared by the anatomy stages: bounding windows, face contacts, geodesic
distances inside a mask, connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

_OFFSETS_26 = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                        if (i, j, k) > (0, 0, 0)])


def window(mask_or_slices, shape: tuple[int, int, int], margin_vox) -> tuple[slice, slice, slice]:
    """Bounding slices of a mask (or given slices) grown by ``margin_vox`` voxels per axis, clipped."""
    if isinstance(mask_or_slices, tuple):
        sl = mask_or_slices
    else:
        found = ndimage.find_objects(np.asarray(mask_or_slices, dtype=np.uint8))
        if not found or found[0] is None:
            return (slice(0, 0),) * 3  # type: ignore[return-value]
        sl = found[0]
    margin = np.broadcast_to(np.ceil(margin_vox).astype(int), (3,))
    return tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(sl, margin, shape))  # type: ignore


def label_windows(labels: np.ndarray) -> dict[int, tuple[slice, slice, slice]]:
    """Bounding slices of every label value present (one pass over the volume)."""
    found = ndimage.find_objects(labels.astype(np.int32))
    return {value + 1: sl for value, sl in enumerate(found) if sl is not None}


def touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Voxels of mask ``a`` that share a face with a voxel of mask ``b``."""
    out = np.zeros_like(a, dtype=bool)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= a[tuple(lo)] & b[tuple(hi)]
        out[tuple(hi)] |= a[tuple(hi)] & b[tuple(lo)]
    return out


def geodesic_distance(mask: np.ndarray, seeds: np.ndarray, spacing, limit: float = np.inf) -> np.ndarray:
    """Shortest-path distance (mm) from ``seeds`` to every voxel of ``mask`` through ``mask`` only.

    Dijkstra on the 26-neighbour voxel graph with Euclidean step lengths (a chamfer metric that
    overestimates straight-line distances by at most ~8 %). Voxels not reached get +inf.
    """
    idx = -np.ones(mask.shape, dtype=np.int64)
    coords = np.argwhere(mask)
    idx[tuple(coords.T)] = np.arange(len(coords))
    rows, cols, weights = [], [], []
    sp = np.asarray(spacing, dtype=float)
    for off in _OFFSETS_26:
        nb = coords + off
        ok = np.all((nb >= 0) & (nb < mask.shape), axis=1)
        src, dst = np.flatnonzero(ok), idx[tuple(nb[ok].T)]
        keep = dst >= 0
        rows.append(src[keep])
        cols.append(dst[keep])
        weights.append(np.full(keep.sum(), np.linalg.norm(off * sp)))
    n = len(coords)
    graph = sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    seed_ids = idx[tuple(np.argwhere(seeds & mask).T)]
    dist = np.full(mask.shape, np.inf)
    if len(seed_ids) == 0:
        return dist
    d = csgraph.dijkstra(graph, directed=False, indices=seed_ids, min_only=True, limit=limit)
    dist[tuple(coords.T)] = d
    return dist


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected components: (component image, voxel count per component, largest first)."""
    comp, n = ndimage.label(mask)
    if n == 0:
        return comp, np.zeros(0, dtype=np.int64)
    counts = np.bincount(comp.ravel())[1:]
    order = np.argsort(-counts)
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[order + 1] = np.arange(1, n + 1)
    return remap[comp], counts[order]
