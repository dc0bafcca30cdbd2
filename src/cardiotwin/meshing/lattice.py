"""Kuhn (Freudenthal) lattices: every cube of a voxel grid split into 6 tetrahedra around its main
diagonal.

All cubes use the same split, so neighbouring cubes share faces exactly (a conforming mesh), every
tetrahedron is congruent to the same Kuhn simplex (dihedral angles 45, 60 and 90 degrees), and the
mesh is compatible with newest-vertex bisection (Maubach 1995, SIAM J Sci Comput 16:210), which
keeps refined meshes in a finite number of similarity classes. This is the voxel-to-tetrahedra route
of Prassl et al. 2009 (IEEE Trans Biomed Eng 56:1318) for image-based cardiac meshes.
"""

from __future__ import annotations

import numpy as np

# corners of the unit cube, index = i + 2 j + 4 k
_CORNERS = np.array([[i, j, k] for k in (0, 1) for j in (0, 1) for i in (0, 1)])
# the 6 Kuhn simplices: paths 0 -> 7 along +x, +y, +z in every order, each listed so that its
# signed volume is positive (VTK convention)
_PATHS = [(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)]


def _oriented(paths):
    out = []
    for p in paths:
        c = _CORNERS[list(p)].astype(float)
        vol = np.dot(np.cross(c[1] - c[0], c[2] - c[0]), c[3] - c[0])
        out.append(p if vol > 0 else (p[0], p[2], p[1], p[3]))
    return np.array(out)


KUHN_TETS = _oriented(_PATHS)
KUHN_PATHS = np.array(_PATHS)  # vertex order along the cube diagonal, as newest-vertex bisection needs


def kuhn_lattice(keep: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), path_order: bool = False):
    """Tetrahedra of the cubes where ``keep[i, j, k]`` is True.

    Cube (i, j, k) spans ``origin + spacing * [(i, j, k), (i+1, j+1, k+1)]``. Returns ``points``
    (n, 3) in the same units as ``spacing``, ``cells`` (6 x cubes, 4) positively oriented (or, with
    ``path_order``, ordered along the cube diagonal for :mod:`cardiotwin.meshing.bisection`), and
    ``cube`` (6 x cubes, 3): the cube index of each tetrahedron (to carry voxel labels onto cells).
    Only the nodes used by kept cubes are returned.
    """
    keep = np.asarray(keep, dtype=bool)
    cubes = np.argwhere(keep)
    nx, ny, nz = (s + 1 for s in keep.shape)
    corner_ids = ((cubes[:, None, 0] + _CORNERS[None, :, 0]) * ny + (cubes[:, None, 1] + _CORNERS[None, :, 1])) * nz \
        + (cubes[:, None, 2] + _CORNERS[None, :, 2])
    cells_global = corner_ids[:, KUHN_PATHS if path_order else KUHN_TETS].reshape(-1, 4)
    used, cells = np.unique(cells_global, return_inverse=True)
    cells = cells.reshape(-1, 4)
    ijk = np.stack(np.unravel_index(used, (nx, ny, nz)), axis=1)
    points = ijk * np.asarray(spacing, dtype=float) + np.asarray(origin, dtype=float)
    return points, cells, np.repeat(cubes, 6, axis=0)


def box_mesh(n=(4, 4, 4), lengths=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    """A box split into n[0] x n[1] x n[2] cubes (cuboids) of 6 Kuhn tetrahedra each: (points, cells)."""
    n = tuple(int(v) for v in n)
    spacing = np.asarray(lengths, dtype=float) / np.asarray(n)
    points, cells, _ = kuhn_lattice(np.ones(n, dtype=bool), spacing, origin)
    return points, cells
