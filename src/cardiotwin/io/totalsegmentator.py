"""Import TotalSegmentator output (a folder of per-class NIfTI masks) into the cardiotwin convention.

TotalSegmentator (Wasserthal et al. 2023) writes one ``<class>.nii.gz`` per class. Classes with a
cardiotwin equivalent (:data:`cardiotwin.labels.TOTALSEGMENTATOR_TO_CARDIOTWIN`) are merged into
one label map; where two masks overlap, the later class in :data:`PRIORITY` wins (chambers over
vessels over lungs over body), so blood pools are never hidden behind the body mask.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin import labels
from cardiotwin.errors import InputFileNotFoundError, InvalidImageError
from cardiotwin.io.image import read_image
from cardiotwin.types import LabelImage

PRIORITY = ("torso", "spine", "lung_left", "lung_right", "pulmonary_veins", "superior_vena_cava",
            "inferior_vena_cava", "pulmonary_artery", "aorta", "la_blood", "ra_blood", "rv_blood",
            "lv_myocardium", "lv_blood")


def read_totalsegmentator(folder: str | os.PathLike) -> LabelImage:
    """Merge the recognised class masks of a TotalSegmentator output folder into one label map."""
    root = Path(folder)
    if not root.is_dir():
        raise InputFileNotFoundError(f"TotalSegmentator output folder not found: {root}")
    by_label: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*.nii*")):
        cls = path.name.split(".nii")[0]
        if cls.startswith("vertebrae_") or cls in labels.TOTALSEGMENTATOR_TO_CARDIOTWIN:
            by_label.setdefault(labels.from_totalsegmentator(cls), []).append(path)
    if not by_label:
        raise InvalidImageError(
            f"{root} holds no TotalSegmentator class cardiotwin knows "
            f"(expected e.g. heart_ventricle_left.nii.gz, lung_upper_lobe_left.nii.gz)"
        )
    reference, reference_path = None, None
    out: np.ndarray | None = None
    for name in PRIORITY:
        for path in by_label.get(name, []):
            mask = read_image(path)
            if reference is None:
                reference, reference_path, out = mask, path, np.zeros(mask.shape, dtype=np.int16)
            elif not mask.same_grid(reference):
                raise InvalidImageError(f"{path} is not on the same grid as {reference_path}")
            out[mask.array > 0] = labels.label(name)
    return LabelImage(out, reference.spacing, reference.origin, reference.direction)
