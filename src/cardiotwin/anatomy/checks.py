"""Checks that a label map can become a four-chamber heart, with small documented repairs."""

from __future__ import annotations

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.voxels import components
from cardiotwin.errors import AnatomyError
from cardiotwin.types import LabelImage

REQUIRED_POOLS = ("lv_blood", "rv_blood", "la_blood", "ra_blood")
SPECK_FRACTION = 0.01  # a piece under 1 % of its structure (and under 1 ml) is a segmentation speck
SPECK_ML = 1.0


def check_heart_labels(labels: LabelImage, required: tuple[str, ...] = REQUIRED_POOLS) -> tuple[LabelImage, list[str]]:
    """Validate the chambers of a label map; remove tiny disconnected specks (reported).

    Raises :class:`AnatomyError` for an empty map, a missing chamber, or a chamber split into
    pieces of comparable size (which no rule can join correctly).
    """
    values = np.unique(labels.array)
    if values.size == 1 and values[0] == 0:
        raise AnatomyError("the label map is empty (only background); check the segmentation output")
    present = set(labels.present())
    missing = [name for name in required if name not in present]
    if missing:
        raise AnatomyError(
            f"the label map lacks {', '.join(missing)} (present: {', '.join(sorted(present)) or 'none'}); "
            "a four-chamber heart needs all four blood pools. If your segmentation uses other integers, "
            "map them to cardiotwin.labels first (e.g. cardiotwin.io.read_totalsegmentator)"
        )
    arr = labels.array.copy()
    repairs: list[str] = []
    voxel_ml = labels.voxel_volume_mm3 / 1000.0
    for name in (*required, "lv_myocardium"):
        value = lab.label(name)
        if name not in present:
            continue
        comp, counts = components(arr == value)
        if len(counts) < 2:
            continue
        small = [i for i, c in enumerate(counts[1:], start=2)
                 if c < SPECK_FRACTION * counts[0] and c * voxel_ml < SPECK_ML]
        big = [c for c in counts[1:] if c >= SPECK_FRACTION * counts[0] or c * voxel_ml >= SPECK_ML]
        if big:
            raise AnatomyError(
                f"{name} is split into {len(counts)} disconnected pieces of "
                f"{', '.join(f'{c * voxel_ml:.1f}' for c in counts[:4])} ml; a chamber must be one piece. "
                "Fix the segmentation (e.g. fill the gap between the pieces) before building the heart"
            )
        if small:
            speck = np.isin(comp, small)
            arr[speck] = 0
            repairs.append(f"removed {len(small)} disconnected speck(s) of {name} ({speck.sum() * voxel_ml:.2f} ml)")
    return labels.with_array(arr), repairs
