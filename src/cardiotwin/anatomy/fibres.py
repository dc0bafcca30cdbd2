"""Rule-based myocardial fibre, sheet and sheet-normal directions for a four-chamber heart mesh.

Ventricles: the Laplace-Dirichlet rule-based (LDRB) method of Bayer et al. 2012 (Ann Biomed Eng
40:2243), with the outflow tracts of Doste et al. 2019 (Int J Numer Method Biomed Eng 35:e3185)
-------------------------------------------------------------------------------------------------
In every cell, from the Laplace fields of :func:`cardiotwin.anatomy.coordinates.ventricular_coordinates`
(cell gradients of the P1 solutions, cell means of their values):

* ``axis(u, v)``: the orthonormal frame Q = [c, l, t] with l = u/|u| (longitudinal, apex to base),
  t = the part of v normal to l (transmural), c = l x t (circumferential: counterclockwise seen
  from the base, the reference of the helix angle);
* ``orient(Q, alpha, beta)`` = Q R_t(alpha) R_f(beta): the fibre f is c rotated by the helix angle
  alpha about t (towards l), and the sheet s is t rotated by the sheet angle beta about f, so the
  fibre stays tangent to the wall (Bayer's rule R1) and beta is measured from the outward
  transmural axis (R4). The sheet normal is n = f x s;
* ``bislerp``: spherical linear interpolation of two frames as quaternions, after replacing the first
  by whichever of its four sign-equivalent frames (f, s, n up to pairwise sign flips) is closest to
  the second (Bayer et al. 2012, appendix).

Bayer et al. interpolate (bislerp) an endocardial frame oriented with the septal angles and an
epicardial frame oriented with the wall angle alpha_w(e) = alpha_endo (1 - e) + alpha_epi e by
e = phi_epi. Because bislerp always takes the shortest rotation between sign-equivalent frames, an
interpolation between frames more than 90 degrees apart goes the wrong way round: with +-60 degrees
the helix then jumps through the longitudinal direction in the outer quarter of the free walls
(and the angle is quadratic, +30 rather than 0 mid-wall, elsewhere) — the discontinuity that
Schuler et al.'s adapted LDRB (KIT, 2021) removes. We keep Bayer's structure but orient every frame
outward from its own cavity at its own transmural depth, so that all frames that get interpolated
are close to each other and the helix angle is linear in the transmural coordinate:

  alpha(T) = alpha_endo + (alpha_epi - alpha_endo) T,   beta(T) likewise,
  Q_lv   = orient(axis(g_l, -grad phi_lv), alpha(1 - phi_lv), beta(1 - phi_lv)),
  Q_rv   = orient(axis(g_l, -grad phi_rv), alpha(1 - phi_rv), beta(1 - phi_rv)),
  Q_endo = bislerp(Q_lv, Q_rv, d),   d = phi_rv / (phi_lv + phi_rv),
  Q_epi  = orient(axis(g_l, grad phi_epi), alpha(phi_epi), beta(phi_epi)),
  Q      = bislerp(Q_endo, Q_epi, phi_epi).

In the free walls 1 - phi_lv (or 1 - phi_rv) equals phi_epi, so Q_endo and Q_epi coincide and the
helix runs from alpha_endo to alpha_epi linearly in phi_epi. In the septum (phi_epi ~ 0) the LV and
RV frames are the same frame seen from either side (1 - phi_lv = phi_rv = d there), and the helix
runs from +alpha_endo at the LV endocardium through 0 to -alpha_endo (in the LV frame) at the RV
endocardium for alpha_epi = -alpha_endo: Bayer et al.'s septal rule alpha_s(d) = alpha_endo (1 - 2d),
continuous with both free walls (rule R6). Near the epicardium, where d is 0/0, phi_epi -> 1 hands
over to Q_epi as in the paper.

Outflow tracts (Doste et al. 2019): Doste solves apex-to-valve fields for each valve and blends them
with a valve-to-valve weight. We use one Laplace field w (0 on the aortic and pulmonary rings, 1 on
the mitral and tricuspid rings) for both: the outflow-tract weight is
lambda = clip(1 - w / (ot_level * median_w), 0, 1) per ventricle (1 at the outflow valve, 0 in the
body of the ventricle below ``ot_level`` times its median w); the longitudinal direction is
g_l = (1 - lambda) grad psi/|grad psi| + lambda (-grad w)/|grad w| (psi: the apex-to-base Laplace
field; -grad w runs up the tract towards its valve), the helix angles blend to Doste's outflow-tract
values (alpha_ot_endo = +90: longitudinal, alpha_ot_epi = 0: circumferential) and the sheet angles
fade to 0 with weight 1 - lambda.

Defaults: alpha_endo = +60, alpha_epi = -60, beta_endo = -65, beta_epi = +25 degrees (Bayer et al.
2012's human-like values).

Atria: rule-based bundles on the universal atrial coordinates (after Roney et al. 2019, Med Image
Anal 55:65, and Piersanti et al. 2021, Comput Methods Appl Mech Eng 373:113468)
-------------------------------------------------------------------------------------------------
Directions are taken tangent to the wall (the transmural gradient removed): with t the transmural
direction, P(v) the unit tangential part of v, and the UAC gradients:

* vestibules (within ``ring_width_mm`` of the AV valve ring): fibres circumferential around the
  ring, t x P(grad beta);
* venous ostia (within ``vein_width_mm`` of the pulmonary-vein / caval openings): circumferential
  around the veins, t x P(grad beta) (grad beta points into each opening there);
* RA, lateral wall: the **crista terminalis**, a band of azimuth ``ct_azimuth_deg`` about the
  intercaval axis (lateral-posterior), running from the superior to the inferior caval vein
  (P(grad laplace_caval)); anterior to it the **pectinate muscles**, running from the crista towards
  the tricuspid ring (P(grad beta));
* **Bachmann's bundle**: the anterior-superior, septal half of both atria (anterior of the
  intercaval axis, above the atrial centre, alpha < 0.5, epicardial half), running along the
  interatrial axis from the RA to the LA;
* the rest of each atrium (body): septal-to-lateral, P(grad alpha).

Sheets are the transmural direction made orthogonal to the fibre. Cell field ``fibre_region``
(:data:`FIBRE_REGIONS`) records which rule applies. Cells of other regions (valve planes) have no
myocytes: they get the identity frame (x, y, z) and region -1 so that solvers still see
orthonormal fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.spatial import cKDTree

from cardiotwin import labels as lab
from cardiotwin.anatomy.coordinates import (
    Coordinates,
    atrial_boundaries,
    atrial_coordinates,
    ventricular_coordinates,
)
from cardiotwin.errors import AnatomyError, InvalidParameterError
from cardiotwin.geometry import unit_vectors
from cardiotwin.types import LabelImage, TetMesh

__all__ = [
    "FIBRE_REGIONS",
    "LdrbAngles",
    "AtrialRules",
    "axis_frames",
    "orient",
    "bislerp",
    "helix_angle",
    "ldrb_fibres",
    "atrial_fibres",
    "add_coordinates_and_fibres",
]

FIBRE_REGIONS: dict[str, int] = {
    "none": -1,
    "lv": 1, "rv": 2, "lv_outflow_tract": 3, "rv_outflow_tract": 4,
    "la_body": 10, "mitral_vestibule": 11, "pulmonary_vein_ostia": 12, "bachmann_bundle": 13,
    "ra_body": 20, "tricuspid_vestibule": 21, "caval_vein_ostia": 22, "crista_terminalis": 23,
    "pectinate_muscles": 24,
}


@dataclass(frozen=True)
class LdrbAngles:
    """Helix (alpha) and sheet (beta) angles in degrees; ``ot_level`` sets the outflow-tract extent."""

    alpha_endo: float = 60.0
    alpha_epi: float = -60.0
    beta_endo: float = -65.0
    beta_epi: float = 25.0
    alpha_ot_endo: float = 90.0
    alpha_ot_epi: float = 0.0
    ot_level: float = 0.7

    def __post_init__(self) -> None:
        for name in ("alpha_endo", "alpha_epi", "beta_endo", "beta_epi", "alpha_ot_endo", "alpha_ot_epi"):
            value = getattr(self, name)
            if not (np.isfinite(value) and -180.0 <= value <= 180.0):
                raise InvalidParameterError(f"{name} must be an angle in degrees within [-180, 180], got {value}")
        if not (np.isfinite(self.ot_level) and 0.0 <= self.ot_level <= 1.0):
            raise InvalidParameterError(
                f"ot_level must lie in [0, 1] (0 disables the outflow tracts), got {self.ot_level}")


# ----------------------------------------------------------------------------- frame algebra


def _perpendicular(e: np.ndarray) -> np.ndarray:
    """Some unit vector perpendicular to each unit vector e (m, 3)."""
    pick = np.where(np.abs(e[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    return unit_vectors(np.cross(e, pick))


def axis_frames(longitudinal: np.ndarray, transmural: np.ndarray) -> np.ndarray:
    """Frames Q (m, 3, 3) with columns [c, l, t]: l = unit longitudinal, t = transmural made
    orthogonal to l, c = l x t. Degenerate inputs (zero or parallel vectors) get some valid frame."""
    u = np.asarray(longitudinal, float)
    v = np.asarray(transmural, float)
    nu = np.linalg.norm(u, axis=1)
    e1 = np.where((nu > 1e-12)[:, None], u / np.maximum(nu, 1e-300)[:, None], np.array([[0.0, 0.0, 1.0]]))
    e2 = v - np.einsum("ij,ij->i", v, e1)[:, None] * e1
    n2 = np.linalg.norm(e2, axis=1)
    good = n2 > 1e-9 * np.maximum(np.linalg.norm(v, axis=1), 1e-300)
    e2 = np.where(good[:, None], e2 / np.maximum(n2, 1e-300)[:, None], _perpendicular(e1))
    e0 = np.cross(e1, e2)
    return np.stack([e0, e1, e2], axis=2)


def orient(Q: np.ndarray, alpha_deg: np.ndarray | float, beta_deg: np.ndarray | float) -> np.ndarray:
    """Q R_t(alpha) R_f(beta): fibre = c rotated by alpha about t, sheet = t rotated by beta about f."""
    a = np.radians(np.broadcast_to(np.asarray(alpha_deg, float), Q.shape[:1]))
    b = np.radians(np.broadcast_to(np.asarray(beta_deg, float), Q.shape[:1]))
    c, l, t = Q[:, :, 0], Q[:, :, 1], Q[:, :, 2]
    ca, sa, cb, sb = np.cos(a)[:, None], np.sin(a)[:, None], np.cos(b)[:, None], np.sin(b)[:, None]
    f = ca * c + sa * l
    lp = -sa * c + ca * l
    return np.stack([f, cb * lp - sb * t, sb * lp + cb * t], axis=2)


def _rot2quat(R: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) of rotation matrices (m, 3, 3) (Shepperd's method)."""
    m = len(R)
    r = R
    tr = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    diag = np.stack([tr, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], axis=1)
    case = np.argmax(diag, axis=1)
    q = np.empty((m, 4))
    for k in range(4):  # four closed-form branches, each vectorised
        s = case == k
        if not s.any():
            continue
        rr = r[s]
        if k == 0:
            w = 0.5 * np.sqrt(np.maximum(1.0 + tr[s], 0.0))
            f = 0.25 / w
            q[s] = np.stack([w, (rr[:, 2, 1] - rr[:, 1, 2]) * f, (rr[:, 0, 2] - rr[:, 2, 0]) * f,
                             (rr[:, 1, 0] - rr[:, 0, 1]) * f], axis=1)
        elif k == 1:
            x = 0.5 * np.sqrt(np.maximum(1.0 + rr[:, 0, 0] - rr[:, 1, 1] - rr[:, 2, 2], 0.0))
            f = 0.25 / x
            q[s] = np.stack([(rr[:, 2, 1] - rr[:, 1, 2]) * f, x, (rr[:, 0, 1] + rr[:, 1, 0]) * f,
                             (rr[:, 0, 2] + rr[:, 2, 0]) * f], axis=1)
        elif k == 2:
            y = 0.5 * np.sqrt(np.maximum(1.0 - rr[:, 0, 0] + rr[:, 1, 1] - rr[:, 2, 2], 0.0))
            f = 0.25 / y
            q[s] = np.stack([(rr[:, 0, 2] - rr[:, 2, 0]) * f, (rr[:, 0, 1] + rr[:, 1, 0]) * f, y,
                             (rr[:, 1, 2] + rr[:, 2, 1]) * f], axis=1)
        else:
            z = 0.5 * np.sqrt(np.maximum(1.0 - rr[:, 0, 0] - rr[:, 1, 1] + rr[:, 2, 2], 0.0))
            f = 0.25 / z
            q[s] = np.stack([(rr[:, 1, 0] - rr[:, 0, 1]) * f, (rr[:, 0, 2] + rr[:, 2, 0]) * f,
                             (rr[:, 1, 2] + rr[:, 2, 1]) * f, z], axis=1)
    return unit_vectors(q)


def _quat2rot(q: np.ndarray) -> np.ndarray:
    w, x, y, z = unit_vectors(q).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)


def _symmetric_variants(q: np.ndarray) -> np.ndarray:
    """q, q*i, q*j, q*k (m, 4, 4): the frame with two of its axes reversed (rotations by pi about
    each of its own axes), the orientations an undirected fibre/sheet/normal triad cannot tell apart."""
    w, x, y, z = q.T
    return np.stack([q, np.stack([-x, w, z, -y], 1), np.stack([-y, -z, w, x], 1), np.stack([-z, y, -x, w], 1)], 1)


def bislerp(Qa: np.ndarray, Qb: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Interpolate frames (m, 3, 3) from Qa (t = 0) to Qb (t = 1) along the shortest rotation between
    Qb and the sign-equivalent variant of Qa closest to it (Bayer et al. 2012)."""
    qa, qb = _rot2quat(Qa), _rot2quat(Qb)
    t = np.broadcast_to(np.asarray(t, float), qa.shape[:1])
    cand = _symmetric_variants(qa)
    dots = np.einsum("mkj,mj->mk", cand, qb)
    best = np.argmax(np.abs(dots), axis=1)
    rows = np.arange(len(qa))
    qa = cand[rows, best] * np.sign(dots[rows, best] + (dots[rows, best] == 0))[:, None]
    cos = np.clip(np.einsum("ij,ij->i", qa, qb), -1.0, 1.0)
    theta = np.arccos(cos)
    small = theta < 1e-6
    sin = np.where(small, 1.0, np.sin(theta))
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / sin)
    wb = np.where(small, t, np.sin(t * theta) / sin)
    return _quat2rot(wa[:, None] * qa + wb[:, None] * qb)


def helix_angle(fibre: np.ndarray, longitudinal: np.ndarray, transmural: np.ndarray) -> np.ndarray:
    """Helix angle (degrees, (-90, 90]) of fibres against the local wall frame: t = unit transmural
    (outward), l = longitudinal made tangent to the wall, c = l x t (circumferential, counterclockwise
    seen from the base); alpha = atan2(f . l, f . c), folded to (-90, 90] since fibres have no sign."""
    t = unit_vectors(np.asarray(transmural, float))
    l = np.asarray(longitudinal, float)
    l = unit_vectors(l - np.einsum("ij,ij->i", l, t)[:, None] * t)
    c = np.cross(l, t)
    f = np.asarray(fibre, float)
    a = np.degrees(np.arctan2(np.einsum("ij,ij->i", f, l), np.einsum("ij,ij->i", f, c)))
    return 90.0 - np.mod(90.0 - a, 180.0)


# ------------------------------------------------------------------------------------ ventricles


def _domain_of(coords: Coordinates, name: str, mesh: TetMesh):
    if name not in coords.domains:
        raise AnatomyError(
            f"the coordinates have no {name} domain; compute them with "
            f"{'ventricular' if name == 'ventricles' else 'atrial'}_coordinates(mesh, labels, landmarks)"
        )
    dom, local, boundary = coords.domains[name]
    if dom.cells.max() >= mesh.n_cells or dom.nodes.max() >= mesh.n_points:
        raise AnatomyError("the coordinates were computed on another mesh")
    return dom, local


def ldrb_fibres(mesh: TetMesh, coords: Coordinates, angles: LdrbAngles = LdrbAngles()
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LDRB fibre, sheet and sheet-normal directions (each (n_cells, 3), NaN outside the ventricles)
    and the region code per cell (-1 outside; lv, rv, lv/rv_outflow_tract where lambda > 0.5)."""
    dom, f = _domain_of(coords, "ventricles", mesh)
    lv, rv, epi = (dom.cell_mean(f[k]) for k in ("laplace_lv", "laplace_rv", "laplace_epi"))
    g_lv, g_rv, g_epi = (dom.recovered_gradient(f[k]) for k in ("laplace_lv", "laplace_rv", "laplace_epi"))
    g_ab = unit_vectors(dom.recovered_gradient(f["laplace_apicobasal"]))
    w_nodes = f["laplace_outflow"]
    side = np.where(dom.cell_mean(f["uvc_transventricular"]) > 0, 1, -1)

    # outflow-tract weight per ventricle
    lam = np.zeros(len(dom.cells))
    if angles.ot_level > 0 and np.ptp(w_nodes) > 0:
        w = dom.cell_mean(w_nodes)
        for s in (-1, 1):
            sel = side == s
            if sel.any():
                level = angles.ot_level * np.median(w[sel])
                if level > 0:
                    lam[sel] = np.clip(1.0 - w[sel] / level, 0.0, 1.0)
        g_w = unit_vectors(-dom.recovered_gradient(w_nodes))
        g_l = (1.0 - lam)[:, None] * g_ab + lam[:, None] * g_w
    else:
        g_l = g_ab
    a_endo = (1 - lam) * angles.alpha_endo + lam * angles.alpha_ot_endo
    a_epi = (1 - lam) * angles.alpha_epi + lam * angles.alpha_ot_epi
    b_endo = (1 - lam) * angles.beta_endo
    b_epi = (1 - lam) * angles.beta_epi

    def angles_at(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        depth = np.clip(depth, 0.0, 1.0)
        return a_endo + (a_epi - a_endo) * depth, b_endo + (b_epi - b_endo) * depth

    total = lv + rv
    d = np.where(total > 1e-9, rv / np.maximum(total, 1e-300), 0.0)
    q_lv = orient(axis_frames(g_l, -g_lv), *angles_at(1.0 - lv))
    has_rv = (np.linalg.norm(g_rv, axis=1) > 1e-12) & (d > 0)
    q_endo = q_lv.copy()
    if has_rv.any():
        a_rv, b_rv = angles_at(1.0 - rv)
        q_rv = orient(axis_frames(g_l[has_rv], -g_rv[has_rv]), a_rv[has_rv], b_rv[has_rv])
        q_endo[has_rv] = bislerp(q_lv[has_rv], q_rv, d[has_rv])
    e = np.clip(epi, 0.0, 1.0)
    q_epi = orient(axis_frames(g_l, g_epi), *angles_at(e))
    Q = bislerp(q_endo, q_epi, e)

    fibre = np.full((mesh.n_cells, 3), np.nan)
    sheet, normal = fibre.copy(), fibre.copy()
    fibre[dom.cells], sheet[dom.cells] = Q[:, :, 0], Q[:, :, 2]
    normal[dom.cells] = np.cross(Q[:, :, 0], Q[:, :, 2])
    region = np.full(mesh.n_cells, FIBRE_REGIONS["none"], dtype=np.int16)
    ot = lam > 0.5
    region[dom.cells] = np.where(side < 0, np.where(ot, FIBRE_REGIONS["lv_outflow_tract"], FIBRE_REGIONS["lv"]),
                                 np.where(ot, FIBRE_REGIONS["rv_outflow_tract"], FIBRE_REGIONS["rv"]))
    return fibre, sheet, normal, region


# ---------------------------------------------------------------------------------------- atria


@dataclass(frozen=True)
class AtrialRules:
    """Extents of the atrial bundle rules: vestibule and venous-ostium bands (mm from the valve ring /
    venous openings), crista terminalis and pectinate-muscle sectors (degrees of azimuth about the
    intercaval axis, 0 = lateral, +90 = anterior), Bachmann's bundle (alpha below, transmural above)."""

    ring_width_mm: float = 8.0
    vein_width_mm: float = 6.0
    ct_azimuth_deg: tuple[float, float] = (-30.0, 5.0)
    pm_azimuth_deg: tuple[float, float] = (5.0, 120.0)
    bb_alpha_max: float = 0.5
    bb_transmural_min: float = 0.5
    bb_height_fraction: float = 0.5
    bb_width_mm: float = 8.0

    def __post_init__(self) -> None:
        for name in ("ring_width_mm", "vein_width_mm", "bb_width_mm"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0.0):
                raise InvalidParameterError(f"{name} must be a non-negative width in mm, got {value}")
        for name in ("ct_azimuth_deg", "pm_azimuth_deg"):
            lo, hi = getattr(self, name)
            if not -180.0 <= lo < hi <= 180.0:
                raise InvalidParameterError(f"{name} must be an increasing pair within [-180, 180], got {(lo, hi)}")


def _tangent(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    return unit_vectors(v - np.einsum("ij,ij->i", v, t)[:, None] * t)


def atrial_fibres(mesh: TetMesh, coords: Coordinates, landmarks: Mapping | None = None,
                  rules: AtrialRules = AtrialRules()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Atrial fibre, sheet, sheet-normal ((n_cells, 3), NaN outside the atria) and region codes."""
    fibre = np.full((mesh.n_cells, 3), np.nan)
    sheet, normal = fibre.copy(), fibre.copy()
    region = np.full(mesh.n_cells, FIBRE_REGIONS["none"], dtype=np.int16)
    sides = [s for s in ("la", "ra") if s in coords.domains]
    if not sides:
        raise AnatomyError("the coordinates have no atrial domain; compute them with atrial_coordinates")
    p = mesh.points
    centres = {s: p[coords.domains[s][0].nodes].mean(axis=0) for s in sides}
    # atrial frame: intercaval axis (superior), interatrial axis (RA -> LA), anterior
    superior = np.array([0.0, 0.0, 1.0])
    if "ra" in sides:
        b = coords.domains["ra"][2]
        svc, ivc = p[b.nodes("superior_vena_cava")].mean(axis=0), p[b.nodes("inferior_vena_cava")].mean(axis=0)
        superior = unit_vectors(svc - ivc)
    interatrial = unit_vectors(centres["la"] - centres["ra"]) if len(sides) == 2 else None
    lateral_ra = -interatrial if interatrial is not None else None
    if landmarks is not None and "aortic_valve_center" in landmarks:
        anterior_hint = np.asarray(landmarks["aortic_valve_center"], float) - np.mean(list(centres.values()), axis=0)
    else:
        anterior_hint = np.array([0.0, -1.0, 0.0])  # LPS: -y is anterior
    middle = np.mean(list(centres.values()), axis=0)
    all_nodes = np.concatenate([coords.domains[s][0].nodes for s in sides])
    bb_height = rules.bb_height_fraction * float(((p[all_nodes] - middle) @ superior).max())
    for s in sides:
        dom, f, b = coords.domains[s]
        g_a, g_b = dom.recovered_gradient(f["uac_alpha"]), dom.recovered_gradient(f["uac_beta"])
        alpha, beta, tau = (dom.cell_mean(f[k]) for k in ("uac_alpha", "uac_beta", "uac_transmural"))
        x = p[mesh.cells[dom.cells]].mean(axis=1)
        t = dom.recovered_gradient(f["uac_transmural"])
        flat = np.linalg.norm(t, axis=1) < 1e-12  # all nearby nodes on one wall surface: use the radial direction
        t[flat] = x[flat] - centres[s]
        t = unit_vectors(t)
        fib = _tangent(g_a, t)
        reg = np.full(len(dom.cells), FIBRE_REGIONS[f"{s}_body"], dtype=np.int16)
        circ = unit_vectors(np.cross(t, _tangent(g_b, t)))
        ring_nodes = b.nodes("mitral_valve" if s == "la" else "tricuspid_valve")
        vein_nodes = b.nodes(*(("pulmonary_veins",) if s == "la" else ("superior_vena_cava", "inferior_vena_cava")))
        ring = cKDTree(p[ring_nodes]).query(x)[0] <= rules.ring_width_mm
        vein = (cKDTree(p[vein_nodes]).query(x)[0] <= rules.vein_width_mm) & ~ring
        # Bachmann's bundle: anterior-superior septal half, epicardial
        ant = unit_vectors(anterior_hint - np.dot(anterior_hint, superior) * superior)
        rel = x - centres[s]
        if interatrial is not None:
            band = np.abs((x - middle) @ superior - bb_height) <= 0.5 * rules.bb_width_mm
            bb = ((rel @ ant > 0) & band & (alpha < rules.bb_alpha_max)
                  & (tau >= rules.bb_transmural_min) & ~ring & ~vein)
            fib[bb] = _tangent(np.broadcast_to(interatrial, (int(bb.sum()), 3)), t[bb])
            reg[bb] = FIBRE_REGIONS["bachmann_bundle"]
        else:
            bb = np.zeros(len(dom.cells), dtype=bool)
        if s == "ra":
            # azimuth about the intercaval axis: 0 lateral, +90 anterior
            if lateral_ra is not None:
                lat = lateral_ra
            else:  # RA only: lateral = away from its septum
                lat = unit_vectors(centres["ra"] - np.asarray(coords.report["ra"]["septum_centre_mm"]))
            lat = unit_vectors(lat - np.dot(lat, superior) * superior)
            front = np.cross(superior, lat)
            if np.dot(front, ant) < 0:
                front = -front
            az = np.degrees(np.arctan2(rel @ front, rel @ lat))
            free = ~ring & ~vein & ~bb
            ct = free & (az >= rules.ct_azimuth_deg[0]) & (az < rules.ct_azimuth_deg[1])
            pm = free & (az >= rules.pm_azimuth_deg[0]) & (az < rules.pm_azimuth_deg[1])
            g_k = dom.recovered_gradient(f["laplace_caval"])
            fib[ct] = _tangent(g_k[ct], t[ct])
            reg[ct] = FIBRE_REGIONS["crista_terminalis"]
            fib[pm] = _tangent(g_b[pm], t[pm])
            reg[pm] = FIBRE_REGIONS["pectinate_muscles"]
        fib[ring] = circ[ring]
        reg[ring] = FIBRE_REGIONS["mitral_vestibule" if s == "la" else "tricuspid_vestibule"]
        fib[vein] = circ[vein]
        reg[vein] = FIBRE_REGIONS["pulmonary_vein_ostia" if s == "la" else "caval_vein_ostia"]
        # degenerate directions (vanishing tangential gradients) fall back to any tangent direction
        bad = ~np.isfinite(fib).all(axis=1) | (np.linalg.norm(fib, axis=1) < 0.5)
        fib[bad] = _perpendicular(t[bad])
        she = _tangent(t, fib)
        bad = ~np.isfinite(she).all(axis=1) | (np.linalg.norm(she, axis=1) < 0.5)
        she[bad] = _perpendicular(fib[bad])
        fibre[dom.cells], sheet[dom.cells] = fib, she
        normal[dom.cells] = np.cross(fib, she)
        region[dom.cells] = reg
    return fibre, sheet, normal, region


# ------------------------------------------------------------------------------------- pipeline


def add_coordinates_and_fibres(mesh: TetMesh, labels: LabelImage | None, landmarks: Mapping, *,
                               angles: LdrbAngles = LdrbAngles(), rules: AtrialRules = AtrialRules(),
                               atria: bool | None = None, keep_laplace: bool = False,
                               report: dict | None = None) -> TetMesh:
    """The mesh with UVC/UAC point fields and ``fibre``, ``sheet``, ``sheet_normal`` (unit, per
    cell) and ``fibre_region`` cell fields.

    ``atria``: None computes atrial coordinates and fibres when the mesh has atrial walls, True
    requires them, False skips them. Cells outside the myocardium (valve planes) get the identity
    frame and region -1. ``keep_laplace`` also stores the auxiliary Laplace fields. Timings and
    solver statistics are written into ``report`` when given.
    """
    start = time.perf_counter()
    present = {lab.name(t) for t in np.unique(mesh.tags)}
    do_atria = atria if atria is not None else bool({"la_wall", "ra_wall"} & present)
    atrial = None
    if do_atria:  # check the atrial surfaces first: fail before the (longer) ventricular solves
        sides = tuple(s for s, name in (("la", "la_wall"), ("ra", "ra_wall")) if name in present)
        if not sides:
            raise AnatomyError("atria=True but the mesh has no la_wall or ra_wall cells")
        try:
            atrial = atrial_boundaries(mesh, labels, sides)
        except AnatomyError as exc:
            if atria:
                raise
            raise AnatomyError(f"{exc}. To build the ventricles only, pass atria=False") from None
    vc = ventricular_coordinates(mesh, labels, landmarks)
    fibre, sheet, normal, region = ldrb_fibres(mesh, vc, angles)
    point = {k: v for k, v in vc.items() if keep_laplace or k.startswith("uvc_")}
    timings = {"ventricles_s": round(time.perf_counter() - start, 3)}
    ac = None
    if atrial is not None:
        t0 = time.perf_counter()
        ac = atrial_coordinates(mesh, labels, landmarks, atria=tuple(atrial), boundaries=atrial)
        af, as_, an, ar = atrial_fibres(mesh, ac, landmarks, rules)
        cells = ar >= 0
        fibre[cells], sheet[cells], normal[cells], region[cells] = af[cells], as_[cells], an[cells], ar[cells]
        point.update({k: v for k, v in ac.items() if keep_laplace or k.startswith("uac_")})
        timings["atria_s"] = round(time.perf_counter() - t0, 3)
    empty = region < 0
    fibre[empty], sheet[empty], normal[empty] = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    if report is not None:
        report.update({"ventricles": vc.report["ventricles"], "atria": ac.report if ac else None,
                       "timings_s": {**timings, "total_s": round(time.perf_counter() - start, 3)},
                       "regions": {name: int((region == code).sum()) for name, code in FIBRE_REGIONS.items()}})
    return mesh.with_fields(point, {"fibre": fibre, "sheet": sheet, "sheet_normal": normal,
                                    "fibre_region": region.astype(np.int32)})



