"""Small vector helpers shared by the anatomy modules and the pictures."""

from __future__ import annotations

import numpy as np


def unit_vectors(v: np.ndarray) -> np.ndarray:
    """Vectors along the last axis scaled to unit length (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-300)
