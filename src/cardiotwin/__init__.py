"""cardiotwin: cardiac digital twins from CT/MRI and the 12-lead ECG."""

from cardiotwin import labels
from cardiotwin.errors import CardiotwinError, InputError
from cardiotwin.types import TWELVE_LEADS, Ecg, Image, LabelImage, TetMesh

__version__ = "0.1.0"

__all__ = [
    "labels", "CardiotwinError", "InputError",
    "TWELVE_LEADS", "Ecg", "Image", "LabelImage", "TetMesh",
    "generate_phantom",
]


def __getattr__(name: str):
    # heavy submodules load on first use, so `import cardiotwin` stays fast
    if name == "generate_phantom":
        from cardiotwin.phantom import generate_phantom

        return generate_phantom
    raise AttributeError(f"module 'cardiotwin' has no attribute {name!r}")
