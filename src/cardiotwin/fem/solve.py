"""Solving the symmetric positive (semi-)definite systems of P1 Laplace/Poisson problems.

* Dirichlet conditions are imposed by elimination with lifting: with free nodes f and fixed nodes
  c, K_ff x_f = b_f - K_fc g, a smaller SPD system (no penalty parameter, no symmetry loss).
* Pure-Neumann problems (lead fields in an insulated torso) are singular with the constants as
  null space; they are solvable iff every connected region's sources balance (sum b = 0). One
  node per region is grounded (x = 0), which leaves an SPD system whose solution satisfies the
  grounded row too for a compatible right-hand side, and the result is shifted to zero mean.
* The reduced SPD system is solved by conjugate gradients (Hestenes & Stiefel 1952) preconditioned
  with one V-cycle of smoothed-aggregation algebraic multigrid (Vanek, Mandel & Brezina 1996,
  Computing 56:179; PyAMG, Bell, Olson & Schroder 2022, JOSS 7:4142), whose cost grows linearly
  with the number of unknowns. Small systems (and AMG failures) go to a sparse LU factorisation
  (SuperLU, Li 2005, ACM TOMS 31:302).

A :class:`Solver` keeps the reduced matrix, the AMG hierarchy or the LU factors, so the ~10 lead
fields of a torso (same matrix, different right-hand sides) pay the setup once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from cardiotwin.errors import ConvergenceError, InvalidSystemError, SingularSystemError

__all__ = ["Solution", "Solver", "solve_dirichlet", "solve_neumann"]

Method = Literal["auto", "amg", "direct"]

#: below this many unknowns "auto" uses the direct solver: on 3-D P1 Laplacians one LU
#: (minimum-degree ordering) beats AMG setup + CG up to ~10k unknowns (benchmarks/bench_fem.py), and
#: every further right-hand side costs only two triangular solves
DIRECT_BELOW = 10_000
#: AMG failures in "auto" fall back to LU only up to this size (3-D LU fill grows ~ n^(4/3))
DIRECT_FALLBACK_LIMIT = 300_000


@dataclass(frozen=True)
class Solution:
    """Result of a solve: the full nodal vector ``x`` ((n,) or (n, k) like ``b``), the CG
    iteration count (largest over right-hand sides; 0 for a direct solve), the relative residual
    ||b_f - K_ff x_f|| / ||b_f|| of the reduced system (largest over right-hand sides) and the
    method actually used ("amg-cg" or "direct")."""

    x: np.ndarray
    iterations: int
    residual: float
    method: str


def _as_matrix(K: Any) -> sp.csr_matrix:
    if sp.issparse(K):
        mat = sp.csr_matrix(K, dtype=np.float64)
    else:
        arr = np.asarray(K, dtype=np.float64)
        if arr.ndim != 2:
            raise InvalidSystemError(f"K must be a 2-D (sparse) matrix, got shape {arr.shape}")
        mat = sp.csr_matrix(arr)
    if mat.shape[0] != mat.shape[1]:
        raise InvalidSystemError(f"K must be square, got shape {mat.shape}")
    if mat.shape[0] == 0:
        raise InvalidSystemError("K is empty")
    if not np.all(np.isfinite(mat.data)):
        raise InvalidSystemError(f"K has {int((~np.isfinite(mat.data)).sum())} NaN/inf entries")
    mat.sum_duplicates()
    scale = np.abs(mat.data).max() if mat.nnz else 0.0
    asym = abs(mat - mat.T)
    if asym.nnz and asym.max() > 1e-10 * scale:
        raise InvalidSystemError(
            f"K must be symmetric (a stiffness matrix); max |K - K^T| = {asym.max():.3g} vs max |K| = {scale:.3g}"
        )
    return mat


def _rhs(b: Any, n: int) -> np.ndarray:
    arr = np.asarray(b, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise InvalidSystemError(f"b must have shape ({n},) or ({n}, k) to match K, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidSystemError(f"b has {int((~np.isfinite(arr)).sum())} NaN/inf values")
    return arr


class Solver:
    """Reusable solver for K x = b with fixed Dirichlet nodes, or a pure-Neumann problem.

    ``fixed_nodes``: indices (or a boolean mask) of Dirichlet nodes; ``None`` means pure Neumann
    (solutions shifted to zero mean, weighted by ``weights`` (n,) if given, per connected region).
    ``method``: "auto" (direct below ``direct_below`` unknowns, else AMG-CG with LU fallback),
    "amg" (AMG-CG, raising :class:`ConvergenceError` if it fails) or "direct".
    ``tol`` is the relative residual of the reduced system that CG must reach.
    ``amg_options`` are passed to :func:`pyamg.smoothed_aggregation_solver`.
    """

    def __init__(
        self,
        K: Any,
        fixed_nodes: np.ndarray | None = None,
        *,
        tol: float = 1e-10,
        method: Method = "auto",
        maxiter: int = 500,
        direct_below: int = DIRECT_BELOW,
        weights: np.ndarray | None = None,
        amg_options: dict | None = None,
    ) -> None:
        if method not in ("auto", "amg", "direct"):
            raise InvalidSystemError(f"method must be 'auto', 'amg' or 'direct', got {method!r}")
        if not (np.isfinite(tol) and 0 < tol < 1):
            raise InvalidSystemError(f"tol must be a relative residual in (0, 1), got {tol}")
        self.K = _as_matrix(K)
        n = self.n = self.K.shape[0]
        self.tol, self.method, self.maxiter = float(tol), method, int(maxiter)
        self.amg_options = dict(amg_options or {})
        self.neumann = fixed_nodes is None

        diag = self.K.diagonal()
        pattern = abs(self.K)
        pattern.eliminate_zeros()
        n_comp, labels = connected_components(pattern, directed=False)
        self._labels = labels

        if self.neumann:
            if weights is not None:
                w = np.asarray(weights, dtype=np.float64)
                if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                    raise InvalidSystemError(f"weights must be {n} finite non-negative values, got shape {w.shape}")
            else:
                w = np.ones(n)
            self._weights = w
            isolated = np.flatnonzero(diag <= 0)
            if isolated.size:
                raise SingularSystemError(
                    f"{isolated.size} node(s) have a zero row in K (e.g. node {isolated[0]}): they belong to no "
                    "element, so a pure-Neumann problem leaves them undetermined; remove unused points"
                )
            # ground the first node of every connected region
            _, first = np.unique(labels, return_index=True)
            self._n_comp = n_comp
            fixed = np.sort(first)
            self._inverse = None
            self._comp_w = np.bincount(labels, weights=w, minlength=n_comp)
            if np.any(self._comp_w <= 0):
                raise InvalidSystemError("weights must not vanish on a whole connected region")
        else:
            fixed_arr = np.asarray(fixed_nodes)
            if fixed_arr.dtype == bool:
                if fixed_arr.shape != (n,):
                    raise InvalidSystemError(f"a boolean fixed-node mask needs shape ({n},), got {fixed_arr.shape}")
                fixed_arr = np.flatnonzero(fixed_arr)
            if fixed_arr.ndim != 1 or (fixed_arr.size and not np.issubdtype(fixed_arr.dtype, np.integer)):
                raise InvalidSystemError(
                    f"fixed_nodes must be a 1-D array of node indices, got {fixed_arr.dtype} {fixed_arr.shape}"
                )
            if fixed_arr.size == 0:
                raise SingularSystemError(
                    "no Dirichlet (fixed) nodes: the problem is unconstrained and K is singular; fix at least one "
                    "node per connected region, or use solve_neumann / Solver(K, None) for a pure-Neumann problem"
                )
            if fixed_arr.min() < 0 or fixed_arr.max() >= n:
                raise InvalidSystemError(
                    f"fixed_nodes must lie in [0, {n - 1}], found [{fixed_arr.min()}, {fixed_arr.max()}]"
                )
            fixed, self._inverse = np.unique(fixed_arr.astype(np.int64), return_inverse=True)
            self._n_given = fixed_arr.size
            constrained = np.zeros(n_comp, dtype=bool)
            constrained[labels[fixed]] = True
            free_mask = np.ones(n, dtype=bool)
            free_mask[fixed] = False
            loose = free_mask & ~constrained[labels]
            if loose.any():
                isolated = loose & (diag <= 0)
                if isolated.any():
                    raise SingularSystemError(
                        f"{int(isolated.sum())} free node(s) have a zero row in K (e.g. node "
                        f"{int(np.flatnonzero(isolated)[0])}): they belong to no element; remove unused points "
                        "or list them as fixed nodes"
                    )
                n_loose = len(np.unique(labels[loose]))
                raise SingularSystemError(
                    f"{n_loose} connected region(s) of the mesh ({int(loose.sum())} nodes, e.g. node "
                    f"{int(np.flatnonzero(loose)[0])}) contain no Dirichlet node, so their solution is only "
                    "defined up to a constant; fix a node in each region or remove the disconnected parts"
                )
        self.fixed = fixed
        free_mask = np.ones(n, dtype=bool)
        free_mask[fixed] = False
        self.free = np.flatnonzero(free_mask)
        rows = self.K[self.free]
        self.A = rows[:, self.free].tocsr()
        self.Kfc = rows[:, self.fixed].tocsr()
        if self.free.size and np.any(self.A.diagonal() <= 0):
            raise InvalidSystemError("K must have a positive diagonal on the free nodes (an SPD stiffness matrix)")
        self._ml = None
        self._lu = None
        self._amg_failed = False
        nf = self.free.size
        self._use_direct = method == "direct" or (method == "auto" and nf < int(direct_below))

    # ------------------------------------------------------------------------------- internals

    def _factor(self):
        if self._lu is None:
            try:
                self._lu = spla.splu(
                    self.A.tocsc(),
                    permc_spec="MMD_AT_PLUS_A",
                    diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True},
                )
            except RuntimeError as exc:  # "Factor is exactly singular"
                raise SingularSystemError(f"the reduced system is singular ({exc}); check the Dirichlet nodes") from exc
        return self._lu

    def _hierarchy(self):
        if self._ml is None:
            import pyamg

            opts = {"symmetry": "symmetric", "max_coarse": 500, **self.amg_options}
            self._ml = pyamg.smoothed_aggregation_solver(self.A, **opts)
        return self._ml

    def _direct(self, rhs: np.ndarray) -> np.ndarray:
        x = self._factor().solve(rhs)
        if not np.all(np.isfinite(x)):
            raise SingularSystemError("the direct solve produced NaN/inf: the reduced system is singular")
        return x

    def _amg_cg(self, rhs: np.ndarray, x0: np.ndarray | None) -> tuple[np.ndarray, int, bool]:
        M = self._hierarchy().aspreconditioner(cycle="V")
        count = [0]

        def _cb(_xk):
            count[0] += 1

        x, info = spla.cg(self.A, rhs, x0=x0, rtol=self.tol, atol=0.0, maxiter=self.maxiter, M=M, callback=_cb)
        ok = info == 0 and np.all(np.isfinite(x))
        return x, count[0], ok

    def _solve_reduced(self, rhs: np.ndarray, x0: np.ndarray | None) -> tuple[np.ndarray, int, str]:
        if self._use_direct or self._amg_failed:
            return self._direct(rhs), 0, "direct"
        try:
            x, its, ok = self._amg_cg(rhs, x0)
            err = None
        except Exception as exc:  # pyamg setup can fail on pathological matrices
            x, its, ok, err = None, 0, False, exc
        if ok:
            return x, its, "amg-cg"
        reason = f"AMG setup failed ({err})" if err is not None else (
            f"AMG-preconditioned CG did not reach rtol={self.tol:g} in {self.maxiter} iterations"
        )
        if self.method == "amg" or self.free.size > DIRECT_FALLBACK_LIMIT:
            raise ConvergenceError(
                f"{reason} ({self.free.size} unknowns). Check the mesh quality and conductivities, raise maxiter "
                "or tol, or use method='direct' for moderate sizes"
            ) from err
        self._amg_failed = True
        return self._direct(rhs), 0, "direct"

    # --------------------------------------------------------------------------------- public

    def solve(
        self,
        b: np.ndarray,
        fixed_values: float | np.ndarray | None = None,
        *,
        x0: np.ndarray | None = None,
        project: bool = False,
        compat_tol: float = 1e-8,
    ) -> Solution:
        """Solve for right-hand side ``b`` ((n,) or (n, k)).

        Dirichlet mode: ``fixed_values`` is a scalar or one value per given fixed node (in the order
        given; also (n_fixed, k) for several right-hand sides); default 0.
        Neumann mode: ``b`` must balance on every connected region (|sum b| <= ``compat_tol`` *
        sum |b|) unless ``project=True``, which removes its mean (the least-squares solution).
        ``x0``: initial guess (n,) for CG (single right-hand side only).
        """
        b = _rhs(b, self.n)
        single = b.ndim == 1
        B = b.reshape(self.n, -1).copy()
        k = B.shape[1]
        X = np.zeros_like(B)

        if self.neumann:
            if fixed_values is not None:
                raise InvalidSystemError("a pure-Neumann solver has no fixed nodes, so fixed_values must be None")
            n_comp, labels = self._n_comp, self._labels
            sums = np.stack([np.bincount(labels, weights=B[:, j], minlength=n_comp) for j in range(k)], 1)
            mags = np.stack([np.bincount(labels, weights=np.abs(B[:, j]), minlength=n_comp) for j in range(k)], 1)
            bad = np.abs(sums) > compat_tol * np.maximum(mags, np.finfo(float).tiny)
            if bad.any() and not project:
                comp, col = np.argwhere(bad)[0]
                raise SingularSystemError(
                    f"the right-hand side is incompatible with a pure-Neumann problem: its sources do not balance "
                    f"(sum b = {sums[comp, col]:.4g} over connected region {comp}, vs sum |b| = "
                    f"{mags[comp, col]:.4g}); "
                    "inject as much current as you withdraw, or pass project=True to remove the mean"
                )
            counts = np.bincount(labels, minlength=n_comp).astype(float)
            B -= (sums / counts[:, None])[labels]  # project onto range(K): removes rounding too
        else:
            g = np.zeros((self.fixed.size, k))
            if fixed_values is not None:
                v = np.asarray(fixed_values, dtype=np.float64)
                if not np.all(np.isfinite(v)):
                    raise InvalidSystemError("fixed_values has NaN/inf values")
                if v.ndim == 0:
                    g[:] = v
                else:
                    if v.shape[0] != self._n_given or v.ndim > 2 or (v.ndim == 2 and v.shape[1] != k):
                        raise InvalidSystemError(
                            f"fixed_values must be a scalar or have shape ({self._n_given},)"
                            + (f" or ({self._n_given}, {k})" if k > 1 else "")
                            + f" like fixed_nodes; got {v.shape}"
                        )
                    v2 = np.broadcast_to(v.reshape(self._n_given, -1), (self._n_given, k))
                    g = np.zeros((self.fixed.size, k))
                    g[self._inverse] = v2
                    if not np.allclose(g[self._inverse], v2, rtol=0, atol=1e-12 * max(1.0, np.abs(v2).max())):
                        raise InvalidSystemError("a node listed twice in fixed_nodes has two different fixed_values")
            X[self.fixed] = g
            if self.fixed.size:
                B[self.free] -= self.Kfc @ g

        if x0 is not None:
            if k != 1:
                raise InvalidSystemError("x0 is only supported for a single right-hand side")
            x0 = np.asarray(x0, dtype=np.float64)
            if x0.shape != (self.n,) or not np.all(np.isfinite(x0)):
                raise InvalidSystemError(f"x0 must be {self.n} finite values, got shape {x0.shape}")

        iterations, residual, methods = 0, 0.0, set()
        rhs_all = B[self.free]
        for j in range(k):
            rhs = rhs_all[:, j]
            if self.free.size == 0:
                methods.add("direct")
                continue
            xf, its, used = self._solve_reduced(rhs, None if x0 is None else x0[self.free])
            X[self.free, j] = xf
            norm = np.linalg.norm(rhs)
            res = np.linalg.norm(rhs - self.A @ xf) / norm if norm > 0 else float(np.linalg.norm(self.A @ xf))
            iterations, residual = max(iterations, its), max(residual, float(res))
            methods.add(used)

        if self.neumann:
            labels, w = self._labels, self._weights
            for j in range(k):
                mean = np.bincount(labels, weights=w * X[:, j], minlength=self._n_comp) / self._comp_w
                X[:, j] -= mean[labels]
        method = "direct" if methods == {"direct"} else "amg-cg" if methods == {"amg-cg"} else "+".join(sorted(methods))
        return Solution(X[:, 0] if single else X, iterations, residual, method)


def solve_dirichlet(
    K: Any,
    b: np.ndarray,
    fixed_nodes: np.ndarray,
    fixed_values: float | np.ndarray = 0.0,
    tol: float = 1e-10,
    method: Method = "auto",
    **options: Any,
) -> Solution:
    """Solve K x = b with x = ``fixed_values`` on ``fixed_nodes`` (one-off; see :class:`Solver`)."""
    if fixed_nodes is None:
        raise SingularSystemError("fixed_nodes is None: use solve_neumann for a problem without Dirichlet nodes")
    return Solver(K, fixed_nodes, tol=tol, method=method, **options).solve(b, fixed_values)


def solve_neumann(
    K: Any,
    b: np.ndarray,
    tol: float = 1e-10,
    method: Method = "auto",
    *,
    weights: np.ndarray | None = None,
    project: bool = False,
    **options: Any,
) -> Solution:
    """Solve the pure-Neumann problem K x = b for the zero-mean x (mean weighted by ``weights``).

    ``b`` must balance on every connected region (sum b = 0) unless ``project=True``.
    """
    return Solver(K, None, tol=tol, method=method, weights=weights, **options).solve(b, project=project)
