"""Where the built-in segmenter's weights are installed (no torch import, for cache keys)."""

from importlib import resources
from pathlib import Path

BUILTIN_WEIGHTS = "segmenter.pt"


def builtin_weights() -> Path:
    """Path of the shipped weights file (it may be absent in a checkout still training them)."""
    return Path(str(resources.files("cardiotwin.segmentation") / "weights" / BUILTIN_WEIGHTS))
