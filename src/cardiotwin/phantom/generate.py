"""Generate a synthetic patient: intensity image + ground-truth label map + true landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.errors import InputError
from cardiotwin.phantom.heart import HeartModel, heart_frame
from cardiotwin.phantom.intensity import synthesise
from cardiotwin.phantom.params import PhantomParams
from cardiotwin.phantom.placement import draw_patient, paint_heart
from cardiotwin.anatomy.voxels import components
from cardiotwin.phantom.shapes import Grid
from cardiotwin.phantom.tissue import Tissue
from cardiotwin.phantom.torso import paint_torso, spine_center
from cardiotwin.types import Image, LabelImage

MODALITIES = ("ct", "mr")
WALL_TISSUE = {"rv_myocardium": Tissue.MYOCARDIUM, "la_wall": Tissue.MYOCARDIUM, "ra_wall": Tissue.MYOCARDIUM,
               "aorta_wall": Tissue.VESSEL_WALL, "pulmonary_artery_wall": Tissue.VESSEL_WALL}
MARGIN = 10.0  # air around the torso (mm)


@dataclass(frozen=True)
class Phantom:
    """One synthetic patient."""

    image: Image
    labels: LabelImage
    params: PhantomParams
    modality: str
    landmarks: dict[str, list[float]]

    def volumes_ml(self) -> dict[str, float]:
        return self.labels.volumes_ml()


def generate_phantom(seed: int = 0, spacing: float | tuple[float, float, float] = 1.0,
                     modality: str = "ct", params: PhantomParams | None = None) -> Phantom:
    """Synthesise patient ``seed`` at the given voxel spacing (mm) as a CT or MR image; ``params``
    (e.g. a drawn patient with a wider torso, :func:`dataclasses.replace`) overrides the seed's shape
    and is used as given. The seed's own shape is its draw with the heart placed inside the thorax
    (:func:`~cardiotwin.phantom.placement.place_heart`)."""
    if modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}, got {modality!r}")
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
    if not np.all(np.isfinite(sp)) or sp.min() < 0.25 or sp.max() > 10.0:
        raise InputError(f"spacing must be between 0.25 and 10 mm per axis, got {spacing}")
    p = draw_patient(seed) if params is None else params

    base = np.array([p.heart_offset[0], p.heart_offset[1], 0.0])
    frame = heart_frame(p)
    k = p.lv_radius / 24.5
    center_lv = base - frame[:, 2] * 12.0 * k
    semi = np.array([p.lv_radius + p.lv_wall] * 2 + [p.lv_length + 0.75 * p.lv_wall])
    z_heart_bottom = center_lv[2] - np.sqrt(((frame[2] * semi) ** 2).sum())
    z_bottom = z_heart_bottom - 200.0  # the abdomen down to the iliac crests, where the LL electrode sits
    z_top = z_bottom + p.torso_height

    A, B = p.torso_semi_lr, p.torso_semi_ap
    axes = [np.arange(lo + s / 2, hi, s) for lo, hi, s in
            ((-A - MARGIN, A + MARGIN, sp[0]), (-B - MARGIN, B + MARGIN, sp[1]), (z_bottom - MARGIN, z_top + MARGIN, sp[2]))]
    grid = Grid(*axes)
    heart = HeartModel(p, base, spine_center_xy=spine_center(p), inferior_z=z_bottom + 2.0)
    labels, tissue = paint_heart(heart, grid)
    for wall, kind in WALL_TISSUE.items():
        tissue[labels == lab.label(wall)] = kind

    centre = base - frame[:, 2] * 30.0
    win = grid.window(centre - 110.0, centre + 110.0)
    for pool in lab.BLOOD_POOLS:  # separating lumens can leave specks of a pool behind: drop them
        region = labels[win]
        comp, _ = components(region == lab.label(pool))
        region[comp > 1] = 0

    heart_mask = np.isin(labels[win], lab.labels_of(lab.HEART + lab.VESSEL_LUMENS + lab.VESSEL_WALLS))
    paint_torso(labels, tissue, grid, p, z_bottom, z_heart_bottom - 3.0, win, heart_mask)

    intensity = synthesise(tissue, grid, modality, seed)
    origin = (grid.x[0], grid.y[0], grid.z[0])
    spacing_t = tuple(float(s) for s in sp)
    return Phantom(
        image=Image(intensity, spacing_t, origin),
        labels=LabelImage(labels, spacing_t, origin),
        params=p,
        modality=modality,
        landmarks=heart.landmarks,
    )
