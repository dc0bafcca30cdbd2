"""The exceptions cardiotwin raises for bad input.

Every check at a boundary (a file, an image, a mesh, an ECG) raises one of these with a message
that says what is wrong and how to fix it, instead of letting a traceback escape from deep inside
a library. They subclass the matching built-in exception so generic handlers keep working.
"""

from __future__ import annotations


class CardiotwinError(Exception):
    """Base class of all errors raised by cardiotwin on purpose."""


class InputError(CardiotwinError, ValueError):
    """The input is present but not usable as given."""


class InputFileNotFoundError(CardiotwinError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CorruptFileError(InputError):
    """A file exists but cannot be parsed in the format its name announces."""


class AmbiguousDicomSeriesError(InputError):
    """A DICOM folder holds more than one series and none was chosen."""


class UnknownLabelError(InputError, KeyError):
    """A label name or integer outside cardiotwin's label convention."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class InvalidImageError(InputError):
    """An image with impossible geometry (spacing, direction) or values."""


class InvalidMeshError(InputError):
    """A mesh with out-of-range indices, non-finite points, inverted or degenerate elements."""


class InvalidSignalError(InputError):
    """An ECG with NaN/inf samples, a bad sampling rate or inconsistent shapes."""


class MissingLeadsError(InputError):
    """An ECG lacks leads that the requested operation needs."""


class AnatomyError(InputError):
    """A label map whose anatomy cannot support the requested stage (missing chamber, ...)."""


class InvalidSystemError(InputError):
    """A finite-element problem that cannot be set up: mismatched sizes, non-finite entries, a
    matrix that is not square or symmetric, conductivities that are not positive (definite)."""


class SingularSystemError(InvalidSystemError):
    """A linear problem without a unique solution: a region with no Dirichlet node, nodes that
    belong to no element, or a pure-Neumann right-hand side whose sources and sinks do not balance."""


class ConvergenceError(CardiotwinError, RuntimeError):
    """An iterative solver stopped before reaching the requested tolerance."""


class InvalidFieldError(InputError):
    """A per-node or per-cell field (activation or repolarisation times, lead-field weights) with
    the wrong shape or values that are NaN, infinite where not allowed, or inconsistent."""


class InvalidParameterError(InputError):
    """A model parameter (action-potential shape, conductivity, sampling) outside its valid range."""


class ElectrodeError(InputError):
    """Electrode positions that cannot be used: wrong shape, non-finite, or inside/too close to the
    tissue for the requested model."""
