"""A cached, restartable pipeline stage: outputs written atomically, then a provenance record.

A stage of a case folder is a function that writes its output files into a folder. :func:`run_stage`
runs it in a hidden staging folder inside the case, moves each finished file into place, and writes
``provenance/<stage>.json`` last: the SHA-256 of every input file (named relative to the case, so a
case folder copied or moved elsewhere is still recognised), the stage's configuration, the package
version, the hashes of the outputs, the time taken, the host and the date. The stage is skipped when
its record exists and still matches (same inputs' contents, same configuration, same version,
outputs present and unchanged); a changed input or setting reruns it, and since its outputs are
the next stages' inputs, everything downstream reruns with it and nothing upstream does. A stage
killed part-way leaves no record, so it reruns from scratch; its staging folder is discarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cardiotwin import fields as F
from cardiotwin.errors import InputError, InputFileNotFoundError
from cardiotwin.io.atomic import write_json_atomic

_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's contents, or of a folder's (sorted relative names and file contents)."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0" + file_digest(f).encode())
        return h.hexdigest()
    if not p.is_file():
        raise InputFileNotFoundError(f"stage input not found: {p}")
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def config_digest(config: dict) -> str:
    """SHA-256 of a configuration as canonical JSON (key order and formatting do not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StageRun:
    """What :func:`run_stage` did: skipped (record matched) or ran, its outputs and its record."""

    name: str
    skipped: bool
    outputs: dict[str, Path]
    record: dict


def _version() -> str:
    from cardiotwin import __version__

    return __version__


def _input_key(case: Path, path: Path) -> str:
    """An input's name in the record: relative to the case when inside it, else the file name (an
    external image or ECG is recognised by its contents, wherever it lies)."""
    try:
        return str(path.resolve().relative_to(case.resolve()))
    except ValueError:
        return f"external:{path.name}"


def _expected(case: Path, name: str, inputs: dict[str, Path], config: dict) -> dict:
    return {"stage": name, "version": _version(), "config": config, "config_sha256": config_digest(config),
            "inputs": {role: {"file": _input_key(case, Path(p)), "sha256": file_digest(p)} for role, p in inputs.items()}}


def record_path(case: str | os.PathLike, name: str) -> Path:
    return Path(case) / F.PROVENANCE_DIR / f"{name}.json"


def current_record(case: str | os.PathLike, want: dict) -> dict | None:
    """The stage's record when it still matches ``want`` (:func:`_expected`: its inputs,
    configuration and version) and its outputs are present and unchanged, else None."""
    case = Path(case)
    path = record_path(case, want["stage"])
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a damaged record is no record: the stage reruns
    if any(record.get(k) != want[k] for k in ("version", "config_sha256")):
        return None
    if {r: v["sha256"] for r, v in record.get("inputs", {}).items()} != {r: v["sha256"] for r, v in want["inputs"].items()}:
        return None
    for rel, digest in record.get("outputs", {}).items():
        out = case / rel
        if not out.exists() or file_digest(out) != digest:
            return None
    return record


def run_stage(case: str | os.PathLike, name: str, inputs: dict[str, Path], config: dict,
              write: Callable[[Path], None], log: Callable[[str], None] = lambda msg: None,
              started: Callable[[str], None] = lambda name: None) -> StageRun:
    """Run stage ``name`` of the case folder unless its record matches (see the module docstring).

    ``inputs``: the files (or folders) it reads, by role; ``config``: its settings (JSON-able);
    ``write(folder)``: writes the stage's outputs into ``folder`` (file names relative to it, as they
    will lie in the case folder; subfolders allowed); ``log`` gets a line when the stage is skipped
    or done, ``started`` the stage's name when it starts to run (for a progress display)."""
    case = Path(case)
    expected = _expected(case, name, inputs, config)  # hashed before the stage runs: its inputs as read
    record = current_record(case, expected)
    if record is not None:
        log(f"{name}: up to date, skipped")
        return StageRun(name, True, {rel: case / rel for rel in record["outputs"]}, record)
    started(name)
    staging = case / f".staging-{name}"
    shutil.rmtree(staging, ignore_errors=True)  # a killed earlier attempt
    staging.mkdir(parents=True)
    start = time.perf_counter()
    try:
        try:
            write(staging)
        except BaseException as exc:
            exc.cardiotwin_stage = name  # which stage failed, for the cohort's record
            raise
        produced = sorted(p for p in staging.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
        if not produced:
            raise InputError(f"stage {name!r} wrote no output")
        stale = record_path(case, name)
        if stale.exists():
            stale.unlink()  # from here on the case holds no complete record of this stage
        outputs = {}
        for src in produced:
            rel = src.relative_to(staging)
            dst = case / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            outputs[str(rel)] = file_digest(src)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    record = {**expected, "outputs": outputs, "seconds": round(time.perf_counter() - start, 3),
              "host": socket.gethostname(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json_atomic(record_path(case, name), record)
    log(f"{name}: done in {record['seconds']:.1f} s")
    return StageRun(name, False, {rel: case / rel for rel in outputs}, record)
