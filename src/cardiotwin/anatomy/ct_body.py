"""What a (cropped) CT shows of the body: outside air, body, lungs and the visible skin, by
Hounsfield thresholds.

On the Hounsfield scale air is -1000 HU, lung parenchyma -700 to -900 HU and every other tissue
above -200 HU (fat about -100), so a -400 HU threshold separates air-filled spaces from tissue
(the usual lung-segmentation threshold, e.g. Hu, Hoffman & Reinhardt 2001, IEEE TMI 20:490, who
pick it adaptively between these two modes). The air-filled components are then told apart:

* **outside air**: large components reaching a side face of the field of view (not only its top or
  bottom: gas in the stomach reaches the bottom of a chest crop) whose median is below
  ``OUTSIDE_AIR_MEDIAN_HU`` (air itself, not parenchyma);
* **lungs**: large components with a parenchyma median; their vessels and airway walls are closed in
  (``LUNG_CLOSING_MM``) so the lung is one organ, as in a conductivity model;
* small pockets (bowel gas, airways cut off) are body.

The skin is seen only where body touches outside air inside the field of view; where the body is
cut by the crop, nothing is observed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cardiotwin.errors import InvalidImageError
from cardiotwin.types import Image

AIR_HU = -400.0
OUTSIDE_AIR_MEDIAN_HU = -940.0
MIN_AIR_ML = 20.0  # smaller air pockets are gas inside the body
LUNG_CLOSING_MM = 3.0  # closes pulmonary vessels up to ~6 mm across into the lung

OUTSIDE, BODY, LUNG = 0, 1, 2  # classes of :attr:`BodyObservation.classes`


@dataclass(frozen=True)
class BodyObservation:
    """Classes (``OUTSIDE``/``BODY``/``LUNG``) on the CT's grid and the points (LPS mm) that bound
    what is seen: the visible skin, the body where the crop cuts it, and the lungs' surfaces."""

    classes: Image
    skin_mm: np.ndarray
    body_cut_mm: np.ndarray
    lung_surface_mm: np.ndarray

    def volumes_ml(self) -> dict[str, float]:
        arr, ml = self.classes.array, self.classes.voxel_volume_mm3 / 1000.0
        return {"body_in_view": round(float((arr != OUTSIDE).sum() * ml), 1),
                "lungs_in_view": round(float((arr == LUNG).sum() * ml), 1)}


def is_ct(image: Image) -> bool:
    """Whether the image holds Hounsfield units with air in it (a CT, not an MR or a label map)."""
    arr = image.array
    return bool(np.issubdtype(arr.dtype, np.number) and arr.min() <= -800 and arr.max() >= 100)


def observe_body(ct: Image) -> BodyObservation:
    """Outside air, body and lungs of a CT in HU, and its visible skin points."""
    if not is_ct(ct):
        raise InvalidImageError("the torso is fitted to a CT in Hounsfield units (air at -1000 HU); "
                                f"this image spans {ct.array.min():.0f}..{ct.array.max():.0f}")
    hu = np.asarray(ct.array, dtype=np.float32)
    voxel_ml = ct.voxel_volume_mm3 / 1000.0
    comp, n = ndimage.label(hu < AIR_HU)
    index = np.arange(1, n + 1)
    large = ndimage.sum_labels(np.ones_like(hu), comp, index) * voxel_ml >= MIN_AIR_ML
    median = np.array([ndimage.median(hu, comp, i) if big else 0.0 for i, big in zip(index, large)])
    axial = int(np.argmax(np.abs(ct.direction[2])))  # the index axis closest to superior
    on_side = np.zeros(n + 1, dtype=bool)
    for axis in set(range(3)) - {axial}:
        for end in (0, -1):
            on_side[np.unique(np.take(comp, end, axis=axis))] = True
    outside_ids = index[large & on_side[1:] & (median < OUTSIDE_AIR_MEDIAN_HU)]
    lung_ids = index[large & (median >= OUTSIDE_AIR_MEDIAN_HU)]
    outside = np.isin(comp, outside_ids)
    radius = np.maximum(np.rint(LUNG_CLOSING_MM / np.asarray(ct.spacing)), 1).astype(int)
    offsets = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    ball = sum((o / r) ** 2 for o, r in zip(offsets, radius)) <= 1.0
    lungs = ndimage.binary_closing(np.isin(comp, lung_ids), ball, border_value=1) & ~outside
    classes = np.full(hu.shape, BODY, dtype=np.uint8)
    classes[outside] = OUTSIDE
    classes[lungs] = LUNG
    faces = _faces(hu.shape)
    skin = ~outside & ndimage.binary_dilation(outside) & ~faces
    lung_surface = lungs & ~ndimage.binary_erosion(lungs, border_value=0)

    def points(mask: np.ndarray) -> np.ndarray:
        return ct.index_to_physical(np.argwhere(mask).astype(float))

    return BodyObservation(ct.with_array(classes), points(skin), points(~outside & faces), points(lung_surface))


def _faces(shape: tuple[int, ...]) -> np.ndarray:
    faces = np.ones(shape, dtype=bool)
    faces[1:-1, 1:-1, 1:-1] = False
    return faces
