"""NumPy array bundles (``.npz``), written atomically."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError
from cardiotwin.io.atomic import atomic_path


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` through a temporary file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickles)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"array file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CorruptFileError(f"cannot read {p} ({type(exc).__name__}: {exc})") from None
