"""A cohort: :func:`cardiotwin.pipeline.run.run_case` mapped over the rows of a CSV on Dask.

One row per case: ``id``, one of ``image`` / ``labels`` / ``phantom``, optional ``ecg``, and
optional overrides of :class:`~cardiotwin.pipeline.run.RunConfig` fields (``edge_mm``, ``modality``,
...; ``calibration.budget`` style names for calibration settings). Relative paths are relative to
the CSV's folder. Each case runs in ``DIR/<id>/`` as ``cardiotwin run`` lays it out, on a Dask
``LocalCluster`` by default or on an existing scheduler (e.g. one dask-jobqueue started on SLURM).
A failing case is recorded (stage, error, traceback) in ``DIR/<id>/failure.json`` and the others go
on; since every stage is cached, rerunning a killed cohort resumes each case where it stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cardiotwin import fields as F
from cardiotwin.errors import InputError, InputFileNotFoundError
from cardiotwin.io.atomic import read_json, write_json_atomic
from cardiotwin.pipeline.run import RunConfig, run_case

SOURCES = ("image", "labels", "phantom")
FAILURE = "failure.json"


@dataclass(frozen=True)
class Case:
    """One row of the cohort table."""

    id: str
    image: str | None = None
    labels: str | None = None
    phantom: int | None = None
    ecg: str | None = None
    config: RunConfig = RunConfig()


def read_cohort(path: str | os.PathLike, base: RunConfig = RunConfig()) -> list[Case]:
    """The cases of a cohort CSV (see the module docstring), validated before anything runs."""
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"cohort table not found: {p}")
    with open(p, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "id" not in rows[0]:
        raise InputError(f"{p}: a cohort table needs a header with 'id' and one of {SOURCES} per row")
    cases, seen = [], set()
    for n, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        cid = row.pop("id")
        if not cid or cid in seen or "/" in cid:
            raise InputError(f"{p}, line {n}: case id {cid!r} is empty, repeated or contains '/'")
        seen.add(cid)
        given = [s for s in SOURCES if row.get(s)]
        if len(given) != 1:
            raise InputError(f"{p}, line {n} ({cid}): give exactly one of {SOURCES}, got {given or 'none'}")
        paths = {k: str((p.parent / v).resolve()) if (v := row.pop(k, "")) else None for k in ("image", "labels", "ecg")}
        phantom = row.pop("phantom", "") or None
        top = {k: _number(v) for k, v in row.items() if v and not k.startswith("calibration.")}
        cal = {k.removeprefix("calibration."): _number(v) for k, v in row.items() if v and k.startswith("calibration.")}
        try:
            config = dataclasses.replace(RunConfig.from_dict({**_plain(base), **top}),
                                         calibration=base.calibration.replace(**cal))
        except TypeError as exc:
            raise InputError(f"{p}, line {n} ({cid}): {exc}") from None
        cases.append(Case(cid, paths["image"], paths["labels"], None if phantom is None else int(phantom),
                          paths["ecg"], config))
    return cases


def _plain(config: RunConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "calibration"}


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_one(case: Case, out: str | os.PathLike) -> dict:
    """Run one case; never raises: a failure is returned (and written) with its stage and traceback.
    The result's ``summary`` is the case's row of the cohort summary (:func:`case_summary`), read on
    the worker, beside the case's files."""
    folder = Path(out) / case.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILURE).unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        runs = run_case(folder, image=case.image, labels=case.labels, phantom=case.phantom, ecg=case.ecg,
                        config=case.config)
    except Exception as exc:  # noqa: BLE001 -- one case's failure must not stop the cohort
        failure = {"id": case.id, "status": "failed", "stage": getattr(exc, "cardiotwin_stage", "setup"),
                   "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                   "seconds": round(time.perf_counter() - start, 2)}
        write_json_atomic(folder / FAILURE, failure)
        return {**failure, "summary": case_summary(folder, failure)}
    done = {"id": case.id, "status": "done", "seconds": round(time.perf_counter() - start, 2),
            "stage_seconds": {n: r.record.get("seconds") for n, r in runs.items()},
            "skipped": [n for n, r in runs.items() if r.skipped]}
    return {**done, "summary": case_summary(folder, done)}


def run_cohort(cases: list[Case], out: str | os.PathLike, scheduler: str | None = None, workers: int = 1,
               progress: Callable[[dict], None] = lambda result: None) -> list[dict]:
    """Every case on Dask (a ``LocalCluster`` of ``workers`` single-threaded processes, or the
    scheduler at ``scheduler``); results in the cases' order, ``progress`` called as each ends."""
    from dask.distributed import Client, LocalCluster, as_completed

    Path(out).mkdir(parents=True, exist_ok=True)
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    try:
        with Client(scheduler or cluster) as client:
            futures = {client.submit(run_one, case, str(out), key=f"case-{case.id}", pure=False): case.id
                       for case in cases}
            results = {}
            for future in as_completed(futures):
                result = future.result()
                results[futures[future]] = result
                progress(result)
    finally:
        if cluster is not None:
            cluster.close()
    return [results[c.id] for c in cases]


SUMMARY_VOLUMES = ("lv_blood", "rv_blood", "la_blood", "ra_blood", "lv_myocardium")


def case_summary(folder: str | os.PathLike, result: dict) -> dict:
    """One row of the cohort summary: ``result`` (:func:`run_one`'s) with the case's chamber
    volumes (ml, from the labels), heart-mesh quality, median per-lead correlation per wave and
    calibrated scalar parameters, read from the case folder; absent where a stage did not run."""
    folder = Path(folder)

    def read(rel: str) -> dict:
        return read_json(folder / rel) or {}

    mesh = read(F.MESH_REPORT)
    volumes = {**{k: v.get("labels_ml") for k, v in mesh.get("torso_mesh", {}).get("volumes", {}).items()},
               **{k: v.get("labels_ml") for k, v in mesh.get("heart_mesh", {}).get("volumes", {}).items()}}
    if not volumes:  # a label map without a torso mesh: the segmentation's table
        volumes = read(f"{F.SEGMENTATION_DIR}/{F.SEGMENTATION_REPORT}").get("volumes_ml", {})
    quality = mesh.get("heart_mesh", {}).get("quality", {})
    cal = read(f"{F.CALIBRATION_DIR}/{F.CALIBRATION}")
    row = {"id": result["id"], "status": result["status"], "seconds": result.get("seconds"),
           "failed_stage": result.get("stage"), "error": result.get("error")}
    row.update({f"{v}_ml": volumes.get(v) for v in SUMMARY_VOLUMES})
    row.update({"heart_nodes": quality.get("nodes"), "heart_tets": quality.get("tets"),
                "min_dihedral_deg": quality.get("dihedral_deg", {}).get("min"),
                "median_radius_ratio": quality.get("radius_ratio", {}).get("median")})
    row.update({f"{w}_median_r": r for w, r in cal.get("median_correlation", {}).items()
                if w in cal.get("stages", [])})
    row.update({k: v for k, v in cal.get("parameters", {}).items() if isinstance(v, (int, float))})
    row.update({f"{s}_s": t for s, t in result.get("stage_seconds", {}).items()})
    return row
