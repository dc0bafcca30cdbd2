"""The core data types every stage speaks: images, tetrahedral meshes and ECGs.

Units are fixed: millimetres for space, milliseconds for time, millivolts for potentials.
Physical coordinates follow ITK/DICOM (LPS: +x patient left, +y posterior, +z superior).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from cardiotwin import labels as _labels
from cardiotwin.errors import (
    InvalidImageError,
    InvalidMeshError,
    InvalidSignalError,
    MissingLeadsError,
)

# ----------------------------------------------------------------------------------------- images


@dataclass(frozen=True, eq=False)
class Image:
    """A 3-D image in physical space.

    ``array[i, j, k]`` is the voxel at physical point ``origin + direction @ (spacing * (i, j, k))``
    (mm, LPS). ``direction`` holds the unit physical direction of each index axis as a column.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise InvalidImageError(f"image must be 3-D, got shape {arr.shape}")
        if min(arr.shape) == 0:
            raise InvalidImageError(f"image has an empty axis: shape {arr.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise InvalidImageError(f"spacing must be three positive mm values, got {self.spacing}")
        origin = tuple(float(o) for o in self.origin)
        if len(origin) != 3 or not all(np.isfinite(origin)):
            raise InvalidImageError(f"origin must be three finite mm values, got {self.origin}")
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise InvalidImageError(
                "direction must be an orthonormal 3x3 matrix (columns = physical axis directions); "
                f"got {direction.tolist()}"
            )
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix from voxel index (i, j, k, 1) to physical LPS mm."""
        aff = np.eye(4)
        aff[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        aff[:3, 3] = self.origin
        return aff

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def index_to_physical(self, index: np.ndarray) -> np.ndarray:
        """Physical points (..., 3) mm of (fractional) voxel indices (..., 3)."""
        idx = np.asarray(index, dtype=float)
        return idx * np.asarray(self.spacing) @ self.direction.T + np.asarray(self.origin)

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """Fractional voxel indices (..., 3) of physical points (..., 3) mm."""
        pts = np.asarray(points, dtype=float) - np.asarray(self.origin)
        return pts @ self.direction / np.asarray(self.spacing)

    def same_grid(self, other: "Image", tol: float = 1e-3) -> bool:
        """True when both images sample the same physical grid."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray) -> "Image":
        """Same geometry, new voxel values."""
        return Image(array, self.spacing, self.origin, self.direction)

    def crop(self, box: tuple[slice, slice, slice]) -> "Image":
        """The sub-volume ``array[box]`` (unit-step slices) in the same physical frame; same class."""
        box = tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, self.shape))
        start = np.array([s.start for s in box], dtype=float)
        return type(self)(np.ascontiguousarray(self.array[box]), self.spacing,
                          tuple(self.index_to_physical(start)), self.direction)


class LabelImage(Image):
    """An integer image whose values are cardiotwin labels (:mod:`cardiotwin.labels`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer):
            raise InvalidImageError(
                f"a label image needs integer voxels, got {self.array.dtype}; "
                "round or cast your label map before loading it as labels"
            )
        _labels.check_values(np.unique(self.array))

    def with_array(self, array: np.ndarray) -> "LabelImage":
        return LabelImage(array, self.spacing, self.origin, self.direction)

    def mask(self, *names: str) -> np.ndarray:
        """Boolean mask of the voxels carrying any of the named structures."""
        return np.isin(self.array, _labels.labels_of(names))

    def present(self) -> list[str]:
        """Names of the structures present (background excluded)."""
        return [_labels.name(v) for v in np.unique(self.array) if v != 0]

    def volumes_ml(self) -> dict[str, float]:
        """Volume of every present structure in millilitres."""
        values, counts = np.unique(self.array, return_counts=True)
        voxel_ml = self.voxel_volume_mm3 / 1000.0
        return {_labels.name(v): float(c) * voxel_ml for v, c in zip(values, counts) if v != 0}


# ----------------------------------------------------------------------------------------- meshes


def tet_signed_volumes(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Signed volume (mm^3) of each tetrahedron; positive for VTK's vertex ordering."""
    p = points[cells]
    return np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0]) / 6.0


@dataclass(frozen=True, eq=False)
class TetMesh:
    """A tetrahedral mesh in mm with a region tag per cell and named point/cell fields.

    Fields travel with the mesh (``point_data``/``cell_data``) so every stage's output is
    self-describing in ParaView. ``tags`` are cardiotwin label integers.
    """

    points: np.ndarray
    cells: np.ndarray
    tags: np.ndarray | None = None
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    cell_data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.ascontiguousarray(self.points, dtype=np.float64)
        cells = np.ascontiguousarray(self.cells)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InvalidMeshError(f"points must have shape (n, 3), got {pts.shape}")
        if cells.ndim != 2 or cells.shape[1] != 4:
            raise InvalidMeshError(f"cells must be tetrahedra with shape (m, 4), got {cells.shape}")
        if not np.issubdtype(cells.dtype, np.integer):
            raise InvalidMeshError(f"cell connectivity must be integer, got {cells.dtype}")
        cells = cells.astype(np.int64, copy=False)
        if len(cells) == 0:
            raise InvalidMeshError("mesh has no tetrahedra")
        if not np.all(np.isfinite(pts)):
            raise InvalidMeshError(f"{int((~np.isfinite(pts)).any(1).sum())} points have NaN/inf coordinates")
        if cells.min() < 0 or cells.max() >= len(pts):
            raise InvalidMeshError(
                f"cell indices must lie in [0, {len(pts) - 1}], found [{cells.min()}, {cells.max()}]"
            )
        tags = np.zeros(len(cells), dtype=np.int32) if self.tags is None else np.asarray(self.tags)
        if tags.shape != (len(cells),):
            raise InvalidMeshError(f"tags must have one value per cell ({len(cells)}), got {tags.shape}")
        tags = tags.astype(np.int32)
        _labels.check_values(np.unique(tags))
        vol = tet_signed_volumes(pts, cells)
        degenerate = np.abs(vol) <= 1e-9 * _longest_edge(pts, cells) ** 3
        if degenerate.any():
            raise InvalidMeshError(
                f"{int(degenerate.sum())} degenerate (zero-volume) tetrahedra, e.g. cell "
                f"{int(np.flatnonzero(degenerate)[0])}; remesh or remove them"
            )
        inverted = vol < 0
        if inverted.any():
            raise InvalidMeshError(
                f"{int(inverted.sum())} of {len(cells)} tetrahedra are inverted (negative volume), e.g. cell "
                f"{int(np.flatnonzero(inverted)[0])}; if the whole mesh uses the opposite vertex order, "
                "load it with TetMesh.reoriented(points, cells, ...)"
            )
        pdata = {k: _field(k, v, len(pts), "point") for k, v in self.point_data.items()}
        cdata = {k: _field(k, v, len(cells), "cell") for k, v in self.cell_data.items()}
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "cells", cells)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "point_data", pdata)
        object.__setattr__(self, "cell_data", cdata)

    @classmethod
    def reoriented(cls, points: np.ndarray, cells: np.ndarray, **kwargs) -> "TetMesh":
        """Build a mesh after swapping two vertices of every negatively oriented tetrahedron."""
        pts = np.asarray(points, dtype=np.float64)
        cells = np.array(cells, dtype=np.int64)
        neg = tet_signed_volumes(pts, cells) < 0
        cells[neg, 2], cells[neg, 3] = cells[neg, 3], cells[neg, 2].copy()
        return cls(pts, cells, **kwargs)

    @property
    def n_points(self) -> int:
        return len(self.points)

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    def cell_volumes(self) -> np.ndarray:
        """Volume of each tetrahedron in mm^3."""
        return tet_signed_volumes(self.points, self.cells)

    def region_volumes_ml(self) -> dict[str, float]:
        """Volume per tagged region in millilitres."""
        vol = self.cell_volumes()
        sums = np.bincount(self.tags, weights=vol)
        return {_labels.name(t): float(sums[t]) / 1000.0 for t in np.unique(self.tags)}

    def with_fields(
        self,
        point_data: Mapping[str, np.ndarray] | None = None,
        cell_data: Mapping[str, np.ndarray] | None = None,
    ) -> "TetMesh":
        """A copy of the mesh with fields added or replaced."""
        return TetMesh(
            self.points,
            self.cells,
            self.tags,
            {**self.point_data, **(point_data or {})},
            {**self.cell_data, **(cell_data or {})},
        )


def _longest_edge(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    p = points[cells]
    pairs = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    return np.sqrt(np.max([np.sum((p[:, a] - p[:, b]) ** 2, axis=1) for a, b in pairs], axis=0))


def _field(key: str, value: np.ndarray, n: int, kind: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape[:1] != (n,):
        raise InvalidMeshError(f"{kind} field {key!r} has {arr.shape[:1]} rows, expected {n} (one per {kind})")
    return arr


# ------------------------------------------------------------------------------------------- ECGs

TWELVE_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB_LEADS = TWELVE_LEADS[:6]
_CANONICAL = {lead.lower(): lead for lead in TWELVE_LEADS}


def canonical_lead_name(lead: str) -> str:
    """Standard spelling of a lead name ('avr' -> 'aVR', 'v1' -> 'V1'); others are kept as given."""
    key = lead.strip()
    return _CANONICAL.get(key.lower(), key)


@dataclass(frozen=True, eq=False)
class Ecg:
    """A multi-lead ECG: ``signals[lead, sample]`` in mV sampled at ``fs`` Hz."""

    signals: np.ndarray
    fs: float
    leads: tuple[str, ...]

    def __post_init__(self) -> None:
        sig = np.asarray(self.signals, dtype=np.float64)
        leads = tuple(canonical_lead_name(str(lead)) for lead in self.leads)
        if sig.ndim != 2:
            raise InvalidSignalError(f"signals must be (n_leads, n_samples), got shape {sig.shape}")
        if sig.shape[0] != len(leads):
            raise InvalidSignalError(f"{sig.shape[0]} signal rows but {len(leads)} lead names {leads}")
        if len(set(leads)) != len(leads):
            raise InvalidSignalError(f"duplicate lead names in {leads}")
        if sig.shape[1] < 2:
            raise InvalidSignalError(f"an ECG needs at least 2 samples, got {sig.shape[1]}")
        fs = float(self.fs)
        if not np.isfinite(fs) or fs <= 0:
            raise InvalidSignalError(f"sampling rate must be a positive number of Hz, got {self.fs}")
        bad = ~np.isfinite(sig)
        if bad.any():
            rows, cols = np.nonzero(bad)
            per_lead = {leads[r]: int(c) for r, c in zip(*np.unique(rows, return_counts=True))}
            raise InvalidSignalError(
                f"ECG has {int(bad.sum())} NaN/inf samples (per lead: {per_lead}; first at lead "
                f"{leads[rows[0]]}, t = {cols[0] / fs * 1000:.1f} ms); crop the record or interpolate "
                "the gap before loading"
            )
        object.__setattr__(self, "signals", sig)
        object.__setattr__(self, "fs", fs)
        object.__setattr__(self, "leads", leads)

    @property
    def n_samples(self) -> int:
        return self.signals.shape[1]

    @property
    def duration_ms(self) -> float:
        return self.n_samples / self.fs * 1000.0

    @property
    def time_ms(self) -> np.ndarray:
        return np.arange(self.n_samples) / self.fs * 1000.0

    def lead(self, name: str) -> np.ndarray:
        """Samples of one lead (mV)."""
        self.require([name])
        return self.signals[self.leads.index(canonical_lead_name(name))]

    def require(self, leads: Iterable[str]) -> None:
        """Raise :class:`MissingLeadsError` naming every requested lead that is absent."""
        missing = [canonical_lead_name(l) for l in leads if canonical_lead_name(l) not in self.leads]
        if missing:
            raise MissingLeadsError(
                f"ECG lacks lead(s) {missing}; it has {list(self.leads)}. Limb leads III, aVR, aVL, aVF "
                "can be derived from I and II with Ecg.with_derived_limb_leads()"
            )

    def select(self, leads: Sequence[str]) -> "Ecg":
        """The ECG restricted to (and ordered as) the given leads."""
        self.require(leads)
        idx = [self.leads.index(canonical_lead_name(l)) for l in leads]
        return Ecg(self.signals[idx], self.fs, tuple(self.leads[i] for i in idx))

    def with_derived_limb_leads(self) -> "Ecg":
        """Add the limb leads missing from I and II (Einthoven's law and Goldberger's leads)."""
        self.require(["I", "II"])
        one, two = self.lead("I"), self.lead("II")
        derived = {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2, "aVF": two - one / 2}
        extra = {k: v for k, v in derived.items() if k not in self.leads}
        if not extra:
            return self
        return Ecg(
            np.vstack([self.signals, *extra.values()]), self.fs, self.leads + tuple(extra)
        )

    def twelve_lead(self) -> "Ecg":
        """The standard 12 leads in standard order (limb leads derived when only I and II exist)."""
        ecg = self.with_derived_limb_leads() if {"I", "II"} <= set(self.leads) else self
        return ecg.select(TWELVE_LEADS)
