"""The twin folder of one patient built from a label map, and its cached lead fields."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cardiotwin import fields as F
from cardiotwin.io.leadfield import write_lead_fields
from cardiotwin.io.twin import cached_lead_fields
from cardiotwin.twin import Twin


def ensure_lead_fields(twin: Twin, folder: str | os.PathLike, electrodes_csv: str | os.PathLike | None = None):
    """The twin's lead fields: loaded from ``folder/leadfields.npz`` when they were made for this
    heart and torso (:func:`cardiotwin.io.twin.cached_lead_fields`), else computed (standard electrodes from the
    landmarks, or a CSV) and cached there."""
    from cardiotwin.ecg.leadfield import compute_lead_fields
    from cardiotwin.ecg.leads import standard_electrodes
    from cardiotwin.errors import AnatomyError
    from cardiotwin.io.electrodes import electrodes_from_csv

    cache = Path(folder) / F.LEAD_FIELDS
    if twin.lead_fields is None and electrodes_csv is None:
        twin.lead_fields = cached_lead_fields(Path(folder), twin.heart, twin.torso)
    if twin.lead_fields is None:
        if twin.torso is None:
            raise AnatomyError(f"no torso mesh in the twin ({folder}/torso.vtu): a torso ECG needs one; "
                               "the infinite-medium pseudo-ECG is in cardiotwin.ecg.pseudo")
        electrodes = (electrodes_from_csv(electrodes_csv, twin.torso, heart=twin.heart) if electrodes_csv
                      else standard_electrodes(twin.torso, twin.landmarks))
        twin.lead_fields = compute_lead_fields(twin.torso, twin.heart, electrodes)
        write_lead_fields(twin.lead_fields, cache)
    return twin.lead_fields


def build_twin(labels, folder: str | os.PathLike, edge_mm: float = 1.0, opencarp: bool = True, image=None):
    """Label map -> twin folder: walls, vein stumps, landmarks, heart and (own or extended) torso
    meshes, coordinates, fibres, conduction fields and lead fields; returns (:class:`Twin`, the
    anatomy, whose ``report["timings_s"]`` has every stage's time). A CT ``image`` the labels come
    from shapes the extended torso."""
    from cardiotwin.anatomy.build import build_anatomy
    from cardiotwin.anatomy.fibres import add_coordinates_and_fibres
    from cardiotwin.electrophysiology.conduction import add_conduction_fields
    from cardiotwin.io.anatomy import write_anatomy
    from cardiotwin.io.mesh import write_mesh
    from cardiotwin.io.opencarp import write_opencarp

    out = Path(folder)
    anatomy = build_anatomy(labels, edge_mm=edge_mm, image=image)
    timings = anatomy.report["timings_s"]
    write_anatomy(anatomy, out)
    start = time.perf_counter()
    heart = add_coordinates_and_fibres(anatomy.heart.mesh, anatomy.labels, anatomy.landmarks)
    timings["coordinates_fibres_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    heart = add_conduction_fields(heart, anatomy.labels)
    timings["conduction_s"] = round(time.perf_counter() - start, 2)
    write_mesh(heart, out / F.HEART)
    if opencarp:
        write_opencarp(heart, out / F.opencarp_base(F.HEART))
    twin = Twin(heart, anatomy.landmarks, anatomy.torso.mesh if anatomy.torso is not None else None)
    if twin.torso is not None:
        start = time.perf_counter()
        ensure_lead_fields(twin, out)
        timings["lead_fields_s"] = round(time.perf_counter() - start, 2)
    return twin, anatomy
