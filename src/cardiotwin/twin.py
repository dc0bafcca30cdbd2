"""The digital twin of one patient: heart mesh with its fields, landmarks, torso and lead fields,
and the forward model ``simulate(twin, θ) -> activation, repolarisation, 12-lead ECG``.

A twin lives in a folder (the case folder of the pipeline):

    heart.vtu        heart mesh with UVC/UAC, fibres and conduction fields
    landmarks.json   anatomical landmarks (mm)
    torso.vtu        torso mesh (optional)
    leadfields.npz   electrode lead fields projected onto the heart nodes (optional)

Everything that does not depend on θ (eikonal topology, lead-field weights) is built once when the
:class:`ForwardModel` is created, so each simulation costs one eikonal solve and one fast ECG.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cardiotwin.electrophysiology.action_potential import ApShape
from cardiotwin.electrophysiology.conduction import SinusRhythmModel
from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.electrophysiology.repolarisation import apd_field, repolarisation_times
from cardiotwin.errors import InputFileNotFoundError
from cardiotwin.io.mesh import read_mesh, write_mesh
from cardiotwin.types import Ecg, TetMesh


@dataclass
class Twin:
    """A patient's heart (with fields), landmarks and, when built, torso and lead fields."""

    heart: TetMesh
    landmarks: dict
    torso: TetMesh | None = None
    lead_fields: object | None = None  # cardiotwin.ecg.leadfield.LeadFields

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Twin":
        root = Path(folder)
        for name in ("heart.vtu", "landmarks.json"):
            if not (root / name).exists():
                raise InputFileNotFoundError(
                    f"{root / name} not found: a twin folder holds heart.vtu and landmarks.json "
                    "(made by `cardiotwin mesh` + `cardiotwin fibres`, or `cardiotwin demo`)"
                )
        landmarks = read_landmarks(root / "landmarks.json")
        torso = read_mesh(root / "torso.vtu") if (root / "torso.vtu").exists() else None
        heart = read_mesh(root / "heart.vtu")
        return cls(heart, landmarks, torso, _cached_lead_fields(root, heart, torso))


def read_landmarks(path: str | os.PathLike) -> dict:
    """Landmarks written by :func:`cardiotwin.anatomy.landmarks.write_landmarks` (or a plain dict)."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"landmarks not found: {p} (made by `cardiotwin mesh`)")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        from cardiotwin.errors import CorruptFileError

        raise CorruptFileError(f"{p} is not valid JSON: {exc}") from None
    return data.get("landmarks", data)


def _cached_lead_fields(folder: Path, heart: TetMesh, torso: TetMesh | None):
    """``folder/leadfields.npz`` when it was made for this heart and torso
    (:meth:`~cardiotwin.ecg.leadfield.LeadFields.made_for`), else None (absent or stale)."""
    from cardiotwin.ecg.leadfield import LeadFields

    cache = folder / "leadfields.npz"
    if not cache.exists():
        return None
    lead_fields = LeadFields.load(cache)
    return lead_fields if lead_fields.made_for(heart, torso) else None


def ensure_lead_fields(twin: Twin, folder: str | os.PathLike, electrodes_csv: str | os.PathLike | None = None):
    """The twin's lead fields: loaded from ``folder/leadfields.npz`` when they were made for this
    heart and torso (:func:`_cached_lead_fields`), else computed (standard electrodes from the
    landmarks, or a CSV) and cached there."""
    from cardiotwin.ecg.leadfield import compute_lead_fields
    from cardiotwin.ecg.leads import electrodes_from_csv, standard_electrodes
    from cardiotwin.errors import AnatomyError

    cache = Path(folder) / "leadfields.npz"
    if twin.lead_fields is None and electrodes_csv is None:
        twin.lead_fields = _cached_lead_fields(Path(folder), twin.heart, twin.torso)
    if twin.lead_fields is None:
        if twin.torso is None:
            raise AnatomyError(f"no torso mesh in the twin ({folder}/torso.vtu): a torso ECG needs one; "
                               "the infinite-medium pseudo-ECG is in cardiotwin.ecg.pseudo")
        electrodes = (electrodes_from_csv(electrodes_csv, twin.torso, heart=twin.heart) if electrodes_csv
                      else standard_electrodes(twin.torso, twin.landmarks))
        twin.lead_fields = compute_lead_fields(twin.torso, twin.heart, electrodes)
        twin.lead_fields.save(cache)
    return twin.lead_fields


def build_twin(labels, folder: str | os.PathLike, edge_mm: float = 1.0, opencarp: bool = True, image=None):
    """Label map -> twin folder: walls, vein stumps, landmarks, heart and (own or extended) torso
    meshes, coordinates, fibres, conduction fields and lead fields; returns (:class:`Twin`, the
    anatomy, whose ``report["timings_s"]`` has every stage's time). A CT ``image`` the labels come
    from shapes the extended torso."""
    from cardiotwin.anatomy.build import build_anatomy, write_anatomy
    from cardiotwin.anatomy.fibres import add_coordinates_and_fibres
    from cardiotwin.electrophysiology.conduction import add_conduction_fields
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
    write_mesh(heart, out / "heart.vtu")
    if opencarp:
        write_opencarp(heart, out / "heart")
    twin = Twin(heart, anatomy.landmarks, anatomy.torso.mesh if anatomy.torso is not None else None)
    if twin.torso is not None:
        start = time.perf_counter()
        ensure_lead_fields(twin, out)
        timings["lead_fields_s"] = round(time.perf_counter() - start, 2)
    return twin, anatomy


@dataclass
class Simulation:
    """Activation and repolarisation times (ms, per heart node) of one parameter set."""

    params: EpParameters
    activation: np.ndarray
    repolarisation: np.ndarray
    apd: np.ndarray
    summary: dict = field(default_factory=dict)
    ecg: Ecg | None = None

    def as_fields(self) -> dict[str, np.ndarray]:
        return {"activation_ms": self.activation, "repolarisation_ms": self.repolarisation, "apd_ms": self.apd}


class ForwardModel:
    """θ -> activation, repolarisation and (with lead fields) the 12-lead ECG, for one twin."""

    def __init__(self, twin: Twin, shape: ApShape | None = None):
        self.twin = twin
        self.model = SinusRhythmModel(twin.heart, twin.landmarks)
        self.shape = shape or ApShape()

    def simulate_batch(self, params: list[EpParameters], fs: float = 1000.0, duration_ms: float | None = None,
                       with_ecg: bool = True) -> list[Simulation]:
        ats = self.model.activation_batch(params)
        out = []
        for p, at in zip(params, ats):
            apd = apd_field(self.twin.heart, p)
            rt = repolarisation_times(at, apd)
            sim = Simulation(p, at, rt, apd, self.model.summary(at))
            if with_ecg and self.twin.lead_fields is not None:
                end = duration_ms or float(np.nanmax(np.where(np.isfinite(rt), rt, np.nan))) + 80.0
                sim.ecg = self.twin.lead_fields.ecg(at, rt, self.shape, fs=fs, duration_ms=end)
            out.append(sim)
        return out

    def simulate(self, params: EpParameters | None = None, **kwargs) -> Simulation:
        return self.simulate_batch([params or EpParameters()], **kwargs)[0]


def simulate(twin: Twin, params: EpParameters | None = None, **kwargs) -> Simulation:
    """One simulation of the twin (builds the forward model; keep a :class:`ForwardModel` to reuse it)."""
    return ForwardModel(twin).simulate(params, **kwargs)


def write_simulation(twin: Twin, sim: Simulation, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``heart_ep.vtu`` (mesh with activation/repolarisation/APD fields) and ``ep_summary.json``."""
    from cardiotwin.io.atomic import write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fields = {k: np.where(np.isfinite(v), v, np.nan) for k, v in sim.as_fields().items()}
    paths = {"mesh": write_mesh(twin.heart.with_fields(point_data=fields), out / "heart_ep.vtu"),
             "summary": write_json_atomic(out / "ep_summary.json", {"summary": sim.summary,
                                                                     "params": sim.params.as_dict()})}
    return paths
