"""Segmentation of cardiac CT and MRI into cardiotwin's label convention.

:func:`segment` runs the built-in network (a 3D U-Net trained on images synthesised from label
maps, :mod:`cardiotwin.segmentation.synth`; weights and model card in ``weights/``), cleans its
output (:mod:`cardiotwin.segmentation.postprocess`) and, for CT, adds the body outline and lungs
from Hounsfield thresholds (:mod:`cardiotwin.anatomy.ct_body`). The label map is on the input's
grid, in its physical frame, and goes straight into :func:`cardiotwin.build_anatomy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.errors import AnatomyError, InvalidImageError
from cardiotwin.types import Image, LabelImage

MODALITIES = ("ct", "mr")
ENGINES = ("builtin", "totalsegmentator", "nnunet")
MIN_HEART_ML = 10.0  # less blood pool than this: no heart in the view
MAX_NAN_FRACTION = 0.5


@dataclass
class Segmentation:
    """A label map (cardiotwin convention, on the input grid) and its QC report."""

    labels: LabelImage
    report: dict


def check_image(image: Image, modality: str) -> tuple[Image, list[str]]:
    """Validate an image for segmentation; NaN voxels (up to half) become the image's minimum."""
    from cardiotwin.anatomy.ct_body import is_ct

    if modality not in MODALITIES:
        raise InvalidImageError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if min(image.shape) < 8:
        raise InvalidImageError(f"image shape {image.shape} is too thin to segment in 3-D (a 2-D slice?); "
                                "give a volume with at least 8 voxels per axis")
    arr = np.asarray(image.array, dtype=np.float32)
    warnings = []
    bad = ~np.isfinite(arr)
    if bad.any():
        fraction = float(bad.mean())
        if fraction > MAX_NAN_FRACTION:
            raise InvalidImageError(f"{100 * fraction:.0f} % of the image's voxels are NaN or infinite")
        arr = np.where(bad, np.min(arr[~bad]), arr)
        warnings.append(f"{100 * fraction:.2f} % NaN/infinite voxels set to the image minimum")
        image = image.with_array(arr)
    if modality == "ct" and not is_ct(image):
        raise InvalidImageError(
            f"the image spans {arr.min():.0f}..{arr.max():.0f}: not a CT in Hounsfield units (air near -1000 HU "
            "and tissue or contrast above 100 HU expected). Is it an MR image? Use --modality mr")
    if modality == "mr" and is_ct(image):
        warnings.append("the image looks like a CT in Hounsfield units but was given as MR (no body/lungs added)")
    return image, warnings


def add_body(labels: LabelImage, ct: Image) -> tuple[LabelImage, dict]:
    """Torso and left/right lungs of a CT by thresholds, around the network's heart labels."""
    from scipy import ndimage

    from cardiotwin.anatomy.ct_body import BODY, LUNG, observe_body

    seen = observe_body(ct)
    classes = seen.classes.array
    arr = labels.array.copy()
    free = arr == 0
    arr[free & (classes == BODY)] = lab.label("torso")
    lungs = free & (classes == LUNG)
    comp, _ = ndimage.label(lungs)
    sizes = np.bincount(comp.ravel())[1:]
    pieces = [comp == c for c in 1 + np.argsort(sizes)[::-1][:2]]  # the two largest air spaces are the lungs
    x = [ct.index_to_physical(np.argwhere(p).mean(axis=0))[0] for p in pieces]
    if len(pieces) == 1:  # one lung in view: its side is the side of the heart's centre it lies on
        heart = np.argwhere(np.isin(arr, lab.labels_of(lab.BLOOD_POOLS)))
        x.append(ct.index_to_physical(heart.mean(axis=0))[0])
    for piece, xi in zip(pieces, x):
        arr[piece] = lab.label("lung_left" if xi >= max(x) else "lung_right")  # LPS: +x is the patient's left
    arr[lungs & (arr == 0)] = lab.label("torso")  # small air pockets (airways, gas) are body
    return labels.with_array(arr), seen.volumes_ml()


def segment(image: Image, modality: str = "ct", engine: str = "builtin", device: str = "cpu",
            weights=None, body: bool = True, progress: Callable[[int, int], None] | None = None) -> Segmentation:
    """Label map of ``image`` (see the module docstring). ``body`` adds torso and lungs for CT."""
    if engine not in ENGINES:
        raise InvalidImageError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine != "builtin" and weights is None:
        raise InvalidImageError(f"the {engine} engine needs its model from a local path (--weights): "
                                "TotalSegmentator's weights folder or an nnU-Net v2 model folder")
    from cardiotwin.segmentation.postprocess import clean

    image, warnings = check_image(image, modality)
    meta: dict = {"engine": engine}
    if engine == "builtin":
        from cardiotwin.segmentation.classes import to_labels
        from cardiotwin.segmentation.infer import Segmenter, predict_classes

        segmenter = Segmenter.load(weights, device=device)
        classes = predict_classes(segmenter, image, progress=progress)
        heart = LabelImage(to_labels(classes), image.spacing, image.origin, image.direction)
        meta.update(iterations=segmenter.metadata.get("iterations"), commit=segmenter.metadata.get("commit"))
    elif engine == "nnunet":
        from cardiotwin.segmentation.adapters import run_nnunet

        heart = run_nnunet(image, weights, device=device)
    else:
        from cardiotwin.segmentation.adapters import run_totalsegmentator

        heart = run_totalsegmentator(image, weights, device=device)
    has_body = bool(np.isin(heart.array, lab.labels_of(lab.BODY)).any())
    heart, report = clean(heart)
    pools_ml = sum(report["volumes_ml"].get(p, 0.0) for p in lab.BLOOD_POOLS)
    if pools_ml < MIN_HEART_ML:
        raise AnatomyError(f"no heart found in the image: {pools_ml:.1f} ml of blood pool segmented "
                           f"(at least {MIN_HEART_ML:.0f} ml expected). Is the heart in the field of view?")
    report["warnings"] = warnings + report["warnings"]
    report["weights"] = meta
    if body and modality == "ct" and not has_body:
        heart, report["body_ml"] = add_body(heart, image)
    return Segmentation(heart, report)
