"""Overlap scores of a segmentation against a reference (Dice, 1945)."""

from __future__ import annotations

import numpy as np

from cardiotwin.segmentation.classes import CLASSES, IGNORE


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks, 2|A&B| / (|A| + |B|); 0 when both are empty."""
    total = int(pred.sum()) + int(truth.sum())
    return float(2 * np.logical_and(pred, truth).sum() / total) if total else 0.0


def dice_per_class(pred: np.ndarray, target: np.ndarray, n_classes: int = len(CLASSES)) -> dict[str, float]:
    """Dice of each foreground class present in ``target`` (voxels marked IGNORE left out)."""
    keep = target != IGNORE
    return {CLASSES[c]: dice((pred == c) & keep, (target == c) & keep)
            for c in range(1, n_classes) if ((target == c) & keep).any()}
