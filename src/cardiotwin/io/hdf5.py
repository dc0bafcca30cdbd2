"""Image + label volumes stored as HDF5 datasets (the re-shared ACDC cine and LA-challenge LGE-MRI
stacks keep ``image`` and ``label`` arrays with no geometry): read with the spacing the user gives."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cardiotwin.errors import CorruptFileError, InputError, InputFileNotFoundError
from cardiotwin.types import Image


def read_hdf5_volume(path: str | os.PathLike, spacing_mm: tuple[float, float, float],
                     slices_first: bool = False) -> tuple[Image, np.ndarray | None]:
    """``image`` (and ``label`` when present, raw codes) of an HDF5 file as an image on an axis-aligned
    grid of ``spacing_mm`` (index order (x, y, z)); ``slices_first`` for arrays stored (slices, rows,
    columns), as the ACDC re-share does, which are transposed to (columns, rows, slices)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"HDF5 volume not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            if "image" not in f:
                raise InputError(f"{path} has no 'image' dataset (found {list(f)})")
            image = np.asarray(f["image"][()], dtype=np.float32)
            label = np.asarray(f["label"][()]) if "label" in f else None
    except OSError as exc:
        raise CorruptFileError(f"cannot read {path} as HDF5: {exc}") from exc
    if slices_first:
        image = image.transpose(2, 1, 0)
        label = None if label is None else label.transpose(2, 1, 0)
    return Image(np.ascontiguousarray(image), spacing_mm), None if label is None else np.ascontiguousarray(label)


