"""Intensity normalisation shared by training and inference.

Robust min-max scaling (as SynthSeg's): the 0.5th and 99.5th percentiles map to 0 and 1, so a few
bright voxels (metal, contrast jets) or the scanner's padding value do not set the scale.
"""

from __future__ import annotations

import torch

LOW, HIGH = 0.005, 0.995
_MAX_SAMPLES = 1 << 20


def normalise(image: torch.Tensor) -> torch.Tensor:
    """``image`` scaled so its robust range is [0, 1] (values outside it are clipped)."""
    flat = image.reshape(-1)
    if flat.numel() > _MAX_SAMPLES:  # quantile is exact on a regular subsample of this size
        flat = flat[:: flat.numel() // _MAX_SAMPLES + 1]
    lo, hi = torch.quantile(flat.float(), torch.tensor([LOW, HIGH], device=flat.device)).tolist()
    return ((image - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
