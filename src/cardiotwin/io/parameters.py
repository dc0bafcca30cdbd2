"""Electrophysiology parameter files (JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cardiotwin.electrophysiology.parameters import EpParameters
from cardiotwin.errors import CorruptFileError, InputFileNotFoundError
from cardiotwin.io.atomic import write_json_atomic


def read_parameters(path: str | os.PathLike) -> EpParameters:
    """Parameters from JSON (missing entries take their defaults)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputFileNotFoundError(f"parameter file not found: {p}") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{p} is not valid JSON: {exc}") from None
    return EpParameters.from_dict(data)


def write_parameters(params: EpParameters, path: str | os.PathLike) -> Path:
    """Parameters as JSON (atomically), read back by :func:`read_parameters`."""
    return write_json_atomic(path, params.as_dict())
