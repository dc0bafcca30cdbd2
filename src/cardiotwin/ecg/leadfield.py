"""Torso lead fields of the ECG electrodes and their projection onto the heart mesh.

**Reciprocity.** The potential difference between electrode l and a reference, produced by
impressed currents J_i in the heart, equals int J_i . grad Z_l dx, where the *lead field* Z_l is the
potential when a unit current is injected at l and withdrawn at the reference
(Helmholtz reciprocity; Geselowitz 1989, IEEE Trans Biomed Eng 36:1215; Potse 2018, Front
Physiol 9:370). For the bidomain source J_i = -sigma_i grad V_m and P1 elements this is
phi_l - phi_ref = w_l . V_m with w_l = -K_i Z_l (K_i the intracellular stiffness matrix), exactly the
discrete identity (e_l - e_ref)^T phi = Z_l^T K phi = -Z_l^T K_i V_m of the forward problem
K phi = -K_i V_m. So one torso solve per electrode replaces a torso solve per time step.

**Torso problem.** K Z_l = b_l on the torso mesh with K the P1 stiffness of the bulk conductivity
(one isotropic value per region, :mod:`cardiotwin.ecg.conductivity`) and an insulated skin
(pure Neumann). The unit current enters at the electrode point x_l on its skin triangle,
distributed to the triangle's nodes by its barycentric coordinates (the consistent P1 point
source, so Z_l . b_m is the P1 field evaluated exactly at x_m), and leaves at the reference
electrode (default RL, the ECG's ground) or, with ``reference=None``, evenly from all electrodes
(then potentials are relative to the electrodes' mean). Either way the 12 leads, being
differences, are the same. All right-hand sides share one smoothed-aggregation AMG hierarchy
(:class:`cardiotwin.fem.Solver`).

**Heart projection.** The torso and heart meshes do not share nodes: Z_l is interpolated at the
heart nodes with the torso's P1 basis (barycentric coordinates in the containing torso
tetrahedron, :func:`cardiotwin.meshing.locate.locate`), then w_l = -K_i Z_l with K_i assembled on the
heart's myocardial cells with sigma_i (transversely isotropic along the ``fibre`` cell field,
isotropic fallback without fibres: :func:`cardiotwin.ecg.conductivity.intracellular_conductivity`).
Valve planes and blood have no intracellular domain and get no source.

**Units.** Conductivities in S/m and lengths in mm throughout (K in S/m mm); the weights depend only
on sigma_i / sigma_bulk and are dimensionless, so phi is in the units of V_m (mV).

:class:`LeadFields` holds the (E, n_heart) weights; :meth:`LeadFields.ecg` gives the 12-lead ECG of
activation/repolarisation times through :func:`cardiotwin.ecg.simulate.ecg_fast` and
:func:`~cardiotwin.ecg.simulate.twelve_lead`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.ecg.conductivity import (
    CLERC_1976,
    MyocardialConductivity,
    conductivity_table,
    intracellular_conductivity,
    region_conductivity,
)
from cardiotwin.ecg.leads import HEART_TAGS, Electrodes, SkinSurface, closest_skin_points, skin_surface
from cardiotwin.ecg.simulate import ELECTRODES, ecg_fast, ecg_fast_batch, lead_matrix, leadfield_weights, twelve_lead
from cardiotwin.electrophysiology.action_potential import ApShape
from cardiotwin.errors import (
    AnatomyError,
    ElectrodeError,
    InvalidParameterError,
)
from cardiotwin.fem import Solver, stiffness
from cardiotwin.meshing.locate import locate
from cardiotwin.types import TWELVE_LEADS, Ecg, TetMesh

__all__ = [
    "TorsoLeadFields",
    "LeadFields",
    "torso_lead_fields",
    "heart_weights",
    "compute_lead_fields",
    "locate_in_torso",
]

#: an electrode farther than this (mm) from the skin of the torso it is used with is rejected
ON_SKIN_TOL_MM = 1e-3
#: heart nodes are located in chunks of this many (memory ~ chunk x k x 100 bytes)
_LOCATE_CHUNK = 20_000
#: below this fraction of heart nodes in the torso's heart/blood/vessel regions the meshes are
#: taken to be misregistered
MIN_HEART_OVERLAP = 0.5


#: bumped when the weights of the same meshes change (2: atrioventricular junction insulated)
WEIGHTS_VERSION = 2


def _fingerprint(mesh: TetMesh, fibre_key: str | None = None) -> str:
    """Hash of a mesh's nodes, cells, tags (and fibres: the intracellular tensors follow them)."""
    h = hashlib.sha1()
    for a, dtype in ((mesh.points, np.float64), (mesh.cells, np.int64), (mesh.tags, np.int64)):
        h.update(np.ascontiguousarray(a, dtype=dtype).tobytes())
    if fibre_key and fibre_key in mesh.cell_data:
        h.update(np.ascontiguousarray(mesh.cell_data[fibre_key], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------ torso solve


@dataclass(frozen=True, eq=False)
class TorsoLeadFields:
    """Lead fields on the torso nodes: ``fields`` (E, n_torso), one per electrode (zero for the
    reference electrode), in mV per unit impressed current (1/(S/m mm) units)."""

    names: tuple[str, ...]
    positions: np.ndarray
    reference: str | None
    fields: np.ndarray
    info: dict = field(default_factory=dict)


def _check_electrodes(electrodes: Electrodes, torso: TetMesh, skin: SkinSurface):
    """Recompute each electrode's skin triangle and barycentric coordinates on *this* torso; raise
    :class:`ElectrodeError` for electrodes off its skin or on a heart region."""
    if not isinstance(electrodes, Electrodes):
        raise ElectrodeError(
            f"electrodes must be an Electrodes set (cardiotwin.ecg.leads), got {type(electrodes).__name__}"
        )
    cp = closest_skin_points(electrodes.positions, skin)
    scale = float(np.ptp(torso.points, axis=0).max())
    off = cp.distances > ON_SKIN_TOL_MM + 1e-9 * scale
    if off.any():
        detail = ", ".join(f"{electrodes.names[i]} {cp.distances[i]:.3g} mm" for i in np.flatnonzero(off))
        raise ElectrodeError(
            f"electrode(s) not on the skin of this torso mesh ({detail}); place them with "
            "cardiotwin.ecg.leads.standard_electrodes or snap_electrodes on the same torso mesh"
        )
    owner_tags = torso.tags[skin.cells[cp.faces]]
    in_heart = np.isin(owner_tags, HEART_TAGS)
    if in_heart.any():
        raise ElectrodeError(
            f"electrode(s) {[electrodes.names[i] for i in np.flatnonzero(in_heart)]} lie on a heart region of the torso "
            "mesh: the heart reaches the skin, so the torso mesh is broken (or the tags are wrong)"
        )
    return skin.faces[cp.faces], cp.barycentric


def torso_lead_fields(
    torso: TetMesh,
    electrodes: Electrodes,
    *,
    conductivities: Mapping[str | int, float] | None = None,
    myocardium: MyocardialConductivity = CLERC_1976,
    reference: str | None = "auto",
    tol: float = 1e-8,
    method: str = "auto",
    skin: SkinSurface | None = None,
) -> TorsoLeadFields:
    """Solve the torso Poisson problem once per electrode (see the module docstring).

    ``conductivities``: overrides of the default bulk conductivities, {region name or label: S/m};
    ``reference``: the electrode the current leaves by ("auto": RL if present, else None), or None
    for the average of all electrodes; ``tol``: relative residual of AMG-preconditioned CG;
    ``method``: "auto", "amg" or "direct" (:class:`cardiotwin.fem.Solver`).
    """
    if not isinstance(torso, TetMesh):
        raise InvalidParameterError(f"torso must be a TetMesh, got {type(torso).__name__}")
    start = time.perf_counter()
    skin = skin or skin_surface(torso)
    tri, bary = _check_electrodes(electrodes, torso, skin)
    names = electrodes.names
    if reference == "auto":
        reference = next((n for n in names if n.upper() == "RL"), None)
    if reference is not None:
        ref = electrodes.index(reference)
        reference = names[ref]
        if len(names) < 2:
            raise ElectrodeError("a reference electrode needs at least one other electrode")
    table = conductivity_table(conductivities, myocardium)
    sigma = region_conductivity(torso.tags, table)
    n, e = torso.n_points, len(names)
    inject = np.zeros((n, e))
    np.add.at(inject, (tri.ravel(), np.repeat(np.arange(e), 3)), bary.ravel())
    if reference is None:
        rhs = inject - inject.mean(axis=1, keepdims=True)
        cols = np.arange(e)
    else:
        cols = np.array([i for i in range(e) if i != ref], dtype=np.int64)
        rhs = inject[:, cols] - inject[:, [ref]]
    t_setup = time.perf_counter()
    K = stiffness(torso.points, torso.cells, sigma)
    solver = Solver(K, None, tol=tol, method=method)
    t_solve = time.perf_counter()
    sol = solver.solve(rhs)
    x = sol.x.reshape(n, -1)
    fields = np.zeros((e, n))
    fields[cols] = x.T
    end = time.perf_counter()
    present = {lab.name(int(t)): table[int(t)] for t in np.unique(torso.tags)}
    info = {
        "torso_nodes": n, "torso_cells": torso.n_cells, "skin_faces": int(len(skin.faces)),
        "electrodes": e, "solves": int(len(cols)), "reference": reference or "average of all electrodes",
        "solver": sol.method, "iterations_max": int(sol.iterations), "relative_residual_max": float(sol.residual),
        "tol": tol, "conductivities_s_per_m": present,
        "time_s": {"assembly": round(t_solve - t_setup, 3), "solve": round(end - t_solve, 3),
                   "total": round(end - start, 3)},
        "torso_fingerprint": _fingerprint(torso),
    }
    return TorsoLeadFields(names, electrodes.positions.copy(), reference, fields, info)


# ------------------------------------------------------------------------------------ heart projection


def _locate_by_radius(points: np.ndarray, cells: np.ndarray, tree: cKDTree, queries: np.ndarray,
                      tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Exact point location for the queries the nearest-centroid search missed: every cell whose
    circumscribing ball (centroid, farthest vertex) holds the point is a candidate. Needed in graded
    meshes, where a large cell's centroid can be farther than those of many small neighbours."""
    cen = points[cells].mean(axis=1)
    radius = np.sqrt(((points[cells] - cen[:, None, :]) ** 2).sum(-1).max(axis=1))
    lists = tree.query_ball_point(queries, float(radius.max()) * (1 + 1e-9))
    counts = np.array([len(c) for c in lists])
    element = np.full(len(queries), -1, dtype=np.int64)
    coords = np.zeros((len(queries), 4))
    if counts.sum() == 0:
        return element, coords
    cand = np.concatenate([np.asarray(c, dtype=np.int64) for c in lists])
    owner = np.repeat(np.arange(len(queries)), counts)
    keep = np.linalg.norm(cen[cand] - queries[owner], axis=1) <= radius[cand] * (1 + 1e-9)
    cand, owner = cand[keep], owner[keep]
    if cand.size == 0:
        return element, coords
    p = points[cells[cand]]
    t = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]], axis=-1)
    lam = np.linalg.solve(t, (queries[owner] - p[:, 0])[..., None])[..., 0]
    bary = np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)
    worst = bary.min(axis=1)
    order = np.lexsort((-worst, owner))  # per query, the candidate with the largest min coordinate first
    first = order[np.unique(owner[order], return_index=True)[1]]
    ok = worst[first] >= -tol
    element[owner[first[ok]]] = cand[first[ok]]
    coords[owner[first[ok]]] = bary[first[ok]]
    return element, coords


def locate_in_torso(torso: TetMesh, points: np.ndarray, skin: SkinSurface | None = None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Containing torso cell (q,) and barycentric coordinates (q, 4) of each point, and how many
    points were in an interior void of the torso mesh (they take the clipped coordinates of the
    nearest cell: the field is continued from the void's wall). Raises :class:`AnatomyError` if a
    point lies outside the torso's skin."""
    q = np.asarray(points, dtype=np.float64)
    tree = cKDTree(torso.points[torso.cells].mean(axis=1))
    element = np.full(len(q), -1, dtype=np.int64)
    coords = np.zeros((len(q), 4))
    box_lo, box_hi = torso.points.min(axis=0), torso.points.max(axis=0)
    in_box = np.flatnonzero(np.all((q >= box_lo) & (q <= box_hi), axis=1))
    for start in range(0, in_box.size, _LOCATE_CHUNK):  # chunks bound the (chunk, k, 4, 3) work arrays
        sub = in_box[start:start + _LOCATE_CHUNK]
        element[sub], coords[sub] = locate(torso.points, torso.cells, q[sub], k=16, tree=tree)
    missing = np.flatnonzero(element < 0)
    n_void = 0
    if missing.size:
        in_box = missing[np.all((q[missing] >= box_lo) & (q[missing] <= box_hi), axis=1)]
        for start in range(0, in_box.size, _LOCATE_CHUNK):
            sub = in_box[start:start + _LOCATE_CHUNK]
            element[sub], coords[sub] = _locate_by_radius(torso.points, torso.cells, tree, q[sub])
        missing = missing[element[missing] < 0]
    if missing.size:
        skin = skin or skin_surface(torso)
        if len(skin.voids):  # points in a closed void inside the body are continued from its wall
            cand = missing[np.all((q[missing] >= box_lo) & (q[missing] <= box_hi), axis=1)]
            void = SkinSurface.of(torso.points, skin.voids, np.zeros(len(skin.voids), dtype=np.int64))
            d_void = closest_skin_points(q[cand], void).distances
            fix = cand[d_void < closest_skin_points(q[cand], skin).distances]
            if fix.size:
                element[fix], coords[fix] = locate(torso.points, torso.cells, q[fix], k=16, tree=tree, clamp=True)
                n_void = int(fix.size)
                missing = np.setdiff1d(missing, fix)
    if missing.size:
        far, _ = cKDTree(torso.points[np.unique(skin.faces)]).query(q[missing])  # ~distance, for the message
        raise AnatomyError(
            f"the torso mesh does not enclose the heart mesh: {missing.size} of {len(q)} heart nodes lie outside it "
            f"(up to ~{far.max():.1f} mm from the skin, e.g. node {int(missing[0])} at "
            f"{q[missing[0]].round(1).tolist()} mm); mesh both from the same label map and frame"
        )
    return element, coords, n_void


def heart_weights(
    fields: TorsoLeadFields,
    torso: TetMesh,
    heart: TetMesh,
    *,
    myocardium: MyocardialConductivity = CLERC_1976,
    fibre_key: str = "fibre",
) -> tuple[np.ndarray, dict]:
    """Per-node ECG weights (E, n_heart) w_l = -K_i Z_l on the heart mesh, and a report."""
    if not isinstance(heart, TetMesh):
        raise InvalidParameterError(f"heart must be a TetMesh, got {type(heart).__name__}")
    if fields.fields.shape[1] != torso.n_points:
        raise InvalidParameterError(
            f"the lead fields have {fields.fields.shape[1]} values per electrode but the torso mesh has "
            f"{torso.n_points} nodes: they were computed on another torso mesh"
        )
    start = time.perf_counter()
    element, coords, n_void = locate_in_torso(torso, heart.points)
    heartish = np.isin(torso.tags, list(HEART_TAGS) + lab.labels_of(lab.VESSEL_LUMENS + lab.VESSEL_WALLS))
    # a node counts when its containing torso cell touches a heart or blood region: nodes on the
    # heart's surface lie on an interface, and which side's cell contains them is a tie
    touches = np.zeros(torso.n_points, dtype=bool)
    touches[torso.cells[heartish]] = True
    overlap = float(touches[torso.cells[element]].any(axis=1).mean()) if heartish.any() else float("nan")
    if heartish.any() and overlap < MIN_HEART_OVERLAP:
        raise AnatomyError(
            f"only {100 * overlap:.0f} % of the heart-mesh nodes fall in or next to the heart or blood regions of the torso "
            "mesh: the two meshes are not registered (different frames or patients?)"
        )
    # Z at heart nodes: sum over the 4 vertices of the containing torso cell
    z_heart = np.einsum("qk,eqk->eq", coords, fields.fields[:, torso.cells[element]])
    t_interp = time.perf_counter()
    cells, sigma_i, kind = intracellular_conductivity(heart, myocardium, fibre_key=fibre_key)
    K_i = stiffness(heart.points, heart.cells[cells], sigma_i)
    w = leadfield_weights(K_i, z_heart)
    end = time.perf_counter()
    info = {"heart_nodes": heart.n_points, "heart_cells": heart.n_cells, "source_cells": int(cells.size),
            "intracellular_conductivity": kind, "myocardium": myocardium.source,
            "heart_nodes_in_torso_heart_regions": round(overlap, 4),
            "heart_nodes_in_torso_voids": n_void,
            "time_s": {"interpolation": round(t_interp - start, 3), "weights": round(end - t_interp, 3)},
            "heart_fingerprint": _fingerprint(heart, fibre_key), "weights_version": WEIGHTS_VERSION}
    return w, info


# ------------------------------------------------------------------------------------ the object


@dataclass(frozen=True, eq=False)
class LeadFields:
    """Lead-field ECG weights of a heart in a torso: ``weights`` (E, n_heart), row l giving the
    potential of electrode ``names[l]`` relative to ``reference`` (None: the electrodes' mean) as
    ``weights[l] @ V_m``; ``positions`` (E, 3) mm; ``info`` how they were computed."""

    names: tuple[str, ...]
    positions: np.ndarray
    weights: np.ndarray
    reference: str | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        w = np.ascontiguousarray(self.weights, dtype=np.float64)
        pos = np.asarray(self.positions, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != len(names) or pos.shape != (len(names), 3):
            raise InvalidParameterError(
                f"LeadFields needs weights (E, n) and positions (E, 3) for E = {len(names)} names; got "
                f"{w.shape} and {pos.shape}"
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "positions", pos)

    @property
    def n_nodes(self) -> int:
        return self.weights.shape[1]

    def made_for(self, heart: TetMesh, torso: TetMesh | None, fibre_key: str = "fibre") -> bool:
        """Whether these weights were computed, by this version, for exactly this heart (nodes,
        cells, tags, fibres) in exactly this torso (not checked when ``torso`` is None: a twin
        folder whose torso mesh was not kept): a cache check before reuse."""
        heart_info, torso_info = self.info.get("heart", {}), self.info.get("torso", {})
        return (self.n_nodes == heart.n_points and heart_info.get("weights_version") == WEIGHTS_VERSION
                and heart_info.get("heart_fingerprint") == _fingerprint(heart, fibre_key)
                and (torso is None or torso_info.get("torso_fingerprint") == _fingerprint(torso)))

    @cached_property
    def _ecg_rows(self) -> tuple[np.ndarray, tuple[str, ...]]:
        upper = [n.upper() for n in self.names]
        missing = [e for e in ELECTRODES if e not in upper]
        if missing:
            from cardiotwin.errors import MissingLeadsError

            raise MissingLeadsError(
                f"the 12-lead ECG needs electrodes {list(ELECTRODES)}; these lead fields lack {missing}"
            )
        idx = [upper.index(e) for e in ELECTRODES]
        return np.ascontiguousarray(self.weights[idx]), ELECTRODES

    @cached_property
    def weights12(self) -> np.ndarray:
        """Weights (12, n_heart) of the twelve standard leads (I ... V6) themselves."""
        w, names = self._ecg_rows
        return lead_matrix(names) @ w

    def lead_weights(self, leads: tuple[str, ...] = TWELVE_LEADS, weights12: np.ndarray | None = None) -> np.ndarray:
        """Weights (L, n_heart) of standard ``leads``, from :attr:`weights12` or the given 12-lead
        weights (e.g. of the heart rotated in its torso, :mod:`cardiotwin.calibration.pose`)."""
        return (self.weights12 if weights12 is None else weights12)[[TWELVE_LEADS.index(l) for l in leads]]

    def ecg_batch(self, at: np.ndarray, rt: np.ndarray, shape: ApShape | None = None, fs: float = 1000.0,
                  duration_ms: float = 600.0, t0_ms: float = 0.0, leads: tuple[str, ...] = TWELVE_LEADS,
                  weights12: np.ndarray | None = None) -> np.ndarray:
        """Leads (b, L, samples) in mV of activation/repolarisation times (b, n_heart), as :meth:`ecg`
        gives one by one (:func:`~cardiotwin.ecg.simulate.ecg_fast_batch`)."""
        return ecg_fast_batch(self.lead_weights(leads, weights12), at, rt, shape or ApShape(), fs, duration_ms,
                              t0_ms=t0_ms)

    def potentials(self, at: np.ndarray, rt: np.ndarray, shape: ApShape | None = None, fs: float = 1000.0,
                   duration_ms: float = 600.0, t0_ms: float = 0.0) -> np.ndarray:
        """Potentials (E, T) in mV of every electrode relative to the reference (body-surface maps)."""
        return ecg_fast(self.weights, at, rt, shape or ApShape(), fs, duration_ms, t0_ms)

    def ecg(self, at: np.ndarray, rt: np.ndarray, shape: ApShape | None = None, fs: float = 1000.0,
            duration_ms: float = 600.0, t0_ms: float = 0.0) -> Ecg:
        """The 12-lead ECG (mV) of activation and repolarisation times ``at``, ``rt`` (n_heart,) in ms
        (+inf: never) with the action-potential template ``shape`` (default :class:`ApShape`),
        sampled at ``fs`` Hz over ``duration_ms`` from ``t0_ms``."""
        w, names = self._ecg_rows
        phi = ecg_fast(w, at, rt, shape or ApShape(), fs, duration_ms, t0_ms)
        return twelve_lead(phi, names, fs)


def compute_lead_fields(
    torso: TetMesh,
    heart: TetMesh,
    electrodes: Electrodes,
    *,
    conductivities: Mapping[str | int, float] | None = None,
    myocardium: MyocardialConductivity = CLERC_1976,
    reference: str | None = "auto",
    tol: float = 1e-8,
    method: str = "auto",
    fibre_key: str = "fibre",
) -> LeadFields:
    """Lead fields of ``electrodes`` (on the ``torso`` skin) projected onto the ``heart`` mesh:
    :func:`torso_lead_fields` then :func:`heart_weights`. See the module docstring."""
    fields = torso_lead_fields(torso, electrodes, conductivities=conductivities, myocardium=myocardium,
                               reference=reference, tol=tol, method=method)
    w, hinfo = heart_weights(fields, torso, heart, myocardium=myocardium, fibre_key=fibre_key)
    info = {"torso": fields.info, "heart": hinfo, "electrode_rules": dict(zip(electrodes.names, electrodes.rules))}
    return LeadFields(fields.names, fields.positions, w, fields.reference, info)
