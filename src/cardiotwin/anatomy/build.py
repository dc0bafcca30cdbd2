"""The anatomical twin from a label map: walls and valves -> landmarks -> heart and torso meshes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from cardiotwin import labels as lab
from cardiotwin.anatomy.landmarks import find_landmarks
from cardiotwin.anatomy.mesh import MeshResult, heart_mesh, torso_mesh
from cardiotwin.anatomy.ct_body import is_ct
from cardiotwin.anatomy.torso import extend_torso
from cardiotwin.anatomy.walls import DEFAULT_VESSEL_LENGTHS_MM, MAX_WALL_SPACING_MM, build_walls
from cardiotwin.types import Image, LabelImage


CUT_FACE_FRACTION = 0.05


def torso_cut_by_view(labels: LabelImage) -> bool:
    """Whether the map's body covers more than ``CUT_FACE_FRACTION`` of a face of its grid (a cropped
    scan's body), not a whole torso with air around it (a vein's stump may still reach a face)."""
    arr = labels.array
    body = lab.labels_of(lab.BODY)
    faces = (arr[0], arr[-1], arr[:, 0], arr[:, -1], arr[:, :, 0], arr[:, :, -1])
    return any(np.isin(face, body).mean() > CUT_FACE_FRACTION for face in faces)


@dataclass
class Anatomy:
    """Everything the anatomy stages produce for one patient."""

    labels: LabelImage
    landmarks: dict[str, list]
    heart: MeshResult
    torso: MeshResult | None
    report: dict = field(default_factory=dict)
    torso_labels: LabelImage | None = None  # the extended torso label map, when the input had no torso


def build_anatomy(labels: LabelImage, edge_mm: float = 1.0, torso_heart_edge_mm: float = 2.0,
                  torso_skin_edge_mm: float = 8.0, vessel_lengths_mm: dict | None = None,
                  with_torso: bool = True, image: Image | None = None) -> Anatomy:
    """Walls, valves, vein stumps, landmarks, heart mesh and torso mesh (the map's own torso, or an
    extended torso built around the heart, :func:`cardiotwin.anatomy.torso.extend_torso`, fitted to
    the body and lungs of ``image`` when it is a CT in HU).

    Walls and valve planes are built on the heart mesh's own lattice (``edge_mm``, when walls of
    2-3 mm can be drawn at that size), so the mesh takes them voxel for voxel: built finer and
    resampled, a 2 mm valve disc loses or gains 10 % with the lattice's alignment (measured on
    MM-WHS 1002, 0.49 mm walls to a 1 mm mesh); built coarser, 2 mm atrial walls lose 13 %."""
    timings = {}
    start = time.perf_counter()
    walled, walls_report = build_walls(labels, vessel_lengths_mm=vessel_lengths_mm or DEFAULT_VESSEL_LENGTHS_MM,
                                       spacing_mm=edge_mm if edge_mm <= MAX_WALL_SPACING_MM else None)
    timings["walls_s"] = time.perf_counter() - start
    start = time.perf_counter()
    landmarks = find_landmarks(walled)
    timings["landmarks_s"] = time.perf_counter() - start
    start = time.perf_counter()
    heart = heart_mesh(walled, edge_mm=edge_mm)
    timings["heart_mesh_s"] = time.perf_counter() - start
    torso, extended, extension = None, None, "the label map has its own torso"
    if with_torso:
        body_cut = torso_cut_by_view(labels)
        if body_cut:  # a cropped CT's body: the extended torso (fitted to the image) replaces it
            walled = walled.with_array(np.where(np.isin(walled.array, lab.labels_of(lab.BODY)), 0, walled.array))
        if body_cut or lab.label("torso") not in np.unique(walled.array[::4, ::4, ::4]):
            start = time.perf_counter()
            ct = image if image is not None and is_ct(image) else None
            extended, extension = extend_torso(walled, spacing_mm=max(1.0, min(walled.spacing)), ct=ct)
            extension["map_torso"] = ("cut by the map's field of view: replaced" if body_cut else "none")
            if image is not None and ct is None:
                extension["image"] = ("not used: the torso is fitted to a CT in Hounsfield units only "
                                      "(fitting an MR body outline is not done yet)")
            timings["torso_extension_s"] = time.perf_counter() - start
        start = time.perf_counter()
        torso = torso_mesh(walled if extended is None else extended, heart_edge_mm=torso_heart_edge_mm,
                           skin_edge_mm=torso_skin_edge_mm)
        timings["torso_mesh_s"] = time.perf_counter() - start
    report = {"walls": walls_report, "heart_mesh": heart.report,
              "torso_mesh": torso.report if torso else "torso mesh not requested",
              "torso_extension": extension if torso else None,
              "timings_s": {k: round(v, 2) for k, v in timings.items()}}
    return Anatomy(walled, landmarks, heart, torso, report, extended)


