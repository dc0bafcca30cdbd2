"""openCARP mesh files: ``.pts`` (µm), ``.elem`` (``Tt`` with region tag), ``.lon`` fibres, ``.vtx``.

openCARP works in micrometres; cardiotwin in millimetres. The conversion happens here and only
here. Format reference: openCARP user manual, "Mesh file formats" (https://opencarp.org/documentation).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidMeshError
from cardiotwin.io.atomic import atomic_path
from cardiotwin.types import TetMesh

UM_PER_MM = 1000.0


def write_opencarp(
    mesh: TetMesh,
    basename: str | os.PathLike,
    fibre_field: str | None = "fibre",
    sheet_field: str | None = "sheet",
    vertex_sets: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write ``basename.pts/.elem`` and, if the fields exist, ``.lon``; one ``.vtx`` per vertex set.

    ``.lon`` holds fibre and sheet directions per element when both fields exist (header ``2``),
    fibre only otherwise (header ``1``). ``vertex_sets`` maps a name to node indices, written as
    ``basename_<name>.vtx`` with the ``intra`` domain.
    """
    base = Path(basename)
    written = [
        _write_table(base.with_suffix(".pts"), str(mesh.n_points), mesh.points * UM_PER_MM, "%.3f"),
        _write_elem(base.with_suffix(".elem"), mesh),
    ]
    if fibre_field and fibre_field in mesh.cell_data:
        columns = [mesh.cell_data[fibre_field]]
        if sheet_field and sheet_field in mesh.cell_data:
            columns.append(mesh.cell_data[sheet_field])
        lon = np.hstack([np.asarray(c, dtype=float).reshape(mesh.n_cells, 3) for c in columns])
        written.append(_write_table(base.with_suffix(".lon"), str(len(columns)), lon, "%.6f"))
    for name, idx in (vertex_sets or {}).items():
        idx = np.asarray(idx, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= mesh.n_points):
            raise InvalidMeshError(f"vertex set {name!r} has indices outside [0, {mesh.n_points - 1}]")
        path = base.with_name(f"{base.name}_{name}.vtx")
        written.append(_write_table(path, f"{idx.size}\nintra", idx[:, None], "%d"))
    return written


def read_opencarp(basename: str | os.PathLike, tag_map: dict[int, int] | None = None,
                  reorient: bool = False) -> TetMesh:
    """Read ``basename.pts/.elem`` (+ ``.lon`` if present) into a mesh in mm.

    Fibres land in the cell fields ``fibre`` (and ``sheet`` for two-direction files).
    """
    base = Path(basename)
    pts = _read_table(base.with_suffix(".pts"), 3) / UM_PER_MM
    elem = _read_elem(base.with_suffix(".elem"))
    cells, tags = elem[:, :4].astype(np.int64), elem[:, 4].astype(np.int64)
    if tag_map:
        tags = np.vectorize(lambda t: tag_map.get(int(t), int(t)))(tags)
    cell_data: dict[str, np.ndarray] = {}
    lon_path = base.with_suffix(".lon")
    if lon_path.exists():
        lon = _read_table(lon_path, None)
        if lon.shape[0] != len(cells) or lon.shape[1] not in (3, 6):
            raise CorruptFileError(f"{lon_path}: expected {len(cells)} rows of 3 or 6 values, got {lon.shape}")
        cell_data["fibre"] = lon[:, :3]
        if lon.shape[1] == 6:
            cell_data["sheet"] = lon[:, 3:]
    build = TetMesh.reoriented if reorient else TetMesh
    return build(pts, cells, tags=tags, cell_data=cell_data)


def read_vtx(path: str | os.PathLike) -> np.ndarray:
    """Node indices of an openCARP ``.vtx`` file."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"vertex file not found: {p}")
    lines = p.read_text().split()
    try:
        count = int(lines[0])
        body = lines[2:] if len(lines) > 1 and not lines[1].lstrip("-").isdigit() else lines[1:]
        idx = np.array(body, dtype=np.int64)
    except (ValueError, IndexError):
        raise CorruptFileError(f"{p}: not an openCARP .vtx file (count, domain, indices)") from None
    if idx.size != count:
        raise CorruptFileError(f"{p}: header says {count} vertices, file has {idx.size}")
    return idx


def _write_table(path: Path, header: str, values: np.ndarray, fmt: str) -> Path:
    with atomic_path(path) as tmp:
        np.savetxt(tmp, values, fmt=fmt, header=header, comments="")
    return path


def _write_elem(path: Path, mesh: TetMesh) -> Path:
    table = pd.DataFrame(mesh.cells)
    table.insert(0, "type", "Tt")
    table["tag"] = mesh.tags
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(f"{mesh.n_cells}\n")
            table.to_csv(fh, sep=" ", header=False, index=False)
    return path


def _read_header_count(path: Path) -> int:
    if not path.exists():
        raise InputFileNotFoundError(f"openCARP file not found: {path}")
    with open(path) as fh:
        first = fh.readline().split()
    try:
        return int(first[0])
    except (ValueError, IndexError):
        raise CorruptFileError(f"{path}: first line must be the entry count, got {first}") from None


def _read_table(path: Path, ncols: int | None) -> np.ndarray:
    count = _read_header_count(path)
    try:
        data = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1, dtype=float).to_numpy()
    except (ValueError, pd.errors.ParserError) as exc:
        raise CorruptFileError(f"{path}: unreadable numeric table ({exc})") from None
    if ncols is not None and data.shape[1] != ncols:
        raise CorruptFileError(f"{path}: expected {ncols} columns, got {data.shape[1]}")
    if path.suffix != ".lon" and len(data) != count:
        raise CorruptFileError(f"{path}: header says {count} entries, file has {len(data)}")
    return data


def _read_elem(path: Path) -> np.ndarray:
    count = _read_header_count(path)
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1, names=range(6))
    except pd.errors.ParserError as exc:
        raise CorruptFileError(f"{path}: unreadable element table ({exc})") from None
    kinds = set(table[0].unique())
    if kinds != {"Tt"}:
        raise InvalidMeshError(f"{path}: only tetrahedra (Tt) are supported, found element types {sorted(kinds)}")
    if len(table) != count:
        raise CorruptFileError(f"{path}: header says {count} elements, file has {len(table)}")
    values = table.iloc[:, 1:].to_numpy()
    if np.isnan(values.astype(float)).any():
        raise CorruptFileError(f"{path}: Tt lines need 4 node indices and a region tag")
    return values.astype(np.int64)
