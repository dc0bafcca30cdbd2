"""Readers and writers; the only place where foreign formats and units are converted."""

from cardiotwin.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from cardiotwin.io.ecg import read_ecg, write_ecg_csv, write_ecg_wfdb
from cardiotwin.io.image import convert_labels, read_image, read_labels, write_dicom_series, write_image
from cardiotwin.io.mesh import read_mesh, write_mesh
from cardiotwin.io.opencarp import read_opencarp, read_vtx, write_opencarp
from cardiotwin.io.totalsegmentator import read_totalsegmentator

__all__ = [
    "atomic_path", "write_json_atomic", "write_text_atomic",
    "read_ecg", "write_ecg_csv", "write_ecg_wfdb",
    "convert_labels", "read_image", "read_labels", "write_dicom_series", "write_image",
    "read_mesh", "write_mesh",
    "read_opencarp", "read_vtx", "write_opencarp",
    "read_totalsegmentator",
]
