"""Electrode position files: ``name,x,y,z`` CSV in mm (LPS)."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from cardiotwin.ecg.leads import DEFAULT_MAX_SNAP_MM, Electrodes, snap_electrodes
from cardiotwin.errors import CorruptFileError, InputFileNotFoundError
from cardiotwin.io.atomic import write_text_atomic
from cardiotwin.types import TetMesh


def read_electrodes_csv(path: str | os.PathLike) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, positions (E, 3) mm) from a CSV file with rows ``name,x,y,z`` (an optional header
    row ``name,x,y,z``; ``#`` comments and blank lines are skipped)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"electrode file not found: {p}")
    try:
        text = p.read_text()
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{p} is not a text CSV file ({exc})") from None
    names, rows = [], []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 4:
            raise CorruptFileError(f"{p}, line {lineno}: expected 4 columns name,x,y,z (mm), got {len(cells)}: {row}")
        try:
            xyz = [float(c) for c in cells[1:]]
        except ValueError:
            if not names and cells[0].lower() == "name":
                continue  # header
            raise CorruptFileError(f"{p}, line {lineno}: coordinates must be numbers (mm), got {cells[1:]}") from None
        if not all(math.isfinite(v) for v in xyz):
            raise CorruptFileError(f"{p}, line {lineno}: non-finite coordinate in {cells[1:]}")
        names.append(cells[0])
        rows.append(xyz)
    if not names:
        raise CorruptFileError(f"{p} lists no electrodes (expected rows name,x,y,z in mm)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CorruptFileError(f"{p}: duplicate electrode names {dup}")
    return tuple(names), np.array(rows, dtype=np.float64)


def write_electrodes_csv(electrodes: Electrodes, path: str | os.PathLike) -> Path:
    """Write ``name,x,y,z`` (mm, LPS) atomically."""
    lines = ["name,x,y,z"] + [f"{n},{p[0]:.4f},{p[1]:.4f},{p[2]:.4f}" for n, p in zip(electrodes.names, electrodes.positions)]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def electrodes_from_csv(
    path: str | os.PathLike,
    torso: TetMesh,
    *,
    heart: TetMesh | None = None,
    max_distance_mm: float = DEFAULT_MAX_SNAP_MM,
) -> Electrodes:
    """Electrodes from a ``name,x,y,z`` CSV (mm, LPS) snapped to the torso skin (:func:`snap_electrodes`)."""
    names, pos = read_electrodes_csv(path)
    return snap_electrodes(names, pos, torso, heart=heart, max_distance_mm=max_distance_mm)
