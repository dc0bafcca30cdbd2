"""ECG I/O: WFDB records (PhysioNet; wfdb-python) and CSV, always returned in mV.

CSV layout: a header row, an optional ``time_ms`` (or ``time_s``) column, then one column per lead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import wfdb

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidSignalError
from cardiotwin.io.atomic import atomic_path, temporary_sibling
from cardiotwin.types import Ecg

_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


def read_ecg(path: str | os.PathLike, require: Sequence[str] | None = None, fs: float | None = None) -> Ecg:
    """Read a WFDB record (``.hea``/record name) or a CSV file.

    ``require`` lists leads that must be present (a :class:`MissingLeadsError` names the missing
    ones); ``fs`` is needed only for a CSV file without a time column.
    """
    p = Path(path)
    if p.suffix.lower() == ".csv":
        ecg = _read_csv(p, fs)
    else:
        ecg = _read_wfdb(p)
    if require:
        ecg.require(require)
    return ecg


def write_ecg_csv(ecg: Ecg, path: str | os.PathLike) -> Path:
    """Write ``time_ms`` and one column per lead (mV) atomically."""
    table = pd.DataFrame(ecg.signals.T, columns=list(ecg.leads))
    table.insert(0, "time_ms", ecg.time_ms)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)


def write_ecg_wfdb(ecg: Ecg, path: str | os.PathLike) -> Path:
    """Write a WFDB record (format 16, mV) as ``path.hea`` + ``path.dat``; returns the header path.

    The data file is moved into place before the header, so a record that looks complete
    (has a header) always has its data.
    """
    base = Path(path)
    if base.suffix in (".hea", ".dat"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    stage = temporary_sibling(base)
    stage.mkdir()
    try:
        wfdb.wrsamp(
            base.name, fs=ecg.fs, units=["mV"] * len(ecg.leads), sig_name=list(ecg.leads),
            p_signal=ecg.signals.T, fmt=["16"] * len(ecg.leads), write_dir=str(stage),
        )
        os.replace(stage / f"{base.name}.dat", base.with_suffix(".dat"))
        os.replace(stage / f"{base.name}.hea", base.with_suffix(".hea"))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return base.with_suffix(".hea")


def _read_wfdb(p: Path) -> Ecg:
    record = p.with_suffix("") if p.suffix.lower() in (".hea", ".dat", ".mat") else p
    header = record.with_name(record.name + ".hea")
    if not header.exists():
        raise InputFileNotFoundError(
            f"ECG record not found: {header} (give a WFDB record name/.hea file or a .csv file)"
        )
    try:
        rec = wfdb.rdrecord(str(record))
    except Exception as exc:  # wfdb raises many types for broken records
        raise CorruptFileError(f"cannot read WFDB record {record}: {type(exc).__name__}: {exc}") from None
    if rec.p_signal is None:
        raise CorruptFileError(f"WFDB record {record} has no physical signal")
    scale = np.array([_unit_scale(u, record) for u in rec.units])
    return Ecg(rec.p_signal.T * scale[:, None], rec.fs, tuple(rec.sig_name))


def _unit_scale(unit: str, record: Path) -> float:
    key = (unit or "").strip().lower()
    if key not in _TO_MV:
        raise InvalidSignalError(f"{record}: signal unit {unit!r} is not a voltage (mV, uV, V)")
    return _TO_MV[key]


def _read_csv(p: Path, fs: float | None) -> Ecg:
    if not p.exists():
        raise InputFileNotFoundError(f"ECG file not found: {p}")
    try:
        table = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot parse ECG CSV {p}: {exc}") from None
    columns = {c.strip().lower(): c for c in table.columns}
    time_col, to_ms = next(((columns[k], f) for k, f in (("time_ms", 1.0), ("time_s", 1e3)) if k in columns),
                           (None, None))
    if time_col is not None:
        t = table.pop(time_col).to_numpy(dtype=float) * to_ms
        steps = np.diff(t)
        if len(steps) == 0 or steps.min() <= 0 or not np.allclose(steps, steps.mean(), rtol=1e-3):
            raise InvalidSignalError(f"{p}: time column must increase with a constant step")
        fs = 1000.0 / steps.mean()
    elif fs is None:
        raise InvalidSignalError(f"{p}: no time_ms/time_s column; pass the sampling rate (fs=..., CLI --fs)")
    try:
        signals = table.to_numpy(dtype=float).T
    except ValueError:
        raise CorruptFileError(f"{p}: lead columns must be numeric (mV)") from None
    return Ecg(signals, fs, tuple(str(c).strip() for c in table.columns))
