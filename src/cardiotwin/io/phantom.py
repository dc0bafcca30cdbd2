"""Files of a synthetic patient: image, ground-truth labels and its parameters."""

from __future__ import annotations

import os
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin import labels as lab
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.io.image import write_image
from cardiotwin.phantom.generate import Phantom


def write_phantom(phantom: Phantom, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``image.nii.gz``, ``labels.nii.gz`` and ``phantom.json`` (parameters, volumes, landmarks)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "image": write_image(phantom.image, out / F.PHANTOM_IMAGE),
        "labels": write_image(phantom.labels, out / F.PHANTOM_LABELS),
    }
    paths["metadata"] = write_json_atomic(out / "phantom.json", {
        "modality": phantom.modality,
        "spacing_mm": phantom.image.spacing,
        "shape": phantom.image.shape,
        "params": phantom.params.as_dict(),
        "volumes_ml": {k: round(v, 2) for k, v in phantom.volumes_ml().items()},
        "landmarks_mm": phantom.landmarks,
        "label_convention": lab.LABELS,
    })
    return paths
