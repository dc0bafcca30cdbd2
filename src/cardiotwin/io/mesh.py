"""Tetrahedral meshes to and from VTK ``.vtu`` (and any volume format meshio reads), fields kept.

The region tag is stored as the cell field ``tag``; every point and cell field of the
:class:`~cardiotwin.types.TetMesh` is written under its own name, so ParaView shows them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import meshio
import numpy as np

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidMeshError
from cardiotwin.io.atomic import atomic_path
from cardiotwin.types import TetMesh

TAG_FIELD = "tag"
_FOREIGN_TAG_FIELDS = ("elemTag", "gmsh:physical", "medit:ref", "Material", "region", "CellEntityIds", "part-id")


def write_mesh(mesh: TetMesh, path: str | os.PathLike) -> Path:
    """Write a mesh atomically (``.vtu`` recommended; format follows the extension)."""
    target = Path(path)
    cell_data = {TAG_FIELD: [mesh.tags]}
    cell_data.update({k: [v] for k, v in mesh.cell_data.items()})
    out = meshio.Mesh(mesh.points, [("tetra", mesh.cells)], point_data=dict(mesh.point_data), cell_data=cell_data)
    with atomic_path(target) as tmp:
        out.write(tmp)  # the temporary name keeps the extension, which selects the format
    return target


def read_mesh(path: str | os.PathLike, tag_map: dict[int, int] | None = None, reorient: bool = False) -> TetMesh:
    """Read the tetrahedra of a volume mesh with its fields.

    ``tag_map`` translates foreign region ids to cardiotwin labels; ``reorient=True`` accepts meshes
    written with the opposite vertex order (each inverted tet gets two vertices swapped).
    Non-tetrahedral cells (surfaces, lines) are ignored.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"mesh not found: {p}")
    try:
        raw = meshio.read(p)
    except (Exception, SystemExit) as exc:  # meshio raises many types (even SystemExit) for unreadable files
        raise CorruptFileError(f"cannot read mesh {p}: {type(exc).__name__}: {exc}") from None
    blocks = [i for i, block in enumerate(raw.cells) if block.type == "tetra"]
    if not blocks:
        raise InvalidMeshError(f"{p} holds no tetrahedra (cell types: {[b.type for b in raw.cells]})")
    cells = np.vstack([raw.cells[i].data for i in blocks])
    cell_fields: dict[str, np.ndarray] = {}
    for key, per_block in raw.cell_data.items():
        cell_fields[key] = np.concatenate([np.asarray(per_block[i]) for i in blocks])
    tags = None
    for key in (TAG_FIELD, *_FOREIGN_TAG_FIELDS):
        if key in cell_fields:
            tags = cell_fields.pop(key).astype(np.int64).ravel()
            break
    if tags is not None and tag_map:
        tags = np.vectorize(lambda t: tag_map.get(int(t), int(t)))(tags)
    point_data = {k: np.asarray(v) for k, v in raw.point_data.items()}
    build = TetMesh.reoriented if reorient else TetMesh
    return build(raw.points[:, :3], cells, tags=tags, point_data=point_data, cell_data=cell_fields)
