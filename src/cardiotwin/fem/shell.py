"""Structured tetrahedral meshes of a spherical shell and a ball, for FEM tests and validation.

Both start from the *cubed sphere* (Sadourny 1972, Mon Weather Rev 100:136; Ronchi, Iacono &
Paolucci 1996, J Comput Phys 124:93): the surface of a cube, gridded n x n per face, projected onto
the sphere with the equiangular map x -> tan(pi/4 x), which keeps the cells of nearly equal size
and shape over the whole sphere (no pole singularity).

* Shell: the surface triangulation (every quad split by the diagonal through the vertex farthest
  from its face centre, so the three quads meeting at a cube corner are split symmetrically) is
  extruded radially into prisms, each cut into 3 tetrahedra with the lowest-index rule (every
  quad face of a prism is cut by the diagonal leaving its lowest-numbered surface vertex), which
  is the same on both prisms sharing the face, so the mesh is conforming (Dompierre et al. 1999,
  Proc 8th Int Meshing Roundtable, "How to subdivide pyramids, prisms and hexahedra into
  tetrahedra").
* Ball: a Kuhn lattice of the cube [-n, n]^3 reflected into every octant (the main diagonal of
  every small cube points away from the centre, so the split is symmetric and conforming across the
  coordinate planes), mapped onto the ball by concentric cubes: a lattice point p with
  s = |p|_inf goes to radius R s / n along the equiangular direction of p / s.

Every tetrahedron is returned positively oriented (VTK order). Refining (doubling n) gives
shape-regular families, so convergence studies see clean asymptotic rates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cardiotwin.errors import InputError
from cardiotwin.types import tet_signed_volumes

__all__ = ["ShellMesh", "BallMesh", "spherical_shell_mesh", "ball_mesh", "cubed_sphere_surface"]


class ShellMesh(NamedTuple):
    points: np.ndarray  # (n, 3) mm
    cells: np.ndarray  # (m, 4) int64, positively oriented
    inner: np.ndarray  # node indices on r = r_inner
    outer: np.ndarray  # node indices on r = r_outer


class BallMesh(NamedTuple):
    points: np.ndarray  # (n, 3) mm
    cells: np.ndarray  # (m, 4) int64, positively oriented
    boundary: np.ndarray  # node indices on r = radius


def _equiangular_directions(cube_points: np.ndarray) -> np.ndarray:
    """Unit directions of points on (or scaled to) the surface of the cube [-1, 1]^3."""
    d = np.tan(np.pi / 4 * cube_points)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def cubed_sphere_surface(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere triangulation: directions (6 n^2 + 2, 3) and triangles (12 n^2, 3), outward CCW."""
    n = int(n)
    if n < 1:
        raise InputError(f"the cubed sphere needs n >= 1 cells per face edge, got {n}")
    # surface lattice points of [0, n]^3
    ijk = np.stack(np.meshgrid(*(np.arange(n + 1),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    on_surface = ((ijk == 0) | (ijk == n)).any(axis=1)
    ids = np.full(len(ijk), -1, dtype=np.int64)
    ids[on_surface] = np.arange(int(on_surface.sum()))
    surf = ijk[on_surface]

    def node(i, j, k):
        return ids[(i * (n + 1) + j) * (n + 1) + k]

    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    # the diagonal passes through the quad vertex farthest from the face centre
    along_main = (2 * i + 1 - n) * (2 * j + 1 - n) >= 0
    tris = []
    for axis in range(3):
        b, c = [a for a in range(3) if a != axis]
        for side in (0, n):
            corner = []
            for di, dj in ((0, 0), (1, 0), (1, 1), (0, 1)):
                idx = [None, None, None]
                idx[axis] = np.full_like(i, side)
                idx[b], idx[c] = i + di, j + dj
                corner.append(node(*idx))
            q0, q1, q2, q3 = corner
            t_main = np.concatenate([np.stack([q0, q1, q2], 1), np.stack([q0, q2, q3], 1)])
            t_anti = np.concatenate([np.stack([q0, q1, q3], 1), np.stack([q1, q2, q3], 1)])
            keep = np.concatenate([along_main, along_main])
            tris.append(np.where(keep[:, None], t_main, t_anti))
    tris = np.concatenate(tris)
    dirs = _equiangular_directions(2.0 * surf / n - 1.0)
    # orient outward (counter-clockwise seen from outside)
    p = dirs[tris]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    flip = np.einsum("ij,ij->i", normal, p.sum(axis=1)) < 0
    tris[flip, 1], tris[flip, 2] = tris[flip, 2], tris[flip, 1].copy()
    return dirs, tris


def _orient(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    neg = tet_signed_volumes(points, cells) < 0
    cells[neg, 2], cells[neg, 3] = cells[neg, 3], cells[neg, 2].copy()
    return cells


def spherical_shell_mesh(
    r_inner: float, r_outer: float, n_tangential: int, n_radial: int, centre=(0.0, 0.0, 0.0)
) -> ShellMesh:
    """Tetrahedral mesh of the shell r_inner <= |x - centre| <= r_outer (mm).

    ``n_tangential`` cells along each cube-face edge (a quarter great circle), ``n_radial`` equal
    layers. Nodes: (6 n_t^2 + 2)(n_r + 1); tetrahedra: 36 n_t^2 n_r. Boundary nodes lie exactly on
    the two spheres (the boundary faces are chords).
    """
    if not (np.isfinite(r_inner) and np.isfinite(r_outer) and 0 < r_inner < r_outer):
        raise InputError(f"need 0 < r_inner < r_outer, got r_inner={r_inner}, r_outer={r_outer}")
    if int(n_radial) < 1:
        raise InputError(f"n_radial must be >= 1, got {n_radial}")
    dirs, tris = cubed_sphere_surface(n_tangential)
    s = len(dirs)
    radii = np.linspace(r_inner, r_outer, int(n_radial) + 1)
    points = (radii[:, None, None] * dirs[None]).reshape(-1, 3) + np.asarray(centre, dtype=float)
    # prism split by the lowest-index rule: with a < b < c (surface ids) and ' the layer above,
    # the tets are (a b c c'), (a b b' c'), (a a' b' c')
    t = np.sort(tris, axis=1)
    a, b, c = t[:, 0], t[:, 1], t[:, 2]
    layers = np.arange(int(n_radial))[:, None] * s
    a0, b0, c0 = (a[None] + layers).ravel(), (b[None] + layers).ravel(), (c[None] + layers).ravel()
    a1, b1, c1 = a0 + s, b0 + s, c0 + s
    cells = np.concatenate(
        [np.stack([a0, b0, c0, c1], 1), np.stack([a0, b0, b1, c1], 1), np.stack([a0, a1, b1, c1], 1)]
    ).astype(np.int64)
    cells = _orient(points, cells)
    inner = np.arange(s, dtype=np.int64)
    outer = np.arange(s * int(n_radial), s * (int(n_radial) + 1), dtype=np.int64)
    return ShellMesh(points, cells, inner, outer)


# corners of the unit cube (index = i + 2 j + 4 k) and the 6 Kuhn paths 0 -> 7
_CORNERS = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)])
_KUHN = np.array([(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)])


def ball_mesh(radius: float, n: int, centre=(0.0, 0.0, 0.0)) -> BallMesh:
    """Tetrahedral mesh of the ball |x - centre| <= radius (mm), ``n`` cells from centre to surface.

    Nodes: (2n + 1)^3; tetrahedra: 48 n^3. Boundary nodes lie exactly on the sphere.
    """
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"radius must be positive, got {radius}")
    n = int(n)
    if n < 1:
        raise InputError(f"ball_mesh needs n >= 1 cells from centre to surface, got {n}")
    m = 2 * n + 1
    grid = np.arange(-n, n + 1)
    lat = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1).reshape(-1, 3)
    # cubes by lower corner; reflect the Kuhn split so its main diagonal points away from the centre
    lo = np.stack(np.meshgrid(*(np.arange(-n, n),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    neg = lo < 0  # octant of the cube (a cube lies entirely on one side of each coordinate plane)
    # local corner offsets in the reflected frame: corner bit 1 means "away from centre"
    off = np.where(neg[:, None, :], 1 - _CORNERS[None], _CORNERS[None])  # (cubes, 8, 3)
    corner = lo[:, None, :] + off + n
    corner_ids = (corner[..., 0] * m + corner[..., 1]) * m + corner[..., 2]
    cells = corner_ids[:, _KUHN].reshape(-1, 4).astype(np.int64)
    s = np.abs(lat).max(axis=1).astype(float)
    safe = np.where(s > 0, s, 1.0)
    scaled = lat / safe[:, None]
    scaled[s == 0] = 1.0  # the centre: any direction, its radius is 0
    points = (radius * s / n)[:, None] * _equiangular_directions(scaled)
    points += np.asarray(centre, dtype=float)
    cells = _orient(points, cells)
    boundary = np.flatnonzero(s == n).astype(np.int64)
    return BallMesh(points, cells, boundary)
