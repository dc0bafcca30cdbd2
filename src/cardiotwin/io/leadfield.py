"""Lead-field files: the electrodes' lead fields on the heart nodes, with their provenance (``.npz``)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from cardiotwin.ecg.leadfield import LeadFields
from cardiotwin.errors import CorruptFileError, InputFileNotFoundError, InvalidParameterError
from cardiotwin.io.atomic import atomic_path

FORMAT = "cardiotwin.leadfields/1"


def write_lead_fields(lead_fields: LeadFields, path: str | os.PathLike) -> Path:
    """Write lead fields to a ``.npz`` file atomically (format :data:`FORMAT`)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, format=np.array(FORMAT), names=np.array(lead_fields.names, dtype=str),
                     positions=lead_fields.positions, weights=lead_fields.weights,
                     reference=np.array(lead_fields.reference or ""), info=np.array(json.dumps(lead_fields.info, default=str)))
    return target


def read_lead_fields(path: str | os.PathLike) -> LeadFields:
    """Read lead fields written by :func:`write_lead_fields`."""
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"lead-field file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as data:
            keys = set(data.files)
            need = {"format", "names", "positions", "weights", "reference", "info"}
            if not need <= keys:
                raise CorruptFileError(f"{p} is not a cardiotwin lead-field file: it lacks {sorted(need - keys)}")
            fmt = str(data["format"])
            if fmt != FORMAT:
                raise CorruptFileError(f"{p} has format {fmt!r}, expected {FORMAT!r}")
            names = tuple(str(n) for n in data["names"])
            positions, weights = data["positions"], data["weights"]
            reference = str(data["reference"]) or None
            info = json.loads(str(data["info"]))
    except CorruptFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CorruptFileError(f"cannot read lead fields from {p} ({type(exc).__name__}: {exc}); the file is "
                               "truncated or not a .npz written by write_lead_fields") from None
    try:
        return LeadFields(names, positions, weights, reference, info)
    except InvalidParameterError as exc:
        raise CorruptFileError(f"{p}: inconsistent lead-field arrays ({exc})") from None
