"""The built-in network's classes, and how a cardiotwin label map becomes its training target.

The network segments the structures every whole-heart reference labels (MM-WHS's seven, Zhuang et
al. 2019) plus the venous inflows, which cardiotwin's own phantoms label and the vein rules of
:mod:`cardiotwin.anatomy.veins` find on real maps. Walls other than the LV myocardium (RV, atria,
vessel walls) are drawn by rule downstream (:mod:`cardiotwin.anatomy.walls`), so they are
background to the network; valve planes belong to the chamber they close; body, lungs and spine
come from Hounsfield thresholds on CT (:mod:`cardiotwin.anatomy.ct_body`), not from the network.
"""

from __future__ import annotations

import numpy as np

from cardiotwin import labels as lab

CLASSES: tuple[str, ...] = ("background", "lv_blood", "rv_blood", "la_blood", "ra_blood", "lv_myocardium",
                            "aorta", "pulmonary_artery", "superior_vena_cava", "inferior_vena_cava",
                            "pulmonary_veins")
"""Output channels of the network, in order (index = class)."""

TARGET_OF: dict[str, str] = {
    **{name: name for name in CLASSES[1:]},
    "mitral_valve": "lv_blood", "aortic_valve": "lv_blood",
    "tricuspid_valve": "rv_blood", "pulmonary_valve": "rv_blood",
}
"""cardiotwin structures that the network labels (all others are its background)."""

IGNORE = 255
"""Target value of voxels left out of the loss (e.g. structures a reference map does not label)."""


def class_table() -> np.ndarray:
    """Lookup ``cardiotwin integer -> class index`` (0 for structures the network does not label)."""
    table = np.zeros(max(lab.NAMES) + 1, dtype=np.uint8)
    for name, target in TARGET_OF.items():
        table[lab.label(name)] = CLASSES.index(target)
    return table


def to_classes(labels: np.ndarray) -> np.ndarray:
    """A cardiotwin label array as network class indices."""
    return class_table()[labels]


def to_labels(classes: np.ndarray) -> np.ndarray:
    """Network class indices as cardiotwin integers."""
    table = np.array([lab.label(name) for name in CLASSES], dtype=np.int16)
    return table[classes]
