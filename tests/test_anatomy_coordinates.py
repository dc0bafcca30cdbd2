"""Universal ventricular and atrial coordinates: an LV ellipsoid with exact solutions, the phantom's
four-chamber heart, real meshes (Rodero LV, Ansys atria), and bad input."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy.stats import spearmanr

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import (
    UAC_FIELDS,
    UVC_FIELDS,
    atrial_coordinates,
    rotational_angle,
    ventricular_coordinates,
)
from cardiotwin.anatomy.surfaces import SURFACES, boundary_from_triangles, classify_boundary
from cardiotwin.errors import AnatomyError, InvalidMeshError
from cardiotwin.types import TetMesh
from heart_cases import exact_transmural, lv_ellipsoid, phantom_heart, phantom_with_fibres


@lru_cache(maxsize=1)
def _ellipsoid_coords():
    labels, mesh, landmarks = lv_ellipsoid()
    return mesh, ventricular_coordinates(mesh, labels, landmarks)


# ------------------------------------------------------------------------------- LV ellipsoid


def test_ellipsoid_surfaces_are_classified_from_the_label_map():
    labels, mesh, _ = lv_ellipsoid()
    b = classify_boundary(mesh, labels, "ventricles")
    counts = b.counts()
    assert set(counts) == {"epicardium", "lv_endocardium", "mitral_valve"}
    # endocardial faces lie on the inner spheroid, epicardial ones on the outer (within a voxel)
    from heart_cases import MU_ENDO, MU_EPI, spheroidal_mu

    mu_endo = spheroidal_mu(mesh.points[b.faces[b.mask("lv_endocardium")]].mean(axis=1))
    mu_epi = spheroidal_mu(mesh.points[b.faces[b.mask("epicardium")]].mean(axis=1))
    assert abs(np.median(mu_endo) - MU_ENDO) < 0.03 and abs(np.median(mu_epi) - MU_EPI) < 0.03


def test_ellipsoid_transmural_matches_the_exact_confocal_solution():
    """Between confocal spheroids u = log tanh(mu/2) (normalised) is the exact Laplace solution; the
    mesh surfaces are smoothed voxels, so the tolerance is a few percent of the wall."""
    mesh, c = _ellipsoid_coords()
    ok = np.isfinite(c["uvc_transmural"])
    err = np.abs(c["uvc_transmural"][ok] - exact_transmural(mesh.points[ok]))
    assert err.mean() < 0.03 and np.percentile(err, 95) < 0.08
    assert c["uvc_transmural"][ok].min() == 0.0 and c["uvc_transmural"][ok].max() == 1.0


def test_ellipsoid_apicobasal_is_linear_and_monotone_along_the_axis():
    mesh, c = _ellipsoid_coords()
    ok = np.isfinite(c["uvc_apicobasal"])
    ab, z = c["uvc_apicobasal"][ok], mesh.points[ok, 2]
    assert 0.0 <= ab.min() and ab.max() <= 1.0
    assert np.corrcoef(ab, z)[0, 1] > 0.98  # normalised trajectory distance: ~linear in height
    edges = np.linspace(z.min(), 0.0, 11)
    means = [ab[(z >= a) & (z < b)].mean() for a, b in zip(edges[:-1], edges[1:])]
    assert np.all(np.diff(means) > 0.03), means
    # the Laplace solution itself is monotone too but far from linear (apex singularity)
    psi = c["laplace_apicobasal"][ok]
    assert spearmanr(psi, z).correlation > 0.95


def test_ellipsoid_rotational_and_transventricular():
    mesh, c = _ellipsoid_coords()
    ok = np.isfinite(c["uvc_rotational"])
    x = mesh.points[ok]
    away = np.hypot(x[:, 0], x[:, 1]) > 5.0
    exact = np.arctan2(x[:, 1], x[:, 0])  # septal point on +x, axis +z
    err = np.angle(np.exp(1j * (c["uvc_rotational"][ok] - exact)))
    assert np.abs(err[away]).max() < 0.05
    assert np.all(c["uvc_transventricular"][ok] == -1.0)  # LV only
    assert np.all(c["laplace_rv"][ok] == 0.0)


def test_rotational_angle_convention():
    # counterclockwise seen from the tip of the axis, 0 towards the reference
    pts = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [0, -1.0, 0]])
    phi = rotational_angle(pts, np.zeros(3), np.array([0, 0, 2.0]), np.array([1.0, 0, 0.5]))
    assert np.allclose(phi, [0, np.pi / 2, np.pi, -np.pi / 2])


# ------------------------------------------------------------------------------------ phantom


def test_phantom_ventricular_coordinates_ranges_and_monotonicity():
    labels, mesh, landmarks = phantom_heart()
    out, report = phantom_with_fibres()
    pd = out.point_data
    vent = np.unique(mesh.cells[np.isin(mesh.tags, lab.labels_of(("lv_myocardium", "rv_myocardium")))])
    for name in UVC_FIELDS:
        values = pd[name]
        assert np.all(np.isfinite(values[vent])), name
        outside = np.setdiff1d(np.arange(mesh.n_points), vent)
        assert np.all(np.isnan(values[outside])), name
    assert pd["uvc_apicobasal"][vent].min() == 0.0 and pd["uvc_apicobasal"][vent].max() == 1.0
    assert pd["uvc_transmural"][vent].min() == 0.0 and pd["uvc_transmural"][vent].max() == 1.0
    assert set(np.unique(pd["uvc_transventricular"][vent])) == {-1.0, 1.0}
    phi = pd["uvc_rotational"][vent]
    assert -np.pi <= phi.min() and phi.max() <= np.pi
    # RV free wall nodes (only in rv_myocardium cells) are +1, nodes of LV cells -1
    rv_only = np.setdiff1d(np.unique(mesh.cells[mesh.tags == lab.label("rv_myocardium")]),
                           np.unique(mesh.cells[mesh.tags == lab.label("lv_myocardium")]))
    assert np.all(pd["uvc_transventricular"][rv_only] == 1.0)
    # apicobasal increases from apex to base along the LV long axis
    axis = np.asarray(landmarks["lv_long_axis"])
    lv = vent[pd["uvc_transventricular"][vent] < 0]
    height = (mesh.points[lv] - np.asarray(landmarks["lv_apex_epicardium"])) @ axis
    assert np.corrcoef(pd["uvc_apicobasal"][lv], height)[0, 1] > 0.97
    # transmural increases from endo to epi: in the LV free wall it orders nodes by their distance
    # from the LV endocardium
    from scipy.spatial import cKDTree

    b = classify_boundary(mesh, labels, "ventricles")
    free = lv[(np.abs(pd["uvc_rotational"][lv]) > 2.3) & (pd["uvc_apicobasal"][lv] > 0.2)
              & (pd["uvc_apicobasal"][lv] < 0.8)]
    depth = cKDTree(mesh.points[b.nodes("lv_endocardium")]).query(mesh.points[free])[0]
    assert spearmanr(depth, pd["uvc_transmural"][free]).correlation > 0.95
    # rotational anchors: 0 at the septal landmark, +-pi at the LV free wall landmark
    for key, target in (("septal_point", 0.0), ("lv_free_wall_point", np.pi)):
        q = np.asarray(landmarks[key])
        i = lv[np.argmin(np.linalg.norm(mesh.points[lv] - q, axis=1))]
        assert abs(np.angle(np.exp(1j * (pd["uvc_rotational"][i] - target)))) < 0.3, key
    # Laplace identities: phi_epi + phi_lv + phi_rv = 1
    s = pd["laplace_epi"][vent] + pd["laplace_lv"][vent] + pd["laplace_rv"][vent]
    assert np.abs(s - 1).max() < 1e-3  # exact up to the solver tolerance and clipping to [0, 1]
    assert report["ventricles"]["solves"]["apicobasal"]["residual"] <= 1e-6  # the default solver tolerance


def test_phantom_atrial_coordinates_ranges_and_boundaries():
    labels, mesh, _ = phantom_heart()
    out, report = phantom_with_fibres()
    pd = out.point_data
    for side, wall, ring, veins, endo in (("la", "la_wall", "mitral_valve", ("pulmonary_veins",), "la_endocardium"),
                                          ("ra", "ra_wall", "tricuspid_valve",
                                           ("superior_vena_cava", "inferior_vena_cava"), "ra_endocardium")):
        nodes = np.unique(mesh.cells[mesh.tags == lab.label(wall)])
        for name in UAC_FIELDS:
            v = pd[name][nodes]
            assert np.all(np.isfinite(v)) and v.min() == 0.0 and v.max() == 1.0, (side, name)
        b = classify_boundary(mesh, labels, side)
        ring_nodes, vein_nodes = b.nodes(ring), b.nodes(*veins)
        only_ring = np.setdiff1d(ring_nodes, vein_nodes)
        assert np.all(pd["uac_beta"][only_ring] == 0.0)
        assert np.all(pd["uac_beta"][np.setdiff1d(vein_nodes, ring_nodes)] == 1.0)
        assert np.all(pd["uac_transmural"][np.setdiff1d(b.nodes(endo), b.nodes("epicardium"))] == 0.0)
        # beta orders the wall from the ring to the veins
        from scipy.spatial import cKDTree

        d_ring = cKDTree(mesh.points[ring_nodes]).query(mesh.points[nodes])[0]
        d_vein = cKDTree(mesh.points[vein_nodes]).query(mesh.points[nodes])[0]
        rel = d_ring / np.maximum(d_ring + d_vein, 1e-9)
        assert spearmanr(rel, pd["uac_beta"][nodes]).correlation > 0.8, side
        assert report["atria"][side]["septal_nodes"] > 0 and report["atria"][side]["lateral_nodes"] > 0
    # NaN outside the atria
    atria = np.unique(mesh.cells[np.isin(mesh.tags, lab.labels_of(("la_wall", "ra_wall")))])
    assert np.all(np.isnan(np.delete(pd["uac_alpha"], atria)))


# ---------------------------------------------------------------------------------- real data


def _tagged_triangles(path):
    import meshio

    raw = meshio.read(path)
    tri = np.vstack([b.data for b in raw.cells if b.type == "triangle"])
    sid = np.concatenate([raw.cell_data["_surface-id"][i] for i, b in enumerate(raw.cells) if b.type == "triangle"])
    return tri, sid


def test_rodero_lv_apicobasal_matches_reference_uvc(shared_data):
    """Rodero et al. 2021 case 01 LV with Ansys' longitudinal UVC. Measured: Pearson r = 0.986,
    mean |difference| = 0.079 (their coordinate is defined with other apex/base conventions).
    The file's reference 'fiber' field is the constant (0, 0, 1) in every cell (a placeholder), so
    no fibre comparison is possible with it."""
    from cardiotwin.io import read_mesh

    path = shared_data / "mesh_rodero01_lv_fibres" / "heart_model.vtu"
    mesh = read_mesh(path, tag_map={1: lab.label("lv_myocardium")})
    tri, sid = _tagged_triangles(path)
    pick = lambda *ids: tri[np.isin(sid, ids)]  # noqa: E731 (ids: heart_model.namemap.json)
    b = boundary_from_triangles(
        mesh, np.arange(mesh.n_cells),
        {"lv_endocardium": pick(34722), "epicardium": pick(34721), "mitral_valve": pick(34725),
         "aortic_valve": pick(34724, 34726), "av_junction": pick(34727, 34728)}, default="epicardium")
    p = mesh.points
    base = p[b.nodes("mitral_valve", "aortic_valve", "av_junction")].mean(axis=0)
    epi = b.nodes("epicardium")
    apex = p[epi[np.argmax(np.linalg.norm(p[epi] - base, axis=1))]]
    landmarks = {"lv_apex_epicardium": apex, "lv_long_axis": (base - apex) / np.linalg.norm(base - apex),
                 "septal_point": p[b.nodes("av_junction")].mean(axis=0)}
    c = ventricular_coordinates(mesh, boundary=b, landmarks=landmarks)
    ok = np.isfinite(c["uvc_apicobasal"])
    ref = mesh.point_data["uvc_longitudinal"][ok]
    assert np.corrcoef(c["uvc_apicobasal"][ok], ref)[0, 1] > 0.95
    assert np.abs(c["uvc_apicobasal"][ok] - ref).mean() < 0.15
    assert np.all((c["uvc_transmural"][ok] >= 0) & (c["uvc_transmural"][ok] <= 1))


def _ansys_atria(shared_data):
    """LA and RA of the Ansys test asset in one mesh, with their boundaries: endo/epi from the
    reference 'trans' field, openings = connected rims (largest = AV ring, others = veins; the
    RA's higher opening is the SVC)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    from cardiotwin.io import read_mesh
    from cardiotwin.meshing.topology import unique_faces

    folder = shared_data / "mesh_atria_laplace_fibres"
    parts = [read_mesh(folder / f"{s}_input.vtu") for s in ("la", "ra")]
    points = np.vstack([m.points for m in parts])
    cells = np.vstack([parts[0].cells, parts[1].cells + parts[0].n_points])
    tags = np.concatenate([np.full(parts[0].n_cells, lab.label("la_wall")),
                           np.full(parts[1].n_cells, lab.label("ra_wall"))])
    trans = np.concatenate([m.point_data["trans"] for m in parts])
    mesh = TetMesh(points, cells, tags, point_data={"trans": trans})
    boundaries = {}
    for side, tag, ring, endo in (("la", "la_wall", "mitral_valve", "la_endocardium"),
                                  ("ra", "ra_wall", "tricuspid_valve", "ra_endocardium")):
        sub = mesh.cells[mesh.tags == lab.label(tag)]
        faces, owners = unique_faces(sub, mesh.n_points)
        bf = faces[owners[:, 1] < 0]
        tr = trans[bf]
        is_endo, is_epi = (tr < 1e-6).all(1), (tr > 1 - 1e-6).all(1)
        rim = bf[~is_endo & ~is_epi]
        k = len(rim)
        inc = sparse.csr_matrix((np.ones(3 * k), (np.repeat(np.arange(k), 3), rim.ravel())), shape=(k, mesh.n_points))
        _, comp = connected_components(inc @ inc.T, directed=False)
        sizes = np.bincount(comp)
        order = [c for c in np.argsort(-sizes) if sizes[c] >= 10]
        tri = {endo: bf[is_endo], "epicardium": bf[is_epi], ring: rim[comp == order[0]]}
        openings = [rim[comp == c] for c in order[1:]]
        if side == "la":
            tri["pulmonary_veins"] = np.vstack(openings)
        else:
            high = np.argmax([mesh.points[o].mean(axis=(0, 1))[2] for o in openings])
            tri["superior_vena_cava"] = openings[high]
            tri["inferior_vena_cava"] = np.vstack([o for i, o in enumerate(openings) if i != high])
        boundaries[side] = boundary_from_triangles(mesh, mesh.tags == lab.label(tag), tri, default="epicardium",
                                                   domain=side)
    return mesh, boundaries


def test_real_atria_coordinates(shared_data):
    """Ansys' LA/RA (Rodero/Strocchi anatomy). Our transmural coordinate against their 'trans'
    Laplace field: measured Pearson r = 0.9998 (LA and RA). Their reference atrial fibres are
    the constant (0, 0, 1) (placeholders), so fibres are checked for validity only."""
    mesh, boundaries = _ansys_atria(shared_data)
    c = atrial_coordinates(mesh, None, None, boundaries=boundaries)
    for side, tag in (("la", "la_wall"), ("ra", "ra_wall")):
        nodes = np.unique(mesh.cells[mesh.tags == lab.label(tag)])
        for name in UAC_FIELDS:
            v = c[name][nodes]
            assert np.all(np.isfinite(v)) and v.min() == 0.0 and v.max() == 1.0
        assert np.corrcoef(c["uac_transmural"][nodes], mesh.point_data["trans"][nodes])[0, 1] > 0.99
    from cardiotwin.anatomy.fibres import atrial_fibres

    f, s, n, region = atrial_fibres(mesh, c)
    atria = region >= 0
    assert np.allclose(np.linalg.norm(f[atria], axis=1), 1)
    assert np.abs(np.einsum("ij,ij->i", f[atria], s[atria])).max() < 1e-9
    assert {10, 11, 12, 13, 20, 21, 22, 23, 24} <= set(np.unique(region).tolist())
    # the RA alone: its septum must come from a landmark
    ra_cells = mesh.tags == lab.label("ra_wall")
    ra_nodes, ra_tets = np.unique(mesh.cells[ra_cells], return_inverse=True)
    ra = TetMesh(mesh.points[ra_nodes], ra_tets.reshape(-1, 4), mesh.tags[ra_cells])
    local = np.full(mesh.n_points, -1)
    local[ra_nodes] = np.arange(len(ra_nodes))
    b = boundaries["ra"]
    tri = {name: local[b.faces[b.mask(name)]] for name in b.counts()}
    b_ra = boundary_from_triangles(ra, np.arange(ra.n_cells), tri, domain="ra")
    with pytest.raises(AnatomyError, match="septum cannot be found"):
        atrial_coordinates(ra, None, None, atria=("ra",), boundaries={"ra": b_ra})
    septum = c.report["ra"]["septum_centre_mm"]
    c_ra = atrial_coordinates(ra, None, {"ra_septum": septum}, atria=("ra",), boundaries={"ra": b_ra})
    f_ra, _, _, region_ra = atrial_fibres(ra, c_ra)
    assert np.allclose(np.linalg.norm(f_ra, axis=1), 1) and {20, 21, 22, 23, 24} <= set(region_ra.tolist())


# ---------------------------------------------------------------------------------- bad input


def test_missing_endocardium_is_reported():
    """Without the blood pool in the label map the cavity side reads as outside: no endocardium."""
    labels, mesh, landmarks = lv_ellipsoid(cavity_label="")
    with pytest.raises(AnatomyError, match="lv_endocardium"):
        ventricular_coordinates(mesh, labels, landmarks)


def test_missing_landmark_and_landmark_in_another_frame():
    labels, mesh, landmarks = lv_ellipsoid()
    with pytest.raises(AnatomyError, match="lv_apex_epicardium"):
        ventricular_coordinates(mesh, labels, {k: v for k, v in landmarks.items() if k != "lv_apex_epicardium"})
    with pytest.raises(AnatomyError, match="septal"):
        ventricular_coordinates(mesh, labels, {k: v for k, v in landmarks.items() if k != "septal_point"})
    moved = dict(landmarks, lv_apex_epicardium=np.asarray(landmarks["lv_apex_epicardium"]) + 200.0)
    with pytest.raises(AnatomyError, match="frames or units"):
        ventricular_coordinates(mesh, labels, moved)


def test_mesh_in_metres_is_rejected():
    labels, mesh, landmarks = lv_ellipsoid()
    metres = TetMesh(mesh.points / 1000.0, mesh.cells, mesh.tags)
    with pytest.raises(InvalidMeshError, match="metres"):
        ventricular_coordinates(metres, labels, landmarks)


def test_non_manifold_meshes_are_rejected():
    # three tetrahedra on one face: not a manifold complex
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [0.2, 0.2, 2.0]], float) * 10
    cells = np.array([[0, 1, 2, 3], [0, 1, 2, 4], [0, 1, 2, 5]])
    mesh = TetMesh.reoriented(pts, cells, tags=np.full(3, lab.label("lv_myocardium")))
    with pytest.raises(InvalidMeshError, match="not a valid tetrahedral complex"):
        classify_boundary(mesh, None, "ventricles")
    # two tetrahedra sharing only an edge: a pinched boundary, counted, fatal when strict
    pts = np.array([[0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], float) * 10
    mesh = TetMesh.reoriented(pts, np.array([[0, 1, 2, 3], [0, 1, 4, 5]]), tags=np.full(2, lab.label("la_wall")))
    b = boundary_from_triangles(mesh, np.arange(2), {}, default="epicardium", domain="la")
    assert b.pinched_edges == 1
    with pytest.raises(InvalidMeshError, match="not a closed 2-manifold"):
        boundary_from_triangles(mesh, np.arange(2), {}, default="epicardium", domain="la", strict_manifold=True)


def test_boundary_bad_arguments():
    labels, mesh, _ = lv_ellipsoid()
    with pytest.raises(AnatomyError, match="unknown domain"):
        classify_boundary(mesh, labels, "lungs")
    with pytest.raises(AnatomyError, match="no la_wall"):
        classify_boundary(mesh, labels, "la")
    with pytest.raises(AnatomyError, match="no label map"):
        classify_boundary(mesh, None, "ventricles")
    with pytest.raises(AnatomyError, match="unknown surface"):
        boundary_from_triangles(mesh, mesh.tags == 20, {"endo": np.zeros((1, 3), int)})
    with pytest.raises(AnatomyError, match="none of the given surfaces"):
        boundary_from_triangles(mesh, mesh.tags == 20, {})
    assert SURFACES["epicardium"] == 1


def test_atria_missing_veins_is_reported():
    labels, mesh, _ = phantom_heart()
    no_veins = labels.with_array(np.where(labels.array == lab.label("pulmonary_veins"), lab.label("torso"),
                                          labels.array).astype(labels.array.dtype))
    with pytest.raises(AnatomyError, match="pulmonary_veins"):
        atrial_coordinates(mesh, no_veins, None, atria=("la",))


def test_detached_wall_specks_are_split_from_the_main_piece():
    """A coarse lattice can cut a few atrial-wall cells off the wall; they are set apart (and take
    the nearest wall node's coordinates) instead of making the Laplace system singular."""
    from cardiotwin.anatomy.coordinates import _main_piece
    from cardiotwin.types import TetMesh

    base = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
    points = np.vstack([base, base + 10.0])
    cells = np.array([[0, 1, 2, 3], [1, 2, 3, 4], [5, 6, 7, 8]])
    mesh = TetMesh.reoriented(points, cells, tags=np.full(3, 22))
    main, specks = _main_piece(mesh, np.arange(3))
    assert list(main) == [0, 1] and list(specks) == [2]
    main, specks = _main_piece(mesh, np.array([0, 1]))
    assert list(main) == [0, 1] and specks.size == 0
