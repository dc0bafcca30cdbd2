"""One patient, unattended: image (or label map, or phantom seed) and ECG to a calibrated twin.

The stages, each cached and restartable (:mod:`cardiotwin.pipeline.stage`), in the case folder laid
out by :mod:`cardiotwin.fields`:

1. ``phantom`` (with ``phantom=N``): the synthetic patient's image and labels in ``phantom/``;
2. ``segment`` (with an image and no labels): ``segmentation/labels.nii.gz`` and its QC report;
3. ``anatomy``: walls, valves, vein stumps, landmarks, heart and torso meshes;
4. ``fibres``: universal coordinates, fibres and conduction fields on the heart (``heart.vtu``);
5. ``lead_fields``: the electrodes' lead fields (``leadfields.npz``);
6. ``calibration`` (with an ECG): the parameters fitted to it and the calibrated beat in ``calibration/``;
7. ``report``: ``report.html``, one self-contained page of the case (:mod:`cardiotwin.report.case_report`).

Each stage reads only files an earlier stage (or the user) wrote, so its record's input hashes chain
the stages: a changed input or setting reruns that stage and those after it, nothing before.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cardiotwin import fields as F
from cardiotwin.calibration.config import CalibrationConfig
from cardiotwin.errors import InputError, InputFileNotFoundError
from cardiotwin.pipeline.stage import StageRun, record_path, run_stage
from cardiotwin.report.case_report import viz_missing
from cardiotwin.segmentation.builtin import builtin_weights

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



@dataclass(frozen=True)
class RunConfig:
    """Settings of every stage (``config.toml``: top-level keys, and a ``[calibration]`` table)."""

    phantom_spacing_mm: float = 1.0
    modality: str = "ct"
    label_convention: str = "auto"
    edge_mm: float = 1.0
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        data = dict(data)
        calibration = CalibrationConfig.from_dict(data.pop("calibration", {}))
        known = {f.name for f in dataclasses.fields(cls)} - {"calibration"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown settings {unknown} in the run configuration; known: {sorted(known)} "
                             "and a [calibration] table")
        return cls(calibration=calibration, **data)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise InputFileNotFoundError(f"configuration file not found: {p}")
        try:
            return cls.from_dict(tomllib.loads(p.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{p} is not valid TOML: {exc}") from None


def run_case(case: str | os.PathLike, *, image: str | os.PathLike | None = None,
             labels: str | os.PathLike | None = None, phantom: int | None = None,
             ecg: str | os.PathLike | None = None, config: RunConfig = RunConfig(),
             log: Callable[[str], None] = lambda msg: None,
             started: Callable[[str], None] = lambda name: None) -> dict[str, StageRun]:
    """Run (or resume) the pipeline of one case; returns each stage's :class:`StageRun`. ``log`` and
    ``started`` are passed to :func:`~cardiotwin.pipeline.stage.run_stage`."""
    if sum(x is not None for x in (image, labels, phantom)) == 0:
        raise InputError("give the case an image, a label map or a phantom seed")
    if phantom is not None and (image is not None or labels is not None):
        raise InputError("a phantom seed stands in for the image and labels: give one or the other")
    case = Path(case)
    case.mkdir(parents=True, exist_ok=True)
    runs: dict[str, StageRun] = {}

    def stage(name, inputs, settings, write):
        runs[name] = run_stage(case, name, inputs, settings, write, log, started)

    if phantom is not None:
        stage("phantom", {}, {"seed": phantom, "spacing_mm": config.phantom_spacing_mm, "modality": config.modality},
              lambda out: _phantom(out, phantom, config))
        image, labels = case / F.PHANTOM_DIR / F.PHANTOM_IMAGE, case / F.PHANTOM_DIR / F.PHANTOM_LABELS
    image = None if image is None else Path(image)
    if labels is None:
        weights = builtin_weights()
        stage("segment", {"image": image, "weights": weights}, {"modality": config.modality},
              lambda out: _segment(out, image, config))
        labels = case / F.SEGMENTATION_DIR / F.SEGMENTATION_LABELS
    labels = Path(labels)
    inputs = {"labels": labels, **({"image": image} if image is not None else {})}
    stage("anatomy", inputs, {"edge_mm": config.edge_mm, "label_convention": config.label_convention},
          lambda out: _anatomy(out, labels, image, config))
    stage("fibres", {k: case / f for k, f in (("mesh", F.HEART_MESH), ("labels", F.LABELS_WALLS),
                                               ("landmarks", F.LANDMARKS))}, {}, lambda out: _fibres(out, case))
    stage("lead_fields", {k: case / f for k, f in (("heart", F.HEART), ("torso", F.TORSO), ("landmarks", F.LANDMARKS))},
          {}, lambda out: _lead_fields(out, case))
    if ecg is not None:
        ecg = Path(ecg)
        stage("calibration", {"ecg": ecg, **{k: case / f for k, f in (("heart", F.HEART), ("torso", F.TORSO),
                                                                        ("lead_fields", F.LEAD_FIELDS))}},
              config.calibration.as_dict(), lambda out: _calibrate(out, case, ecg, config))
    sources = {"image": image, "labels": labels, **{k: case / f for k, f in (
        ("walls", F.LABELS_WALLS), ("mesh_report", F.MESH_REPORT), ("heart", F.HEART), ("torso", F.TORSO))}}
    if ecg is not None:
        sources["calibration"] = case / F.CALIBRATION_DIR
    records = {f"record_{n}": record_path(case, n) for n in runs}
    stage("report", {k: v for k, v in {**sources, **records}.items() if v is not None},
          {"pictures": viz_missing() is None}, lambda out: _report(out, case, image, labels))
    return runs


# ------------------------------------------------------------------------------ the stages' work


def _phantom(out: Path, seed: int, config: RunConfig) -> None:
    from cardiotwin.io.phantom import write_phantom
    from cardiotwin.phantom import generate_phantom

    write_phantom(generate_phantom(seed=seed, spacing=config.phantom_spacing_mm, modality=config.modality),
                  out / F.PHANTOM_DIR)


def _segment(out: Path, image: Path, config: RunConfig) -> None:
    from cardiotwin.io import read_image, write_image, write_json_atomic
    from cardiotwin.segmentation import segment

    result = segment(read_image(image), modality=config.modality)
    write_image(result.labels, out / F.SEGMENTATION_DIR / F.SEGMENTATION_LABELS)
    write_json_atomic(out / F.SEGMENTATION_DIR / F.SEGMENTATION_REPORT, result.report)


def _anatomy(out: Path, labels: Path, image: Path | None, config: RunConfig) -> None:
    from cardiotwin.anatomy.build import build_anatomy
    from cardiotwin.io import read_image
    from cardiotwin.io.anatomy import write_anatomy
    from cardiotwin.io.image import read_label_map

    scan = read_image(image) if image is not None else None
    label_map, _ = read_label_map(labels, scan, config.label_convention)
    write_anatomy(build_anatomy(label_map, edge_mm=config.edge_mm, image=scan), out)


def _fibres(out: Path, case: Path) -> None:
    from cardiotwin.io import read_labels, read_mesh
    from cardiotwin.io.anatomy import read_landmarks
    from cardiotwin.pipeline.twin_folder import twin_heart, write_twin_heart

    labels = read_labels(case / F.LABELS_WALLS, convention="cardiotwin")
    write_twin_heart(twin_heart(read_mesh(case / F.HEART_MESH), labels, read_landmarks(case / F.LANDMARKS)), out)


def _lead_fields(out: Path, case: Path) -> None:
    from cardiotwin.io import read_mesh
    from cardiotwin.io.anatomy import read_landmarks
    from cardiotwin.io.leadfield import write_lead_fields
    from cardiotwin.pipeline.twin_folder import compute_twin_lead_fields
    from cardiotwin.twin import Twin

    twin = Twin(read_mesh(case / F.HEART), read_landmarks(case / F.LANDMARKS), read_mesh(case / F.TORSO))
    write_lead_fields(compute_twin_lead_fields(twin, folder=str(case)), out / F.LEAD_FIELDS)


def _calibrate(out: Path, case: Path, ecg: Path, config: RunConfig) -> None:
    from cardiotwin.calibration.optimise import calibrate
    from cardiotwin.io import read_ecg
    from cardiotwin.io.twin import read_twin
    from cardiotwin.pipeline.calibration_folder import write_result

    twin = read_twin(case)
    if twin.lead_fields is None:
        raise InputError(f"the lead fields in {case} were not made for its heart and torso")
    write_result(calibrate(twin, read_ecg(ecg), config.calibration), out / F.CALIBRATION_DIR, twin=twin)


def _report(out: Path, case: Path, image: Path | None, labels: Path) -> None:
    from cardiotwin.io import write_text_atomic
    from cardiotwin.report.case_report import CaseFiles, draw_pictures, report_html

    files = CaseFiles(case, image, labels)
    write_text_atomic(out / F.REPORT, report_html(files, draw_pictures(files, out), f"case {case.name}"))
