"""Readers and writers; the only place where foreign formats and units are converted.

The heavy readers (SimpleITK, meshio, wfdb/pandas) load on first use, so ``import cardiotwin.io``
costs nothing until a file is read or written.
"""

from importlib import import_module

_LAZY = {
    "atomic_path": "cardiotwin.io.atomic", "write_json_atomic": "cardiotwin.io.atomic",
    "write_text_atomic": "cardiotwin.io.atomic", "read_json": "cardiotwin.io.atomic",
    "read_ecg": "cardiotwin.io.ecg", "write_ecg_csv": "cardiotwin.io.ecg", "write_ecg_wfdb": "cardiotwin.io.ecg",
    "convert_labels": "cardiotwin.io.image", "read_image": "cardiotwin.io.image", "read_labels": "cardiotwin.io.image",
    "write_dicom_series": "cardiotwin.io.image", "write_image": "cardiotwin.io.image",
    "read_mesh": "cardiotwin.io.mesh", "write_mesh": "cardiotwin.io.mesh",
    "read_opencarp": "cardiotwin.io.opencarp", "read_vtx": "cardiotwin.io.opencarp",
    "write_opencarp": "cardiotwin.io.opencarp",
    "read_totalsegmentator": "cardiotwin.io.totalsegmentator",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cardiotwin.io' has no attribute {name!r}")
