"""Linear (P1) finite elements on tetrahedra: shape-function gradients, stiffness, mass and load.

On a tetrahedron with vertices p0..p3 the barycentric coordinates lambda_a are the P1 shape
functions; their gradients are constant, grad lambda_k = (e_{k+1} x e_{k+2}) / (6 V) for the edge
vectors e_k = p_k - p0 (cyclic in 1..3) and grad lambda_0 = -(sum of the others). The element
matrices are then closed-form (Zienkiewicz, Taylor & Zhu, *The Finite Element Method*, 7th ed.,
2013, ch. 6; Ern & Guermond, *Theory and Practice of Finite Elements*, 2004, sec. 1.2):

* stiffness  K_ab = V grad(lambda_a) . sigma grad(lambda_b)     (sigma constant per cell)
* mass       M_ab = V (1 + delta_ab) / 20                          (exact for P1 x P1)

Everything is vectorised over cells (einsum/batched matmul); the global CSR matrix is scattered
row by row in one Numba pass through a node-to-cell incidence list, which needs no COO
intermediate of 16 entries per cell and no sort of the whole triplet list.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from cardiotwin.errors import InvalidMeshError, InvalidSystemError

__all__ = [
    "check_mesh",
    "shape_gradients",
    "assemble_csr",
    "stiffness",
    "anisotropic_tensor",
    "mass",
    "lumped_mass",
    "load_vector",
]


# ------------------------------------------------------------------------------------ geometry


def check_mesh(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated copies-or-views of ``points`` (n, 3) float64 and ``cells`` (m, 4) int64.

    Raises :class:`InvalidMeshError` for wrong shapes, non-finite coordinates, indices out of range.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    cel = np.asarray(cells)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InvalidMeshError(f"points must have shape (n, 3) in mm, got {pts.shape}")
    if cel.ndim != 2 or cel.shape[1] != 4:
        raise InvalidMeshError(f"cells must be tetrahedra with shape (m, 4), got {cel.shape}")
    if len(cel) == 0:
        raise InvalidMeshError("mesh has no tetrahedra")
    if not np.issubdtype(cel.dtype, np.integer):
        raise InvalidMeshError(f"cell connectivity must be integer, got {cel.dtype}")
    cel = np.ascontiguousarray(cel, dtype=np.int64)
    if not np.all(np.isfinite(pts)):
        raise InvalidMeshError(f"{int((~np.isfinite(pts)).any(1).sum())} points have NaN/inf coordinates")
    lo, hi = int(cel.min()), int(cel.max())
    if lo < 0 or hi >= len(pts):
        raise InvalidMeshError(f"cell indices must lie in [0, {len(pts) - 1}], found [{lo}, {hi}]")
    return pts, cel


@njit(cache=True)
def _shape_kernel(pts, cells):  # pragma: no cover - compiled
    """Per cell: shape-function gradients (m, 4, 3), 6 x signed volume, squared longest edge."""
    m = cells.shape[0]
    grads = np.empty((m, 4, 3))
    det = np.empty(m)
    longest2 = np.empty(m)
    e = np.empty((3, 3))
    for c in range(m):
        i0 = cells[c, 0]
        for k in range(3):
            ik = cells[c, k + 1]
            for d in range(3):
                e[k, d] = pts[ik, d] - pts[i0, d]
        # rows of the inverse-transpose: (e2 x e3, e3 x e1, e1 x e2) / det
        c1x = e[1, 1] * e[2, 2] - e[1, 2] * e[2, 1]
        c1y = e[1, 2] * e[2, 0] - e[1, 0] * e[2, 2]
        c1z = e[1, 0] * e[2, 1] - e[1, 1] * e[2, 0]
        c2x = e[2, 1] * e[0, 2] - e[2, 2] * e[0, 1]
        c2y = e[2, 2] * e[0, 0] - e[2, 0] * e[0, 2]
        c2z = e[2, 0] * e[0, 1] - e[2, 1] * e[0, 0]
        c3x = e[0, 1] * e[1, 2] - e[0, 2] * e[1, 1]
        c3y = e[0, 2] * e[1, 0] - e[0, 0] * e[1, 2]
        c3z = e[0, 0] * e[1, 1] - e[0, 1] * e[1, 0]
        dt = e[0, 0] * c1x + e[0, 1] * c1y + e[0, 2] * c1z
        det[c] = dt
        best = 0.0
        for a in range(4):
            for b in range(a + 1, 4):
                ia, ib = cells[c, a], cells[c, b]
                l2 = 0.0
                for d in range(3):
                    diff = pts[ib, d] - pts[ia, d]
                    l2 += diff * diff
                if l2 > best:
                    best = l2
        longest2[c] = best
        inv = 1.0 / dt if dt != 0.0 else 0.0
        grads[c, 1, 0], grads[c, 1, 1], grads[c, 1, 2] = c1x * inv, c1y * inv, c1z * inv
        grads[c, 2, 0], grads[c, 2, 1], grads[c, 2, 2] = c2x * inv, c2y * inv, c2z * inv
        grads[c, 3, 0], grads[c, 3, 1], grads[c, 3, 2] = c3x * inv, c3y * inv, c3z * inv
        for d in range(3):
            grads[c, 0, d] = -(grads[c, 1, d] + grads[c, 2, d] + grads[c, 3, d])
    return grads, det, longest2


def shape_gradients(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the four P1 shape functions of every cell and the cell volumes.

    Returns ``grads`` (m, 4, 3) in 1/mm (``grads[c, a]`` = gradient of the shape function of local
    vertex ``a`` in cell ``c``; they sum to zero over ``a``) and ``volumes`` (m,) in mm^3 (always
    positive: the vertex order of a cell may be either orientation). Degenerate (flat) cells raise
    :class:`InvalidMeshError`.
    """
    pts, cel = check_mesh(points, cells)
    grads, det, longest2 = _shape_kernel(pts, cel)
    degenerate = np.abs(det) <= 6e-9 * longest2**1.5
    if degenerate.any():
        first = int(np.flatnonzero(degenerate)[0])
        raise InvalidMeshError(
            f"{int(degenerate.sum())} degenerate (zero-volume) tetrahedra, e.g. cell {first} with vertices "
            f"{cel[first].tolist()}; P1 gradients are undefined on them: remesh or remove them"
        )
    return grads, np.abs(det) / 6.0


def _shape_of(pts: np.ndarray, cel: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """The caller's precomputed (grads, volumes), checked against the mesh, or freshly computed."""
    if shape is None:
        return shape_gradients(pts, cel)
    grads, vol = shape
    if np.shape(grads) != (len(cel), 4, 3) or np.shape(vol) != (len(cel),):
        raise InvalidSystemError(
            f"shape=(grads, volumes) must have shapes ({len(cel)}, 4, 3) and ({len(cel)},) for this mesh, got "
            f"{np.shape(grads)} and {np.shape(vol)}; recompute it with shape_gradients(points, cells)"
        )
    return grads, vol


# ------------------------------------------------------------------------------------ assembly


@njit(cache=True)
def _scatter_csr(cells, n, elem):  # pragma: no cover - compiled
    m = cells.shape[0]
    # node -> (cell, local vertex) incidence by counting sort
    start = np.zeros(n + 1, np.int64)
    for c in range(m):
        for a in range(4):
            start[cells[c, a] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    fill = start[:n].copy()
    inc = np.empty(4 * m, np.int64)
    for c in range(m):
        for a in range(4):
            v = cells[c, a]
            inc[fill[v]] = 4 * c + a
            fill[v] += 1
    # pass 1: number of distinct columns per row
    marker = np.full(n, -1, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        cnt = 0
        for p in range(start[i], start[i + 1]):
            c = inc[p] // 4
            for b in range(4):
                j = cells[c, b]
                if marker[j] != i:
                    marker[j] = i
                    cnt += 1
        indptr[i + 1] = indptr[i] + cnt
    # pass 2: columns and summed values, then sort each (short) row by column
    nnz = indptr[n]
    indices = np.empty(nnz, np.int64)
    data = np.zeros(nnz)
    slot = np.empty(n, np.int64)
    marker[:] = -1
    for i in range(n):
        k = indptr[i]
        for p in range(start[i], start[i + 1]):
            c = inc[p] // 4
            a = inc[p] - 4 * c
            for b in range(4):
                j = cells[c, b]
                if marker[j] != i:
                    marker[j] = i
                    slot[j] = k
                    indices[k] = j
                    k += 1
                data[slot[j]] += elem[c, a, b]
        for q in range(indptr[i] + 1, k):  # insertion sort: rows hold ~15-30 entries
            col = indices[q]
            val = data[q]
            r = q - 1
            while r >= indptr[i] and indices[r] > col:
                indices[r + 1] = indices[r]
                data[r + 1] = data[r]
                r -= 1
            indices[r + 1] = col
            data[r + 1] = val
    return indptr, indices, data


def assemble_csr(cells: np.ndarray, n_points: int, element_matrices: np.ndarray) -> sp.csr_matrix:
    """Sum per-cell 4x4 matrices (m, 4, 4) into an (n_points, n_points) CSR matrix (sorted indices).

    Every pair of vertices of a cell gets a stored entry, even when its value is zero, so matrices
    assembled on the same mesh share one sparsity pattern.
    """
    cel = np.ascontiguousarray(cells, dtype=np.int64)
    elem = np.ascontiguousarray(element_matrices, dtype=np.float64)
    if elem.shape != (len(cel), 4, 4):
        raise InvalidSystemError(f"element matrices must have shape ({len(cel)}, 4, 4), got {elem.shape}")
    indptr, indices, data = _scatter_csr(cel, int(n_points), elem)
    if indptr[-1] < np.iinfo(np.int32).max and n_points < np.iinfo(np.int32).max:
        indptr, indices = indptr.astype(np.int32), indices.astype(np.int32)
    mat = sp.csr_matrix((data, indices, indptr), shape=(n_points, n_points))
    mat.has_sorted_indices = True
    return mat


def _conductivity(conductivity, m: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(per-cell scalar (m,) or None, per-cell tensor (m, 3, 3) or None) from the user's input."""
    if conductivity is None:
        return np.ones(m), None
    sig = np.asarray(conductivity, dtype=np.float64)
    if not np.all(np.isfinite(sig)):
        raise InvalidSystemError("conductivity has NaN/inf values")
    if sig.ndim == 0 or sig.shape == (m,):
        if np.any(sig <= 0):
            bad = np.flatnonzero(np.broadcast_to(sig, (m,)) <= 0)
            raise InvalidSystemError(
                f"conductivity must be positive (S/m); {len(bad)} cell(s) have sigma <= 0, e.g. cell {bad[0]}. "
                "Remove non-conducting cells from the mesh instead of giving them zero conductivity"
            )
        return np.broadcast_to(sig, (m,)).astype(np.float64), None
    if sig.shape == (3, 3):
        sig = np.broadcast_to(sig, (m, 3, 3))
    if sig.shape == (m, 3, 3):
        if not np.allclose(sig, np.swapaxes(sig, 1, 2), rtol=1e-10, atol=1e-12 * np.abs(sig).max()):
            raise InvalidSystemError("conductivity tensors must be symmetric (sigma = sigma^T)")
        # Sylvester's criterion: positive definite iff all leading principal minors are positive
        m1 = sig[:, 0, 0]
        m2 = sig[:, 0, 0] * sig[:, 1, 1] - sig[:, 0, 1] * sig[:, 1, 0]
        m3 = np.linalg.det(sig)
        scale = np.abs(sig).max(axis=(1, 2))
        bad = (m1 <= 0) | (m2 <= 1e-14 * scale**2) | (m3 <= 1e-14 * scale**3)
        if bad.any():
            raise InvalidSystemError(
                f"conductivity tensors must be positive definite; {int(bad.sum())} are not, e.g. cell "
                f"{int(np.flatnonzero(bad)[0])}: {sig[np.flatnonzero(bad)[0]].tolist()}"
            )
        return None, sig
    raise InvalidSystemError(
        f"conductivity must be None, a scalar, one value per cell ({m},), one 3x3 tensor or one tensor per "
        f"cell ({m}, 3, 3); got shape {sig.shape}"
    )


def stiffness(
    points: np.ndarray,
    cells: np.ndarray,
    conductivity: float | np.ndarray | None = None,
    *,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> sp.csr_matrix:
    """P1 stiffness matrix K_ij = int sigma grad(phi_i) . grad(phi_j) dV (CSR, symmetric).

    ``conductivity``: None (1), a scalar, per-cell scalars (m,), one (3, 3) tensor, or per-cell
    tensors (m, 3, 3) (see :func:`anisotropic_tensor`); units S/m give K in S*mm (mm geometry).
    ``shape``: precomputed :func:`shape_gradients` output to skip recomputing it.
    """
    pts, cel = check_mesh(points, cells)
    grads, vol = _shape_of(pts, cel, shape)
    scalar, tensor = _conductivity(conductivity, len(cel))
    if tensor is None:
        elem = np.matmul(grads, np.swapaxes(grads, 1, 2))
        elem *= (vol * scalar)[:, None, None]
    else:
        elem = np.matmul(np.matmul(grads, tensor), np.swapaxes(grads, 1, 2))
        elem *= vol[:, None, None]
    return assemble_csr(cel, len(pts), elem)


def anisotropic_tensor(
    fibre: np.ndarray,
    sigma_l: float | np.ndarray,
    sigma_t: float | np.ndarray,
    sheet: np.ndarray | None = None,
    sigma_n: float | np.ndarray | None = None,
) -> np.ndarray:
    """Per-cell conductivity tensors (m, 3, 3) from fibre (and optionally sheet) directions.

    Transversely isotropic (no sheet): sigma = sigma_t I + (sigma_l - sigma_t) f f^T.
    Orthotropic (with sheet): sigma = sigma_l f f^T + sigma_t s s^T + sigma_n n n^T with n = f x s
    (the sheet is first made orthogonal to the fibre; ``sigma_n`` defaults to ``sigma_t``).
    Directions need not be unit length; conductivities are scalars or per-cell arrays (m,), S/m.
    """
    f = np.atleast_2d(np.asarray(fibre, dtype=np.float64))
    if f.ndim != 2 or f.shape[1] != 3:
        raise InvalidSystemError(f"fibre directions must have shape (m, 3), got {np.shape(fibre)}")
    m = len(f)

    def _sigma(value, name):
        s = np.asarray(value, dtype=np.float64)
        if s.ndim not in (0, 1) or (s.ndim == 1 and s.shape != (m,)):
            raise InvalidSystemError(f"{name} must be a scalar or one value per cell ({m},), got shape {s.shape}")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InvalidSystemError(f"{name} must be positive and finite (S/m), got {value!r}")
        return np.broadcast_to(s, (m,))[:, None, None]

    def _unit(v, name):
        if not np.all(np.isfinite(v)):
            raise InvalidSystemError(f"{name} directions contain NaN/inf")
        norm = np.linalg.norm(v, axis=1)
        bad = norm <= 1e-12
        if bad.any():
            raise InvalidSystemError(
                f"{int(bad.sum())} {name} direction(s) have zero length, e.g. cell {int(np.flatnonzero(bad)[0])}"
            )
        return v / norm[:, None]

    sl, st = _sigma(sigma_l, "sigma_l"), _sigma(sigma_t, "sigma_t")
    f = _unit(f, "fibre")
    ff = f[:, :, None] * f[:, None, :]
    if sheet is None:
        if sigma_n is not None:
            raise InvalidSystemError("sigma_n needs sheet directions (the normal is fibre x sheet)")
        return st * np.eye(3) + (sl - st) * ff
    s = np.atleast_2d(np.asarray(sheet, dtype=np.float64))
    if s.shape != f.shape:
        raise InvalidSystemError(f"sheet directions must have the fibres' shape {f.shape}, got {s.shape}")
    s = _unit(s, "sheet")
    s = s - np.einsum("ij,ij->i", s, f)[:, None] * f
    s = _unit(s, "sheet (after removing its fibre component; sheet parallel to fibre)")
    n = np.cross(f, s)
    sn = st if sigma_n is None else _sigma(sigma_n, "sigma_n")
    return sl * ff + st * (s[:, :, None] * s[:, None, :]) + sn * (n[:, :, None] * n[:, None, :])


def mass(
    points: np.ndarray,
    cells: np.ndarray,
    lumped: bool = False,
    *,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> sp.csr_matrix:
    """P1 mass matrix M_ij = int phi_i phi_j dV (mm^3); ``lumped=True`` gives its diagonal row sums."""
    pts, cel = check_mesh(points, cells)
    if lumped:
        return sp.diags(lumped_mass(pts, cel, shape=shape), format="csr")
    vol = _shape_of(pts, cel, shape)[1]
    elem = (vol / 20.0)[:, None, None] * (np.ones((4, 4)) + np.eye(4))[None]
    return assemble_csr(cel, len(pts), elem)


def lumped_mass(
    points: np.ndarray, cells: np.ndarray, *, shape: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Row sums of the P1 mass matrix (n,): a quarter of the volume of every adjacent cell, mm^3."""
    pts, cel = check_mesh(points, cells)
    vol = _shape_of(pts, cel, shape)[1]
    return np.bincount(cel.ravel(), weights=np.repeat(vol / 4.0, 4), minlength=len(pts))


def load_vector(
    points: np.ndarray,
    cells: np.ndarray,
    f_nodes: np.ndarray,
    *,
    shape: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Consistent load vector b_i = int f_h phi_i dV = (M f)_i for a nodal P1 source ``f`` (n,) or (n, k)."""
    pts, cel = check_mesh(points, cells)
    f = np.asarray(f_nodes, dtype=np.float64)
    if f.shape[:1] != (len(pts),) or f.ndim > 2:
        raise InvalidSystemError(f"f_nodes must have shape ({len(pts)},) or ({len(pts)}, k), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise InvalidSystemError("f_nodes has NaN/inf values")
    vol = _shape_of(pts, cel, shape)[1]
    f2 = f.reshape(len(pts), -1)
    fc = f2[cel]  # (m, 4, k)
    # (M_e f_e)_a = V/20 (f_a + sum_b f_b)
    contrib = (vol / 20.0)[:, None, None] * (fc + fc.sum(axis=1, keepdims=True))
    out = np.stack(
        [np.bincount(cel.ravel(), weights=contrib[:, :, j].ravel(), minlength=len(pts)) for j in range(f2.shape[1])],
        axis=1,
    )
    return out.reshape(f.shape)
