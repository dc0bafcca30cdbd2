"""Running the built-in network on an image: resampling, sliding windows, back to the input's grid.

The image is resampled (Gaussian anti-aliasing, then linear interpolation) to the network's
isotropic spacing on a grid with the image's own orientation, normalised as in training
(:func:`cardiotwin.segmentation.normalise.normalise`), and segmented in overlapping windows
weighted by a Gaussian centred on each window (nnU-Net's sliding-window inference, Isensee et al.
2021: the network is least reliable at a window's border). Class probabilities are interpolated
linearly back onto the input grid, so the label map's boundaries are finer than the network's voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from cardiotwin.errors import InputFileNotFoundError, InvalidImageError
from cardiotwin.io.checkpoint import read_torch
from cardiotwin.io.image import from_sitk, to_sitk
from cardiotwin.segmentation.builtin import builtin_weights
from cardiotwin.segmentation.classes import CLASSES
from cardiotwin.segmentation.normalise import normalise
from cardiotwin.segmentation.unet import UNet3D
from cardiotwin.types import Image

WINDOW = 96
OVERLAP = 0.5
MAX_NETWORK_VOXELS = 40_000_000  # ~680 mm cube at 2 mm: a whole trunk; 11 classes x 4 bytes = 1.8 GB


@dataclass
class Segmenter:
    """A trained network with its input spacing and class names."""

    model: UNet3D
    spacing_mm: float
    classes: tuple[str, ...]
    metadata: dict

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> "Segmenter":
        """The shipped weights (``path=None``) or a file written by ``export_weights``."""
        if path is None:
            path = builtin_weights()
            if not path.is_file():
                raise InputFileNotFoundError(
                    f"the built-in segmenter's weights are not installed ({path}): they are still being trained "
                    "(training/train_segmenter.py; README status). Pass weights you trained (--weights), or use "
                    "--engine nnunet / totalsegmentator with a local model")
        ck = read_torch(path)
        if tuple(ck["classes"]) != CLASSES:
            raise InvalidImageError(f"{path}: the weights segment {ck['classes']}, this cardiotwin expects {CLASSES}")
        model = UNet3D(**ck["model_config"])
        model.load_state_dict(ck["model"])
        return cls(model.to(device).eval(), float(ck["spacing_mm"]), tuple(ck["classes"]), ck.get("metadata", {}))


def network_grid(image: Image, spacing_mm: float) -> Image:
    """An empty image at ``spacing_mm`` with ``image``'s orientation, covering the same extent."""
    extent = np.asarray(image.shape) * np.asarray(image.spacing)
    shape = np.maximum(np.ceil(extent / spacing_mm).astype(int), 1)
    if int(np.prod(shape)) > MAX_NETWORK_VOXELS:
        raise InvalidImageError(
            f"the image covers {extent.round(0).tolist()} mm, {int(np.prod(shape)):,} voxels at the network's "
            f"{spacing_mm} mm (limit {MAX_NETWORK_VOXELS:,}); crop it to the chest first")
    centre_in = image.index_to_physical((np.asarray(image.shape) - 1) / 2.0)
    origin = centre_in - image.direction @ ((shape - 1) / 2.0 * spacing_mm)
    return Image(np.zeros(tuple(shape), dtype=np.float32), (spacing_mm,) * 3, tuple(origin), image.direction)


def resample_to(image: Image, grid: Image) -> np.ndarray:
    """``image`` on ``grid`` (same orientation): Gaussian anti-aliasing where it is finer, then linear."""
    src = sitk.Cast(to_sitk(image), sitk.sitkFloat32)
    sigma = [0.5 * math.sqrt(max(g * g - s * s, 0.0)) for s, g in zip(image.spacing, grid.spacing)]
    if max(sigma) > 0:
        src = sitk.SmoothingRecursiveGaussian(src, [max(s, 1e-3) for s in sigma])
    ref = to_sitk(grid)
    out = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkLinear, float(np.min(image.array)), sitk.sitkFloat32)
    return from_sitk(out).array


def _starts(n: int, window: int, step: int) -> list[int]:
    if n <= window:
        return [0]
    starts = list(range(0, n - window, step)) + [n - window]
    return sorted(set(starts))


def _gaussian_weight(window: int) -> torch.Tensor:
    t = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-0.5 * (t / (window / 8)) ** 2)
    w = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (w / w.max()).clamp_min(1e-3)


def sliding_window(model: UNet3D, volume: torch.Tensor, window: int = WINDOW, overlap: float = OVERLAP,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Class probabilities (C, X, Y, Z) of a normalised volume (X, Y, Z)."""
    device = next(model.parameters()).device
    if window % model.divisor:
        raise ValueError(f"window {window} must be divisible by {model.divisor}")
    size = [max(window, n) for n in volume.shape]  # smaller volumes are padded (0: the normalised minimum)
    padded = F.pad(volume, [0, size[2] - volume.shape[2], 0, size[1] - volume.shape[1], 0, size[0] - volume.shape[0]])
    step = max(1, int(window * (1 - overlap)))
    weight = _gaussian_weight(window).to(device)
    cpu_weight = weight.cpu()
    acc = torch.zeros((len(CLASSES), *size), dtype=torch.float32)
    norm = torch.zeros(size, dtype=torch.float32)
    boxes = [(i, j, k) for i in _starts(size[0], window, step) for j in _starts(size[1], window, step)
             for k in _starts(size[2], window, step)]
    with torch.no_grad():
        for n, (i, j, k) in enumerate(boxes):
            patch = padded[i:i + window, j:j + window, k:k + window][None, None].to(device)
            prob = model(patch).softmax(dim=1)[0] * weight
            acc[:, i:i + window, j:j + window, k:k + window] += prob.cpu()
            norm[i:i + window, j:j + window, k:k + window] += cpu_weight
            if progress:
                progress(n + 1, len(boxes))
    return (acc / norm)[:, :volume.shape[0], :volume.shape[1], :volume.shape[2]]


def to_input_grid(prob: torch.Tensor, grid: Image, image: Image, chunk: int = 16) -> np.ndarray:
    """Most probable class on ``image``'s grid, from probabilities on ``grid`` (same orientation)."""
    offset = (np.asarray(image.origin) - np.asarray(grid.origin)) @ grid.direction  # in the shared index frame
    coords = []
    for a in range(3):
        u = (np.arange(image.shape[a]) * image.spacing[a] + offset[a]) / grid.spacing[a]
        m = prob.shape[a + 1]
        coords.append(torch.from_numpy(2 * u / max(m - 1, 1) - 1).float())
    out = np.zeros(image.shape, dtype=np.uint8)
    src = prob[None]
    for start in range(0, image.shape[0], chunk):
        c0 = coords[0][start:start + chunk]
        g0, g1, g2 = torch.meshgrid(c0, coords[1], coords[2], indexing="ij")
        g = torch.stack([g2, g1, g0], dim=-1)[None]
        sampled = F.grid_sample(src, g, mode="bilinear", padding_mode="border", align_corners=True)[0]
        out[start:start + chunk] = sampled.argmax(dim=0).numpy().astype(np.uint8)
    return out


def predict_classes(segmenter: Segmenter, image: Image,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Network class indices on ``image``'s grid."""
    grid = network_grid(image, segmenter.spacing_mm)
    volume = normalise(torch.from_numpy(resample_to(image, grid)))
    prob = sliding_window(segmenter.model, volume, progress=progress)
    return to_input_grid(prob, grid, image)
