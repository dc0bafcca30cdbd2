"""Orthogonal slices of an image with its label map overlaid: the first picture of a twin."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.io.atomic import atomic_path
from cardiotwin.types import Image, LabelImage

_COLOURS = {
    "lung_left": "#3b4f8c", "lung_right": "#3b6e4f", "spine": "#e0e0e0",
    "lv_blood": "#ff9b9b", "rv_blood": "#9b9bff", "la_blood": "#ffcc80", "ra_blood": "#80ccff",
    "lv_myocardium": "#c00000", "rv_myocardium": "#0000c0", "la_wall": "#c07000", "ra_wall": "#0070c0",
    "aorta": "#ffff66", "pulmonary_artery": "#66ffff", "superior_vena_cava": "#9933cc",
    "inferior_vena_cava": "#4d1a99", "pulmonary_veins": "#ff66ff", "aorta_wall": "#999900",
    "pulmonary_artery_wall": "#009999", "mitral_valve": "#ffffff", "tricuspid_valve": "#ffffff",
    "aortic_valve": "#b3ffb3", "pulmonary_valve": "#b3ffb3",
}


def plot_torso_fit(ct: Image, torso: LabelImage, path: str | os.PathLike, title: str = "") -> Path:
    """:func:`plot_slices` of an extended torso (bottom) and its CT on the torso's grid (top; blank
    outside the CT's field of view), through the heart's centre."""
    import SimpleITK as sitk

    from cardiotwin.io.image import from_sitk, to_sitk

    sampled = sitk.Resample(sitk.Cast(to_sitk(ct), sitk.sitkFloat32), to_sitk(torso), sitk.Transform(),
                            sitk.sitkLinear, float("nan"))
    heart = np.argwhere(np.isin(torso.array, lab.labels_of(lab.HEART)))
    centre = torso.index_to_physical(heart.mean(axis=0)) if len(heart) else torso.index_to_physical(
        (np.array(torso.shape) - 1) / 2.0)
    return plot_slices(from_sitk(sampled), torso, centre, path, title=title)


def plot_segmentation(image: Image, labels: LabelImage, path: str | os.PathLike, title: str = "") -> Path:
    """:func:`plot_slices` of a segmentation through its heart's centre, windowed on the image's
    1st-99th percentiles (any modality)."""
    heart = np.argwhere(np.isin(labels.array, lab.labels_of(lab.BLOOD_POOLS)))
    centre = labels.index_to_physical(heart.mean(axis=0) if len(heart) else (np.array(labels.shape) - 1) / 2.0)
    lo, hi = np.percentile(image.array[::2, ::2, ::2], [1, 99])
    return plot_slices(image, labels, centre, path, window=(float(lo), float(hi)), title=title)


def plot_slices(image: Image, labels: LabelImage, center_mm: np.ndarray, path: str | os.PathLike,
                window: tuple[float, float] = (-300.0, 600.0), title: str = "") -> Path:
    """Axial, coronal and sagittal slices through ``center_mm`` (image top, labels bottom) as PNG.

    Axes are drawn in radiological convention (patient left on the right of axial/coronal views).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = np.zeros((max(lab.NAMES) + 1, 4))
    for name, hex_colour in _COLOURS.items():
        colours[lab.label(name)] = matplotlib.colors.to_rgba(hex_colour)
    colours[lab.label("torso")] = (0.35, 0.35, 0.35, 1.0)
    cmap = ListedColormap(colours)
    idx = np.clip(np.rint(labels.physical_to_index(center_mm)).astype(int), 0, np.array(labels.shape) - 1)
    sp = labels.spacing
    views = [
        ("axial", lambda a: a[:, :, idx[2]].T, (sp[0], sp[1]), "upper"),
        ("coronal", lambda a: a[:, idx[1], :].T, (sp[0], sp[2]), "lower"),
        ("sagittal", lambda a: a[idx[0], :, :].T, (sp[1], sp[2]), "lower"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 9))
    for col, (name, cut, (du, dv), origin) in enumerate(views):
        img, lbl = cut(image.array), cut(labels.array)
        extent = (0, img.shape[1] * du, 0, img.shape[0] * dv)
        axes[0, col].imshow(img, cmap="gray", vmin=window[0], vmax=window[1], origin=origin, extent=extent)
        axes[1, col].imshow(lbl, cmap=cmap, vmin=0, vmax=len(colours) - 1, interpolation="nearest",
                            origin=origin, extent=extent)
        for row in (0, 1):
            axes[row, col].set_title(f"{name} ({'image' if row == 0 else 'labels'})")
            axes[row, col].set_xlabel("mm")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return target
