"""An extended torso around a real heart whose label map has none (cardiac CT/MR fields of view
end a few centimetres around the heart), so that lead fields and a 12-lead ECG can be computed.

The torso is the phantom's parametric torso (:mod:`cardiotwin.phantom.torso`: body outline, fat,
chest wall, ribs, sternum, spine, diaphragm, liver, both lungs) at its population-mean shape (the
mean of the phantom's drawn torso parameters), placed around the heart the way the phantom places
its own heart: the centroid of the four valve centres sits at the phantom population's mean offset
from the torso axis (left-right, anterior-posterior), and the torso reaches 200 mm below the
lowest point of its chambers. Its axes are the image's patient axes (LPS): CT and MR volumes are acquired
with the patient aligned to the scanner, so the heart keeps its own, measured orientation inside.
The heart and its vessels are copied in as they are; the torso is painted only into the voxels
they leave free, and the lungs stay 5 mm clear of the heart.

With the CT the labels come from, the torso's cross-section (axis, semi-axes, superellipse
exponent) is fitted to the body outline and lungs the CT shows (:mod:`cardiotwin.anatomy.ct_body`,
:mod:`cardiotwin.anatomy.torso_fit`), and inside the CT's field of view its own outside air, body and
lungs replace the model's; beyond it, the fitted model extends the torso. Without an image, the
torso is the population mean, not scaled to the patient. The report says what was observed and
what extrapolated. Not yet done: fitting an MR body outline; the model's spine, ribs and liver are
never taken from the image.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from cardiotwin import labels as lab
from cardiotwin.anatomy.mesh import HEART_AND_SURROUNDINGS
from cardiotwin.anatomy.ct_body import BODY, LUNG, OUTSIDE, observe_body
from cardiotwin.anatomy.torso_fit import fit_outline
from cardiotwin.anatomy.voxels import components, label_windows, window
from cardiotwin.errors import AnatomyError
from cardiotwin.io.image import from_sitk, to_sitk
from cardiotwin.phantom.generate import MARGIN
from cardiotwin.phantom.heart import HeartModel
from cardiotwin.phantom.params import PhantomParams
from cardiotwin.phantom.placement import draw_patient
from cardiotwin.phantom.shapes import Grid
from cardiotwin.phantom.torso import LUNG_CLEARANCE_MM, LUNG_SPLIT_MM, paint_torso, spine_center
from cardiotwin.types import Image, LabelImage

POPULATION_SEEDS = 64
BELOW_HEART_MM = 200.0  # the phantom's abdomen reaches the iliac crests, where the LL electrode sits
NOT_SEEN = 255  # class of torso voxels outside the CT's field of view
VALVES = ("mitral_valve_center", "tricuspid_valve_center", "aortic_valve_center", "pulmonary_valve_center")


@lru_cache(maxsize=1)
def population_torso() -> tuple[PhantomParams, np.ndarray]:
    """The phantom's mean torso (as :class:`PhantomParams`) and the mean (x, y) of its valve-centre
    centroid relative to the torso axis (mm), over ``POPULATION_SEEDS`` drawn patients."""
    draws = [draw_patient(seed) for seed in range(POPULATION_SEEDS)]
    offsets = []
    for p in draws:
        heart = HeartModel(p, np.array([p.heart_offset[0], p.heart_offset[1], 0.0]), spine_center_xy=spine_center(p))
        offsets.append(np.mean([heart.landmarks[v] for v in VALVES], axis=0)[:2])
    mean = {f: float(np.mean([getattr(p, f) for p in draws])) for f in ("torso_semi_lr", "torso_semi_ap",
                                                                         "fat_thickness", "torso_height")}
    return dataclasses.replace(draws[0], seed=-1, **mean), np.mean(offsets, axis=0)


def valve_centroid(labels: LabelImage) -> np.ndarray:
    """Centroid (LPS mm) of the centres of the valve planes of a walled label map."""
    windows = label_windows(labels.array)
    centres = []
    for value in lab.labels_of(lab.VALVES):
        if value in windows:
            win = windows[value]
            idx = np.argwhere(labels.array[win] == value).mean(axis=0) + [w.start for w in win]
            centres.append(labels.index_to_physical(idx))
    if not centres:
        raise AnatomyError("the extended torso is placed from the valve planes, and the label map has none; "
                           "run the walls stage first (its chambers must meet their outflows)")
    return np.mean(centres, axis=0)


def extend_torso(heart_labels: LabelImage, spacing_mm: float = 1.0,
                 ct: Image | None = None) -> tuple[LabelImage, dict]:
    """A torso label map (axis-aligned LPS grid of ``spacing_mm``) around the heart of
    ``heart_labels`` (a walled label map without torso), and a report of what was observed and what
    extrapolated. With ``ct`` (a CT in HU in the labels' physical space), the torso's cross-section
    is fitted to the body and lungs it shows (:mod:`cardiotwin.anatomy.torso_fit`), and inside its
    field of view the CT's own outside air, body and lungs replace the model's."""
    heart = np.isin(heart_labels.array, lab.labels_of(HEART_AND_SURROUNDINGS))
    if not heart.any():
        raise AnatomyError("no heart structure in the label map: nothing to build a torso around")
    p, offset = population_torso()
    anchor = valve_centroid(heart_labels)
    axis_xy = anchor[:2] - offset
    chambers = lab.labels_of(lab.HEART)
    box = window(np.isin(heart_labels.array, chambers), heart.shape, 0)
    corners = np.array(np.meshgrid(*[[w.start, w.stop - 1] for w in box],
                                   indexing="ij")).reshape(3, -1).T
    z_heart_bottom = float(heart_labels.index_to_physical(corners)[:, 2].min())
    z_bottom = z_heart_bottom - BELOW_HEART_MM
    seen = observe_body(ct) if ct is not None else None
    fit = None
    if seen is not None:
        z_heart = heart_labels.index_to_physical(corners)[:, 2]
        fit = fit_outline(p, axis_xy, z_bottom + p.torso_height, (z_heart.min(), z_heart.max()),
                          seen.skin_mm, seen.body_cut_mm, seen.lung_surface_mm)
        axis_xy = fit.axis_xy
        p = dataclasses.replace(p, torso_semi_lr=fit.semi_axes[0], torso_semi_ap=fit.semi_axes[1],
                                torso_exponent=fit.exponent)
    A, B = p.torso_semi_lr, p.torso_semi_ap
    s = float(spacing_mm)
    axes = [np.arange(lo + s / 2, hi, s) for lo, hi in
            ((-A - MARGIN, A + MARGIN), (-B - MARGIN, B + MARGIN), (z_bottom - MARGIN, z_bottom + p.torso_height + MARGIN))]
    grid = Grid(*axes)
    origin = (grid.x[0] + axis_xy[0], grid.y[0] + axis_xy[1], grid.z[0])
    reference = sitk.Image([int(n) for n in grid.shape], sitk.sitkInt16)
    reference.SetSpacing((s, s, s))
    reference.SetOrigin(origin)
    resampled = sitk.Resample(to_sitk(heart_labels), reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    labels = from_sitk(resampled).array.astype(np.int16)
    inside = np.isin(labels, lab.labels_of(HEART_AND_SURROUNDINGS))
    win = window(inside, labels.shape, 8)
    tissue = np.zeros(labels.shape, dtype=np.uint8)
    paint_torso(labels, tissue, grid, p, z_bottom, z_heart_bottom - 3.0, win, inside[win])
    observed = None
    if seen is not None:
        classes = from_sitk(sitk.Resample(to_sitk(seen.classes), reference, sitk.Transform(),
                                          sitk.sitkNearestNeighbor, NOT_SEEN)).array
        near_heart = np.zeros(labels.shape, dtype=bool)
        near_heart[win] = ndimage.distance_transform_edt(~inside[win], sampling=s) <= LUNG_CLEARANCE_MM
        _overlay_observation(labels, classes, inside, near_heart, grid.x)
        observed = _observation_report(labels, classes, seen, ct, LabelImage(labels, (s, s, s), origin))
    body = labels > 0
    kept = (float(np.isin(labels, chambers).sum()) * s**3
            / (float(np.isin(heart_labels.array, chambers).sum()) * heart_labels.voxel_volume_mm3))
    report = {
        "observed": "heart, blood pools and vessel stumps of the label map"
                    + ("; body outline and lungs inside the CT's field of view" if seen is not None else ""),
        "extrapolated": ("body outline, fat, chest wall, spine, lungs, liver: the phantom population's mean "
                         f"torso ({POPULATION_SEEDS} drawn patients), not scaled to this patient") if seen is None else
                        ("outside the CT's field of view: the phantom torso (fat, chest wall, spine, lungs, liver) "
                         "with its cross-section fitted to the CT's skin, body and lungs; inside it: the spine"),
        "torso_semi_axes_mm": [round(A, 1), round(B, 1)], "torso_height_mm": round(p.torso_height, 1),
        "torso_axis_xy_mm": np.asarray(axis_xy).round(2).tolist(), "valve_centroid_mm": anchor.round(2).tolist(),
        "z_range_mm": [round(z_bottom, 1), round(z_bottom + p.torso_height, 1)],
        "heart_volume_kept_fraction": round(kept, 4),
        "heart_inside_body": bool(body[inside].all()),
        "lungs_ml": {n: round(float((labels == lab.label(n)).sum()) * s**3 / 1000.0, 1) for n in lab.LUNGS},
    }
    if fit is not None:
        report["fit"] = fit.report()
        report["image"] = observed
    return LabelImage(labels, (s, s, s), origin), report


def _overlay_observation(labels: np.ndarray, classes: np.ndarray, heart: np.ndarray, near_heart: np.ndarray,
                         x: np.ndarray) -> None:
    """Inside the CT's view, its outside air, body and lungs replace the model's (the heart and its
    vessels stay the label map's, the model's spine stays where the CT shows body, lungs keep
    ``LUNG_CLEARANCE_MM`` off the heart); then one body without holes, one piece per lung."""
    free = (classes != NOT_SEEN) & ~heart
    spine = labels == lab.label("spine")
    labels[free & (classes == OUTSIDE)] = 0
    labels[free & (classes == BODY) & ~spine] = lab.label("torso")
    lung = free & (classes == LUNG)
    labels[lung & near_heart] = lab.label("torso")
    lung &= ~near_heart
    left = (x > LUNG_SPLIT_MM)[:, None, None]
    labels[lung & left] = lab.label("lung_left")
    labels[lung & ~left] = lab.label("lung_right")
    comp, _ = components(labels > 0)
    labels[comp > 1] = 0
    labels[ndimage.binary_fill_holes(labels > 0) & (labels == 0)] = lab.label("torso")
    for name in lab.LUNGS:
        comp, _ = components(labels == lab.label(name))
        labels[comp > 1] = lab.label("torso")


def _observation_report(labels: np.ndarray, classes: np.ndarray, seen, ct: Image, torso: LabelImage) -> dict:
    """What the CT showed and how the torso keeps it: fractions of its body and lungs labelled so,
    and how far the torso's body reaches past its field of view on each side (mm, LPS)."""
    seen_body, seen_lung = (classes != NOT_SEEN) & (classes != OUTSIDE), classes == LUNG
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in ct.shape], indexing="ij")).reshape(3, -1).T
    view = ct.index_to_physical(corners)
    body_pts = torso.index_to_physical(np.argwhere((labels > 0)[::2, ::2, ::2]).astype(float) * 2)
    past = {}
    for axis, (neg, pos) in enumerate((("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))):
        past[neg] = round(float(view[:, axis].min() - body_pts[:, axis].min()), 1)
        past[pos] = round(float(body_pts[:, axis].max() - view[:, axis].max()), 1)
    lungs = np.isin(labels, lab.labels_of(lab.LUNGS))
    return {**seen.volumes_ml(), "skin_points": int(len(seen.skin_mm)),
            "field_of_view_mm": [view.min(axis=0).round(1).tolist(), view.max(axis=0).round(1).tolist()],
            "body_kept_fraction": round(float((labels[seen_body] > 0).mean()), 4),
            "lungs_kept_fraction": round(float(lungs[seen_lung].mean()), 4) if seen_lung.any() else None,
            "body_past_view_mm": past}
