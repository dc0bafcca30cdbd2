"""Peers and error measures shared by the eikonal benchmarks (CPU and GPU)."""

from __future__ import annotations

import numpy as np

from cardiotwin.electrophysiology.eikonal import metric_tensors

PAIRS = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])


def dijkstra_times(points: np.ndarray, cells: np.ndarray, fibres: np.ndarray, vel, sources: np.ndarray,
                   starts: np.ndarray, regions: np.ndarray | None = None) -> np.ndarray:
    """Edge-graph shortest paths (scipy csgraph) with anisotropic edge weights: the metric length of
    each edge, the smallest over its cells. ``vel`` is one (v_f, v_s, v_n) or a table indexed by
    ``regions`` (per cell)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    v = np.asarray(vel, dtype=np.float64)
    if regions is not None:
        v = v[np.asarray(regions)]
    metric = metric_tensors(fibres, v)
    a = cells[:, PAIRS[:, 0]].ravel()
    b = cells[:, PAIRS[:, 1]].ravel()
    e = (points[b] - points[a]).reshape(-1, 6, 3)
    w = np.sqrt(np.einsum("mei,mij,mej->me", e, metric, e)).ravel()
    n = len(points)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    key = lo * n + hi
    order = np.lexsort((w, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]  # the smallest weight of each edge
    # a virtual root joined to each source by its start time makes differing start times exact
    starts = np.asarray(starts, dtype=np.float64)
    rows = np.concatenate([lo[sel], hi[sel], np.full(len(sources), n)])
    cols = np.concatenate([hi[sel], lo[sel], sources])
    vals = np.concatenate([w[sel], w[sel], starts - starts.min() + 1e-12])
    graph = coo_matrix((vals, (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    return dijkstra(graph, directed=True, indices=n)[:n] + starts.min()


def rel_errors(t: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict:
    """Relative (max, mean) and mean absolute (ms) error of ``t`` against ``ref`` over ``mask``."""
    rel = np.abs(t[mask] - ref[mask]) / np.maximum(ref[mask], 1e-9)
    return {"max_rel": float(rel.max()), "mean_rel": float(rel.mean()),
            "mean_abs_ms": float(np.abs(t[mask] - ref[mask]).mean())}
