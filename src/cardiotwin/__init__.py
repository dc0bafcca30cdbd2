"""cardiotwin: cardiac digital twins from CT/MRI and the 12-lead ECG.

The public API (heavy modules load on first use, so ``import cardiotwin`` stays fast):

* data types: :class:`Image`, :class:`LabelImage`, :class:`TetMesh`, :class:`Ecg`; ``labels``
* synthetic patients: :func:`generate_phantom`
* anatomy: :func:`build_anatomy` (walls, landmarks, meshes), :func:`add_coordinates_and_fibres`,
  :func:`add_conduction_fields`
* function: :class:`EpParameters`, :class:`Twin`, :class:`ForwardModel`, :func:`simulate`,
  :func:`ensure_lead_fields`, :func:`preprocess` (patient ECG -> median beat and fiducials)
"""

from importlib import import_module

from cardiotwin import labels
from cardiotwin.errors import CardiotwinError, InputError
from cardiotwin.types import TWELVE_LEADS, Ecg, Image, LabelImage, TetMesh

__version__ = "0.1.0"

_LAZY = {
    "generate_phantom": "cardiotwin.phantom",
    "build_anatomy": "cardiotwin.anatomy.build",
    "add_coordinates_and_fibres": "cardiotwin.anatomy.fibres",
    "add_conduction_fields": "cardiotwin.electrophysiology.conduction",
    "EpParameters": "cardiotwin.electrophysiology.parameters",
    "Twin": "cardiotwin.twin",
    "ForwardModel": "cardiotwin.twin",
    "simulate": "cardiotwin.twin",
    "ensure_lead_fields": "cardiotwin.pipeline.twin_folder",
    "preprocess": "cardiotwin.ecg.signal",
}

__all__ = ["labels", "CardiotwinError", "InputError", "TWELVE_LEADS", "Ecg", "Image", "LabelImage", "TetMesh",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cardiotwin' has no attribute {name!r}")
