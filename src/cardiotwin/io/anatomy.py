"""Files of the anatomical twin: label maps, meshes, landmarks and the mesh report of one patient."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cardiotwin import fields as F
from cardiotwin.errors import CorruptFileError, InputFileNotFoundError
from cardiotwin.io.atomic import write_json_atomic
from cardiotwin.io.image import write_image
from cardiotwin.io.mesh import write_mesh
from cardiotwin.io.opencarp import write_opencarp

if TYPE_CHECKING:
    from cardiotwin.anatomy.build import Anatomy


def write_anatomy(anatomy: Anatomy, out_dir: str | os.PathLike, opencarp: bool = False) -> dict[str, Path]:
    """Write the anatomy stage's files (:mod:`cardiotwin.fields`): ``labels_walls.nii.gz``,
    ``heart_mesh.vtu``, ``torso.vtu`` (+ ``labels_torso.nii.gz`` when the torso was extended),
    ``landmarks.json``, ``mesh_report.json`` and, with ``opencarp``, ``heart_mesh.pts/.elem``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "labels": write_image(anatomy.labels, out / F.LABELS_WALLS),
        "heart": write_mesh(anatomy.heart.mesh, out / F.HEART_MESH),
        "landmarks": write_landmarks(anatomy.landmarks, out / F.LANDMARKS),
        "report": write_json_atomic(out / F.MESH_REPORT, anatomy.report),
    }
    if anatomy.torso is not None:
        paths["torso"] = write_mesh(anatomy.torso.mesh, out / F.TORSO)
    if anatomy.torso_labels is not None:
        paths["torso_labels"] = write_image(anatomy.torso_labels, out / F.LABELS_TORSO)
    if opencarp:
        for path in write_opencarp(anatomy.heart.mesh, out / F.opencarp_base(F.HEART_MESH)):
            paths[path.name] = path
    return paths


def write_landmarks(landmarks: dict[str, list], path: str | os.PathLike) -> Path:
    """Write landmarks as JSON (mm, LPS physical frame)."""
    return write_json_atomic(path, {"units": "mm", "frame": "LPS", "landmarks": landmarks})


def read_landmarks(path: str | os.PathLike) -> dict:
    """Landmarks written by :func:`write_landmarks` (or a plain dict)."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"landmarks not found: {p} (made by `cardiotwin mesh`)")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{p} is not valid JSON: {exc}") from None
    return data.get("landmarks", data)
