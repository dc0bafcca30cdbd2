"""Other segmentation engines, for users who have them installed, with weights from a local path.

* **TotalSegmentator** (Wasserthal et al., Radiol Artif Intell 5:e230024, 2023): its Python API on
  the image, task ``total`` (heart chambers, myocardium, aorta, pulmonary artery, venae cavae,
  lungs, vertebrae) or ``heartchambers_highres`` (licensed), its weights in the folder given (it
  reads ``TOTALSEG_HOME_DIR``); classes mapped with :func:`cardiotwin.labels.from_totalsegmentator`.
* **nnU-Net v2** (Isensee et al., Nat Methods 18:203, 2021): a trained model folder (``plans.json``,
  ``dataset.json``, ``fold_*/checkpoint_final.pth``); its ``dataset.json`` label names are mapped
  to cardiotwin names (cardiotwin's own names, or TotalSegmentator's).

Neither package is a cardiotwin dependency; a missing one is a clear error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.errors import CardiotwinError, InputFileNotFoundError, UnknownLabelError
from cardiotwin.types import Image, LabelImage


class MissingEngineError(CardiotwinError, ImportError):
    """A segmentation engine that is not installed."""


def cardiotwin_name(class_name: str) -> str:
    """cardiotwin structure for an engine's class name (cardiotwin's own, or TotalSegmentator's)."""
    if class_name in lab.LABELS:
        return class_name
    return lab.from_totalsegmentator(class_name)


def nnunet_class_table(model_folder: str | os.PathLike) -> np.ndarray:
    """Lookup ``nnU-Net class index -> cardiotwin integer`` from the model's ``dataset.json``."""
    path = Path(model_folder) / "dataset.json"
    if not path.is_file():
        raise InputFileNotFoundError(f"{model_folder} is not an nnU-Net v2 model folder: no dataset.json")
    names = json.loads(path.read_text())["labels"]
    index = {int(v if not isinstance(v, list) else v[0]): k for k, v in names.items()}
    table = np.zeros(max(index) + 1, dtype=np.int16)
    unknown = []
    for i, name in index.items():
        if i == 0:
            continue
        try:
            table[i] = lab.label(cardiotwin_name(name))
        except UnknownLabelError:
            unknown.append(name)
    if unknown:
        raise UnknownLabelError(f"nnU-Net classes {unknown} have no cardiotwin equivalent; rename them in "
                                f"{path} to cardiotwin names ({', '.join(lab.LABELS)}) or TotalSegmentator's")
    return table


def run_nnunet(image: Image, model_folder: str | os.PathLike, device: str = "cpu",
               folds: tuple[int | str, ...] | None = None) -> LabelImage:
    """Segment ``image`` with an nnU-Net v2 model folder; labels in cardiotwin integers, on its grid."""
    try:
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    except ImportError as exc:
        raise MissingEngineError("the nnU-Net engine needs nnunetv2: pip install nnunetv2 "
                                 "(pin torchvision==0.28.0 beside torch==2.13.0)") from exc
    table = nnunet_class_table(model_folder)
    predictor = nnUNetPredictor(device=torch.device(device), verbose=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=folds,
                                                   checkpoint_name="checkpoint_final.pth")
    zyx = np.ascontiguousarray(np.asarray(image.array, dtype=np.float32).transpose(2, 1, 0))[None]
    props = {"spacing": tuple(float(s) for s in image.spacing[::-1])}
    seg = np.asarray(predictor.predict_single_npy_array(zyx, props, None, None, False)).transpose(2, 1, 0)
    return LabelImage(table[seg.astype(np.int64)], image.spacing, image.origin, image.direction)


def run_totalsegmentator(image: Image, weights_dir: str | os.PathLike, task: str = "total",
                         device: str = "cpu") -> LabelImage:
    """Segment ``image`` with TotalSegmentator (weights in ``weights_dir``); cardiotwin integers."""
    try:
        from totalsegmentator.map_to_binary import class_map
        from totalsegmentator.python_api import totalsegmentator
    except ImportError as exc:
        raise MissingEngineError("the TotalSegmentator engine needs it installed: pip install TotalSegmentator; "
                                 "its weights must already be in --weights (no download here)") from exc
    from cardiotwin.io.image import read_image, write_image

    os.environ["TOTALSEG_HOME_DIR"] = str(weights_dir)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "image.nii.gz", Path(tmp) / "labels.nii.gz"
        write_image(image, src)
        totalsegmentator(str(src), str(dst), ml=True, task=task, device=device, quiet=True)
        raw = read_image(dst).array.astype(np.int64)
    table = np.zeros(max(class_map[task]) + 1, dtype=np.int16)
    for index, name in class_map[task].items():
        try:
            table[index] = lab.label(cardiotwin_name(name))
        except UnknownLabelError:
            pass  # organs the twin does not use (liver, kidneys...) stay background
    return LabelImage(table[raw], image.spacing, image.origin, image.direction)
