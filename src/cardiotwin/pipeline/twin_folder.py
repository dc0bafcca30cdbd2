"""The twin folder of one patient built from a label map, and its cached lead fields."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.io.leadfield import write_lead_fields
from cardiotwin.io.twin import cached_lead_fields
from cardiotwin.twin import Twin
from cardiotwin.types import LabelImage, TetMesh


def twin_heart(mesh: TetMesh, labels: LabelImage, landmarks: dict, timings: dict | None = None) -> TetMesh:
    """The twin's heart: universal coordinates, fibres and conduction fields on the anatomy's tagged
    mesh (their times, s, go into ``timings`` as ``coordinates_fibres_s`` and ``conduction_s``)."""
    from cardiotwin.anatomy.fibres import add_coordinates_and_fibres
    from cardiotwin.electrophysiology.conduction import add_conduction_fields

    timings = {} if timings is None else timings
    start = time.perf_counter()
    heart = add_coordinates_and_fibres(mesh, labels, landmarks)
    timings["coordinates_fibres_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    heart = add_conduction_fields(heart, labels)
    timings["conduction_s"] = round(time.perf_counter() - start, 2)
    return heart


def write_twin_heart(heart: TetMesh, folder: str | os.PathLike, opencarp: bool = True) -> list[Path]:
    """``heart.vtu`` and, with ``opencarp``, ``heart.pts/.elem/.lon``."""
    from cardiotwin.io.mesh import write_mesh
    from cardiotwin.io.opencarp import write_opencarp

    out = Path(folder)
    return [write_mesh(heart, out / F.HEART)] + (list(write_opencarp(heart, out / F.opencarp_base(F.HEART)))
                                                 if opencarp else [])


def compute_twin_lead_fields(twin: Twin, electrodes_csv: str | os.PathLike | None = None, folder="the twin"):
    """Lead fields of the twin's torso on its heart, for the standard electrodes placed from its
    landmarks or those of a ``name,x,y,z`` CSV."""
    from cardiotwin.ecg.leadfield import compute_lead_fields
    from cardiotwin.ecg.leads import standard_electrodes
    from cardiotwin.errors import AnatomyError
    from cardiotwin.io.electrodes import electrodes_from_csv

    if twin.torso is None:
        raise AnatomyError(f"no torso mesh in the twin ({folder}/torso.vtu): a torso ECG needs one; "
                           "the infinite-medium pseudo-ECG is in cardiotwin.ecg.pseudo")
    electrodes = (electrodes_from_csv(electrodes_csv, twin.torso, heart=twin.heart) if electrodes_csv
                  else standard_electrodes(twin.torso, twin.landmarks))
    return compute_lead_fields(twin.torso, twin.heart, electrodes)


def ensure_lead_fields(twin: Twin, folder: str | os.PathLike, electrodes_csv: str | os.PathLike | None = None):
    """The twin's lead fields: loaded from ``folder/leadfields.npz`` when they were made for this
    heart and torso (:func:`cardiotwin.io.twin.cached_lead_fields`), else computed (standard electrodes from the
    landmarks, or a CSV) and cached there."""
    cache = Path(folder) / F.LEAD_FIELDS
    if twin.lead_fields is None and electrodes_csv is None:
        twin.lead_fields = cached_lead_fields(Path(folder), twin.heart, twin.torso)
    if twin.lead_fields is None:
        twin.lead_fields = compute_twin_lead_fields(twin, electrodes_csv, folder)
        write_lead_fields(twin.lead_fields, cache)
    return twin.lead_fields


def build_twin(labels, folder: str | os.PathLike, edge_mm: float = 1.0, opencarp: bool = True, image=None):
    """Label map -> twin folder: walls, vein stumps, landmarks, heart and (own or extended) torso
    meshes, coordinates, fibres, conduction fields and lead fields; returns (:class:`Twin`, the
    anatomy, whose ``report["timings_s"]`` has every stage's time). A CT ``image`` the labels come
    from shapes the extended torso."""
    from cardiotwin.anatomy.build import build_anatomy
    from cardiotwin.io.anatomy import write_anatomy

    out = Path(folder)
    anatomy = build_anatomy(labels, edge_mm=edge_mm, image=image)
    timings = anatomy.report["timings_s"]
    write_anatomy(anatomy, out)
    heart = twin_heart(anatomy.heart.mesh, anatomy.labels, anatomy.landmarks, timings)
    write_twin_heart(heart, out, opencarp)
    twin = Twin(heart, anatomy.landmarks, anatomy.torso.mesh if anatomy.torso is not None else None)
    if twin.torso is not None:
        start = time.perf_counter()
        ensure_lead_fields(twin, out)
        timings["lead_fields_s"] = round(time.perf_counter() - start, 2)
    return twin, anatomy
