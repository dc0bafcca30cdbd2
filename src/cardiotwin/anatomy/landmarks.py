"""Anatomical landmarks of a four-chamber label map, in physical mm.

Landmarks anchor the universal coordinates, the conduction system and the ECG electrodes:
* valve centres and normals: centroid and least-spread (PCA) direction of each valve plane,
  normals pointing from the ventricle to the atrium/artery;
* the LV long axis (principal axis of the LV cavity, oriented apex -> base) and the LV apex
  (endocardial: deepest cavity voxel along the axis; epicardial: deepest myocardium near the axis),
  the RV apex;
* septal and free-wall reference points at mid-ventricular level;
* sinus-node candidates on the RA wall at the superior caval junction, lateral side (the node lies in
  the terminal crest there; Sanchez-Quintana et al. 2005, Heart 91:189) and an AV-node candidate at
  the apex of Koch's triangle: the RA wall point nearest the central fibrous body, where the mitral,
  tricuspid and aortic annuli meet (Anderson et al. 2009, Clin Anat 22:99).
"""

from __future__ import annotations


import numpy as np
from scipy import ndimage

from cardiotwin import labels as lab
from cardiotwin.anatomy.voxels import label_windows, window
from cardiotwin.errors import AnatomyError
from cardiotwin.types import LabelImage

VALVE_SIDES = {  # valve -> (ventricle, atrium/artery)
    "mitral_valve": ("lv_blood", "la_blood"),
    "tricuspid_valve": ("rv_blood", "ra_blood"),
    "aortic_valve": ("lv_blood", "aorta"),
    "pulmonary_valve": ("rv_blood", "pulmonary_artery"),
}


class _Points:
    """Physical coordinates of label voxels, cached per label."""

    def __init__(self, labels: LabelImage):
        self.labels = labels
        self.windows = label_windows(labels.array)
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            value = lab.label(name)
            if value not in self.windows:
                raise AnatomyError(f"landmarks need {name}, which the label map lacks (present: {self.labels.present()})")
            win = self.windows[value]
            idx = np.argwhere(self.labels.array[win] == value) + [w.start for w in win]
            self._cache[name] = self.labels.index_to_physical(idx)
        return self._cache[name]

    def near(self, name: str, other: str, max_mm: float) -> np.ndarray:
        """Points of ``name`` within ``max_mm`` of structure ``other``."""
        value, ref = lab.label(name), lab.label(other)
        arr, sp = self.labels.array, self.labels.spacing
        if ref not in self.windows or value not in self.windows:
            return np.zeros((0, 3))
        win = window(self.windows[value], arr.shape, max_mm / np.asarray(sp) + 1)
        region = arr[win]
        dist = ndimage.distance_transform_edt(region != ref, sampling=sp)
        idx = np.argwhere((region == value) & (dist <= max_mm)) + [w.start for w in win]
        return self.labels.index_to_physical(idx)


def _central(points: np.ndarray) -> np.ndarray:
    """The point of a (curved) set closest to its centroid: a representative point on it."""
    return points[np.argmin(np.linalg.norm(points - points.mean(axis=0), axis=1))]


def _plane(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = points.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((points - centre).T))
    return centre, vecs[:, 0]


def find_landmarks(labels: LabelImage) -> dict[str, list]:
    """All landmarks of a four-chamber label map (blood pools, walls and valve planes present)."""
    pts = _Points(labels)
    out: dict[str, np.ndarray] = {}
    for valve, (ventricle, other) in VALVE_SIDES.items():
        centre, normal = _plane(pts(valve))
        if np.dot(pts(other).mean(0) - pts(ventricle).mean(0), normal) < 0:
            normal = -normal
        out[f"{valve}_center"], out[f"{valve}_normal"] = centre, normal

    lv = pts("lv_blood")
    lv_centre = lv.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((lv - lv_centre).T))
    axis = vecs[:, 2]
    if np.dot(out["mitral_valve_center"] - lv_centre, axis) < 0:
        axis = -axis
    proj = (lv - lv_centre) @ axis
    apex_endo = lv[proj <= proj.min() + 2.0].mean(axis=0)
    myo = pts("lv_myocardium")
    rel = myo - lv_centre
    along = rel @ axis
    radial = np.linalg.norm(rel - np.outer(along, axis), axis=1)
    near_axis = radial < 15.0
    apex_epi = myo[near_axis][along[near_axis] <= along[near_axis].min() + 2.0].mean(axis=0)
    base = out["mitral_valve_center"]
    rv = pts("rv_blood")
    rv_proj = (rv - lv_centre) @ axis
    out.update(lv_apex_endocardium=apex_endo, lv_apex_epicardium=apex_epi, lv_long_axis=axis,
               lv_base_center=base, rv_apex=rv[rv_proj <= rv_proj.min() + 2.0].mean(axis=0))

    # mid-ventricular references: halfway between the epicardial apex and the mitral plane
    height = float(np.dot(base - apex_epi, axis))
    mid = apex_epi + 0.5 * height * axis

    def mid_slab(p: np.ndarray) -> np.ndarray:
        return p[np.abs((p - mid) @ axis) <= 0.1 * height]

    septum = mid_slab(pts.near("lv_myocardium", "rv_blood", 1.5 * max(labels.spacing)))
    if len(septum) == 0:
        raise AnatomyError("no septum found: the LV myocardium does not touch the RV blood pool at mid-ventricle")
    septal_point = _central(septum)
    sept_dir = septal_point - mid
    sept_dir -= np.dot(sept_dir, axis) * axis
    sept_dir /= np.linalg.norm(sept_dir)
    ring = mid_slab(myo)
    rel = ring - mid
    rel -= np.outer(rel @ axis, axis)
    cos = (rel @ sept_dir) / np.maximum(np.linalg.norm(rel, axis=1), 1e-9)
    out.update(septal_point=septal_point, septal_direction=sept_dir,
               lv_free_wall_point=_central(ring[cos < -0.85]),
               rv_free_wall_point=_central(mid_slab(pts("rv_myocardium"))))

    # conduction-system candidates
    ra_centre, la_centre = pts("ra_blood").mean(0), pts("la_blood").mean(0)
    lateral = (ra_centre - la_centre) / np.linalg.norm(ra_centre - la_centre)
    junction = pts.near("ra_wall", "superior_vena_cava", 2.0 * max(labels.spacing))
    if len(junction) == 0:  # no SVC segmented: the superior RA wall, lateral side
        ra_wall = pts("ra_wall")
        junction = ra_wall[(ra_wall - ra_centre) @ out["tricuspid_valve_normal"] > 0]
    score = (junction - ra_centre) @ lateral
    order = np.argsort(-score)
    out["sinus_node"] = junction[order[: max(1, len(order) // 20)]].mean(axis=0)
    out["sinus_node_candidates"] = np.array([out["sinus_node"], junction.mean(axis=0)])
    # the AV node sits at the apex of Koch's triangle, against the central fibrous body where the
    # mitral, tricuspid and aortic annuli meet: the RA wall point closest to their centroid
    body = (out["mitral_valve_center"] + out["tricuspid_valve_center"] + out["aortic_valve_center"]) / 3.0
    ra_wall = pts("ra_wall")
    d = np.linalg.norm(ra_wall - body, axis=1)
    out["av_node"] = ra_wall[d <= d.min() + 1.5].mean(axis=0)
    return {k: np.round(np.asarray(v, dtype=float), 3).tolist() for k, v in out.items()}


