"""PyTorch checkpoints and network weights, written atomically and read with a clear error."""

from __future__ import annotations

import io
import os
from pathlib import Path

from cardiotwin.errors import CorruptFileError, InputFileNotFoundError
from cardiotwin.io.atomic import atomic_path


def write_torch(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` of ``obj`` to ``path`` through a temporary file (never a half-written checkpoint)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


def read_torch(path: str | os.PathLike) -> dict:
    """A checkpoint written by :func:`write_torch` (or the shipped weights), on the CPU."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"network weights not found: {path}")
    try:
        # our own files hold numpy RNG states and plain dicts besides tensors
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CorruptFileError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                               "retrain or reinstall the weights") from exc
