"""The thin fast endocardial layer against the analytic solution of a layered slab.

A slab of myocardium oblique to the mesh lattice (so its faces are staircased and smoothed, as the
endocardium of an image-based heart is) has a fast layer of depth d on its lower face. For a point
source on that face the exact first arrivals are, at in-plane distance s: s / cv_endo on the face,
and at depth e > d the head wave, s / cv_endo + (e - d) sqrt(1/cv^2 - 1/cv_endo^2), once s is past
the critical distance (e - d) tan(asin(cv / cv_endo)) (Cerveny 2001, Seismic Ray Theory, ch. 2).
"""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.anatomy.mesh import heart_mesh
from cardiotwin.electrophysiology.conduction import ENDOCARDIUM, SinusRhythmModel
from cardiotwin.electrophysiology.parameters import EpParameters, RootNode
from cardiotwin.types import LabelImage

NORMAL = np.array([1.0, 0.6, 2.0]) / np.linalg.norm([1.0, 0.6, 2.0])  # oblique to every lattice axis


def _slab(thickness: float, upper: str = "epi", size: float = 70.0):
    """Oblique slab mesh (1 mm lattice) with the fields the sinus-rhythm model needs; the lower face
    is LV endocardium, the upper one epicardium or (``upper="rv"``) RV endocardium (a septum)."""
    n = int(size)
    ijk = np.indices((n, n, n)).reshape(3, -1).T + 0.5
    centre = np.full(3, size / 2)
    h = (ijk - centre) @ NORMAL
    radial = np.linalg.norm((ijk - centre) - np.outer(h, NORMAL), axis=1)
    keep = (np.abs(h) <= thickness / 2) & (radial < size / 2 - 3)
    labels = LabelImage(np.where(keep, lab.label("lv_myocardium"), 0).reshape(n, n, n).astype(np.int16),
                        (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    mesh = heart_mesh(labels, edge_mm=1.0, regions=("lv_myocardium",)).mesh
    x = mesh.points - (centre - 0.5)  # voxel centres sit at origin + index
    height = x @ NORMAL
    radius = np.linalg.norm(x - np.outer(height, NORMAL), axis=1)
    from cardiotwin.meshing.topology import unique_faces

    faces, owners = unique_faces(mesh.cells, mesh.n_points)
    boundary = np.zeros(mesh.n_points, bool)
    boundary[np.unique(faces[owners[:, 1] < 0])] = True
    face_node = boundary & (radius < size / 2 - 5)  # nodes of the two large faces (not the rim)
    lower, top = face_node & (height < 0), face_node & (height > 0)
    flag = np.zeros(mesh.n_points, np.int8)
    flag[lower] = ENDOCARDIUM["lv"]
    if upper == "rv":
        flag[top] = ENDOCARDIUM["rv"]
    endo = np.flatnonzero(flag > 0)
    epi = np.flatnonzero(top) if upper == "epi" else np.flatnonzero(boundary & (radius >= size / 2 - 5))
    zeros = np.zeros(mesh.n_points)
    fields = {"endocardium": flag, "endo_distance_mm": cKDTree(mesh.points[endo]).query(mesh.points)[0],
              "epi_distance_mm": cKDTree(mesh.points[epi]).query(mesh.points)[0],
              "uvc_apicobasal": zeros, "uvc_rotational": zeros, "uvc_transventricular": zeros}
    tangent = np.cross(NORMAL, [0.0, 0.0, 1.0])
    fibre = np.tile(tangent / np.linalg.norm(tangent), (mesh.n_cells, 1))
    mesh = mesh.with_fields(point_data=fields, cell_data={"fibre": fibre})
    return mesh, height - height[lower].mean(), radius


@pytest.fixture(scope="module")
def slab():
    return _slab(12.0)


def _solve(mesh, params, source):
    model = SinusRhythmModel(mesh, {}, backend="numba")
    return model.activation_batch(params, [(np.array([source]), np.zeros(1))] * len(params))


def _params(depth, cv_endo=3.0, cv=0.4):
    root = (RootNode("r", 0.5, 0.0, "lv", 0.0),)
    return EpParameters(roots=root, cv_endo=cv_endo, endo_depth_mm=depth, cv_fibre=cv, cv_transverse=cv)


def _distances(mesh, radius):
    pd = mesh.point_data
    lower = np.flatnonzero(pd["endocardium"] == ENDOCARDIUM["lv"])
    source = lower[np.argmin(radius[lower])]
    r = mesh.points - mesh.points[source]
    return source, np.linalg.norm(r - np.outer(r @ NORMAL, NORMAL), axis=1), pd["endo_distance_mm"]


CV_ENDO, CV = 3.0, 0.4
SLOWNESS = np.sqrt(1 / CV**2 - 1 / CV_ENDO**2)


def test_thin_layer_matches_the_layered_slab(slab):
    """Arrivals at 15-30 mm from the source within 4 % (median) of the analytic ones on the face
    and at depths 1-10 mm (in the band, where the head-wave delay is added after the solve, and
    below it, where the shell adds it in the solve) for layer depths 0.5-2.5 mm; the face does not
    depend on the depth. (Measured: 0.4-3.2 %; a 4 mm layer, where neither addition acts, shows
    the solver's own first-order head-wave error, 3-7 % here.)"""
    mesh, _, radius = slab
    source, s, e = _distances(mesh, radius)
    far = (s > 15) & (s < 30) & (radius < 30)
    depths = (0.5, 1.5, 2.5)
    at = _solve(mesh, [_params(d, CV_ENDO, CV) for d in depths], source)
    face = far & (e < 1e-9)
    for k, d in enumerate(depths):
        assert np.median(np.abs(at[k, face] / (s[face] / CV_ENDO) - 1)) < 0.04, d
        for depth in (1.0, 3.0, 5.0, 7.0, 10.0):
            deep = far & (np.abs(e - depth) < 0.3)
            exact = s[deep] / CV_ENDO + np.maximum(e[deep] - d, 0) * SLOWNESS
            assert np.median(np.abs(at[k, deep] / exact - 1)) < 0.04, (d, depth, np.median(at[k, deep] / exact))
    np.testing.assert_allclose(at[0, face], at[2, face], rtol=1e-9)


def test_front_crosses_the_septum_at_the_slow_speed():
    """A 9 mm septum between LV and RV layers, source on the LV face: the RV face is reached by the
    head wave through the slow tissue between the layers, s / cv_endo + (w - 2 d) s_t, within 5 %
    (measured 1-4 %; a band without the shell delay crossed it in a quarter of that time)."""
    mesh, height, radius = _slab(9.0, upper="rv")
    source, s, e = _distances(mesh, radius)
    pd = mesh.point_data
    rv = (pd["endocardium"] == ENDOCARDIUM["rv"]) & (s > 10) & (s < 30) & (radius < 30)
    width = height[rv].mean()  # LV face at height 0
    depths = (0.5, 1.5)
    at = _solve(mesh, [_params(d, CV_ENDO, CV) for d in depths], source)
    for k, d in enumerate(depths):
        exact = s[rv] / CV_ENDO + (width - 2 * d) * SLOWNESS
        assert np.median(np.abs(at[k, rv] / exact - 1)) < 0.05, (d, np.median(at[k, rv] / exact))
