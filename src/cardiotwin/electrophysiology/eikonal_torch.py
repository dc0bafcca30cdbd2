"""Batched eikonal activation on a GPU (PyTorch): many parameter sets at once, for calibration.

The same tetrahedral local solver as :mod:`cardiotwin.electrophysiology.eikonal` (the minimum over
the opposite face, its edges and vertices of ``T(p) + |x - p|_M``; Fu, Kirby & Whitaker 2013), but
swept Jacobi-style: every iteration updates every vertex of every tetrahedron from the current times
of the other three, for all parameter sets of the batch in parallel, until no time drops by more
than ``tol``. This is the massively parallel form of the Fast Iterative Method (the same fixed point,
reached in a number of sweeps proportional to the activation time over the smallest element travel
time), which suits a GPU; on a 2-core CPU the heap-ordered Numba solver is faster.

This solver is the plain scheme (no source factorisation), i.e. fim-python's discretisation; its
difference to the factored CPU solver is measured in ``benchmarks/bench_eikonal_gpu.py``.
Transverse isotropy: velocities (v_fibre, v_transverse) per region. Needs ``pip install torch``.
"""

from __future__ import annotations

import numpy as np

EDGE_PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
OTHERS = ((1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2))
# for the update of vertex i: edges (i-k1, i-k2, i-k3, k1-k2, k1-k3, k2-k3) in EDGE_PAIRS numbering
GRAM_EDGES = ((0, 1, 2, 3, 4, 5), (0, 3, 4, 1, 2, 5), (1, 3, 5, 0, 2, 4), (2, 4, 5, 0, 1, 3))
UNREACHED = 1e6  # ms: stands for +inf inside the sweep (far above any activation time)


def _edge(torch, ta, tb, la, lb, lab):
    """Interior minimum over the segment [a, b] (or +big where it is not interior)."""
    gaa, gbb, qab = la * la, lb * lb, lab * lab
    gab = 0.5 * (gaa + gbb - qab)
    det = gaa * gbb - gab * gab
    base = torch.minimum(ta, tb)
    sa, sb = ta - base, tb - base
    csa = gbb * sa - gab * sb
    csb = gaa * sb - gab * sa
    bb = csa + csb
    disc = bb * bb - qab * (sa * csa + sb * csb - det)
    mu = (bb + torch.sqrt(torch.clamp(disc, min=0.0))) / torch.clamp(qab, min=1e-30)
    ok = (disc > 0) & (det > 0) & ((gbb - gab) * mu - csa >= 0) & ((gaa - gab) * mu - csb >= 0)
    return torch.where(ok, mu + base, torch.full_like(mu, 2 * UNREACHED))


def _face(torch, t1, t2, t3, l1, l2, l3, l12, l13, l23):
    """Minimum over the triangle of T(p) + |x - p|_M: min of the vertex, edge and interior candidates."""
    best = torch.minimum(torch.minimum(t1 + l1, t2 + l2), t3 + l3)
    best = torch.minimum(best, _edge(torch, t1, t2, l1, l2, l12))
    best = torch.minimum(best, _edge(torch, t1, t3, l1, l3, l13))
    best = torch.minimum(best, _edge(torch, t2, t3, l2, l3, l23))
    g11, g22, g33 = l1 * l1, l2 * l2, l3 * l3
    g12 = 0.5 * (g11 + g22 - l12 * l12)
    g13 = 0.5 * (g11 + g33 - l13 * l13)
    g23 = 0.5 * (g22 + g33 - l23 * l23)
    c11, c22, c33 = g22 * g33 - g23 * g23, g11 * g33 - g13 * g13, g11 * g22 - g12 * g12
    c12, c13, c23 = g13 * g23 - g12 * g33, g12 * g23 - g13 * g22, g12 * g13 - g11 * g23
    det = g11 * c11 + g12 * c12 + g13 * c13
    base = torch.minimum(t1, torch.minimum(t2, t3))
    s1, s2, s3 = t1 - base, t2 - base, t3 - base
    r1, r2, r3 = c11 + c12 + c13, c12 + c22 + c23, c13 + c23 + c33
    aa = r1 + r2 + r3
    cs1 = c11 * s1 + c12 * s2 + c13 * s3
    cs2 = c12 * s1 + c22 * s2 + c23 * s3
    cs3 = c13 * s1 + c23 * s2 + c33 * s3
    bb = cs1 + cs2 + cs3
    disc = bb * bb - aa * (s1 * cs1 + s2 * cs2 + s3 * cs3 - det)
    mu = (bb + torch.sqrt(torch.clamp(disc, min=0.0))) / torch.where(aa > 0, aa, torch.ones_like(aa))
    ok = (det > 0) & (disc > 0) & (aa > 0) & (mu * r1 - cs1 >= 0) & (mu * r2 - cs2 >= 0) & (mu * r3 - cs3 >= 0)
    return torch.where(ok, torch.minimum(best, mu + base), best)


CHECK_EVERY = 8


def _sweep(t, cells, lengths, flat):
    """One Jacobi sweep: every vertex of every cell updated from the other three (b, n) -> (b, n)."""
    import torch

    tc = t[:, cells]  # (b, m, 4)
    candidates = []
    for i in range(4):
        o, g = OTHERS[i], GRAM_EDGES[i]
        candidates.append(_face(torch, tc[..., o[0]], tc[..., o[1]], tc[..., o[2]],
                                *(lengths[..., g[j]] for j in range(6))))
    new = t.clone()
    new.scatter_reduce_(1, flat.expand(t.shape[0], -1), torch.cat(candidates, dim=1), reduce="amin")
    return new


class TorchEikonal:
    """Batched plain-FIM activation on one mesh; topology and edge geometry kept on the device."""

    def __init__(self, points: np.ndarray, cells: np.ndarray, fibres: np.ndarray, regions: np.ndarray,
                 device: str = "cuda", dtype=None):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        p = np.asarray(points, dtype=np.float64)
        c = np.asarray(cells, dtype=np.int64)
        f = np.asarray(fibres, dtype=np.float64)
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        e = np.stack([p[c[:, b]] - p[c[:, a]] for a, b in EDGE_PAIRS], axis=1)  # (m, 6, 3)
        self.e2 = torch.as_tensor((e * e).sum(-1), dtype=self.dtype, device=self.device)
        self.ef2 = torch.as_tensor(np.einsum("mki,mi->mk", e, f) ** 2, dtype=self.dtype, device=self.device)
        self.cells = torch.as_tensor(c, device=self.device)
        self.regions = torch.as_tensor(np.asarray(regions, dtype=np.int64), device=self.device)
        self.n = len(p)

    def _compiled_sweep(self):
        """The sweep fused into a few GPU kernels by torch.compile (plain PyTorch on CPU)."""
        if self.device.type != "cuda":
            return _sweep
        if not hasattr(self, "_sweep_fn"):
            self._sweep_fn = self.torch.compile(_sweep, dynamic=False)
        return self._sweep_fn

    def solve_batch(self, velocities: np.ndarray, sources: list[np.ndarray], start_times: list[np.ndarray],
                    tol: float = 1e-3, max_iterations: int = 5000) -> tuple[np.ndarray, int]:
        """Activation times (b, n) for velocities (b, R, 2) = (v_fibre, v_transverse) per region and
        node sources with start times per parameter set; returns (times, sweeps)."""
        torch = self.torch
        vel = torch.as_tensor(np.asarray(velocities), dtype=self.dtype, device=self.device)
        b = vel.shape[0]
        inv_t = 1.0 / vel[:, :, 1] ** 2
        inv_f = 1.0 / vel[:, :, 0] ** 2
        it, df = inv_t[:, self.regions], (inv_f - inv_t)[:, self.regions]  # (b, m)
        lengths = torch.sqrt(self.e2[None] * it[..., None] + self.ef2[None] * df[..., None])  # (b, m, 6)
        t = torch.full((b, self.n), UNREACHED, dtype=self.dtype, device=self.device)
        for k in range(b):
            nodes = torch.as_tensor(np.asarray(sources[k], dtype=np.int64), device=self.device)
            times = torch.as_tensor(np.asarray(start_times[k], dtype=np.float64), dtype=self.dtype, device=self.device)
            t[k].scatter_reduce_(0, nodes, times, reduce="amin")
        flat = self.cells.T.reshape(-1)  # (4 m,), vertex i of every cell, i-major
        sweep = self._compiled_sweep()
        sweeps = 0
        while sweeps < max_iterations:
            for _ in range(CHECK_EVERY):  # test convergence every few sweeps: fewer host syncs
                previous, t = t, sweep(t, self.cells, lengths, flat)
                sweeps += 1
            if (previous - t).max() <= tol:
                break
        out = t.double().cpu().numpy()
        out[out >= 0.5 * UNREACHED] = np.inf
        return out, sweeps
