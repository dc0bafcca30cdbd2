"""Electrodes on the skin: closest points, ray exits, standard placement on the phantom, user
positions snapped to the skin, body-surface grids, CSV files, bad input."""

from functools import lru_cache

import numpy as np
import pytest

from cardiotwin import labels as lab
from cardiotwin.ecg.leads import (
    STANDARD_ELECTRODES,
    Electrodes,
    _closest_on_triangles,
    body_surface_grid,
    closest_skin_points,
    skin_surface,
    snap_electrodes,
    standard_electrodes,
)
from cardiotwin.errors import AnatomyError, CorruptFileError, ElectrodeError, InputFileNotFoundError
from cardiotwin.fem import ball_mesh
from cardiotwin.io.electrodes import electrodes_from_csv, read_electrodes_csv, write_electrodes_csv
from cardiotwin.types import TetMesh
from conftest import phantom

R = 100.0


@lru_cache(maxsize=1)
def ball_torso() -> TetMesh:
    """A ball 'torso' of radius 100 mm with a 'heart' region (r < 30 mm) in the middle."""
    b = ball_mesh(R, 6)
    r = np.linalg.norm(b.points[b.cells].mean(axis=1), axis=1)
    return TetMesh(b.points, b.cells, np.where(r < 30.0, lab.label("heart"), lab.label("torso")))


@lru_cache(maxsize=1)
def phantom_torso():
    from cardiotwin.anatomy.mesh import torso_mesh

    ph = phantom(0, 2.0)
    return ph, torso_mesh(ph.labels, heart_edge_mm=4.0, skin_edge_mm=12.0).mesh


# ------------------------------------------------------------------------------------ geometry


def test_skin_is_the_outer_boundary_with_outward_normals():
    torso = ball_torso()
    skin = skin_surface(torso)
    tri = skin.triangles
    assert np.allclose(np.linalg.norm(tri, axis=2), R)  # ball_mesh boundary nodes lie on the sphere
    cen = tri.mean(axis=1)
    assert np.all(np.einsum("ij,ij->i", skin.normals(), cen) > 0)
    assert len(skin.voids) == 0
    # total area of the chordal surface approaches 4 pi R^2 from below
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    assert 0.97 * 4 * np.pi * R**2 < area < 4 * np.pi * R**2


def test_an_interior_void_is_not_skin():
    b = ball_mesh(R, 4)
    cen = b.points[b.cells].mean(axis=1)
    keep = np.ones(len(b.cells), bool)
    keep[np.argmin(np.linalg.norm(cen - [20.0, 10.0, 0.0], axis=1))] = False  # one missing cell: a void
    torso = TetMesh(b.points, b.cells[keep], np.ones(keep.sum(), dtype=int))
    skin = skin_surface(torso)
    assert len(skin.voids) == 4
    assert np.allclose(np.linalg.norm(skin.triangles, axis=2), R)


def test_closest_point_on_triangles_matches_brute_force():
    rng = np.random.default_rng(3)
    a, b, c = (rng.normal(size=(300, 3)) for _ in range(3))
    p = rng.normal(size=(300, 3)) * 2
    bary = _closest_on_triangles(p, a, b, c)
    assert np.all(bary >= -1e-12) and np.allclose(bary.sum(1), 1)
    best = np.linalg.norm(np.einsum("qv,qvd->qd", bary, np.stack([a, b, c], 1)) - p, axis=1)
    # brute force over a fine barycentric lattice of each triangle (step 1/100)
    s = np.linspace(0, 1, 101)
    u, v = np.meshgrid(s, s, indexing="ij")
    ok = u + v <= 1
    u, v = u[ok], v[ok]
    grid = a[:, None] + u[None, :, None] * (b - a)[:, None] + v[None, :, None] * (c - a)[:, None]
    brute = np.linalg.norm(grid - p[:, None], axis=2).min(axis=1)
    assert np.all(best <= brute + 1e-12)
    assert np.all(brute - best <= 0.02 * np.maximum(np.linalg.norm(b - a, axis=1), np.linalg.norm(c - a, axis=1)))


def test_closest_skin_points_against_all_faces():
    torso = ball_torso()
    skin = skin_surface(torso)
    rng = np.random.default_rng(4)
    q = rng.normal(size=(200, 3))
    q *= (rng.uniform(50, 140, size=200) / np.linalg.norm(q, axis=1))[:, None]
    cp = closest_skin_points(q, skin)
    tri = skin.triangles
    F = len(tri)
    bary = _closest_on_triangles(np.repeat(q, F, 0), np.tile(tri[:, 0], (len(q), 1)),
                                 np.tile(tri[:, 1], (len(q), 1)), np.tile(tri[:, 2], (len(q), 1)))
    pts = np.einsum("qv,qvd->qd", bary, np.tile(tri, (len(q), 1, 1)))
    brute = np.linalg.norm(pts - np.repeat(q, F, 0), axis=1).reshape(len(q), F).min(axis=1)
    assert np.allclose(cp.distances, brute, atol=1e-9)
    assert np.allclose(np.linalg.norm(cp.points - q, axis=1), cp.distances)
    # sphere: the distance is | |q| - R | up to the chordal sagitta (< 0.6 mm here)
    assert np.allclose(cp.distances, np.abs(np.linalg.norm(q, axis=1) - R), atol=0.6)


# ------------------------------------------------------------------------------------ snapping


def test_snap_moves_points_onto_the_skin():
    torso = ball_torso()
    dirs = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0.6, 0.8]])
    el = snap_electrodes(["a", "b", "c"], dirs * (R + 10.0), torso)
    assert el.names == ("a", "b", "c")
    assert np.allclose(el.snap_mm, 10.0, atol=0.6)
    assert np.allclose(np.linalg.norm(el.positions, axis=1), R, atol=0.6)
    # position = barycentric combination of the triangle's nodes; nearest node is one of them
    assert np.allclose(np.einsum("ev,evd->ed", el.barycentric, torso.points[el.triangles]), el.positions)
    assert all(n in t for n, t in zip(el.nodes, el.triangles))
    assert el.select(["c", "a"]).names == ("c", "a")
    assert np.allclose((el.select(["a"]) + el.select(["b"])).positions, el.positions[:2])


def test_snap_rejects_far_inside_heart_and_bad_input():
    torso = ball_torso()
    with pytest.raises(ElectrodeError, match="too far from the skin"):
        snap_electrodes(["V1"], [[0.0, -(R + 50.0), 0.0]], torso)
    with pytest.raises(ElectrodeError, match="inside the heart"):
        snap_electrodes(["V1"], [[5.0, 0.0, 0.0]], torso)
    heart = TetMesh(*ball_mesh(15.0, 2, centre=(60.0, 0.0, 0.0))[:2])
    with pytest.raises(ElectrodeError, match="inside the heart"):
        snap_electrodes(["V1"], [[62.0, 0.0, 0.0]], torso, heart=heart)
    with pytest.raises(ElectrodeError, match="NaN"):
        snap_electrodes(["V1"], [[np.nan, 0.0, 0.0]], torso)
    with pytest.raises(ElectrodeError, match="shape"):
        snap_electrodes(["V1", "V2"], [[0.0, 0.0, R]], torso)
    with pytest.raises(ElectrodeError, match="duplicate"):
        snap_electrodes(["V1", "V1"], [[0.0, 0.0, R], [R, 0.0, 0.0]], torso)


def test_csv_round_trip_and_errors(tmp_path):
    torso = ball_torso()
    el = snap_electrodes(["RA", "LA"], [[-R, 0.0, 0.0], [0.0, -R, 5.0]], torso)
    path = write_electrodes_csv(el, tmp_path / "el.csv")
    names, pos = read_electrodes_csv(path)
    assert names == ("RA", "LA") and np.allclose(pos, el.positions, atol=1e-4)
    again = electrodes_from_csv(path, torso)
    assert np.allclose(again.positions, el.positions, atol=1e-4)
    (tmp_path / "bad1.csv").write_text("name,x,y,z\nV1,1,2\n")
    with pytest.raises(CorruptFileError, match="4 columns"):
        read_electrodes_csv(tmp_path / "bad1.csv")
    (tmp_path / "bad2.csv").write_text("V1,1,two,3\n")
    with pytest.raises(CorruptFileError, match="numbers"):
        read_electrodes_csv(tmp_path / "bad2.csv")
    (tmp_path / "empty.csv").write_text("# nothing\n")
    with pytest.raises(CorruptFileError, match="no electrodes"):
        read_electrodes_csv(tmp_path / "empty.csv")
    with pytest.raises(InputFileNotFoundError):
        read_electrodes_csv(tmp_path / "missing.csv")
    (tmp_path / "far.csv").write_text("V1,0,0,500\n")
    with pytest.raises(ElectrodeError):
        electrodes_from_csv(tmp_path / "far.csv", torso)


def test_body_surface_grid_on_the_ball():
    torso = ball_torso()
    g = body_surface_grid(torso, n_rows=3, n_columns=8, z_range=(-40.0, 40.0))
    assert len(g) == 24 and g.names[0] == "BS00_00" and g.names[-1] == "BS02_07"
    skin = skin_surface(torso)
    assert np.all(closest_skin_points(g.positions, skin).distances < 1e-9)
    p = g.positions.reshape(3, 8, 3)
    assert np.allclose(p[:, :, 2], [[40.0], [0.0], [-40.0]])  # rings at the requested heights
    assert np.all(p[:, 0, 1] < -80) and np.allclose(p[:, 0, 0], 0.0, atol=1e-6)  # column 0 anterior (-y)
    assert np.all(p[:, 2, 0] > 80)  # a quarter turn later: patient left (+x)
    with pytest.raises(Exception):
        body_surface_grid(torso, n_rows=0)


def test_electrodes_dataclass_validation():
    with pytest.raises(ElectrodeError):
        Electrodes((), np.zeros((0, 3)), [], np.zeros((0, 3)), np.zeros((0, 3)), [])
    with pytest.raises(ElectrodeError, match="finite"):
        Electrodes(("a",), [[np.inf, 0, 0]], [0], [[0, 1, 2]], [[1, 0, 0]], [0])
    with pytest.raises(ElectrodeError, match="duplicate"):
        Electrodes(("V1", "v1"), np.zeros((2, 3)), [0, 1], [[0, 1, 2]] * 2, [[1, 0, 0]] * 2, [0, 1])
    with pytest.raises(ElectrodeError, match="one row per electrode"):
        Electrodes(("a", "b"), np.zeros((2, 3)), [0], [[0, 1, 2]], [[1, 0, 0]], [0])


# ------------------------------------------------------------------------------------ standard placement


def _azimuth(p, x_mid, y_c):
    """Angle (deg) around the body axis from anterior (-y) towards the patient's left (+x)."""
    return np.degrees(np.arctan2(p[:, 0] - x_mid, -(p[:, 1] - y_c)))


def test_standard_placement_on_the_phantom():
    ph, torso = phantom_torso()
    lm = ph.landmarks
    el = standard_electrodes(torso, lm)
    assert el.names == STANDARD_ELECTRODES and all(el.rules)
    skin = skin_surface(torso)
    cp = closest_skin_points(el.positions, skin)
    assert np.all(cp.distances < 1e-6)  # on the skin
    normals = skin.normals()[cp.faces]
    assert np.all(np.abs(normals[:, 2]) < 0.5)  # on the side of the body, not its cut ends
    P = {n: el.position(n) for n in el.names}
    tv, apex = np.array(lm["tricuspid_valve_center"]), np.array(lm["lv_apex_epicardium"])
    # precordial heights: 4th ICS at the tricuspid valve, 5th at the apex, V3 between
    assert abs(P["V1"][2] - tv[2]) < 1e-6 and abs(P["V2"][2] - tv[2]) < 1e-6
    for v in ("V4", "V5", "V6"):
        assert abs(P[v][2] - apex[2]) < 1e-6
    assert apex[2] < P["V3"][2] < tv[2]
    # V1 right of V2 (smaller x), symmetric about the (spine) midline x = 0 of the phantom
    assert P["V1"][0] < 0 < P["V2"][0]
    assert abs(P["V1"][0] + 25.0) < 2.0 and abs(P["V2"][0] - 25.0) < 2.0
    # V1..V6 go around the chest from right-anterior to left-lateral
    az = _azimuth(np.array([P[f"V{i}"] for i in range(1, 7)]), 0.0, 0.0)
    assert np.all(np.diff(az) > 5.0), az
    assert az[0] < 0 < az[1] and 75.0 < az[5] < 105.0
    for v in ("V1", "V2", "V3", "V4"):
        assert P[v][1] < -90.0  # anterior chest wall (torso semi-axis ~125 mm)
    # V4 on the mid-clavicular line: half-way to the lateral surface
    assert abs(P["V4"][0] - 0.5 * P["V6"][0]) < 2.0
    # limb electrodes: shoulders above the heart, hips below, right/left sides
    top_of_heart = max(lm["pulmonary_valve_center"][2], lm["aortic_valve_center"][2])
    for n in ("RA", "LA"):
        assert P[n][2] > top_of_heart + 50.0 and P[n][1] < 0
    for n in ("LL", "RL"):
        assert P[n][2] < apex[2] - 50.0
    assert P["RA"][0] < -60 and P["LA"][0] > 60 and P["RL"][0] < -60 and P["LL"][0] > 60
    # all pairwise distances > 2 cm
    pts = el.positions
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(len(pts)) * 1e3
    assert d.min() > 20.0


def test_standard_placement_needs_landmarks_in_the_torso():
    ph, torso = phantom_torso()
    lm = dict(ph.landmarks)
    del lm["tricuspid_valve_center"]
    with pytest.raises(AnatomyError, match="tricuspid_valve_center"):
        standard_electrodes(torso, lm)
    lm = dict(ph.landmarks)
    lm["lv_apex_epicardium"] = [0.0, 0.0, 2000.0]
    lm["tricuspid_valve_center"] = [0.0, 0.0, 2100.0]
    with pytest.raises(AnatomyError, match="outside the torso"):
        standard_electrodes(torso, lm)
    lm = dict(ph.landmarks)
    lm["lv_apex_epicardium"] = [0.0, np.nan, 0.0]
    with pytest.raises(AnatomyError, match="finite"):
        standard_electrodes(torso, lm)
