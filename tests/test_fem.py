"""Tests of the P1 finite-element core against analytic solutions and exact identities."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp

from cardiotwin.errors import (
    ConvergenceError,
    InputError,
    InvalidMeshError,
    InvalidSystemError,
    SingularSystemError,
)
from cardiotwin.fem import (
    Solver,
    anisotropic_tensor,
    assemble_csr,
    ball_mesh,
    cell_gradients,
    load_vector,
    lumped_mass,
    mass,
    nodal_gradients,
    shape_gradients,
    solve_dirichlet,
    solve_neumann,
    spherical_shell_mesh,
    stiffness,
)
from cardiotwin.meshing.lattice import box_mesh
from cardiotwin.types import tet_signed_volumes

# 4-point degree-2 quadrature on the tetrahedron (barycentric points, equal weights): integrates
# the squared P1 error's leading term exactly enough that the L2 error converges at its true rate.
_QA, _QB = 0.5854101966249685, 0.1381966011250105
_Q = np.full((4, 4), _QB) + np.eye(4) * (_QA - _QB)


def l2_relative_error(points, cells, uh, exact) -> float:
    """||u_h - u|| / ||u|| in L2 over the mesh, by quadrature."""
    vol = shape_gradients(points, cells)[1]
    xq = np.einsum("qa,mad->mqd", _Q, points[cells])
    uq = np.einsum("qa,ma->mq", _Q, uh[cells])
    ue = exact(xq)
    return float(np.sqrt(np.sum(vol[:, None] * (uq - ue) ** 2) / np.sum(vol[:, None] * ue**2)))


def rates(errors, hs) -> np.ndarray:
    e, h = np.asarray(errors), np.asarray(hs, dtype=float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])


@lru_cache(maxsize=None)
def distorted_box(n: int = 5, seed: int = 0):
    """A box mesh with interior nodes jittered (still valid) so no identity holds by symmetry alone."""
    p, c = box_mesh((n, n + 1, n + 2), lengths=(1.0, 1.5, 2.0))
    rng = np.random.default_rng(seed)
    interior = ~((p <= 1e-12) | (p >= np.array([1.0, 1.5, 2.0]) - 1e-12)).any(axis=1)
    p = p.copy()
    p[interior] += rng.uniform(-0.15, 0.15, (interior.sum(), 3)) / n
    assert tet_signed_volumes(p, c).min() > 0
    return p, c


def box_boundary(p, lengths=(1.0, 1.0, 1.0)) -> np.ndarray:
    return np.flatnonzero(((p <= 1e-12) | (p >= np.asarray(lengths) - 1e-12)).any(axis=1))


# ------------------------------------------------------------------------------------- assembly


def test_reference_tetrahedron_stiffness_and_mass():
    # closed-form element matrices of the unit right tetrahedron (volume 1/6)
    p = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    c = np.array([[0, 1, 2, 3]])
    K = stiffness(p, c).toarray()
    expected = np.array([[3, -1, -1, -1], [-1, 1, 0, 0], [-1, 0, 1, 0], [-1, 0, 0, 1]]) / 6.0
    np.testing.assert_allclose(K, expected, atol=1e-15)
    M = mass(p, c).toarray()
    np.testing.assert_allclose(M, (np.ones((4, 4)) + np.eye(4)) / 120.0, atol=1e-15)
    # the opposite vertex order gives the same matrices (orientation-free assembly)
    np.testing.assert_allclose(stiffness(p, c[:, [0, 2, 1, 3]]).toarray(), expected, atol=1e-15)


def test_stiffness_symmetric_kernel_and_linear_energy():
    p, c = distorted_box()
    K = stiffness(p, c)
    assert isinstance(K, sp.csr_matrix)
    assert abs(K - K.T).max() < 1e-13
    np.testing.assert_allclose(K @ np.ones(len(p)), 0.0, atol=1e-12)  # constants have zero energy
    g = np.array([0.3, -1.2, 0.7])
    u = p @ g
    volume = 1.0 * 1.5 * 2.0
    # u^T K u = int |grad u|^2 = |g|^2 V exactly for a linear u (P1 reproduces it)
    np.testing.assert_allclose(u @ K @ u, g @ g * volume, rtol=1e-12)
    # per-cell conductivity: energy = sum sigma_e V_e |g|^2
    vol = tet_signed_volumes(p, c)
    sigma = np.random.default_rng(1).uniform(0.1, 2.0, len(c))
    np.testing.assert_allclose(u @ stiffness(p, c, sigma) @ u, g @ g * np.sum(sigma * vol), rtol=1e-12)


def test_conductivity_forms_agree():
    p, c = distorted_box(3)
    m = len(c)
    ref = stiffness(p, c, 2.5)
    for form in (np.full(m, 2.5), 2.5 * np.eye(3), np.broadcast_to(2.5 * np.eye(3), (m, 3, 3))):
        assert abs(stiffness(p, c, form) - ref).max() < 1e-12
    assert abs(stiffness(p, c) * 2.5 - ref).max() < 1e-12


def test_anisotropic_tensor_flux_and_energy():
    p, c = distorted_box(4)
    m = len(c)
    f = np.array([np.cos(0.4), np.sin(0.4), 0.2])
    f /= np.linalg.norm(f)
    sl, st, sn = 0.34, 0.06, 0.02
    sigma = anisotropic_tensor(np.tile(2.0 * f, (m, 1)), sl, st)  # non-unit input is normalised
    np.testing.assert_allclose(sigma[0], st * np.eye(3) + (sl - st) * np.outer(f, f), atol=1e-15)
    K = stiffness(p, c, sigma)
    volume = 3.0
    t = np.cross(f, [0.0, 0.0, 1.0])
    t /= np.linalg.norm(t)
    # a unit-gradient linear field along the fibre sees sigma_l, across it sigma_t (exact)
    np.testing.assert_allclose((p @ f) @ K @ (p @ f), sl * volume, rtol=1e-12)
    np.testing.assert_allclose((p @ t) @ K @ (p @ t), st * volume, rtol=1e-12)
    # Dirichlet patch test: boundary values of a linear field give that field inside (P1 exactness),
    # and its flux -sigma grad u is the analytic -(sigma_t g + (sigma_l - sigma_t)(f.g) f) in every cell
    g = np.array([1.0, -0.5, 0.25])
    bnd = box_boundary(p, (1.0, 1.5, 2.0))
    sol = solve_dirichlet(K, np.zeros(len(p)), bnd, p[bnd] @ g)
    np.testing.assert_allclose(sol.x, p @ g, atol=1e-10)
    flux = -np.einsum("mij,mj->mi", sigma, cell_gradients(p, c, sol.x))
    np.testing.assert_allclose(flux, np.tile(-(st * g + (sl - st) * (f @ g) * f), (m, 1)), atol=1e-9)
    # orthotropic: sheet (not orthogonal on input) and normal directions see sigma_t and sigma_n
    s_in = np.array([0.0, 0.0, 1.0])
    sigma3 = anisotropic_tensor(np.tile(f, (m, 1)), sl, st, sheet=np.tile(s_in, (m, 1)), sigma_n=sn)
    s = s_in - (s_in @ f) * f
    s /= np.linalg.norm(s)
    nrm = np.cross(f, s)
    K3 = stiffness(p, c, sigma3)
    for direction, value in ((f, sl), (s, st), (nrm, sn)):
        np.testing.assert_allclose((p @ direction) @ K3 @ (p @ direction), value * volume, rtol=1e-11)
    # per-cell conductivity arrays broadcast
    sig_cells = anisotropic_tensor(np.tile(f, (m, 1)), np.full(m, sl), st)
    np.testing.assert_allclose(sig_cells, sigma, atol=1e-15)


def test_mass_matrix_volume_and_exact_moments():
    p, c = distorted_box()
    volume = 3.0
    M = mass(p, c)
    np.testing.assert_allclose(M.sum(), volume, rtol=1e-13)
    np.testing.assert_allclose(mass(p, c, lumped=True).diagonal(), np.asarray(M.sum(axis=1)).ravel(), rtol=1e-13)
    np.testing.assert_allclose(lumped_mass(p, c).sum(), volume, rtol=1e-13)
    # P1 x P1 products are integrated exactly: int x^2 over [0,1]x[0,1.5]x[0,2] = 1/3 * 3
    x = p[:, 0]
    np.testing.assert_allclose(x @ M @ x, 1.0, rtol=1e-12)
    # consistent load vector = M f, one or several fields at once
    f = np.stack([np.sin(p[:, 0]), p[:, 1] ** 2], axis=1)
    np.testing.assert_allclose(load_vector(p, c, f), M @ f, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(load_vector(p, c, f[:, 0]), M @ f[:, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(load_vector(p, c, np.ones(len(p))).sum(), volume, rtol=1e-13)


# ------------------------------------------------------------------------------- convergence


@lru_cache(maxsize=None)
def shell(nt: int, nr: int):
    return spherical_shell_mesh(1.0, 2.0, nt, nr)


def test_laplace_spherical_shell_converges_at_second_order():
    a, b = 1.0, 2.0

    def exact(x):
        return (1.0 / np.linalg.norm(x, axis=-1) - 1.0 / b) / (1.0 / a - 1.0 / b)

    l2, linf, hs = [], [], []
    for nt, nr in ((4, 2), (8, 4), (16, 8)):
        mesh = shell(nt, nr)
        K = stiffness(mesh.points, mesh.cells)
        fixed = np.concatenate([mesh.inner, mesh.outer])
        values = np.concatenate([np.ones(mesh.inner.size), np.zeros(mesh.outer.size)])
        sol = solve_dirichlet(K, np.zeros(len(mesh.points)), fixed, values)
        assert sol.residual < 1e-9
        l2.append(l2_relative_error(mesh.points, mesh.cells, sol.x, exact))
        linf.append(np.abs(sol.x - exact(mesh.points)).max())
        hs.append(1.0 / nt)
    # P1 on a polyhedral approximation of the spheres: O(h^2) in L2 (the boundary-facet error is
    # also O(h^2)); observed 1.75 then 1.92, so 1.6 leaves margin yet fails for a first-order bug
    assert np.all(rates(l2, hs) > 1.6), (l2, rates(l2, hs))
    assert l2[-1] < 4e-3  # observed 2.8e-3 at 16 x 8
    assert linf[-1] < 6e-3  # observed 4.2e-3; nodal values converge too
    assert linf[-1] < linf[0] / 4


def test_poisson_box_manufactured_solution():
    def exact(x):
        return np.sin(np.pi * x[..., 0]) * np.sin(np.pi * x[..., 1]) * np.sin(np.pi * x[..., 2])

    l2, linf, hs = [], [], []
    for n in (8, 16, 32):
        p, c = box_mesh((n, n, n))
        K = stiffness(p, c)
        b = load_vector(p, c, 3 * np.pi**2 * exact(p))  # -lap u = 3 pi^2 u
        sol = solve_dirichlet(K, b, box_boundary(p), 0.0)
        l2.append(l2_relative_error(p, c, sol.x, exact))
        linf.append(np.abs(sol.x - exact(p)).max())
        hs.append(1.0 / n)
    assert sol.method == "amg-cg" and sol.iterations > 0  # 35,937 nodes: the AMG path
    # observed L2 rates 1.92, 1.98 and max-norm 1.95, 1.99: second order
    assert np.all(rates(l2, hs) > 1.8), rates(l2, hs)
    assert np.all(rates(linf, hs) > 1.8), rates(linf, hs)
    assert l2[-1] < 1e-2  # observed 6.8e-3


def test_poisson_ball_quadratic_solution():
    # -lap u = 6 in the unit ball, u = 0 on the sphere: u = 1 - r^2
    def exact(x):
        return 1.0 - np.sum(x**2, axis=-1)

    l2, hs = [], []
    for n in (3, 6, 12):
        mesh = ball_mesh(1.0, n)
        K = stiffness(mesh.points, mesh.cells)
        b = load_vector(mesh.points, mesh.cells, np.full(len(mesh.points), 6.0))
        sol = solve_dirichlet(K, b, mesh.boundary, 0.0)
        l2.append(l2_relative_error(mesh.points, mesh.cells, sol.x, exact))
        hs.append(1.0 / n)
    assert np.all(rates(l2, hs) > 1.6), (l2, rates(l2, hs))
    assert l2[-1] < 2e-2


def test_conductivity_jump_series_layers_exact():
    # two slabs in series (sigma 0.02 and 2.0 S/m, a 100x jump like lung vs blood), u = 1 at x = 0 and
    # 0 at x = 1, insulated elsewhere: the exact u is piecewise linear with a kink on the interface
    # x = 0.5, which is a mesh plane, so P1 reproduces it to solver precision
    n = 24
    p, c = box_mesh((n, n // 2, n // 2), lengths=(1.0, 0.5, 0.5))
    centroid_x = p[c][:, :, 0].mean(axis=1)
    s1, s2 = 0.02, 2.0
    sigma = np.where(centroid_x < 0.5, s1, s2)
    K = stiffness(p, c, sigma)
    left, right = np.flatnonzero(p[:, 0] < 1e-12), np.flatnonzero(p[:, 0] > 1 - 1e-12)
    for method in ("amg", "direct"):
        sol = solve_dirichlet(K, np.zeros(len(p)), np.concatenate([left, right]),
                              np.concatenate([np.ones(left.size), np.zeros(right.size)]), method=method)
        current = 1.0 / (0.5 / s1 + 0.5 / s2)  # current density through the stack
        x = p[:, 0]
        exact = np.where(x <= 0.5, 1.0 - current * x / s1, current * (1.0 - x) / s2)
        np.testing.assert_allclose(sol.x, exact, atol=1e-8)
        # the Dirichlet reaction at the left face is the total current (flux x area 0.25)
        np.testing.assert_allclose((K @ sol.x)[left].sum(), current * 0.25, rtol=1e-7)

def test_amg_and_direct_agree_and_solver_reuse():
    p, c = box_mesh((12, 12, 12))
    K = stiffness(p, c)
    bnd = box_boundary(p)
    rng = np.random.default_rng(3)
    b = load_vector(p, c, rng.normal(size=(len(p), 3)))
    g = rng.normal(size=(bnd.size, 3))
    amg = Solver(K, bnd, method="amg", tol=1e-12)
    direct = Solver(K, bnd, method="direct")
    xa = amg.solve(b, g)
    xd = direct.solve(b, g)
    assert xa.method == "amg-cg" and xd.method == "direct" and xd.iterations == 0
    assert xa.x.shape == (len(p), 3)
    np.testing.assert_allclose(xa.x, xd.x, atol=1e-9 * np.abs(xd.x).max())
    # one right-hand side at a time gives the same columns, boundary values are imposed exactly
    for j in range(3):
        np.testing.assert_allclose(amg.solve(b[:, j], g[:, j]).x, xa.x[:, j], atol=1e-9 * np.abs(xd.x).max())
    np.testing.assert_array_equal(xa.x[bnd], g)
    # free rows satisfy K x = b
    free = np.setdiff1d(np.arange(len(p)), bnd)
    r = (K @ xd.x - b)[free]
    assert np.abs(r).max() < 1e-10 * np.abs(b).max()


# ------------------------------------------------------------------------------------ Neumann


def test_pure_neumann_cosine_solution_zero_mean():
    def exact(x):
        return np.cos(np.pi * x[..., 0]) * np.cos(np.pi * x[..., 1]) * np.cos(np.pi * x[..., 2])

    errs = []
    for n in (8, 16):
        p, c = box_mesh((n, n, n))
        K = stiffness(p, c)
        b = load_vector(p, c, 3 * np.pi**2 * exact(p))  # du/dn = 0 on the faces, int u = 0
        sol = solve_neumann(K, b)
        assert abs(sol.x.mean()) < 1e-12
        ue = exact(p) - exact(p).mean()
        errs.append(np.abs(sol.x - ue).max())
        np.testing.assert_allclose(K @ sol.x, b, atol=1e-9 * np.abs(b).max())
    # observed max errors 0.089 -> 0.026 (rate 1.76, approaching 2); a first-order bug gives ratio ~2
    assert errs[1] < errs[0] / 3.0 and errs[1] < 0.04
    # volume-weighted zero mean (int u dV = 0) with weights = lumped mass
    w = lumped_mass(p, c)
    sol_w = solve_neumann(K, b, weights=w)
    assert abs(w @ sol_w.x) < 1e-12
    np.testing.assert_allclose(sol_w.x - sol_w.x.mean(), sol.x, atol=1e-9)


def test_neumann_lead_field_style_reuse_and_incompatible_rhs():
    p, c = box_mesh((10, 10, 10))
    K = stiffness(p, c, 0.2)
    solver = Solver(K)  # pure Neumann, set up once
    rng = np.random.default_rng(5)
    pairs = rng.choice(len(p), size=(4, 2), replace=False)
    B = np.zeros((len(p), 4))
    B[pairs[:, 0], np.arange(4)] = 1.0  # unit current in at one electrode, out at another
    B[pairs[:, 1], np.arange(4)] = -1.0
    block = solver.solve(B)
    for j in range(4):
        single = solver.solve(B[:, j])
        np.testing.assert_allclose(single.x, block.x[:, j], atol=1e-10)
        np.testing.assert_allclose(K @ single.x, B[:, j], atol=1e-10)
    # reciprocity of the Neumann Green's function: phi_j(a_i) - phi_j(b_i) == phi_i(a_j) - phi_i(b_j)
    T = block.x[pairs[:, 0]] - block.x[pairs[:, 1]]
    np.testing.assert_allclose(T, T.T, atol=1e-9)
    with pytest.raises(SingularSystemError, match="do not balance"):
        solver.solve(np.ones(len(p)))
    projected = solver.solve(np.ones(len(p)), project=True)
    np.testing.assert_allclose(projected.x, 0.0, atol=1e-12)  # the mean-free part of a constant is 0


# ------------------------------------------------------------------------------------ gradients


def test_gradients_exact_for_linear_fields():
    mesh = shell(4, 2)
    p, c = mesh.points, mesh.cells
    G = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    u = p @ G.T + np.array([4.0, -1.0])  # two linear fields (n, 2)
    gc = cell_gradients(p, c, u)
    assert gc.shape == (len(c), 2, 3)
    np.testing.assert_allclose(gc, np.broadcast_to(G, gc.shape), atol=1e-11)
    gn = nodal_gradients(p, c, u)
    assert gn.shape == (len(p), 2, 3)
    np.testing.assert_allclose(gn, np.broadcast_to(G, gn.shape), atol=1e-11)
    np.testing.assert_allclose(nodal_gradients(p, c, u[:, 0]), np.broadcast_to(G[0], (len(p), 3)), atol=1e-11)
    np.testing.assert_allclose(cell_gradients(p, c, u[:, 1]), np.broadcast_to(G[1], (len(c), 3)), atol=1e-11)


def test_nodal_gradient_of_smooth_field_converges_and_orphans_are_nan():
    errs = []
    for n in (4, 8):
        p, c = box_mesh((n, n, n))
        u = np.sin(p[:, 0]) * np.exp(p[:, 1]) + p[:, 2] ** 2
        exact = np.stack([np.cos(p[:, 0]) * np.exp(p[:, 1]), np.sin(p[:, 0]) * np.exp(p[:, 1]), 2 * p[:, 2]], 1)
        interior = np.setdiff1d(np.arange(len(p)), box_boundary(p))
        errs.append(np.abs(nodal_gradients(p, c, u) - exact)[interior].max())
    assert errs[1] < errs[0] / 1.8  # at least first order (recovery on a uniform lattice)
    p2 = np.vstack([p, [[5.0, 5.0, 5.0]]])  # an unused point
    gn = nodal_gradients(p2, c, np.zeros(len(p2)))
    assert np.isnan(gn[-1]).all() and np.all(gn[:-1] == 0)


# ------------------------------------------------------------------------------------ meshes


@pytest.mark.parametrize("kind", ["shell", "ball"])
def test_structured_meshes_conforming_and_well_shaped(kind):
    if kind == "shell":
        nt, nr = 6, 3
        mesh = spherical_shell_mesh(1.0, 2.0, nt, nr)
        p, c = mesh.points, mesh.cells
        assert len(p) == (6 * nt**2 + 2) * (nr + 1) and len(c) == 36 * nt**2 * nr
        np.testing.assert_allclose(np.linalg.norm(p[mesh.inner], axis=1), 1.0)
        np.testing.assert_allclose(np.linalg.norm(p[mesh.outer], axis=1), 2.0)
        radii = {1.0, 2.0}
    else:
        n = 4
        mesh = ball_mesh(1.0, n)
        p, c = mesh.points, mesh.cells
        assert len(p) == (2 * n + 1) ** 3 and len(c) == 48 * n**3
        np.testing.assert_allclose(np.linalg.norm(p[mesh.boundary], axis=1), 1.0)
        radii = {1.0}
    vol = tet_signed_volumes(p, c)
    assert vol.min() > 0  # positively oriented
    # conforming: every face is shared by at most two cells and faces used once lie on the spheres
    faces = np.sort(np.concatenate([c[:, [1, 2, 3]], c[:, [0, 2, 3]], c[:, [0, 1, 3]], c[:, [0, 1, 2]]]), axis=1)
    uniq, counts = np.unique(faces, axis=0, return_counts=True)
    assert counts.max() == 2
    r_bnd = np.round(np.linalg.norm(p[uniq[counts == 1]], axis=2), 12)
    assert set(np.unique(r_bnd)) == radii
    assert np.all(r_bnd.min(axis=1) == r_bnd.max(axis=1))  # each boundary face on one sphere
    # no slivers: minimum dihedral angle (observed 24.6 deg shell, 30 deg ball)
    P = p[c]
    normals = []
    for f, opp in (((1, 2, 3), 0), ((0, 2, 3), 1), ((0, 1, 3), 2), ((0, 1, 2), 3)):
        nv = np.cross(P[:, f[1]] - P[:, f[0]], P[:, f[2]] - P[:, f[0]])
        nv *= -np.sign(np.einsum("ij,ij->i", nv, P[:, opp] - P[:, f[0]]))[:, None]
        normals.append(nv / np.linalg.norm(nv, axis=1, keepdims=True))
    cosines = [np.einsum("ij,ij->i", normals[i], normals[j]) for i in range(4) for j in range(i + 1, 4)]
    min_dihedral = np.degrees(np.pi - np.arccos(np.clip(np.max(cosines, axis=0), -1, 1))).min()
    assert min_dihedral > 20.0


# ------------------------------------------------------------------------------------ errors


def test_mesh_and_conductivity_errors():
    p, c = box_mesh((2, 2, 2))
    flat = p.copy()
    flat[:, 2] = 0.0
    with pytest.raises(InvalidMeshError, match="degenerate"):
        stiffness(flat, c)
    with pytest.raises(InvalidMeshError, match="indices"):
        stiffness(p, c + len(p))
    with pytest.raises(InvalidMeshError, match=r"\(m, 4\)"):
        mass(p, c[:, :3])
    with pytest.raises(InvalidSystemError, match="positive"):
        stiffness(p, c, -1.0)
    with pytest.raises(InvalidSystemError, match="one value per cell"):
        stiffness(p, c, np.ones(len(c) + 1))
    with pytest.raises(InvalidSystemError, match="positive definite"):
        stiffness(p, c, np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(InvalidSystemError, match="symmetric"):
        stiffness(p, c, np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]))
    with pytest.raises(InvalidSystemError, match="zero length"):
        anisotropic_tensor(np.zeros((3, 3)), 0.3, 0.1)
    with pytest.raises(InvalidSystemError, match="parallel"):
        anisotropic_tensor(np.eye(3), 0.3, 0.1, sheet=2 * np.eye(3), sigma_n=0.05)
    with pytest.raises(InvalidSystemError, match="recompute"):
        stiffness(p, c, shape=shape_gradients(*box_mesh((1, 1, 1))))
    with pytest.raises(InvalidSystemError, match="element matrices"):
        assemble_csr(c, len(p), np.zeros((len(c), 3, 3)))
    with pytest.raises(InvalidSystemError, match="f_nodes"):
        load_vector(p, c, np.ones(len(p) - 1))
    with pytest.raises(InvalidSystemError, match="NaN"):
        cell_gradients(p, c, np.full(len(p), np.nan))
    with pytest.raises(InputError, match="r_inner < r_outer"):
        spherical_shell_mesh(2.0, 1.0, 4, 2)
    with pytest.raises(InputError, match="n >= 1"):
        ball_mesh(1.0, 0)


def test_solver_input_errors():
    p, c = box_mesh((3, 3, 3))
    K = stiffness(p, c)
    n = len(p)
    bnd = box_boundary(p)
    with pytest.raises(InvalidSystemError, match="square"):
        solve_dirichlet(K[:, :-1], np.zeros(n), bnd, 0.0)
    with pytest.raises(InvalidSystemError, match="shape"):
        solve_dirichlet(K, np.zeros(n + 1), bnd, 0.0)
    with pytest.raises(InvalidSystemError, match="NaN"):
        solve_dirichlet(K, np.full(n, np.nan), bnd, 0.0)
    bad = K.copy()
    bad.data[0] = np.inf
    with pytest.raises(InvalidSystemError, match="NaN/inf"):
        solve_dirichlet(bad, np.zeros(n), bnd, 0.0)
    with pytest.raises(InvalidSystemError, match="symmetric"):
        solve_dirichlet(K + sp.triu(K, 1) * 0.5, np.zeros(n), bnd, 0.0)
    with pytest.raises(InvalidSystemError, match=r"\[0, "):
        solve_dirichlet(K, np.zeros(n), [0, n], 0.0)
    with pytest.raises(SingularSystemError, match="unconstrained"):
        solve_dirichlet(K, np.zeros(n), np.array([], dtype=int), 0.0)
    with pytest.raises(InvalidSystemError, match="fixed_values"):
        solve_dirichlet(K, np.zeros(n), bnd, np.zeros(bnd.size + 1))
    with pytest.raises(InvalidSystemError, match="two different"):
        solve_dirichlet(K, np.zeros(n), [0, 0], [1.0, 2.0])
    with pytest.raises(InvalidSystemError, match="method"):
        solve_dirichlet(K, np.zeros(n), bnd, 0.0, method="magic")
    # duplicates with equal values and a boolean mask are accepted
    mask = np.zeros(n, dtype=bool)
    mask[bnd] = True
    x1 = solve_dirichlet(K, np.ones(n), np.concatenate([bnd, bnd[:3]]), 0.0).x
    x2 = solve_dirichlet(K, np.ones(n), mask, 0.0).x
    np.testing.assert_allclose(x1, x2, atol=1e-12)


def test_singular_problems_are_reported():
    # two separate boxes, Dirichlet nodes only in the first: the second floats
    p, c = box_mesh((3, 3, 3))
    p2 = np.vstack([p, p + [5.0, 0, 0]])
    c2 = np.vstack([c, c + len(p)])
    K = stiffness(p2, c2)
    with pytest.raises(SingularSystemError, match="no Dirichlet node"):
        solve_dirichlet(K, np.zeros(len(p2)), box_boundary(p), 0.0)
    # the Neumann solver handles each region separately (zero mean in each)
    b = np.zeros(len(p2))
    b[[0, 5]] = 1.0, -1.0
    b[[len(p) + 1, len(p) + 7]] = 2.0, -2.0
    sol = solve_neumann(K, b)
    assert abs(sol.x[: len(p)].mean()) < 1e-12 and abs(sol.x[len(p):].mean()) < 1e-12
    np.testing.assert_allclose(K @ sol.x, b, atol=1e-10)
    # a point used by no cell
    p3 = np.vstack([p, [[9.0, 9.0, 9.0]]])
    K3 = stiffness(p3, c)
    with pytest.raises(SingularSystemError, match="belong to no element"):
        solve_dirichlet(K3, np.zeros(len(p3)), box_boundary(p), 0.0)
    with pytest.raises(SingularSystemError, match="belong to no element"):
        solve_neumann(K3, np.zeros(len(p3)))


def test_amg_non_convergence_raises_or_falls_back():
    p, c = box_mesh((14, 14, 14))
    K = stiffness(p, c)
    bnd = box_boundary(p)
    b = load_vector(p, c, np.ones(len(p)))
    with pytest.raises(ConvergenceError, match="did not reach"):
        Solver(K, bnd, method="amg", maxiter=1, tol=1e-12).solve(b)
    fallback = Solver(K, bnd, method="auto", maxiter=1, tol=1e-12, direct_below=0).solve(b)
    assert fallback.method == "direct"
    reference = Solver(K, bnd, method="direct").solve(b)
    np.testing.assert_allclose(fallback.x, reference.x, atol=1e-12)


@pytest.mark.slow
def test_large_box_amg_scales():
    # 1.57 million tets: AMG-CG must still converge in a mesh-independent number of iterations
    # (observed 16 at 35k nodes, 19 at 275k nodes) with a second-order-small error
    def exact(x):
        return np.sin(np.pi * x[..., 0]) * np.sin(np.pi * x[..., 1]) * np.sin(np.pi * x[..., 2])

    p, c = box_mesh((64, 64, 64))
    K = stiffness(p, c)
    b = load_vector(p, c, 3 * np.pi**2 * exact(p))
    sol = solve_dirichlet(K, b, box_boundary(p), 0.0)
    assert sol.method == "amg-cg" and sol.iterations < 40 and sol.residual < 1e-9
    assert np.abs(sol.x - exact(p)).max() < 1.5e-3  # observed 1.0e-3 (4.0e-3 at n = 32: ratio 4)
