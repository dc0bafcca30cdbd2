import numpy as np

from cardiotwin.meshing import box_mesh, kuhn_lattice
from cardiotwin.types import TetMesh


def faces(cells):
    f = np.sort(np.vstack([cells[:, [1, 2, 3]], cells[:, [0, 2, 3]], cells[:, [0, 1, 3]], cells[:, [0, 1, 2]]]), axis=1)
    return np.unique(f, axis=0, return_counts=True)


def test_box_is_exact_and_conforming():
    p, c = box_mesh((3, 4, 5), (3.0, 4.0, 10.0), origin=(1, 2, 3))
    mesh = TetMesh(p, c)  # validates orientation
    assert mesh.n_points == 4 * 5 * 6 and mesh.n_cells == 6 * 60
    assert mesh.cell_volumes().sum() == np.float64(120.0)
    _, counts = faces(c)
    boundary = (counts == 1).sum()
    assert counts.max() == 2 and boundary == 2 * 2 * (3 * 4 + 4 * 5 + 3 * 5)  # 2 triangles per boundary quad


def test_masked_lattice_keeps_voxel_volumes_and_labels():
    keep = np.zeros((6, 6, 6), bool)
    keep[1:5, 1:5, 1:5] = True
    keep[2, 3, 2] = False  # a hole
    p, c, cube = kuhn_lattice(keep, (0.5, 0.5, 2.0), origin=(-1, 0, 0))
    mesh = TetMesh(p, c)
    assert np.isclose(mesh.cell_volumes().sum(), keep.sum() * 0.5)
    assert len(np.unique(c)) == len(p)  # no unused nodes
    centroid = p[c].mean(1)
    np.testing.assert_array_equal(np.floor((centroid - (-1, 0, 0)) / (0.5, 0.5, 2.0)).astype(int), cube)
    assert faces(c)[1].max() == 2
