"""A twin folder read back: heart, landmarks, torso and cached lead fields."""

from __future__ import annotations

import os
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.errors import InputFileNotFoundError
from cardiotwin.io.anatomy import read_landmarks
from cardiotwin.io.leadfield import read_lead_fields
from cardiotwin.io.mesh import read_mesh
from cardiotwin.twin import Twin
from cardiotwin.types import TetMesh


def read_twin(folder: str | os.PathLike) -> Twin:
    """The twin in a folder: ``heart.vtu``, ``landmarks.json``, optional ``torso.vtu`` and lead fields
    (``leadfields.npz``, used only when made for this heart and torso)."""
    root = Path(folder)
    for name in (F.HEART, F.LANDMARKS):
        if not (root / name).exists():
            raise InputFileNotFoundError(
                f"{root / name} not found: a twin folder holds heart.vtu and landmarks.json "
                "(made by `cardiotwin mesh` + `cardiotwin fibres`, or `cardiotwin demo`)"
            )
    landmarks = read_landmarks(root / F.LANDMARKS)
    torso = read_mesh(root / F.TORSO) if (root / F.TORSO).exists() else None
    heart = read_mesh(root / F.HEART)
    return Twin(heart, landmarks, torso, cached_lead_fields(root, heart, torso))


def cached_lead_fields(folder: Path, heart: TetMesh, torso: TetMesh | None):
    """``folder/leadfields.npz`` when it was made for this heart and torso
    (:meth:`~cardiotwin.ecg.leadfield.LeadFields.made_for`), else None (absent or stale)."""
    cache = folder / F.LEAD_FIELDS
    if not cache.exists():
        return None
    lead_fields = read_lead_fields(cache)
    return lead_fields if lead_fields.made_for(heart, torso) else None
