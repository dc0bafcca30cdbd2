"""One patient's label map -> twin folder and one simulated 12-lead ECG (``cardiotwin build``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cardiotwin import fields as F
from cardiotwin.anatomy.build import Anatomy
from cardiotwin.ecg.features import simulated_beat_features
from cardiotwin.errors import InputError
from cardiotwin.io import read_image, write_ecg_csv, write_json_atomic
from cardiotwin.io.image import read_label_map
from cardiotwin.io.simulation import write_simulation
from cardiotwin.pipeline.twin_folder import build_twin
from cardiotwin.twin import Simulation, Twin, simulate
from cardiotwin.types import Image


@dataclass
class BuildResult:
    twin: Twin
    anatomy: Anatomy
    simulation: Simulation
    summary: dict
    paths: list[Path] = field(default_factory=list)
    scan: Image | None = None  # the image given with the labels


def build_case(labels_path: str | os.PathLike, out: str | os.PathLike, image: str | os.PathLike | None = None,
               convention: str = "auto", edge_mm: float = 1.0) -> BuildResult:
    """Read the labels (any known convention, or a TotalSegmentator mask folder), build the twin in
    ``out`` (:func:`cardiotwin.pipeline.twin_folder.build_twin`), simulate one beat with default parameters and
    write ``simulation/``, ``ecg.png`` and ``build_report.json`` (convention, every stage's time,
    veins, torso extension, QRS duration and axis measured as on a patient's ECG). A CT ``image``
    (on the labels' grid) shapes the extended torso to its body outline and lungs."""
    from cardiotwin.report.ecg_plot import plot_12_lead

    start = time.perf_counter()
    labels_path, out = Path(labels_path), Path(out)
    scan = read_image(image) if image else None
    label_map, used = read_label_map(labels_path, scan, convention)
    twin, anatomy = build_twin(label_map, out, edge_mm=edge_mm, image=scan)
    t0 = time.perf_counter()
    sim = simulate(twin, duration_ms=1000.0)
    try:
        start_ms = sim.summary["ventricular_start_ms"]
        qrs = (sim.ecg.time_ms >= start_ms) & (sim.ecg.time_ms <= start_ms + sim.summary["ventricular_activation_ms"])
        power = (sim.ecg.signals[:, qrs] ** 2).sum(axis=0)
        measured = simulated_beat_features(sim.ecg, r_ms=float(sim.ecg.time_ms[qrs][np.argmax(power)]))
        ecg = {k: measured[k] for k in ("qrs_ms", "qrs_axis_deg", "qt_ms")}
    except InputError as exc:  # the twin is built; say why its beat could not be measured
        ecg = {"qrs_ms": None, "qrs_axis_deg": None, "qt_ms": None, "not_measured": str(exc)}
    anatomy.report["timings_s"]["simulation_s"] = round(time.perf_counter() - t0, 2)
    paths = list(write_simulation(twin, sim, out / F.SIMULATION_DIR).values())
    paths += [write_ecg_csv(sim.ecg, out / F.SIMULATION_DIR / F.ECG_CSV),
              plot_12_lead(sim.ecg, out / "ecg.png", title=f"{labels_path.name}: simulated 12-lead ECG")]
    summary = {"labels": str(labels_path), "label_convention": used,
               "total_s": round(time.perf_counter() - start, 1), "timings_s": anatomy.report["timings_s"],
               "veins": anatomy.report["walls"].get("veins"), "torso_extension": anatomy.report["torso_extension"],
               "ecg": ecg, "simulation": sim.summary}
    paths.append(write_json_atomic(out / F.BUILD_REPORT, summary))
    return BuildResult(twin, anatomy, sim, summary, paths, scan)
