"""Implicit solids (ellipsoids, tapered tubes, discs) rasterised on a window of a voxel grid.

Each solid knows its physical bounding box, so it is evaluated only on the voxels near it: the
cost of a phantom is the sum of its structures' sizes, not structures x whole torso.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates (mm) along x, y, z of an axis-aligned image grid."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.x), len(self.y), len(self.z))

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(a[1] - a[0]) if len(a) > 1 else 1.0 for a in (self.x, self.y, self.z))  # type: ignore

    def window(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
        """Index slices of the voxels whose centres lie in the box [lo, hi] (clipped to the grid)."""
        out = []
        for axis, a, b in zip((self.x, self.y, self.z), lo, hi):
            i0 = int(np.searchsorted(axis, a, side="left"))
            i1 = int(np.searchsorted(axis, b, side="right"))
            out.append(slice(i0, max(i0, i1)))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, win: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinate arrays (X[:,None,None], Y[None,:,None], Z[None,None,:])."""
        return (
            self.x[win[0]][:, None, None],
            self.y[win[1]][None, :, None],
            self.z[win[2]][None, None, :],
        )


def _project(coords, origin: np.ndarray, axis: np.ndarray) -> np.ndarray:
    return (coords[0] - origin[0]) * axis[0] + (coords[1] - origin[1]) * axis[1] + (coords[2] - origin[2]) * axis[2]


@dataclass(frozen=True)
class Ellipsoid:
    """Solid ellipsoid with semi-axes ``semi`` along the columns of ``axes`` (an orthonormal frame).

    ``clip`` optionally keeps only the part with local coordinate along axis 2 <= clip (a truncated
    ellipsoid, as for a ventricle cut at its base plane).
    """

    center: np.ndarray
    axes: np.ndarray
    semi: tuple[float, float, float]
    clip: float | None = None

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        ext = np.sqrt(((self.axes * np.asarray(self.semi)[None, :]) ** 2).sum(axis=1))
        return self.center - ext, self.center + ext

    def inside(self, grid: Grid, win) -> np.ndarray:
        c = grid.coords(win)
        q = sum((_project(c, self.center, self.axes[:, k]) / self.semi[k]) ** 2 for k in range(3))
        mask = q <= 1.0
        if self.clip is not None:
            mask &= _project(c, self.center, self.axes[:, 2]) <= self.clip
        return mask


@dataclass(frozen=True)
class Tube:
    """A capsule from ``p0`` to ``p1`` whose radius varies linearly from ``r0`` to ``r1``.

    ``flat_ends=True`` cuts the caps flat (perpendicular to the axis) instead of rounding them,
    which is what a vessel meeting a valve plane needs.
    """

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    flat_ends: bool = False

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.r0, self.r1)
        return np.minimum(self.p0, self.p1) - r, np.maximum(self.p0, self.p1) + r

    def inside(self, grid: Grid, win) -> np.ndarray:
        c = grid.coords(win)
        d = self.p1 - self.p0
        length = float(np.linalg.norm(d))
        axis = d / length
        s = _project(c, self.p0, axis)
        t = np.clip(s / length, 0.0, 1.0)
        radius = self.r0 + (self.r1 - self.r0) * t
        dist2 = sum((c[k] - (self.p0[k] + t * d[k])) ** 2 for k in range(3))
        mask = dist2 <= radius**2
        if self.flat_ends:
            mask &= (s >= 0) & (s <= length)
        return mask


@dataclass(frozen=True)
class Disc:
    """A flat cylinder (valve plane): centre, unit normal, radius and thickness (mm).

    The disc occupies [0, thickness] along the normal from ``center``.
    """

    center: np.ndarray
    normal: np.ndarray
    radius: float
    thickness: float

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.radius + self.thickness
        return self.center - r, self.center + r

    def inside(self, grid: Grid, win) -> np.ndarray:
        c = grid.coords(win)
        s = _project(c, self.center, self.normal)
        r2 = sum((c[k] - self.center[k]) ** 2 for k in range(3)) - s**2
        return (s >= 0) & (s <= self.thickness) & (r2 <= self.radius**2)


def polyline_tubes(points: np.ndarray, radii: np.ndarray) -> list[Tube]:
    """Tapered capsules along a polyline (a vessel centreline with a radius per point)."""
    return [Tube(points[i], points[i + 1], float(radii[i]), float(radii[i + 1])) for i in range(len(points) - 1)]


def union_bbox(solids) -> tuple[np.ndarray, np.ndarray]:
    boxes = [s.bbox() for s in solids]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Clipped:
    """A solid cut by a plane: keeps the side where (x - point) . normal <= 0."""

    solid: object
    point: np.ndarray
    normal: np.ndarray

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.solid.bbox()

    def inside(self, grid: Grid, win) -> np.ndarray:
        return self.solid.inside(grid, win) & (_project(grid.coords(win), self.point, self.normal) <= 0)
