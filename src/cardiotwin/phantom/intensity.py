"""CT- and MR-like intensities for the phantom's tissue map: tissue values, a smooth bias field,
partial volume (the scanner's point-spread function) and noise.

CT values are arterial-phase contrast CT Hounsfield units (blood pools enhanced, left heart
brighter than right); MR values mimic a balanced SSFP cine (bright blood and fat, dark
myocardium and lung), with Rician noise and a multiplicative coil bias field.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cardiotwin.phantom.shapes import Grid
from cardiotwin.phantom.tissue import Tissue

CT_HU = {
    Tissue.AIR: -1000, Tissue.FAT: -100, Tissue.MUSCLE: 45, Tissue.BONE: 700, Tissue.LUNG: -860,
    Tissue.LIVER: 75, Tissue.MYOCARDIUM: 110, Tissue.ARTERIAL_BLOOD: 380, Tissue.VENOUS_BLOOD: 300,
    Tissue.VESSEL_WALL: 70, Tissue.VALVE: 90, Tissue.MARROW: 250, Tissue.IVC_BLOOD: 140,
}
MR_SSFP = {
    Tissue.AIR: 5, Tissue.FAT: 780, Tissue.MUSCLE: 260, Tissue.BONE: 40, Tissue.LUNG: 35,
    Tissue.LIVER: 330, Tissue.MYOCARDIUM: 240, Tissue.ARTERIAL_BLOOD: 900, Tissue.VENOUS_BLOOD: 880,
    Tissue.VESSEL_WALL: 300, Tissue.VALVE: 280, Tissue.MARROW: 600, Tissue.IVC_BLOOD: 860,
}
PSF_SIGMA_MM = 0.6  # in-plane PSF of a cardiac CT / MR reconstruction (FWHM ~1.4 mm)


def smooth_field(grid: Grid, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth separable field sum_k p_k(u_k), p_k random quadratics on normalised coordinates."""
    field = np.zeros(grid.shape, dtype=np.float32)
    for axis, coords in enumerate((grid.x, grid.y, grid.z)):
        u = (coords - coords.mean()) / max(np.ptp(coords), 1e-6) * 2.0
        c1, c2 = rng.uniform(-1, 1, size=2)
        shape = [1, 1, 1]
        shape[axis] = len(u)
        field += (amplitude * (c1 * u + 0.5 * c2 * u**2)).astype(np.float32).reshape(shape)
    return field


def synthesise(tissue: np.ndarray, grid: Grid, modality: str, seed: int) -> np.ndarray:
    """Intensity image (int16 HU for CT, float32 arbitrary units for MR) from the tissue map."""
    rng = np.random.default_rng(seed + 104729)
    table = CT_HU if modality == "ct" else MR_SSFP
    lut = np.zeros(max(Tissue) + 1, dtype=np.float32)
    for t, v in table.items():
        lut[t] = v
    img = lut[tissue]
    sigma_vox = [PSF_SIGMA_MM / s for s in grid.spacing]
    ndimage.gaussian_filter(img, sigma_vox, output=img, truncate=3.0)
    if modality == "ct":
        img += smooth_field(grid, rng, 12.0)  # beam hardening / scatter: a few HU, smooth
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(18.0)
        return np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    img *= np.exp(smooth_field(grid, rng, 0.25))  # receive-coil bias field
    noise = np.float32(20.0)
    real = img + rng.standard_normal(img.shape, dtype=np.float32) * noise
    imag = rng.standard_normal(img.shape, dtype=np.float32) * noise
    return np.sqrt(real * real + imag * imag)
