"""Atomic file writes: write to a hidden temporary name beside the target, then rename.

``os.replace`` is atomic on POSIX and Windows within one file system, so a reader (or a resumed
pipeline) sees either the old complete file or the new complete file, never a half-written one.
The temporary name keeps the target's extension so libraries that choose a format by extension
(SimpleITK, meshio) write the right thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator


def temporary_sibling(path: Path) -> Path:
    """A hidden, unique path in the same folder that ends with the same name as ``path``."""
    return path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on error removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (indented, with NumPy scalars and arrays converted)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON document at ``path``, or None where there is no file (a stage that did not run)."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None
