"""Venous inflows of the atria found by rule on a label map that has none: four pulmonary-vein
ostia on the LA, the superior and inferior caval ostia on the RA, and the LA appendage.

Expert and network segmentations (MM-WHS, TotalSegmentator heart chambers) end the atrial blood
pools at or just beyond the venous ostia, without vein labels. The atrial coordinates (Roney et al.
2019, Med Image Anal 55:65), atrial fibres and the sinus-node landmark need those openings, so we
place them from the atrium's own shape and standard anatomy (Ho et al. 2012, Europace 14:i3; the
four-vein layout used to label the ostia automatically in AugmentA, Azzolin et al. 2023, Europace
25:211): the pulmonary veins open on the posterior LA wall at its four left/right x superior/
inferior corners, the caval veins at the superior and inferior ends of the posterior RA. Each ostium
is the *support point* of the atrium's free wall in its direction — the blood-pool surface voxels
farthest along that direction from the atrium's centre, among those more than ``FREE_WALL_MM``
from any other structure (veins open where the atrium faces free space, not the septum, valves or
great arteries). "Posterior" for the LA is the mean of the body's posterior axis and the direction
from the mitral valve to the LA centre (the veins sit opposite the mitral valve).

At each ostium a vein stump (a cylinder of the vein's typical ostial radius, along the outward
surface normal) is painted into the unclaimed voxels beyond the blood pool, so the walls stage
leaves an opening there and the vein-cutting stage trims it like a segmented vein. Radii: PV ostia
16-19 mm in diameter (Kato et al. 2003, Circulation 107:2004), SVC ~18 mm, IVC ~22 mm (adult CT).
Everything here is extrapolated, not observed; the report says so per vein.

The same rule places a **pulmonary-artery stump** on the RV when a segmentation missed the artery
(networks often do: it is thin-walled and leaves the field of view at once), so that the pulmonary
valve, which the ventricular coordinates and landmarks need, can still be placed at the RV outflow:
the outflow tract rises from the RV body superiorly, a little anteriorly and to the left (the
weights below put the valve 3-5 mm from the phantoms' and 5-12 mm from three real expert maps'
pulmonary valves, against 7-23 mm for a direction of equal anterior, left and superior), and the main
pulmonary artery is 22-29 mm wide in adults (Truong et al. 2012, Circ Cardiovasc Imaging 5:147).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cardiotwin import labels as lab
from cardiotwin.anatomy.voxels import label_windows, window
from cardiotwin.geometry import unit_vectors

FREE_WALL_MM = 3.0
NORMAL_RADIUS_MM = 8.0
LEFT, POSTERIOR, SUPERIOR = np.eye(3)  # LPS body axes


@dataclass(frozen=True)
class VeinRule:
    """One venous ostium: ``vein`` label, the atrium it opens on, its direction in the atrial frame
    (posterior, left, superior weights), stump radius and length (mm)."""

    name: str
    vein: str
    atrium: str
    weights: tuple[float, float, float]
    radius_mm: float
    length_mm: float


VEIN_RULES = (
    VeinRule("left_superior_pv", "pulmonary_veins", "la_blood", (1.0, 1.0, 0.6), 8.0, 15.0),
    VeinRule("left_inferior_pv", "pulmonary_veins", "la_blood", (1.0, 1.0, -0.6), 7.0, 15.0),
    VeinRule("right_superior_pv", "pulmonary_veins", "la_blood", (1.0, -1.0, 0.6), 8.0, 15.0),
    VeinRule("right_inferior_pv", "pulmonary_veins", "la_blood", (1.0, -1.0, -0.6), 7.0, 15.0),
    VeinRule("superior_vena_cava", "superior_vena_cava", "ra_blood", (0.3, 0.0, 1.0), 9.0, 20.0),
    VeinRule("inferior_vena_cava", "inferior_vena_cava", "ra_blood", (0.3, 0.0, -1.0), 11.0, 20.0),
)
#: the pulmonary-artery stump at the RV outflow, for maps that lack the artery
OUTFLOW_RULES = (VeinRule("pulmonary_artery", "pulmonary_artery", "rv_blood", (-0.3, 0.3, 1.0), 12.0, 25.0),)
#: the LA appendage: anterior, left and superior of the LA centre (a landmark only, no label)
APPENDAGE_WEIGHTS = (-1.0, 1.2, 0.5)


def _frame(posterior: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (posterior, left, superior) with ``posterior`` exact and the others closest to
    the body's left and superior axes."""
    post = unit_vectors(posterior)
    left = unit_vectors(LEFT - LEFT @ post * post)
    sup = np.cross(post, left)
    return post, left, sup if sup @ SUPERIOR >= 0 else -sup


def place_veins(labels: np.ndarray, spacing, direction: np.ndarray, fillable=("background", "torso"),
                rules: tuple[VeinRule, ...] = VEIN_RULES) -> dict:
    """Paint the missing stumps of ``rules`` (default: the veins) into ``labels`` in place
    (index-aligned mm frame); :data:`OUTFLOW_RULES` paints a missing pulmonary artery.

    ``direction`` is the image's direction matrix (columns: index axes in LPS), so body axes are
    known in the array. Returns per ostium its centre and axis (index-aligned mm), radius, painted
    voxels and how it was found, plus, with the vein rules, the LA appendage point; vessels already
    labelled are kept.
    """
    sp = np.asarray(spacing, dtype=float)
    to_index = np.asarray(direction, dtype=float).T  # LPS direction -> index-aligned direction
    windows = label_windows(labels)
    fill_values = lab.labels_of(fillable)
    report: dict = {}
    frames: dict[str, tuple] = {}
    veins = rules is VEIN_RULES
    for atrium in dict.fromkeys([r.atrium for r in rules] + (["la_blood"] if veins else [])):
        value = lab.label(atrium)
        if value not in windows:
            continue
        reach = max(r.length_mm for r in rules) + NORMAL_RADIUS_MM
        win = window(windows[value], labels.shape, reach / sp + 2)
        region = labels[win]
        blood = region == value
        offset = sp * [w.start for w in win]
        centre = np.argwhere(blood).mean(axis=0) * sp + offset
        if atrium == "la_blood" and lab.label("mitral_valve") in windows:
            mwin = windows[lab.label("mitral_valve")]
            mitral = (np.argwhere(labels[mwin] == lab.label("mitral_valve")).mean(axis=0) + [w.start for w in mwin]) * sp
            posterior = unit_vectors(centre - mitral) + to_index @ POSTERIOR
        else:
            posterior = to_index @ POSTERIOR
        body = _frame(to_index.T @ posterior)  # in LPS, then to the array frame
        axes = tuple(to_index @ a for a in body)
        surface = blood & ~ndimage.binary_erosion(blood)
        others = ~blood & ~np.isin(region, fill_values)
        free = surface & (ndimage.distance_transform_edt(~others, sampling=sp) > FREE_WALL_MM)
        frames[atrium] = (region, blood, offset, centre, axes,
                          np.argwhere(free) * sp + offset, np.argwhere(surface) * sp + offset)
    present = set(np.unique(labels).tolist())
    placed: list[tuple[str, np.ndarray, float]] = []  # (atrium, ostium, radius) of the stumps painted
    for rule in rules:
        v = lab.label(rule.vein)
        if v in present:
            report[rule.name] = {"status": "present in the input"}
            continue
        if rule.atrium not in frames:
            report[rule.name] = {"status": f"skipped: {rule.atrium} absent"}
            continue
        region, blood, offset, centre, axes, free_pts, _ = frames[rule.atrium]
        if not len(free_pts):
            report[rule.name] = {"status": f"not found: {rule.atrium} has no free wall"}
            continue
        d = unit_vectors(sum(w * a for w, a in zip(rule.weights, axes)))
        apart = np.ones(len(free_pts), dtype=bool)
        for atrium, other, r in placed:  # ostia on one atrium do not overlap
            if atrium == rule.atrium:
                apart &= np.linalg.norm(free_pts - other, axis=1) >= r + rule.radius_mm
        ostium = _support_point(free_pts[apart] if apart.any() else free_pts, centre, d)
        placed.append((rule.atrium, ostium, rule.radius_mm))
        near = np.argwhere(blood) * sp + offset
        near = near[np.linalg.norm(near - ostium, axis=1) <= NORMAL_RADIUS_MM]
        axis = unit_vectors(ostium - near.mean(axis=0))
        painted = _paint_stump(region, blood, offset, sp, ostium, axis, rule, v, fill_values)
        expected = np.pi * rule.radius_mm**2 * rule.length_mm / sp.prod()
        status = "placed by rule" if painted >= 0.3 * expected else "placed by rule (stump blocked by other structures)"
        report[rule.name] = {"status": status, "method": f"support point of the free wall of {rule.atrium}",
                             "ostium_mm": ostium.round(3).tolist(), "axis": axis.round(4).tolist(),
                             "radius_mm": rule.radius_mm, "voxels": int(painted), "observed": False}
    if not veins:
        return report
    if "la_blood" in frames:
        _, _, _, centre, axes, _, surface_pts = frames["la_blood"]
        d = unit_vectors(sum(w * a for w, a in zip(APPENDAGE_WEIGHTS, axes)))
        report["la_appendage"] = {"status": "placed by rule", "method": "support point of the LA surface",
                                  "point_mm": _support_point(surface_pts, centre, d).round(3).tolist(),
                                  "observed": False}
    report["coronary_sinus"] = {"status": "not detected: no rule for the coronary sinus yet"}
    return report


def _support_point(points: np.ndarray, centre: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Mean of the points within 1.5 mm of the farthest extent along ``d`` from ``centre``."""
    s = (points - centre) @ d
    return points[s >= s.max() - 1.5].mean(axis=0)


def _paint_stump(region: np.ndarray, blood: np.ndarray, offset, sp, ostium, axis, rule: VeinRule,
                 value: int, fill_values) -> int:
    """Paint a cylinder from 1 mm inside the ostium outward into fillable voxels; keep the part
    connected to the blood pool. Returns the voxels painted."""
    lo = np.maximum(((ostium - offset) - rule.length_mm - rule.radius_mm) / sp, 0).astype(int)
    hi = np.minimum(((ostium - offset) + rule.length_mm + rule.radius_mm) / sp + 2, region.shape).astype(int)
    sub = tuple(slice(a, b) for a, b in zip(lo, hi))
    grid = np.stack(np.meshgrid(*[offset[k] + sp[k] * np.arange(lo[k], hi[k]) - ostium[k] for k in range(3)],
                                indexing="ij"), axis=-1)
    t = grid @ axis
    radial = np.linalg.norm(grid - t[..., None] * axis, axis=-1)
    cyl = (t >= -1.0) & (t <= rule.length_mm) & (radial <= rule.radius_mm) & np.isin(region[sub], fill_values)
    comp, n = ndimage.label(cyl)
    touching = np.unique(comp[ndimage.binary_dilation(blood[sub]) & cyl])
    keep = np.isin(comp, touching[touching > 0])
    region[sub][keep] = value
    return int(keep.sum())
