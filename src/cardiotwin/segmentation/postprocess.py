"""Clean-up and quality control of a network's label map.

* the heart found first: the face-connected cluster of cardiac labels holding the most distinct
  chambers and arteries (at least ``MIN_STRUCTURE_ML`` each), the largest on a tie. Everything outside
  it goes: on a whole-trunk image an undertrained network calls heart-like blobs elsewhere (a
  kidney with its cortex, the stomach) ventricles, and such a blob can be larger than the true LV;
* one connected piece per chamber, myocardium and artery (the largest; stray islands are the
  commonest network error), holes inside a structure filled;
* pulmonary veins kept only where they reach the LA (up to four or more separate pieces), caval
  veins only where they reach the RA;
* the junctions a heart must have checked (LV-LA at the mitral valve, LV-aorta, RV-pulmonary
  artery, RA-RV, LV blood inside its myocardium) and volumes outside adult ranges flagged. Ranges
  (ml, end-diastole to end-systole, both sexes, wide on purpose): Kawel-Boehm et al., "Reference
  ranges for cardiovascular magnetic resonance", J Cardiovasc Magn Reson 22:87 (2020).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiotwin import labels as lab
from cardiotwin.anatomy.voxels import components
from cardiotwin.types import LabelImage

SINGLE_PIECE = ("lv_blood", "rv_blood", "la_blood", "ra_blood", "lv_myocardium", "aorta", "pulmonary_artery")
ATTACHED = {"pulmonary_veins": "la_blood", "superior_vena_cava": "ra_blood", "inferior_vena_cava": "ra_blood"}
MUST_TOUCH = (("lv_blood", "la_blood", "mitral valve"), ("lv_blood", "aorta", "aortic valve"),
              ("rv_blood", "pulmonary_artery", "pulmonary valve"), ("ra_blood", "rv_blood", "tricuspid valve"),
              ("lv_blood", "lv_myocardium", "LV wall"))
ADULT_ML = {"lv_blood": (20.0, 350.0), "rv_blood": (20.0, 400.0), "la_blood": (15.0, 250.0),
            "ra_blood": (15.0, 300.0), "lv_myocardium": (50.0, 350.0)}
TOUCH_MM = 3.0  # structures this close count as touching (a valve plane or a thin wall between them)
MIN_PIECE_ML = 0.1  # smaller attached vein pieces are dropped
MIN_STRUCTURE_ML = 1.0  # a structure counts towards a heart cluster's score from this volume


def heart_cluster(arr: np.ndarray, spacing, voxel_ml: float) -> np.ndarray:
    """Mask of the cluster of cardiac labels that is the heart (see the module docstring)."""
    cardiac = np.isin(arr, lab.labels_of(SINGLE_PIECE + tuple(ATTACHED)))
    if not cardiac.any():
        return cardiac
    comp, n = ndimage.label(cardiac)
    comp = np.where(cardiac, comp, 0)
    present = np.zeros(n + 1, dtype=np.int64)
    for name in SINGLE_PIECE:
        present += np.bincount(comp[arr == lab.label(name)], minlength=n + 1) * voxel_ml >= MIN_STRUCTURE_ML
    size = np.bincount(comp.ravel(), minlength=n + 1)
    present[0], size[0] = -1, -1
    best = int(np.lexsort((size, present))[-1])  # most structures, then the largest
    return comp == best


def _near(mask: np.ndarray, spacing, mm: float) -> np.ndarray:
    """Voxels within ``mm`` of ``mask``."""
    return ndimage.distance_transform_edt(~mask, sampling=spacing) <= mm


def clean(labels: LabelImage) -> tuple[LabelImage, dict]:
    """The cleaned label map and a QC report (removed voxels, checks, warnings)."""
    arr = labels.array.copy()
    ml = labels.voxel_volume_mm3 / 1000.0
    removed: dict[str, float] = {}
    cardiac = np.isin(arr, lab.labels_of(SINGLE_PIECE + tuple(ATTACHED)))
    outside = cardiac & ~heart_cluster(arr, labels.spacing, ml)
    removed["outside_the_heart"] = round(float(outside.sum() * ml), 2)
    arr[outside] = 0
    for name in SINGLE_PIECE:
        value = lab.label(name)
        mask = arr == value
        if not mask.any():
            continue
        keep = components(mask)[0] == 1  # the largest piece
        filled = ndimage.binary_fill_holes(keep) & (arr == 0)
        removed[name] = round(float((mask & ~keep).sum() * ml), 2)
        arr[mask & ~keep] = 0
        arr[filled] = value
    for name, host in ATTACHED.items():
        mask = arr == lab.label(name)
        if not mask.any():
            continue
        comp, n = ndimage.label(mask)
        near_host = _near(arr == lab.label(host), labels.spacing, TOUCH_MM)
        attached = np.unique(comp[near_host & mask])
        sizes = np.bincount(comp.ravel(), minlength=n + 1) * ml
        keep = np.isin(comp, [c for c in attached if c and sizes[c] >= MIN_PIECE_ML])
        removed[name] = round(float((mask & ~keep).sum() * ml), 2)
        arr[mask & ~keep] = 0
    out = labels.with_array(arr)
    return out, quality_report(out, removed)


def quality_report(labels: LabelImage, removed: dict | None = None) -> dict:
    """Volumes, pieces, junction checks and warnings of a heart label map."""
    arr, ml = labels.array, labels.voxel_volume_mm3 / 1000.0
    volumes = {k: round(v, 2) for k, v in labels.volumes_ml().items()}
    warnings = []
    for name in SINGLE_PIECE:
        if name not in volumes:
            warnings.append(f"{name} not found (outside the field of view, or missed)")
    for name, (lo, hi) in ADULT_ML.items():
        v = volumes.get(name)
        if v is not None and not lo <= v <= hi:
            warnings.append(f"{name} volume {v:.0f} ml outside the adult range {lo:.0f}-{hi:.0f} ml "
                            "(a cropped view, or a segmentation error)")
    junctions = {}
    for a, b, what in MUST_TOUCH:
        if a in volumes and b in volumes:
            ok = bool((_near(arr == lab.label(a), labels.spacing, TOUCH_MM) & (arr == lab.label(b))).any())
            junctions[what] = ok
            if not ok:
                warnings.append(f"{a} and {b} do not meet ({what}): check the segmentation there")
    pieces = {}
    for name in ATTACHED:
        if name in volumes:
            pieces[name] = int(ndimage.label(arr == lab.label(name))[1])
    return {"volumes_ml": volumes, "removed_ml": removed or {}, "junctions": junctions, "vein_pieces": pieces,
            "warnings": warnings, "voxel_ml": ml}
