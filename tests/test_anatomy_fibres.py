"""Rule-based fibres: frame algebra, the LDRB helix/sheet profile on an LV ellipsoid against the
prescribed angles in an analytic wall frame, the phantom's four-chamber fibres, the picture, bad input.

Helix angle (as in :func:`cardiotwin.anatomy.fibres.helix_angle`): with t the outward wall normal,
l the long axis made tangent to the wall and c = l x t (counterclockwise seen from the base),
alpha = atan2(f . l, f . c) folded to (-90, 90]. Sheet angle: beta = atan2(s . (t x f), s . t), the
rotation of the sheet away from the transmural axis about the fibre. The prescribed profile is
alpha(T) = alpha_endo + (alpha_epi - alpha_endo) T in the transmural coordinate T of the cell.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import Coordinates, ventricular_coordinates
from cardiotwin.anatomy.fibres import (
    FIBRE_REGIONS,
    AtrialRules,
    LdrbAngles,
    add_coordinates_and_fibres,
    axis_frames,
    bislerp,
    helix_angle,
    ldrb_fibres,
    orient,
)
from cardiotwin.report.fibres_figure import plot_fibres
from cardiotwin.anatomy.surfaces import classify_boundary
from cardiotwin.errors import AnatomyError, InvalidParameterError
from heart_cases import lv_ellipsoid, phantom_heart, phantom_with_fibres, spheroid_normal

BINS = {"endo": (0.0, 0.15), "mid": (0.4, 0.6), "epi": (0.85, 1.0)}


def _sheet_angle(f: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(np.einsum("ij,ij->i", s, np.cross(t, f)), np.einsum("ij,ij->i", s, t)))


def _assert_orthonormal(f, s, n, tol=1e-9):
    for v in (f, s, n):
        assert np.abs(np.linalg.norm(v, axis=1) - 1).max() < tol
    assert np.abs(np.einsum("ij,ij->i", f, s)).max() < tol
    assert np.abs(n - np.cross(f, s)).max() < tol


# ------------------------------------------------------------------------------- frame algebra


def test_axis_and_orient_give_the_requested_angles():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    Q = axis_frames(u, v)
    assert np.allclose(np.einsum("mij,mik->mjk", Q, Q), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(Q), 1.0)
    alpha, beta = rng.uniform(-85, 85, 200), rng.uniform(-85, 85, 200)
    R = orient(Q, alpha, beta)
    f, s = R[:, :, 0], R[:, :, 2]
    t, l = Q[:, :, 2], u
    assert np.allclose(helix_angle(f, l, t), alpha, atol=1e-9)
    assert np.allclose(_sheet_angle(f, s, t), beta, atol=1e-9)
    assert np.abs(np.einsum("ij,ij->i", f, t)).max() < 1e-12  # fibres stay tangent to the wall
    # degenerate input still gives valid frames
    D = axis_frames(np.zeros((2, 3)), np.array([[0, 0, 1.0], [1, 0, 0]]))
    assert np.allclose(np.einsum("mij,mik->mjk", D, D), np.eye(3), atol=1e-12)


def test_bislerp_endpoints_symmetry_and_path():
    Qa = Rotation.random(50, random_state=2).as_matrix()
    Qb = Rotation.random(50, random_state=3).as_matrix()
    flip = np.diag([1.0, -1.0, -1.0])  # fibre kept, sheet and normal reversed: the same triad
    same = lambda A, B: np.allclose(np.abs(np.einsum("mij,mij->mj", A, B)), 1.0, atol=1e-9)  # noqa: E731
    assert same(bislerp(Qa, Qb, 0.0), Qa) and np.allclose(bislerp(Qa, Qb, 1.0), Qb, atol=1e-9)
    assert np.allclose(bislerp(Qa @ flip, Qb, 0.4), bislerp(Qa, Qb, 0.4), atol=1e-9)
    # a rotation about the transmural axis is interpolated linearly in angle
    Q = axis_frames(np.tile([0, 0, 1.0], (5, 1)), np.tile([1.0, 0, 0], (5, 1)))
    t = np.linspace(0, 1, 5)
    out = bislerp(orient(Q, 60.0, 0.0), orient(Q, 0.0, 0.0), t)
    assert np.allclose(helix_angle(out[:, :, 0], Q[:, :, 1], Q[:, :, 2]), 60 * (1 - t), atol=1e-9)


# ----------------------------------------------------------------------------- LV ellipsoid


@pytest.mark.parametrize("angles", [LdrbAngles(), LdrbAngles(alpha_endo=40, alpha_epi=-50, beta_endo=10, beta_epi=-30)])
def test_ellipsoid_ldrb_profile_follows_prescribed_angles(angles):
    """Mid-ventricle (0.2 < Z < 0.8) means per transmural bin within 5 degrees of the prescription
    (measured: helix within 0.1 degree, mean |difference| 1.1 degrees; sheet within 0.4 degree)."""
    labels, mesh, landmarks = lv_ellipsoid()
    c = ventricular_coordinates(mesh, labels, landmarks)
    f, s, n, region = ldrb_fibres(mesh, c, angles)
    dom, local, _ = c.domains["ventricles"]
    cells = dom.cells
    _assert_orthonormal(f[cells], s[cells], n[cells])
    assert np.all(np.isnan(np.delete(f, cells, axis=0)))
    assert set(np.unique(region[cells]).tolist()) == {FIBRE_REGIONS["lv"]}  # no outflow tract here
    centre = mesh.points[mesh.cells[cells]].mean(axis=1)
    t = spheroid_normal(centre)  # exact wall normal
    longitudinal = np.tile([0.0, 0.0, 1.0], (len(cells), 1))
    T = dom.cell_mean(local["uvc_transmural"])
    Z = dom.cell_mean(local["uvc_apicobasal"])
    helix = helix_angle(f[cells], longitudinal, t)
    sheet = _sheet_angle(f[cells], s[cells], t)
    for name, (lo, hi) in BINS.items():
        k = (Z > 0.2) & (Z < 0.8) & (T >= lo) & (T < hi)
        assert k.sum() > 200
        a_pres = angles.alpha_endo + (angles.alpha_epi - angles.alpha_endo) * T[k]
        b_pres = angles.beta_endo + (angles.beta_epi - angles.beta_endo) * T[k]
        assert abs(np.mean(helix[k] - a_pres)) < 5.0, name
        assert np.mean(np.abs(helix[k] - a_pres)) < 3.0, name
        assert abs(np.mean(sheet[k] - b_pres)) < 5.0, name


# ------------------------------------------------------------------------------------ phantom


def test_phantom_fibres_are_orthonormal_and_regions_complete():
    out, report = phantom_with_fibres()
    f, s, n = (out.cell_data[k] for k in ("fibre", "sheet", "sheet_normal"))
    _assert_orthonormal(f, s, n)
    region = out.cell_data["fibre_region"]
    present = {name for name, code in FIBRE_REGIONS.items() if (region == code).any()}
    assert present == set(FIBRE_REGIONS), set(FIBRE_REGIONS) - present
    valves = np.isin(out.tags, lab.labels_of(lab.VALVES))
    assert np.all(region[valves] == -1) and np.allclose(f[valves], [1, 0, 0])
    myo = np.isin(out.tags, lab.labels_of(lab.CHAMBER_WALLS))
    assert np.all(region[myo] >= 1)
    assert report["timings_s"]["total_s"] > 0


def _wall_normals(mesh, boundary, name, centres, radius=3.0):
    """Outward (into the wall) normals of the nearest endocardial faces, averaged over `radius` mm:
    a wall frame independent of the Laplace solutions."""
    faces = boundary.faces[boundary.mask(name)]
    p = mesh.points[faces]
    normal = -np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])  # faces point out of the wall
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    tree = cKDTree(p.mean(axis=1))
    smooth = np.array([normal[j].mean(axis=0) for j in tree.query_ball_point(p.mean(axis=1), radius)])
    smooth /= np.linalg.norm(smooth, axis=1, keepdims=True)
    return smooth[tree.query(centres)[1]]


def test_phantom_lv_helix_profile_follows_prescribed_angles():
    """LV free wall and septum at mid-ventricle, helix angle against the long-axis landmark and the
    endocardial normal; means per bin within 5 degrees of alpha(T) (measured: free wall -1.7/-1.6/
    -1.6, septum +0.9/+2.3/+3.7 degrees at endo/mid/epi)."""
    labels, mesh, landmarks = phantom_heart()
    out, _ = phantom_with_fibres()
    b = classify_boundary(mesh, labels, "ventricles")
    lv_cells = np.flatnonzero(out.tags == lab.label("lv_myocardium"))
    pd = out.point_data
    mean = lambda name: pd[name][mesh.cells[lv_cells]].mean(axis=1)  # noqa: E731
    T, Z, phi = mean("uvc_transmural"), mean("uvc_apicobasal"), mean("uvc_rotational")
    centres = mesh.points[mesh.cells[lv_cells]].mean(axis=1)
    t = _wall_normals(mesh, b, "lv_endocardium", centres)
    axis = np.tile(np.asarray(landmarks["lv_long_axis"]), (len(lv_cells), 1))
    helix = helix_angle(out.cell_data["fibre"][lv_cells], axis, t)
    mid = (Z > 0.25) & (Z < 0.75)
    for wall, sel in (("free wall", np.abs(phi) > 2.3), ("septum", np.abs(phi) < 0.5)):
        for name, (lo, hi) in BINS.items():
            k = mid & sel & (T >= lo) & (T < hi)
            assert k.sum() > 300, (wall, name)
            diff = np.mean(helix[k] - (60.0 - 120.0 * T[k]))
            assert abs(diff) < 5.0, (wall, name, diff)


def test_plot_fibres_writes_png(tmp_path):
    out, _ = phantom_with_fibres()
    path = plot_fibres(out, tmp_path / "fibres.png", max_glyphs=2000, size=(900, 320))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    _, mesh, _ = phantom_heart()
    with pytest.raises(AnatomyError, match="fibre"):
        plot_fibres(mesh, tmp_path / "x.png")


# ---------------------------------------------------------------------------------- bad input


def test_bad_parameters_and_inputs():
    with pytest.raises(InvalidParameterError, match="alpha_endo"):
        LdrbAngles(alpha_endo=400)
    with pytest.raises(InvalidParameterError, match="ot_level"):
        LdrbAngles(ot_level=2)
    with pytest.raises(InvalidParameterError, match="ring_width_mm"):
        AtrialRules(ring_width_mm=-1)
    with pytest.raises(InvalidParameterError, match="ct_azimuth_deg"):
        AtrialRules(ct_azimuth_deg=(10.0, -10.0))
    labels, mesh, landmarks = lv_ellipsoid()
    with pytest.raises(AnatomyError, match="no ventricles domain"):
        ldrb_fibres(mesh, Coordinates({}, {}))
    with pytest.raises(AnatomyError, match="no la_wall or ra_wall"):
        add_coordinates_and_fibres(mesh, labels, landmarks, atria=True)
    # atria=None on an LV-only mesh: ventricles only, valve plate gets the identity frame
    out = add_coordinates_and_fibres(mesh, labels, landmarks)
    assert "uac_alpha" not in out.point_data
    assert np.all(out.cell_data["fibre_region"][out.tags == lab.label("mitral_valve")] == -1)
    # atria present but a venous opening missing: a specific error that says how to skip them
    labels, mesh, landmarks = phantom_heart()
    no_caval = labels.with_array(np.where(np.isin(labels.array, lab.labels_of(("superior_vena_cava",))),
                                          lab.label("torso"), labels.array).astype(labels.array.dtype))
    with pytest.raises(AnatomyError, match="superior_vena_cava.*atria=False"):
        add_coordinates_and_fibres(mesh, no_caval, landmarks)
