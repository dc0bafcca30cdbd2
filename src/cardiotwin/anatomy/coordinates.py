"""Universal ventricular coordinates (UVC) and universal atrial coordinates (UAC) on a tagged heart
mesh, from Laplace-Dirichlet solves with the P1 finite elements of :mod:`cardiotwin.fem`.

Ventricles (LV + RV myocardium) — the UVC of Bayer et al. 2018 (Med Image Anal 45:83)
---------------------------------------------------------------------------------------
We follow Bayer et al.'s UVC rather than Cobiveco (Schuler et al. 2021, Med Image Anal 74:102247):
its four coordinates are what the downstream stages need (apex-to-base level and transmural depth
for conduction-system and heterogeneity rules, a ventricle flag, an angle anchored at the septum),
and the Laplace fields it needs are exactly those of the LDRB fibres (Bayer et al. 2012, Ann Biomed
Eng 40:2243), so one set of solves serves both. Cobiveco's symmetric trajectory-distance
coordinates need a remeshed ventricle and ridge extraction, which we do not do. The fields (point
data, NaN outside the ventricles):

* ``uvc_apicobasal`` Z in [0, 1]: 0 at the epicardial apex, 1 at the base. The Laplace solution
  with Z = 0 on an apex patch (epicardial nodes within ``apex_radius_mm`` of the landmark
  ``lv_apex_epicardium``) and Z = 1 on the base: the faces that touch the four valve planes, the
  great-artery lumens above them and the atrial walls at the atrioventricular junction (in a
  four-chamber heart the "basal plane" of a truncated biventricular model is this valve/junction
  surface). Increases monotonically from apex to base (maximum principle: no interior extrema).
* ``uvc_transmural`` rho in [0, 1]: 0 on the endocardium, 1 on the epicardium. On the LV side
  (LV free wall and the septum) rho = 1 - phi_lv, where phi_lv is the Laplace solution equal to 1
  on the LV endocardium and 0 on the RV endocardium and the epicardium: so, as in Bayer et al.
  2018, the septum runs from the LV endocardium (0) to the RV endocardium (1). On the RV free wall
  rho = 1 - phi_rv (phi_rv: 1 on the RV endocardium, 0 on the LV endocardium and the epicardium).
* ``uvc_transventricular`` V: -1 in the LV (septum included), +1 in the RV free wall, from the
  ``lv_myocardium``/``rv_myocardium`` tags (nodes shared by both regions are LV). A mesh with one
  myocardial tag but an RV endocardium is split by phi_rv > phi_lv (then the septum is halved).
* ``uvc_rotational`` phi in (-pi, pi]: the angle around the LV long axis (landmark
  ``lv_long_axis``, through the centroid of the LV endocardium) in the short-axis plane, 0 at the
  septum (towards landmark ``septal_point``, or along ``septal_direction``), +-pi at the LV lateral
  free wall, increasing counterclockwise seen from the base (right-handed about the apex-to-base
  axis): in a heart in standard anatomical position that is towards the anterior wall, so
  phi > 0 is the anterior half and phi < 0 the inferior (posterior) half. Unlike Bayer et al.'s
  Laplace-based rotational coordinate this is geometric: it is exactly anchored at the landmarks
  and needs no cut surface, but it is only meaningful away from the apex (within a few mm of the
  axis every angle meets). The RV free wall shares the angle range around the septal direction;
  V tells it from the septum.

The LDRB fibres (:mod:`cardiotwin.anatomy.fibres`) also need, stored here as point fields:
``laplace_epi`` (phi_epi: 1 on the epicardium, 0 on both endocardia), ``laplace_lv``,
``laplace_rv`` (phi_lv + phi_rv + phi_epi = 1 exactly, since the three share their Dirichlet nodes
and the sum of the data is 1 everywhere: one solve with two right-hand sides gives all three) and
``laplace_outflow`` (0 on the aortic and pulmonary valve rings, 1 on the mitral and tricuspid rings:
it tells the outflow tracts from the inflow side, Doste et al. 2019, Int J Numer Method Biomed Eng
35:e3185).

Atria (LA and RA walls) — UAC after Roney et al. 2019 (Med Image Anal 55:65)
-----------------------------------------------------------------------------
Roney et al. define two coordinates on each atrium with Laplace solves between boundaries placed
from a few anatomical landmarks. We solve on the wall volume (so every node, not only the
endocardial surface, gets coordinates) with boundaries found from the mesh and label map:

* ``uac_beta`` in [0, 1]: 0 on the atrioventricular valve ring (mitral for the LA, tricuspid for
  the RA), 1 on the venous openings (pulmonary veins; superior and inferior caval veins): from the
  vestibule up to the venous component.
* ``uac_alpha`` in [0, 1]: 0 on the interatrial septum (the wall facing the other atrium: faces in
  contact, or within 3 mm of the closest approach), 1 on the most lateral wall (epicardial nodes
  within 5 mm of the point farthest from the other atrium, near the appendage).
* ``uac_transmural`` in [0, 1]: 0 on the endocardium, 1 on the epicardium.
* ``laplace_caval`` (RA only): 0 on the inferior, 1 on the superior caval opening: the intercaval
  direction along which the crista terminalis runs.

They are NaN outside the atria. Roney et al.'s alpha/beta unfold the atrium onto a unit square by
cutting it along landmark-to-landmark paths; ours keep each Laplace problem on the uncut wall, so
the pair (alpha, beta) orders points septal-to-lateral and ring-to-veins but is not a bijection
onto the square (the anterior and posterior walls share values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.anatomy.surfaces import Boundary, classify_boundary
from cardiotwin.errors import AnatomyError
from cardiotwin.fem.assembly import shape_gradients, stiffness
from cardiotwin.fem.solve import Solver
from cardiotwin.types import LabelImage, TetMesh

__all__ = [
    "Coordinates",
    "Domain",
    "UVC_FIELDS",
    "UAC_FIELDS",
    "ventricular_coordinates",
    "atrial_boundaries",
    "atrial_coordinates",
    "rotational_angle",
]

UVC_FIELDS = ("uvc_apicobasal", "uvc_transmural", "uvc_rotational", "uvc_transventricular")
UAC_FIELDS = ("uac_alpha", "uac_beta", "uac_transmural")
BASE_SURFACES = ("mitral_valve", "tricuspid_valve", "aortic_valve", "pulmonary_valve", "av_junction")
#: smoothed-aggregation options for every solve here: prolongation smoothing weighted by local row
#: sums and a sparse-LU coarse solve, instead of pyamg's Arnoldi spectral-radius estimate and dense
#: pseudo-inverse. Same iteration counts on these Laplacians, and no many-small-BLAS-call phases,
#: which stall for seconds when OpenBLAS threads compete with other processes for the cores.
AMG_OPTIONS = {"smooth": ("jacobi", {"weighting": "local"}), "coarse_solver": "splu"}
#: farthest a landmark may lie from the surface it marks before we suspect another frame or unit
LANDMARK_TOLERANCE_MM = 15.0


class Coordinates(dict):
    """Point fields ``name -> (n_points,)`` (NaN outside their domain) plus a ``report`` dict
    (solver iterations, times, surface counts) and the per-domain ``domains`` used to build them."""

    def __init__(self, fields: Mapping[str, np.ndarray], report: dict, domains: dict | None = None):
        super().__init__(fields)
        self.report = report
        self.domains = domains or {}


@dataclass
class Domain:
    """One domain as its own mesh: ``nodes`` (mesh ids, sorted), ``cells`` (mesh ids), ``points``,
    local ``tets``, shape gradients and volumes, and ``local`` (mesh node id -> local id or -1)."""

    nodes: np.ndarray
    cells: np.ndarray
    points: np.ndarray
    tets: np.ndarray
    grads: np.ndarray
    volumes: np.ndarray
    local: np.ndarray
    _incidence: sparse.csr_matrix | None = None

    @classmethod
    def of(cls, mesh: TetMesh, cells: np.ndarray) -> "Domain":
        nodes, tets = np.unique(mesh.cells[cells], return_inverse=True)
        tets = tets.reshape(-1, 4)
        points = mesh.points[nodes]
        grads, vol = shape_gradients(points, tets)
        local = np.full(mesh.n_points, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        return cls(nodes, np.asarray(cells), points, tets, grads, vol, local)

    def stiffness(self):
        return stiffness(self.points, self.tets, shape=(self.grads, self.volumes))

    def cell_mean(self, u: np.ndarray) -> np.ndarray:
        return u[self.tets].mean(axis=1)

    def cell_gradient(self, u: np.ndarray) -> np.ndarray:
        """Exact P1 gradient in every cell (m, 3)."""
        return np.einsum("mad,ma->md", self.grads, u[self.tets])

    def recovered_gradient(self, u: np.ndarray) -> np.ndarray:
        """Per-cell mean of the recovered nodal gradients (volume-weighted averages of the adjacent
        cells' gradients, Zienkiewicz & Zhu 1992) of its four vertices (m, 3): smoother than the cell
        gradient, and non-zero in cells whose four vertices carry the same Dirichlet value."""
        if self._incidence is None:
            m, n = len(self.tets), len(self.nodes)
            inc = sparse.csr_matrix((np.repeat(self.volumes, 4), (self.tets.ravel(), np.repeat(np.arange(m), 4))),
                                    shape=(n, m))
            total = np.asarray(inc.sum(axis=1)).ravel()
            self._incidence = sparse.diags(1.0 / np.maximum(total, 1e-300)) @ inc
        nodal = self._incidence @ self.cell_gradient(u)
        return nodal[self.tets].mean(axis=1)


def _dirichlet(domain: Domain, sets: list[tuple[np.ndarray, float | np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed local nodes and values from (mesh nodes, scalar or one value row per node) sets;
    earlier sets win nodes they share with later ones."""
    nodes, vals = [], []
    for n, v in sets:
        n = np.asarray(n, dtype=np.int64)
        v = np.asarray(v, dtype=float)
        nodes.append(domain.local[n])
        vals.append(np.full(len(n), float(v)) if v.ndim == 0 else v)
    nodes_all, vals_all = np.concatenate(nodes), np.concatenate(vals)
    keep = nodes_all >= 0
    uniq, first = np.unique(nodes_all[keep], return_index=True)
    return uniq, vals_all[keep][first]


def _main_piece(mesh: TetMesh, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells of the largest node-connected piece of ``cells``, and the rest (wall specks that a
    coarse lattice cuts off: no boundary of theirs anchors a Laplace solve)."""
    cells = np.asarray(cells)
    nodes, tets = np.unique(mesh.cells[cells], return_inverse=True)
    tets = tets.reshape(-1, 4)
    rows, cols = tets[:, :3].ravel(), tets[:, 1:].ravel()
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(nodes), len(nodes)))
    n, piece = csgraph.connected_components(graph, directed=False)
    if n == 1:
        return cells, cells[:0]
    main = piece[tets[:, 0]] == np.argmax(np.bincount(piece))
    return cells[main], cells[~main]


def _solve(K, domain: Domain, sets, tol: float, stats: dict, name: str) -> np.ndarray:
    """Laplace solve with Dirichlet ``sets``; ``sets`` values may be (k,) rows for k right-hand sides."""
    start = time.perf_counter()
    fixed, values = _dirichlet(domain, sets)
    k = 1 if values.ndim == 1 else values.shape[1]
    solver = Solver(K, fixed, tol=tol, amg_options=AMG_OPTIONS)
    sol = solver.solve(np.zeros((domain.points.shape[0], k)) if k > 1 else np.zeros(len(domain.points)), values)
    stats[name] = {"iterations": int(sol.iterations), "residual": float(sol.residual), "method": sol.method,
                   "fixed_nodes": int(len(fixed)), "seconds": round(time.perf_counter() - start, 3)}
    return sol.x


def _landmark(landmarks: Mapping | None, key: str, purpose: str) -> np.ndarray:
    if landmarks is None or key not in landmarks:
        have = sorted(landmarks) if landmarks else []
        raise AnatomyError(
            f"{purpose} needs the landmark {key!r}, which is missing (landmarks given: {have}); compute them with "
            "cardiotwin.anatomy.landmarks.find_landmarks(labels)"
        )
    value = np.asarray(landmarks[key], dtype=float).reshape(-1)
    if value.shape != (3,) or not np.all(np.isfinite(value)):
        raise AnatomyError(f"landmark {key!r} must be three finite mm values, got {landmarks[key]!r}")
    return value


def _near(points: np.ndarray, candidates: np.ndarray, target: np.ndarray, what: str) -> int:
    """Index (into candidates) of the candidate node nearest to a landmark, checked for plausibility."""
    d = np.linalg.norm(points[candidates] - target, axis=1)
    i = int(np.argmin(d))
    if d[i] > LANDMARK_TOLERANCE_MM:
        raise AnatomyError(
            f"the landmark {what} lies {d[i]:.1f} mm from the surface it should mark (> {LANDMARK_TOLERANCE_MM:g} mm): "
            "landmarks and mesh are in different frames or units (both must be LPS mm)"
        )
    return i


def _patch(points: np.ndarray, surface_nodes: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Surface nodes within ``radius`` of ``centre`` (at least the nearest one)."""
    d = np.linalg.norm(points[surface_nodes] - centre, axis=1)
    return surface_nodes[d <= max(radius, d.min() + 1e-9)]


def _mean_edge(points: np.ndarray, faces: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(points[faces[:, 0]] - points[faces[:, 1]], axis=1)))


def rotational_angle(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (rad, (-pi, pi]) of ``points`` around the line ``origin + s axis``, 0 towards
    ``reference`` (a direction, projected onto the plane normal to the axis), increasing
    counterclockwise seen from the tip of ``axis`` (right-hand rule)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    e1 = np.asarray(reference, float) - np.dot(reference, a) * a
    n1 = np.linalg.norm(e1)
    if n1 < 1e-6:
        raise AnatomyError("the septal reference direction is parallel to the long axis; check the landmarks")
    e1 /= n1
    e2 = np.cross(a, e1)
    rel = np.asarray(points, float) - origin
    return np.arctan2(rel @ e2, rel @ e1)


def trajectory_coordinate(dom: Domain, psi: np.ndarray, start: np.ndarray, end: np.ndarray, *,
                          cross_diffusion: float = 0.05, tol: float = 1e-6, stats: dict | None = None) -> np.ndarray:
    """Normalised distance along the streamlines of grad(psi) from the ``start`` to the ``end`` nodes
    (mesh ids): d_s / (d_s + d_e), in [0, 1] and linear in arc length (Schuler et al. 2021, Cobiveco).

    The distance d from a boundary along the unit field t = grad psi / |grad psi| solves the
    transport equation t . grad d = 1 with d = 0 on that boundary; we take its least-squares
    Galerkin form, int (t . grad d)(t . grad v) + eps grad d . grad v = int t . grad v for all v
    vanishing there (an SPD system: the stiffness matrix of the tensor t t^T + eps I, where the
    small isotropic ``cross_diffusion`` eps couples neighbouring streamlines). d_e uses -t.
    """
    stats = {} if stats is None else stats
    g = dom.cell_gradient(psi)
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    t = np.where(norm > 1e-12, g / np.maximum(norm, 1e-300), 0.0)
    tensor = t[:, :, None] * t[:, None, :] + cross_diffusion * np.eye(3)[None]
    A = stiffness(dom.points, dom.tets, tensor, shape=(dom.grads, dom.volumes))
    # b_i = sum over cells of vol * t . grad(lambda_i)
    contrib = dom.volumes[:, None] * np.einsum("mad,md->ma", dom.grads, t)
    b = np.bincount(dom.tets.ravel(), weights=contrib.ravel(), minlength=len(dom.nodes))
    d = []
    for name, nodes, sign in (("distance_from_apex", start, 1.0), ("distance_from_base", end, -1.0)):
        t0 = time.perf_counter()
        fixed = dom.local[nodes]
        sol = Solver(A, fixed[fixed >= 0], tol=tol, amg_options=AMG_OPTIONS).solve(sign * b)
        stats[name] = {"iterations": int(sol.iterations), "residual": float(sol.residual), "method": sol.method,
                       "seconds": round(time.perf_counter() - t0, 3)}
        d.append(np.maximum(sol.x, 0.0))
    total = d[0] + d[1]
    return np.clip(np.where(total > 0, d[0] / np.maximum(total, 1e-300), psi), 0.0, 1.0)


# ------------------------------------------------------------------------------------ ventricles


def ventricular_coordinates(mesh: TetMesh, labels: LabelImage | None = None, landmarks: Mapping | None = None, *,
                            boundary: Boundary | None = None, apex_radius_mm: float | None = None,
                            linear_apicobasal: bool = True, tol: float = 1e-6) -> Coordinates:
    """UVC (and the LDRB Laplace fields) on the LV + RV myocardium of ``mesh``; see the module docstring.

    ``labels``: the label map the mesh was built from (to classify the boundary), or give a
    classified ``boundary`` (:func:`cardiotwin.anatomy.surfaces.classify_boundary` /
    :func:`~cardiotwin.anatomy.surfaces.boundary_from_triangles`). ``landmarks``: needs
    ``lv_apex_epicardium``, ``lv_long_axis`` and ``septal_point`` or ``septal_direction`` (mm, LPS).
    An LV-only mesh (no RV endocardium) is allowed: then V = -1 everywhere and phi_rv = 0.
    Raises :class:`AnatomyError` for missing surfaces/landmarks, :class:`InvalidMeshError` for a
    mesh not in mm or not manifold.
    """
    start = time.perf_counter()
    if boundary is None:
        boundary = classify_boundary(mesh, labels, "ventricles")
    boundary.require(("lv_endocardium", "epicardium"), "ventricular coordinates")
    boundary.require(BASE_SURFACES, "the apicobasal coordinate", any_of=True)
    apex_landmark = _landmark(landmarks, "lv_apex_epicardium", "the apicobasal coordinate")
    axis = _landmark(landmarks, "lv_long_axis", "the rotational coordinate")
    if np.linalg.norm(axis) < 1e-9:
        raise AnatomyError("the landmark 'lv_long_axis' is a zero vector; it must be the apex-to-base direction")
    if "septal_point" in (landmarks or {}):
        septal_point = _landmark(landmarks, "septal_point", "the rotational coordinate")
        septal_dir = None
    else:
        septal_point = None
        septal_dir = _landmark(landmarks, "septal_direction", "the rotational coordinate (septal_point or)")

    dom = Domain.of(mesh, boundary.cells)
    K = dom.stiffness()
    stats: dict = {}
    lv_endo, rv_endo, epi = (boundary.nodes(n) for n in ("lv_endocardium", "rv_endocardium", "epicardium"))
    base = boundary.nodes(*BASE_SURFACES)
    has_rv = rv_endo.size > 0

    # transmural pair (phi_epi, phi_rv) with shared Dirichlet nodes; phi_lv = 1 - phi_epi - phi_rv
    sets = [(lv_endo, np.array([0.0, 0.0]))]
    if has_rv:
        sets.append((rv_endo, np.array([0.0, 1.0])))
    sets.append((epi, np.array([1.0, 0.0])))
    sets = [(n, np.broadcast_to(v, (len(n), 2))) for n, v in sets]
    pair = _solve(K, dom, sets, tol, stats, "transmural")
    phi_epi, phi_rv = np.clip(pair[:, 0], 0, 1), np.clip(pair[:, 1], 0, 1)
    phi_lv = np.clip(1.0 - phi_epi - phi_rv, 0, 1)

    # apicobasal: apex patch (epicardium) -> base
    p = mesh.points
    h = _mean_edge(p, boundary.faces)
    radius = apex_radius_mm if apex_radius_mm is not None else max(2.0, 1.5 * h)
    apex_node = epi[_near(p, epi, apex_landmark, "lv_apex_epicardium")]
    apex = _patch(p, epi, p[apex_node], radius)
    if np.isin(apex, base).any():
        raise AnatomyError("the apex patch touches the base: the lv_apex_epicardium landmark is not at the apex")
    psi = np.clip(_solve(K, dom, [(apex, 0.0), (base, 1.0)], tol, stats, "apicobasal"), 0, 1)
    ab = trajectory_coordinate(dom, psi, apex, base, tol=tol, stats=stats) if linear_apicobasal else psi

    # inflow/outflow field for the outflow tracts (needs both an inflow and an outflow valve)
    inflow = boundary.nodes("mitral_valve", "tricuspid_valve")
    outflow = boundary.nodes("aortic_valve", "pulmonary_valve")
    if inflow.size and outflow.size:
        w = np.clip(_solve(K, dom, [(outflow, 0.0), (inflow, 1.0)], tol, stats, "outflow"), 0, 1)
    else:
        w = np.ones(len(dom.nodes))

    # transventricular
    n_local = len(dom.nodes)
    tags = mesh.tags[dom.cells]
    rv_tag, lv_tag = lab.label("rv_myocardium"), lab.label("lv_myocardium")
    if (tags == rv_tag).any() and (tags == lv_tag).any():
        in_lv = np.zeros(n_local, dtype=bool)
        in_lv[np.unique(dom.tets[tags == lv_tag])] = True
        v = np.where(in_lv, -1.0, 1.0)
    elif has_rv:
        v = np.where(phi_rv > phi_lv, 1.0, -1.0)
    else:
        v = -np.ones(n_local)
    rho = np.where(v < 0, 1.0 - phi_lv, 1.0 - phi_rv)

    # rotational: around the LV long axis through the LV endocardium's centroid
    axis = axis / np.linalg.norm(axis)
    origin = p[lv_endo].mean(axis=0)
    if np.dot(p[base].mean(axis=0) - p[apex].mean(axis=0), axis) < 0:
        axis = -axis  # the landmark axis must point apex -> base
    reference = (septal_point - origin) if septal_point is not None else septal_dir
    phi = rotational_angle(dom.points, origin, axis, reference)

    local = {
        "uvc_apicobasal": ab, "uvc_transmural": rho, "uvc_rotational": phi, "uvc_transventricular": v,
        "laplace_apicobasal": psi, "laplace_epi": phi_epi, "laplace_lv": phi_lv, "laplace_rv": phi_rv,
        "laplace_outflow": w,
    }
    fields = {}
    for name, values in local.items():
        full = np.full(mesh.n_points, np.nan)
        full[dom.nodes] = values
        fields[name] = full
    report = {
        "nodes": int(n_local), "cells": int(len(dom.cells)), "surfaces": boundary.counts(),
        "pinched_boundary_edges": boundary.pinched_edges, "apex_nodes": int(apex.size),
        "apex_radius_mm": round(float(radius), 3), "solves": stats,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return Coordinates(fields, {"ventricles": report}, {"ventricles": (dom, local, boundary)})


# ---------------------------------------------------------------------------------------- atria

_ATRIA = {  # domain -> (tag, ring, vein surfaces, endocardium)
    "la": ("la_wall", "mitral_valve", ("pulmonary_veins",), "la_endocardium"),
    "ra": ("ra_wall", "tricuspid_valve", ("superior_vena_cava", "inferior_vena_cava"), "ra_endocardium"),
}
SEPTUM_MARGIN_MM = 3.0
LATERAL_RADIUS_MM = 5.0


def _septal_nodes(mesh: TetMesh, boundary: Boundary, other_nodes: np.ndarray | None,
                  landmarks: Mapping | None, side: str) -> np.ndarray:
    """Nodes of the interatrial septum of one atrium: contact faces with the other atrium, else outer
    faces within SEPTUM_MARGIN_MM of the closest approach to it (or to an ``{side}_septum`` landmark)."""
    contact = boundary.nodes("interatrial_septum")
    outer = boundary.mask("epicardium", "interatrial_septum")
    faces = boundary.faces[outer]
    centres = mesh.points[faces].mean(axis=1)
    if other_nodes is not None and len(other_nodes):
        d, _ = cKDTree(mesh.points[other_nodes]).query(centres)
    elif landmarks is not None and f"{side}_septum" in landmarks:
        d = np.linalg.norm(centres - _landmark(landmarks, f"{side}_septum", "the septal boundary"), axis=1)
    else:
        if contact.size:
            return contact
        raise AnatomyError(
            f"the {side.upper()} septum cannot be found: the mesh has no other atrium and no '{side}_septum' landmark"
        )
    near = faces[d <= d.min() + SEPTUM_MARGIN_MM]
    return np.union1d(contact, np.unique(near))


def atrial_boundaries(mesh: TetMesh, labels: LabelImage | None, atria: tuple[str, ...] = ("la", "ra"),
                      boundaries: Mapping[str, Boundary] | None = None) -> dict[str, Boundary]:
    """Classified boundaries of the atria (given ones are kept), checked for the surfaces the UAC
    need: endocardium, AV valve ring and venous openings; raises :class:`AnatomyError` otherwise."""
    out = dict(boundaries or {})
    for side in atria:
        if side not in _ATRIA:
            raise AnatomyError(f"unknown atrium {side!r}; choose 'la' and/or 'ra'")
        if side not in out:
            out[side] = classify_boundary(mesh, labels, side)
        _, ring_name, vein_names, endo_name = _ATRIA[side]
        what = f"the {side.upper()} coordinates"
        out[side].require((endo_name, ring_name), what)
        out[side].require(vein_names, what)
        if side == "ra":
            out[side].require(("superior_vena_cava", "inferior_vena_cava"), what)
    return out


def atrial_coordinates(mesh: TetMesh, labels: LabelImage | None = None, landmarks: Mapping | None = None, *,
                       atria: tuple[str, ...] = ("la", "ra"), boundaries: Mapping[str, Boundary] | None = None,
                       tol: float = 1e-6) -> Coordinates:
    """UAC (alpha, beta, transmural; see the module docstring) on the LA and/or RA walls of ``mesh``.

    Boundaries are classified from ``labels`` unless given in ``boundaries`` (domain -> Boundary).
    The LA needs its endocardium, the mitral ring and pulmonary-vein openings; the RA its
    endocardium, the tricuspid ring and both caval openings. Raises :class:`AnatomyError` when one is
    missing, :class:`InvalidMeshError` for a mesh not in mm or not manifold.
    """
    start = time.perf_counter()
    fields = {name: np.full(mesh.n_points, np.nan) for name in UAC_FIELDS}
    report: dict = {}
    domains: dict = {}
    boundaries = atrial_boundaries(mesh, labels, atria, boundaries)
    for side in atria:
        t0 = time.perf_counter()
        tag, ring_name, vein_names, endo_name = _ATRIA[side]
        b = boundaries[side]
        what = f"the {side.upper()} coordinates"
        main, specks = _main_piece(mesh, b.cells)
        dom = Domain.of(mesh, main)
        K = dom.stiffness()
        stats: dict = {}
        endo = b.nodes(endo_name)
        outer = b.nodes("epicardium", "interatrial_septum", "av_junction")
        ring, veins = b.nodes(ring_name), b.nodes(*vein_names)
        if not outer.size:
            raise AnatomyError(f"{what} need the epicardium of the {side.upper()}, which the boundary lacks")
        other = "ra" if side == "la" else "la"
        other_tag = lab.label(_ATRIA[other][0])
        other_nodes = np.unique(mesh.cells[mesh.tags == other_tag]) if (mesh.tags == other_tag).any() else None
        septum = _septal_nodes(mesh, b, other_nodes, landmarks, side)
        # lateral anchor: the outer wall farthest from the other atrium (or from the septum)
        epi_nodes = b.nodes("epicardium")
        p = mesh.points
        away = p[epi_nodes].mean(axis=0) - (p[other_nodes].mean(axis=0) if other_nodes is not None
                                            else p[septum].mean(axis=0))
        away /= max(np.linalg.norm(away), 1e-12)
        extreme = p[epi_nodes[np.argmax(p[epi_nodes] @ away)]]
        lateral = np.setdiff1d(_patch(p, epi_nodes, extreme, LATERAL_RADIUS_MM), septum)
        if not lateral.size:
            raise AnatomyError(f"{what}: the lateral anchor coincides with the septum; the atrium is degenerate")

        tau = np.clip(_solve(K, dom, [(endo, 0.0), (outer, 1.0)], tol, stats, "transmural"), 0, 1)
        beta = np.clip(_solve(K, dom, [(ring, 0.0), (veins, 1.0)], tol, stats, "beta"), 0, 1)
        alpha = np.clip(_solve(K, dom, [(septum, 0.0), (lateral, 1.0)], tol, stats, "alpha"), 0, 1)
        local = {"uac_alpha": alpha, "uac_beta": beta, "uac_transmural": tau}
        if side == "ra":
            svc, ivc = b.nodes("superior_vena_cava"), b.nodes("inferior_vena_cava")
            if not (svc.size and ivc.size):
                raise AnatomyError(f"{what} need both caval openings (found {b.counts()})")
            local["laplace_caval"] = np.clip(_solve(K, dom, [(ivc, 0.0), (svc, 1.0)], tol, stats, "caval"), 0, 1)
        speck_nodes = np.setdiff1d(np.unique(mesh.cells[specks]), dom.nodes)
        nearest = cKDTree(dom.points).query(mesh.points[speck_nodes])[1] if speck_nodes.size else None
        for name, values in local.items():
            full = fields.setdefault(name, np.full(mesh.n_points, np.nan))
            full[dom.nodes] = values
            if nearest is not None:  # detached specks take the value of the nearest wall node
                full[speck_nodes] = values[nearest]
        report[side] = {
            "detached_cells": int(len(specks)),
            "nodes": int(len(dom.nodes)), "cells": int(len(dom.cells)), "surfaces": b.counts(),
            "pinched_boundary_edges": b.pinched_edges, "septal_nodes": int(septum.size),
            "septum_centre_mm": p[septum].mean(axis=0).round(3).tolist(),
            "lateral_nodes": int(lateral.size), "solves": stats, "seconds": round(time.perf_counter() - t0, 3),
        }
        domains[side] = (dom, local, b)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return Coordinates(fields, report, domains)
