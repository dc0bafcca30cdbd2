"""Whole-body label maps to synthesise training images from.

* **Phantoms** (:func:`cardiotwin.phantom.generate_phantom`): any number of seeds, each a complete
  torso with lungs, spine, four-chamber heart, vessels and veins.
* **Real hearts** (expert whole-heart maps such as MM-WHS): the real heart with its walls, valve
  planes and venous stumps drawn by rule (:func:`cardiotwin.anatomy.walls.build_walls`, vessels kept
  whole as the expert drew them) inside an extended torso (:func:`cardiotwin.anatomy.torso.extend_torso`),
  so the network sees a real heart's shape in a body, not floating in air.

Each map is cropped to a box around the heart (``CROP_MM`` per side) to bound memory.
"""

from __future__ import annotations

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.types import LabelImage

CROP_MM = 150.0


def heart_box(labels: LabelImage, half_mm: float = CROP_MM) -> tuple[slice, slice, slice]:
    """Index box of ``half_mm`` either side of the blood pools' centre, clipped to the grid."""
    centre = np.round(np.argwhere(labels.mask(*lab.BLOOD_POOLS)).mean(axis=0)).astype(int)
    half = np.ceil(half_mm / np.asarray(labels.spacing)).astype(int)
    return tuple(slice(max(c - h, 0), min(c + h, n)) for c, h, n in zip(centre, half, labels.shape))


def crop_to_heart(labels: LabelImage, half_mm: float = CROP_MM) -> LabelImage:
    """``labels`` cut to :func:`heart_box` (same physical frame)."""
    return labels.crop(heart_box(labels, half_mm))


def phantom_body(seed: int, spacing_mm: float = 1.0) -> LabelImage:
    """The phantom patient ``seed``'s label map, cropped around the heart."""
    from cardiotwin.phantom import generate_phantom

    return crop_to_heart(generate_phantom(seed=seed, spacing=spacing_mm).labels)


def real_heart_body(heart: LabelImage, spacing_mm: float = 1.0) -> LabelImage:
    """A real whole-heart map (cardiotwin labels) with rule-based walls and veins in an extended torso."""
    from cardiotwin.anatomy.torso import extend_torso
    from cardiotwin.anatomy.walls import build_walls

    walled, _ = build_walls(heart, vessel_lengths_mm=None, spacing_mm=spacing_mm)
    body, _ = extend_torso(walled, spacing_mm=spacing_mm)
    return crop_to_heart(body)
