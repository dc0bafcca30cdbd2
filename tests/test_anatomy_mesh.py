"""Heart and torso meshes of the 1 mm phantom, a real LV, and bad input."""

from functools import lru_cache

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.anatomy.mesh import HEART_REGIONS, heart_mesh, torso_mesh
from cardiotwin.errors import AnatomyError
from cardiotwin.io import read_mesh
from cardiotwin.meshing.voxelize import voxelize
from conftest import phantom


@lru_cache(maxsize=1)
def heart():
    return heart_mesh(phantom(0, 1.0).labels)


def test_heart_mesh_regions_volumes_quality():
    res = heart()
    r, mesh = res.report, res.mesh
    assert {lab.name(t) for t in np.unique(mesh.tags)} == set(HEART_REGIONS)
    for name, v in r["volumes"].items():
        assert abs(v["rel_error"]) < 0.03, f"{name}: {v}"
    q = r["quality"]
    assert q["dihedral_deg"]["min"] >= 5.0 and q["inverted"] == 0 and q["zero_volume"] == 0
    assert 1.0 <= q["edge_mm"]["mean"] <= 1.5  # cube edge 1 mm; mean of h, h sqrt2, h sqrt3 edges
    for name in lab.CHAMBER_WALLS:
        assert r["components"][name] == 1, f"{name} in {r['components'][name]} pieces"


def test_heart_mesh_is_smooth_not_a_staircase():
    """Boundary triangles of a voxel mesh have normals along the 6 axes or the Kuhn diagonals;
    after smoothing most are in neither family."""
    from cardiotwin.meshing.smooth import surface_faces

    mesh = heart().mesh
    faces, *_ = surface_faces(mesh.cells, mesh.tags, mesh.n_points)
    p = mesh.points[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    axis_aligned = (np.abs(n) > 0.999).any(axis=1)
    assert axis_aligned.mean() < 0.3


def test_torso_mesh_is_graded_watertight_and_labelled():
    labels = phantom(0, 1.0).labels
    res = torso_mesh(labels)
    r, mesh = res.report, res.mesh
    present = {lab.name(t) for t in np.unique(mesh.tags)}
    assert {"torso", "lung_left", "lung_right", "heart", "lv_blood", "rv_blood", "la_blood", "ra_blood"} <= present
    assert r["skin"]["watertight"]
    for name in ("torso", "lung_left", "lung_right", "heart", "lv_blood", "rv_blood"):
        assert abs(r["volumes"][name]["rel_error"]) < 0.03, f"{name}: {r['volumes'][name]}"
    assert r["quality"]["dihedral_deg"]["min"] >= 5.0 and r["quality"]["inverted"] == 0
    # graded: short edges in the heart, long ones at the skin
    from cardiotwin.meshing.topology import unique_faces

    faces, owners = unique_faces(mesh.cells, mesh.n_points)
    skin = faces[owners[:, 1] < 0]
    skin_edge = np.linalg.norm(mesh.points[skin[:, 0]] - mesh.points[skin[:, 1]], axis=1).mean()
    heart_cells = mesh.cells[mesh.tags == lab.label("heart")]
    heart_edge = np.linalg.norm(mesh.points[heart_cells[:, 0]] - mesh.points[heart_cells[:, 1]], axis=1).mean()
    assert heart_edge < 3.0 and skin_edge > 5.0


def test_real_lv_mesh_remeshes_with_its_volume(shared_data):
    lv = read_mesh(shared_data / "mesh_rodero01_lv_fibres" / "heart_model.vtu", tag_map={1: 20})
    labels = voxelize(lv, 1.0)
    res = heart_mesh(labels, regions=("lv_myocardium",))
    assert res.report["components"] == {"lv_myocardium": 1}
    original = lv.region_volumes_ml()["lv_myocardium"]
    assert abs(res.mesh.region_volumes_ml()["lv_myocardium"] - original) / original < 0.03
    assert res.report["quality"]["dihedral_deg"]["min"] >= 5.0


def test_mesh_bad_input():
    labels = phantom(1, 2.0).labels
    with pytest.raises(AnatomyError, match="edge_mm"):
        heart_mesh(labels, edge_mm=0.01)
    empty = labels.with_array(np.zeros_like(labels.array))
    with pytest.raises(AnatomyError, match="none of the heart regions"):
        heart_mesh(empty)
    with pytest.raises(AnatomyError, match="empty"):
        torso_mesh(empty)
    no_torso = labels.with_array(np.where(labels.array == lab.label("torso"), 0, labels.array))
    with pytest.raises(AnatomyError, match="no torso"):
        torso_mesh(no_torso)
